//! idgen's HTTP server: configuration, routes, storage back ends and start-up.
//!
//! Map: [`config`] reads settings; [`startup`] builds and runs the [`Application`];
//! [`state`] holds the generators and ties them to the durable marks of [`store`];
//! [`routes`] has one module per resource; [`error`] is the only place that knows HTTP
//! status codes; [`rate_limit`] keys actix-governor on the client IP (or asks Redis, in Redis
//! mode); [`lease`] and [`segment`] are Redis mode's worker-id lease and counter buffers.

pub mod config;
pub mod error;
pub mod lease;
pub mod rate_limit;
pub mod routes;
pub mod segment;
pub mod startup;
pub mod state;
pub mod store;

pub use config::{Config, ConfigError, Flags};
pub use startup::Application;
