//! Typed async SDK for the idgen HTTP API.
