//! What the `idgen-server` binary can do instead of serving: its subcommands and their
//! arguments (settings come from the same variables and flags as the server's).

use std::path::PathBuf;

/// A subcommand; without one, the binary serves.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// After the Redis store lost data (the nodes answer 503 store_regressed): raise every
    /// counter above what was issued, set a new store identity, and let the nodes resume.
    Recover(RecoverArgs),
    /// API keys for IDGEN_API_KEYS_FILE.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ask the server on this host (IDGEN_BIND's port, on loopback) for /healthz: exit 0 on
    /// 200, 1 otherwise. For container health checks without a shell or curl.
    Healthcheck(HealthcheckArgs),
}

/// What `healthcheck` asks for.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct HealthcheckArgs {
    /// The path to GET: /healthz (the process serves) or /readyz (it can issue every kind).
    #[arg(long, value_name = "PATH", default_value = "/healthz")]
    pub path: String,
}

/// `idgen-server keys ...`
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum KeysCommand {
    /// Print a new random secret (first line; shown only this once) and the `[[key]]` entry to
    /// paste into the keys file (the entry holds the secret's SHA-256, never the secret).
    New(NewKeyArgs),
}

/// What the new key is called and may do.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NewKeyArgs {
    /// The key's name, as logs and metrics show it (A-Z a-z 0-9 _ . -, at most 64).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// A scope (repeatable): a kind name, `counter:<glob>`, `admin` or `*`. None: every kind,
    /// no admin.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
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
