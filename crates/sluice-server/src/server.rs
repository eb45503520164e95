//! The composition root: picks the backends (`--state`), starts the sweeper and the HTTP listeners.
//!
//! The public listener admits each connection through the `Gate` at accept time (a cap per
//! client address and a ceiling) and times every request head (`Connection`); the optional
//! operations listener (`--ops-listen`) serves the operations routes apart from it.

use crate::client::TrustedProxies;
use crate::connection::{self, Connection, ConnectionLimits, Gate};
use crate::engine::expiry;
use crate::lock::{Locks, MemoryLocks, PgLocks};
use crate::store::fs;
use crate::store::postgres::Postgres;
use crate::store::s3::{S3Bytes, S3Config};
use crate::store::{ByteStore, RecordStore};
use crate::{configure, ops, status, AppState, Backends, Settings};
use actix_http::{HttpService, KeepAlive, Protocol};
use actix_service::{fn_service, map_config, ServiceFactoryExt as _};
use actix_web::dev::{AppConfig, Extensions};
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::App;
use sluice_core::Policy;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
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
    /// Address of the operations listener; `None` serves the operations routes on `listen`.
    pub ops_listen: Option<String>,
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
    /// Time a client has to send a request head, from its first byte.
    pub header_timeout: Duration,
    /// Open connections on the public listener, in all.
    pub max_connections: usize,
    /// Open connections on the public listener per client address.
    pub max_connections_per_client: u32,
    /// Proxies whose forwarding header names the client.
    pub trusted_proxies: TrustedProxies,
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

/// Pending connections the kernel queues for each listener (capped by `net.core.somaxconn`):
/// a burst of connections must not make the kernel drop a legitimate client's SYN.
const BACKLOG: i32 = 4096;

/// Connections the operations listener may hold beyond the public ceiling.
const OPS_CONNECTIONS: usize = 1024;

/// How long an idle keep-alive connection stays open (actix-web's default).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Runs the server until it is stopped (SIGINT/SIGTERM stop it gracefully).
///
/// Prints `listening on http://ADDR` on stdout once bound, so scripts that
/// pass port 0 learn the port (then `ops listening on http://ADDR` with `--ops-listen`).
pub async fn run(mut config: ServerConfig) -> io::Result<()> {
    raise_open_files_limit(config.max_connections + OPS_CONNECTIONS);
    let backends = open_backends(&mut config).await?;
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
        bytes = %bytes,
        dir = %config.data_dir.join("uploads").display(),
        max_file_size = config.policy.max_file_size,
        memory_budget = config.settings.memory_budget,
        fsync = config.fsync,
        "storage ready"
    );
    let state = AppState::new(config.policy, backends, config.settings);
    expiry::spawn(state.clone(), config.expiry_interval);
    status::spawn(state.clone(), Duration::from_secs(1));

    let gate = Gate::new(
        ConnectionLimits {
            max_total: config.max_connections,
            max_per_client: config.max_connections_per_client,
            header_timeout: config.header_timeout,
            trusted_proxies: config.trusted_proxies.clone(),
        },
        state.engine.metrics.connections.clone(),
    );
    let mut builder = actix_web::dev::Server::build()
        // The gate enforces the ceiling; actix's per-worker limit must never be reached first.
        .max_concurrent_connections(config.max_connections + OPS_CONNECTIONS)
        // Our own signal handling ends bodies after the grace period; actix
        // then gets a little longer to flush and answer them.
        .disable_signals()
        .shutdown_timeout(config.shutdown_grace.as_secs() + 5);
    if let Some(workers) = config.workers {
        builder = builder.workers(workers);
    }
    let shutting_down = builder.graceful_shutdown_signal();
    let mut lines = Vec::new();
    for listener in bind(&config.listen)? {
        let addr = listener.local_addr()?;
        let (state, gate, trusted) = (state.clone(), gate.clone(), config.trusted_proxies.clone());
        let (header_timeout, shutting_down) = (config.header_timeout, shutting_down.clone());
        builder = builder.listen(format!("sluice-{addr}"), listener, move || {
            let app = App::new()
                .app_data(trusted.clone())
                .wrap(from_fn(connection::track_requests))
                .configure(configure(state.clone()));
            let shutting_down = shutting_down.clone();
            let http = HttpService::<Connection, _, _>::build()
                .client_request_timeout(header_timeout)
                .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(addr)
                .graceful_shutdown_signal(move || {
                    let signal = shutting_down.clone();
                    async move { signal.notified().await }
                })
                .on_connect_ext(|io: &Connection, data: &mut Extensions| data.insert(io.activity()).map_or((), drop))
                .finish(map_config(app, move |_| AppConfig::__priv_test_new(false, addr.to_string(), addr)));
            let gate = gate.clone();
            fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                let admitted = gate.admit(peer.map(|p| p.ip()));
                async move {
                    match admitted {
                        Some(admitted) => Ok((Connection::new(io, admitted), Protocol::Http1, peer)),
                        // Closed before a byte is read; counted by the gate.
                        None => Err(actix_http::error::DispatchError::Io(io::Error::other("refused at accept"))),
                    }
                }
            })
            .and_then(http)
        })?;
        lines.push(format!("listening on http://{addr}"));
        tracing::info!(%addr, max_connections = config.max_connections, max_per_client = config.max_connections_per_client, "listening");
    }
    if let Some(ops_listen) = &config.ops_listen {
        for listener in bind(ops_listen)? {
            let addr = listener.local_addr()?;
            let state = state.clone();
            builder = builder.listen(format!("sluice-ops-{addr}"), listener, move || {
                let app = App::new().configure(ops::configure(state.clone()));
                HttpService::build()
                    .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
                    .local_addr(addr)
                    .finish(map_config(app, move |_| AppConfig::__priv_test_new(false, addr.to_string(), addr)))
                    .tcp()
            })?;
            lines.push(format!("ops listening on http://{addr}"));
            tracing::info!(%addr, "operations routes listening");
        }
    }
    // The public address first: scripts read the first line.
    for line in lines {
        println!("{line}");
    }
    io::stdout().flush()?;
    let server = builder.run();
    actix_web::rt::spawn(shut_down_on_signal(server.handle(), state, config.shutdown_grace));
    server.await
}

/// The stores `--state` and `--storage` name: records and locks on the local disk (one
/// instance) or in PostgreSQL (any number), bytes on the local disk or in an S3 bucket.
async fn open_backends(config: &mut ServerConfig) -> io::Result<Backends> {
    let shutdown = CancellationToken::new();
    let (records, locks): (Arc<dyn RecordStore>, Arc<dyn Locks>) = match config.state.clone() {
        StateConfig::Local => {
            if matches!(config.storage, Storage::Fs) {
                // Records reconciled at start with the data files they describe.
                let backends = Backends::local(&config.data_dir, config.fsync, config.settings.takeover_wait)?;
                tracing::info!(records = "filesystem", locks = "in-process", "state ready");
                return Ok(backends);
            }
            // Bytes elsewhere: records are never lowered to match local data files.
            let records = fs::open_records(&config.data_dir, config.fsync)?;
            tracing::info!(records = "filesystem", locks = "in-process", "state ready");
            (Arc::new(records), Arc::new(MemoryLocks::new(config.settings.takeover_wait, shutdown.clone())))
        }
        StateConfig::Postgres { url, pool_size, lease } => {
            postgres_state(config, &url, pool_size, lease, &shutdown).await?
        }
    };
    let bytes: Arc<dyn ByteStore> = match &config.storage {
        Storage::Fs => Arc::new(fs::open_bytes(&config.data_dir, config.fsync)?),
        Storage::S3(s3) => Arc::new(S3Bytes::open(S3Config::clone(s3)).map_err(io::Error::other)?),
    };
    Ok(Backends { records, bytes, locks, shutdown })
}

/// Records, locks and the shared secret in PostgreSQL (its schema created or upgraded first).
async fn postgres_state(
    config: &mut ServerConfig,
    url: &str,
    pool_size: usize,
    lease: Duration,
    shutdown: &CancellationToken,
) -> io::Result<(Arc<dyn RecordStore>, Arc<dyn Locks>)> {
    let unreachable =
        |e: &dyn std::fmt::Display| io::Error::other(format!("PostgreSQL state ({}): {e}", redacted(url)));
    let pg = Postgres::open(url, pool_size).await.map_err(|e| unreachable(&e))?;
    if config.secret_from_state {
        config.settings.secret = pg.shared_secret().await.map_err(|e| unreachable(&e))?;
    }
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
    Ok((Arc::new(pg.records()), Arc::new(locks)))
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

/// Binds every address `addr` resolves to, with a deep accept queue.
fn bind(addr: &str) -> io::Result<Vec<TcpListener>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut listeners = Vec::new();
    let mut last_error = None;
    for addr in addrs {
        match listen_on(addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) => last_error = Some(e),
        }
    }
    match (listeners.is_empty(), last_error) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} resolves to no address"))),
        _ => Ok(listeners),
    }
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Raises the soft limit on open files towards the hard one so the connection ceiling can be
/// reached (as Go's runtime does); logs a warning when even that is too low.
fn raise_open_files_limit(wanted: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), hard) = (limit.current, limit.maximum) else { return };
    let target = hard.unwrap_or(u64::MAX).min(wanted as u64 + 256);
    if target > current {
        let raised = rustix::process::Rlimit { current: Some(target), maximum: hard };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < wanted as u64 {
        tracing::warn!(open_files = now, wanted, "the open-files limit is below --max-connections; raise `ulimit -n`");
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
