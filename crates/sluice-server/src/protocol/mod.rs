//! Protocol front-ends: HTTP in, engine calls, rendering out. None of them touches
//! bytes or records directly.
//!
//! - [`tus`]: tus 1.0 at `/files/`;
//! - [`ietf`]: the IETF resumable-uploads draft at `/files/`, beside tus;
//! - [`form`]: plain HTML forms at `/upload`;
//! - [`flow`]: the Flow.js / Resumable.js chunk protocol at `/flow`.

pub(crate) mod flow;
pub(crate) mod form;
pub(crate) mod ietf;
pub(crate) mod tus;

use crate::auth::Caller;
use crate::engine::Requester;
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::observe::Transfer;
use crate::store::Protocol;
use actix_web::{HttpMessage, HttpRequest};
use sluice_core::Reason;

/// The protocol a request to `route` (its pattern) speaks, for metrics: one of the
/// front-ends' routes, and on `/files` the draft or tus by its headers.
pub(crate) fn spoken(req: &HttpRequest, route: &str) -> Option<Protocol> {
    match route {
        r if r.starts_with("/files") && ietf::is_draft(req.headers()) => Some(Protocol::Ietf),
        r if r.starts_with("/files") => Some(Protocol::Tus),
        "/upload" => Some(Protocol::Form),
        "/flow" => Some(Protocol::Flow),
        _ => None,
    }
}

/// The engine's view of who sends `req`.
pub(crate) fn requester<'a>(req: &HttpRequest, caller: &'a Caller) -> Requester<'a> {
    Requester { caller, client: crate::client::ClientId::of(req) }
}

/// Parses an `{id}` path segment; anything malformed is simply unknown.
pub(crate) fn parse_id(segment: &str) -> Result<UploadId> {
    UploadId::parse(segment).ok_or_else(|| Error::new(Reason::UploadNotFound, "No upload has this id."))
}

/// Notes the upload and the bytes a request moved, for its log line.
pub(crate) fn note_transfer(req: &HttpRequest, id: &UploadId, bytes: u64) {
    req.extensions_mut().insert(Transfer { upload: id.to_string(), bytes });
}
