//! What an HTTP answer means to the supervisor: [`default_classify`] (5xx, 429 and 408
//! failures, other 4xx the caller's own mistake), [`retry_after`], and which methods may be
//! sent twice.

use std::time::{Duration, SystemTime};

use reqwest::{Method, Response, StatusCode};

use crate::retry::ErrorClass;

/// The classifier a [`WardenMiddleware`](super::WardenMiddleware) uses unless given another
/// ([`classify`](super::WardenMiddleware::classify)).
pub type DefaultClassifier = fn(&Result<Response, reqwest_middleware::Error>) -> Option<ErrorClass>;

/// The default verdict on one attempt's answer: `None` for a success, or the failure's
/// [`ErrorClass`].
///
/// | answer | class | why |
/// |---|---|---|
/// | 1xx, 2xx, 3xx | success (`None`) | |
/// | 5xx | [transient](ErrorClass::transient), with its `Retry-After` | the host is failing: retried, counted by the breaker |
/// | 429 Too Many Requests | transient, with its `Retry-After` | the host asks for less: retried after its hint |
/// | 408 Request Timeout | transient | the host timed an idle request out (as reqwest-retry treats it) |
/// | other 4xx | [ignored](ErrorClass::ignored) | the request was wrong, the host is fine: not retried, not a breaker failure |
/// | a connect error, a timeout, any other error sending the request | transient | |
/// | an error building the request (`is_builder`) | ignored | nothing was sent |
///
/// A `Retry-After` hint ([`retry_after`]) longer than the retry policy's `max_delay` is not
/// waited for: the call ends [`RetryDeferred`](crate::CallError::RetryDeferred) and the
/// caller gets that response. Use it inside a classifier of your own to change a few cases:
///
/// ```
/// use reqwest::StatusCode;
/// use warden::reqwest::default_classify;
/// use warden::retry::ErrorClass;
///
/// // 409 Conflict is worth retrying for this API; everything else as by default.
/// let classify = |answer: &Result<reqwest::Response, reqwest_middleware::Error>| match answer {
///     Ok(response) if response.status() == StatusCode::CONFLICT => Some(ErrorClass::transient()),
///     other => default_classify(other),
/// };
/// # let _ = classify;
/// ```
pub fn default_classify(
    answer: &Result<Response, reqwest_middleware::Error>,
) -> Option<ErrorClass> {
    match answer {
        Ok(response) => classify_status(response),
        Err(reqwest_middleware::Error::Reqwest(error)) if error.is_builder() => {
            Some(ErrorClass::ignored())
        }
        Err(_) => Some(ErrorClass::transient()),
    }
}

fn classify_status(response: &Response) -> Option<ErrorClass> {
    let status = response.status();
    let class = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ErrorClass::transient()
    } else if status == StatusCode::REQUEST_TIMEOUT {
        return Some(ErrorClass::transient());
    } else if status.is_client_error() {
        return Some(ErrorClass::ignored());
    } else {
        return None;
    };
    Some(match retry_after(response) {
        Some(hint) => class.with_retry_after(hint),
        None => class,
    })
}

/// The wait a response's `Retry-After` header asks for: a number of seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, and RFC 9110's two obsolete date formats),
/// counted from now (zero for a date already past). `None` without the header or when its
/// value is neither.
///
/// ```
/// use std::time::Duration;
///
/// let response: reqwest::Response = http::Response::builder()
///     .status(503)
///     .header("retry-after", "2")
///     .body("")
///     .unwrap()
///     .into();
/// assert_eq!(warden::reqwest::retry_after(&response), Some(Duration::from_secs(2)));
/// ```
pub fn retry_after(response: &Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// `Retry-After`'s value read at `now`.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Seconds; a count too large for a u64 is "much later" (the policy defers it).
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The methods RFC 9110 defines as idempotent (section 9.2.2): sending one twice has the
/// effect of sending it once, so a failed attempt may be retried (and a slow one hedged).
pub(super) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> Response {
        let mut builder = http::Response::builder().status(status);
        if let Some(value) = retry_after {
            builder = builder.header("retry-after", value);
        }
        builder.body("").unwrap().into()
    }

    #[test]
    fn statuses_are_classified_by_what_they_say_about_the_host() {
        for status in [200, 201, 204, 301, 304] {
            assert_eq!(
                default_classify(&Ok(response(status, None))),
                None,
                "{status}"
            );
        }
        for status in [500, 502, 503, 504, 429, 408] {
            assert_eq!(
                default_classify(&Ok(response(status, None))),
                Some(ErrorClass::transient()),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 409, 422] {
            assert_eq!(
                default_classify(&Ok(response(status, None))),
                Some(ErrorClass::ignored()),
                "{status}"
            );
        }
    }

    #[test]
    fn a_retry_after_hint_rides_on_5xx_and_429_only() {
        let hinted = ErrorClass::transient().with_retry_after(Duration::from_secs(3));
        assert_eq!(
            default_classify(&Ok(response(503, Some("3")))),
            Some(hinted)
        );
        assert_eq!(
            default_classify(&Ok(response(429, Some("3")))),
            Some(hinted)
        );
        assert_eq!(
            default_classify(&Ok(response(404, Some("3")))),
            Some(ErrorClass::ignored())
        );
        assert_eq!(default_classify(&Ok(response(200, Some("3")))), None);
        // Unreadable: no hint, still a failure.
        assert_eq!(
            default_classify(&Ok(response(503, Some("soon")))),
            Some(ErrorClass::transient())
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_the_three_date_formats() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let parse = |value| parse_retry_after(value, now);
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Sunday, 06-Nov-94 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse("Sun Nov  6 08:49:38 1994"),
            Some(Duration::from_secs(1))
        );
        // A date already past asks for no wait.
        assert_eq!(parse("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        for unreadable in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse(unreadable), None, "{unreadable:?}");
        }
    }

    #[test]
    fn the_idempotent_methods_are_rfc_9110s() {
        for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
            assert!(is_idempotent(&method.parse().unwrap()), "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT", "PURGE"] {
            assert!(!is_idempotent(&method.parse().unwrap()), "{method}");
        }
    }
}
