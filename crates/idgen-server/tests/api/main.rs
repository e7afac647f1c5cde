//! Black-box tests of the real `idgen-server` binary on 127.0.0.1:0, each with its own data dir.
//!
//! One test binary (`cargo test -p idgen-server --test api`); `helpers` starts the servers.

mod helpers;

mod auth;
mod bounds;
mod compat;
mod concurrency;
mod contract;
mod cors;
mod crash_loop;
mod decode;
mod deploy_unit;
mod durability;
mod errors;
mod health;
mod healthcheck;
mod ids;
mod kinds;
mod ksuid;
mod layouts;
mod lifecycle;
mod malformed;
mod openapi;
mod operability;
mod rate_limit;
mod redis_cluster;
mod redis_group;
mod redis_harness;
mod redis_keys;
mod redis_mode;
mod redis_rate_limit;
mod redis_regression;
mod redis_takeover;
mod redis_tls;
mod retire;
mod settings;
mod store_faults;
mod tls;
mod typeid;
