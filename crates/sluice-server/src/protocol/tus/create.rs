//! `POST /files/`: creation, creation-defer-length and creation-with-upload.

use super::headers;
use super::upload::expiry_header;
use crate::auth::Caller;
use crate::engine::{AppendInput, Finish, NewUpload};
use crate::error::{Error, Result};
use crate::protocol::{note_transfer, requester};
use crate::store::{Kind, Protocol};
use crate::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use sluice_core::tus::{self, Metadata};
use sluice_core::Reason;

/// Creates an upload; with a body, appends it at once.
pub async fn handle(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let engine = &state.engine;
    let policy = caller.policy(&engine.policy);
    let length = headers::length(&req, "Upload-Length")?;
    let deferred = headers::single(&req, "Upload-Defer-Length")?.map(tus::parse_defer_length).transpose()?.is_some();
    match (length, deferred) {
        (Some(_), true) => {
            return Err(Error::new(Reason::InvalidHeader, "Send Upload-Length or Upload-Defer-Length, not both."))
        }
        (None, false) => {
            return Err(Error::new(
                Reason::UploadLengthRequired,
                "Upload-Length (or Upload-Defer-Length: 1) is required.",
            ))
        }
        (Some(len), false) => {
            policy.check_size(len).map_err(|e| Error::from(e).with_header("tus-max-size", policy.max_file_size))?
        }
        (None, true) => {}
    }
    if req.headers().contains_key("Upload-Concat") {
        return Err(Error::new(
            Reason::InvalidHeader,
            "Upload-Concat (concatenation) is not supported by this server.",
        ));
    }
    let raw_metadata = headers::single(&req, "Upload-Metadata")?.unwrap_or("").trim();
    if raw_metadata.len() as u64 > policy.max_metadata_size {
        return Err(Error::new(
            Reason::MetadataTooLarge,
            format!("Upload-Metadata is {} bytes; the limit is {}.", raw_metadata.len(), policy.max_metadata_size),
        ));
    }
    let metadata = Metadata::parse(raw_metadata)?;
    let with_body = headers::has_body(&req)?;
    let checksum = if with_body {
        headers::require_offset_octet_stream(&req)?;
        let checksum = headers::checksum(&req)?;
        policy.check_checksum(checksum.as_ref().map(|(algorithm, _)| *algorithm))?;
        checksum
    } else {
        None
    };

    let who = requester(&req, &caller);
    let new = NewUpload { protocol: Protocol::Tus, kind: Kind::Whole, length, metadata, id: None };
    let mut record = engine.create(who, new).await?;
    let id = record.id.clone();
    let location = req.url_for("tus_upload", [id.as_str()]).map_err(Error::internal)?.to_string();
    note_transfer(&req, &id, 0);
    if with_body {
        let input = AppendInput {
            offset: 0,
            content_length: headers::content_length(&req)?,
            checksum,
            declared_length: None,
            whole_body: false,
            finish: Finish::AtLength,
            digest: false,
            body: payload,
        };
        let appended = engine.append(who, &id, input).await;
        note_transfer(&req, &id, appended.as_ref().map_or(0, |r| r.offset));
        record = appended.map_err(|e| e.with_header("location", &location))?;
    }
    let mut response = HttpResponse::Created();
    response.insert_header(("Location", location)).insert_header(("Upload-Offset", record.offset));
    expiry_header(&mut response, engine, &record);
    Ok(response.finish())
}
