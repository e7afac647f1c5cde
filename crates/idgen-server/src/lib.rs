//! idgen's HTTP server: configuration, routes, the issuing layer, back ends and start-up.
//!
//! Map: [`config`] declares and reads settings; [`startup`] builds and runs the
//! [`Application`]; [`backend`] is the seam to the store (embedded data dir or Redis);
//! [`issue`] holds the generators and ties them to the back end's durable marks; [`state`] is
//! what handlers reach; [`routes`] has the route table, the router and one module per resource;
//! [`error`] is the only place that knows HTTP status codes; [`rate_limit`] keys actix-governor
//! on the client IP, or shares buckets through the back end; [`observe`] is what an operator
//! sees (metrics, logs, request ids).

pub mod auth;
pub mod backend;
pub mod codec_errors;
pub mod config;
pub mod cors;
pub mod error;
pub mod healthcheck;
pub mod issue;
pub mod observe;
pub mod rate_limit;
pub mod routes;
pub mod startup;
pub mod state;
pub mod tls;

pub use config::{Config, ConfigError, Flags};
pub use startup::Application;
