//! The served OpenAPI document, made exact for client generators and for schemathesis: the
//! route declarations give the paths and shapes; this adds what only the catalogue and the
//! configuration know, so that every request the document allows is answered 2xx and every
//! answer matches it.
//!
//! - `/v1/ids/{kind}` keeps what every kind takes (`kind` an enum of the catalogue, `count`),
//!   and each kind also gets its own path, `/v1/ids/random` and so on, with exactly the
//!   parameters it takes (a `{kind}` path cannot say that `length` belongs to `random` only:
//!   the server ignores it for the others) and its ID's schema as issued. Decoding is per kind
//!   only (`/v1/decode/ulid/{id}`): what an `id` may be depends on the kind.
//! - Real bounds: `count` 1 to `IDGEN_MAX_BATCH`, `length` 1 to 1024, `alphabet` and counter
//!   names as the parsers accept them.
//! - Every status a route sends, with the error body and its headers: `X-Request-Id` on all,
//!   `Allow` on 405, `Retry-After` on 503, `Retry-After` and `RateLimit-*` on 429 (and the
//!   `RateLimit-*` trio, when rate limiting is on, on every limited answer).
//! - The Swagger UI's own files (`/docs/...`) are left out: they are not part of the API.

use idgen_core::ksuid::Ksuid;
use idgen_core::random::{Alphabet, Length};
use idgen_core::wire::MAX_RFC3339_MS;
use idgen_core::{DecodeContext, KINDS, Kind, Param};
use serde_json::{Map, Value, json};

use super::{Access, TABLE};

const ERROR_BODY: &str = "#/components/schemas/ErrorBody";

/// The document as served, for a server that takes batches of up to `max_batch` and, with
/// `keyed`, needs API keys (each guarded operation then names its security and its 401/403).
pub fn served(mut document: Value, max_batch: u32, keyed: bool, decode: &DecodeContext) -> Value {
    document["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let Some(paths) = document["paths"].as_object_mut() else { return document };
    paths.retain(|path, _| !path.starts_with("/docs"));
    let limited: Vec<String> =
        TABLE.iter().filter(|entry| entry.limited).map(|entry| entry.pattern.clone()).collect();
    let mut served = Map::new();
    for (path, item) in std::mem::take(paths) {
        let is_limited = limited.contains(&path);
        let access = TABLE.iter().find(|entry| entry.pattern == path).map(|e| e.handler.access());
        let guarded = keyed && access.is_some_and(|access| access != Access::Open);
        for (path, mut item) in expand(&path, item, max_batch, decode) {
            for (method, operation) in item.as_object_mut().into_iter().flatten() {
                if guarded {
                    guard(operation, access == Some(Access::Admin));
                }
                complete_responses(operation, method == "post", is_limited);
            }
            served.insert(path, item);
        }
    }
    *paths = served;
    if keyed {
        document["components"]["securitySchemes"] = json!({
            "bearer": { "type": "http", "scheme": "bearer",
                "description": "An API key: `Authorization: Bearer <key>`" },
            "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "The same key, for tools that cannot set Authorization" },
        });
    }
    // The catalogue's names, as an enum wherever a kind is named in a body.
    let names: Vec<&str> = KINDS.iter().map(|kind| kind.name).collect();
    let kind_name = &mut document["components"]["schemas"]["KindDescription"]["properties"]["name"];
    if kind_name.is_object() {
        kind_name["enum"] = json!(names);
    }
    document
}

/// `path` as one path per kind where it names `{kind}`, each refined for its kind.
fn expand(path: &str, item: Value, max_batch: u32, decode: &DecodeContext) -> Vec<(String, Value)> {
    match path {
        "/v1/ids/{kind}" => {
            let mut generic = item.clone();
            for operation in operations(&mut generic) {
                generic_ids_operation(operation, max_batch);
            }
            let per_kind =
                per_kind(&item, Kind::ALL.iter().copied(), "/v1/ids/", "", |op, kind| {
                    ids_operation(op, kind, max_batch)
                });
            std::iter::once((path.to_owned(), generic)).chain(per_kind).collect()
        }
        "/v1/bounds/{kind}" => {
            let kinds = Kind::ALL.iter().copied().filter(|kind| kind.info().bounds.is_some());
            per_kind(&item, kinds, "/v1/bounds/", "", |op, kind| bounds_operation(op, kind, decode))
        }
        "/v1/decode/{kind}/{id}" => {
            let kinds = Kind::ALL.iter().copied().filter(|kind| kind.info().decode.is_some());
            per_kind(&item, kinds, "/v1/decode/", "/{id}", |op, kind| {
                decode_operation(op, kind, decode)
            })
        }
        _ => {
            let mut item = item;
            for operation in operations(&mut item) {
                let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
                for parameter in parameters.into_iter().flatten() {
                    if parameter["name"] == "length" {
                        parameter["schema"] = length_schema();
                    }
                    // `DELETE /v1/counters/{name}`: a name as the parser accepts it.
                    if parameter["name"] == "name" && parameter["in"] == "path" {
                        parameter["schema"] = counter_name_schema();
                    }
                }
            }
            vec![(path.to_owned(), item)]
        }
    }
}

/// The text of an ID of `kind` as the server issues it.
fn id_schema(kind: Kind) -> Value {
    let pattern = match kind {
        Kind::Uuid => "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        Kind::Uuid7 => "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        Kind::Ulid => "^[0-7][0-9A-HJKMNP-TV-Z]{25}$",
        Kind::Snowflake | Kind::Timestamp | Kind::Counter => "^[1-9][0-9]{0,19}$",
        // The named alphabets are within `[0-9A-Za-z_-]`; a caller's own (`chars`), any printable ASCII.
        Kind::Random => "^[ -~]{1,1024}$",
        Kind::TypeId => "^([a-z]([a-z_]{0,61}[a-z])?_)?[0-7][0-9a-hjkmnp-tv-z]{25}$",
        Kind::Ksuid => "^[0-9A-Za-z]{27}$",
        // Non-exhaustive `Kind`: a kind without its own pattern is at least a string (the
        // contract tests check every kind's pattern against real IDs).
        _ => "^.+$",
    };
    json!({ "type": "string", "pattern": pattern })
}

/// What `GET /v1/decode/{kind}/{id}` accepts as `id`: exactly the texts the decoder reads, as
/// far as a schema can say it.
/// The time-ordered kinds' times stop at the last one RFC 3339 can write (the decoders refuse
/// later ones): the patterns bound their time fields with [`at_most`].
fn decode_input_schema(kind: Kind, context: &DecodeContext) -> Value {
    let hex = "[0-9a-fA-F]";
    match kind {
        Kind::Uuid => json!({ "type": "string",
            "pattern": format!("^{hex}{{8}}-{hex}{{4}}-{hex}{{4}}-{hex}{{4}}-{hex}{{12}}$") }),
        Kind::Uuid7 => {
            // The first 48 bits, `xxxxxxxx-xxxx`, are the ms.
            let ms = format!("{MAX_RFC3339_MS:012x}");
            let ms = at_most(&format!("{}-{}", &ms[..8], &ms[8..]), HEX, true);
            json!({ "type": "string",
                "pattern": format!("^({ms})-7{hex}{{3}}-[89abAB]{hex}{{3}}-{hex}{{12}}$") })
        }
        Kind::Ulid => {
            // The first 10 characters are the ms (the first one 0-7: 48 bits).
            let ms = at_most(&crockford_ms(MAX_RFC3339_MS), CROCKFORD_UPPER, true);
            json!({ "type": "string",
                "pattern": format!("^({ms})[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{{16}}$") })
        }
        Kind::Snowflake => {
            // Every ID of the layout up to the largest of its last decodable time: the bounds'
            // range stops where the layout or RFC 3339 does.
            let last = *kind.bounds_range(context).expect("time-ordered").end();
            let max: u64 =
                kind.bounds(last, context).expect("in range").max.parse().expect("a number");
            json!({ "type": "integer", "minimum": 1, "maximum": max })
        }
        Kind::Timestamp => json!({ "type": "integer", "minimum": 0, "maximum": MAX_RFC3339_MS }),
        Kind::Ksuid => json!({ "type": "string", "pattern": ksuid_pattern() }),
        Kind::TypeId => json!({ "type": "string",
            "pattern": format!("^([a-z]([a-z_]{{0,61}}[a-z])?_)?({})$", typeid_suffix_pattern()) }),
        _ => json!({ "type": "string" }),
    }
}

const HEX: &str = "0123456789abcdef";
const CROCKFORD_LOWER: &str = "0123456789abcdefghjkmnpqrstvwxyz";
const CROCKFORD_UPPER: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `ms` as the 10 Crockford base32 characters (upper case) a ULID, or in lower case a TypeID,
/// starts with: a ULID's time field.
fn crockford_ms(ms: u64) -> String {
    idgen_core::Ulid::from_parts(ms, 0).to_string()[..10].to_owned()
}

/// A TypeID suffix the decoder reads: 26 lowercase Crockford characters, the first 0-7, whose
/// time, when it is a uuid7 (version 7 in the top 4 bits of character 10, the variant `10` in
/// bits 2 and 3 of character 13), is at most the last RFC 3339 can write. So: the time is in
/// range, or the version is not 7, or the variant is not `10`.
fn typeid_suffix_pattern() -> String {
    let any = "[0-9a-hjkmnp-tv-z]";
    let first = "[0-7]";
    let ms = at_most(&crockford_ms(MAX_RFC3339_MS).to_lowercase(), CROCKFORD_LOWER, false);
    // Character 10 is 0111x (e, f) for version 7; character 13 is x10xx for the variant.
    let not_seven = "[0-9a-dg-hj-km-np-tv-z]";
    let not_rfc = "[0-7c-hj-km-np-qw-z]";
    format!(
        "({ms}){any}{{16}}|{first}{any}{{9}}{not_seven}{any}{{15}}|{first}{any}{{9}}[ef]{any}{{2}}{not_rfc}{any}{{12}}"
    )
}

/// The texts of `max`'s length that are at most `max`, position by position in the order of
/// `digits`; `max`'s characters that are not digits (a UUID's `-`) are fixed. With `any_case`,
/// a letter may be in either case. For each position: `max`'s characters before it, a smaller
/// digit there and any digits after; or `max` itself.
fn at_most(max: &str, digits: &str, any_case: bool) -> String {
    let class = |chars: &mut dyn Iterator<Item = char>| -> String {
        let mut class = String::new();
        for c in chars {
            class.push(c);
            if any_case && c.is_ascii_alphabetic() {
                class.push(if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                });
            }
        }
        class
    };
    let any = format!("[{}]", class(&mut digits.chars()));
    let exactly = |c: char| match c.is_ascii_alphabetic() && any_case {
        true => format!("[{}]", class(&mut std::iter::once(c))),
        false => c.to_string(),
    };
    let mut branches = Vec::with_capacity(max.len() + 1);
    for (index, character) in max.char_indices() {
        if !digits.contains(character) {
            continue;
        }
        let smaller = class(&mut digits.chars().take_while(|&c| c != character));
        if smaller.is_empty() {
            continue;
        }
        let before: String = max[..index].chars().map(exactly).collect();
        // Any digits after, as runs (`[...]{n}`) between the fixed characters.
        let runs = |n: usize| match n {
            0 => String::new(),
            1 => any.clone(),
            n => format!("{any}{{{n}}}"),
        };
        let (mut after, mut run) = (String::new(), 0);
        for c in max[index + 1..].chars() {
            if digits.contains(c) {
                run += 1;
            } else {
                after.push_str(&runs(run));
                after.push(c);
                run = 0;
            }
        }
        after.push_str(&runs(run));
        branches.push(format!("{before}[{smaller}]{after}"));
    }
    branches.push(max.chars().map(exactly).collect());
    branches.join("|")
}

fn length_schema() -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": Length::MAX, "default": 21 })
}

/// Exactly the KSUIDs the decoder reads: 27 base62 characters, as text (the same order as the
/// value) at most the largest one. For each position, the largest's characters before it and
/// a smaller one there, anything after; or the largest itself.
fn ksuid_pattern() -> String {
    const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let max = Ksuid::from_parts(u32::MAX, u128::MAX).to_string();
    format!("^({})$", at_most(&max, BASE62, false))
}

/// A TypeID prefix as `Prefix::parse` accepts it (the spec's rule).
const PREFIX_PATTERN: &str = "^([a-z]([a-z_]{0,61}[a-z])?)?$";

/// A caller's alphabet as `CharSet::parse` accepts it: 2 to 95 printable ASCII characters, no
/// character twice (the lookahead refuses any that comes again later).
const CHARS_PATTERN: &str = "^(?!.*(.).*\\1)[ -~]{2,95}$";

/// A counter name as `CounterName::parse` accepts it.
fn counter_name_schema() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$" })
}

/// The schema of one parameter of a kind.
fn param_schema(param: Param) -> Value {
    match param {
        Param::Name => {
            let mut name = counter_name_schema();
            name["default"] = json!("default");
            name
        }
        Param::Length => length_schema(),
        Param::Alphabet => {
            let names: Vec<&str> = Alphabet::ALL.iter().map(|alphabet| alphabet.name()).collect();
            json!({ "type": "string", "enum": names, "default": "alphanumeric" })
        }
        Param::Chars => json!({ "type": "string", "pattern": CHARS_PATTERN }),
        Param::Prefix => json!({ "type": "string", "pattern": PREFIX_PATTERN, "default": "" }),
    }
}

/// The operations (one per method) of a path item.
fn operations(item: &mut Value) -> impl Iterator<Item = &mut Value> {
    item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut())
}

/// `item` copied to `{before}{kind}{after}` for each of `kinds`, each operation refined by
/// `refine` for its kind.
fn per_kind(
    item: &Value,
    kinds: impl Iterator<Item = Kind>,
    before: &str,
    after: &str,
    refine: impl Fn(&mut Value, Kind),
) -> Vec<(String, Value)> {
    kinds
        .map(|kind| {
            let mut item = item.clone();
            for operation in operations(&mut item) {
                refine(operation, kind);
            }
            (format!("{before}{kind}{after}"), item)
        })
        .collect()
}

/// `GET|POST /v1/ids/{kind}` for one kind: its parameters, its body, its two answers.
fn ids_operation(operation: &mut Value, kind: Kind, max_batch: u32) {
    let info = kind.info();
    let count = json!({ "type": "integer", "minimum": 1, "maximum": max_batch });
    let mut parameters = vec![json!({
        "name": "count", "in": "query", "required": false, "schema": count,
        "description": "A batch of this many; the answer is then {\"ids\": [...]}",
    })];
    for param in info.params {
        parameters.push(json!({
            "name": param.key(), "in": "query", "required": false,
            "description": param.description(), "schema": param_schema(*param),
        }));
    }
    operation["parameters"] = Value::Array(parameters);
    if let Some(operation_id) = operation["operationId"].as_str() {
        operation["operationId"] = json!(format!("{operation_id}_{kind}"));
    }
    operation["summary"] = json!(format!("{}: {}", kind, info.description));
    if operation.get("requestBody").is_some() {
        let mut properties = Map::new();
        properties.insert("count".into(), nullable(count));
        for param in info.params {
            properties.insert(param.key().into(), nullable(param_schema(*param)));
        }
        operation["requestBody"] = json!({
            "required": false,
            "description": "Optional; the query string's parameters, which win where both give one",
            "content": { "application/json": { "schema": { "type": "object", "properties": properties } } },
        });
    }
    if let Some(map) = operation["responses"].as_object_mut() {
        map.remove("404");
    }
    set_id_answers(operation, id_schema(kind), max_batch);
}

/// `GET|POST /v1/ids/{kind}` for any kind: `kind` from the catalogue and what every kind
/// takes (`count`); a kind's own parameters are on its own path (`/v1/ids/random`, ...).
fn generic_ids_operation(operation: &mut Value, max_batch: u32) {
    let names: Vec<&str> = KINDS.iter().map(|kind| kind.name).collect();
    let count = json!({ "type": "integer", "minimum": 1, "maximum": max_batch });
    operation["parameters"] = json!([
        { "name": "kind", "in": "path", "required": true, "schema": { "type": "string", "enum": names },
          "description": "The kind (GET /v1/kinds); its own parameters are documented on /v1/ids/<kind>" },
        { "name": "count", "in": "query", "required": false, "schema": count,
          "description": "A batch of this many; the answer is then {\"ids\": [...]}" },
    ]);
    if operation.get("requestBody").is_some() {
        operation["requestBody"] = json!({
            "required": false,
            "description": "Optional; the query string's count wins where both give one",
            "content": { "application/json": { "schema": { "type": "object",
                "properties": { "count": nullable(count) } } } },
        });
    }
    let id = json!({ "anyOf": Kind::ALL.iter().map(|kind| id_schema(*kind)).collect::<Vec<_>>() });
    set_id_answers(operation, id, max_batch);
}

/// The 200 of an ID route: one ID or a batch of them (`id` is the schema of one), and its
/// headers.
fn set_id_answers(operation: &mut Value, id: Value, max_batch: u32) {
    let single = json!({ "type": "object", "required": ["id"], "properties": { "id": id } });
    let batch = json!({ "type": "object", "required": ["ids"], "properties": {
        "ids": { "type": "array", "items": id, "minItems": 1, "maxItems": max_batch } } });
    let ok = &mut operation["responses"]["200"];
    ok["content"]["application/json"]["schema"] = json!({ "oneOf": [single, batch] });
    ok["headers"]["Vary"] =
        json!({ "description": "accept-encoding, on batches", "schema": { "type": "string" } });
    ok["headers"]["Content-Encoding"] = json!({
        "description": "gzip, for a batch over 1400 bytes when Accept-Encoding allows it",
        "schema": { "type": "string", "enum": ["gzip"] },
    });
    ok["headers"]["Cache-Control"]["required"] = json!(true);
}

/// `GET /v1/decode/{kind}/{id}` for one kind.
fn decode_operation(operation: &mut Value, kind: Kind, context: &DecodeContext) {
    operation["parameters"] = json!([{
        "name": "id", "in": "path", "required": true,
        "description": format!("A {kind} id"), "schema": decode_input_schema(kind, context),
    }]);
    if let Some(operation_id) = operation["operationId"].as_str() {
        operation["operationId"] = json!(format!("{operation_id}_{kind}"));
    }
    if let Some(map) = operation["responses"].as_object_mut() {
        map.remove("404");
    }
}

/// `GET /v1/bounds/{kind}` for one kind: `time` as the Unix ms it holds (an RFC 3339 text is
/// read too, see `routes::bounds`), `prefix` for typeid, and its IDs' schema for the bounds.
fn bounds_operation(operation: &mut Value, kind: Kind, context: &DecodeContext) {
    let range = kind.bounds_range(context).expect("only the time-ordered kinds");
    let mut parameters = vec![json!({
        "name": "time", "in": "query", "required": true,
        "description": "Unix ms (or an RFC 3339 date-time, e.g. 2026-12-06T21:00:00Z)",
        "schema": { "type": "integer", "minimum": range.start(), "maximum": range.end() },
    })];
    if kind == Kind::TypeId {
        parameters.push(json!({
            "name": "prefix", "in": "query", "required": false,
            "description": Param::Prefix.description(), "schema": param_schema(Param::Prefix),
        }));
    }
    // As issued, but for a timestamp: its bound at ms 0 is `0`, which is never issued.
    let id = match kind {
        Kind::Timestamp => json!({ "type": "string", "pattern": "^(0|[1-9][0-9]{0,19})$" }),
        _ => id_schema(kind),
    };
    operation["parameters"] = Value::Array(parameters);
    if let Some(operation_id) = operation["operationId"].as_str() {
        operation["operationId"] = json!(format!("{operation_id}_{kind}"));
    }
    if let Some(map) = operation["responses"].as_object_mut() {
        map.remove("404");
    }
    let response = &mut operation["responses"]["200"]["content"]["application/json"]["schema"];
    *response = json!({
        "type": "object",
        "required": ["kind", "timestamp_ms", "time", "min", "max"],
        "properties": {
            "kind": { "type": "string", "enum": [kind.name()] },
            "timestamp_ms": { "type": "integer", "minimum": range.start(), "maximum": range.end() },
            "time": { "type": "string", "format": "date-time" },
            "min": id.clone(),
            "max": id,
        },
    });
}

/// `schema` or null (an optional field of a request body).
fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

fn header(description: &str, schema: Value, required: bool) -> Value {
    json!({ "description": description, "required": required, "schema": schema })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description,
        "content": { "application/json": { "schema": { "$ref": ERROR_BODY } } } })
}

/// An operation that needs a key (`admin`: with the admin scope): its security and the 401 and
/// 403 it answers.
fn guard(operation: &mut Value, admin: bool) {
    operation["security"] = json!([{ "bearer": [] }, { "apiKey": [] }]);
    let responses = operation["responses"].as_object_mut().expect("an operation has responses");
    let mut unauthorized = error_response("No API key, or an unknown one");
    unauthorized["headers"] = json!({ "WWW-Authenticate": header(
        "Bearer", json!({ "type": "string", "const": "Bearer" }), true) });
    responses.insert("401".into(), unauthorized);
    let forbidden = if admin {
        "The key has no admin scope"
    } else {
        "The key's scopes do not allow this kind or counter name"
    };
    responses.insert("403".into(), error_response(forbidden));
}

/// Every status `operation` can answer, and the headers each answer carries.
fn complete_responses(operation: &mut Value, is_post: bool, is_limited: bool) {
    let takes_input = operation["parameters"].as_array().is_some_and(|p| !p.is_empty()) || is_post;
    let responses = operation["responses"].as_object_mut().expect("an operation has responses");
    let defaults = [
        ("400", takes_input, "A parameter or the body is invalid"),
        ("405", true, "Method not allowed on this path; Allow lists the methods"),
        ("413", is_post, "The body is over 16 KiB"),
        ("429", is_limited, "Rate limited; Retry-After and RateLimit-* say when to retry"),
    ];
    for (status, applies, description) in defaults {
        if applies {
            responses.entry(status).or_insert_with(|| error_response(description));
        }
    }
    let integer = || json!({ "type": "integer", "minimum": 0 });
    let request_id =
        header("The request's id (as sent, or made here)", json!({ "type": "string" }), true);
    for (status, response) in responses.iter_mut() {
        let headers = response["headers"].as_object_mut().map(std::mem::take).unwrap_or_default();
        let mut headers = Value::Object(headers);
        headers["X-Request-Id"] = request_id.clone();
        match status.as_str() {
            "405" => {
                headers["Allow"] =
                    header("The methods this path allows", json!({ "type": "string" }), true)
            }
            "503" => headers["Retry-After"] = header("Seconds to wait", integer(), true),
            "429" => {
                headers["Retry-After"] = header("Seconds to wait", integer(), true);
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    headers[name] = header(
                        "The client's bucket: size, tokens left, seconds until full",
                        integer(),
                        true,
                    );
                }
            }
            status if is_limited && status.starts_with('2') => {
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    headers[name] =
                        header("When rate limiting is on: the client's bucket", integer(), false);
                }
            }
            _ => {}
        }
        response["headers"] = headers;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Texts around the last RFC 3339 ms and anywhere in the 48-bit range, in both cases, of
    /// every version and variant: the pattern takes exactly the ones the decoder reads.
    #[test]
    fn the_time_bounded_patterns_take_exactly_the_ids_the_decoder_reads() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9999);
        let context = DecodeContext::default();
        let mut verdicts = std::collections::HashMap::new();
        for kind in [Kind::Uuid7, Kind::Ulid, Kind::TypeId] {
            let schema = decode_input_schema(kind, &context);
            let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
            for round in 0..20_000u32 {
                let ms = match round % 3 {
                    0 => MAX_RFC3339_MS - 2_000 + rng.random_range(0..4_000),
                    1 => rng.random_range(0..1u64 << 48),
                    _ => MAX_RFC3339_MS + u64::from(round % 7) - 3,
                };
                let version: u128 = if rng.random_bool(0.7) { 7 } else { rng.random_range(0..16) };
                let variant: u128 =
                    if rng.random_bool(0.7) { 0b10 } else { rng.random_range(0..4) };
                let random = rng.random::<u128>() & !(0xF << 76) & !(0b11 << 62) & ((1 << 80) - 1);
                let value = (u128::from(ms) << 80) | (version << 76) | (variant << 62) | random;
                let uuid = idgen_core::Uuid::from_u128(value);
                let text = match kind {
                    Kind::Uuid7 => uuid.hyphenated().to_string(),
                    Kind::Ulid => idgen_core::Ulid(value).to_string(),
                    _ => {
                        let mut text = b"user_".to_vec();
                        let prefix = idgen_core::typeid::Prefix::default();
                        idgen_core::typeid::encode_into(&prefix, uuid, &mut text);
                        String::from_utf8(text).expect("ascii")
                    }
                };
                let text = if kind != Kind::TypeId && rng.random_bool(0.3) {
                    if kind == Kind::Ulid { text.to_lowercase() } else { text.to_uppercase() }
                } else {
                    text
                };
                let decoded = kind.decode(&text, &context).is_ok();
                assert_eq!(validator.is_valid(&json!(text)), decoded, "{kind} {text} (ms {ms})");
                *verdicts.entry((kind, decoded)).or_insert(0) += 1;
            }
        }
        // Both answers came up often for every kind: the test saw both sides of the line.
        for kind in [Kind::Uuid7, Kind::Ulid, Kind::TypeId] {
            for decoded in [true, false] {
                assert!(
                    verdicts.get(&(kind, decoded)).copied().unwrap_or(0) > 1_000,
                    "{kind} {decoded}: {verdicts:?}"
                );
            }
        }
        let timestamp = decode_input_schema(Kind::Timestamp, &context);
        assert_eq!(timestamp["maximum"], json!(MAX_RFC3339_MS));
    }

    #[test]
    fn the_chars_pattern_takes_exactly_the_alphabets_the_parser_reads() {
        let schema = json!({ "type": "string", "pattern": CHARS_PATTERN });
        let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
        let printable: String = (b' '..=b'~').map(char::from).collect();
        let long = "ab".repeat(129);
        for text in [
            "ab",
            "ba",
            "0123456789",
            " ~",
            "&+=%#",
            printable.as_str(),
            "aa",
            "abca",
            "a",
            "",
            "ab\t",
            "abé",
            long.as_str(),
            &format!("{printable}a"),
        ] {
            let parsed = Alphabet::custom(text).is_ok();
            assert_eq!(validator.is_valid(&json!(text)), parsed, "{text:?}");
        }
    }

    #[test]
    fn the_ksuid_pattern_takes_exactly_the_ksuids_the_decoder_reads() {
        let schema = json!({ "type": "string", "pattern": ksuid_pattern() });
        let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
        let max = "aWgEPTl1tmebfsQzFP4bxwgy80V";
        for text in [
            max,
            "000000000000000000000000000",
            "0ujtsYcgvSTl8PAuAdqWYSMnLOv",
            "aWgEPTl1tmebfsQzFP4bxwgy80U",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ] {
            assert!(validator.is_valid(&json!(text)), "{text}");
            assert!(idgen_core::ksuid::decode(text).is_ok(), "{text}");
        }
        for text in [
            "aWgEPTl1tmebfsQzFP4bxwgy80W",
            "aWgEPTl1tmebfsQzFP4bxwgy81",
            "b00000000000000000000000000",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzz",
            "aWgEPTl1tmebfsQzFP4bxwgy80V0",
        ] {
            assert!(!validator.is_valid(&json!(text)), "{text}");
            assert!(idgen_core::ksuid::decode(text).is_err(), "{text}");
        }
    }
}
