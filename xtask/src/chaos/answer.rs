//! What the chaos load asks for and how it reads the answer: the kinds under test, the scope
//! in which each kind's IDs must be unique, the request path, and the classification of a
//! response as issued IDs, a well-formed refusal (JSON 503/429 with `Retry-After`) or a bad
//! answer (anything else, which fails the suite).

use super::http::Response;
use super::json::{self, Value};

/// The kinds the load issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Counter,
    Snowflake,
    Timestamp,
    Uuid7,
    Ulid,
}

impl Kind {
    pub const ALL: [Kind; 5] =
        [Kind::Counter, Kind::Snowflake, Kind::Timestamp, Kind::Uuid7, Kind::Ulid];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Snowflake => "snowflake",
            Kind::Timestamp => "timestamp",
            Kind::Uuid7 => "uuid7",
            Kind::Ulid => "ulid",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the kind's uniqueness is bounded by a store (counters, the shared timestamp
    /// sequence, snowflake worker ids); uuid7 and ULID must be unique everywhere.
    pub fn store_scoped(self) -> bool {
        matches!(self, Kind::Counter | Kind::Snowflake | Kind::Timestamp)
    }

    /// `GET` path for `count` IDs (`None`: the single-ID form without `count`).
    pub fn path(self, count: Option<u32>, counter_name: &str) -> String {
        let mut path = format!("/v1/ids/{}", self.name());
        let mut separator = '?';
        if let Some(count) = count {
            path.push_str(&format!("?count={count}"));
            separator = '&';
        }
        if self == Kind::Counter {
            path.push_str(&format!("{separator}name={counter_name}"));
        }
        path
    }

    /// The ID's value as a number (so that equal IDs compare equal however they are written).
    pub fn parse_id(self, text: &str) -> Option<u128> {
        match self {
            Kind::Counter | Kind::Snowflake | Kind::Timestamp => decimal(text),
            Kind::Uuid7 => uuid7(text),
            Kind::Ulid => ulid(text),
        }
    }
}

/// Where a kind's IDs must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every Redis-mode node of the one Redis (the three nodes and the takeover node).
    Redis,
    /// The embedded node alone.
    Embedded,
    /// Every node (uuid7, ULID).
    All,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Redis => "Redis nodes",
            Scope::Embedded => "embedded node",
            Scope::All => "all nodes",
        }
    }

    /// The scope of `kind`'s IDs issued by a node of `store` scope.
    pub fn of(kind: Kind, store: Scope) -> Scope {
        if kind.store_scoped() { store } else { Scope::All }
    }
}

fn decimal(text: &str) -> Option<u128> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().map(u128::from)
}

fn uuid7(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&at| bytes[at] != b'-') {
        return None;
    }
    let hex: String = text.chars().filter(|character| *character != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let value = u128::from_str_radix(&hex, 16).ok()?;
    // Version nibble 7.
    ((value >> 76) & 0xf == 7).then_some(value)
}

fn ulid(text: &str) -> Option<u128> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if text.len() != 26 || text.as_bytes()[0] > b'7' {
        return None;
    }
    text.bytes().try_fold(0u128, |value, byte| {
        let digit = ALPHABET.iter().position(|&symbol| symbol == byte.to_ascii_uppercase())?;
        Some((value << 5) | digit as u128)
    })
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// 200 with the IDs asked for.
    Issued,
    /// JSON 503 `unavailable` with `Retry-After`.
    Unavailable,
    /// JSON 503 `store_regressed` with `Retry-After`.
    Regressed,
    /// JSON 429 with `Retry-After`.
    Limited,
    /// Anything else the server answered: the suite fails.
    Bad,
    /// No answer: refused, reset or timed out (a node that is down).
    NoAnswer,
}

impl Outcome {
    pub fn index(self) -> usize {
        self as usize
    }

    /// An HTTP answer that was not 200.
    pub fn is_refusal(self) -> bool {
        matches!(self, Outcome::Unavailable | Outcome::Regressed | Outcome::Limited | Outcome::Bad)
    }
}

/// A response, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Issued(Vec<u128>),
    Refused(Outcome),
    /// Why the answer breaks the contract.
    Bad(String),
}

/// Reads `response` to a request for `count` IDs of `kind` (`None`: one, without `count`).
pub fn classify(kind: Kind, count: Option<u32>, response: &Response) -> Answer {
    let body = json::parse(&response.body);
    let snippet = || String::from_utf8_lossy(&response.body).chars().take(160).collect::<String>();
    match response.status {
        200 => match body.map(|value| issued(kind, count, &value)) {
            Ok(Ok(ids)) => Answer::Issued(ids),
            Ok(Err(problem)) => Answer::Bad(format!("200 {problem}: {}", snippet())),
            Err(problem) => {
                Answer::Bad(format!("200 with a non-JSON body ({problem}): {}", snippet()))
            }
        },
        status @ (503 | 429) => {
            let code = body.as_ref().ok().and_then(|value| {
                let error = value.get("error")?;
                error.get("message")?.as_str()?;
                error.get("code")?.as_str().map(str::to_owned)
            });
            let retry_after =
                response.header("retry-after").and_then(|value| value.parse::<u64>().ok());
            match (status, code.as_deref(), retry_after) {
                (_, None, _) => {
                    Answer::Bad(format!("{status} without a JSON error body: {}", snippet()))
                }
                (_, Some(_), None) => {
                    Answer::Bad(format!("{status} without a numeric Retry-After"))
                }
                (503, Some("unavailable"), Some(_)) => Answer::Refused(Outcome::Unavailable),
                (503, Some("store_regressed"), Some(_)) => Answer::Refused(Outcome::Regressed),
                (429, Some("rate_limited"), Some(_)) => Answer::Refused(Outcome::Limited),
                (_, Some(code), Some(_)) => {
                    Answer::Bad(format!("{status} with unexpected code {code:?}"))
                }
            }
        }
        status => Answer::Bad(format!("status {status}: {}", snippet())),
    }
}

fn issued(kind: Kind, count: Option<u32>, value: &Value) -> Result<Vec<u128>, String> {
    let texts: Vec<&Value> = match (count, value) {
        (None, _) => vec![value.get("id").ok_or("without \"id\"")?],
        (Some(_), _) => match value.get("ids") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => return Err("without an \"ids\" array".to_owned()),
        },
    };
    let wanted = count.unwrap_or(1) as usize;
    if texts.len() != wanted {
        return Err(format!("with {} IDs instead of {wanted}", texts.len()));
    }
    texts
        .into_iter()
        .map(|text| {
            let text = text.as_str().ok_or("with an ID that is not a string")?;
            kind.parse_id(text).ok_or_else(|| format!("with a malformed {} {text:?}", kind.name()))
        })
        .collect()
}

/// The worker id inside a snowflake (41 bits of time, 10 of worker id, 12 of sequence).
pub fn snowflake_worker(id: u128) -> u16 {
    ((id >> 12) & 0x3ff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn builds_paths_and_reads_every_kind() {
        assert_eq!(Kind::Counter.path(Some(10), "c"), "/v1/ids/counter?count=10&name=c");
        assert_eq!(Kind::Counter.path(None, "c"), "/v1/ids/counter?name=c");
        assert_eq!(Kind::Ulid.path(None, "c"), "/v1/ids/ulid");
        assert_eq!(Kind::Snowflake.parse_id("915792907170635776"), Some(915792907170635776));
        assert_eq!(snowflake_worker(915792907170635776), 934);
        assert!(Kind::Counter.parse_id("-1").is_none() && Kind::Counter.parse_id("").is_none());
        let uuid = Kind::Uuid7.parse_id("01a2349a-1840-7071-aac9-29dd6c78bdcd").unwrap();
        assert_eq!(uuid, 0x01a2349a_1840_7071_aac9_29dd6c78bdcd);
        assert!(Kind::Uuid7.parse_id("01a2349a-1840-4071-aac9-29dd6c78bdcd").is_none(), "v4");
        let a = Kind::Ulid.parse_id("01M8T9M62DRC4PHPQE8TZDCZCG").unwrap();
        let b = Kind::Ulid.parse_id("01m8t9m62drc4phpqe8tzdczch").unwrap();
        assert_eq!(b, a + 1);
        assert!(Kind::Ulid.parse_id("81M8T9M62DRC4PHPQE8TZDCZCG").is_none(), "overflows 128 bits");
        assert!(Kind::Ulid.parse_id("01M8T9M62DRC4PHPQE8TZDCZCU").is_none(), "U is not Crockford");
        assert_eq!(Scope::of(Kind::Ulid, Scope::Redis), Scope::All);
        assert_eq!(Scope::of(Kind::Counter, Scope::Embedded), Scope::Embedded);
    }

    #[test]
    fn sorts_answers_into_ids_refusals_and_bad_ones() {
        let ok = response(200, &[], r#"{"ids":["1","2"]}"#);
        assert_eq!(classify(Kind::Counter, Some(2), &ok), Answer::Issued(vec![1, 2]));
        assert!(matches!(classify(Kind::Counter, Some(3), &ok), Answer::Bad(_)), "short batch");
        let single = response(200, &[], r#"{"id":"7"}"#);
        assert_eq!(classify(Kind::Timestamp, None, &single), Answer::Issued(vec![7]));
        let refusal = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        let regressed = response(503, &[("retry-after", "60")], &refusal("store_regressed"));
        assert_eq!(classify(Kind::Counter, None, &regressed), Answer::Refused(Outcome::Regressed));
        let down = response(503, &[("retry-after", "1")], &refusal("unavailable"));
        assert_eq!(classify(Kind::Counter, None, &down), Answer::Refused(Outcome::Unavailable));
        let limited = response(429, &[("retry-after", "1")], &refusal("rate_limited"));
        assert_eq!(classify(Kind::Ulid, None, &limited), Answer::Refused(Outcome::Limited));
        for bad in [
            response(503, &[], &refusal("unavailable")),
            response(503, &[("retry-after", "1")], "<html>busy</html>"),
            response(503, &[("retry-after", "1")], &refusal("internal")),
            response(500, &[], &refusal("internal")),
            response(200, &[], "not json"),
            response(200, &[], r#"{"id":"x"}"#),
        ] {
            assert!(matches!(classify(Kind::Counter, None, &bad), Answer::Bad(_)), "{bad:?}");
        }
    }
}
