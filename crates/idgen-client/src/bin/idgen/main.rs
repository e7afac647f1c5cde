//! The `idgen` command-line tool: parse arguments, call the SDK, print.
//!
//! Output goes to stdout only once it is known good; every failure is one line on stderr and a
//! non-zero exit. A closed stdout (`idgen uuid -n 1000000 | head -1`) ends the program quietly
//! with status 0, as ripgrep does: Rust ignores SIGPIPE, so it shows up as a `BrokenPipe` write
//! error instead of killing the process.
//!
//! The API key never appears in any output: `--help` hides the value of `IDGEN_API_KEY`, the
//! parsed arguments' `Debug` redacts it, and no message quotes it.

mod args;
mod output;

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use idgen_client::{Client, DEFAULT_CHUNK_SIZE, ErrorCode};

use args::{Batch, Cli, Command, Format, KindCommand, Secret};
use output::Plan;

/// Why a run failed.
pub enum Failure {
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
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
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
            output::print_decoded(&mut out, cli.format, &decoded)?;
            out.flush()?;
            return Ok(());
        }
        Command::Bounds { kind, time, prefix } => {
            let bounds = client.bounds(kind, &time, &prefix).await?;
            output::print_bounds(&mut out, cli.format, &bounds)?;
            out.flush()?;
            return Ok(());
        }
        Command::Kinds => {
            let kinds = client.kinds().await?;
            output::print_kinds(&mut out, cli.format, &kinds)?;
            out.flush()?;
            return Ok(());
        }
        Command::Completions { .. } => unreachable!("answered before any request"),
    };
    let plan = plan(&client, &batch).await?;
    output::print_ids(&client, &mut out, cli.format, kind, request, plan).await
}

/// How to fetch the IDs: chunks of `--chunk-size`, or else of the largest batch the server
/// says it takes (one more request, only when more than one ID is wanted; a server that does
/// not say gets the default of [`DEFAULT_CHUNK_SIZE`]).
async fn plan(client: &Client, batch: &Batch) -> Result<Plan, Failure> {
    let chunk_size = match batch.chunk_size {
        Some(chunk_size) => chunk_size,
        None if batch.count == 1 => 1,
        None => client.kinds().await?.max_batch.unwrap_or(DEFAULT_CHUNK_SIZE).max(1),
    };
    Ok(Plan { count: batch.count, chunk_size, parallel: batch.parallel })
}

/// `idgen completions SHELL`: the script on stdout. Written whole, so that a closed or full
/// stdout is an error line rather than clap_complete's panic.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "idgen", &mut script);
    match io::stdout().lock().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => fail(false, "stdout", &format!("cannot write to stdout: {error}"), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use idgen_client::{IdRequest, Kind};

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
                batch: Batch { count, chunk_size, parallel },
            }) => {
                assert_eq!((count, chunk_size, parallel), (5, None, args::DEFAULT_PARALLEL));
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
                request: IdRequest { count: None, name: None, length: Some(32), alphabet: Some(ref alphabet), chars: None, prefix: None },
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
