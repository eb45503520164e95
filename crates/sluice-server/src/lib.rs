//! Sluice's upload server: tus 1.0 on actix-web, with memory that does not
//! grow with file size.
//!
//! - [`configure`] mounts every route into an actix `App` (used by the
//!   `sluice` binary and by every test): `/files` (tus), `/policy`, `/healthz`, `/`.
//! - [`storage::Storage`] is the backend seam; [`storage::FsStorage`] the default.
//! - Request bodies are never collected: [`body::IncomingBody`] counts, caps,
//!   hashes and sniffs them as they stream into storage through a fixed buffer.
//! - [`error::Error`] is the one error type, mapped to HTTP in one place.
//!
//! Mounting Sluice into an existing actix app:
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use sluice_server::{configure, storage::FsStorage, AppState, Settings};
//! use std::sync::Arc;
//!
//! # async fn run() -> std::io::Result<()> {
//! let storage = FsStorage::open("./sluice-data")?;
//! let state = AppState::new(sluice_core::Policy::default(), Arc::new(storage), Settings::default());
//! HttpServer::new(move || App::new().configure(configure(state.clone())))
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! # }
//! ```

pub mod body;
pub mod config;
pub mod error;
pub mod expiry;
pub mod id;
pub mod locks;
pub mod server;
pub mod storage;
pub mod tus;

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use sluice_core::Policy;
use std::sync::Arc;
use std::time::Duration;

/// Behaviour switches, set from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether `GET /files/{id}` serves completed uploads.
    pub allow_download: bool,
    /// Origins allowed by CORS; `*` allows any (without credentials).
    pub cors_origins: Vec<String>,
    /// How long a new request waits for an older one on the same upload to let go.
    pub takeover_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { allow_download: true, cors_origins: vec!["*".into()], takeover_wait: Duration::from_secs(5) }
    }
}

/// Everything handlers share.
pub struct AppState {
    /// The upload policy.
    pub policy: Arc<Policy>,
    /// Where uploads are kept.
    pub storage: Arc<dyn storage::Storage>,
    /// One writer per upload.
    pub locks: locks::UploadLocks,
    /// Behaviour switches.
    pub settings: Settings,
}

impl AppState {
    /// Shared state for [`configure`].
    pub fn new(policy: Policy, storage: Arc<dyn storage::Storage>, settings: Settings) -> web::Data<AppState> {
        web::Data::new(AppState {
            policy: Arc::new(policy),
            storage,
            locks: locks::UploadLocks::new(settings.takeover_wait),
            settings,
        })
    }
}

/// The app factory: registers every Sluice route with its state.
pub fn configure(state: web::Data<AppState>) -> impl Fn(&mut ServiceConfig) + Clone {
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(state.clone());
        tus::routes(cfg, cors(&state.settings.cors_origins));
        cfg.service(web::resource("/policy").wrap(cors(&state.settings.cors_origins)).get(policy));
        cfg.route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }));
        cfg.route("/", web::get().to(page));
    }
}

/// Request headers a tus client sends, and response headers it must read.
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "origin",
    "tus-resumable",
    "upload-checksum",
    "upload-concat",
    "upload-defer-length",
    "upload-length",
    "upload-metadata",
    "upload-offset",
    "x-http-method-override",
    "x-request-id",
    "x-requested-with",
];
const EXPOSED_HEADERS: &[&str] = &[
    "location",
    "retry-after",
    "tus-checksum-algorithm",
    "tus-extension",
    "tus-max-size",
    "tus-resumable",
    "tus-version",
    "upload-concat",
    "upload-defer-length",
    "upload-expires",
    "upload-length",
    "upload-metadata",
    "upload-offset",
];

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::HEAD, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allowed_headers(ALLOWED_HEADERS.iter().copied())
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
    HttpResponse::Ok().content_type("application/json").body(state.policy.to_json())
}

async fn page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../../../web/index.html"))
}
