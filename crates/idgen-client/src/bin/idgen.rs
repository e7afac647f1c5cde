//! The `idgen` command-line tool: parse arguments, call the SDK, print.
//!
//! Output goes to stdout only once it is known good; every failure is one line on stderr and a
//! non-zero exit. A closed stdout (`idgen uuid -n 1000000 | head -1`) ends the program quietly
//! with status 0, as ripgrep does: Rust ignores SIGPIPE, so it shows up as a `BrokenPipe` write
//! error instead of killing the process.
//!
//! The API key never appears in any output: `--help` hides the value of `IDGEN_API_KEY`, the
//! parsed arguments' `Debug` redacts it, and no message quotes it.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, StringValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{
    Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};
use idgen_client::{
    Client, DEFAULT_CHUNK_SIZE, DecodeResponse, ErrorCode, IdRequest, Kind, KindsResponse,
};
use idgen_core::{KINDS, KindInfo, Param};

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (also when stdout is closed early, e.g. by `| head`)
  1  server unreachable, server error (5xx), invalid answer, or stdout not writable
  2  bad usage (an unreadable API key or CA file too), or the server refused the request
     (4xx; 401: no key, or one the server does not know; 403: the key may not do this)";

/// Get unique IDs from an idgen server.
#[derive(Debug, Parser)]
#[command(name = "idgen", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    /// Base URL of the idgen server, or several, comma-separated: requests go to the first that
    /// works and move on to the next when one is down or answers 503. Failed requests are
    /// retried (429, 503, lost connections; never another 4xx), which never duplicates an ID.
    #[arg(
        long,
        global = true,
        env = "IDGEN_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL[,URL...]"
    )]
    server: String,

    /// Output format: `plain` prints one ID per line; `json` prints the server's JSON.
    #[arg(long, global = true, value_enum, default_value_t = Format::Plain)]
    format: Format,

    /// Give up on one attempt of a request after this many seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    /// API key for a server that needs one, sent as `Authorization: Bearer`. As a flag it is
    /// visible to every local user in the process list: prefer IDGEN_API_KEY or --api-key-file.
    #[arg(long, global = true, env = "IDGEN_API_KEY", hide_env_values = true,
          value_name = "SECRET", value_parser = StringValueParser::new().map(Secret))]
    api_key: Option<Secret>,

    /// File holding the API key (surrounding whitespace and newlines are ignored).
    #[arg(long, global = true, env = "IDGEN_API_KEY_FILE", value_name = "PATH")]
    api_key_file: Option<PathBuf>,

    /// PEM file of the CA certificate(s) to trust for an https:// server, instead of the
    /// system's.
    #[arg(long, global = true, env = "IDGEN_CA_FILE", value_name = "PATH")]
    ca_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// An API key; `Debug` shows `<redacted>`.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
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

/// One subcommand per kind of the catalogue (`idgen uuid7 -n 5`, `idgen counter --name
/// orders`): the kind, the request its `--<param>` options make, and how many to print.
#[derive(Debug)]
struct KindCommand {
    kind: Kind,
    request: IdRequest,
    batch: Batch,
}

/// The subcommand of one catalogue entry: `--<key>` per parameter, then `-n` and
/// `--chunk-size`.
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
            Param::Name | Param::Alphabet => arg.value_parser(clap::value_parser!(String)),
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
fn kind_parser() -> impl TypedValueParser<Value = Kind> {
    PossibleValuesParser::new(KINDS.iter().map(|info| info.name))
        .map(|name| Kind::from_name(&name).expect("only catalogue names get through"))
}

/// Why a run failed.
enum Failure {
    Client(idgen_client::Error),
    /// The server failed after `printed` IDs were written (plain output streams).
    MidWay(idgen_client::Error, u64),
    Stdout(io::Error),
}

/// Exit statuses: 0 ok, 1 the server or the network failed, 2 bad usage or a 4xx answer,
/// [`TEMPFAIL`] still rate limited or unavailable (429, 503) after the retries.
const TEMPFAIL: u8 = 75;

/// The status for a failed request.
fn status_of(error: &idgen_client::Error) -> u8 {
    match error.status() {
        Some(429 | 503) => TEMPFAIL,
        _ if error.is_client_error() => 2,
        _ => 1,
    }
}

/// The `code` of an error as `--format json` writes it on stderr: the server's, or what
/// failed on this side.
fn code_of(error: &idgen_client::Error) -> &'static str {
    match error {
        idgen_client::Error::Api { code, .. } => code.as_str(),
        idgen_client::Error::Transport { .. } => "unreachable",
        idgen_client::Error::InvalidResponse { .. } => "invalid_response",
        _ => "invalid_setting",
    }
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
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)
        .unwrap_or_else(|error| error.format(&mut Cli::command()).exit());
    let json = cli.format == Format::Json;
    let api_key = match api_key(&cli, &matches) {
        Ok(api_key) => api_key,
        Err(KeyProblem::Usage(message)) => {
            Cli::command().error(ErrorKind::ArgumentConflict, message).exit()
        }
        Err(KeyProblem::File(message)) => return fail(json, "invalid_setting", &message, 2),
    };
    let keyless = api_key.is_none();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(json, "internal", &format!("cannot start the async runtime: {error}"), 1);
        }
    };
    let (error, printed) = match runtime.block_on(run(cli, api_key)) {
        Ok(()) => return ExitCode::SUCCESS,
        // The reader went away (`| head`): what it wanted, it got.
        Err(Failure::Stdout(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            return ExitCode::SUCCESS;
        }
        Err(Failure::Stdout(error)) => {
            return fail(json, "stdout", &format!("cannot write to stdout: {error}"), 1);
        }
        Err(Failure::Client(error)) => (error, None),
        Err(Failure::MidWay(error, printed)) => (error, Some(printed)),
    };
    let mut message = error.to_string();
    // The server's sentence names HTTP headers; say how this tool sends a key.
    if keyless && error.code() == Some(ErrorCode::Unauthorized) {
        message.push_str(" (give one with IDGEN_API_KEY or --api-key-file)");
    }
    if let Some(printed) = printed {
        message.push_str(&format!(" ({printed} IDs were printed before it)"));
    }
    fail(json, code_of(&error), &message, status_of(&error))
}

/// Why no API key could be had.
enum KeyProblem {
    /// Given more than one way: clap's usage error.
    Usage(String),
    /// The key file cannot be used: one line, like any other failure.
    File(String),
}

/// The API key from `--api-key` / IDGEN_API_KEY or `--api-key-file` / IDGEN_API_KEY_FILE. A
/// key given as the flag itself gets a warning: any local user can read it in `ps`.
fn api_key(cli: &Cli, matches: &ArgMatches) -> Result<Option<Secret>, KeyProblem> {
    let on_command_line = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let secret = match (&cli.api_key, &cli.api_key_file) {
        (None, None) => return Ok(None),
        // Neither may silently win: they may well be two different keys.
        (Some(_), Some(_)) => {
            let key = if on_command_line("api_key") { "--api-key" } else { "IDGEN_API_KEY" };
            let file = if on_command_line("api_key_file") {
                "--api-key-file"
            } else {
                "IDGEN_API_KEY_FILE"
            };
            return Err(KeyProblem::Usage(format!(
                "the API key is given twice, by {key} and by {file}: give one"
            )));
        }
        (Some(secret), None) => secret.clone(),
        (None, Some(path)) => read_key_file(path).map_err(KeyProblem::File)?,
    };
    if on_command_line("api_key") {
        // Stderr being gone is no reason to stop.
        let _ = writeln!(
            io::stderr().lock(),
            "idgen: warning: --api-key shows the secret to every local user in the process \
             list; use IDGEN_API_KEY or --api-key-file"
        );
    }
    Ok(Some(secret))
}

/// The key in `path`, without the whitespace and newline around it.
fn read_key_file(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|error| format!("cannot read the API key file `{shown}`: {error}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("the API key file `{shown}` is not UTF-8 text"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("the API key file `{shown}` is empty"));
    }
    Ok(Secret(secret.to_owned()))
}

/// Prints `idgen: <message>` as exactly one line on stderr, or with `json` the API's error
/// shape, `{"error":{"code":...,"message":...}}`.
fn fail(json: bool, code: &str, message: &str, status: u8) -> ExitCode {
    let message = message.replace(['\r', '\n'], " ");
    let line = if json {
        serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
    } else {
        format!("idgen: {message}")
    };
    // Nothing sensible is left to do if stderr is gone too.
    let _ = writeln!(io::stderr().lock(), "{line}");
    ExitCode::from(status)
}

/// The URLs of `--server` / IDGEN_URL: comma-separated, blanks around them and empty entries
/// ignored (`a,b,` is two).
fn server_list(server: &str) -> Vec<&str> {
    server.split(',').map(str::trim).filter(|url| !url.is_empty()).collect()
}

async fn run(cli: Cli, api_key: Option<Secret>) -> Result<(), Failure> {
    let mut builder = Client::builder(&cli.server)
        .endpoints(server_list(&cli.server))
        .timeout(Duration::from_secs(cli.timeout));
    if let Some(Secret(secret)) = api_key {
        builder = builder.api_key(secret);
    }
    if let Some(path) = cli.ca_file {
        builder = builder.ca_file(path);
    }
    let client = builder.build()?;
    let mut out = BufWriter::new(io::stdout().lock());
    let KindCommand { kind, request, batch } = match cli.command {
        Command::Ids(command) => command,
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

/// Fetches `batch.count` IDs in chunks. Plain output streams: each chunk is written as soon as
/// it arrives, and a failure half-way says how many IDs were printed. JSON output has the
/// server's shape (`{"id": ...}` for one ID, `{"ids": [...]}` for more) and is written whole
/// at the end, so stdout holds a complete document or nothing.
async fn print_ids(
    client: &Client,
    out: &mut impl Write,
    format: Format,
    kind: Kind,
    request: IdRequest,
    batch: Batch,
) -> Result<(), Failure> {
    let mut batches = client.batches(kind, request, batch.count, batch.chunk_size);
    let mut document = Vec::new();
    let mut printed = 0u64;
    while let Some(ids) = batches.next_batch().await {
        let ids = match ids {
            Ok(ids) => ids,
            Err(error) if format == Format::Plain && printed > 0 => {
                return Err(Failure::MidWay(error, printed));
            }
            Err(error) => return Err(error.into()),
        };
        for id in &ids {
            match format {
                Format::Plain => writeln!(out, "{id}")?,
                Format::Json if batch.count == 1 => {
                    write!(document, "{{\"id\":{}", json_string(id))?
                }
                Format::Json => {
                    let separator = if printed == 0 { "{\"ids\":[" } else { "," };
                    write!(document, "{separator}{}", json_string(id))?;
                }
            }
            printed += 1;
        }
        if format == Format::Plain {
            out.flush()?;
        }
    }
    if format == Format::Json {
        let end = if batch.count == 1 { "}" } else { "]}" };
        writeln!(document, "{end}")?;
        out.write_all(&document)?;
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
            Command::Ids(KindCommand {
                kind: Kind::Uuid,
                request,
                batch: Batch { count, chunk_size },
            }) => {
                assert_eq!((count, chunk_size), (5, DEFAULT_CHUNK_SIZE));
                assert_eq!(request, IdRequest::default());
            }
            other => panic!("expected uuid, got {other:?}"),
        }
        let cli = parse(&["--format", "json", "random", "--length", "32", "--alphabet", "hex"])
            .expect("valid");
        assert!(matches!(
            cli.command,
            Command::Ids(KindCommand {
                kind: Kind::Random,
                request: IdRequest { count: None, name: None, length: Some(32), alphabet: Some(ref alphabet) },
                batch: Batch { count: 1, .. },
            }) if alphabet == "hex"
        ));
    }

    #[test]
    fn an_api_key_flag_is_known_as_such_and_never_shown() {
        for args in [&["--api-key", "idg_s3cr3t", "uuid7"][..], &["uuid7", "--api-key=idg_s3cr3t"]]
        {
            let matches = Cli::command()
                .try_get_matches_from(std::iter::once("idgen").chain(args.iter().copied()))
                .expect("valid");
            // Global options are parsed by the subcommand and copied up with their source.
            assert_eq!(matches.value_source("api_key"), Some(ValueSource::CommandLine), "{args:?}");
            let cli = Cli::from_arg_matches(&matches).expect("valid");
            assert!(matches!(&cli.api_key, Some(Secret(secret)) if secret == "idg_s3cr3t"));
            let shown = format!("{cli:?}");
            assert!(!shown.contains("s3cr3t") && shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn a_key_file_is_read_without_the_whitespace_around_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        std::fs::write(&path, " \tidg_s3cr3t\r\n\n").expect("write");
        assert!(matches!(read_key_file(&path), Ok(Secret(secret)) if secret == "idg_s3cr3t"));
        std::fs::write(&path, " \n").expect("write");
        let error = read_key_file(&path).expect_err("blank");
        assert_eq!(error, format!("the API key file `{}` is empty", path.display()));
        std::fs::write(&path, b"\xff\xfe").expect("write");
        assert!(read_key_file(&path).expect_err("binary").ends_with("is not UTF-8 text"));
        let missing = dir.path().join("missing");
        let error = read_key_file(&missing).expect_err("missing");
        assert!(error.starts_with("cannot read the API key file `"), "{error}");
    }

    #[test]
    fn the_server_is_a_comma_separated_list() {
        assert_eq!(server_list("http://a:1"), ["http://a:1"]);
        assert_eq!(
            server_list("http://a:1, http://b:2,http://c:3"),
            ["http://a:1", "http://b:2", "http://c:3"]
        );
        assert_eq!(server_list(" http://a:1,, ,http://b:2, "), ["http://a:1", "http://b:2"]);
        assert!(server_list(" , ").is_empty());
        let cli = parse(&["--server", "http://a:1,http://b:2", "uuid"]).expect("valid");
        assert_eq!(server_list(&cli.server), ["http://a:1", "http://b:2"]);
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
