//! [`BufferedClient`]: IDs served from local pools that background batch requests keep full.
//!
//! This file holds the public API: [`BufferConfig`] and [`BufferedClient`], one typed method
//! per kind. The pools behind it (how they refill, how failures reach waiting callers, and how
//! `max_age` drops time-based IDs) are in [`pool`].

mod pool;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idgen_core::counter::CounterName;
use idgen_core::ksuid::Ksuid;
use idgen_core::random::Alphabet;
use idgen_core::typeid::{Prefix, TypeId};
use idgen_core::{Kind, Ulid, Uuid};

use self::pool::{Pool, Source, lock};
use crate::{Client, Error, RandomOptions};

/// Settings of a [`BufferedClient`]: how many IDs one refill fetches, when a refill starts,
/// and how old a buffered time-based ID may get.
///
/// ```
/// use std::time::Duration;
/// use idgen_client::BufferConfig;
///
/// let config = BufferConfig::default();
/// assert_eq!(config.batch_size(), 1000);
/// assert_eq!(config.low_water(), 250, "a quarter of the batch size unless set");
/// assert_eq!(config.max_age(), Some(Duration::from_secs(1)));
///
/// let config = BufferConfig::default()
///     .with_batch_size(5000)
///     .with_max_age(Some(Duration::from_millis(200)));
/// assert_eq!(config.low_water(), 1250);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    batch_size: u32,
    /// `None`: a quarter of `batch_size`.
    low_water: Option<u32>,
    max_age: Option<Duration>,
}

impl BufferConfig {
    /// IDs fetched by one refill unless [`BufferConfig::with_batch_size`] says otherwise.
    pub const DEFAULT_BATCH_SIZE: u32 = 1000;

    /// The longest a time-based ID waits in a pool unless [`BufferConfig::with_max_age`] says
    /// otherwise.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1);

    /// The defaults: batches of 1000, refill below 250, `max_age` 1 s.
    pub fn new() -> Self {
        Self {
            batch_size: Self::DEFAULT_BATCH_SIZE,
            low_water: None,
            max_age: Some(Self::DEFAULT_MAX_AGE),
        }
    }

    /// IDs fetched by one refill request (0 counts as 1). Keep it at or below the server's
    /// `IDGEN_MAX_BATCH` (10,000 by default), or every refill fails with 400 `invalid_count`.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// A refill starts when a call leaves fewer than `low_water` IDs in the pool (capped at
    /// the batch size). 0 waits until the pool is empty, so callers will wait on every refill.
    #[must_use]
    pub fn with_low_water(mut self, low_water: u32) -> Self {
        self.low_water = Some(low_water);
        self
    }

    /// The longest a uuid7, ulid, snowflake or timestamp may wait in a pool, counted from when
    /// the request that fetched it was sent. Older IDs are dropped, never served. `None`
    /// means no limit. Other kinds (uuid, counter, random) carry no time and never expire.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// IDs fetched by one refill.
    pub fn batch_size(&self) -> u32 {
        self.batch_size
    }

    /// The pool size below which a refill starts.
    pub fn low_water(&self) -> u32 {
        self.low_water.unwrap_or(self.batch_size / 4).min(self.batch_size)
    }

    /// The longest a time-based ID may wait in a pool; `None` is no limit.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A [`Client`] that serves IDs from local pools. Background batch requests refill the pools
/// before they run dry. Most calls then cost a lock and a pop, not a round trip.
///
/// Each kind has its own pool, as does each counter name and each random length and alphabet.
/// Cheap to clone: clones share the pools. It needs a tokio runtime, as [`Client`] does.
///
/// # Guarantees
///
/// - **Uniqueness, always.** Each ID the server issued is served at most once. IDs can be
///   lost, never repeated:
///   - those still buffered when the last clone is dropped;
///   - time-based ones dropped for exceeding `max_age`;
///   - those of a refill whose answer was lost on the way: the retry asks for new ones.
///
///   So counters have gaps.
/// - **Order within a pool.** IDs are served in the order the server generated them within a
///   pool. A single task that calls `snowflake()` (or `counter("orders")`, `uuid7()`, `ulid()`,
///   `timestamp()`) repeatedly therefore sees strictly increasing values. Tasks sharing one
///   client each see an increasing sequence, but their values interleave. With several
///   endpoints ([`ClientBuilder::endpoints`](crate::ClientBuilder::endpoints)) this holds
///   between moves: after one, the next server's IDs may sort below the previous server's.
/// - **No order across clients, processes or servers.** Each `BufferedClient` holds its own
///   batches. A later call on one client can return a smaller ID than an earlier call on
///   another one, and the same goes between the pools of different kinds or counter names.
/// - **Freshness.** A time-based ID (uuid7, ulid, snowflake) may be up to `max_age` old. Its
///   embedded time lags real time by up to `max_age`, measured from when the refill request
///   was sent. Timestamp IDs are the exception. A batch of N claims N consecutive
///   milliseconds, so under buffering their values run ahead of the clock. `max_age` still
///   bounds how long ago they were issued.
///
/// ```no_run
/// use idgen_client::{BufferConfig, BufferedClient, Client};
///
/// # async fn example() -> Result<(), idgen_client::Error> {
/// let client = Client::new("http://127.0.0.1:8080")?;
/// let ids = BufferedClient::new(client, BufferConfig::default());
/// let order_id = ids.snowflake().await?; // first call waits for a batch of 1000
/// let next_order_id = ids.snowflake().await?; // served from the pool
/// assert!(next_order_id > order_id);
/// let invoice_number = ids.counter("invoices").await?;
/// # let _ = invoice_number;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BufferedClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: BufferConfig,
    uuid: Arc<Pool<Uuid>>,
    uuid7: Arc<Pool<Uuid>>,
    ulid: Arc<Pool<Ulid>>,
    snowflake: Arc<Pool<u64>>,
    timestamp: Arc<Pool<u64>>,
    ksuid: Arc<Pool<Ksuid>>,
    /// One pool per counter name, kept for the client's lifetime.
    counters: Mutex<HashMap<String, Arc<Pool<u64>>>>,
    /// One pool per random length and alphabet, kept for the client's lifetime.
    randoms: Mutex<HashMap<RandomKey, Arc<Pool<String>>>>,
    /// One pool per TypeID prefix, kept for the client's lifetime.
    typeids: Mutex<HashMap<String, Arc<Pool<TypeId>>>>,
}

/// A random pool's key: length and alphabet (a caller's own by its characters).
type RandomKey = (usize, Alphabet);

impl BufferedClient {
    /// Buffers IDs from `client`'s server. Nothing is fetched until the first call of each kind.
    pub fn new(client: Client, config: BufferConfig) -> Self {
        let inner = Inner {
            uuid: Pool::new(&client, Source::Kind(Kind::Uuid), &config),
            uuid7: Pool::new(&client, Source::Kind(Kind::Uuid7), &config),
            ulid: Pool::new(&client, Source::Kind(Kind::Ulid), &config),
            snowflake: Pool::new(&client, Source::Kind(Kind::Snowflake), &config),
            timestamp: Pool::new(&client, Source::Kind(Kind::Timestamp), &config),
            ksuid: Pool::new(&client, Source::Kind(Kind::Ksuid), &config),
            counters: Mutex::default(),
            randoms: Mutex::default(),
            typeids: Mutex::default(),
            client,
            config,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The unbuffered client underneath, for batches, `decode` and health checks.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The settings this client was built with.
    pub fn config(&self) -> BufferConfig {
        self.inner.config
    }

    /// One random (version 4) UUID.
    ///
    /// # Errors
    /// As [`Client::uuid`], when the pool is empty and the refill fails.
    pub async fn uuid(&self) -> Result<Uuid, Error> {
        self.inner.uuid.take().await
    }

    /// One version 7 UUID, newer than every uuid7 this client served before. It is at most
    /// `max_age` old.
    ///
    /// # Errors
    /// As [`Client::uuid7`], when the pool is empty and the refill fails.
    pub async fn uuid7(&self) -> Result<Uuid, Error> {
        self.inner.uuid7.take().await
    }

    /// One ULID, greater than every ULID this client served before. It is at most `max_age`
    /// old.
    ///
    /// # Errors
    /// As [`Client::ulid`], when the pool is empty and the refill fails.
    pub async fn ulid(&self) -> Result<Ulid, Error> {
        self.inner.ulid.take().await
    }

    /// One snowflake, greater than every snowflake this client served before. It is at most
    /// `max_age` old.
    ///
    /// # Errors
    /// As [`Client::snowflake`], when the pool is empty and the refill fails.
    pub async fn snowflake(&self) -> Result<u64, Error> {
        self.inner.snowflake.take().await
    }

    /// One timestamp ID, greater than every one this client served before. It was issued at
    /// most `max_age` ago. A batch claims one millisecond per ID, so buffered values run ahead
    /// of the clock.
    ///
    /// # Errors
    /// As [`Client::timestamp`], when the pool is empty and the refill fails.
    pub async fn timestamp(&self) -> Result<u64, Error> {
        self.inner.timestamp.take().await
    }

    /// One KSUID, greater than every KSUID this client served before. It is at most `max_age`
    /// old.
    ///
    /// # Errors
    /// As [`Client::ksuid`], when the pool is empty and the refill fails.
    pub async fn ksuid(&self) -> Result<Ksuid, Error> {
        self.inner.ksuid.take().await
    }

    /// The next value of counter `name` from this client's pool for it. It is greater than
    /// every value of that counter this client served before. Each refill reserves
    /// `batch_size` values, so other clients see gaps and values left in the pool are never
    /// issued.
    ///
    /// A name the server would refuse is not buffered: the call goes straight to the server
    /// and returns its 400 `invalid_counter_name`.
    ///
    /// # Errors
    /// As [`Client::counter`], when the pool is empty and the refill fails.
    pub async fn counter(&self, name: &str) -> Result<u64, Error> {
        if CounterName::parse(name).is_err() {
            return self.inner.client.counter(name).await;
        }
        let pool = {
            let mut counters = lock(&self.inner.counters);
            match counters.get(name) {
                Some(pool) => Arc::clone(pool),
                None => {
                    let source = Source::Counter(name.to_owned());
                    let pool = Pool::new(&self.inner.client, source, &self.inner.config);
                    counters.insert(name.to_owned(), Arc::clone(&pool));
                    pool
                }
            }
        };
        pool.take().await
    }

    /// One random string from the pool for these options' length and alphabet.
    ///
    /// # Errors
    /// As [`Client::random`], when the pool is empty and the refill fails.
    pub async fn random(&self, options: RandomOptions) -> Result<String, Error> {
        let key = (options.length.get(), options.alphabet);
        let pool = {
            let mut randoms = lock(&self.inner.randoms);
            Arc::clone(randoms.entry(key).or_insert_with(|| {
                Pool::new(&self.inner.client, Source::Random(options), &self.inner.config)
            }))
        };
        pool.take().await
    }

    /// One TypeID with the type `prefix` (`""` for none) from this client's pool for that
    /// prefix: greater than every one of that prefix this client served before, at most
    /// `max_age` old. A prefix the server would refuse is not buffered: the call goes straight
    /// to the server and returns its 400 `invalid_prefix`.
    ///
    /// # Errors
    /// As [`Client::typeid`], when the pool is empty and the refill fails.
    pub async fn typeid(&self, prefix: &str) -> Result<TypeId, Error> {
        if Prefix::parse(prefix).is_err() {
            return self.inner.client.typeid(prefix).await;
        }
        let pool = {
            let mut typeids = lock(&self.inner.typeids);
            Arc::clone(typeids.entry(prefix.to_owned()).or_insert_with(|| {
                let source = Source::TypeId(prefix.to_owned());
                Pool::new(&self.inner.client, source, &self.inner.config)
            }))
        };
        pool.take().await
    }
}

impl fmt::Debug for BufferedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferedClient")
            .field("client", &self.inner.client)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_clamps() {
        let config = BufferConfig::default();
        assert_eq!((config.batch_size(), config.low_water()), (1000, 250));
        assert_eq!(config.max_age(), Some(Duration::from_secs(1)));
        assert_eq!(BufferConfig::new().with_batch_size(0).batch_size(), 1);
        assert_eq!(BufferConfig::new().with_batch_size(10).low_water(), 2);
        assert_eq!(BufferConfig::new().with_batch_size(10).with_low_water(50).low_water(), 10);
        assert_eq!(BufferConfig::new().with_low_water(0).low_water(), 0);
        assert_eq!(BufferConfig::new().with_max_age(None).max_age(), None);
    }
}
