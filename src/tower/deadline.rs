//! The deadline a request brings with it: read from a header by
//! [`WardenLayer::deadline_header`](super::WardenLayer::deadline_header), run as the
//! [`Deadline`] of the request's call, and written on by an HTTP client
//! ([`DeadlineHeader::current`]). See [`crate::deadline`].

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::deadline::{format_grpc_timeout, format_millis, parse_grpc_timeout, parse_millis};
use crate::Deadline;

/// Where a request says how long it may take: the time left, read from the request when the
/// layer receives it. The request's call runs with the deadline that far from then
/// ([`Deadline::after`]), and everything it calls inherits it.
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

/// An HTTP header that carries the time a request has left: `grpc-timeout` (gRPC's format,
/// as tonic sends it) or a number of milliseconds under a name of your choice.
///
/// ```
/// use std::time::Duration;
/// use warden::tower::{DeadlineHeader, DeadlineSource};
///
/// let header = DeadlineHeader::grpc_timeout();
/// let request = http::Request::get("/").header("grpc-timeout", "250m").body(()).unwrap();
/// assert_eq!(header.time_left(&request), Some(Duration::from_millis(250)));
///
/// let header = DeadlineHeader::millis("x-warden-deadline-ms");
/// assert_eq!(header.value(Duration::from_millis(90)), "90");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineHeader {
    name: HeaderName,
    format: Format,
}

/// How a [`DeadlineHeader`]'s value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `<at most 8 digits><unit>`: [`parse_grpc_timeout`].
    GrpcTimeout,
    /// Whole milliseconds.
    Millis,
}

impl DeadlineHeader {
    /// `grpc-timeout`, in gRPC's format (`300m`, `2S`, …; [`parse_grpc_timeout`]).
    pub fn grpc_timeout() -> Self {
        DeadlineHeader {
            name: HeaderName::from_static("grpc-timeout"),
            format: Format::GrpcTimeout,
        }
    }

    /// A header named `name` holding the time left in whole milliseconds (e.g.
    /// `x-warden-deadline-ms: 250`). The name is case-insensitive.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name.
    pub fn millis(name: &str) -> Self {
        DeadlineHeader {
            name: HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|_| panic!("{name:?} is not a valid header name")),
            format: Format::Millis,
        }
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The time left a value of this header says; `None` when it is not one.
    pub fn parse(&self, value: &HeaderValue) -> Option<Duration> {
        let value = value.to_str().ok()?;
        match self.format {
            Format::GrpcTimeout => parse_grpc_timeout(value),
            Format::Millis => parse_millis(value),
        }
    }

    /// The header's value for `time_left` (rounded down: the receiver is never promised more
    /// time than is left).
    pub fn value(&self, time_left: Duration) -> HeaderValue {
        let text = match self.format {
            Format::GrpcTimeout => format_grpc_timeout(time_left),
            Format::Millis => format_millis(time_left),
        };
        HeaderValue::try_from(text).expect("digits and a unit letter are a valid header value")
    }

    /// The header to send with an outgoing request made now: the name and the time left of
    /// [`Deadline::current`] (the attempt's deadline, inside a warden call); `None` outside
    /// any deadline. With `reqwest`:
    ///
    /// ```no_run
    /// # async fn f(client: reqwest::Client) -> reqwest::Result<()> {
    /// use warden::tower::DeadlineHeader;
    ///
    /// let mut request = client.get("http://inventory.internal/items/7");
    /// if let Some((name, value)) = DeadlineHeader::grpc_timeout().current() {
    ///     request = request.header(name, value);
    /// }
    /// let response = request.send().await?;
    /// # Ok(()) }
    /// ```
    pub fn current(&self) -> Option<(HeaderName, HeaderValue)> {
        let deadline = Deadline::current()?;
        Some((self.name.clone(), self.value(deadline.remaining())))
    }

    /// Writes [`current`](Self::current) into `headers` (replacing any value there); returns
    /// the time left it wrote, `None` (and leaves `headers` alone) outside any deadline.
    pub fn insert_current(&self, headers: &mut HeaderMap) -> Option<Duration> {
        let time_left = Deadline::current()?.remaining();
        headers.insert(self.name.clone(), self.value(time_left));
        Some(time_left)
    }
}

impl<B> DeadlineSource<http::Request<B>> for DeadlineHeader {
    /// The header's first value; a value that is not one of this header's is ignored (the
    /// request then brings no deadline), and logged at `debug`.
    fn time_left(&self, request: &http::Request<B>) -> Option<Duration> {
        let value = request.headers().get(&self.name)?;
        let time_left = self.parse(value);
        if time_left.is_none() {
            tracing::debug!(header = %self.name, ?value, "deadline header ignored: not readable");
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

    #[test]
    fn a_written_value_reads_back() {
        for header in [
            DeadlineHeader::grpc_timeout(),
            DeadlineHeader::millis("x-d"),
        ] {
            let value = header.value(Duration::from_millis(1234));
            assert_eq!(header.parse(&value), Some(Duration::from_millis(1234)));
        }
    }

    #[test]
    #[should_panic(expected = "not a valid header name")]
    fn an_invalid_name_is_refused() {
        let _ = DeadlineHeader::millis("bad name");
    }

    #[tokio::test(start_paused = true)]
    async fn the_current_deadline_is_written_into_an_outgoing_request() {
        let header = DeadlineHeader::millis("x-deadline-ms");
        let mut headers = HeaderMap::new();
        assert_eq!(header.current(), None);
        assert_eq!(header.insert_current(&mut headers), None);
        assert!(headers.is_empty());
        Deadline::after(Duration::from_millis(300))
            .scope(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert_eq!(
                    header.insert_current(&mut headers),
                    Some(Duration::from_millis(200))
                );
                let (name, value) = header.current().unwrap();
                assert_eq!(
                    (name.as_str(), value.to_str().unwrap()),
                    ("x-deadline-ms", "200")
                );
            })
            .await;
        assert_eq!(headers.get("x-deadline-ms").unwrap(), "200");
    }
}
