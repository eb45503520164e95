//! `DELETE /files/{id}`: termination.

use super::headers;
use super::upload;
use crate::auth::Caller;
use crate::error::Result;
use crate::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

/// Stops any append in flight, deletes the bytes; the id then answers 410.
pub async fn handle(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let id = upload::parse_id(&path)?;
    let _guard = upload::lock(&state, &id).await?;
    // Another caller's (404) or expired (410) uploads are refused before anything is deleted.
    upload::live_info(&state, &id, &caller).await?;
    state.storage.terminate(&id).await?;
    state.metrics.terminated.inc();
    tracing::info!(upload = %id, "upload terminated");
    Ok(HttpResponse::NoContent().finish())
}
