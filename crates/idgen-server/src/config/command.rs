//! What the `idgen-server` binary can do instead of serving: its subcommands and their
//! arguments (settings come from the same variables and flags as the server's).

use std::path::PathBuf;

/// A subcommand; without one, the binary serves.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// After the Redis store lost data (the nodes answer 503 store_regressed): raise every
    /// counter above what was issued, set a new store identity, and let the nodes resume.
    Recover(RecoverArgs),
}

/// What to recover from, on top of what Redis still holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct RecoverArgs {
    /// A node's IDGEN_DATA_DIR (its redis-node.json): its recorded counters, worker marks and
    /// timestamp ids become floors. Repeat for every node you can reach.
    #[arg(long = "node-data-dir", value_name = "DIR")]
    pub node_data_dirs: Vec<PathBuf>,
    /// Raise counter NAME to at least N (repeatable), e.g. from your own records.
    #[arg(long = "counter-floor", value_name = "NAME=N")]
    pub counter_floors: Vec<String>,
    /// Raise every counter known to Redis or to a node file to at least N.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_counter_floor: u64,
    /// Do not wait one lease TTL before the new identity (only when every node is stopped).
    #[arg(long)]
    pub no_wait: bool,
}
