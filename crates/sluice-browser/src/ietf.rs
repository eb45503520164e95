//! The IETF resumable-uploads draft's requests, at its latest interop version: create
//! first (`Upload-Complete: ?0`, no content), then append with `PATCH` as
//! `application/partial-upload`, the last append saying `Upload-Complete: ?1`.
//!
//! A browser cannot read the `104` interim response that carries the upload URL of a
//! creation with content, so every upload is created empty and appended after.

use crate::http::{self, Failure, Reply, Req};
use sluice_core::repr_digest;
use sluice_core::rufh::{field, InteropVersion, PARTIAL_UPLOAD};
use sluice_core::tus::Metadata;
use web_sys::{AbortSignal, Blob};

/// The interop version this client speaks.
pub const VERSION: InteropVersion = InteropVersion::LATEST;

fn base_headers() -> Vec<(&'static str, String)> {
    vec![(field::INTEROP_VERSION, VERSION.number().to_string())]
}

fn complete(headers: &mut Vec<(&'static str, String)>, done: bool) {
    let (name, value) = VERSION.render_complete(done);
    headers.push((name, value.to_string()));
}

/// `POST endpoint`: creates an empty upload of `length` bytes (complete at once when it is
/// empty), declaring the file's SHA-256 as `Repr-Digest` when known.
pub async fn create(
    endpoint: &str,
    length: u64,
    metadata: &Metadata,
    sha256: Option<&[u8; 32]>,
) -> Result<Reply, Failure> {
    let mut headers = base_headers();
    complete(&mut headers, length == 0);
    headers.push((field::UPLOAD_LENGTH, length.to_string()));
    let encoded = metadata.encode();
    if !encoded.is_empty() {
        headers.push(("Upload-Metadata", encoded));
    }
    if let Some(digest) = sha256 {
        headers.push((repr_digest::FIELD, repr_digest::format_sha256(digest)));
    }
    http::send(Req { method: "POST", url: endpoint, headers, body: None, no_store: false }, None).await
}

/// `HEAD url`: the offset, and whether the upload is complete.
pub async fn head(url: &str, signal: Option<&AbortSignal>) -> Result<Reply, Failure> {
    http::send(Req { method: "HEAD", url, headers: base_headers(), body: None, no_store: true }, signal).await
}

/// Starts `PATCH url` with `chunk` at `offset`; `last` completes the upload.
pub fn patch<'a>(
    url: &str,
    offset: u64,
    chunk: Blob,
    last: bool,
    signal: Option<&'a AbortSignal>,
) -> Result<http::Pending<'a>, Failure> {
    let mut headers = base_headers();
    headers.push((field::UPLOAD_OFFSET, offset.to_string()));
    complete(&mut headers, last);
    headers.push(("Content-Type", PARTIAL_UPLOAD.into()));
    http::start(Req { method: "PATCH", url, headers, body: Some(chunk), no_store: false }, signal)
}

/// `DELETE url` (cancellation).
pub async fn cancel(url: &str) -> Result<Reply, Failure> {
    http::send(Req { method: "DELETE", url, headers: base_headers(), body: None, no_store: false }, None).await
}

/// Whether a reply says the upload is complete (`None` when it does not say).
pub fn is_complete(reply: &Reply) -> Option<bool> {
    let name = VERSION.complete_field();
    VERSION.read_complete(reply.header(name).as_deref()).ok().flatten()
}
