//! `DELETE /files/{id}`: cancellation.

use super::head::refuse_fields;
use super::reply::{self, Answer};
use crate::auth::Caller;
use crate::protocol::{parse_id, requester};
use crate::AppState;
use actix_web::{HttpRequest, HttpResponse};
use sluice_core::rufh::InteropVersion;

/// Stops any append in flight and deletes the upload; it then answers 404.
pub(super) async fn handle(
    req: &HttpRequest,
    version: InteropVersion,
    caller: &Caller,
    state: &AppState,
    path: &str,
) -> Answer {
    refuse_fields(req, version.fields_refused_on_delete(), "a cancellation")?;
    let id = parse_id(path)?;
    state.engine.terminate(requester(req, caller), &id).await.map_err(reply::unknown)?;
    Ok(HttpResponse::NoContent().finish())
}
