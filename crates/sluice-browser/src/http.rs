//! One HTTP exchange on `fetch`, with an `AbortSignal`, and the reading of
//! error answers (`{"code": "...", "message": "..."}`) into [`Error`]s.

use crate::error::{code, Error, Result};
use crate::js;
use crate::retry;
use sluice_core::Reason;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, Headers, Request, RequestCache, RequestInit, Response};

/// A request to send.
pub struct Req<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Absolute URL.
    pub url: &'a str,
    /// Header name/value pairs (`Tus-Resumable` is added by the tus layer).
    pub headers: Vec<(&'static str, String)>,
    /// Body, sent straight from the blob (never copied into JS or wasm memory).
    pub body: Option<Blob>,
    /// Bypass the HTTP cache (without a `Cache-Control` request header, which
    /// would need the server's CORS approval).
    pub no_store: bool,
}

/// What came back.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The response, for headers and body.
    pub response: Response,
}

/// How a request failed.
pub enum Failure {
    /// Aborted through the signal (pause or cancel): not an error by itself.
    Aborted,
    /// No response: connection refused, reset, DNS, CORS.
    Network(String),
}

impl Reply {
    /// A response header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.response.headers().get(name).ok().flatten()
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After` in milliseconds, if sent.
    pub fn retry_after_ms(&self) -> Option<f64> {
        let value = self.header("Retry-After")?;
        retry::parse_retry_after(&value, js_sys::Date::now(), |date| {
            let ms = js_sys::Date::parse(date);
            ms.is_finite().then_some(ms)
        })
    }

    /// The body as text (empty on failure).
    pub async fn text(&self) -> String {
        match self.response.text() {
            Ok(p) => JsFuture::from(p).await.ok().and_then(|v| v.as_string()).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Turns a non-2xx reply into an [`Error`]: the server's own code and
    /// message when it sent Sluice's JSON error body, else a code from the
    /// status (as any tus server would mean it).
    pub async fn error(&self) -> Error {
        let body = self.text().await;
        let parsed: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| {
            // Sluice's error body says `message`; a problem details body (the draft) says `detail`.
            let message = v.get("message").or_else(|| v.get("detail")).and_then(|m| m.as_str()).unwrap_or("");
            Some((v.get("code")?.as_str()?.to_string(), message.to_string()))
        });
        let status = self.status;
        let (code, message) = match parsed {
            Some((code, message)) if !code.is_empty() => (code, message),
            _ => {
                let reason = reason_for_status(status);
                let detail = body.trim();
                let detail =
                    if detail.is_empty() || detail.len() > 300 { String::new() } else { format!(": {detail}") };
                let code = reason.map_or(code::UNEXPECTED_RESPONSE, |r| r.code()).to_string();
                (code, format!("The server answered {status}{detail}"))
            }
        };
        Error { code, message, status: Some(status) }
    }
}

/// The reason a status means when a server sent no code of its own (any tus server). Only here
/// does a status number become a reason; what to do about it is [`Reason::is_transient`]'s call.
pub fn reason_for_status(status: u16) -> Option<Reason> {
    Some(match status {
        404 => Reason::UploadNotFound,
        408 => Reason::IdleTimeout,
        409 => Reason::OffsetMismatch,
        410 => Reason::UploadGone,
        413 => Reason::FileTooLarge,
        415 => Reason::InvalidContentType,
        423 => Reason::UploadLocked,
        429 => Reason::RateLimited,
        460 => Reason::ChecksumMismatch,
        500 => Reason::Internal,
        // A gateway or the server says it is down for now.
        502..=504 => Reason::BackendUnavailable,
        507 => Reason::StorageFull,
        _ => return None,
    })
}

/// A request in flight: `fetch` has been called, the answer is not awaited yet.
pub struct Pending<'a> {
    future: JsFuture,
    signal: Option<&'a AbortSignal>,
}

/// Starts one request now (the browser sends it while the caller does other
/// work, such as hashing the next chunk) and returns a handle to await.
pub fn start<'a>(req: Req<'_>, signal: Option<&'a AbortSignal>) -> Result<Pending<'a>, Failure> {
    let init = RequestInit::new();
    init.set_method(req.method);
    let headers = Headers::new().map_err(|e| Failure::Network(js::describe(&e)))?;
    for (name, value) in &req.headers {
        headers.set(name, value).map_err(|e| Failure::Network(js::describe(&e)))?;
    }
    init.set_headers(&headers);
    if let Some(body) = &req.body {
        init.set_body(body);
    }
    if let Some(signal) = signal {
        init.set_signal(Some(signal));
    }
    if req.no_store {
        init.set_cache(RequestCache::NoStore);
    }
    let request = Request::new_with_str_and_init(req.url, &init).map_err(|e| Failure::Network(js::describe(&e)))?;
    Ok(Pending { future: JsFuture::from(js::fetch_with_request(&request)), signal })
}

impl Pending<'_> {
    /// Waits for the answer.
    pub async fn reply(self) -> Result<Reply, Failure> {
        match self.future.await {
            Ok(v) => {
                let response: Response = v.unchecked_into();
                Ok(Reply { status: response.status(), response })
            }
            Err(e) if js::is_abort(&e) || self.signal.is_some_and(|s| s.aborted()) => Err(Failure::Aborted),
            Err(e) => Err(Failure::Network(js::describe(&e))),
        }
    }
}

/// Sends one request and waits for the answer.
pub async fn send(req: Req<'_>, signal: Option<&AbortSignal>) -> Result<Reply, Failure> {
    start(req, signal)?.reply().await
}

impl Failure {
    /// The error to report when retries run out.
    pub fn into_error(self, url: &str) -> Error {
        match self {
            Failure::Aborted => Error::new(code::CANCELLED, "The request was aborted."),
            Failure::Network(detail) => {
                Error::new(code::NETWORK_ERROR, format!("The server at {url} could not be reached ({detail})."))
            }
        }
    }
}
