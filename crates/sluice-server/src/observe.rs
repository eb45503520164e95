//! One log line and the request metrics for every request.
//!
//! Refusals are counted by reason: the one `ResponseError` impl puts the
//! [`Reason`](sluice_core::Reason) into the response's extensions, and this
//! middleware reads it back.

use crate::metrics::{RequestLabels, RouteLabel};
use crate::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use sluice_core::Reason;
use std::time::Instant;

/// The upload a request touched and the body bytes it delivered, recorded by
/// the handlers for the log line.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    /// The upload's id.
    pub upload: String,
    /// Body bytes received.
    pub bytes: u64,
}

/// Logs and counts a request (see the module docs).
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    let elapsed = started.elapsed();
    let request = response.request();
    let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let status = response.status().as_u16();
    let reason = response.response().extensions().get::<Reason>().copied();
    let transfer = request.extensions().get::<Transfer>().cloned();
    let upload = transfer.as_ref().map(|t| t.upload.as_str()).or(request.match_info().get("id"));
    tracing::info!(
        method = %request.method(),
        route = %route,
        status,
        upload,
        bytes = transfer.as_ref().map(|t| t.bytes),
        reason = reason.map(Reason::code),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    let Some(state) = state else { return Ok(response) };
    let metrics = &state.engine.metrics;
    // Refusals are always counted; `--no-request-metrics` turns off only the per-request series.
    if let Some(reason) = reason {
        metrics.reject(reason);
    }
    if state.settings.request_metrics {
        let protocol = crate::protocol::spoken(request, &route).map_or("none", |p| p.name());
        let labels = RequestLabels { route: route.clone(), method: request.method().to_string(), status, protocol };
        metrics.requests.get_or_create(&labels).inc();
        metrics.latency.get_or_create(&RouteLabel { route }).observe(elapsed.as_secs_f64());
    }
    Ok(response)
}
