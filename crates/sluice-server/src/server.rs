//! The composition root: picks the backends (`--state`), starts the sweeper and the HTTP server.

use crate::engine::expiry;
use crate::lock::PgLocks;
use crate::store::fs;
use crate::store::postgres::Postgres;
use crate::{configure, status, AppState, Backends, Settings};
use actix_web::{App, HttpServer};
use sluice_core::Policy;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything needed to run the server, already validated.
#[derive(Debug)]
pub struct ServerConfig {
    /// Address to bind (`host:port`).
    pub listen: String,
    /// Data directory for the file-system backend.
    pub data_dir: PathBuf,
    /// The upload policy.
    pub policy: Policy,
    /// Worker threads (`None`: one per core).
    pub workers: Option<usize>,
    /// Expiry sweep period.
    pub expiry_interval: Duration,
    /// Log format (used by `main` to set up tracing).
    pub log_format: LogFormat,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Open connections per worker.
    pub max_connections: usize,
    /// Flush acknowledged bytes to stable storage.
    pub fsync: bool,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// Behaviour switches shared with handlers.
    pub settings: Settings,
    /// Where records and locks live.
    pub state: StateConfig,
    /// Whether the Flow.js id secret comes from the shared state (replacing `settings.secret`).
    pub secret_from_state: bool,
}

/// Where upload records and locks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// Records in the data directory, locks in this process (one instance).
    Local,
    /// Records, locks and shared settings in PostgreSQL (any number of instances).
    Postgres {
        /// `postgres://USER:PASSWORD@HOST:PORT/DB`.
        url: String,
        /// Connections kept at most.
        pool_size: usize,
        /// How long a lock lives without renewal.
        lease: Duration,
    },
}

/// Runs the server until it is stopped (SIGINT/SIGTERM stop it gracefully).
///
/// Prints `listening on http://ADDR` on stdout once bound, so scripts that
/// pass port 0 learn the port.
pub async fn run(mut config: ServerConfig) -> io::Result<()> {
    let backends = match config.state.clone() {
        StateConfig::Local => {
            let backends = Backends::local(&config.data_dir, config.fsync, config.settings.takeover_wait)?;
            tracing::info!(records = "filesystem", locks = "in-process", "state ready");
            backends
        }
        StateConfig::Postgres { url, pool_size, lease } => {
            postgres_backends(&mut config, &url, pool_size, lease).await?
        }
    };
    tracing::info!(
        bytes = "filesystem",
        dir = %config.data_dir.join("uploads").display(),
        max_file_size = config.policy.max_file_size,
        memory_budget = config.settings.memory_budget,
        fsync = config.fsync,
        "storage ready"
    );
    let state = AppState::new(config.policy, backends, config.settings);
    expiry::spawn(state.clone(), config.expiry_interval);
    status::spawn(state.clone(), Duration::from_secs(1));

    let app_state = state.clone();
    let mut server = HttpServer::new(move || App::new().configure(configure(app_state.clone())))
        .client_request_timeout(config.header_timeout)
        .max_connections(config.max_connections)
        // Our own signal handling ends bodies after the grace period; actix
        // then gets a little longer to flush and answer them.
        .disable_signals()
        .shutdown_timeout(config.shutdown_grace.as_secs() + 5)
        .bind(&config.listen)?;
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    for addr in server.addrs() {
        println!("listening on http://{addr}");
        tracing::info!(%addr, "listening");
    }
    io::stdout().flush()?;
    let server = server.run();
    actix_web::rt::spawn(shut_down_on_signal(server.handle(), state, config.shutdown_grace));
    server.await
}

/// Records, locks and the shared secret in PostgreSQL (its schema created or upgraded
/// first); bytes on the disk under the data directory.
async fn postgres_backends(
    config: &mut ServerConfig,
    url: &str,
    pool_size: usize,
    lease: Duration,
) -> io::Result<Backends> {
    let unreachable =
        |e: &dyn std::fmt::Display| io::Error::other(format!("PostgreSQL state ({}): {e}", redacted(url)));
    let pg = Postgres::open(url, pool_size).await.map_err(|e| unreachable(&e))?;
    if config.secret_from_state {
        config.settings.secret = pg.shared_secret().await.map_err(|e| unreachable(&e))?;
    }
    let shutdown = CancellationToken::new();
    let locks = PgLocks::open(pg.pool().clone(), config.settings.takeover_wait, lease, shutdown.clone())
        .await
        .map_err(|e| unreachable(&e))?;
    tracing::info!(
        records = "postgresql",
        locks = "postgresql",
        database = %redacted(url),
        pool_size,
        lock_lease = ?lease,
        shared_secret = config.secret_from_state,
        "state ready"
    );
    Ok(Backends {
        records: Arc::new(pg.records()),
        bytes: Arc::new(fs::open_bytes(&config.data_dir, config.fsync)?),
        locks: Arc::new(locks),
        shutdown,
    })
}

/// A database URL without its password, for logs.
fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let Some(at) = url[scheme_end..].find('@').map(|i| i + scheme_end) else { return url.to_string() };
    match url[scheme_end..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..scheme_end + colon], &url[at..]),
        None => url.to_string(),
    }
}

/// On SIGTERM or SIGINT: stop accepting, give in-flight requests `grace`,
/// then end streaming bodies so they save what arrived and answer.
async fn shut_down_on_signal(
    server: actix_web::dev::ServerHandle,
    state: actix_web::web::Data<AppState>,
    grace: Duration,
) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        tracing::error!("cannot listen for SIGTERM");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!(grace_secs = grace.as_secs(), "shutting down: no new connections; in-flight requests may finish");
    let stopped = server.stop(true);
    tokio::pin!(stopped);
    tokio::select! {
        () = &mut stopped => return,
        () = actix_web::rt::time::sleep(grace) => {}
    }
    tracing::info!("grace period over: ending in-flight uploads, keeping what arrived");
    state.engine.shutdown.cancel();
    stopped.await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(super::redacted("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redacted("postgres://h/db"), "postgres://h/db");
    }
}
