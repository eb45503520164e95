//! `POST /upload`: plain HTML form uploads (`multipart/form-data`), streamed.
//!
//! The form works without JavaScript (`<form method=post
//! enctype=multipart/form-data>`). Parts are read one at a time with
//! `actix-multipart`, whose parser buffer is bounded (64 KiB: a larger part
//! header is refused with 431). Each file part streams through the same
//! [`IncomingBody`] as a tus PATCH — counted, cut at `max_file_size`, sniffed
//! once its first 8 KiB are in — into a new upload in the same storage, with
//! the same metadata, so a form upload is afterwards indistinguishable from a
//! finished tus upload. Text fields are read up to `max_form_field_size`.
//!
//! A request is all or nothing: if anything is refused, every file it stored
//! is removed. The answer is JSON (`201`, the stored files with their sha256),
//! or, for a browser's form submission (`Accept: text/html`), a `303` back to
//! the page with `?uploaded=N` or `?error=CODE`.

use crate::auth::Caller;
use crate::engine::{AppendInput, Finish, NewUpload, Requester};
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::protocol::requester;
use crate::store::{Kind, Protocol};
use crate::AppState;
use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::error::PayloadError;
use actix_web::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;
use sluice_core::tus::Metadata;
use sluice_core::units::format_size;
use sluice_core::Reason;
use std::collections::BTreeMap;

/// Room for multipart framing (boundaries, part headers) on top of the data.
const FRAMING_ALLOWANCE: u64 = 1 << 20;

/// One stored file, as the JSON answer lists it.
#[derive(Debug, Serialize)]
pub(crate) struct StoredFile {
    /// The upload id (`/files/{id}` downloads it).
    pub id: String,
    /// The declared file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes stored.
    pub sha256: String,
    /// The type sniffed from the file's bytes.
    #[serde(rename = "type")]
    pub mime: String,
}

/// The JSON answer.
#[derive(Debug, Serialize, Default)]
pub(crate) struct Stored {
    /// Files stored, in form order.
    pub files: Vec<StoredFile>,
    /// Text fields, by name (a repeated name keeps every value).
    pub fields: BTreeMap<String, Vec<String>>,
}

/// Receives a form; see the module docs.
pub(crate) async fn handle(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let from_browser_form =
        req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    let mut created = Vec::new();
    let outcome = receive(&req, &caller, payload, &state, &mut created).await;
    if outcome.is_err() {
        for id in &created {
            match state.engine.terminate(requester(&req, &caller), id).await {
                Ok(()) => {}
                Err(e) if matches!(e.reason(), Reason::UploadGone | Reason::UploadNotFound) => {}
                Err(e) => tracing::error!(upload = %id, error = %e, "could not remove a refused form's file"),
            }
        }
    }
    match (outcome, from_browser_form) {
        (Ok(stored), false) => Ok(HttpResponse::Created().json(stored)),
        (Ok(stored), true) => Ok(see_other(&format!("/?uploaded={}", stored.files.len()))),
        (Err(e), true) => Ok(see_other(&format!("/?error={}", e.reason().code()))),
        (Err(e), false) => Err(e),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, location)).finish()
}

async fn receive(
    req: &HttpRequest,
    caller: &Caller,
    payload: web::Payload,
    state: &AppState,
    created: &mut Vec<UploadId>,
) -> Result<Stored> {
    let policy = &caller.policy(&state.engine.policy);
    let who = requester(req, caller);
    let media_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !media_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(Error::new(
            Reason::InvalidContentType,
            format!("Forms must be sent as multipart/form-data, not {media_type:?}."),
        ));
    }
    let most = u64::from(policy.max_form_files)
        .saturating_mul(policy.max_file_size)
        .saturating_add(u64::from(policy.max_form_fields).saturating_mul(policy.max_form_field_size))
        .saturating_add(FRAMING_ALLOWANCE);
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&d| d > most) {
        return Err(Error::new(
            Reason::RequestTooLarge,
            format!("This form is {}; at most {} can be sent at once.", format_size(declared), format_size(most)),
        ));
    }

    let mut stored = Stored::default();
    let mut field_count = 0u32;
    let mut multipart = Multipart::new(req.headers(), payload);
    while let Some(part) = multipart.next().await {
        let field = part.map_err(multipart_error)?;
        let file_name = field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned);
        match file_name {
            // A file input left empty sends an empty, nameless file part.
            Some(name) if name.is_empty() => drain(field).await?,
            Some(name) => {
                if stored.files.len() >= policy.max_form_files as usize {
                    return Err(Error::new(
                        Reason::TooManyFiles,
                        format!("A form may carry at most {} files.", policy.max_form_files),
                    ));
                }
                stored.files.push(store_file(state, who, field, name, created).await?);
            }
            None => {
                field_count += 1;
                if field_count > policy.max_form_fields {
                    return Err(Error::new(
                        Reason::TooManyFields,
                        format!("A form may carry at most {} text fields.", policy.max_form_fields),
                    ));
                }
                let name = field.name().unwrap_or_default().to_owned();
                let value = read_text(field, policy.max_form_field_size).await?;
                stored.fields.entry(name).or_default().push(value);
            }
        }
    }
    Ok(stored)
}

/// Streams one file part into a new upload.
async fn store_file(
    state: &AppState,
    who: Requester<'_>,
    field: Field,
    name: String,
    created: &mut Vec<UploadId>,
) -> Result<StoredFile> {
    let declared_type = field.content_type().map(|m| m.essence_str().to_owned()).unwrap_or_default();
    let metadata = Metadata::from_pairs([("filename", name.as_bytes()), ("filetype", declared_type.as_bytes())]);
    let engine = &state.engine;
    let new = NewUpload { protocol: Protocol::Form, kind: Kind::Whole, length: None, metadata, id: None, sha256: None };
    let record = engine.create(who, new).await?;
    created.push(record.id.clone());
    let input = AppendInput {
        offset: 0,
        content_length: None,
        checksum: None,
        declared_length: None,
        whole_body: false,
        finish: Finish::Now,
        digest: true,
        body: field,
    };
    let record = engine.append(who, &record.id, input).await.map_err(|e| {
        // A file part has no length of its own: running past the allowance means the file is too large.
        if e.reason() == Reason::FileTooLarge || e.reason() == Reason::ChunkTooLarge {
            let max = who.caller.policy(&engine.policy).max_file_size;
            Error::new(Reason::FileTooLarge, format!("{name} is larger than the limit of {}.", format_size(max)))
        } else {
            e
        }
    })?;
    Ok(StoredFile {
        id: record.id.to_string(),
        name,
        size: record.offset,
        sha256: record.sha256.clone().unwrap_or_default(),
        mime: record.file_type.clone().unwrap_or_default(),
    })
}

/// Reads a text field, refusing one longer than `max` bytes or not UTF-8.
pub(crate) async fn read_text(mut field: Field, max: u64) -> Result<String> {
    let mut value = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(multipart_error)?;
        if (value.len() + chunk.len()) as u64 > max {
            return Err(Error::new(
                Reason::FieldTooLarge,
                format!("A text field may hold at most {}.", format_size(max)),
            ));
        }
        value.extend_from_slice(&chunk);
    }
    String::from_utf8(value).map_err(|_| Error::new(Reason::InvalidMultipart, "A text field is not valid UTF-8."))
}

async fn drain(mut field: Field) -> Result<()> {
    while let Some(chunk) = field.next().await {
        if !chunk.map_err(multipart_error)?.is_empty() {
            return Err(Error::new(Reason::InvalidFilename, "A file part with data must have a file name."));
        }
    }
    Ok(())
}

/// Precise answers for what the multipart parser refuses.
pub(crate) fn multipart_error(e: MultipartError) -> Error {
    match e {
        MultipartError::Payload(PayloadError::Overflow) => Error::new(
            Reason::PartHeaderTooLarge,
            "A part's headers (or the text before the first boundary) exceed 64 KiB.",
        ),
        MultipartError::Payload(e) => Error::new(Reason::IncompleteBody, format!("The form's body failed: {e}.")),
        // The body arrived whole but its framing never closed.
        MultipartError::Incomplete => {
            Error::new(Reason::InvalidMultipart, "The form ended before its closing boundary.")
        }
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => {
            Error::new(Reason::InvalidContentType, "Forms must be sent as multipart/form-data.")
        }
        other => Error::new(Reason::InvalidMultipart, format!("The form is malformed: {other}.")),
    }
}
