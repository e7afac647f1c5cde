//! JSON shapes of the HTTP API, defined once and shared by the server and the client SDK.

use serde::{Deserialize, Serialize};

// Re-exported where the wire shapes that carry times have always had them.
pub use crate::time::{MAX_RFC3339_MS, parse_time_ms, rfc3339_ms};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// `GET /v1/ids/{kind}` without `count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct IdResponse {
    /// The ID, always a string in v1 (64-bit integers break JavaScript clients).
    pub id: String,
}

impl IdResponse {
    /// The answer carrying `id`.
    pub fn new(id: String) -> Self {
        Self { id }
    }
}

/// `GET /v1/ids/{kind}?count=N`: IDs in generation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct IdsResponse {
    /// `count` IDs, each a string as in [`IdResponse::id`].
    pub ids: Vec<String>,
}

impl IdsResponse {
    /// The answer carrying `ids`.
    pub fn new(ids: Vec<String>) -> Self {
        Self { ids }
    }
}

/// Optional JSON body of `POST /v1/ids/{kind}`; the same fields as the query string, which
/// wins where both give one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct IdRequest {
    /// Batch size, 1 to the server's batch limit; when given, the answer is an
    /// [`IdsResponse`] even for 1, and without it a single [`IdResponse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Counter name (kind `counter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// String length (kind `random`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    /// Alphabet (kind `random`): alphanumeric, hex, base58 or nanoid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabet: Option<String>,
    /// Your own alphabet (kind `random`), winning over `alphabet`: 2 to 95 distinct printable
    /// ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chars: Option<String>,
    /// Type prefix (kind `typeid`): 0 to 63 of `a-z` and `_`, not starting or ending with `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One entry of `GET /v1/kinds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct KindDescription {
    /// The `{kind}` path segment, e.g. `uuid7`.
    pub name: String,
    /// One sentence for humans: layout, ordering, parameters.
    pub description: String,
    /// Whether IDs sort in generation order (as strings of equal length, or numerically for
    /// the integer kinds).
    pub sortable: bool,
    /// Size of one ID in bits; for `random`, the entropy of the default length and alphabet.
    pub bits: u32,
}

impl From<&crate::KindInfo> for KindDescription {
    fn from(info: &crate::KindInfo) -> Self {
        Self {
            name: info.name.to_owned(),
            description: info.description.to_owned(),
            sortable: info.sortable,
            bits: info.bits,
        }
    }
}

/// `GET /v1/kinds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct KindsResponse {
    /// Every kind the server issues, in catalogue order.
    pub kinds: Vec<KindDescription>,
    /// The largest `count` one request may ask for (the server's `IDGEN_MAX_BATCH`), so that
    /// a client can size its chunks; absent from servers that predate the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<u32>,
}

impl KindsResponse {
    /// The catalogue `kinds`, with the server's batch limit.
    pub fn new(kinds: Vec<KindDescription>, max_batch: Option<u32>) -> Self {
        Self { kinds, max_batch }
    }
}

/// `GET /v1/decode/{kind}/{id}`. Which fields are present depends on the kind:
/// snowflake: `timestamp_ms`, `time`, `worker_id`, `sequence`; uuid7, ulid, timestamp:
/// `timestamp_ms`, `time`; uuid: `version`, `variant`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct DecodeResponse {
    /// The ID as given in the path.
    pub id: String,
    /// Milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
    /// RFC 3339, UTC, millisecond precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Snowflake only: the worker that issued the ID, 0 to 1023.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<u16>,
    /// Snowflake only: the ID's position within its worker's millisecond, 0 to 4095.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u16>,
    /// Kind `uuid` only: the version nibble, 0 to 15 (4 for a random UUID, 7 for a uuid7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// Kind `uuid` only: the variant bits as `rfc9562`, `ncs`, `microsoft` or `future`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Kind `typeid` only: the type prefix, empty for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Kind `typeid` only: the UUID it encodes, hyphenated lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Kind `ksuid` only: the 128-bit payload as 32 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl DecodeResponse {
    /// The answer for an ID that carries only its time, `timestamp_ms` (Unix ms).
    pub fn with_time(id: &str, timestamp_ms: u64) -> Self {
        Self {
            id: id.to_owned(),
            timestamp_ms: Some(timestamp_ms),
            time: Some(rfc3339_ms(timestamp_ms)),
            ..Self::default()
        }
    }
}

/// `GET /v1/bounds/{kind}`: the smallest and largest ID of one millisecond (one second for
/// ksuid), so that `WHERE id >= min AND id <= max` selects that time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct BoundsResponse {
    /// The kind, e.g. `snowflake`.
    pub kind: String,
    /// The start of the time the bounds cover, in Unix ms.
    pub timestamp_ms: u64,
    /// The same instant, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The smallest ID of that time (for typeid, with the prefix asked for).
    pub min: String,
    /// The largest ID of that time.
    pub max: String,
}

impl BoundsResponse {
    /// The answer for `kind`'s bounds `min` and `max` of the time starting at `timestamp_ms`.
    pub fn new(kind: &str, timestamp_ms: u64, min: String, max: String) -> Self {
        Self { kind: kind.to_owned(), timestamp_ms, time: rfc3339_ms(timestamp_ms), min, max }
    }
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct HealthResponse {
    /// `ok`, or `unavailable` on a failing `/readyz`.
    pub status: String,
    /// Why `/readyz` fails, one entry per problem; empty when ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl HealthResponse {
    /// `status` with the `reasons` for it (empty when ready).
    pub fn new(status: impl Into<String>, reasons: Vec<String>) -> Self {
        Self { status: status.into(), reasons }
    }
}

/// `DELETE /v1/counters/{name}`: a counter retired on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct RetiredCounter {
    /// The counter's name.
    pub name: String,
    /// Embedded mode: the durable mark kept for the name (at or above every value issued); a
    /// later use of the name continues above it. Redis mode: the last value this node was
    /// handed (the counter itself lives on in Redis). `null`: nothing was issued.
    pub mark: Option<u64>,
}

impl RetiredCounter {
    /// The counter `name`, retired with `mark`.
    pub fn new(name: impl Into<String>, mark: Option<u64>) -> Self {
        Self { name: name.into(), mark }
    }
}

/// `GET /v1/status`: what an operator wants to know about a node at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct StatusResponse {
    /// The server's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// `embedded` or `redis`.
    pub mode: String,
    /// The worker id snowflakes are issued with; `null` while none is held.
    pub worker_id: Option<u16>,
    /// Whole seconds since the server process started.
    pub uptime_seconds: u64,
    /// Whether the node can issue every kind now (what `/readyz` says).
    pub ready: bool,
    /// Why the node is not ready, one entry per problem; omitted when ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Whether the worker id is leased, and whether the lease is held now.
    pub lease: LeaseStatus,
    /// Each durable time mark and how far it runs ahead of the clock.
    pub marks: Vec<MarkStatus>,
    /// Counters this node issues or was handed (at most 100, by name).
    pub counters: Vec<CounterStatus>,
    /// Years of snowflake ID space left for the configured epoch and layout.
    pub snowflake_years_left: f64,
    /// The snowflake layout (`IDGEN_SNOWFLAKE_LAYOUT`): `twitter`, `sonyflake`, `js53` or
    /// `custom:T/W/S/U`; empty from a server before layouts.
    #[serde(default)]
    pub snowflake_layout: String,
    /// The per-client rate limit on the ID routes.
    pub rate_limit: RateLimitStatus,
    /// Whether the back end answers, and how fast.
    pub store: StoreStatus,
    /// Requests answered since the process started, whatever their status.
    pub requests_total: u64,
    /// Of those, the ones refused with 429 (rate limit or daily quota).
    pub rate_limited_total: u64,
    /// Requests refused with 503 because IDs could not be issued.
    pub refused_total: u64,
}

/// The worker id's lease (`leased` false for a fixed worker id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct LeaseStatus {
    /// Whether the worker id is leased from the store (Redis mode) rather than fixed.
    pub leased: bool,
    /// Whether snowflakes may be issued with the worker id now; false while a lease is lost.
    pub valid: bool,
    /// How long the lease stays valid without a renewal; absent for a fixed worker id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
}

impl LeaseStatus {
    /// The lease as the back end reports it.
    pub fn new(leased: bool, valid: bool, remaining_ms: Option<u64>) -> Self {
        Self { leased, valid, remaining_ms }
    }
}

/// One durable time mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct MarkStatus {
    /// The time-ordered kind it belongs to: `snowflake`, `timestamp`, `uuid7`, `ulid` or `ksuid`.
    pub kind: String,
    /// Unix ms: nothing of this kind is issued above it without raising it first.
    pub mark_ms: u64,
    /// The highest time issued (or the floor).
    pub high_water_ms: u64,
    /// `mark_ms` minus the clock, negative when the clock has passed it (an idle kind).
    pub lead_ms: i64,
}

impl MarkStatus {
    /// The mark of `kind`.
    pub fn new(kind: impl Into<String>, mark_ms: u64, high_water_ms: u64, lead_ms: i64) -> Self {
        Self { kind: kind.into(), mark_ms, high_water_ms, lead_ms }
    }
}

/// One counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct CounterStatus {
    /// The counter's name, as requests give it in `name`.
    pub name: String,
    /// The last value this node issued (embedded mode) or was handed by Redis (Redis mode).
    pub last_issued: u64,
    /// Embedded mode: the durable ceiling, up to which values are issued without another
    /// write; absent in Redis mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<u64>,
    /// Redis segment mode: values this node holds but has not handed out yet; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffered: Option<u64>,
}

impl CounterStatus {
    /// The counter `name` and what this node knows of it.
    pub fn new(
        name: impl Into<String>,
        last_issued: u64,
        ceiling: Option<u64>,
        buffered: Option<u64>,
    ) -> Self {
        Self { name: name.into(), last_issued, ceiling, buffered }
    }
}

/// The rate limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct RateLimitStatus {
    /// Whether the ID routes are rate limited at all (`per_second` above 0).
    pub enabled: bool,
    /// Requests per second each client IP may send over time; 0 when off.
    pub per_second: u32,
    /// How many requests a client may send at once (the bucket size).
    pub burst: u32,
    /// Shared by every node through the store.
    pub shared: bool,
}

impl RateLimitStatus {
    /// The limit as configured (`enabled` when `per_second` is above 0).
    pub fn new(per_second: u32, burst: u32, shared: bool) -> Self {
        Self { enabled: per_second > 0, per_second, burst, shared }
    }
}

/// The back end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct StoreStatus {
    /// Whether the store answered its readiness check just now.
    pub up: bool,
    /// How long its readiness check took just now.
    pub check_ms: f64,
    /// What an operator should know about the store, e.g. how it keeps what it acknowledges;
    /// absent when there is nothing to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl StoreStatus {
    /// The store's answer to its readiness check.
    pub fn new(up: bool, check_ms: f64, detail: Option<String>) -> Self {
        Self { up, check_ms, detail }
    }
}

/// Stable, machine-readable error codes. Clients match on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// `count` is not an integer from 1 to the batch limit (400).
    InvalidCount,
    /// `length` is not an integer from 1 to 1024 (400).
    InvalidLength,
    /// `alphabet` is not alphanumeric, hex, base58 or nanoid, or `chars` is not 2 to 95
    /// distinct printable ASCII characters (400).
    InvalidAlphabet,
    /// The counter name is not 1 to 64 characters from `A-Z a-z 0-9 _ . -` (400).
    InvalidCounterName,
    /// The TypeID prefix is not 0 to 63 of `a-z` and `_`, or starts or ends with `_` (400).
    InvalidPrefix,
    /// A new counter name would pass the server's limit on distinct counters (400).
    TooManyCounters,
    /// The ID given to a decode route is not a valid ID of that kind, is not its canonical text
    /// under `strict=true`, or holds a time past the year 9999 (400).
    InvalidId,
    /// A decode route's `strict` is neither `true` nor `false` (400).
    InvalidStrict,
    /// `time` is missing, is neither Unix ms nor an RFC 3339 date-time, or is a time the kind
    /// cannot hold (400).
    InvalidTime,
    /// Bounds were asked of a kind whose IDs are not ordered by time (400).
    NotTimeOrdered,
    /// The request body, or another part of the request, cannot be read (400; 413 to 415 for
    /// a body or URI too large or an unsupported content type).
    InvalidBody,
    /// The `{kind}` path segment names no kind the server issues (404).
    UnknownKind,
    /// The kind's IDs carry nothing to decode, e.g. `counter` and `random` (400).
    NotDecodable,
    /// No such route, or no counter of that name on this node (404).
    NotFound,
    /// The route exists but not for this method; `Allow` lists those it takes (405).
    MethodNotAllowed,
    /// The server cannot answer in any media type `Accept` asks for (406).
    NotAcceptable,
    /// Over the per-client rate limit or the API key's daily quota; see `Retry-After` (429).
    RateLimited,
    /// IDs cannot be issued right now, e.g. the clock stepped back or the store is
    /// unreachable; see `Retry-After` (503).
    Unavailable,
    /// The server's store lost data it had acknowledged; an operator must recover it.
    StoreRegressed,
    /// No API key, or one the server does not know (401).
    Unauthorized,
    /// The API key may not do this (403).
    Forbidden,
    /// Not HTTP the server can read: a bad request line, header or URI (400).
    InvalidRequest,
    /// The request did not arrive in time (408).
    RequestTimeout,
    /// The request's headers are too many or too large (431).
    HeadersTooLarge,
    /// A bug or an environment failure on the server; its log has the details (500).
    Internal,
    /// A code this version of the SDK does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCount => "invalid_count",
            ErrorCode::InvalidLength => "invalid_length",
            ErrorCode::InvalidAlphabet => "invalid_alphabet",
            ErrorCode::InvalidCounterName => "invalid_counter_name",
            ErrorCode::InvalidPrefix => "invalid_prefix",
            ErrorCode::TooManyCounters => "too_many_counters",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::InvalidStrict => "invalid_strict",
            ErrorCode::InvalidTime => "invalid_time",
            ErrorCode::NotTimeOrdered => "not_time_ordered",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnknownKind => "unknown_kind",
            ErrorCode::NotDecodable => "not_decodable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotAcceptable => "not_acceptable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::StoreRegressed => "store_regressed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub struct ErrorDetail {
    /// What clients match on; the message may change, the code does not.
    pub code: ErrorCode,
    /// A sentence a user can act on; never an internal detail.
    pub message: String,
}

impl ErrorBody {
    /// The body for `code`, with `message` for the user to read.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a newer server may add (a field, a kind, an error code) an older client reads.
    #[test]
    fn answers_of_a_newer_server_still_parse() {
        let kinds: KindsResponse = serde_json::from_str(
            r#"{"kinds":[{"name":"snowflake53","description":"new","sortable":true,"bits":53,
                "aliases":["js"]}],"max_batch":500,"regions":["eu"]}"#,
        )
        .unwrap();
        assert_eq!((kinds.kinds[0].name.as_str(), kinds.max_batch), ("snowflake53", Some(500)));
        let old: KindsResponse = serde_json::from_str(r#"{"kinds":[]}"#).unwrap();
        assert_eq!(old.max_batch, None, "a server before max_batch");
        let ids: IdsResponse = serde_json::from_str(r#"{"ids":["1"],"node":"a"}"#).unwrap();
        assert_eq!(ids.ids, ["1"]);
        let decoded: DecodeResponse =
            serde_json::from_str(r#"{"id":"x","prefix":"user","payload":"00"}"#).unwrap();
        assert_eq!(decoded.id, "x");
        let health: HealthResponse =
            serde_json::from_str(r#"{"status":"ok","checks":{"store":"up"}}"#).unwrap();
        assert_eq!(health, HealthResponse::new("ok", Vec::new()));
    }

    #[test]
    fn error_body_shape() {
        let body = ErrorBody::new(ErrorCode::InvalidCount, "count must be 1..=10");
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"error":{"code":"invalid_count","message":"count must be 1..=10"}}"#);
        let unknown: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"x"}}"#).unwrap();
        assert_eq!(unknown.error.code, ErrorCode::Unknown);
    }
}
