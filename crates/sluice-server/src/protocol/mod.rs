//! Protocol front-ends: HTTP in, engine calls, rendering out. None of them touches
//! bytes or records directly.
//!
//! - [`tus`]: tus 1.0 at `/files/`;
//! - [`form`]: plain HTML forms at `/upload`;
//! - [`flow`]: the Flow.js / Resumable.js chunk protocol at `/flow`.

pub mod flow;
pub mod form;
pub mod tus;

use crate::auth::Caller;
use crate::engine::Requester;
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::observe::Transfer;
use actix_web::{HttpMessage, HttpRequest};
use sluice_core::Reason;

/// The engine's view of who sends `req`.
pub(crate) fn requester<'a>(req: &HttpRequest, caller: &'a Caller) -> Requester<'a> {
    Requester { caller, client: req.peer_addr().map(|a| a.ip()) }
}

/// Parses an `{id}` path segment; anything malformed is simply unknown.
pub(crate) fn parse_id(segment: &str) -> Result<UploadId> {
    UploadId::parse(segment).ok_or_else(|| Error::new(Reason::UploadNotFound, "No upload has this id."))
}

/// Notes the upload and the bytes a request moved, for its log line.
pub(crate) fn note_transfer(req: &HttpRequest, id: &UploadId, bytes: u64) {
    req.extensions_mut().insert(Transfer { upload: id.to_string(), bytes });
}
