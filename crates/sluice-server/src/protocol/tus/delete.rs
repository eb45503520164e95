//! `DELETE /files/{id}`: termination.

use super::headers;
use crate::auth::Caller;
use crate::error::Result;
use crate::protocol::{parse_id, requester};
use crate::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

/// Stops any append in flight, deletes the bytes; the id then answers 410.
pub(super) async fn handle(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let id = parse_id(&path)?;
    state.engine.terminate(requester(&req, &caller), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
