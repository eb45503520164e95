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
use sluice_core::tus::{self, Concat, Metadata};
use sluice_core::{Policy, Reason};

/// Creates an upload; with a body, appends it at once.
pub(super) async fn handle(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    headers::require_tus(&req)?;
    let engine = &state.engine;
    let policy = caller.policy(&engine.policy);
    let concat = headers::single(&req, "Upload-Concat")?.map(Concat::parse).transpose()?;
    if let Some(Concat::Final(urls)) = concat {
        return create_final(&req, &caller, &state, &urls).await;
    }
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
    let metadata = metadata(&req, &policy)?;
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
    let kind = if concat == Some(Concat::Partial) { Kind::Partial } else { Kind::Whole };
    let sha256 = declared_sha256(&metadata)?;
    let new = NewUpload { protocol: Protocol::Tus, kind, length, metadata, id: None, sha256 };
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

/// The whole file's SHA-256 a client declares in the `sha256` metadata key (64 hex
/// digits), verified when the upload completes.
fn declared_sha256(metadata: &Metadata) -> Result<Option<String>> {
    let Some(value) = metadata.get("sha256") else { return Ok(None) };
    let text = std::str::from_utf8(value).unwrap_or_default();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::new(Reason::InvalidMetadata, "Upload-Metadata: sha256 must be 64 hexadecimal digits."));
    }
    Ok(Some(text.to_ascii_lowercase()))
}

/// `Upload-Metadata`, within the policy's size limit.
fn metadata(req: &HttpRequest, policy: &Policy) -> Result<Metadata> {
    let raw = headers::single(req, "Upload-Metadata")?.unwrap_or("").trim();
    if raw.len() as u64 > policy.max_metadata_size {
        return Err(Error::new(
            Reason::MetadataTooLarge,
            format!("Upload-Metadata is {} bytes; the limit is {}.", raw.len(), policy.max_metadata_size),
        ));
    }
    Ok(Metadata::parse(raw)?)
}

/// `Upload-Concat: final;URL URL…`: joins finished partial uploads, in order, into a
/// new upload that is complete when answered. It carries no bytes of its own, and its
/// length is the parts' sum (an `Upload-Length` is ignored, as tusd does).
async fn create_final(req: &HttpRequest, caller: &Caller, state: &AppState, urls: &[String]) -> Result<HttpResponse> {
    if headers::has_body(req)? {
        return Err(Error::new(
            Reason::FinalUploadImmutable,
            "A final upload is joined from its parts; it carries no bytes of its own.",
        ));
    }
    let engine = &state.engine;
    let metadata = metadata(req, &caller.policy(&engine.policy))?;
    let parts = urls.iter().map(|url| part_id(url)).collect::<Result<Vec<_>>>()?;
    // A declared digest is the joined file's: verified by reading it once after the join.
    let sha256 = declared_sha256(&metadata)?;
    let new = NewUpload { protocol: Protocol::Tus, kind: Kind::Whole, length: None, metadata, id: None, sha256 };
    let record = engine.concat(requester(req, caller), new, parts).await?;
    note_transfer(req, &record.id, 0);
    let location = req.url_for("tus_upload", [record.id.as_str()]).map_err(Error::internal)?.to_string();
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .insert_header(("Upload-Offset", record.offset))
        .finish())
}

/// The upload id in a partial upload's URL, absolute (`http://host/files/ID`) or
/// relative (`/files/ID`); anything else names no upload here (`404`).
fn part_id(url: &str) -> Result<crate::id::UploadId> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or("", |at| &rest[at..]));
    let id = path.strip_prefix("/files/").unwrap_or_default();
    crate::id::UploadId::parse(id)
        .ok_or_else(|| Error::new(Reason::UploadNotFound, format!("{url} is not an upload on this server.")))
}
