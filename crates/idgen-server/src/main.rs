//! The `idgen-server` binary: parse settings, start the application, run until a signal (or
//! run a subcommand: `recover`, `keys new`, `healthcheck`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use idgen_server::backend::redis::recover;
use idgen_server::config::{Command, KeysCommand};
use idgen_server::{Application, Config, ConfigError, Flags, observe};

fn main() -> ExitCode {
    let flags = Flags::parse();
    let command = flags.command.clone();
    // Needs no settings: it only makes a secret.
    if let Some(Command::Keys(KeysCommand::New(args))) = &command {
        return match idgen_server::auth::new_key(&args.name, &args.scopes) {
            Ok((secret, entry)) => {
                print!("{secret}\n\n{entry}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("idgen-server: {error}");
                ExitCode::from(2)
            }
        };
    }
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(error) => return fail(&error.into()),
    };
    if let Some(Command::Healthcheck(args)) = &command {
        return match idgen_server::healthcheck::run(&config, &args.path) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(reason) => {
                eprintln!("idgen-server healthcheck: {reason}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Recover(args)) = command {
        return match recover::run(&config, &args) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        };
    }
    observe::logging::init(&config.log, config.log_format);
    let application = match Application::build(config) {
        Ok(application) => application,
        Err(error) => return fail(&error),
    };
    // The one line on stdout: scripts and tests read the real address from it.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", application.startup_line()).and_then(|()| stdout.flush());
    drop(stdout);
    match actix_web::rt::System::new().block_on(application.run_until_stopped()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// One line on stderr. A bad setting exits 2 (like a usage error), anything else 1.
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("idgen-server: {error:#}");
    if error.downcast_ref::<ConfigError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}
