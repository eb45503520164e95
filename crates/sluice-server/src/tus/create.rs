//! `POST /files/`: creation, creation-defer-length and creation-with-upload.

use super::headers;
use super::upload::{self, AppendRequest};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::hooks::{self, HookUpload};
use crate::id::UploadId;
use crate::observe::Transfer;
use crate::storage::NewUpload;
use crate::AppState;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use sluice_core::tus::{self, Metadata};
use sluice_core::units::format_size;
use sluice_core::Reason;

/// Creates an upload; with a body, appends it at once.
pub async fn handle(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let policy = &caller.policy(&state.policy);
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
    let file_name = Metadata::parse(raw_metadata)?.file_name();
    policy.check_name(file_name.as_deref())?;
    if length == Some(0) {
        policy.check_type(&[], file_name.as_deref())?;
    }
    let with_body = headers::has_body(&req)?;
    let checksum = if with_body {
        headers::require_offset_octet_stream(&req)?;
        let checksum = headers::checksum(&req)?;
        policy.check_checksum(checksum.as_ref().map(|(algorithm, _)| *algorithm))?;
        checksum
    } else {
        None
    };

    if let (Some(len), Some(free)) = (length, state.storage.available_space().await) {
        let room = free.saturating_sub(state.settings.disk_reserve);
        if len > room {
            return Err(Error::new(
                Reason::StorageFull,
                format!("This upload needs {}; the server has room for {} now.", format_size(len), format_size(room)),
            ));
        }
    }

    hooks::pre_create(&state, &HookUpload::new("tus", length, raw_metadata, caller.owner())).await?;

    let id = UploadId::random().map_err(Error::internal)?;
    let mut info = state
        .storage
        .create(NewUpload {
            id: id.clone(),
            length,
            metadata: raw_metadata.to_string(),
            owner: caller.owner().map(str::to_owned),
        })
        .await?;
    let location = req.url_for("tus_upload", [id.as_str()]).map_err(Error::internal)?.to_string();
    state.metrics.created.inc();
    req.extensions_mut().insert(Transfer { upload: id.to_string(), bytes: 0 });
    tracing::info!(upload = %id, ?length, "upload created");
    if with_body {
        let guard = state.locks.acquire(&id).await.map_err(|_| Error::internal("fresh upload was locked"))?;
        let request = AppendRequest { offset: 0, content_length: headers::content_length(&req)?, checksum };
        info.offset = upload::append(&state, &req, &caller, &info, request, payload, &guard)
            .await
            .map_err(|e| e.with_header("location", &location))?;
    } else if length == Some(0) {
        upload::record_type(&state, &info).await?;
    }
    let mut response = HttpResponse::Created();
    response.insert_header(("Location", location)).insert_header(("Upload-Offset", info.offset));
    upload::expiry_header(&mut response, &state, &info);
    Ok(response.finish())
}
