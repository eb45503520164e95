//! The HTTP layer: one pooled `reqwest` client, the headers every request
//! carries, and turning a non-2xx answer into an [`Error`] with the server's
//! own code and words.

use crate::error::{Error, Result};
use crate::retry::parse_retry_after;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use sluice_core::Reason;
use std::time::{Duration, SystemTime};

/// Most bytes of an error body read (a JSON `{"code","message"}` is far smaller).
const MAX_ERROR_BODY: usize = 64 << 10;

/// A connection pool plus the bearer token.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    token: Option<String>,
}

/// A successful answer: status and headers (bodies of successful tus answers carry nothing we need).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    pub fn new(token: Option<String>) -> Result<Http> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            // A server that accepted the body but never answers must not hang a script.
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!("sluice-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(crate::error::code::INVALID_OPTIONS, format!("HTTP client: {e}")))?;
        Ok(Http { client, token })
    }

    /// A request with `Tus-Resumable` and, when set, `Authorization: Bearer`.
    pub fn tus(&self, method: Method, url: &str) -> RequestBuilder {
        let req = self.client.request(method, url).header("Tus-Resumable", sluice_core::tus::TUS_VERSION);
        self.authorize(req)
    }

    /// A plain request (no tus header), authorized when a token is set.
    pub fn plain(&self, method: Method, url: &str) -> RequestBuilder {
        self.authorize(self.client.request(method, url))
    }

    fn authorize(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends; a 2xx is a [`Reply`], anything else an [`Error`] built from the answer.
    pub async fn send(&self, req: RequestBuilder, url: &str) -> Result<Reply> {
        let response = req.send().await.map_err(|e| Error::network(url, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if (200..300).contains(&status) {
            return Ok(Reply { status, headers });
        }
        let body = read_limited(response).await;
        Err(error_from(status, &headers, &body))
    }
}

async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// The error an answer stands for: Sluice's JSON `{"code","message"}` when present; for
/// servers that send none, the reason the status stands for in tus, or `unexpected_response`.
pub(crate) fn error_from(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let retry_after =
        headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()));
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| {
        let code = v.get("code")?.as_str()?.to_string();
        let message = v.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
        (!code.is_empty()).then_some((code, message))
    });
    let (code, message) = parsed.unwrap_or_else(|| {
        let reason = match status {
            401 => Some(Reason::Unauthorized),
            404 => Some(Reason::UploadNotFound),
            409 => Some(Reason::OffsetMismatch),
            410 => Some(Reason::UploadGone),
            413 => Some(Reason::FileTooLarge),
            423 => Some(Reason::UploadLocked),
            460 => Some(Reason::ChecksumMismatch),
            _ => None,
        };
        let text = String::from_utf8_lossy(body);
        let detail = text.trim();
        let detail = if detail.is_empty() || detail.len() > 300 { String::new() } else { format!(": {detail}") };
        let code = reason.map_or(crate::error::code::UNEXPECTED_RESPONSE, |r| r.code());
        (code.to_string(), format!("The server answered {status}{detail}"))
    });
    Error { code, message, status: Some(status), retry_after }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sluice_bodies_keep_their_code_and_words() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        let e = error_from(503, &headers, br#"{"code":"server_busy","message":"Busy; retry."}"#);
        assert_eq!((e.code.as_str(), e.message.as_str()), ("server_busy", "Busy; retry."));
        assert_eq!(e.status, Some(503));
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(e.to_string(), "server_busy: Busy; retry.");
    }

    #[test]
    fn servers_without_codes_get_the_status_reason() {
        let e = error_from(413, &HeaderMap::new(), b"ERR_MAX_SIZE_EXCEEDED: too big\n");
        assert_eq!(e.code, "file_too_large");
        assert_eq!(e.message, "The server answered 413: ERR_MAX_SIZE_EXCEEDED: too big");
        let e = error_from(418, &HeaderMap::new(), &[b'x'; 1000]);
        assert_eq!((e.code.as_str(), e.message.as_str()), ("unexpected_response", "The server answered 418"));
    }
}
