//! A blocking client (feature `blocking`): the async [`Client`](crate::Client)'s methods, for
//! code without an async runtime.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use idgen_core::ksuid::Ksuid;
use idgen_core::typeid::TypeId;
use idgen_core::wire::{BoundsResponse, DecodeResponse, HealthResponse, IdRequest, KindsResponse};
use idgen_core::{Kind, Ulid, Uuid};
use tokio::sync::oneshot;

use crate::{ClientBuilder, Error, RandomOptions, RetryPolicy};

/// A blocking client of an idgen server, or of several: every method of the async
/// [`Client`](crate::Client), the same settings, retries and failover, answered before it
/// returns.
///
/// The requests run on a thread of the client's own, with a single-threaded tokio runtime,
/// started by [`build_blocking`](ClientBuilder::build_blocking) and stopped when the last
/// clone is dropped. So it may be called from any thread, even one that runs an async
/// runtime (where it blocks that thread: use the async client there).
///
/// ```no_run
/// # fn example() -> Result<(), idgen_client::Error> {
/// let client = idgen_client::blocking::Client::new("http://127.0.0.1:8080")?;
/// let id = client.uuid7()?;
/// let order_no = client.counter("orders")?;
/// let batch = client.snowflakes(100)?;
/// println!("{id} {order_no} {}", batch.len());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: crate::Client,
    driver: Arc<Driver>,
}

/// The thread that runs the requests, and how to stop it.
#[derive(Debug)]
struct Driver {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The last clone may be dropped by a request's own task only if a caller leaked
            // one into it; never join the thread from itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl ClientBuilder {
    /// As [`build`](Self::build), for a [`blocking::Client`](Client).
    ///
    /// # Errors
    /// As [`build`](Self::build); [`Error::Runtime`] when its thread cannot be started.
    pub fn build_blocking(self) -> Result<Client, Error> {
        Client::from_async(self.build()?)
    }
}

impl Client {
    /// A client of one server with the default settings.
    ///
    /// # Errors
    /// As [`ClientBuilder::build_blocking`].
    pub fn new(base_url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url).build_blocking()
    }

    /// The builder, as for the async client; finish it with
    /// [`build_blocking`](ClientBuilder::build_blocking).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        crate::Client::builder(base_url)
    }

    /// The blocking face of an async client (which it shares its connections with).
    ///
    /// # Errors
    /// [`Error::Runtime`] when its thread cannot be started.
    pub fn from_async(inner: crate::Client) -> Result<Self, Error> {
        let runtime_error = |error: std::io::Error| Error::Runtime { reason: error.to_string() };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(runtime_error)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // The tasks spawned on the handle run while this thread is in `block_on`.
        let thread = std::thread::Builder::new()
            .name("idgen-client".to_owned())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(runtime_error)?;
        let driver = Driver { handle, stop: Some(stop), thread: Some(thread) };
        Ok(Self { inner, driver: Arc::new(driver) })
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// The first server's base URL, as given.
    pub fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry_policy()
    }

    /// Runs `call` on the client's thread and waits for its answer.
    fn run<T, F>(&self, call: impl FnOnce(crate::Client) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let future = call(self.inner.clone());
        self.driver.handle.spawn(async move {
            let _ = answer.send(future.await);
        });
        // The sender is only dropped unsent if the task panicked: pass the panic on.
        answered.recv().expect("the request's task ended without an answer (it panicked)")
    }
}

/// The blocking twin of an async method: same name, same arguments (owned where the future
/// must own them), same result.
macro_rules! blocking {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $type:ty),*) -> $out:ty) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// As the async client's method of the same name.
        pub fn $name(&self, $($arg: $type),*) -> Result<$out, Error> {
            self.run(move |client| async move { client.$name($($arg),*).await })
        }
    };
}

impl Client {
    blocking!(/// A UUID version 4.
        uuid() -> Uuid);
    blocking!(/// `count` UUIDs version 4.
        uuids(count: u32) -> Vec<Uuid>);
    blocking!(/// A UUID version 7.
        uuid7() -> Uuid);
    blocking!(/// `count` UUIDs version 7, strictly increasing.
        uuid7s(count: u32) -> Vec<Uuid>);
    blocking!(/// A ULID.
        ulid() -> Ulid);
    blocking!(/// `count` ULIDs, strictly increasing.
        ulids(count: u32) -> Vec<Ulid>);
    blocking!(/// A snowflake.
        snowflake() -> u64);
    blocking!(/// `count` snowflakes, strictly increasing.
        snowflakes(count: u32) -> Vec<u64>);
    blocking!(/// A strictly increasing millisecond timestamp.
        timestamp() -> u64);
    blocking!(/// `count` timestamps, strictly increasing.
        timestamps(count: u32) -> Vec<u64>);
    blocking!(/// A random string.
        random(options: RandomOptions) -> String);
    blocking!(/// `count` random strings.
        randoms(options: RandomOptions, count: u32) -> Vec<String>);
    blocking!(/// A KSUID.
        ksuid() -> Ksuid);
    blocking!(/// `count` KSUIDs, strictly increasing.
        ksuids(count: u32) -> Vec<Ksuid>);
    blocking!(/// The kinds the server issues, and its batch limit.
        kinds() -> KindsResponse);
    blocking!(/// `/healthz`.
        health() -> HealthResponse);
    blocking!(/// `/readyz`.
        ready() -> HealthResponse);

    /// The next value of the counter `name`.
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn counter(&self, name: &str) -> Result<u64, Error> {
        let name = name.to_owned();
        self.run(move |client| async move { client.counter(&name).await })
    }

    /// The next `count` values of the counter `name`.
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn counters(&self, name: &str, count: u32) -> Result<Vec<u64>, Error> {
        let name = name.to_owned();
        self.run(move |client| async move { client.counters(&name, count).await })
    }

    /// A TypeID with the type `prefix` (`""` for none).
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn typeid(&self, prefix: &str) -> Result<TypeId, Error> {
        let prefix = prefix.to_owned();
        self.run(move |client| async move { client.typeid(&prefix).await })
    }

    /// `count` TypeIDs with the type `prefix`, strictly increasing.
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn typeids(&self, prefix: &str, count: u32) -> Result<Vec<TypeId>, Error> {
        let prefix = prefix.to_owned();
        self.run(move |client| async move { client.typeids(&prefix, count).await })
    }

    /// Takes an ID of `kind` apart.
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn decode(&self, kind: Kind, id: &str) -> Result<DecodeResponse, Error> {
        let id = id.to_owned();
        self.run(move |client| async move { client.decode(kind, &id).await })
    }

    /// The smallest and largest ID of `kind` at `time` (see the async client's `bounds`).
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn bounds(&self, kind: Kind, time: &str, prefix: &str) -> Result<BoundsResponse, Error> {
        let (time, prefix) = (time.to_owned(), prefix.to_owned());
        self.run(move |client| async move { client.bounds(kind, &time, &prefix).await })
    }

    /// IDs of any kind as strings, as the server writes them.
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn ids(&self, kind: Kind, request: &IdRequest) -> Result<Vec<String>, Error> {
        let request = request.clone();
        self.run(move |client| async move { client.ids(kind, &request).await })
    }

    /// IDs as the server's `text/plain` lines.
    ///
    /// # Errors
    /// As the async client's method of the same name.
    pub fn ids_text(&self, kind: Kind, request: &IdRequest) -> Result<String, Error> {
        let request = request.clone();
        self.run(move |client| async move { client.ids_text(kind, &request).await })
    }
}
