//! The `idgen` command-line tool: parse arguments, call the SDK, print.

fn main() {}
