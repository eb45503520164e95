//! `POST /files/` with a completeness field: upload creation, with or without content.

use super::reply::{self, Answer, Refusal};
use crate::auth::Caller;
use crate::engine::{AppendInput, NewUpload};
use crate::error::Error;
use crate::protocol::tus::headers;
use crate::protocol::{note_transfer, requester};
use crate::store::{Kind, Protocol};
use crate::AppState;
use actix_web::http::header::{ContentDisposition, CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use sluice_core::rufh::{field, InteropVersion, PARTIAL_UPLOAD};
use sluice_core::tus::{Metadata, OFFSET_OCTET_STREAM};
use sluice_core::Reason;

/// Creates an upload; with content (or `?1`), appends it at once.
pub(super) async fn handle(
    req: &HttpRequest,
    version: InteropVersion,
    caller: &Caller,
    payload: web::Payload,
    state: &AppState,
) -> Answer {
    let engine = &state.engine;
    let policy = caller.policy(&engine.policy);
    let complete = reply::complete(req, version)?.ok_or_else(|| {
        Error::new(
            Reason::InvalidHeader,
            format!("{} (?0 or ?1) is required to create an upload.", version.complete_field()),
        )
    })?;
    if reply::size(req, version, field::UPLOAD_OFFSET)?.is_some_and(|offset| offset != 0) {
        return Err(Error::new(Reason::InvalidHeader, "A new upload starts at offset 0.").into());
    }
    let content_length = headers::content_length(req)?;
    let mut length = reply::size(req, version, field::UPLOAD_LENGTH)?;
    if complete {
        // This request carries the whole upload: its length is the content's.
        if let Some(content) = content_length {
            if length.is_some_and(|declared| declared != content) {
                return Err(Error::new(
                    Reason::InconsistentLength,
                    format!("Upload-Length says {length:?} bytes, but this request completes the upload at {content}."),
                )
                .into());
            }
            length = Some(content);
        }
    }
    let limited = |refusal: Refusal| match reply::limit(version, &policy, engine, None) {
        Some(limit) => refusal.header("upload-limit", limit),
        None => refusal,
    };
    if let Some(length) = length {
        policy.check_size(length).map_err(|e| limited(e.into()))?;
    }
    if let Some(content) = content_length {
        // One request may carry at most max-append-size bytes.
        if content > policy.max_chunk_size {
            return Err(limited(
                Error::new(
                    Reason::ChunkTooLarge,
                    format!(
                        "This request carries {content} bytes; the limit per request is {}.",
                        policy.max_chunk_size
                    ),
                )
                .into(),
            ));
        }
    }
    let metadata = metadata(req, policy.max_metadata_size)?;

    let who = requester(req, caller);
    // RFC 9530 Repr-Digest (sha-256) on creation declares the whole file's digest, verified
    // when the upload completes.
    let sha256 = headers::single(req, "Repr-Digest")?
        .map(sluice_core::repr_digest::parse_sha256)
        .transpose()?
        .flatten()
        .map(|digest| sluice_core::checksum::to_hex(&digest));
    let new = NewUpload { protocol: Protocol::Ietf, kind: Kind::Whole, length, metadata, id: None, sha256 };
    let mut record = engine.create(who, new).await?;
    let id = record.id.clone();
    let location = req.url_for("tus_upload", [id.as_str()]).map_err(Error::internal)?.to_string();
    note_transfer(req, &id, 0);
    if !record.is_complete() && (complete || headers::has_body(req)?) {
        let input = AppendInput {
            offset: 0,
            content_length,
            checksum: None,
            declared_length: None,
            whole_body: false,
            finish: reply::finish_when(version, complete),
            digest: false,
            body: payload,
        };
        let appended = engine.append(who, &id, input).await;
        note_transfer(req, &id, appended.as_ref().map_or(0, |r| r.offset));
        record = appended.map_err(|e| Refusal::from(e).header("location", &location))?;
    }
    let mut response = HttpResponse::Created();
    response.insert_header(("Location", location)).insert_header((field::UPLOAD_OFFSET, record.offset));
    reply::complete_header(&mut response, version, record.is_complete());
    reply::limit_header(&mut response, version, &policy, engine, Some(&record));
    Ok(response.finish())
}

/// The upload's metadata: tus-style `Upload-Metadata` (tus-js-client sends it), else
/// the representation's `Content-Disposition` file name and `Content-Type`.
fn metadata(req: &HttpRequest, max_size: u64) -> Result<Metadata, Refusal> {
    let raw = headers::single(req, "Upload-Metadata")?.unwrap_or("").trim();
    if raw.len() as u64 > max_size {
        return Err(Error::new(
            Reason::MetadataTooLarge,
            format!("Upload-Metadata is {} bytes; the limit is {max_size}.", raw.len()),
        )
        .into());
    }
    let mut pairs: Vec<(String, Vec<u8>)> = Metadata::parse(raw)?.pairs().to_vec();
    let has = |pairs: &[(String, Vec<u8>)], key: &str| pairs.iter().any(|(k, _)| k == key);
    if !has(&pairs, "filename") {
        let disposition = headers::single(req, CONTENT_DISPOSITION.as_str())?;
        if let Some(name) = disposition.and_then(file_name) {
            pairs.push(("filename".into(), name.into_bytes()));
        }
    }
    if !has(&pairs, "filetype") {
        let media_type = headers::single(req, CONTENT_TYPE.as_str())?.map(|v| v.trim());
        // The content types of the transfer itself say nothing of the file.
        let describes_file = |m: &&str| {
            let essence = m.split(';').next().unwrap_or("").trim();
            !essence.eq_ignore_ascii_case(PARTIAL_UPLOAD) && !essence.eq_ignore_ascii_case(OFFSET_OCTET_STREAM)
        };
        if let Some(media_type) = media_type.filter(describes_file) {
            pairs.push(("filetype".into(), media_type.as_bytes().to_vec()));
        }
    }
    Ok(Metadata::from_pairs(pairs))
}

/// The `filename` of a `Content-Disposition` value (`filename*` preferred).
fn file_name(value: &str) -> Option<String> {
    let header = actix_web::http::header::HeaderValue::from_str(value).ok()?;
    let disposition = ContentDisposition::from_raw(&header).ok()?;
    disposition
        .get_filename_ext()
        .map(|ext| String::from_utf8_lossy(&ext.value).into_owned())
        .or_else(|| disposition.get_filename().map(str::to_owned))
}
