//! What several tus handlers share: finding a live upload, writing a body to
//! it, and the headers that describe it.

use crate::auth::Caller;
use crate::body::{IncomingBody, SniffWindow, Stop};
use crate::error::{Error, Result};
use crate::hooks;
use crate::id::UploadId;
use crate::locks::UploadGuard;
use crate::observe::Transfer;
use crate::storage::{AppendMode, BodyStream, StorageError, UploadInfo};
use crate::AppState;
use actix_web::http::header::HttpDate;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponseBuilder};
use sluice_core::tus::Metadata;
use sluice_core::{sniff, Algorithm, Append, Reason, SNIFF_LEN};
use std::time::SystemTime;

/// Parses the `{id}` path segment; anything malformed is simply unknown.
pub fn parse_id(segment: &str) -> Result<UploadId> {
    UploadId::parse(segment).ok_or_else(|| Error::new(Reason::UploadNotFound, "No upload has this id."))
}

/// Becomes the one writer of an upload, taking over from an older request
/// (`423 upload_locked` if it does not let go in time; see [`crate::locks`]).
pub async fn lock(state: &AppState, id: &UploadId) -> Result<UploadGuard> {
    state.locks.acquire(id).await.map_err(|_| locked())
}

/// Stops a request writing to the upload, without becoming its writer (for HEAD).
pub async fn preempt(state: &AppState, id: &UploadId) -> Result<()> {
    state.locks.preempt(id).await.map_err(|_| locked())
}

fn locked() -> Error {
    Error::new(Reason::UploadLocked, "Another request is writing to this upload; try again shortly.")
}

/// When an incomplete upload expires: its last write plus `upload_expiry`.
pub fn expires_at(state: &AppState, info: &UploadInfo) -> SystemTime {
    info.modified_at + state.policy.upload_expiry
}

/// The upload, unless it is unknown or another caller's (404), gone (410) or expired (410).
pub async fn live_info(state: &AppState, id: &UploadId, caller: &Caller) -> Result<UploadInfo> {
    let info = state.storage.info(id).await?;
    if !caller.may_see(info.owner.as_deref()) {
        return Err(StorageError::NotFound.into());
    }
    if !info.is_complete() && expires_at(state, &info) <= SystemTime::now() {
        return Err(Error::new(Reason::UploadGone, "This upload expired before it was finished."));
    }
    Ok(info)
}

/// Adds `Upload-Expires` for an incomplete upload.
pub fn expiry_header(response: &mut HttpResponseBuilder, state: &AppState, info: &UploadInfo) {
    if !info.is_complete() {
        response.insert_header(("Upload-Expires", HttpDate::from(expires_at(state, info)).to_string()));
    }
}

/// One append request: where it says it starts, what it declares.
pub struct AppendRequest {
    /// `Upload-Offset` (0 for creation-with-upload).
    pub offset: u64,
    /// `Content-Length`, if declared.
    pub content_length: Option<u64>,
    /// `Upload-Checksum`, if sent.
    pub checksum: Option<(Algorithm, Vec<u8>)>,
}

/// Streams a request body into an upload the caller holds the lock of, and
/// returns the new offset. Refusals that the headers allow come before a
/// single byte is read; a stop mid-body keeps what the mode allows.
pub async fn append(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    info: &UploadInfo,
    request: AppendRequest,
    payload: web::Payload,
    guard: &UploadGuard,
) -> Result<u64> {
    let policy = &caller.policy(&state.policy);
    let at = Append {
        upload_offset: info.offset,
        request_offset: request.offset,
        chunk_len: request.content_length,
        upload_length: info.length,
    };
    let allowed = policy.check_append(at)?;
    let _permit = state.admission.admit(&crate::client::ClientId::of(&req))?;
    let sniff_needed = info.length.map_or(SNIFF_LEN, |len| SNIFF_LEN.min(usize::try_from(len).unwrap_or(SNIFF_LEN)));
    let sniff = match usize::try_from(info.offset) {
        Ok(offset) if offset < sniff_needed => Some(SniffWindow {
            seen: state.storage.read_head(&info.id, offset).await?,
            needed: sniff_needed,
            file_name: file_name(info),
            policy: policy.clone(),
        }),
        _ => None,
    };
    let mode = if request.checksum.is_some() { AppendMode::AllOrNothing } else { AppendMode::KeepPartial };
    let checksum = request.checksum.map(|(algorithm, digest)| (algorithm.hasher(), digest));
    let mut body =
        IncomingBody::new(payload, allowed, checksum, sniff, guard.cancellation(), state.settings.idle_timeout)
            .counting(state.metrics.received_bytes.clone());
    let stream: BodyStream<'_> = &mut body;
    state.metrics.in_flight.inc();
    let stored = state.storage.append(&info.id, info.offset, stream, mode).await;
    state.metrics.in_flight.dec();
    req.extensions_mut().insert(Transfer { upload: info.id.to_string(), bytes: body.received() });
    let offset = stored?;
    let id = &info.id;
    if let Some(stop) = body.stop() {
        if matches!(stop, Stop::TypeRefused(_)) {
            state.storage.terminate(id).await?;
            state.metrics.terminated.inc();
        }
        // For a body past its allowance, the same check with one byte more names the limit crossed.
        let too_long = || {
            policy.check_append(Append { chunk_len: Some(allowed + 1), ..at }).err().map_or_else(
                || Error::new(Reason::ChunkTooLarge, "The request body was longer than allowed."),
                Error::from,
            )
        };
        return Err(stop_error(state, id, offset, stop, too_long));
    }
    if info.length == Some(offset) {
        record_type(state, info).await?;
    }
    Ok(offset)
}

/// The answer for a body that stopped early, with `offset` the bytes kept;
/// `too_long` builds the refusal for a body past its allowance.
pub fn stop_error(
    state: &AppState,
    id: &UploadId,
    offset: u64,
    stop: &Stop,
    too_long: impl FnOnce() -> Error,
) -> Error {
    match stop {
        Stop::TypeRefused(refusal) => refusal.clone().into(),
        Stop::TooLong => too_long(),
        Stop::ChecksumMismatch => {
            Error::new(Reason::ChecksumMismatch, "The chunk's bytes do not match Upload-Checksum; it was discarded.")
        }
        Stop::Interrupted if state.shutdown.is_cancelled() => {
            tracing::info!(upload = %id, offset, "append ended by shutdown");
            Error::new(
                Reason::ServerBusy,
                format!("The server is restarting; the upload is at byte {offset}. Resume shortly."),
            )
            .with_header("retry-after", crate::admission::RETRY_AFTER_SECS)
        }
        Stop::Interrupted => {
            tracing::info!(upload = %id, offset, "append interrupted by a newer request");
            Error::new(Reason::UploadInterrupted, format!("A newer request took over; the upload is at byte {offset}."))
        }
        Stop::Idle => {
            tracing::info!(upload = %id, offset, "body idle too long");
            Error::new(
                Reason::IdleTimeout,
                format!("No data arrived for {:?}; the upload is at byte {offset}.", state.settings.idle_timeout),
            )
        }
        Stop::Client(why) => {
            tracing::info!(upload = %id, offset, error = %why, "body ended early");
            Error::new(Reason::IncompleteBody, format!("The body ended early ({why}); the upload is at byte {offset}."))
        }
    }
}

/// Records the sniffed type of a just-completed upload, and returns it.
pub async fn record_type(state: &AppState, info: &UploadInfo) -> Result<&'static str> {
    let head = state.storage.read_head(&info.id, SNIFF_LEN).await?;
    let kind = sniff::sniff(&head, file_name(info).as_deref());
    state.storage.set_file_type(&info.id, kind.mime).await?;
    state.metrics.completed.inc();
    let mut event = hooks::HookUpload::new(protocol_of(info), info.length, &info.metadata, info.owner.as_deref());
    event.id = Some(info.id.to_string());
    event.mime = Some(kind.mime.to_string());
    hooks::post_finish(state, event);
    tracing::info!(upload = %info.id, length = ?info.length, mime = kind.mime, "upload complete");
    Ok(kind.mime)
}

/// How an upload was sent, for hooks: form and Flow.js uploads say so in their metadata.
fn protocol_of(info: &UploadInfo) -> &'static str {
    match Metadata::parse(&info.metadata).ok().and_then(|m| m.get_str("sluice_protocol").map(str::to_owned)).as_deref()
    {
        Some("form") => "form",
        Some("flow") => "flow",
        _ => "tus",
    }
}

/// The declared file name from the stored metadata.
pub fn file_name(info: &UploadInfo) -> Option<String> {
    Metadata::parse(&info.metadata).ok().and_then(|m| m.file_name())
}
