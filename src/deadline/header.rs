//! [`DeadlineHeader`]: the time a request has left, as an HTTP header. One implementation for
//! both ends: the `tower` feature's layer reads it from incoming requests
//! (`warden::tower::WardenLayer::deadline_header`), and the `reqwest` feature's middleware
//! writes it into outgoing ones (`warden::reqwest::WardenMiddleware`), with
//! [`DeadlineHeader::value`]. (Plain names, not links: either feature may be off.)

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::{format_grpc_timeout, format_millis, parse_grpc_timeout, parse_millis, Deadline};

/// An HTTP header that carries the time a request has left: `grpc-timeout` (gRPC's format,
/// as tonic sends it) or a number of milliseconds under a name of your choice.
///
/// ```
/// use std::time::Duration;
/// use warden::deadline::DeadlineHeader;
///
/// let header = DeadlineHeader::grpc_timeout();
/// let value = http::HeaderValue::from_static("250m");
/// assert_eq!(header.parse(&value), Some(Duration::from_millis(250)));
///
/// let header = DeadlineHeader::millis("x-warden-deadline-ms");
/// assert_eq!(header.value(Duration::from_millis(90)), "90");
/// ```
///
/// `warden::tower::DeadlineHeader` is the same type (re-exported), and with the `tower`
/// feature it is a `warden::tower::DeadlineSource` of every `http::Request`.
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
    /// any deadline. With a bare `reqwest` client (the `reqwest` feature's
    /// `warden::reqwest::WardenMiddleware` does it for every request):
    ///
    /// ```no_run
    /// # async fn f(client: reqwest::Client) -> reqwest::Result<()> {
    /// use warden::deadline::DeadlineHeader;
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

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

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
