//! HTTP routes: one table ([`ROUTES`]), one router ([`router`]), one file per resource.
//! Handlers stay thin: parse, call the issuing layer, serialise.
//!
//! Each entry of the table names a handler, whether it is rate limited, and its
//! `#[utoipa::path]` declaration, which holds the route's pattern and method. The router
//! matches requests against those patterns, the 405 answers take `Allow` from them and the
//! OpenAPI document is built from them ([`openapi`]), so a route cannot exist in one of these
//! and not the others.

pub mod bounds;
pub mod compat;
pub mod contract;
pub mod counters;
pub mod decode;
pub mod docs;
pub mod gzip;
pub mod health;
pub mod ids;
pub mod kinds;
#[cfg(test)]
mod mark_tests;
pub mod openapi;
#[cfg(test)]
mod retire_tests;
pub mod router;
pub mod status;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use utoipa_actix_web::OpenApiFactory;

/// Which handler serves a route (the router's dispatch is one `match` on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Healthz,
    IdsGet,
    IdsPost,
    GenerateUuid,
    GenerateTimestampId,
    GenerateCounterId,
    GenerateSnowflakeId,
    GenerateRandomString,
    Decode,
    Bounds,
    Kinds,
    Readyz,
    OpenApiJson,
    DocsRedirect,
    DocsIndex,
    DocsFile,
    Metrics,
    Status,
    StatusPage,
    RetireCounter,
}

/// Who may call a route when API keys are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the probes, the document and its UI.
    Open,
    /// A key (with the scope the request needs: checked by the handler).
    Key,
    /// A key with the `admin` scope, or the admin listener (`IDGEN_ADMIN_BIND`).
    Admin,
}

impl Handler {
    pub fn access(self) -> Access {
        match self {
            Handler::Healthz
            | Handler::Readyz
            | Handler::OpenApiJson
            | Handler::DocsRedirect
            | Handler::DocsIndex
            | Handler::DocsFile => Access::Open,
            Handler::Metrics | Handler::Status | Handler::StatusPage | Handler::RetireCounter => {
                Access::Admin
            }
            Handler::IdsGet
            | Handler::IdsPost
            | Handler::GenerateUuid
            | Handler::GenerateTimestampId
            | Handler::GenerateCounterId
            | Handler::GenerateSnowflakeId
            | Handler::GenerateRandomString
            | Handler::Decode
            | Handler::Bounds
            | Handler::Kinds => Access::Key,
        }
    }
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Every route (no `IDGEN_ADMIN_BIND`).
    All,
    /// The main listener when `IDGEN_ADMIN_BIND` is set: no admin route.
    Public,
    /// The admin listener: the admin routes (no key needed) and the probes.
    Admin,
}

impl Surface {
    /// Whether this listener serves `handler` (else: 404).
    pub fn serves(self, handler: Handler) -> bool {
        match (self, handler.access()) {
            (Surface::All, _) => true,
            (Surface::Public, access) => access != Access::Admin,
            (Surface::Admin, Access::Admin) => true,
            (Surface::Admin, _) => matches!(handler, Handler::Healthz | Handler::Readyz),
        }
    }
}

/// One route: its handler, whether it counts against the client's rate limit (every route
/// that issues, decodes or lists IDs; not the probes nor the document), and its OpenAPI
/// declaration, which also gives its pattern and method.
pub struct Route {
    pub handler: Handler,
    pub limited: bool,
    pub doc: &'static (dyn OpenApiFactory + Sync),
}

/// Every route the server answers, in the order the router tries them: the liveness probe
/// first (it is the benchmark's ceiling: the cheapest answer the server gives), the ID routes
/// next (nearly every request), the rest after.
pub static ROUTES: &[Route] = &[
    Route { handler: Handler::Healthz, limited: false, doc: &health::__path_healthz },
    Route { handler: Handler::IdsGet, limited: true, doc: &ids::__path_get_ids },
    Route { handler: Handler::IdsPost, limited: true, doc: &ids::__path_post_ids },
    Route { handler: Handler::GenerateUuid, limited: true, doc: &compat::__path_generate_uuid },
    Route {
        handler: Handler::GenerateTimestampId,
        limited: true,
        doc: &compat::__path_generate_timestamp_id,
    },
    Route {
        handler: Handler::GenerateCounterId,
        limited: true,
        doc: &compat::__path_generate_counter_id,
    },
    Route {
        handler: Handler::GenerateSnowflakeId,
        limited: true,
        doc: &compat::__path_generate_snowflake_id,
    },
    Route {
        handler: Handler::GenerateRandomString,
        limited: true,
        doc: &compat::__path_generate_random_string,
    },
    Route { handler: Handler::Decode, limited: true, doc: &decode::__path_decode },
    Route { handler: Handler::Bounds, limited: true, doc: &bounds::__path_bounds },
    Route { handler: Handler::Kinds, limited: true, doc: &kinds::__path_kinds },
    Route { handler: Handler::Readyz, limited: false, doc: &health::__path_readyz },
    Route { handler: Handler::OpenApiJson, limited: false, doc: &openapi::__path_openapi_json },
    Route { handler: Handler::Metrics, limited: false, doc: &status::__path_metrics },
    Route { handler: Handler::Status, limited: false, doc: &status::__path_status_json },
    Route { handler: Handler::StatusPage, limited: false, doc: &status::__path_status_page },
    Route {
        handler: Handler::RetireCounter,
        limited: false,
        doc: &counters::__path_retire_counter,
    },
    Route { handler: Handler::DocsRedirect, limited: false, doc: &docs::__path_docs_redirect },
    Route { handler: Handler::DocsIndex, limited: false, doc: &docs::__path_docs_index },
    Route { handler: Handler::DocsFile, limited: false, doc: &docs::__path_docs_file },
];

/// A route as the router uses it: the pattern and method read from its declaration, and the
/// pattern taken apart for matching.
pub struct Entry {
    pub pattern: String,
    pub method: Method,
    pub handler: Handler,
    pub limited: bool,
    /// Every method of this pattern, for `Allow` (e.g. `GET, HEAD, POST`).
    pub allow: String,
    /// The index of the pattern among the table's patterns (the metrics' `route` label).
    pub route: usize,
    /// The literal part of the pattern before its first `{name}` segment (all of a pattern
    /// without one), e.g. `/v1/ids/`.
    prefix: String,
    /// The names of the `{name}` segments after the prefix, in order.
    params: Vec<String>,
}

impl Entry {
    fn new(pattern: String, method: Method, route: &Route) -> Self {
        let (prefix, params) = match pattern.find('{') {
            Some(start) => {
                let params: Vec<String> = pattern[start..]
                    .split('/')
                    .map(|segment| {
                        let name = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
                        // The router only takes `{name}` segments after the literal part; a
                        // pattern with a literal after one needs a more general matcher.
                        name.expect("a route pattern ends in its {name} segments").to_owned()
                    })
                    .collect();
                (pattern[..start].to_owned(), params)
            }
            None => (pattern.clone(), Vec::new()),
        };
        Self {
            pattern,
            method,
            handler: route.handler,
            limited: route.limited,
            allow: String::new(),
            route: 0,
            prefix,
            params,
        }
    }

    /// Whether `path` matches the pattern the way actix-router matches it: the literal prefix,
    /// then as many `/`-separated segments as the pattern has `{name}`s, each non-empty
    /// (actix's default `[^/]+`). Hand-written because the router runs it on every request:
    /// a regex per route (what `ResourceDef::is_match` does) cost more than the handler of
    /// most routes, and splitting both strings on `/` about 1,500 instructions per request.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else { return false };
        if self.params.is_empty() {
            return rest.is_empty();
        }
        let rest = rest.as_bytes();
        let mut segments = 1;
        let mut previous = b'/';
        for &byte in rest {
            if byte == b'/' {
                if previous == b'/' {
                    return false;
                }
                segments += 1;
            }
            previous = byte;
        }
        previous != b'/' && segments == self.params.len()
    }

    /// The `{name}` segment of `path`, which matches this entry.
    pub fn segment<'p>(&self, path: &'p str, name: &str) -> &'p str {
        let rest = path.get(self.prefix.len()..).unwrap_or_default();
        match self.params.iter().position(|param| param == name) {
            Some(0) if self.params.len() == 1 => rest,
            Some(index) => rest.split('/').nth(index).unwrap_or_default(),
            None => "",
        }
    }
}

/// The table, with each declaration read once.
pub static TABLE: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut entries: Vec<Entry> = ROUTES
        .iter()
        .flat_map(|route| {
            route.doc.paths().paths.into_iter().flat_map(move |(pattern, item)| {
                methods_of(&item)
                    .into_iter()
                    .map(move |method| Entry::new(pattern.clone(), method, route))
            })
        })
        .collect();
    let allows: Vec<String> = entries
        .iter()
        .map(|entry| {
            let mut methods: Vec<&str> = Vec::new();
            for other in entries.iter().filter(|other| other.pattern == entry.pattern) {
                methods.push(other.method.as_str());
                // HEAD is served wherever GET is.
                if other.method == Method::GET {
                    methods.push("HEAD");
                }
            }
            methods.join(", ")
        })
        .collect();
    let mut patterns: Vec<String> = Vec::new();
    for (entry, allow) in entries.iter_mut().zip(allows) {
        entry.allow = allow;
        entry.route = patterns.iter().position(|p| *p == entry.pattern).unwrap_or_else(|| {
            patterns.push(entry.pattern.clone());
            patterns.len() - 1
        });
    }
    entries
});

/// The methods an OpenAPI path item declares.
fn methods_of(item: &utoipa::openapi::PathItem) -> Vec<Method> {
    [
        (Method::GET, item.get.is_some()),
        (Method::POST, item.post.is_some()),
        (Method::PUT, item.put.is_some()),
        (Method::DELETE, item.delete.is_some()),
        (Method::PATCH, item.patch.is_some()),
        (Method::HEAD, item.head.is_some()),
        (Method::OPTIONS, item.options.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, declared)| declared.then_some(method))
    .collect()
}

/// What the table says about a request: the route that serves it, or the methods its path
/// allows (and its first entry), or nothing (404).
pub enum Found<'t> {
    Route(&'t Entry),
    MethodNotAllowed { allow: &'t str, entry: &'t Entry },
    NotFound,
}

impl Found<'_> {
    /// Whether the request goes through the rate limiter: any method of a limited route's
    /// path. Unknown paths do not: a 404 costs nothing to answer.
    pub fn limited(&self) -> bool {
        match self {
            Found::Route(entry) | Found::MethodNotAllowed { entry, .. } => entry.limited,
            Found::NotFound => false,
        }
    }

    /// The metrics' route index (the last one, one past the table's, for no route).
    pub fn route_index(&self) -> usize {
        match self {
            Found::Route(entry) | Found::MethodNotAllowed { entry, .. } => entry.route,
            Found::NotFound => TABLE.last().map_or(0, |last| last.route + 1),
        }
    }
}

/// The route for `method` on `path` (the path as actix's router sees it: percent-decoded where
/// that is safe).
pub fn find<'t>(table: &'t [Entry], method: &Method, path: &str) -> Found<'t> {
    let mut first = None;
    for entry in table {
        if entry.matches(path) {
            if entry.method == *method || (*method == Method::HEAD && entry.method == Method::GET) {
                return Found::Route(entry);
            }
            first.get_or_insert(entry);
        }
    }
    first.map_or(Found::NotFound, |entry| Found::MethodNotAllowed { allow: &entry.allow, entry })
}

/// Whether requests to `path` go through the rate limiter: those of a limited route, any
/// method. Unknown paths do not: a 404 costs nothing to answer.
pub fn is_limited(table: &[Entry], path: &str) -> bool {
    table.iter().find(|entry| entry.matches(path)).is_some_and(|entry| entry.limited)
}

/// The JSON content type, as a static header value for [`HeaderValue::from_static`].
pub const JSON: &str = "application/json";

/// The first value of `key` in a query string, percent-decoded (the first occurrence wins, as
/// for the ID routes, which read all of theirs in one pass: `ids::parse_query`).
pub fn query_value<'q>(query: &'q str, key: &str) -> Option<std::borrow::Cow<'q, str>> {
    form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == key).map(|(_, value)| value)
}

/// A 200 carrying IDs: `content_type` and `Cache-Control: no-store` (a cached ID is a
/// duplicate). Both header values are static (`ContentType` and `CacheControl` allocate and
/// format on every response) and go straight into the response's map: `HttpResponseBuilder`
/// converts each pair and checks for a stored error first, about 250 instructions per response.
pub fn id_response(content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::with_body(StatusCode::OK, body).map_into_boxed_body();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod table_tests {
    use actix_web::dev::ResourceDef;

    use super::*;

    #[test]
    fn matches_agrees_with_actix_router() {
        let paths = [
            "/",
            "",
            "/v1/ids/uuid7",
            "/v1/ids/",
            "/v1/ids",
            "/v1/ids/uuid7/",
            "/v1/ids//x",
            "/v1/ids/a%2Fb",
            "/v1/decode/ulid/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "/v1/decode/ulid/",
            "/v1/decode//x",
            "/v1/kinds",
            "/v1/kinds/",
            "/generate_uuid",
            "/generate_uuidx",
            "/generate_random_string/21",
            "/generate_random_string/",
            "/generate_random_string",
            "/healthz",
            "/readyz/",
            "/openapi.json",
            "/nope",
            "//v1/ids/uuid",
            "/v1/decode/uuid/x/",
            "/v1/decode/uuid/x/y",
            "/v1/decode/uuid//",
            "/v1/ids/uuid7/x",
            "/healthzz",
            "/healthz/",
            "/generate_random_string/21/",
            "/generate_random_string//",
        ];
        for entry in TABLE.iter() {
            let def = ResourceDef::new(entry.pattern.as_str());
            for path in paths {
                let pattern = &entry.pattern;
                assert_eq!(entry.matches(path), def.is_match(path), "{pattern} vs {path:?}");
            }
        }
    }

    #[test]
    fn the_table_reads_every_declaration() {
        let listed: Vec<(&str, &str, &str, bool)> = TABLE
            .iter()
            .map(|entry| {
                (entry.pattern.as_str(), entry.method.as_str(), entry.allow.as_str(), entry.limited)
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("/healthz", "GET", "GET, HEAD", false),
                ("/v1/ids/{kind}", "GET", "GET, HEAD, POST", true),
                ("/v1/ids/{kind}", "POST", "GET, HEAD, POST", true),
                ("/generate_uuid", "GET", "GET, HEAD", true),
                ("/generate_timestamp_id", "GET", "GET, HEAD", true),
                ("/generate_counter_id", "GET", "GET, HEAD", true),
                ("/generate_snowflake_id", "GET", "GET, HEAD", true),
                ("/generate_random_string/{length}", "GET", "GET, HEAD", true),
                ("/v1/decode/{kind}/{id}", "GET", "GET, HEAD", true),
                ("/v1/bounds/{kind}", "GET", "GET, HEAD", true),
                ("/v1/kinds", "GET", "GET, HEAD", true),
                ("/readyz", "GET", "GET, HEAD", false),
                ("/openapi.json", "GET", "GET, HEAD", false),
                ("/metrics", "GET", "GET, HEAD", false),
                ("/v1/status", "GET", "GET, HEAD", false),
                ("/status", "GET", "GET, HEAD", false),
                ("/v1/counters/{name}", "DELETE", "DELETE", false),
                ("/docs", "GET", "GET, HEAD", false),
                ("/docs/", "GET", "GET, HEAD", false),
                ("/docs/{file}", "GET", "GET, HEAD", false),
            ]
        );
        let decode = TABLE.iter().find(|entry| entry.handler == Handler::Decode).unwrap();
        assert_eq!(decode.segment("/v1/decode/ulid/01AR", "id"), "01AR");
        assert_eq!(decode.segment("/v1/decode/ulid/01AR", "kind"), "ulid");
        let ids = TABLE.iter().find(|entry| entry.handler == Handler::IdsGet).unwrap();
        assert_eq!(ids.segment("/v1/ids/uuid7", "kind"), "uuid7");
        assert!(matches!(find(&TABLE, &Method::PUT, "/v1/ids/x"),
            Found::MethodNotAllowed { allow, .. } if allow == "GET, HEAD, POST"));
        assert!(matches!(find(&TABLE, &Method::HEAD, "/v1/ids/x"), Found::Route(entry)
            if entry.handler == Handler::IdsGet));
        assert!(matches!(find(&TABLE, &Method::GET, "/v1/nope"), Found::NotFound));
        assert!(is_limited(&TABLE, "/v1/kinds") && !is_limited(&TABLE, "/readyz"));
        assert!(!is_limited(&TABLE, "/nowhere"));
    }

    #[test]
    fn every_id_path_is_a_limited_route() {
        let ids: Vec<String> =
            idgen_core::Kind::ALL.iter().map(|kind| format!("/v1/ids/{kind}")).collect();
        let tutorial = [
            "/generate_uuid",
            "/generate_timestamp_id",
            "/generate_counter_id",
            "/generate_snowflake_id",
            "/generate_random_string/21",
        ];
        for path in ids.iter().map(String::as_str).chain(tutorial) {
            assert!(matches!(find(&TABLE, &Method::GET, path), Found::Route(_)), "{path}");
            assert!(is_limited(&TABLE, path), "{path}");
        }
        // Unknown kinds and lengths that are not numbers reach their route (which refuses
        // them with its own error); paths no route has are 404s, whatever the method.
        for (path, handler) in [
            ("/v1/ids/nope", Handler::IdsGet),
            ("/v1/ids/UUID", Handler::IdsGet),
            ("/generate_random_string/-1", Handler::GenerateRandomString),
            ("/v1/decode/uuid/x", Handler::Decode),
        ] {
            let Found::Route(entry) = find(&TABLE, &Method::GET, path) else {
                panic!("{path} has no route")
            };
            assert_eq!(entry.handler, handler, "{path}");
        }
        for path in ["", "/v1/ids/", "/v1/ids/uuid/", "/generate_random_string/", "/generate_uuid/"]
        {
            assert!(matches!(find(&TABLE, &Method::GET, path), Found::NotFound), "{path}");
            assert!(matches!(find(&TABLE, &Method::POST, path), Found::NotFound), "{path}");
        }
        let patterns: std::collections::BTreeSet<&str> =
            TABLE.iter().map(|entry| entry.pattern.as_str()).collect();
        assert_eq!(patterns.len(), 19);
    }
}
