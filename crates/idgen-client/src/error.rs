//! The SDK's error type, and the one place that turns an HTTP error response into it.

use std::time::{Duration, SystemTime};

use idgen_core::wire::{ErrorBody, ErrorCode, HealthResponse};
use thiserror::Error;

/// Everything a [`Client`](crate::Client) call can fail with.
///
/// Match on [`Error::Api`]'s `code` to react to a specific server answer; codes are stable
/// (see [`ErrorCode`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status. `code` and `message` come from its
    /// `{"error": {"code", "message"}}` body; when the body has another shape (a proxy's HTML
    /// page, a bare `/readyz` answer) `code` is derived from the status and `message` from the
    /// body text.
    #[error("server error ({status} {code}): {message}{}", RetryHint(*retry_after))]
    Api {
        /// The HTTP status, e.g. 400.
        status: u16,
        /// The server's machine-readable code; [`ErrorCode::Unknown`] for a code this SDK
        /// does not know.
        code: ErrorCode,
        /// A sentence meant for the user.
        message: String,
        /// The `Retry-After` header (429 and 503 answers): how long the server asked to
        /// wait, from its delay in seconds or from its date.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, DNS failure, timeout, connection lost mid-response.
    /// With several endpoints, the error of the last one tried.
    #[error("cannot reach {url}: {reason}")]
    Transport {
        /// The server's origin, e.g. `http://127.0.0.1:8080`.
        url: String,
        /// The root cause in a few words, e.g. `connection refused`.
        reason: String,
        /// The underlying error, for its full chain.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered 2xx with something that is not what the API promises (not JSON,
    /// the wrong number of IDs, an ID that does not parse as its kind).
    #[error("invalid response from server: {message}")]
    InvalidResponse {
        /// What was wrong.
        message: String,
    },
    /// The base URL given to [`Client::new`](crate::Client::new) or
    /// [`Client::builder`](crate::Client::builder) cannot be used.
    #[error("invalid server url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The key given to [`ClientBuilder::api_key`](crate::ClientBuilder::api_key) cannot be
    /// sent: it is empty, or holds characters other than visible ASCII. Neither the message
    /// nor `Debug` holds the key.
    #[error("invalid API key: {reason}")]
    InvalidApiKey {
        /// Why it was refused.
        reason: String,
    },
    /// The CA certificates given to [`ClientBuilder::ca_file`](crate::ClientBuilder::ca_file)
    /// or [`ClientBuilder::ca_pem`](crate::ClientBuilder::ca_pem) cannot be used: the file
    /// cannot be read, holds no PEM certificate, or one that is not a valid certificate.
    #[error("cannot use CA certificates from {from}: {reason}")]
    InvalidCertificate {
        /// Where they came from: the file's path in backquotes, `PEM given to ca_pem`, or
        /// `the system's trust store` when no CA was given and the system's cannot be used.
        from: String,
        /// Why they were refused.
        reason: String,
    },
    /// The [`blocking::Client`](crate::blocking::Client) could not start the thread that runs
    /// its requests (the process is out of threads or memory).
    #[error("cannot start the blocking client: {reason}")]
    Runtime {
        /// The operating system's reason.
        reason: String,
    },
}

impl Error {
    /// The server's error code, for [`Error::Api`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status, for [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the request itself was at fault (a 4xx answer, among them 401 `unauthorized`
    /// and 403 `forbidden`; or an unusable URL, API key or CA certificate), as opposed to the
    /// server or the network. Retrying such a request unchanged will fail again, except after
    /// a 429.
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::Api { status, .. } => (400..500).contains(status),
            Error::InvalidUrl { .. }
            | Error::InvalidApiKey { .. }
            | Error::InvalidCertificate { .. } => true,
            Error::Transport { .. } | Error::InvalidResponse { .. } | Error::Runtime { .. } => {
                false
            }
        }
    }
}

/// Renders `; retry after N s` when the server sent `Retry-After`, rounded up: a date gives
/// a fraction of a second, and "0 s" would say to retry now.
struct RetryHint(Option<Duration>);

impl std::fmt::Display for RetryHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(delay) => {
                let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
                write!(f, "; retry after {seconds} s")
            }
            None => Ok(()),
        }
    }
}

/// Longest piece of a non-JSON error body quoted in a message.
const MAX_QUOTED_BODY: usize = 200;

/// Builds [`Error::Api`] from an error response's status, `Retry-After` and body.
pub(crate) fn api_error(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Error {
    if let Ok(ErrorBody { error, .. }) = serde_json::from_slice::<ErrorBody>(body) {
        return Error::Api { status, code: error.code, message: error.message, retry_after };
    }
    let code = code_for_status(status);
    // `/readyz` answers 503 with its own shape: {"status": "unavailable", "reasons": [...]}.
    if let Ok(health) = serde_json::from_slice::<HealthResponse>(body)
        && !health.reasons.is_empty()
    {
        return Error::Api { status, code, message: health.reasons.join("; "), retry_after };
    }
    let message = message_from_text(status, body);
    Error::Api { status, code, message, retry_after }
}

/// The code a status implies when the body does not name one.
fn code_for_status(status: u16) -> ErrorCode {
    match status {
        // A proxy in front of the server may answer these itself, without our body.
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        406 => ErrorCode::NotAcceptable,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        500..=599 => ErrorCode::Internal,
        _ => ErrorCode::Unknown,
    }
}

/// The first non-empty line of a body that is not JSON we know, shortened; or the status's
/// reason phrase when there is no such line.
fn message_from_text(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.lines().map(str::trim).find(|line| !line.is_empty()) {
        Some(line) if line.chars().count() > MAX_QUOTED_BODY => {
            let cut: String = line.chars().take(MAX_QUOTED_BODY).collect();
            format!("{cut}...")
        }
        Some(line) => line.to_owned(),
        None => reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .map_or_else(|| "no error message".to_owned(), str::to_lowercase),
    }
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date, which becomes the
/// time from now until then (zero once it has passed). idgen sends seconds; a proxy or load
/// balancer in front of it may send a date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The root cause of a transport failure in a few words (`connection refused`, `timed out`),
/// rather than reqwest's `error sending request for url (...)`.
pub(crate) fn transport_reason(error: &reqwest::Error, timeout: Option<Duration>) -> String {
    if error.is_timeout() {
        return match timeout {
            Some(timeout) => format!("timed out after {}", human_duration(timeout)),
            None => "timed out".to_owned(),
        };
    }
    // The deepest io::Error says it best; otherwise the innermost cause.
    let mut innermost: &dyn std::error::Error = error;
    let mut deepest_io: Option<&std::io::Error> = None;
    while let Some(source) = innermost.source() {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            deepest_io = Some(io);
        }
        innermost = source;
    }
    if let Some(io) = deepest_io {
        return describe_io(io);
    }
    innermost.to_string()
}

pub(crate) fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        ErrorKind::TimedOut => "timed out".to_owned(),
        ErrorKind::UnexpectedEof => "connection closed before the response was complete".to_owned(),
        _ => {
            // Drop the " (os error N)" suffix and start lowercase, like our other messages.
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "i/o error".to_owned(),
            }
        }
    }
}

fn human_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, code: ErrorCode, message: &str) {
        match api_error(status, None, body.as_bytes()) {
            Error::Api { status: got_status, code: got_code, message: got_message, .. } => {
                assert_eq!(got_status, status, "status for {body:?}");
                assert_eq!(got_code, code, "code for {body:?}");
                assert_eq!(got_message, message, "message for {body:?}");
            }
            other => panic!("expected Error::Api for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn decodes_the_error_body() {
        check(
            400,
            r#"{"error":{"code":"invalid_length","message":"length must be an integer from 1 to 1024"}}"#,
            ErrorCode::InvalidLength,
            "length must be an integer from 1 to 1024",
        );
        check(
            404,
            r#"{"error":{"code":"unknown_kind","message":"no such kind"}}"#,
            ErrorCode::UnknownKind,
            "no such kind",
        );
        check(
            401,
            r#"{"error":{"code":"unauthorized","message":"an API key is required"}}"#,
            ErrorCode::Unauthorized,
            "an API key is required",
        );
        check(
            403,
            r#"{"error":{"code":"forbidden","message":"this API key may not issue ulid ids"}}"#,
            ErrorCode::Forbidden,
            "this API key may not issue ulid ids",
        );
        // A newer server's code is kept as Unknown, its message intact.
        check(
            400,
            r#"{"error":{"code":"brand_new","message":"something new"}}"#,
            ErrorCode::Unknown,
            "something new",
        );
    }

    #[test]
    fn falls_back_when_the_body_has_another_shape() {
        check(
            503,
            r#"{"status":"unavailable","reasons":["data dir is not writable","clock behind"]}"#,
            ErrorCode::Unavailable,
            "data dir is not writable; clock behind",
        );
        check(502, "<html>\n<h1>Bad gateway</h1>\n</html>", ErrorCode::Internal, "<html>");
        check(404, "", ErrorCode::NotFound, "not found");
        check(429, "  \n slow down \n", ErrorCode::RateLimited, "slow down");
        check(418, "", ErrorCode::Unknown, "i'm a teapot");
        check(401, "", ErrorCode::Unauthorized, "unauthorized");
        check(403, "<h1>Forbidden</h1>", ErrorCode::Forbidden, "<h1>Forbidden</h1>");
        check(
            400,
            r#"{"error":"just a string"}"#,
            ErrorCode::Unknown,
            r#"{"error":"just a string"}"#,
        );
        check(599, "", ErrorCode::Internal, "no error message");
        let long = "x".repeat(1000);
        let expected = format!("{}...", "x".repeat(MAX_QUOTED_BODY));
        check(500, &long, ErrorCode::Internal, &expected);
    }

    #[test]
    fn display_is_one_line_with_status_code_and_message() {
        let error = api_error(
            400,
            None,
            br#"{"error":{"code":"invalid_length","message":"length must be an integer from 1 to 1024"}}"#,
        );
        assert_eq!(
            error.to_string(),
            "server error (400 invalid_length): length must be an integer from 1 to 1024"
        );
        assert_eq!(error.code(), Some(ErrorCode::InvalidLength));
        assert_eq!(error.status(), Some(400));
        assert!(error.is_client_error());

        let limited = api_error(
            429,
            parse_retry_after("2"),
            br#"{"error":{"code":"rate_limited","message":"too many requests"}}"#,
        );
        assert_eq!(
            limited.to_string(),
            "server error (429 rate_limited): too many requests; retry after 2 s"
        );
        match limited {
            Error::Api { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(2))),
            other => panic!("expected Error::Api, got {other:?}"),
        }
    }

    #[test]
    fn parses_retry_after_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);

        // 2015-10-21T07:28:00Z, and half a second before it.
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let now = date - Duration::from_millis(120_500);
        let check = |value: &str, expected: Option<Duration>| {
            assert_eq!(parse_retry_after_at(value, now), expected, "{value:?}");
        };
        let ahead = Some(Duration::from_millis(120_500));
        check("Wed, 21 Oct 2015 07:28:00 GMT", ahead);
        check(" Wed, 21 Oct 2015 07:28:00 GMT ", ahead);
        // The two obsolete forms a recipient must still accept.
        check("Wednesday, 21-Oct-15 07:28:00 GMT", ahead);
        check("Wed Oct 21 07:28:00 2015", ahead);
        // A date already past: retry now.
        check("Wed, 21 Oct 2015 07:20:00 GMT", Some(Duration::ZERO));
        check("Wed, 32 Oct 2015 07:28:00 GMT", None);
        check("Wed, 21 Oct 2015 07:28:00 CET", None);
        // Seconds do not depend on the clock.
        check("120", Some(Duration::from_secs(120)));
    }

    #[test]
    fn the_retry_hint_rounds_up() {
        let hint = |delay: Option<Duration>| RetryHint(delay).to_string();
        assert_eq!(hint(None), "");
        assert_eq!(hint(Some(Duration::from_secs(2))), "; retry after 2 s");
        assert_eq!(hint(Some(Duration::from_millis(2001))), "; retry after 3 s");
        assert_eq!(hint(Some(Duration::from_millis(300))), "; retry after 1 s");
        assert_eq!(hint(Some(Duration::ZERO)), "; retry after 0 s");
    }

    #[test]
    fn describes_io_errors_briefly() {
        use std::io::{Error as IoError, ErrorKind};
        assert_eq!(describe_io(&IoError::from(ErrorKind::ConnectionRefused)), "connection refused");
        assert_eq!(
            describe_io(&IoError::from_raw_os_error(113)),
            describe_io(&IoError::from_raw_os_error(113)).to_lowercase()
        );
        assert!(!describe_io(&IoError::from_raw_os_error(113)).contains("os error"));
        assert_eq!(human_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500 ms");
    }
}
