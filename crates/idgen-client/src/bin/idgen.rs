//! The `idgen` command-line tool: parse arguments, call the SDK, print.
//!
//! Output goes to stdout only once it is known good; every failure is one line on stderr and a
//! non-zero exit. A closed stdout (`idgen uuid -n 1000000 | head -1`) ends the program quietly
//! with status 0, as ripgrep does: Rust ignores SIGPIPE, so it shows up as a `BrokenPipe` write
//! error instead of killing the process.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use idgen_client::{Client, DEFAULT_CHUNK_SIZE, DecodeResponse, IdRequest, Kind, KindsResponse};

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (also when stdout is closed early, e.g. by `| head`)
  1  server unreachable, server error (5xx), invalid answer, or stdout not writable
  2  bad usage, or the server refused the request (4xx)";

/// Get unique IDs from an idgen server.
#[derive(Debug, Parser)]
#[command(name = "idgen", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    /// Base URL of the idgen server.
    #[arg(
        long,
        global = true,
        env = "IDGEN_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    server: String,

    /// Output format: `plain` prints one ID per line; `json` prints the server's JSON.
    #[arg(long, global = true, value_enum, default_value_t = Format::Plain)]
    format: Format,

    /// Give up on a request after this many seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Random UUIDs (version 4).
    Uuid(Batch),
    /// Time-ordered UUIDs (version 7).
    Uuid7(Batch),
    /// ULIDs (sortable, 26 characters).
    Ulid(Batch),
    /// 64-bit snowflake IDs (time, worker, sequence).
    Snowflake(Batch),
    /// Timestamp IDs (unique milliseconds since the Unix epoch).
    Timestamp(Batch),
    /// Values of a named counter.
    Counter {
        /// Counter name, 1 to 64 characters from A-Z a-z 0-9 _ . - (server default: `default`).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        batch: Batch,
    },
    /// Random strings.
    Random {
        /// Characters per string, 1 to 1024 (server default: 21).
        #[arg(long)]
        length: Option<u32>,
        /// alphanumeric (server default), hex, base58 or nanoid.
        #[arg(long)]
        alphabet: Option<String>,
        #[command(flatten)]
        batch: Batch,
    },
    /// Take an ID apart (time; worker and sequence of a snowflake; version of a UUID).
    Decode {
        /// The ID's kind.
        #[arg(value_parser = parse_kind)]
        kind: Kind,
        /// The ID.
        id: String,
    },
    /// List the kinds the server issues.
    Kinds,
}

#[derive(Debug, Args)]
struct Batch {
    /// How many IDs to print.
    #[arg(short = 'n', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// IDs per request; large counts are fetched (and printed) this many at a time. Keep it at
    /// most the server's IDGEN_MAX_BATCH.
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    chunk_size: u32,
}

fn parse_kind(name: &str) -> Result<Kind, String> {
    Kind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|kind| kind.name()).collect();
        format!("unknown kind; use one of: {}", names.join(", "))
    })
}

/// Why a run failed.
enum Failure {
    Client(idgen_client::Error),
    Stdout(io::Error),
}

impl From<idgen_client::Error> for Failure {
    fn from(error: idgen_client::Error) -> Self {
        Failure::Client(error)
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Stdout(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}"), 1),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): what it wanted, it got.
        Err(Failure::Stdout(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(Failure::Stdout(error)) => fail(&format!("cannot write to stdout: {error}"), 1),
        Err(Failure::Client(error)) => {
            let status = if error.is_client_error() { 2 } else { 1 };
            fail(&error.to_string(), status)
        }
    }
}

/// Prints `idgen: <message>` as exactly one line on stderr.
fn fail(message: &str, status: u8) -> ExitCode {
    let message = message.replace(['\r', '\n'], " ");
    // Nothing sensible is left to do if stderr is gone too.
    let _ = writeln!(io::stderr().lock(), "idgen: {message}");
    ExitCode::from(status)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let client = Client::builder(cli.server).timeout(Duration::from_secs(cli.timeout)).build()?;
    let mut out = BufWriter::new(io::stdout().lock());
    let (kind, request, batch) = match cli.command {
        Command::Uuid(batch) => (Kind::Uuid, IdRequest::default(), batch),
        Command::Uuid7(batch) => (Kind::Uuid7, IdRequest::default(), batch),
        Command::Ulid(batch) => (Kind::Ulid, IdRequest::default(), batch),
        Command::Snowflake(batch) => (Kind::Snowflake, IdRequest::default(), batch),
        Command::Timestamp(batch) => (Kind::Timestamp, IdRequest::default(), batch),
        Command::Counter { name, batch } => {
            (Kind::Counter, IdRequest { name, ..IdRequest::default() }, batch)
        }
        Command::Random { length, alphabet, batch } => {
            (Kind::Random, IdRequest { length, alphabet, ..IdRequest::default() }, batch)
        }
        Command::Decode { kind, id } => {
            let decoded = client.decode(kind, &id).await?;
            print_decoded(&mut out, cli.format, &decoded)?;
            out.flush()?;
            return Ok(());
        }
        Command::Kinds => {
            let kinds = client.kinds().await?;
            print_kinds(&mut out, cli.format, &kinds)?;
            out.flush()?;
            return Ok(());
        }
    };
    print_ids(&client, &mut out, cli.format, kind, request, batch).await
}

/// Fetches `batch.count` IDs in chunks, writing each chunk as soon as it arrives. JSON output
/// has the server's shape: `{"id": ...}` for one ID, `{"ids": [...]}` for more.
async fn print_ids(
    client: &Client,
    out: &mut impl Write,
    format: Format,
    kind: Kind,
    request: IdRequest,
    batch: Batch,
) -> Result<(), Failure> {
    let mut batches = client.batches(kind, request, batch.count, batch.chunk_size);
    let mut first = true;
    while let Some(ids) = batches.next_batch().await {
        let ids = ids?;
        for id in &ids {
            match format {
                Format::Plain => writeln!(out, "{id}")?,
                Format::Json if batch.count == 1 => write!(out, "{{\"id\":{}", json_string(id))?,
                Format::Json => {
                    let separator = if first { "{\"ids\":[" } else { "," };
                    write!(out, "{separator}{}", json_string(id))?;
                }
            }
            first = false;
        }
        out.flush()?;
    }
    if format == Format::Json {
        let end = if batch.count == 1 { "}" } else { "]}" };
        writeln!(out, "{end}")?;
    }
    out.flush()?;
    Ok(())
}

fn json_string(id: &str) -> String {
    serde_json::to_string(id).expect("a string always serialises")
}

fn print_decoded(out: &mut impl Write, format: Format, decoded: &DecodeResponse) -> io::Result<()> {
    if format == Format::Json {
        return writeln!(out, "{}", serde_json::to_string(decoded).expect("plain data serialises"));
    }
    let DecodeResponse { id, timestamp_ms, time, worker_id, sequence, version, variant } = decoded;
    writeln!(out, "id: {id}")?;
    if let Some(timestamp_ms) = timestamp_ms {
        writeln!(out, "timestamp_ms: {timestamp_ms}")?;
    }
    if let Some(time) = time {
        writeln!(out, "time: {time}")?;
    }
    if let Some(worker_id) = worker_id {
        writeln!(out, "worker_id: {worker_id}")?;
    }
    if let Some(sequence) = sequence {
        writeln!(out, "sequence: {sequence}")?;
    }
    if let Some(version) = version {
        writeln!(out, "version: {version}")?;
    }
    if let Some(variant) = variant {
        writeln!(out, "variant: {variant}")?;
    }
    Ok(())
}

fn print_kinds(out: &mut impl Write, format: Format, kinds: &KindsResponse) -> io::Result<()> {
    if format == Format::Json {
        return writeln!(out, "{}", serde_json::to_string(kinds).expect("plain data serialises"));
    }
    for kind in &kinds.kinds {
        let sortable = if kind.sortable { "yes" } else { "no" };
        writeln!(
            out,
            "{}: {} [sortable: {sortable}, bits: {}]",
            kind.name, kind.description, kind.bits
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("idgen").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let cli = parse(&["--server", "http://h:1", "uuid", "-n", "5", "--format", "json"])
            .expect("valid");
        assert_eq!(cli.server, "http://h:1");
        assert_eq!(cli.format, Format::Json);
        match cli.command {
            Command::Uuid(Batch { count, chunk_size }) => {
                assert_eq!((count, chunk_size), (5, DEFAULT_CHUNK_SIZE));
            }
            other => panic!("expected uuid, got {other:?}"),
        }
        let cli = parse(&["--format", "json", "random", "--length", "32", "--alphabet", "hex"])
            .expect("valid");
        assert!(matches!(
            cli.command,
            Command::Random { length: Some(32), alphabet: Some(ref alphabet), batch: Batch { count: 1, .. } }
                if alphabet == "hex"
        ));
    }

    #[test]
    fn refuses_bad_usage() {
        for args in [
            &["uuid", "-n", "0"][..],
            &["uuid", "--chunk-size", "0"],
            &["uuid", "-n", "x"],
            &["decode", "nope", "1"],
            &["decode", "snowflake"],
            &["--format", "xml", "uuid"],
            &["frobnicate"],
            &[],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
        let cli = parse(&["decode", "snowflake", "123"]).expect("valid");
        assert!(
            matches!(cli.command, Command::Decode { kind: Kind::Snowflake, ref id } if id == "123")
        );
    }
}
