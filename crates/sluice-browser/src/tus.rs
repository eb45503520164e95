//! The tus 1.0 requests, and feature detection with `OPTIONS`.
//!
//! This layer only builds requests and reads answers; what to do about a
//! failure (retry, re-sync, stop) is decided in [`crate::upload`].

use crate::error::{code, Error, Result};
use crate::http::{self, Failure, Reply, Req};
use sluice_core::tus::{parse_length, Concat, Metadata, OFFSET_OCTET_STREAM, TUS_VERSION};
use web_sys::{AbortSignal, Blob};

pub use sluice_core::tus::Capabilities;

/// Asks the endpoint what it supports.
pub async fn discover(endpoint: &str) -> Result<Capabilities> {
    let req = Req {
        method: "OPTIONS",
        url: endpoint,
        headers: vec![("Tus-Resumable", TUS_VERSION.into())],
        body: None,
        no_store: false,
    };
    let reply = http::send(req, None).await.map_err(|f| f.into_error(endpoint))?;
    if !reply.ok() {
        // Some servers answer OPTIONS with an error yet speak core tus: assume creation only.
        return Ok(Capabilities::from_headers(Some("creation"), None, None));
    }
    let version = reply.header("Tus-Version");
    if version.as_deref().is_some_and(|v| !v.split(',').any(|x| x.trim() == TUS_VERSION)) {
        return Err(Error::new(
            code::UNEXPECTED_RESPONSE,
            format!(
                "The server at {endpoint} does not speak tus {TUS_VERSION} (it lists {}).",
                version.unwrap_or_default()
            ),
        ));
    }
    let mut caps = Capabilities::from_headers(
        reply.header("Tus-Extension").as_deref(),
        reply.header("Tus-Checksum-Algorithm").as_deref(),
        reply.header("Tus-Max-Size").as_deref(),
    );
    if caps.extensions.is_empty() {
        // Hidden by CORS or not sent: creation is the one extension every tus
        // client relies on, so try it.
        caps.extensions.push("creation".into());
    }
    Ok(caps)
}

fn base_headers() -> Vec<(&'static str, String)> {
    vec![("Tus-Resumable", TUS_VERSION.to_string())]
}

/// `POST endpoint` (creation, of a partial upload with `concat`): returns the reply; the
/// caller reads `Location`.
pub async fn create(
    endpoint: &str,
    length: u64,
    metadata: &Metadata,
    concat: Option<&Concat>,
) -> Result<Reply, Failure> {
    let mut headers = base_headers();
    headers.push(("Upload-Length", length.to_string()));
    if let Some(concat) = concat {
        headers.push(("Upload-Concat", concat.encode()));
    }
    let encoded = metadata.encode();
    if !encoded.is_empty() {
        headers.push(("Upload-Metadata", encoded));
    }
    http::send(Req { method: "POST", url: endpoint, headers, body: None, no_store: false }, None).await
}

/// `POST endpoint` with `Upload-Concat: final;…`: joins finished partial uploads, in order,
/// into the file.
pub async fn create_final(endpoint: &str, parts: &[String], metadata: &Metadata) -> Result<Reply, Failure> {
    let mut headers = base_headers();
    headers.push(("Upload-Concat", Concat::Final(parts.to_vec()).encode()));
    let encoded = metadata.encode();
    if !encoded.is_empty() {
        headers.push(("Upload-Metadata", encoded));
    }
    http::send(Req { method: "POST", url: endpoint, headers, body: None, no_store: false }, None).await
}

/// `HEAD url`: the upload's offset and length.
pub async fn head(url: &str, signal: Option<&AbortSignal>) -> Result<Reply, Failure> {
    http::send(Req { method: "HEAD", url, headers: base_headers(), body: None, no_store: true }, signal).await
}

/// Starts `PATCH url` with one chunk, sent from the blob slice; await the
/// returned handle for the answer.
pub fn patch<'a>(
    url: &str,
    offset: u64,
    chunk: Blob,
    checksum: Option<String>,
    signal: Option<&'a AbortSignal>,
) -> Result<http::Pending<'a>, Failure> {
    let mut headers = base_headers();
    headers.push(("Upload-Offset", offset.to_string()));
    headers.push(("Content-Type", OFFSET_OCTET_STREAM.into()));
    if let Some(c) = checksum {
        headers.push(("Upload-Checksum", c));
    }
    http::start(Req { method: "PATCH", url, headers, body: Some(chunk), no_store: false }, signal)
}

/// `DELETE url` (termination).
pub async fn terminate(url: &str) -> Result<Reply, Failure> {
    http::send(Req { method: "DELETE", url, headers: base_headers(), body: None, no_store: false }, None).await
}

/// Reads `Upload-Offset` from a reply.
pub fn offset_of(reply: &Reply) -> Result<u64> {
    let value = reply.header("Upload-Offset").ok_or_else(|| {
        Error::new(
            code::UNEXPECTED_RESPONSE,
            "The server did not send Upload-Offset (if it is cross-origin, it must expose the header).",
        )
    })?;
    parse_length("Upload-Offset", &value).map_err(Error::from)
}

/// Resolves a `Location` header against the endpoint.
pub fn location(reply: &Reply, endpoint: &str) -> Result<String> {
    let loc = reply.header("Location").ok_or_else(|| {
        Error::new(
            code::UNEXPECTED_RESPONSE,
            "The server created the upload but sent no Location (if it is cross-origin, it must expose the header).",
        )
    })?;
    web_sys::Url::new_with_base(&loc, endpoint)
        .map(|u| u.href())
        .map_err(|_| Error::new(code::UNEXPECTED_RESPONSE, format!("The upload's Location {loc:?} is not a URL.")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Algorithm;

    #[test]
    fn capabilities() {
        let c =
            Capabilities::from_headers(Some("creation, Checksum,termination"), Some("md5,sha256,crc32c"), Some("100"));
        assert!(c.has("checksum") && c.has("termination") && !c.has("expiration"));
        assert_eq!(c.checksum_algorithms, [Algorithm::Sha256, Algorithm::Crc32c]);
        assert_eq!(c.max_size, Some(100));
        let c = Capabilities::from_headers(Some("creation"), Some("sha1"), None);
        assert!(c.checksum_algorithms.is_empty(), "no checksum extension, no checksums");
        assert_eq!(Capabilities::from_headers(None, None, Some("x")).max_size, None);
    }
}
