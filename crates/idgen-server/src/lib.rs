//! idgen's HTTP server: configuration, routes, storage back ends and start-up.
