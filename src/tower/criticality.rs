//! The criticality a request brings with it: read from a header by
//! [`WardenLayer::criticality_header`](super::WardenLayer::criticality_header) and set on the
//! request's call, so the call is shed in its class and every call made while serving it
//! inherits it. See [`crate::criticality`]; [`CriticalityHeader`] itself lives there, shared
//! with the `reqwest` feature's middleware (which sends it on).

pub use crate::criticality::CriticalityHeader;
use crate::Criticality;

/// Where a request says how much it matters.
///
/// Implemented by [`NoCriticalityHeader`] (the default: requests say nothing, and their calls
/// are as critical as the scope the service is called in) and by [`CriticalityHeader`] for
/// every `http::Request<B>`; implement it for a request type of your own.
pub trait CriticalitySource<Req> {
    /// The request's criticality, if it says.
    fn criticality(&self, request: &Req) -> Option<Criticality>;
}

/// Requests bring no criticality (a [`WardenLayer`](super::WardenLayer)'s default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCriticalityHeader;

impl<Req> CriticalitySource<Req> for NoCriticalityHeader {
    #[inline]
    fn criticality(&self, _request: &Req) -> Option<Criticality> {
        None
    }
}

impl<B> CriticalitySource<http::Request<B>> for CriticalityHeader {
    /// The header's first value; a value that is not a criticality is ignored (logged at
    /// `debug`).
    fn criticality(&self, request: &http::Request<B>) -> Option<Criticality> {
        self.read(request.headers())
    }
}
