//! `PATCH /files/{id}`: append a chunk at the upload's offset.

use super::headers;
use super::upload::expiry_header;
use crate::auth::Caller;
use crate::engine::{AppendInput, Finish};
use crate::error::Result;
use crate::protocol::{note_transfer, parse_id, requester};
use crate::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

/// Appends the body; everything the headers can refuse is refused unread.
pub(super) async fn handle(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let id = parse_id(&path)?;
    headers::require_offset_octet_stream(&req)?;
    let offset = headers::required_length(&req, "Upload-Offset")?;
    let content_length = headers::content_length(&req)?;
    let checksum = headers::checksum(&req)?;
    let declared_length = headers::length(&req, "Upload-Length")?;
    let engine = &state.engine;
    let policy = caller.policy(&engine.policy);
    policy.check_checksum(checksum.as_ref().map(|(algorithm, _)| *algorithm))?;
    if let Some(length) = declared_length {
        policy.check_size(length)?;
    }
    let input = AppendInput {
        offset,
        content_length,
        checksum,
        declared_length,
        whole_body: false,
        finish: Finish::AtLength,
        digest: false,
        body: payload,
    };
    let appended = engine.append(requester(&req, &caller), &id, input).await;
    note_transfer(&req, &id, appended.as_ref().map_or(0, |r| r.offset.saturating_sub(offset)));
    let record = appended?;
    let mut response = HttpResponse::NoContent();
    response.insert_header(("Upload-Offset", record.offset));
    expiry_header(&mut response, engine, &record);
    Ok(response.finish())
}
