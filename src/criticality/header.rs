//! [`CriticalityHeader`]: a request's criticality, as an HTTP header. One implementation for
//! both ends, like the deadline's header: the `tower` feature's layer reads it from incoming
//! requests (`warden::tower::WardenLayer::criticality_header`), and the `reqwest` feature's
//! middleware writes it into outgoing ones (`warden::reqwest::WardenMiddleware`), so a
//! critical request stays critical from the edge down to the last hop. (Plain names, not
//! links: either feature may be off.)

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::Criticality;

/// The header [`CriticalityHeader::default`] uses: `x-warden-criticality`.
pub const DEFAULT_CRITICALITY_HEADER: &str = "x-warden-criticality";

/// An HTTP header that carries a request's [`Criticality`]: `critical`, `default` or
/// `sheddable` (read in any case; Google's `CRITICAL_PLUS`, `CRITICAL`, `SHEDDABLE_PLUS` and
/// `SHEDDABLE` are read too, see [`Criticality::from_str`](std::str::FromStr)).
///
/// A default request sends no header: a receiver treats a request without one as default, so
/// only the calls that are not default pay for the header.
///
/// ```
/// use warden::criticality::CriticalityHeader;
/// use warden::Criticality;
///
/// let header = CriticalityHeader::default();
/// assert_eq!(header.name().as_str(), "x-warden-criticality");
/// let value = http::HeaderValue::from_static("SHEDDABLE");
/// assert_eq!(header.parse(&value), Some(Criticality::Sheddable));
/// assert_eq!(header.value(Criticality::Critical), "critical");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalityHeader {
    name: HeaderName,
}

impl Default for CriticalityHeader {
    /// `x-warden-criticality` ([`DEFAULT_CRITICALITY_HEADER`]).
    fn default() -> Self {
        CriticalityHeader {
            name: HeaderName::from_static(DEFAULT_CRITICALITY_HEADER),
        }
    }
}

impl CriticalityHeader {
    /// A header named `name` (case-insensitive), for a fleet that already has a name for it.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name.
    pub fn named(name: &str) -> Self {
        CriticalityHeader {
            name: HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|_| panic!("{name:?} is not a valid header name")),
        }
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The criticality a value of this header says; `None` when it is not one.
    pub fn parse(&self, value: &HeaderValue) -> Option<Criticality> {
        value.to_str().ok()?.parse().ok()
    }

    /// The header's value for `criticality` (its lowercase name).
    pub fn value(&self, criticality: Criticality) -> HeaderValue {
        HeaderValue::from_static(criticality.as_str())
    }

    /// The criticality `headers` carry under this header's name (its first value); `None`
    /// without the header, or when its value is not a criticality (logged at `debug`).
    pub fn read(&self, headers: &HeaderMap) -> Option<Criticality> {
        let value = headers.get(&self.name)?;
        let criticality = self.parse(value);
        if criticality.is_none() {
            tracing::debug!(header = %self.name, ?value, "criticality header ignored: not readable");
        }
        criticality
    }

    /// The header to send with an outgoing request made now: the name and
    /// [`Criticality::current`] (inside a warden call, the call's); `None` when that is
    /// [`Criticality::Default`], which needs no header.
    ///
    /// ```no_run
    /// # async fn f(client: reqwest::Client) -> reqwest::Result<()> {
    /// use warden::criticality::CriticalityHeader;
    ///
    /// let mut request = client.get("http://inventory.internal/items/7");
    /// if let Some((name, value)) = CriticalityHeader::default().current() {
    ///     request = request.header(name, value);
    /// }
    /// let response = request.send().await?;
    /// # Ok(()) }
    /// ```
    pub fn current(&self) -> Option<(HeaderName, HeaderValue)> {
        let criticality = Criticality::current();
        (criticality != Criticality::Default).then(|| (self.name.clone(), self.value(criticality)))
    }

    /// Writes [`Criticality::current`] into `headers` (replacing any value there) and returns
    /// it; a default call writes nothing (and leaves any value there alone) and returns `None`.
    pub fn insert_current(&self, headers: &mut HeaderMap) -> Option<Criticality> {
        let criticality = Criticality::current();
        if criticality == Criticality::Default {
            return None;
        }
        headers.insert(self.name.clone(), self.value(criticality));
        Some(criticality)
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_written_value_reads_back_and_others_are_ignored() {
        let header = CriticalityHeader::named("X-Priority");
        assert_eq!(header.name().as_str(), "x-priority");
        for criticality in Criticality::ALL {
            assert_eq!(header.parse(&header.value(criticality)), Some(criticality));
        }
        let mut headers = HeaderMap::new();
        assert_eq!(header.read(&headers), None);
        headers.insert("x-priority", HeaderValue::from_static(" Critical_Plus "));
        assert_eq!(header.read(&headers), Some(Criticality::Critical));
        headers.insert("x-priority", HeaderValue::from_static("urgent"));
        assert_eq!(header.read(&headers), None);
        assert_eq!(CriticalityHeader::default().read(&headers), None);
    }

    #[test]
    #[should_panic(expected = "not a valid header name")]
    fn an_invalid_name_is_refused() {
        let _ = CriticalityHeader::named("bad name");
    }

    #[tokio::test]
    async fn only_a_call_that_is_not_default_writes_the_header() {
        let header = CriticalityHeader::default();
        let mut headers = HeaderMap::new();
        assert_eq!(header.current(), None);
        assert_eq!(header.insert_current(&mut headers), None);
        Criticality::Default
            .scope(async { assert_eq!(header.insert_current(&mut headers), None) })
            .await;
        assert!(headers.is_empty());
        Criticality::Sheddable
            .scope(async {
                assert_eq!(
                    header.insert_current(&mut headers),
                    Some(Criticality::Sheddable)
                );
                let (name, value) = header.current().unwrap();
                assert_eq!(
                    (name.as_str(), value.to_str().unwrap()),
                    (DEFAULT_CRITICALITY_HEADER, "sheddable")
                );
            })
            .await;
        assert_eq!(
            headers.get(DEFAULT_CRITICALITY_HEADER).unwrap(),
            "sheddable"
        );
    }
}
