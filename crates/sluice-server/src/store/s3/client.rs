//! Signed S3 requests: `rusty-s3` signs each request (a presigned URL, no I/O of its
//! own) and `awc`, the HTTP client already in the tree, sends it.
//!
//! Bodies are streamed from spool files through fixed-size reads, responses are
//! streamed back, so no request holds a part in memory. Every request can be sent
//! twice (bodies come from files), and a request that fails to send is retried once
//! on a fresh connection: a pooled connection the object store closed is not an outage.
//!
//! Failures map to [`StoreError`]: a connection failure, a timeout or a `5xx`/`429`
//! answer is [`StoreError::Unavailable`] (the engine answers `503` + `Retry-After`).

use crate::store::{Result, StoreError};
use awc::http::{Method, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject, HeadBucket,
    HeadObject, ListObjectsV2, ListParts, PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// How long a signed URL stays valid (it is checked when the request starts).
const SIGNED_FOR: Duration = Duration::from_secs(3600);
/// Longest any one request may take (a part at a slow link).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(900);
/// Longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest XML answer read (a page of 1,000 parts is about 200 KiB).
const XML_LIMIT: usize = 4 << 20;
/// Reads from spool files, sent as they are read.
const READ_CHUNK: usize = 128 * 1024;

thread_local! {
    /// awc clients are per thread (each actix worker keeps its own connection pool).
    static HTTP: awc::Client = awc::Client::builder()
        .connector(awc::Connector::new().timeout(CONNECT_TIMEOUT))
        .timeout(REQUEST_TIMEOUT)
        .finish();
}

/// Where the bucket is and who we are.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Bucket name.
    pub bucket: String,
    /// `http(s)://host[:port]`; `None` means AWS (`https://s3.REGION.amazonaws.com`).
    pub url: Option<String>,
    /// Signing region.
    pub region: String,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`) instead of virtual-host style.
    pub path_style: bool,
    /// Access key, secret and optional session token.
    pub credentials: Option<(String, String, Option<String>)>,
}

/// One bucket's S3 API.
pub(super) struct Client {
    bucket: Bucket,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("bucket", &self.bucket.base_url().as_str()).finish_non_exhaustive()
    }
}

/// A request body.
pub(super) enum Body {
    /// Nothing.
    Empty,
    /// Small bytes in memory (XML, a state object).
    Bytes(Bytes),
    /// A byte range of a spool file, read as it is sent.
    File(Arc<File>, Range<u64>),
}

/// An object's size and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectInfo {
    /// Its length in bytes.
    pub size: u64,
    /// Its ETag as the store gives it (quotes included).
    pub etag: String,
}

/// A part of a multipart upload, as `ListParts` reports it.
#[derive(Debug, Clone)]
pub(super) struct Part {
    /// Its number (1-based).
    pub number: u16,
    /// Its ETag.
    pub etag: String,
    /// Its length.
    pub size: u64,
}

impl Client {
    /// A client for `endpoint`'s bucket.
    pub(super) fn new(endpoint: &Endpoint) -> std::result::Result<Client, String> {
        let base = match &endpoint.url {
            Some(url) => url.clone(),
            None => format!("https://s3.{}.amazonaws.com", endpoint.region),
        };
        let base: Url = base.parse().map_err(|e| format!("--s3-endpoint {base}: {e}"))?;
        let style = if endpoint.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(base, style, endpoint.bucket.clone(), endpoint.region.clone())
            .map_err(|e| format!("bucket {}: {e}", endpoint.bucket))?;
        let credentials = endpoint.credentials.clone().map(|(key, secret, token)| match token {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        });
        Ok(Client { bucket, credentials })
    }

    fn creds(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Whether the bucket answers (and our credentials open it).
    pub(super) async fn head_bucket(&self) -> Result<()> {
        let url = HeadBucket::new(&self.bucket, self.creds()).sign(SIGNED_FOR);
        let reply = send(Method::HEAD, url, &[], Body::Empty).await?;
        expect_ok(reply, "HeadBucket").await.map(drop)
    }

    /// An object's size and ETag; `None` if there is no such object.
    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let url = HeadObject::new(&self.bucket, self.creds(), key).sign(SIGNED_FOR);
        let reply = send(Method::HEAD, url, &[], Body::Empty).await?;
        if reply.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let reply = expect_ok(reply, "HeadObject").await?;
        let size = header(&reply, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let etag = header(&reply, "etag").unwrap_or_default();
        Ok(Some(ObjectInfo { size, etag }))
    }

    /// The bytes of `key` in `range` (all of it when `None`), streamed; `None` if there
    /// is no such object.
    pub(super) async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<impl Stream<Item = io::Result<Bytes>> + 'static>> {
        let url = GetObject::new(&self.bucket, self.creds(), key).sign(SIGNED_FOR);
        let range_header = range.map(|r| format!("bytes={}-{}", r.start, r.end.saturating_sub(1)));
        let headers: Vec<(&str, &str)> = range_header.as_deref().map(|r| ("range", r)).into_iter().collect();
        let reply = send(Method::GET, url, &headers, Body::Empty).await?;
        if reply.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let reply = expect_ok(reply, "GetObject").await?;
        Ok(Some(reply.map(|chunk| chunk.map_err(|e| io::Error::other(format!("object store: {e}"))))))
    }

    /// A small object, whole; `None` if there is none.
    pub(super) async fn get_small(&self, key: &str) -> Result<Option<Bytes>> {
        let url = GetObject::new(&self.bucket, self.creds(), key).sign(SIGNED_FOR);
        let mut reply = send(Method::GET, url, &[], Body::Empty).await?;
        if reply.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status().is_success() {
            return Err(status_error(reply, "GetObject").await);
        }
        Ok(Some(reply.body().limit(XML_LIMIT).await.map_err(unavailable)?))
    }

    /// Stores an object; returns its ETag.
    pub(super) async fn put(&self, key: &str, body: Body) -> Result<String> {
        let url = PutObject::new(&self.bucket, self.creds(), key).sign(SIGNED_FOR);
        let reply = expect_ok(send(Method::PUT, url, &[], body).await?, "PutObject").await?;
        Ok(header(&reply, "etag").unwrap_or_default())
    }

    /// Deletes an object (no error if there is none).
    pub(super) async fn delete(&self, key: &str) -> Result<()> {
        let url = DeleteObject::new(&self.bucket, self.creds(), key).sign(SIGNED_FOR);
        let reply = send(Method::DELETE, url, &[], Body::Empty).await?;
        if reply.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_ok(reply, "DeleteObject").await.map(drop)
    }

    /// Every key that starts with `prefix`, with its size.
    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.creds());
            action.with_prefix(prefix);
            if let Some(token) = &token {
                action.with_continuation_token(token.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let text = xml(send(Method::GET, url, &[], Body::Empty).await?, "ListObjectsV2").await?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| protocol("ListObjectsV2", e))?;
            for object in page.contents {
                let key = percent_encoding::percent_decode_str(&object.key).decode_utf8_lossy().into_owned();
                keys.push((key, object.size));
            }
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Starts a multipart upload of `key`; returns its upload id.
    pub(super) async fn create_multipart(&self, key: &str) -> Result<String> {
        let url = CreateMultipartUpload::new(&self.bucket, self.creds(), key).sign(SIGNED_FOR);
        let text = xml(send(Method::POST, url, &[], Body::Empty).await?, "CreateMultipartUpload").await?;
        let created = CreateMultipartUpload::parse_response(&text).map_err(|e| protocol("CreateMultipartUpload", e))?;
        Ok(created.upload_id().to_string())
    }

    /// Uploads part `number` of `key`; returns its ETag. `None` when the multipart
    /// upload is gone (completed or aborted).
    pub(super) async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: Body,
    ) -> Result<Option<String>> {
        let url = UploadPart::new(&self.bucket, self.creds(), key, number, upload_id).sign(SIGNED_FOR);
        let reply = send(Method::PUT, url, &[], body).await?;
        if reply.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let reply = expect_ok(reply, "UploadPart").await?;
        Ok(Some(header(&reply, "etag").unwrap_or_default()))
    }

    /// Copies `range` of the object `source` into part `number` of `key`, on the store's
    /// side (`UploadPartCopy`); returns the part's ETag.
    pub(super) async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        source: &str,
        range: Range<u64>,
    ) -> Result<String> {
        let copy_source = format!("/{}/{}", self.bucket.name(), encode_key(source));
        let copy_range = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        let mut action = UploadPart::new(&self.bucket, self.creds(), key, number, upload_id);
        // Signed, as S3 wants every x-amz-* header of a presigned request to be.
        action.headers_mut().insert("x-amz-copy-source", copy_source.clone());
        action.headers_mut().insert("x-amz-copy-source-range", copy_range.clone());
        let url = action.sign(SIGNED_FOR);
        let headers = [("x-amz-copy-source", copy_source.as_str()), ("x-amz-copy-source-range", copy_range.as_str())];
        let text = xml(send(Method::PUT, url, &headers, Body::Empty).await?, "UploadPartCopy").await?;
        // <CopyPartResult><ETag>"…"</ETag>…</CopyPartResult>; an error can come with a 200 too.
        element(&text, "ETag")
            .map(|etag| etag.replace("&quot;", "\"").replace("&#34;", "\""))
            .ok_or_else(|| StoreError::Io(io::Error::other(format!("UploadPartCopy answered without an ETag: {text}"))))
    }

    /// The parts uploaded so far; `None` when the multipart upload is gone.
    pub(super) async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Option<Vec<Part>>> {
        let mut parts = Vec::new();
        let mut marker: Option<u16> = None;
        loop {
            let mut action = ListParts::new(&self.bucket, self.creds(), key, upload_id);
            if let Some(marker) = marker {
                action.set_part_number_marker(marker);
            }
            let url = action.sign(SIGNED_FOR);
            let reply = send(Method::GET, url, &[], Body::Empty).await?;
            if reply.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            // Some stores name the root `ListPartsResponse` instead of AWS's `ListPartsResult`.
            let text = xml(reply, "ListParts").await?.replace("ListPartsResponse", "ListPartsResult");
            let page = ListParts::parse_response(&text).map_err(|e| protocol("ListParts", e))?;
            let full_page = page.parts.len() >= usize::from(page.max_parts.max(1));
            parts.extend(page.parts.into_iter().map(|p| Part { number: p.number, etag: p.etag, size: p.size }));
            match page.next_part_number_marker {
                Some(next) if full_page && marker != Some(next) => marker = Some(next),
                _ => return Ok(Some(parts)),
            }
        }
    }

    /// Completes a multipart upload from these part ETags (parts 1, 2, … in order).
    pub(super) async fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let action =
            CompleteMultipartUpload::new(&self.bucket, self.creds(), key, upload_id, etags.iter().map(String::as_str));
        let url = action.sign(SIGNED_FOR);
        let body = Bytes::from(action.body());
        let text = xml(send(Method::POST, url, &[], Body::Bytes(body)).await?, "CompleteMultipartUpload").await?;
        // S3 may answer 200 and put an error in the body.
        if text.contains("<Error>") {
            return Err(StoreError::Io(io::Error::other(format!("CompleteMultipartUpload: {text}"))));
        }
        Ok(())
    }

    /// Aborts a multipart upload, dropping its parts (no error if it is gone already).
    pub(super) async fn abort(&self, key: &str, upload_id: &str) -> Result<()> {
        let url = AbortMultipartUpload::new(&self.bucket, self.creds(), key, upload_id).sign(SIGNED_FOR);
        let reply = send(Method::DELETE, url, &[], Body::Empty).await?;
        if reply.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_ok(reply, "AbortMultipartUpload").await.map(drop)
    }
}

type Reply = awc::ClientResponse;

/// Sends a request, once more on a fresh connection if the first attempt fails to send.
async fn send(method: Method, url: Url, headers: &[(&str, &str)], body: Body) -> Result<Reply> {
    let mut last = None;
    for _ in 0..2 {
        let mut request = HTTP.with(|http| http.request(method.clone(), url.as_str()));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let sent = match &body {
            Body::Empty => request.send().await,
            Body::Bytes(bytes) => request.send_body(bytes.clone()).await,
            Body::File(file, range) => {
                let len = range.end - range.start;
                request
                    .send_body(actix_http::body::SizedStream::new(len, read_range(file.clone(), range.clone())))
                    .await
            }
        };
        match sent {
            Ok(reply) => return Ok(reply),
            Err(e) => last = Some(e),
        }
    }
    Err(unavailable(last.map_or_else(|| "no attempt".to_string(), |e| e.to_string())))
}

/// Streams `range` of `file` in fixed-size reads on the blocking pool.
pub(super) fn read_range(file: Arc<File>, range: Range<u64>) -> impl Stream<Item = io::Result<Bytes>> + 'static {
    futures_util::stream::try_unfold(range, move |range| {
        let file = file.clone();
        async move {
            if range.start >= range.end {
                return Ok(None);
            }
            let want = usize::try_from(range.end - range.start).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            let at = range.start;
            let chunk = tokio::task::spawn_blocking(move || {
                let mut buf = BytesMut::zeroed(want);
                let n = file.read_at(&mut buf, at)?;
                buf.truncate(n);
                Ok::<_, io::Error>(buf.freeze())
            })
            .await
            .map_err(io::Error::other)??;
            if chunk.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "spool file shorter than expected"));
            }
            let next = range.start + chunk.len() as u64..range.end;
            Ok(Some((chunk, next)))
        }
    })
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn expect_ok(reply: Reply, what: &str) -> Result<Reply> {
    if reply.status().is_success() {
        Ok(reply)
    } else {
        Err(status_error(reply, what).await)
    }
}

/// A successful answer's XML body.
async fn xml(reply: Reply, what: &str) -> Result<String> {
    let mut reply = expect_ok(reply, what).await?;
    let body = reply.body().limit(XML_LIMIT).await.map_err(unavailable)?;
    String::from_utf8(body.to_vec()).map_err(|e| protocol(what, e))
}

/// The error for a failed answer: `5xx` and `429` mean "retry later".
async fn status_error(mut reply: Reply, what: &str) -> StoreError {
    let status = reply.status();
    let body = reply.body().limit(64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let code = element(&text, "Code").unwrap_or_default();
    let why = format!("{what}: {status} {code}");
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        StoreError::Unavailable(format!("object store: {why}"))
    } else {
        StoreError::Io(io::Error::other(format!(
            "object store: {why} {}",
            element(&text, "Message").unwrap_or_default()
        )))
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("object store: {e}"))
}

fn protocol(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(io::Error::other(format!("object store: {what}: unreadable answer: {e}")))
}

/// The text of the first `<name>…</name>` in `xml`.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

/// A key as a URL path (each segment percent-encoded, `/` kept).
fn encode_key(key: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(key, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_encodes_keys() {
        let xml = "<CopyPartResult><ETag>&quot;abc&quot;</ETag></CopyPartResult>";
        assert_eq!(element(xml, "ETag").as_deref(), Some("&quot;abc&quot;"));
        assert_eq!(element(xml, "Code"), None);
        assert_eq!(encode_key("up/a b+c.tail.1"), "up/a%20b%2Bc.tail.1");
    }

    #[test]
    fn aws_is_the_default_endpoint() {
        let endpoint = Endpoint {
            bucket: "b".into(),
            url: None,
            region: "eu-west-3".into(),
            path_style: false,
            credentials: None,
        };
        let client = Client::new(&endpoint).unwrap();
        assert_eq!(client.bucket.base_url().as_str(), "https://b.s3.eu-west-3.amazonaws.com/");
        let bad = Endpoint { url: Some("ftp://x".into()), ..endpoint };
        assert!(Client::new(&bad).is_err());
    }
}
