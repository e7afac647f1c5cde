//! [`Client`]: one typed async method per route of the idgen HTTP API.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen_core::ksuid::Ksuid;
use idgen_core::typeid::TypeId;
use idgen_core::wire::{BoundsResponse, DecodeResponse, HealthResponse, IdRequest, KindsResponse};
use idgen_core::{Kind, Ulid, Uuid};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::batch::Batches;
use crate::endpoint::{DEFAULT_COOL_DOWN, Endpoints, ids_url, origin, parse_base_url, route_url};
use crate::error::{Error, api_error, parse_retry_after, transport_reason};
pub use crate::request::RandomOptions;
use crate::request::{IdAnswer, counted, named, parse_id, prefixed};
use crate::retry::{self, RetryPolicy};
use crate::security::{self, ApiKey, CaSource};

/// How long one request may take, from connecting to the last byte, unless
/// [`ClientBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take unless [`ClientBuilder::connect_timeout`] says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest batch the server hands out by default (`IDGEN_MAX_BATCH`); the default chunk
/// size of [`Client::batches`].
pub const DEFAULT_CHUNK_SIZE: u32 = 10_000;

/// Builds a [`Client`] with non-default settings; see [`Client::builder`].
///
/// Its `Debug` never shows the API key:
///
/// ```
/// let builder = idgen_client::Client::builder("https://ids.internal").api_key("idg_s3cr3t");
/// assert!(!format!("{builder:?}").contains("s3cr3t"));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientBuilder {
    base_urls: Vec<String>,
    retry_policy: RetryPolicy,
    cool_down: Duration,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    api_key: Option<ApiKey>,
    ca_certificates: Vec<CaSource>,
}

impl ClientBuilder {
    /// Several servers of one deployment, in order of preference; replaces the URL given to
    /// [`Client::builder`]. Each request goes to the first endpoint that is in use, and moves
    /// on to the next at once when one cannot serve it (no connection, no answer in time,
    /// 503). An endpoint that failed is avoided for a while
    /// ([`endpoint_cool_down`](Self::endpoint_cool_down)), after which one request tries it
    /// again: if that succeeds, requests go back to it. The moves count as attempts of the
    /// [`RetryPolicy`] (so [`RetryPolicy::none`] makes none).
    ///
    /// List only servers that never issue the same ID as each other: each with its own
    /// snowflake worker id (`IDGEN_WORKER_ID`) and, for counters and timestamps, all sharing one
    /// Redis (`IDGEN_REDIS_URL`). Embedded-mode servers each count on their own, so moving
    /// between them would repeat counter values and timestamp IDs. Order holds per server
    /// only: after a move, time-ordered IDs from the next server may sort before earlier ones.
    ///
    /// ```
    /// let client = idgen_client::Client::builder("http://ids-a:8080")
    ///     .endpoints(["http://ids-a:8080", "http://ids-b:8080", "http://ids-c:8080"])
    ///     .build()?;
    /// assert_eq!(client.endpoints().count(), 3);
    /// assert_eq!(client.base_url(), "http://ids-a:8080/", "the first is preferred");
    /// # Ok::<(), idgen_client::Error>(())
    /// ```
    pub fn endpoints<I>(mut self, base_urls: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.base_urls = base_urls.into_iter().map(Into::into).collect();
        self
    }

    /// When and how failed requests are sent again; [`RetryPolicy::default`] unless set, and
    /// [`RetryPolicy::none`] for one attempt per call.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// How long an endpoint that failed is avoided before one request tries it again
    /// ([`DEFAULT_COOL_DOWN`](crate::DEFAULT_COOL_DOWN), 1 s, unless set). Each failed try
    /// doubles it, up to 32 times this.
    pub fn endpoint_cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Limit on a whole request, from connecting to the last byte of the body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Limit on establishing the TCP (and TLS) connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header; `idgen-client/<version>` by default.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The API key, sent as `Authorization: Bearer <secret>` on every request; a server run
    /// with `IDGEN_API_KEYS_FILE` answers 401 `unauthorized` without a key it knows, and 403
    /// `forbidden` for a kind outside the key's scopes (both [`Error::Api`]).
    ///
    /// The key is never printed: `Debug` of the builder and of the client shows it redacted,
    /// and the header is marked sensitive. Over `http://` it crosses the network in clear
    /// text: use `https://` beyond the local machine.
    pub fn api_key(mut self, secret: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey::new(secret.into()));
        self
    }

    /// Trusts the CA certificates in the PEM file at `path` (one or more
    /// `-----BEGIN CERTIFICATE-----` blocks) for an `https://` server, e.g. a private CA or a
    /// self-signed server certificate's issuer. Read by [`build`](Self::build).
    ///
    /// With any CA given (this or [`ca_pem`](Self::ca_pem), each call adds), the server's
    /// certificate must chain to one of them: the system's roots are no longer consulted, as
    /// with curl's `--cacert`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certificates.push(CaSource::File(path.into()));
        self
    }

    /// As [`ca_file`](Self::ca_file), with the PEM text itself.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates.push(CaSource::Pem(pem.into()));
        self
    }

    /// Checks the settings and builds the client. No request is sent.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when a base URL is not an absolute `http` or `https` URL, or
    /// [`endpoints`](Self::endpoints) was given none;
    /// [`Error::InvalidApiKey`] for an empty key or one with characters other than visible
    /// ASCII; [`Error::InvalidCertificate`] when a CA file cannot be read or holds no valid
    /// PEM certificate.
    ///
    /// ```
    /// use idgen_client::{Client, Error};
    ///
    /// let result = Client::builder("https://ids.internal").ca_pem("not PEM").build();
    /// assert!(matches!(result, Err(Error::InvalidCertificate { .. })));
    /// ```
    pub fn build(self) -> Result<Client, Error> {
        if self.base_urls.is_empty() {
            let reason = "no server URL given".to_owned();
            return Err(Error::InvalidUrl { url: String::new(), reason });
        }
        let bases =
            self.base_urls.iter().map(|url| parse_base_url(url)).collect::<Result<Vec<_>, _>>()?;
        let mut headers = HeaderMap::new();
        if let Some(api_key) = &self.api_key {
            headers.insert(AUTHORIZATION, api_key.authorization()?);
        }
        let certificates = security::certificates(&self.ca_certificates)?;
        let from = if certificates.is_empty() {
            "the system's trust store"
        } else {
            "the CA certificates given"
        };
        let tls = security::tls_config(certificates)
            .map_err(|reason| Error::InvalidCertificate { from: from.to_owned(), reason })?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            // reqwest drops `Authorization` when a redirect leaves the origin.
            .default_headers(headers)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|source| Error::Transport {
                url: origin(&bases[0]),
                reason: format!("cannot set up the HTTP client: {source}"),
                source,
            })?;
        let endpoints = Arc::new(Endpoints::new(bases, self.cool_down));
        Ok(Client { http, endpoints, timeout: self.timeout, retry_policy: self.retry_policy })
    }
}

/// An async client of an idgen server, or of several ([`ClientBuilder::endpoints`]).
///
/// Cheap to clone (the connection pool and what it knows of each endpoint are shared); build
/// one and reuse it. Its `Debug` shows no API key.
///
/// Failed requests are sent again under its [`RetryPolicy`] (429, 503, no connection, no
/// answer in time; never another 4xx), which is safe for ID requests: a lost answer leaves a
/// gap, never a duplicate.
///
/// ```no_run
/// use idgen_client::{Client, RandomOptions, Alphabet, Length};
///
/// # async fn example() -> Result<(), idgen_client::Error> {
/// let client = Client::new("http://127.0.0.1:8080")?;
/// let order_id = client.snowflake().await?;
/// let ids = client.uuid7s(100).await?;
/// let token = client
///     .random(RandomOptions::new(Length::new(32).expect("32 is in 1..=1024"), Alphabet::Hex))
///     .await?;
/// let parts = client.decode(idgen_client::Kind::Snowflake, &order_id.to_string()).await?;
/// println!("{order_id} from worker {:?}; {} uuids; token {token}", parts.worker_id, ids.len());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Arc<Endpoints>,
    timeout: Duration,
    retry_policy: RetryPolicy,
}

impl Client {
    /// A client with default settings for the server at `base_url`, e.g.
    /// `http://127.0.0.1:8080` (a path prefix such as `https://example.com/idgen` is kept).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when `base_url` is not an absolute `http` or `https` URL.
    ///
    /// ```
    /// use idgen_client::{Client, Error};
    ///
    /// let client = Client::new("http://127.0.0.1:8080")?; // no request is sent yet
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080/");
    /// assert!(matches!(Client::new("127.0.0.1:8080"), Err(Error::InvalidUrl { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(base_url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url).build()
    }

    /// A [`ClientBuilder`] to set the timeout, user agent, API key, CA certificates, retry
    /// policy or further servers.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_urls: vec![base_url.into()],
            retry_policy: RetryPolicy::default(),
            cool_down: DEFAULT_COOL_DOWN,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: concat!("idgen-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            api_key: None,
            ca_certificates: Vec::new(),
        }
    }

    /// The server's base URL; with several endpoints, the first (preferred) one's.
    pub fn base_url(&self) -> &str {
        self.endpoints().next().expect("a client has at least one endpoint")
    }

    /// Every endpoint's base URL, in order of preference.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &str> {
        self.endpoints.urls().map(Url::as_str)
    }

    /// The policy failed requests are retried under.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry_policy
    }

    /// One random (version 4) UUID.
    pub async fn uuid(&self) -> Result<Uuid, Error> {
        self.one(Kind::Uuid, IdRequest::default()).await
    }

    /// `count` random (version 4) UUIDs.
    pub async fn uuids(&self, count: u32) -> Result<Vec<Uuid>, Error> {
        self.many(Kind::Uuid, counted(count)).await
    }

    /// One time-ordered (version 7) UUID.
    pub async fn uuid7(&self) -> Result<Uuid, Error> {
        self.one(Kind::Uuid7, IdRequest::default()).await
    }

    /// `count` version 7 UUIDs, strictly increasing.
    pub async fn uuid7s(&self, count: u32) -> Result<Vec<Uuid>, Error> {
        self.many(Kind::Uuid7, counted(count)).await
    }

    /// One ULID.
    pub async fn ulid(&self) -> Result<Ulid, Error> {
        self.one(Kind::Ulid, IdRequest::default()).await
    }

    /// `count` ULIDs, strictly increasing.
    pub async fn ulids(&self, count: u32) -> Result<Vec<Ulid>, Error> {
        self.many(Kind::Ulid, counted(count)).await
    }

    /// One 64-bit snowflake (time, worker, sequence).
    pub async fn snowflake(&self) -> Result<u64, Error> {
        self.one(Kind::Snowflake, IdRequest::default()).await
    }

    /// `count` snowflakes, strictly increasing.
    pub async fn snowflakes(&self, count: u32) -> Result<Vec<u64>, Error> {
        self.many(Kind::Snowflake, counted(count)).await
    }

    /// One timestamp ID: milliseconds since the Unix epoch, unique per server.
    pub async fn timestamp(&self) -> Result<u64, Error> {
        self.one(Kind::Timestamp, IdRequest::default()).await
    }

    /// `count` timestamp IDs, strictly increasing.
    pub async fn timestamps(&self, count: u32) -> Result<Vec<u64>, Error> {
        self.many(Kind::Timestamp, counted(count)).await
    }

    /// The next value of the counter `name` (`[A-Za-z0-9_.-]{1,64}`; the server's default
    /// counter is `default`).
    pub async fn counter(&self, name: &str) -> Result<u64, Error> {
        self.one(Kind::Counter, named(name, None)).await
    }

    /// The next `count` values of the counter `name`, strictly increasing.
    pub async fn counters(&self, name: &str, count: u32) -> Result<Vec<u64>, Error> {
        self.many(Kind::Counter, named(name, Some(count))).await
    }

    /// One random string.
    pub async fn random(&self, options: RandomOptions) -> Result<String, Error> {
        self.one(Kind::Random, options.to_request(None)).await
    }

    /// `count` random strings.
    pub async fn randoms(&self, options: RandomOptions, count: u32) -> Result<Vec<String>, Error> {
        self.many(Kind::Random, options.to_request(Some(count))).await
    }

    /// A TypeID with the type `prefix` (`""` for none): its UUID a UUIDv7 from the server's
    /// uuid7 generator.
    ///
    /// # Errors
    /// 400 `invalid_prefix` for a prefix other than 0 to 63 of `a-z` and `_`, not starting or
    /// ending with `_`; otherwise as [`Client::uuid7`].
    pub async fn typeid(&self, prefix: &str) -> Result<TypeId, Error> {
        self.one(Kind::TypeId, prefixed(prefix, None)).await
    }

    /// A KSUID: its second from the server's clock, a random payload (+1 within a second).
    ///
    /// # Errors
    /// As [`Client::uuid7`].
    pub async fn ksuid(&self) -> Result<Ksuid, Error> {
        self.one(Kind::Ksuid, IdRequest::default()).await
    }

    /// `count` KSUIDs, strictly increasing.
    ///
    /// # Errors
    /// As [`Client::uuid7`].
    pub async fn ksuids(&self, count: u32) -> Result<Vec<Ksuid>, Error> {
        self.many(Kind::Ksuid, counted(count)).await
    }

    /// `count` TypeIDs with the type `prefix`, strictly increasing.
    ///
    /// # Errors
    /// As [`Client::typeid`].
    pub async fn typeids(&self, prefix: &str, count: u32) -> Result<Vec<TypeId>, Error> {
        self.many(Kind::TypeId, prefixed(prefix, Some(count))).await
    }

    /// IDs of any kind, as the strings the server sent: one without `request.count`, else
    /// `count`. Parameters are passed through unchecked, so the server's validation (and its
    /// error codes) apply.
    pub async fn ids(&self, kind: Kind, request: &IdRequest) -> Result<Vec<String>, Error> {
        Ok(self.ids_sent_at(kind, request).await?.0)
    }

    /// [`Client::ids`], and when the attempt that got them was sent: a retry's, if there was
    /// one, so that their age does not include the waits before it.
    pub(crate) async fn ids_sent_at(
        &self,
        kind: Kind,
        request: &IdRequest,
    ) -> Result<(Vec<String>, Instant), Error> {
        let (answer, sent) =
            self.get_timed::<IdAnswer>(|base| ids_url(base, kind, request)).await?;
        let ids = answer.into_ids()?;
        let expected = request.count.unwrap_or(1);
        if ids.len() != expected as usize {
            return Err(Error::InvalidResponse {
                message: format!("asked for {expected} {kind} ids, got {}", ids.len()),
            });
        }
        Ok((ids, sent))
    }

    /// As [`Client::ids`], as the server's `text/plain` answer: one ID per line, each line
    /// ended by `\n`. No string per ID is made, which is what moving millions costs
    /// most on the client; the lines are counted against the request's `count` and checked
    /// to be printable ASCII (a space only for `random`).
    ///
    /// # Errors
    /// As [`Client::ids`]; [`Error::InvalidResponse`] for a body of the wrong number of lines
    /// or with other characters.
    pub async fn ids_text(&self, kind: Kind, request: &IdRequest) -> Result<String, Error> {
        let body = retry::send(&self.retry_policy, &self.endpoints, |base, limit| {
            let url = ids_url(&base, kind, request);
            async move { self.fetch_once(&url, limit, "text/plain").await }
        })
        .await?;
        let expected = request.count.unwrap_or(1) as usize;
        // One pass the compiler can vectorise (no early exit): lines, and whether any byte is
        // neither a newline nor printable ASCII (0x21..=0x7e; from 0x20 for `random`, whose
        // caller's own alphabet may hold a space).
        let lowest = if kind == Kind::Random { 0x20u8 } else { 0x21 };
        let span = 0x7e - lowest;
        let (lines, unprintable) = body.iter().fold((0usize, false), |(lines, bad), &byte| {
            let newline = byte == b'\n';
            (lines + usize::from(newline), bad | (!newline & (byte.wrapping_sub(lowest) > span)))
        });
        if lines != expected || unprintable || body.last() != Some(&b'\n') {
            return Err(Error::InvalidResponse {
                message: format!(
                    "asked for {expected} {kind} ids as text, got {lines} lines of {} bytes",
                    body.len()
                ),
            });
        }
        String::from_utf8(body.into()).map_err(|_| Error::InvalidResponse {
            message: "an ID answer that is not UTF-8".to_owned(),
        })
    }

    /// `total` IDs of `kind` fetched in requests of at most `chunk_size` (which should not
    /// exceed the server's `IDGEN_MAX_BATCH`), for streaming large amounts: call
    /// [`Batches::next_batch`] until it returns `None`. `request.count` is ignored.
    pub fn batches(&self, kind: Kind, request: IdRequest, total: u64, chunk_size: u32) -> Batches {
        Batches::new(self.clone(), kind, request, total, chunk_size)
    }

    /// Takes an ID apart: time for the sortable kinds, worker and sequence for snowflakes,
    /// version and variant for UUIDs.
    pub async fn decode(&self, kind: Kind, id: &str) -> Result<DecodeResponse, Error> {
        self.get(|base| route_url(base, &["v1", "decode", kind.name(), id])).await
    }

    /// The smallest and largest ID of `kind` at `time` (Unix ms, or an RFC 3339 date-time such
    /// as `2026-12-06T21:00:00Z`): `WHERE id >= min AND id <= max` selects that millisecond
    /// (that second for ksuid). `prefix` is a TypeID's, put in front of both; `""` for none
    /// and for the other kinds.
    ///
    /// # Errors
    /// As [`Client::decode`]; the server's 400 `not_time_ordered` for a kind whose IDs are not
    /// ordered by time, `invalid_time` for a time it cannot hold.
    pub async fn bounds(
        &self,
        kind: Kind,
        time: &str,
        prefix: &str,
    ) -> Result<BoundsResponse, Error> {
        self.get(|base| {
            let mut url = route_url(base, &["v1", "bounds", kind.name()]);
            url.query_pairs_mut().append_pair("time", time);
            if !prefix.is_empty() {
                url.query_pairs_mut().append_pair("prefix", prefix);
            }
            url
        })
        .await
    }

    /// The kinds the server issues.
    pub async fn kinds(&self) -> Result<KindsResponse, Error> {
        self.get(|base| route_url(base, &["v1", "kinds"])).await
    }

    /// `GET /healthz`: the process is up. One attempt, never retried, on the endpoint the next
    /// request would go to.
    pub async fn health(&self) -> Result<HealthResponse, Error> {
        self.check(&["healthz"]).await
    }

    /// `GET /readyz`: the server can issue every kind. A server that cannot answers 503, which
    /// comes back as [`Error::Api`] with code `unavailable` and the reasons as the message.
    /// One attempt, never retried (a check must report the state, not wait it out), on the
    /// endpoint the next request would go to.
    pub async fn ready(&self) -> Result<HealthResponse, Error> {
        self.check(&["readyz"]).await
    }

    async fn one<T>(&self, kind: Kind, request: IdRequest) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        let mut ids = self.many(kind, request).await?;
        Ok(ids.pop().expect("ids() checked that exactly one id came back"))
    }

    async fn many<T>(&self, kind: Kind, request: IdRequest) -> Result<Vec<T>, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        let ids = self.ids(kind, &request).await?;
        ids.iter().map(|id| parse_id(kind, id)).collect()
    }

    /// `GET` of the route `url` puts on an endpoint's base, under the client's retry policy.
    async fn get<T: DeserializeOwned>(&self, url: impl Fn(&Url) -> Url) -> Result<T, Error> {
        Ok(self.get_timed(url).await?.0)
    }

    /// [`get`](Self::get), and when the attempt that succeeded was sent.
    async fn get_timed<T>(&self, url: impl Fn(&Url) -> Url) -> Result<(T, Instant), Error>
    where
        T: DeserializeOwned,
    {
        retry::send(&self.retry_policy, &self.endpoints, |base, limit| {
            let sent = Instant::now();
            let attempt = self.get_once(url(&base), limit);
            async move { Ok((attempt.await?, sent)) }
        })
        .await
    }

    /// A health route, one attempt.
    async fn check(&self, segments: &[&str]) -> Result<HealthResponse, Error> {
        let once = RetryPolicy::none();
        let url = |base: &Url| route_url(base, segments);
        retry::send(&once, &self.endpoints, |base, limit| self.get_once(url(&base), limit)).await
    }

    /// One attempt, its timeout cut to `limit` if that is shorter than the client's.
    async fn get_once<T: DeserializeOwned>(
        &self,
        url: Url,
        limit: Option<Duration>,
    ) -> Result<T, Error> {
        let body = self.fetch_once(&url, limit, "application/json").await?;
        serde_json::from_slice(&body).map_err(|error| Error::InvalidResponse {
            message: format!("GET {} answered unexpected JSON: {error}", url.path()),
        })
    }

    /// One attempt's body, asking for `accept`; an error status is the server's JSON error.
    async fn fetch_once(
        &self,
        url: &Url,
        limit: Option<Duration>,
        accept: &'static str,
    ) -> Result<bytes::Bytes, Error> {
        let timeout = limit.map_or(self.timeout, |limit| limit.min(self.timeout));
        let transport = |source| Error::Transport {
            url: origin(url),
            reason: transport_reason(&source, Some(timeout)),
            source,
        };
        let response = self
            .http
            .get(url.clone())
            .timeout(timeout)
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), retry_after, &body));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idgen_core::random::{Alphabet, Length};

    fn base(url: &str) -> Url {
        parse_base_url(url).expect("valid test URL")
    }

    fn check_ids_url(url: &str, kind: Kind, request: IdRequest, expected: &str) {
        assert_eq!(ids_url(&base(url), kind, &request).as_str(), expected);
    }

    #[test]
    fn builds_id_urls() {
        check_ids_url(
            "http://127.0.0.1:8080",
            Kind::Uuid,
            IdRequest::default(),
            "http://127.0.0.1:8080/v1/ids/uuid",
        );
        check_ids_url("http://h:1/", Kind::Uuid7, counted(5), "http://h:1/v1/ids/uuid7?count=5");
        check_ids_url(
            "http://h:1",
            Kind::Counter,
            named("orders.eu-1", Some(3)),
            "http://h:1/v1/ids/counter?count=3&name=orders.eu-1",
        );
        check_ids_url(
            "http://h:1",
            Kind::Random,
            IdRequest { length: Some(32), alphabet: Some("hex".into()), ..IdRequest::default() },
            "http://h:1/v1/ids/random?length=32&alphabet=hex",
        );
        check_ids_url(
            "http://h:1",
            Kind::TypeId,
            IdRequest { count: Some(2), prefix: Some("user".into()), ..IdRequest::default() },
            "http://h:1/v1/ids/typeid?count=2&prefix=user",
        );
        // Names the server will refuse still reach it intact, encoded.
        check_ids_url(
            "http://h:1",
            Kind::Counter,
            named("a b&c=d", None),
            "http://h:1/v1/ids/counter?name=a+b%26c%3Dd",
        );
        // A path prefix (a reverse proxy) is kept; query and fragment are dropped.
        check_ids_url(
            "https://example.com/idgen/?x=1#top",
            Kind::Ulid,
            IdRequest::default(),
            "https://example.com/idgen/v1/ids/ulid",
        );
        check_ids_url(
            "https://example.com/idgen",
            Kind::Ulid,
            counted(2),
            "https://example.com/idgen/v1/ids/ulid?count=2",
        );
    }

    #[test]
    fn builds_other_urls_with_encoded_segments() {
        let base = base("http://h:1/base");
        assert_eq!(
            route_url(&base, &["v1", "decode", "uuid", "a/b?c"]).as_str(),
            "http://h:1/base/v1/decode/uuid/a%2Fb%3Fc"
        );
        assert_eq!(route_url(&base, &["v1", "kinds"]).as_str(), "http://h:1/base/v1/kinds");
        assert_eq!(route_url(&base, &["healthz"]).as_str(), "http://h:1/base/healthz");
    }

    #[test]
    fn takes_a_list_of_endpoints_and_checks_each() {
        let client = Client::builder("http://unused:1")
            .endpoints(["http://a:1", "https://b:2/prefix"])
            .build()
            .expect("valid URLs");
        assert_eq!(client.endpoints().collect::<Vec<_>>(), ["http://a:1/", "https://b:2/prefix"]);
        assert_eq!(client.base_url(), "http://a:1/");
        assert_eq!(client.retry_policy(), RetryPolicy::default());
        let single = Client::new("http://a:1").expect("valid URL");
        assert_eq!(single.endpoints().len(), 1);

        let error = Client::builder("http://a:1").endpoints(["http://a:1", "b:2"]).build();
        match error {
            Err(Error::InvalidUrl { url, .. }) => assert_eq!(url, "b:2"),
            other => panic!("expected InvalidUrl for b:2, got {other:?}"),
        }
        let error = Client::builder("http://a:1").endpoints(Vec::<String>::new()).build();
        match error {
            Err(error @ Error::InvalidUrl { .. }) => {
                assert_eq!(error.to_string(), "invalid server url ``: no server URL given");
            }
            other => panic!("expected InvalidUrl, got {other:?}"),
        }
        let none = Client::builder("http://a:1").retry_policy(RetryPolicy::none()).build();
        assert_eq!(none.expect("valid").retry_policy().max_attempts(), 1);
    }

    #[test]
    fn refuses_unusable_base_urls() {
        for base in [
            "127.0.0.1:8080",
            "localhost:8080",
            "ftp://h/",
            "mailto:a@b",
            "http://",
            "",
            "not a url",
        ] {
            match Client::new(base) {
                Err(Error::InvalidUrl { url, .. }) => assert_eq!(url, base),
                other => panic!("{base:?}: expected InvalidUrl, got {other:?}"),
            }
        }
        let message = Client::new("localhost:8080").expect_err("no scheme").to_string();
        assert!(message.starts_with("invalid server url `localhost:8080`"), "{message}");
    }

    #[test]
    fn random_options_become_query_parameters() {
        let options = RandomOptions::new(Length::new(32).expect("in range"), Alphabet::Hex);
        let request = options.to_request(Some(4));
        assert_eq!(request.count, Some(4));
        assert_eq!(request.length, Some(32));
        assert_eq!(request.alphabet.as_deref(), Some("hex"));
        assert_eq!(request.name, None);
    }

    #[test]
    fn parses_either_id_answer() {
        let parse =
            |json: &str| serde_json::from_str::<IdAnswer>(json).expect("an object").into_ids();
        assert_eq!(parse(r#"{"id":"1"}"#).expect("one"), ["1"]);
        assert_eq!(parse(r#"{"ids":["1","2"]}"#).expect("many"), ["1", "2"]);
        assert!(matches!(parse(r#"{"idz":[]}"#), Err(Error::InvalidResponse { .. })));
        assert!(serde_json::from_str::<IdAnswer>(r#"{"ids":"1"}"#).is_err(), "ids is a list");
    }

    #[test]
    fn parses_typed_ids_or_says_why_not() {
        let uuid: Uuid =
            parse_id(Kind::Uuid, "67e55044-10b1-426f-9247-bb680e5fe0c8").expect("uuid");
        assert_eq!(uuid.get_version_num(), 4);
        let snowflake: u64 = parse_id(Kind::Snowflake, "1234567890123").expect("u64");
        assert_eq!(snowflake, 1_234_567_890_123);
        let ulid: Ulid = parse_id(Kind::Ulid, "01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("ulid");
        assert_eq!(ulid.to_string(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let error = parse_id::<u64>(Kind::Counter, "12x").expect_err("not a number");
        assert!(matches!(error, Error::InvalidResponse { .. }));
        assert!(error.to_string().contains("`12x` is not a valid counter id"), "{error}");
    }
}
