//! `PATCH /files/{id}`: append content at the upload's offset, completing it on `?1`.

use super::reply::{self, Answer, Refusal};
use crate::auth::Caller;
use crate::engine::AppendInput;
use crate::error::Error;
use crate::protocol::tus::headers;
use crate::protocol::{note_transfer, parse_id, requester};
use crate::AppState;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use sluice_core::rufh::{field, InteropVersion};
use sluice_core::Reason;

/// Appends the content; everything the fields can refuse is refused unread.
pub(super) async fn handle(
    req: &HttpRequest,
    version: InteropVersion,
    caller: &Caller,
    payload: web::Payload,
    state: &AppState,
    path: &str,
) -> Answer {
    let id = parse_id(path)?;
    let engine = &state.engine;
    let policy = caller.policy(&engine.policy);
    let offset = reply::size(req, version, field::UPLOAD_OFFSET)?
        .ok_or_else(|| Error::new(Reason::InvalidHeader, "Upload-Offset is required to append."))?;
    let complete = reply::complete(req, version)?.or(version.default_complete()).ok_or_else(|| {
        Error::new(Reason::InvalidHeader, format!("{} (?0 or ?1) is required to append.", version.complete_field()))
    })?;
    if let Some(wanted) = version.append_content_type() {
        let media_type = headers::single(req, CONTENT_TYPE.as_str())?.map(|v| v.split(';').next().unwrap_or("").trim());
        if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(wanted)) {
            return Err(Refusal::from(Error::new(
                Reason::InvalidContentType,
                format!("Appended content must be sent as {wanted}, not {:?}.", media_type.unwrap_or("nothing")),
            ))
            .header("accept-patch", wanted));
        }
    }
    let content_length = headers::content_length(req)?;
    let mut declared_length = reply::size(req, version, field::UPLOAD_LENGTH)?;
    if complete {
        // A completing request ends the upload where its content ends.
        if let Some(content) = content_length {
            let end = offset.saturating_add(content);
            if declared_length.is_some_and(|declared| declared != end) {
                return Err(Error::new(
                    Reason::InconsistentLength,
                    format!(
                        "Upload-Length says {declared_length:?} bytes, but this request completes the upload at {end}."
                    ),
                )
                .into());
            }
            declared_length = Some(end);
        }
    }
    if let Some(length) = declared_length {
        policy.check_size(length)?;
    }

    let who = requester(req, caller);
    if let Some(declared) = declared_length {
        // A length that disagrees with the recorded one is the draft's inconsistent length
        // (a completed upload is refused as such first).
        let record = engine.info(who, &id, false).await.map_err(reply::unknown)?;
        if record.is_complete() {
            let (reason, kind) = version.completed_append(content_length.is_none_or(|n| n > 0));
            return Err(
                Refusal::from(Error::new(reason, "This upload is complete; it takes no more bytes.")).typed(kind)
            );
        }
        if let Some(known) = record.length.filter(|known| *known != declared) {
            return Err(Error::new(
                Reason::InconsistentLength,
                format!("The upload's length is {known}; this request says {declared}."),
            )
            .into());
        }
    }
    let input = AppendInput {
        offset,
        content_length,
        checksum: None,
        declared_length,
        whole_body: false,
        finish: reply::finish_when(version, complete),
        digest: false,
        body: payload,
    };
    let appended = engine.append(who, &id, input).await;
    note_transfer(req, &id, appended.as_ref().map_or(0, |r| r.offset.saturating_sub(offset)));
    let record = match appended {
        Ok(record) => record,
        Err(error) => return Err(refusal(req, version, state, caller, &id, offset, content_length, error).await),
    };
    let mut response = HttpResponse::NoContent();
    response.insert_header((field::UPLOAD_OFFSET, record.offset));
    reply::complete_header(&mut response, version, record.is_complete());
    Ok(response.finish())
}

/// How the draft words an engine refusal of an append: a mismatching offset carries the
/// upload's offset; content past the length is an inconsistent length; an append to a
/// completed upload is refused as the version says; a size limit carries `Upload-Limit`.
#[allow(clippy::too_many_arguments)]
async fn refusal(
    req: &HttpRequest,
    version: InteropVersion,
    state: &AppState,
    caller: &Caller,
    id: &crate::id::UploadId,
    provided: u64,
    content_length: Option<u64>,
    error: Error,
) -> Refusal {
    let engine = &state.engine;
    let policy = caller.policy(&engine.policy);
    match error.reason() {
        Reason::OffsetMismatch => {
            let Ok(record) = engine.info(requester(req, caller), id, false).await else { return error.into() };
            let (name, value) = version.render_complete(false);
            Refusal::from(error)
                .offsets(record.offset, provided)
                .header("upload-offset", record.offset)
                .header(if name == field::UPLOAD_COMPLETE { "upload-complete" } else { "upload-incomplete" }, value)
        }
        Reason::UploadCompleted => {
            let (reason, kind) = version.completed_append(content_length.is_none_or(|n| n > 0));
            Refusal::from(Error::new(reason, error.rejection().message.clone())).typed(kind)
        }
        Reason::ExceedsUploadLength => Error::new(Reason::InconsistentLength, error.rejection().message.clone()).into(),
        Reason::ChunkTooLarge | Reason::FileTooLarge => match reply::limit(version, &policy, engine, None) {
            Some(limit) => Refusal::from(error).header("upload-limit", limit),
            None => error.into(),
        },
        _ => reply::unknown(error).into(),
    }
}
