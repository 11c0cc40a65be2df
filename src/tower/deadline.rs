//! The deadline a request brings with it: read from a header by
//! [`WardenLayer::deadline_header`](super::WardenLayer::deadline_header), run as the
//! [`Deadline`](crate::Deadline) of the request's call, and written on by an HTTP client
//! ([`DeadlineHeader::current`]). See [`crate::deadline`]; [`DeadlineHeader`] itself lives
//! there, shared with the `reqwest` feature's middleware.

use std::time::Duration;

pub use crate::deadline::DeadlineHeader;

/// Where a request says how long it may take: the time left, read from the request when the
/// layer receives it. The request's call runs with the deadline that far from then
/// ([`Deadline::after`](crate::Deadline::after)), and everything it calls inherits it.
///
/// Implemented by [`NoDeadlineHeader`] (the default: requests bring no deadline) and by
/// [`DeadlineHeader`] for every `http::Request<B>`; implement it for a request type of your
/// own (e.g. one that carries its budget as a field).
pub trait DeadlineSource<Req> {
    /// The time the request has left, if it says.
    fn time_left(&self, request: &Req) -> Option<Duration>;
}

/// Requests bring no deadline (a [`WardenLayer`](super::WardenLayer)'s default): a call's
/// deadline is its supervisor's, or the one inherited where the service is called.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadlineHeader;

impl<Req> DeadlineSource<Req> for NoDeadlineHeader {
    #[inline]
    fn time_left(&self, _request: &Req) -> Option<Duration> {
        None
    }
}

impl<B> DeadlineSource<http::Request<B>> for DeadlineHeader {
    /// The header's first value; a value that is not one of this header's is ignored (the
    /// request then brings no deadline), and logged at `debug`.
    fn time_left(&self, request: &http::Request<B>) -> Option<Duration> {
        let value = request.headers().get(self.name())?;
        let time_left = self.parse(value);
        if time_left.is_none() {
            tracing::debug!(header = %self.name(), ?value, "deadline header ignored: not readable");
        }
        time_left
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    fn request(name: &str, value: &str) -> http::Request<()> {
        http::Request::get("/")
            .header(name, value)
            .body(())
            .unwrap()
    }

    #[test]
    fn each_header_reads_its_own_format_and_ignores_others() {
        let grpc = DeadlineHeader::grpc_timeout();
        let millis = DeadlineHeader::millis("X-Warden-Deadline-Ms");
        assert_eq!(millis.name().as_str(), "x-warden-deadline-ms");
        assert_eq!(
            grpc.time_left(&request("grpc-timeout", "2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(grpc.time_left(&request("grpc-timeout", "2000")), None);
        assert_eq!(
            millis.time_left(&request("x-warden-deadline-ms", "2000")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            millis.time_left(&request("x-warden-deadline-ms", "2S")),
            None
        );
        assert_eq!(grpc.time_left(&request("x-other", "2S")), None);
        assert_eq!(
            NoDeadlineHeader.time_left(&request("grpc-timeout", "2S")),
            None
        );
    }
}
