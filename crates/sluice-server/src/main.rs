//! The `sluice` binary: parses flags, sets up logging, runs the server.

use anyhow::Context;
use clap::Parser;
use sluice_server::auth::{issue, unix_now, AuthKey, Claims};
use sluice_server::config::{load_policy, Cli, Command};
use sluice_server::server::{self, LogFormat};
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}
