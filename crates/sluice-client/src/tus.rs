//! tus 1.0 on the wire: feature detection with `OPTIONS`, creation (plain,
//! partial, final), `HEAD`, `PATCH`, `DELETE`. This layer builds requests and
//! reads answers; what to do about a failure is decided in [`crate::upload`].

use crate::error::{Error, Result};
use crate::http::{Http, Reply};
use crate::source::LocalFile;
use reqwest::Method;
use sluice_core::tus::{format_checksum, parse_length, Metadata, OFFSET_OCTET_STREAM, TUS_VERSION};
use sluice_core::Algorithm;
use url::Url;

pub use sluice_core::tus::Capabilities;

/// The capabilities a server announced; with no `Tus-Extension` at all, creation (the one
/// extension every tus client relies on) is assumed.
fn assume_creation(mut caps: Capabilities) -> Capabilities {
    if caps.extensions.is_empty() {
        caps.extensions.push("creation".into());
    }
    caps
}

/// Where an upload stands, from `HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Bytes the server holds.
    pub offset: u64,
    /// The declared length, when known.
    pub length: Option<u64>,
}

/// How a creation relates to concatenation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole file.
    Whole,
    /// `Upload-Concat: partial`: one part of a file sent in parallel parts.
    Partial,
}

/// `OPTIONS endpoint`.
pub async fn discover(http: &Http, endpoint: &str) -> Result<Capabilities> {
    let reply = match http.send(http.tus(Method::OPTIONS, endpoint), endpoint).await {
        Ok(reply) => reply,
        // Some servers answer OPTIONS with an error yet speak core tus.
        Err(e) if e.status.is_some() => return Ok(assume_creation(Capabilities::from_headers(None, None, None))),
        Err(e) => return Err(e),
    };
    if let Some(versions) = reply.header("Tus-Version") {
        if !versions.split(',').any(|v| v.trim() == TUS_VERSION) {
            return Err(Error::unexpected(format!(
                "The server at {endpoint} does not speak tus {TUS_VERSION} (it lists {versions})."
            )));
        }
    }
    Ok(assume_creation(Capabilities::from_headers(
        reply.header("Tus-Extension"),
        reply.header("Tus-Checksum-Algorithm"),
        reply.header("Tus-Max-Size"),
    )))
}

/// The metadata sent with a file: its name (tus-js-client's `filename` key).
pub fn metadata(file: &LocalFile) -> Metadata {
    Metadata::from_pairs(file.name.iter().map(|n| ("filename", n.as_bytes().to_vec())))
}

/// `POST endpoint` with `Upload-Length`; returns the absolute upload URL.
pub async fn create(http: &Http, endpoint: &Url, length: u64, metadata: &Metadata, kind: Kind) -> Result<String> {
    let mut req = http.tus(Method::POST, endpoint.as_str()).header("Upload-Length", length.to_string());
    let encoded = metadata.encode();
    if !encoded.is_empty() {
        req = req.header("Upload-Metadata", encoded);
    }
    if kind == Kind::Partial {
        req = req.header("Upload-Concat", "partial");
    }
    let reply = http.send(req, endpoint.as_str()).await?;
    location(&reply, endpoint)
}

/// `POST endpoint` with `Upload-Concat: final;URL URL...`: joins finished partial uploads.
pub async fn create_final(http: &Http, endpoint: &Url, parts: &[String], metadata: &Metadata) -> Result<String> {
    let mut req =
        http.tus(Method::POST, endpoint.as_str()).header("Upload-Concat", format!("final;{}", parts.join(" ")));
    let encoded = metadata.encode();
    if !encoded.is_empty() {
        req = req.header("Upload-Metadata", encoded);
    }
    let reply = http.send(req, endpoint.as_str()).await?;
    location(&reply, endpoint)
}

/// `HEAD url`.
pub async fn head(http: &Http, url: &str) -> Result<Status> {
    let reply = http.send(http.tus(Method::HEAD, url).header("Cache-Control", "no-store"), url).await?;
    let length = match reply.header("Upload-Length") {
        Some(v) => Some(parse_length("Upload-Length", v)?),
        None => None,
    };
    match reply.header("Upload-Offset") {
        Some(_) => Ok(Status { offset: offset_of(&reply)?, length }),
        // A final upload may omit its offset until concatenated; once it has a length it is complete.
        None if reply.header("Upload-Concat").is_some_and(|c| c.starts_with("final")) => {
            Ok(Status { offset: length.unwrap_or(0), length })
        }
        None => Err(Error::unexpected(format!("HEAD {url} answered without Upload-Offset."))),
    }
}

/// `PATCH url` with the bytes `offset..offset + len` of the upload, which are the file's
/// bytes `file_start + offset..`; returns the new offset.
pub async fn patch(
    http: &Http,
    url: &str,
    offset: u64,
    body: reqwest::Body,
    checksum: Option<(Algorithm, &[u8])>,
) -> Result<u64> {
    let mut req = http
        .tus(Method::PATCH, url)
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", OFFSET_OCTET_STREAM)
        .body(body);
    if let Some((algorithm, digest)) = checksum {
        req = req.header("Upload-Checksum", format_checksum(algorithm, digest));
    }
    let reply = http.send(req, url).await?;
    offset_of(&reply)
}

/// `DELETE url` (termination).
pub async fn terminate(http: &Http, url: &str) -> Result<()> {
    http.send(http.tus(Method::DELETE, url), url).await.map(drop)
}

fn offset_of(reply: &Reply) -> Result<u64> {
    let value = reply.header("Upload-Offset").ok_or_else(|| Error::unexpected("The server sent no Upload-Offset."))?;
    Ok(parse_length("Upload-Offset", value)?)
}

fn location(reply: &Reply, endpoint: &Url) -> Result<String> {
    let loc = reply.header("Location").ok_or_else(|| {
        Error::unexpected(format!("The server answered {} to a creation without Location.", reply.status))
    })?;
    endpoint
        .join(loc)
        .map(String::from)
        .map_err(|_| Error::unexpected(format!("The upload's Location {loc:?} is not a URL.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        let c = Capabilities::from_headers(
            Some("creation, Checksum,termination,concatenation"),
            Some("md5,sha256,crc32c"),
            Some("100"),
        );
        assert!(c.has("checksum") && c.has("termination") && c.has("concatenation") && !c.has("expiration"));
        assert_eq!(c.checksum_algorithms, [Algorithm::Sha256, Algorithm::Crc32c]);
        assert_eq!(c.max_size, Some(100));
        let c = Capabilities::from_headers(Some("creation"), Some("sha1"), None);
        assert!(c.checksum_algorithms.is_empty(), "no checksum extension, no checksums");
        let c = assume_creation(Capabilities::from_headers(None, None, Some("x")));
        assert_eq!((c.extensions.as_slice(), c.max_size), (&["creation".to_string()][..], None));
    }
}
