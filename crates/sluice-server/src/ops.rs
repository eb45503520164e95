//! The operations routes: `/healthz`, `/readyz`, `/metrics`, `/status` and `/status/samples`.
//!
//! [`crate::configure`] mounts them on the public app by default. With `--ops-listen` they are
//! served only by [`configure`] here, on a separate address (a private interface or loopback),
//! so probes and scrapes keep answering while the public listener is flooded, and are not
//! exposed to the public.

use crate::error::Error;
use crate::{admission, metrics, observe, AppState};
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;

/// Registers the operations routes (their handlers read [`AppState`] from the app data).
pub(crate) fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/status", web::get().to(status_page))
        .route("/status/samples", web::get().to(status_samples));
}

/// The app factory of the operations listener: the operations routes only, logged and counted
/// like the public ones.
pub(crate) fn configure(state: web::Data<AppState>) -> impl Fn(&mut ServiceConfig) + Clone {
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(state.clone()).service(web::scope("").wrap(from_fn(observe::observe)).configure(routes));
    }
}

/// Ready when the stores answer and take writes and the memory budget is not exhausted.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    state.engine.records().check().await?;
    state.engine.bytes().check_writable().await?;
    if state.engine.admission.is_exhausted() {
        return Err(Error::new(sluice_core::Reason::ServerBusy, "The memory budget for uploads is in use.")
            .with_header("retry-after", admission::RETRY_AFTER_SECS));
    }
    Ok(HttpResponse::Ok().body("ready"))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let engine = &state.engine;
    let m = &engine.metrics;
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.budget_bytes.set(gauge(engine.admission.budget_bytes()));
    m.budget_in_use_bytes.set(gauge(engine.admission.bytes_in_use()));
    m.resident_bytes.set(gauge(metrics::resident_memory().unwrap_or(0)));
    m.storage_available_bytes.set(gauge(engine.bytes().available_space().await.unwrap_or(0)));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(m.encode())
}

async fn status_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../../../web/status.html"))
}

async fn status_samples(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(state.history.report(&state))
}
