//! The `sluice` binary: parses flags, sets up logging, runs the server (or the upload client).

use anyhow::Context;
use clap::Parser;
use sluice_server::auth::{issue, unix_now, AuthKey, Claims};
use sluice_server::config::{load_policy, Cli, Command};
use sluice_server::server::{self, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        // The client runs on its own runtime, outside the server's actix system.
        Command::Upload(args) => Ok(sluice_client::cli::run(*args)),
        command => actix_web::rt::System::new().block_on(run(command)).map(|()| ExitCode::SUCCESS),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Policy { policy } => {
            let policy = load_policy(policy.as_deref()).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
            Ok(())
        }
        Command::Token { sub, ttl, max_size, auth_secret } => {
            let key = AuthKey::new(&auth_secret).map_err(anyhow::Error::msg)?;
            let claims = Claims { sub, exp: unix_now() + ttl.as_secs(), max_size };
            println!("{}", issue(&key, &claims).map_err(anyhow::Error::msg)?);
            Ok(())
        }
        Command::Serve(args) => {
            let config = args.into_config().map_err(anyhow::Error::msg)?;
            init_logging(config.log_format);
            server::run(config).await.context("server failed")
        }
        Command::Upload(_) => unreachable!("handled in main"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or a journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}
