//! Reading tus request headers strictly: one value each, well-formed.

use crate::error::{Error, Result};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use actix_web::HttpRequest;
use sluice_core::tus::{self, OFFSET_OCTET_STREAM, TUS_VERSION};
use sluice_core::{Algorithm, Reason};

/// The single value of a header; a repeated or non-text header is refused.
pub(crate) fn single<'r>(req: &'r HttpRequest, name: &str) -> Result<Option<&'r str>> {
    let mut values = req.headers().get_all(name);
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Error::new(Reason::InvalidHeader, format!("{name} must appear only once.")));
    }
    let text =
        first.to_str().map_err(|_| Error::new(Reason::InvalidHeader, format!("{name} must be visible ASCII text.")))?;
    Ok(Some(text))
}

/// Refuses requests that do not speak tus 1.0.0 (`412` with `Tus-Version`).
pub(crate) fn require_tus(req: &HttpRequest) -> Result<()> {
    match single(req, "Tus-Resumable")? {
        Some(TUS_VERSION) => Ok(()),
        other => Err(Error::new(
            Reason::UnsupportedVersion,
            format!("This server speaks tus {TUS_VERSION}; the request said {:?}.", other.unwrap_or("nothing")),
        )
        .with_header("tus-version", TUS_VERSION)),
    }
}

/// An optional length-like header (`Upload-Length`, `Content-Length`, ...).
pub(crate) fn length(req: &HttpRequest, name: &str) -> Result<Option<u64>> {
    single(req, name)?.map(|v| tus::parse_length(name, v).map_err(Error::from)).transpose()
}

/// A required length-like header.
pub(crate) fn required_length(req: &HttpRequest, name: &str) -> Result<u64> {
    length(req, name)?.ok_or_else(|| Error::new(Reason::InvalidHeader, format!("{name} is required.")))
}

/// The declared body length; `None` for a chunked body.
pub(crate) fn content_length(req: &HttpRequest) -> Result<Option<u64>> {
    length(req, CONTENT_LENGTH.as_str())
}

/// Whether the request carries a body at all.
pub(crate) fn has_body(req: &HttpRequest) -> Result<bool> {
    Ok(content_length(req)?.is_some_and(|n| n > 0) || req.headers().contains_key(TRANSFER_ENCODING))
}

/// Refuses a body that is not `application/offset+octet-stream` (`415`).
pub(crate) fn require_offset_octet_stream(req: &HttpRequest) -> Result<()> {
    let media_type = single(req, CONTENT_TYPE.as_str())?.map(|v| v.split(';').next().unwrap_or("").trim());
    if media_type.is_some_and(|m| m.eq_ignore_ascii_case(OFFSET_OCTET_STREAM)) {
        return Ok(());
    }
    Err(Error::new(
        Reason::InvalidContentType,
        format!("Upload data must be sent as {OFFSET_OCTET_STREAM}, not {:?}.", media_type.unwrap_or("nothing")),
    ))
}

/// The `Upload-Checksum` header, parsed, if sent.
pub(crate) fn checksum(req: &HttpRequest) -> Result<Option<(Algorithm, Vec<u8>)>> {
    Ok(single(req, "Upload-Checksum")?.map(tus::parse_checksum).transpose()?)
}
