//! Typed async SDK for the idgen HTTP API, and the library behind the `idgen` command.
//!
//! [`Client`] has one method per ID kind (`uuid`, `uuid7`, `ulid`, `snowflake`, `timestamp`,
//! `counter`, `random`, `typeid`, `ksuid`), each with a batch variant (`uuids`, ...), plus [`Client::ids`] for any
//! kind as strings, [`Client::batches`] for more IDs than one request may carry,
//! [`Client::decode`], [`Client::kinds`], [`Client::health`] and [`Client::ready`].
//! Failures are one [`Error`] type; a server's answer keeps its stable `code` and `message`.
//!
//! A server run with API keys (`IDGEN_API_KEYS_FILE`) needs one on every ID, decode and kinds
//! request: [`ClientBuilder::api_key`]. Without it the answer is [`Error::Api`] with status 401
//! and code [`ErrorCode::Unauthorized`]; a kind outside the key's scopes gives 403
//! [`ErrorCode::Forbidden`]. An `https://` server with a certificate from a private CA needs
//! that CA: [`ClientBuilder::ca_file`] or [`ClientBuilder::ca_pem`].
//!
//! Failed requests are sent again under a [`RetryPolicy`] ([`ClientBuilder::retry_policy`]):
//! after 429, 503, a refused or reset connection or a timeout, with exponential backoff, full
//! jitter and the server's `Retry-After` as a floor, within 5 attempts and 10 s by default;
//! never after another 4xx. That is safe for ID requests: an answer lost on the way leaves IDs
//! nobody receives (a gap), never one handed out twice. [`ClientBuilder::endpoints`] takes
//! several servers of one deployment: requests go to the first that is in use and move on
//! when one cannot serve, and one that failed is left alone for a cool-down before a single
//! request tries it again.
//!
//! Features: `cli` (default) builds the `idgen` command and is all that needs clap: an
//! application depends on this crate with `default-features = false`. `blocking` adds
//! `blocking::Client`, the same methods without async (it runs them on a thread of its own),
//! for code without tokio.
//!
//! The JSON types are idgen-core's [`wire`] module, shared with the server, re-exported here.
//! This crate never depends on the server (which is GPL-3.0-or-later; this crate is MIT OR
//! Apache-2.0).
//!
//! ```no_run
//! # async fn example() -> Result<(), idgen_client::Error> {
//! let client = idgen_client::Client::builder("https://ids.internal:8443")
//!     .timeout(std::time::Duration::from_secs(5))
//!     .user_agent("orders-service/1.4")
//!     .api_key(std::env::var("IDGEN_API_KEY").unwrap_or_default())
//!     .ca_file("/etc/idgen/ca.pem")
//!     .build()?;
//! let next_order = client.counter("orders").await?;
//! let keys = client.ulids(1000).await?;
//! assert_eq!(keys.len(), 1000);
//! # let _ = next_order;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod batch;
#[cfg(feature = "blocking")]
pub mod blocking;
mod buffer;
mod client;
mod endpoint;
mod error;
mod request;
mod retry;
mod security;

pub use batch::Batches;
pub use buffer::{BufferConfig, BufferedClient};
pub use client::{
    Client, ClientBuilder, DEFAULT_CHUNK_SIZE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT,
    RandomOptions,
};
pub use endpoint::DEFAULT_COOL_DOWN;
pub use error::Error;
pub use idgen_core::ksuid::Ksuid;
pub use idgen_core::random::{Alphabet, CharSet, Length};
pub use idgen_core::typeid::TypeId;
pub use idgen_core::wire::{
    self, BoundsResponse, DecodeResponse, ErrorCode, HealthResponse, IdRequest, KindDescription,
    KindsResponse,
};
pub use idgen_core::{Kind, ParamError, Ulid, Uuid};
pub use retry::RetryPolicy;
