//! `GET|POST /v1/ids/{kind}`: one ID (`{"id"}`) or a batch (`{"ids"}`), as JSON or as plain
//! text (one ID per line).
//!
//! Parameters come from the query string and, for POST, from an optional JSON body
//! ([`IdRequest`]); the query string wins. Unknown parameters are ignored, and a parameter is
//! only checked for the kinds that use it (`name` for counter, `length` and `alphabet` for
//! random). The response is written straight into one buffer: IDs never need JSON escaping
//! (hex, Crockford base32, digits and the random alphabets are all plain ASCII).

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use idgen_core::counter::CounterName;
use idgen_core::random::{Alphabet, Length};
use idgen_core::typeid::Prefix;
use idgen_core::wire::{ErrorBody, IdRequest, IdResponse, IdsResponse};
use idgen_core::{Kind, Param, ParamError};

use super::{gzip, id_response};
use crate::auth::Key;
use crate::error::ApiError;
use crate::issue::{AnyNewCounter, IdSink, Params};
use crate::state::AppState;

/// `GET /v1/ids/{kind}`
#[utoipa::path(
    get,
    path = "/v1/ids/{kind}",
    tag = "ids",
    summary = "Issue one ID, or a batch with count",
    params(
        ("kind" = String, Path, description = "uuid, uuid7, ulid, snowflake, timestamp, counter or random"),
        ("count" = Option<u32>, Query, description = "Batch size, 1 to IDGEN_MAX_BATCH; the answer is then {\"ids\": [...]}"),
        ("name" = Option<String>, Query, description = "Counter name, [A-Za-z0-9_.-]{1,64} (kind counter; default `default`)"),
        ("length" = Option<u32>, Query, description = "String length, 1 to 1024 (kind random; default 21)"),
        ("alphabet" = Option<String>, Query, description = "alphanumeric (default), hex, base58 or nanoid (kind random)"),
        ("chars" = Option<String>, Query, description = "Your own alphabet, 2 to 95 distinct printable ASCII characters, percent-encoded; wins over alphabet (kind random)"),
    ),
    responses(
        (status = 200, description = "One ID (without count) or a batch in generation order; with `Accept: text/plain`, one ID per line",
            content((IdResponse = "application/json"), (IdsResponse = "application/json"), (String = "text/plain")),
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Invalid count, name, length, alphabet, chars or prefix", body = ErrorBody),
        (status = 404, description = "Unknown kind", body = ErrorBody),
        (status = 406, description = "Accept names neither JSON nor plain text", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue this kind now; see Retry-After", body = ErrorBody),
    )
)]
pub async fn get_ids(
    state: &AppState,
    request: &HttpRequest,
    kind: &str,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    issue(kind, state, request, None, caller).await
}

/// `POST /v1/ids/{kind}`
#[utoipa::path(
    post,
    path = "/v1/ids/{kind}",
    tag = "ids",
    summary = "Issue IDs; parameters may also come in a JSON body",
    params(
        ("kind" = String, Path, description = "uuid, uuid7, ulid, snowflake, timestamp, counter or random"),
        ("count" = Option<u32>, Query, description = "Batch size; wins over the body's count"),
        ("name" = Option<String>, Query, description = "Counter name; wins over the body's name"),
        ("length" = Option<u32>, Query, description = "String length; wins over the body's length"),
        ("alphabet" = Option<String>, Query, description = "Alphabet; wins over the body's alphabet"),
        ("chars" = Option<String>, Query, description = "Your own alphabet; wins over alphabet and the body's"),
    ),
    request_body(content = Option<IdRequest>, description = "Optional; the same fields as the query string", content_type = "application/json"),
    responses(
        (status = 200, description = "As for GET",
            content((IdResponse = "application/json"), (IdsResponse = "application/json"), (String = "text/plain")),
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Invalid parameter or body", body = ErrorBody),
        (status = 404, description = "Unknown kind", body = ErrorBody),
        (status = 406, description = "Accept names neither JSON nor plain text", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Cannot issue this kind now; see Retry-After", body = ErrorBody),
    )
)]
pub async fn post_ids(
    state: &AppState,
    request: &HttpRequest,
    kind: &str,
    body: &[u8],
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    issue(kind, state, request, Some(body), caller).await
}

/// Issues the kind named `kind` as the request asks; `body` is a POST's; `caller` the API key
/// (when keys are configured), whose scopes and limits apply.
pub(super) async fn issue(
    kind: &str,
    state: &AppState,
    request: &HttpRequest,
    body: Option<&[u8]>,
    caller: Option<&Key>,
) -> Result<HttpResponse, ApiError> {
    let kind = Kind::from_name(kind).ok_or(ApiError::UnknownKind)?;
    let (count, mut out, params) = prepare(kind, request, body, state.limits().max_batch)?;
    match caller {
        None => state.issuer().issue_for(kind, &params, count, &mut out, AnyNewCounter).await?,
        // Boxed: the keyed path's extra state stays out of every open request's future.
        Some(key) => {
            Box::pin(async {
                let keyed =
                    crate::auth::permit(state, key, kind, &params.name, count as u64).await?;
                state.issuer().issue_for(kind, &params, count, &mut out, keyed).await?;
                key.usage.add(count as u64);
                Ok::<(), ApiError>(())
            })
            .await?
        }
    }
    state.observer().metrics.issued(kind, count as u64);
    Ok(finish(out, request))
}

/// The validated request and the writer of its answer. A function of its own, not inline in
/// [`issue`]: the query, the body and the spec it reads would otherwise all take room in
/// every request's future, though none lives across an `.await`.
fn prepare(
    kind: Kind,
    request: &HttpRequest,
    body: Option<&[u8]>,
    max_batch: u32,
) -> Result<(usize, IdWriter, Params), ApiError> {
    let format = Format::negotiate(request.headers().get(header::ACCEPT))?;
    let body = body.map(parse_body).transpose()?.flatten();
    let spec = Spec::resolve(kind, parse_query(request.query_string()), body, max_batch)?;
    let count = spec.count.unwrap_or(1) as usize;
    let out = IdWriter::new(format, spec.count.is_some(), count, kind);
    let params = Params {
        name: spec.name.unwrap_or_default(),
        length: spec.length,
        alphabet: spec.alphabet,
        prefix: spec.prefix,
    };
    Ok((count, out, params))
}

/// The answer: a batch gzipped when the client accepts it.
fn finish(out: IdWriter, request: &HttpRequest) -> HttpResponse {
    if !out.batch {
        return out.finish(None);
    }
    out.finish(Some(gzip::accepted(request.headers().get(header::ACCEPT_ENCODING))))
}

/// `POST` bodies: empty means "no body"; anything else must be an [`IdRequest`] object. Only
/// zero bytes are "no body": whitespace alone is not JSON, and the document says a body is an
/// object (schemathesis sends `' '` and expects it refused).
fn parse_body(bytes: &[u8]) -> Result<Option<IdRequest>, ApiError> {
    let invalid = || {
        ApiError::InvalidBody(
            "the body must be a JSON object with optional fields count (integer), name, length (integer), alphabet, chars and prefix"
                .to_owned(),
        )
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    // Read as a JSON value first: JSON Schema's `integer` includes `5.0`, which serde does not
    // read into an integer field, and only an object is a request (serde would also read a
    // struct from an array). Unknown fields are ignored; null is "not given".
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| invalid())?;
    let object = value.as_object().ok_or_else(invalid)?;
    let field = |name: &str| object.get(name).filter(|value| !value.is_null());
    let integer = |name: &str| -> Result<Option<u32>, ApiError> {
        let Some(value) = field(name) else { return Ok(None) };
        // A whole number that fits a u32 (what serde read before; 5.0 is one too).
        let number = value.as_f64().filter(|number| number.fract() == 0.0).ok_or_else(invalid)?;
        if !(0.0..=f64::from(u32::MAX)).contains(&number) {
            return Err(invalid());
        }
        Ok(Some(number as u32))
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        field(name).map(|value| value.as_str().map(str::to_owned).ok_or_else(invalid)).transpose()
    };
    Ok(Some(IdRequest {
        count: integer("count")?,
        name: text("name")?,
        length: integer("length")?,
        alphabet: text("alphabet")?,
        chars: text("chars")?,
        prefix: text("prefix")?,
    }))
}

/// The query parameters, borrowed from the query string (first occurrence wins).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QueryParams<'a> {
    pub count: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub length: Option<Cow<'a, str>>,
    pub alphabet: Option<Cow<'a, str>>,
    pub chars: Option<Cow<'a, str>>,
    pub prefix: Option<Cow<'a, str>>,
}

pub fn parse_query(query: &str) -> QueryParams<'_> {
    let mut params = QueryParams::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*key {
            "count" => &mut params.count,
            "name" => &mut params.name,
            "length" => &mut params.length,
            "alphabet" => &mut params.alphabet,
            "chars" => &mut params.chars,
            "prefix" => &mut params.prefix,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    params
}

/// A validated request.
#[derive(Debug, PartialEq, Eq)]
struct Spec {
    /// `None`: a single `{"id"}`; `Some(n)`: a batch `{"ids"}` of n.
    count: Option<u32>,
    /// Kind counter only.
    name: Option<CounterName>,
    length: Length,
    alphabet: Alphabet,
    /// Kind typeid only.
    prefix: Prefix,
}

impl Spec {
    fn resolve(
        kind: Kind,
        query: QueryParams<'_>,
        body: Option<IdRequest>,
        max_batch: u32,
    ) -> Result<Spec, ApiError> {
        let body = body.unwrap_or_default();
        let count_error = || ParamError::Count { max: max_batch };
        let in_bounds = |count: u32| (1..=max_batch).contains(&count);
        // A body's values are checked even where the query string's win: a bad value is
        // refused wherever it is sent.
        if body.count.is_some_and(|count| !in_bounds(count)) {
            return Err(count_error().into());
        }
        let count = match query.count {
            Some(ref text) => Some(text.parse::<u32>().map_err(|_| count_error())?),
            None => body.count,
        };
        if count.is_some_and(|count| !in_bounds(count)) {
            return Err(count_error().into());
        }
        let mut spec = Spec {
            count,
            name: None,
            length: Length::DEFAULT,
            alphabet: Alphabet::default(),
            prefix: Prefix::default(),
        };
        // Each parameter is read only for the kinds the catalogue says take it.
        if kind.takes(Param::Name) {
            if let Some(name) = body.name.as_deref() {
                CounterName::parse(name)?;
            }
            spec.name = Some(match query.name.as_deref().or(body.name.as_deref()) {
                Some(name) => CounterName::parse(name)?,
                None => CounterName::default(),
            });
        }
        if kind.takes(Param::Length) {
            if let Some(length) = body.length {
                Length::new(length as usize)?;
            }
            let length_error = || ParamError::Length { max: Length::MAX };
            let length = match query.length {
                Some(ref text) => Some(text.parse::<usize>().map_err(|_| length_error())?),
                None => body.length.map(|length| length as usize),
            };
            if let Some(length) = length {
                spec.length = Length::new(length)?;
            }
        }
        if kind.takes(Param::Alphabet) {
            spec.alphabet = resolve_alphabet(&query, &body)?;
        }
        if kind.takes(Param::Prefix) {
            if let Some(prefix) = body.prefix.as_deref() {
                Prefix::parse(prefix)?;
            }
            if let Some(prefix) = query.prefix.as_deref().or(body.prefix.as_deref()) {
                spec.prefix = Prefix::parse(prefix)?;
            }
        }
        Ok(spec)
    }
}

/// A random string's alphabet: the query string's over the body's and, from either, `chars`
/// (the caller's own) over `alphabet` (a name). Every one given is checked, used or not.
fn resolve_alphabet(query: &QueryParams<'_>, body: &IdRequest) -> Result<Alphabet, ApiError> {
    let named = |name: Option<&str>| name.map(str::parse::<Alphabet>).transpose();
    let custom = |chars: Option<&str>| chars.map(Alphabet::custom).transpose();
    let from_query = custom(query.chars.as_deref())?.or(named(query.alphabet.as_deref())?);
    let from_body = custom(body.chars.as_deref())?.or(named(body.alphabet.as_deref())?);
    Ok(from_query.or(from_body).unwrap_or_default())
}

/// The two representations of IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

impl Format {
    /// Picks JSON or plain text from `Accept` by quality, then by specificity (`text/plain`
    /// beats `*/*`); JSON on a tie or without the header. 406 when neither is acceptable.
    pub fn negotiate(accept: Option<&header::HeaderValue>) -> Result<Format, ApiError> {
        let Some(accept) = accept.and_then(|value| value.to_str().ok()) else {
            return Ok(Format::Json);
        };
        // The values clients send by far the most, without parsing.
        match accept {
            "application/json" | "*/*" => return Ok(Format::Json),
            "text/plain" => return Ok(Format::Text),
            _ => {}
        }
        if accept.trim().is_empty() {
            return Ok(Format::Json);
        }
        // (quality in thousandths, specificity) of the best range matching each format.
        let mut json = (0u16, 0u8);
        let mut text = (0u16, 0u8);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let quality = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(parse_quality)
                .unwrap_or(1000);
            let is = |name: &str| media.eq_ignore_ascii_case(name);
            let (json_match, text_match) = if is("*/*") {
                (Some(0), Some(0))
            } else if is("application/*") {
                (Some(1), None)
            } else if is("application/json") {
                (Some(2), None)
            } else if is("text/*") {
                (None, Some(1))
            } else if is("text/plain") {
                (None, Some(2))
            } else {
                (None, None)
            };
            // A more specific range decides for its format, whatever its quality.
            if let Some(specificity) = json_match
                && specificity >= json.1
            {
                json = (quality, specificity);
            }
            if let Some(specificity) = text_match
                && specificity >= text.1
            {
                text = (quality, specificity);
            }
        }
        match (json, text) {
            ((0, _), (0, _)) => Err(ApiError::NotAcceptable),
            (json, text) if text > json => Ok(Format::Text),
            _ => Ok(Format::Json),
        }
    }
}

/// `q=0.8` -> 800.
fn parse_quality(text: &str) -> Option<u16> {
    let value: f32 = text.trim().parse().ok()?;
    (0.0..=1.0).contains(&value).then(|| (value * 1000.0).round() as u16)
}

/// Builds the response body in one buffer.
struct IdWriter {
    buffer: Vec<u8>,
    format: Format,
    batch: bool,
    empty: bool,
}

impl IdWriter {
    fn new(format: Format, batch: bool, count: usize, kind: Kind) -> Self {
        let id_len = kind.info().text_len;
        let mut buffer = Vec::with_capacity(16 + count * (id_len + 3));
        if format == Format::Json {
            buffer.extend_from_slice(if batch { b"{\"ids\":[" } else { b"{\"id\":" });
        }
        Self { buffer, format, batch, empty: true }
    }

    /// The response; `gzip` is for a batch: whether the client accepts gzip.
    fn finish(mut self, gzip: Option<bool>) -> HttpResponse {
        let content_type = match self.format {
            Format::Json => {
                self.buffer.extend_from_slice(if self.batch { b"]}" } else { b"}" });
                super::JSON
            }
            Format::Text => "text/plain; charset=utf-8",
        };
        match gzip {
            Some(accepts) => gzip::batch_response(content_type, self.buffer, accepts),
            None => id_response(content_type, self.buffer),
        }
    }
}

impl IdSink for IdWriter {
    /// Appends one ID, which `write` puts straight into the body, framed for the format.
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        match self.format {
            Format::Json => {
                if !self.empty {
                    self.buffer.push(b',');
                }
                self.buffer.push(b'"');
                write(&mut self.buffer);
                self.buffer.push(b'"');
            }
            Format::Text => {
                write(&mut self.buffer);
                self.buffer.push(b'\n');
            }
        }
        self.empty = false;
    }

    fn push_escaped_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let json = self.format == Format::Json;
        self.push_with(|buffer| {
            let start = buffer.len();
            write(buffer);
            if json {
                // Printable ASCII: `"` and `\` are the only characters JSON escapes.
                let text = buffer.split_off(start);
                for byte in text {
                    if byte == b'"' || byte == b'\\' {
                        buffer.push(b'\\');
                    }
                    buffer.push(byte);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Result<Format, ApiError> {
        Format::negotiate(Some(&header::HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(Format::negotiate(None).unwrap(), Format::Json);
        for (value, expected) in [
            ("", Format::Json),
            ("*/*", Format::Json),
            ("application/json", Format::Json),
            ("text/plain", Format::Text),
            ("text/plain; charset=utf-8", Format::Text),
            ("TEXT/PLAIN", Format::Text),
            ("text/plain, */*", Format::Text),
            ("text/*", Format::Text),
            ("application/json, text/plain", Format::Json),
            ("application/json;q=0.5, text/plain", Format::Text),
            ("text/plain;q=0.5, application/json", Format::Json),
            ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", Format::Json),
            ("text/plain;q=0, */*", Format::Json),
        ] {
            assert_eq!(accept(value).unwrap(), expected, "Accept: {value}");
        }
        for value in ["image/png", "text/html", "application/json;q=0"] {
            assert!(matches!(accept(value), Err(ApiError::NotAcceptable)), "Accept: {value}");
        }
    }

    #[test]
    fn query_first_occurrence_wins_and_unknown_are_ignored() {
        let params = parse_query("count=3&count=4&foo=bar&name=a%2Eb&alphabet=hex");
        assert_eq!(params.count.as_deref(), Some("3"));
        assert_eq!(params.name.as_deref(), Some("a.b"));
        assert_eq!(params.alphabet.as_deref(), Some("hex"));
        assert_eq!(params.length, None);
        assert_eq!(parse_query(""), QueryParams::default());
    }

    fn resolve(kind: Kind, query: &str, body: Option<&str>) -> Result<Spec, ApiError> {
        let body = body.map(|b| parse_body(b.as_bytes())).transpose()?.flatten();
        Spec::resolve(kind, parse_query(query), body, 100)
    }

    fn code(result: Result<Spec, ApiError>) -> &'static str {
        result.expect_err("should be refused").code().as_str()
    }

    #[test]
    fn parameters_are_validated_for_their_kind() {
        assert_eq!(resolve(Kind::Uuid, "", None).unwrap().count, None);
        assert_eq!(resolve(Kind::Uuid, "count=100", None).unwrap().count, Some(100));
        for bad in ["count=0", "count=101", "count=abc", "count=-1", "count=", "count=1.5"] {
            assert_eq!(code(resolve(Kind::Uuid, bad, None)), "invalid_count", "{bad}");
        }
        // Parameters of other kinds are ignored.
        assert!(resolve(Kind::Uuid, "length=abc&alphabet=klingon&name=%20", None).is_ok());

        let counter = resolve(Kind::Counter, "", None).unwrap();
        assert_eq!(counter.name.unwrap().as_str(), "default");
        assert_eq!(
            resolve(Kind::Counter, "name=orders", None).unwrap().name.unwrap().as_str(),
            "orders"
        );
        assert_eq!(code(resolve(Kind::Counter, "name=a/b", None)), "invalid_counter_name");
        assert_eq!(code(resolve(Kind::Counter, "name=", None)), "invalid_counter_name");

        let random = resolve(Kind::Random, "length=32&alphabet=hex", None).unwrap();
        assert_eq!((random.length.get(), random.alphabet), (32, Alphabet::Hex));
        let random = resolve(Kind::Random, "", None).unwrap();
        assert_eq!((random.length, random.alphabet), (Length::DEFAULT, Alphabet::Alphanumeric));
        for bad in ["length=0", "length=1025", "length=x"] {
            assert_eq!(code(resolve(Kind::Random, bad, None)), "invalid_length", "{bad}");
        }
        assert_eq!(code(resolve(Kind::Random, "alphabet=klingon", None)), "invalid_alphabet");
    }

    #[test]
    fn body_fills_in_and_query_wins() {
        let body = Some(r#"{"count": 5, "length": 8, "alphabet": "nanoid", "extra": true}"#);
        let spec = resolve(Kind::Random, "", body).unwrap();
        assert_eq!((spec.count, spec.length.get(), spec.alphabet), (Some(5), 8, Alphabet::Nanoid));
        let spec = resolve(Kind::Random, "count=2&alphabet=hex", body).unwrap();
        assert_eq!((spec.count, spec.length.get(), spec.alphabet), (Some(2), 8, Alphabet::Hex));
        assert_eq!(resolve(Kind::Uuid, "", Some("")).unwrap().count, None);
        assert_eq!(code(resolve(Kind::Uuid, "", Some("  \n"))), "invalid_body", "not JSON");
        assert_eq!(code(resolve(Kind::Uuid, "", Some(r#"{"count": 0}"#))), "invalid_count");
        for bad in [
            "{",
            "[]",
            "null",
            r#"{"count": "5"}"#,
            r#"{"count": -1}"#,
            r#"{"count": 1.5}"#,
            r#"{"count": 1e12}"#,
            r#"{"name": 5}"#,
        ] {
            assert_eq!(code(resolve(Kind::Uuid, "", Some(bad))), "invalid_body", "{bad}");
        }
        // An integer in the JSON Schema sense: 5.0 is one.
        assert_eq!(resolve(Kind::Uuid, "", Some(r#"{"count": 5.0}"#)).unwrap().count, Some(5));
        // A bad body value is refused even where the query string's value wins.
        assert_eq!(code(resolve(Kind::Uuid, "count=2", Some(r#"{"count": 0}"#))), "invalid_count");
        let bad_length = Some(r#"{"length": 0}"#);
        assert_eq!(code(resolve(Kind::Random, "length=5", bad_length)), "invalid_length");
        // Fields of other kinds are not read at all.
        assert!(resolve(Kind::Uuid, "", Some(r#"{"length": 0, "name": "a/b"}"#)).is_ok());
    }
}
