//! The `idgen-server` binary: parse settings, start the application, run until a signal.

fn main() {}
