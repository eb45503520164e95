//! `PATCH /files/{id}`: append a chunk at the upload's offset.

use super::headers;
use super::upload::{self, AppendRequest};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use sluice_core::Reason;

/// Appends the body; everything the headers can refuse is refused unread.
pub async fn handle(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let id = upload::parse_id(&path)?;
    headers::require_offset_octet_stream(&req)?;
    let offset = headers::required_length(&req, "Upload-Offset")?;
    let content_length = headers::content_length(&req)?;
    let checksum = headers::checksum(&req)?;
    let declared_length = headers::length(&req, "Upload-Length")?;
    let policy = &caller.policy(&state.policy);
    policy.check_checksum(checksum.as_ref().map(|(algorithm, _)| *algorithm))?;
    if let Some(length) = declared_length {
        policy.check_size(length)?;
    }

    let guard = upload::lock(&state, &id).await?;
    let mut info = upload::live_info(&state, &id, &caller).await?;
    if let Some(length) = declared_length {
        match info.length {
            Some(known) if known != length => {
                return Err(Error::new(
                    Reason::InvalidHeader,
                    format!("Upload-Length is already {known}; it cannot change."),
                ))
            }
            Some(_) => {}
            None if length < info.offset => {
                return Err(Error::new(
                    Reason::InvalidHeader,
                    format!("Upload-Length {length} is less than the {} bytes already received.", info.offset),
                ))
            }
            None => {
                state.storage.declare_length(&id, length).await?;
                info.length = Some(length);
            }
        }
    }
    let request = AppendRequest { offset, content_length, checksum };
    info.offset = upload::append(&state, &req, &caller, &info, request, payload, &guard).await?;
    info.modified_at = std::time::SystemTime::now();
    let mut response = HttpResponse::NoContent();
    response.insert_header(("Upload-Offset", info.offset));
    upload::expiry_header(&mut response, &state, &info);
    Ok(response.finish())
}
