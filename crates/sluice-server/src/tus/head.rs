//! `HEAD /files/{id}`: where an upload stands.

use super::headers;
use super::upload;
use crate::auth::Caller;
use crate::error::Result;
use crate::AppState;
use actix_web::http::header::CacheControl;
use actix_web::http::header::CacheDirective;
use actix_web::{web, HttpRequest, HttpResponse};

/// Reports offset, length (or deferral), metadata and expiry; never cached.
pub async fn handle(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let id = upload::parse_id(&path)?;
    // A client HEADs first when it resumes: stopping a PATCH its lost
    // connection left behind makes the offset reported here the final one.
    upload::preempt(&state, &id).await?;
    let info = upload::live_info(&state, &id, &caller).await?;
    let mut response = HttpResponse::Ok();
    response.insert_header(CacheControl(vec![CacheDirective::NoStore])).insert_header(("Upload-Offset", info.offset));
    match info.length {
        Some(length) => response.insert_header(("Upload-Length", length)),
        None => response.insert_header(("Upload-Defer-Length", 1)),
    };
    if !info.metadata.is_empty() {
        response.insert_header(("Upload-Metadata", info.metadata.as_str()));
    }
    upload::expiry_header(&mut response, &state, &info);
    Ok(response.finish())
}
