//! `OPTIONS /files/`: the server's limits, for clients that discover them first.

use super::reply;
use crate::auth::Caller;
use crate::AppState;
use actix_web::HttpResponse;
use sluice_core::rufh::InteropVersion;

/// `Upload-Limit` from the caller's policy and `Accept-Patch` (version 6 on).
pub(super) fn handle(version: InteropVersion, caller: &Caller, state: &AppState) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    let policy = caller.policy(&state.engine.policy);
    reply::limit_header(&mut response, version, &policy, &state.engine, None);
    if let Some(media_type) = version.append_content_type() {
        response.insert_header(("Accept-Patch", media_type));
    }
    response.finish()
}
