//! Sluice's upload server: resumable uploads on actix-web, with memory that does
//! not grow with file size.
//!
//! Layers (see `docs/architecture.md`): protocol front-ends (`protocol`: tus 1.0,
//! HTML forms, Flow.js) translate HTTP into calls on one `engine::Engine`, which
//! owns policy, admission, sniffing, locking, metrics, hooks and completion, over a
//! [`store::RecordStore`], a [`store::ByteStore`] and a [`lock::Locks`] service.
//!
//! - [`configure`] mounts every route into an actix `App` (used by the `sluice`
//!   binary and by every test): `/files` (tus), `/upload` (HTML forms), `/flow`
//!   (Flow.js / Resumable.js), `/policy`, `/healthz`, `/readyz`, `/metrics`,
//!   `/status` (live page), `/`.
//! - [`Backends::local`] is the embedded default (local disk, in-process locks).
//! - [`error::Error`] is the one error type, mapped to HTTP in one place.
//!
//! The public surface is this list; everything else is internal and may change:
//!
//! - [`configure`], [`AppState`], [`Settings`] (with [`Quotas`], [`Secret`],
//!   [`hooks::Hooks`], [`auth::AuthKey`]) and [`Backends`]: mounting and configuring.
//! - [`store`]: the [`store::RecordStore`] and [`store::ByteStore`] traits, their
//!   backends (`fs`, `memory`, `s3`, `postgres`) and the contract every backend passes.
//! - [`lock`]: the [`lock::Locks`] trait and its in-process and PostgreSQL services.
//! - [`id::UploadId`], [`error::Error`], [`auth`] (minting and checking upload tokens).
//! - [`config`] and [`server`]: the `sluice` command line, for the binary.
//!
//! Mounting Sluice into an existing actix app:
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use sluice_server::{configure, AppState, Backends, Settings};
//! use std::time::Duration;
//!
//! # async fn run() -> std::io::Result<()> {
//! let settings = Settings::default();
//! let backends = Backends::local("./sluice-data".as_ref(), false, settings.takeover_wait)?;
//! let state = AppState::new(sluice_core::Policy::default(), backends, settings);
//! HttpServer::new(move || App::new().configure(configure(state.clone())))
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! # }
//! ```

#![warn(unreachable_pub)]

mod admission;
pub mod auth;
mod client;
pub mod config;
mod connection;
mod engine;
pub mod error;
pub mod hooks;
pub mod id;
pub mod lock;
mod metrics;
mod observe;
mod ops;
mod protocol;
mod secret;
pub mod server;
mod status;
pub mod store;
mod web_assets;
mod worker;

pub use engine::Quotas;
pub use secret::Secret;

/// What the fuzz targets (`fuzz/`) exercise beyond the public API; not for embedding.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::protocol::flow::Chunk;
}

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use engine::{Engine, EngineSettings};
use lock::Locks;
use sluice_core::Policy;
use std::sync::Arc;
use std::time::Duration;
use store::{ByteStore, RecordStore};
use tokio_util::sync::CancellationToken;

/// Behaviour switches, set from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether `GET /files/{id}` serves completed uploads.
    pub allow_download: bool,
    /// Origins allowed by CORS; `*` allows any (without credentials).
    pub cors_origins: Vec<String>,
    /// How long a new request waits for an older one on the same upload to let go.
    pub takeover_wait: Duration,
    /// Memory for upload buffers; past it, new appends get 503 + `Retry-After`.
    pub memory_budget: u64,
    /// Appends one client address may have in flight; past it, 429.
    pub max_uploads_per_client: u32,
    /// A body that sends nothing for this long is ended, keeping what arrived.
    pub idle_timeout: Duration,
    /// Free space kept in reserve: a creation that would eat into it gets 507.
    pub disk_reserve: u64,
    /// What one client may hold open and how fast it may create (429 past them).
    pub quotas: engine::Quotas,
    /// Directory served at `/` (the upload page and its wasm package); the
    /// built-in placeholder page when `None`.
    pub web_dir: Option<std::path::PathBuf>,
    /// Keys ids derived from client-supplied identifiers (Flow.js chunks).
    pub secret: secret::Secret,
    /// Bearer-token key; `None` turns authorization off.
    pub auth: Option<auth::AuthKey>,
    /// The application's webhooks.
    pub hooks: hooks::Hooks,
    /// Whether requests are counted and timed for `/metrics` (upload counters always are).
    pub request_metrics: bool,
    /// Whether [`configure`] mounts the operations routes (`/healthz`, `/readyz`, `/metrics`,
    /// `/status`); off when they have their own listener (`ops::configure`).
    pub serve_ops_routes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_download: true,
            cors_origins: vec!["*".into()],
            takeover_wait: Duration::from_secs(5),
            memory_budget: 64 << 20,
            max_uploads_per_client: 16,
            idle_timeout: Duration::from_secs(30),
            disk_reserve: 256 << 20,
            quotas: engine::Quotas::default(),
            web_dir: None,
            secret: secret::Secret::random().unwrap_or_else(|_| secret::Secret::from_bytes([7; 32])),
            auth: None,
            hooks: hooks::Hooks { timeout: Duration::from_secs(5), ..Default::default() },
            request_metrics: true,
            serve_ops_routes: true,
        }
    }
}

/// The stores and the lock service an engine runs on.
pub struct Backends {
    /// Upload records.
    pub records: Arc<dyn RecordStore>,
    /// Upload bytes.
    pub bytes: Arc<dyn ByteStore>,
    /// One writer per upload.
    pub locks: Arc<dyn Locks>,
    /// Cancelled at shutdown; the lock service derives its leases' cancellations from it.
    pub shutdown: CancellationToken,
}

impl Backends {
    /// The embedded default: records and bytes under `data_dir` on the local disk
    /// (flushed before acknowledging with `durable`), locks in this process.
    pub fn local(data_dir: &std::path::Path, durable: bool, takeover_wait: Duration) -> std::io::Result<Backends> {
        let (records, bytes) = store::fs::open(data_dir, durable)?;
        let shutdown = CancellationToken::new();
        Ok(Backends {
            records: Arc::new(records),
            bytes: Arc::new(bytes),
            locks: Arc::new(lock::MemoryLocks::new(takeover_wait, shutdown.clone())),
            shutdown,
        })
    }

    /// Everything in memory (tests; never production: it holds every byte in RAM).
    pub fn memory(takeover_wait: Duration) -> Backends {
        let shutdown = CancellationToken::new();
        Backends {
            records: Arc::new(store::memory::MemoryRecords::default()),
            bytes: Arc::new(store::memory::MemoryBytes::default()),
            locks: Arc::new(lock::MemoryLocks::new(takeover_wait, shutdown.clone())),
            shutdown,
        }
    }
}

/// Everything handlers share.
pub struct AppState {
    /// The upload engine (policy, stores, locks, admission, metrics).
    pub engine: Engine,
    /// Recent samples for the status page.
    pub history: status::History,
    /// Behaviour switches.
    pub settings: Settings,
}

impl AppState {
    /// Shared state for [`configure`].
    pub fn new(policy: Policy, backends: Backends, settings: Settings) -> web::Data<AppState> {
        let admission = admission::Admission::new(
            settings.memory_budget,
            backends.bytes.append_memory(),
            settings.max_uploads_per_client,
        );
        let engine = Engine::new(
            policy,
            backends.records,
            backends.bytes,
            backends.locks,
            admission,
            backends.shutdown,
            EngineSettings {
                idle_timeout: settings.idle_timeout,
                disk_reserve: settings.disk_reserve,
                hooks: settings.hooks.clone(),
                quotas: settings.quotas,
            },
        );
        web::Data::new(AppState { engine, history: status::History::default(), settings })
    }
}

/// The app factory: registers every Sluice route with its state.
pub fn configure(state: web::Data<AppState>) -> impl Fn(&mut ServiceConfig) + Clone {
    move |cfg: &mut ServiceConfig| {
        let origins = &state.settings.cors_origins;
        cfg.app_data(state.clone()).service(
            web::scope("")
                .wrap(from_fn(close_after_refused_body))
                .wrap(from_fn(observe::observe))
                .configure(|cfg| protocol::tus::routes(cfg, cors(origins)))
                .service(web::resource("/policy").wrap(cors(origins)).get(policy))
                .service(web::resource("/upload").wrap(cors(origins)).post(protocol::form::handle))
                .service(
                    web::resource("/flow")
                        .wrap(cors(origins))
                        .get(protocol::flow::test_chunk)
                        .post(protocol::flow::upload_chunk),
                )
                .configure(|cfg| {
                    if state.settings.serve_ops_routes {
                        ops::routes(cfg);
                    }
                })
                .configure(|cfg| match &state.settings.web_dir {
                    Some(dir) => {
                        cfg.service(actix_files::Files::new("/", dir).index_file("index.html"));
                    }
                    // The page embedded at build time (or a placeholder saying how to get it).
                    None => web_assets::routes(cfg),
                }),
        );
    }
}

/// Response headers a browser-side tus or resumable-uploads-draft client must be able to read.
const EXPOSED_HEADERS: &[&str] = &[
    "accept-patch",
    "location",
    "repr-digest",
    "retry-after",
    "tus-checksum-algorithm",
    "tus-extension",
    "tus-max-size",
    "tus-resumable",
    "tus-version",
    "upload-complete",
    "upload-concat",
    "upload-defer-length",
    "upload-draft-interop-version",
    "upload-expires",
    "upload-incomplete",
    "upload-length",
    "upload-limit",
    "upload-metadata",
    "upload-offset",
];

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::HEAD, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        // tus clients add their own headers (auth, Cache-Control, X-*): any
        // requested header is allowed; credentials never are with `*`.
        .allow_any_header()
        .expose_headers(EXPOSED_HEADERS.iter().copied())
        .max_age(86_400);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

async fn policy(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(state.engine.policy.to_json())
}

/// A refused request with a body may leave most of it unread: close the
/// connection rather than let actix drain it through its buffers (memory that
/// admission control does not see).
async fn close_after_refused_body(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let has_body = matches!(*req.method(), Method::POST | Method::PATCH | Method::PUT);
    let mut response = next.call(req).await?;
    if has_body && response.status().as_u16() >= 400 {
        response.response_mut().head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(response)
}
