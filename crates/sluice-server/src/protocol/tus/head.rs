//! `HEAD /files/{id}`: where an upload stands.

use super::headers;
use super::upload::expiry_header;
use crate::auth::Caller;
use crate::error::Result;
use crate::protocol::{parse_id, requester};
use crate::AppState;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};

/// Reports offset, length (or deferral), metadata and expiry; never cached.
pub async fn handle(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let id = parse_id(&path)?;
    // A client HEADs first when it resumes: stopping a PATCH its lost connection
    // left behind makes the offset reported here the final one.
    let record = state.engine.info(requester(&req, &caller), &id, true).await?;
    let mut response = HttpResponse::Ok();
    response.insert_header(CacheControl(vec![CacheDirective::NoStore])).insert_header(("Upload-Offset", record.offset));
    match record.length {
        Some(length) => response.insert_header(("Upload-Length", length)),
        None => response.insert_header(("Upload-Defer-Length", 1)),
    };
    let metadata = record.metadata.encode();
    if !metadata.is_empty() {
        response.insert_header(("Upload-Metadata", metadata));
    }
    expiry_header(&mut response, &state.engine, &record);
    Ok(response.finish())
}
