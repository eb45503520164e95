//! The composition root: picks the backend, starts the sweeper and the HTTP server.

use crate::engine::expiry;
use crate::store::s3::{S3Bytes, S3Config};
use crate::{configure, status, AppState, Backends, Settings};
use actix_web::{App, HttpServer};
use sluice_core::Policy;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where upload bytes live (`--storage`).
#[derive(Debug, Clone)]
pub enum Storage {
    /// Files under the data directory (the embedded default).
    Fs,
    /// An S3-compatible bucket, staged through a local spool.
    S3(Box<S3Config>),
}

/// Everything needed to run the server, already validated.
#[derive(Debug)]
pub struct ServerConfig {
    /// Address to bind (`host:port`).
    pub listen: String,
    /// Data directory for the file-system backend.
    pub data_dir: PathBuf,
    /// Where upload bytes live.
    pub storage: Storage,
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
}

/// Runs the server until it is stopped (SIGINT/SIGTERM stop it gracefully).
///
/// Prints `listening on http://ADDR` on stdout once bound, so scripts that
/// pass port 0 learn the port.
pub async fn run(config: ServerConfig) -> io::Result<()> {
    let backends = match &config.storage {
        Storage::Fs => Backends::local(&config.data_dir, config.fsync, config.settings.takeover_wait)?,
        Storage::S3(s3) => s3_backends(&config, s3)?,
    };
    let bytes = match &config.storage {
        Storage::Fs => "filesystem".to_string(),
        Storage::S3(s3) => format!(
            "s3://{}/{} at {} (part size {} MiB, spool {})",
            s3.endpoint.bucket,
            s3.prefix,
            s3.endpoint.url.as_deref().unwrap_or("AWS"),
            crate::store::s3::part_size(s3.max_file_size) >> 20,
            s3.spool_dir.display()
        ),
    };
    tracing::info!(
        records = "filesystem",
        bytes = %bytes,
        locks = "in-process",
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

/// Records (and locks) as `--state` says, bytes in the bucket.
fn s3_backends(config: &ServerConfig, s3: &S3Config) -> io::Result<Backends> {
    let records = crate::store::fs::open_records(&config.data_dir, config.fsync)?;
    let bytes = S3Bytes::open(s3.clone()).map_err(io::Error::other)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    Ok(Backends {
        records: Arc::new(records),
        bytes: Arc::new(bytes),
        locks: Arc::new(crate::lock::MemoryLocks::new(config.settings.takeover_wait, shutdown.clone())),
        shutdown,
    })
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
