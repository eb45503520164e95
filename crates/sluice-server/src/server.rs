//! The composition root: picks the backend, starts the sweeper and the HTTP server.

use crate::storage::FsStorage;
use crate::{configure, expiry, AppState, Settings};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{App, HttpServer};
use sluice_core::Policy;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Behaviour switches shared with handlers.
    pub settings: Settings,
}

/// Runs the server until it is stopped (SIGINT/SIGTERM stop it gracefully).
///
/// Prints `listening on http://ADDR` on stdout once bound, so scripts that
/// pass port 0 learn the port.
pub async fn run(config: ServerConfig) -> io::Result<()> {
    let storage = FsStorage::open(&config.data_dir)?;
    tracing::info!(
        backend = "filesystem",
        dir = %storage.uploads_dir().display(),
        max_file_size = config.policy.max_file_size,
        "storage ready"
    );
    let state = AppState::new(config.policy, Arc::new(storage), config.settings);
    expiry::spawn(state.clone(), config.expiry_interval);

    let app_state = state.clone();
    let mut server =
        HttpServer::new(move || App::new().wrap(from_fn(log_request)).configure(configure(app_state.clone())))
            .bind(&config.listen)?;
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    for addr in server.addrs() {
        println!("listening on http://{addr}");
        tracing::info!(%addr, "listening");
    }
    io::stdout().flush()?;
    server.run().await
}

/// One log line per request: method, path (with the upload id), status, time.
async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}
