//! `HEAD /files/{id}`: where an upload stands.

use super::headers;
use super::upload::expiry_header;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::protocol::{parse_id, requester};
use crate::store::Kind;
use crate::AppState;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use sluice_core::tus::Concat;

/// Reports offset, length (or deferral), metadata and expiry; never cached.
pub(super) async fn handle(
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
    match &record.kind {
        Kind::Whole => {}
        Kind::Partial => {
            response.insert_header(("Upload-Concat", "partial"));
        }
        Kind::Final(parts) => {
            let urls = parts
                .iter()
                .map(|id| req.url_for("tus_upload", [id.as_str()]).map(|u| u.to_string()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(Error::internal)?;
            response.insert_header(("Upload-Concat", Concat::Final(urls).encode()));
        }
    }
    if let Some(digest) = record.sha256.as_deref().and_then(repr_digest) {
        response.insert_header(("Repr-Digest", digest));
    }
    let metadata = record.metadata.encode();
    if !metadata.is_empty() {
        response.insert_header(("Upload-Metadata", metadata));
    }
    expiry_header(&mut response, &state.engine, &record);
    Ok(response.finish())
}

/// RFC 9530 `Repr-Digest` for a hex SHA-256.
fn repr_digest(hex: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    Some(format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(bytes)))
}
