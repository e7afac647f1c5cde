//! The `idgen` command line: the options, one subcommand per kind of the catalogue (built from
//! it, so a new kind gets its subcommand), `decode`, `kinds` and `completions`.

use std::fmt;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, StringValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Arg, ArgAction};
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use idgen_client::{Alphabet, CharSet, IdRequest, Kind};
use idgen_core::{KINDS, KindInfo, Param};

const AFTER_HELP: &str = "\
Examples:
  idgen uuid7                                   one UUIDv7
  idgen snowflake -n 1000000 > ids.txt          a million, fetched in parallel chunks
  idgen counter --name orders                   the next value of the counter `orders`
  idgen random --length 32 --alphabet hex       a 32-character hex token
  idgen random --length 6 --chars 0123456789    a 6-digit PIN
  idgen --format json ulid -n 3                 the server's JSON
  idgen --server http://a:8080,http://b:8080 uuid7 -n 100000   fails over between servers
  idgen decode snowflake 293047116449939456     its time, worker id and sequence
  idgen bounds snowflake --time 2026-12-06T21:00:00Z   the first and last snowflake of that ms
  idgen completions bash > ~/.local/share/bash-completion/completions/idgen

Output: `--format plain` streams one ID per line; when a run fails midway, what was printed
stays printed and stderr says how many. `--format json` writes one complete document once
every ID is in, or nothing; its errors are `{\"error\":{\"code\",\"message\"}}` on stderr.
A progress bar shows on stderr for long runs when stderr is a terminal, never when piped.

Exit status:
  0   success (also when stdout is closed early, e.g. by `| head`)
  1   server unreachable, server error (5xx), invalid answer, or stdout not writable
  2   bad usage (an unreadable API key or CA file too), or the server refused the request
      (4xx; 401: no key, or one the server does not know; 403: the key may not do this)
  75  still rate limited or unavailable (429, 503) after the retries: try again later";

/// The heading of the options every subcommand takes, apart from its own.
const GLOBAL: &str = "Global options";

/// Get unique IDs from an idgen server.
#[derive(Debug, Parser)]
#[command(name = "idgen", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Base URL of the idgen server, or several, comma-separated: requests go to the first that
    /// works and move on to the next when one is down or answers 503. Failed requests are
    /// retried (429, 503, lost connections; never another 4xx), which never duplicates an ID.
    #[arg(
        long,
        global = true, help_heading = GLOBAL,
        env = "IDGEN_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL[,URL...]"
    )]
    pub server: String,

    /// Output format: `plain` prints one ID per line; `json` prints the server's JSON.
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = Format::Plain)]
    pub format: Format,

    /// Give up on one attempt of a request after this many seconds.
    #[arg(long, global = true, help_heading = GLOBAL, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// API key for a server that needs one, sent as `Authorization: Bearer`. As a flag it is
    /// visible to every local user in the process list: prefer IDGEN_API_KEY or --api-key-file.
    #[arg(long, global = true, help_heading = GLOBAL, env = "IDGEN_API_KEY", hide_env_values = true,
          value_name = "SECRET", value_parser = StringValueParser::new().map(Secret))]
    pub api_key: Option<Secret>,

    /// File holding the API key (surrounding whitespace and newlines are ignored).
    #[arg(long, global = true, help_heading = GLOBAL, env = "IDGEN_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// PEM file of the CA certificate(s) to trust for an https:// server, instead of the
    /// system's.
    #[arg(long, global = true, help_heading = GLOBAL, env = "IDGEN_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// An API key; `Debug` shows `<redacted>`.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Ids(KindCommand),
    /// Take an ID apart (time; worker and sequence of a snowflake; version of a UUID).
    Decode {
        /// The ID's kind.
        #[arg(value_parser = kind_parser())]
        kind: Kind,
        /// The ID.
        id: String,
    },
    /// The smallest and largest ID of a time-ordered kind at a time, for range queries.
    Bounds {
        /// The kind (uuid7, ulid, snowflake, timestamp, typeid or ksuid).
        #[arg(value_parser = kind_parser())]
        kind: Kind,
        /// Unix ms, or an RFC 3339 date-time such as 2026-12-06T21:00:00Z.
        #[arg(long)]
        time: String,
        /// A TypeID's prefix, put in front of both bounds.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// List the kinds the server issues.
    Kinds,
    /// Print a completion script for a shell, e.g. `source <(idgen completions bash)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct Batch {
    /// How many IDs to print.
    #[arg(short = 'n', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// IDs per request. By default the largest the server takes (its IDGEN_MAX_BATCH, which
    /// it states on /v1/kinds).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: Option<u32>,
    /// Requests in flight at once for counts above one chunk. Each group of chunks is printed
    /// in the kind's order once all of it has arrived, so sortable kinds stay sorted.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

/// Chunks in flight by default: enough to hide the round trip behind the server's work on a
/// chunk of 10,000, few enough not to crowd a server other clients share.
pub const DEFAULT_PARALLEL: u16 = 4;

/// One subcommand per kind of the catalogue (`idgen uuid7 -n 5`, `idgen counter --name
/// orders`): the kind, the request its `--<param>` options make, and how many to print.
#[derive(Debug)]
pub struct KindCommand {
    pub kind: Kind,
    pub request: IdRequest,
    pub batch: Batch,
}

/// The subcommand of one catalogue entry: `--<key>` per parameter, then `-n`, `--chunk-size`
/// and `--parallel`.
fn kind_subcommand(info: &KindInfo) -> clap::Command {
    let command = clap::Command::new(info.name).about(info.description);
    let command = info.params.iter().fold(command, |command, &param| {
        let arg = Arg::new(param.key())
            .long(param.key())
            // As derive names it (`<LENGTH>`); leaked once per run, as clap has no owned names
            // without its `string` feature.
            .value_name(&*param.key().to_uppercase().leak())
            .help(param.description())
            .action(ArgAction::Set);
        command.arg(match param {
            Param::Length => arg.value_parser(clap::value_parser!(u32)),
            Param::Name | Param::Prefix => arg.value_parser(clap::value_parser!(String)),
            // The names listed in `--help`, and a typo refused with them, before any request.
            Param::Alphabet => arg.value_parser(PossibleValuesParser::new(
                Alphabet::ALL.iter().map(|alphabet| alphabet.name()),
            )),
            // Checked as the server checks it, before any request.
            Param::Chars => arg.value_parser(|text: &str| {
                CharSet::parse(text).map(|_| text.to_owned()).map_err(|error| error.to_string())
            }),
        })
    });
    Batch::augment_args(command)
}

impl Subcommand for KindCommand {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        KINDS.iter().fold(command, |command, info| command.subcommand(kind_subcommand(info)))
    }

    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        Self::augment_subcommands(command)
    }

    fn has_subcommand(name: &str) -> bool {
        Kind::from_name(name).is_some()
    }
}

impl FromArgMatches for KindCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, mut matches)) = matches.remove_subcommand() else {
            return Err(clap::Error::raw(ErrorKind::MissingSubcommand, "a kind is required"));
        };
        let Some(kind) = Kind::from_name(&name) else {
            let message = format!("`{name}` is not a kind");
            return Err(clap::Error::raw(ErrorKind::InvalidSubcommand, message));
        };
        let mut request = IdRequest::default();
        for &param in kind.info().params {
            match param {
                Param::Name => request.name = matches.remove_one(param.key()),
                Param::Length => request.length = matches.remove_one(param.key()),
                Param::Alphabet => request.alphabet = matches.remove_one(param.key()),
                Param::Chars => request.chars = matches.remove_one(param.key()),
                Param::Prefix => request.prefix = matches.remove_one(param.key()),
            }
        }
        let batch = Batch::from_arg_matches_mut(&mut matches)?;
        Ok(Self { kind, request, batch })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// A kind name from the catalogue; anything else is a usage error listing the names.
pub fn kind_parser() -> impl TypedValueParser<Value = Kind> {
    PossibleValuesParser::new(KINDS.iter().map(|info| info.name))
        .map(|name| Kind::from_name(&name).expect("only catalogue names get through"))
}
