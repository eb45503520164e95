//! Webhooks: let the application decide on each upload, and tell it when one
//! is finished.
//!
//! - **pre-create** (`--hook-pre-create URL`): before an upload is created, the
//!   server POSTs `{"event": "pre-create", "upload": {...}}` and waits up to
//!   `--hook-timeout`. A 2xx lets the upload go ahead; any other status refuses
//!   it (`403 refused_by_hook`, with the hook's `message` if its JSON body has
//!   one); no answer in time gives `503 hook_unavailable` + `Retry-After`.
//! - **post-finish** (`--hook-post-finish URL`): once an upload's last byte is
//!   stored, the server POSTs `{"event": "post-finish", "upload": {...}}` in the
//!   background (three attempts, one second apart; failures are logged).
//!
//! `upload` carries the id (post-finish), declared length, metadata (UTF-8
//! values), file name, owner (the token's subject) and, once known, the
//! sniffed type. Hooks are plain HTTP (typically an internal service).

use crate::admission::RETRY_AFTER_SECS;
use crate::error::{Error, Result};
use serde::Serialize;
use sluice_core::tus::Metadata;
use sluice_core::Reason;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the hooks are, and how long to wait for them.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// URL called before each upload is created.
    pub pre_create: Option<String>,
    /// URL told about each finished upload.
    pub post_finish: Option<String>,
    /// How long a hook may take.
    pub timeout: Duration,
}

/// What a hook is told about an upload.
#[derive(Debug, Clone, Serialize, Default)]
pub struct HookUpload {
    /// The upload id (known after creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The declared length (absent while deferred).
    pub length: Option<u64>,
    /// Declared metadata; values as UTF-8 (lossy).
    pub metadata: BTreeMap<String, String>,
    /// The declared file name.
    pub filename: Option<String>,
    /// The owner (token subject), when authorization is on.
    pub owner: Option<String>,
    /// The sniffed type (post-finish).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// The whole file's SHA-256 (hex), when known (post-finish: verified if the client declared it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// How it was sent: `tus`, `form` or `flow`.
    pub protocol: &'static str,
}

impl HookUpload {
    /// Describes an upload from its raw `Upload-Metadata`.
    pub fn new(protocol: &'static str, length: Option<u64>, parsed: &Metadata, owner: Option<&str>) -> HookUpload {
        HookUpload {
            id: None,
            length,
            metadata: parsed
                .pairs()
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            filename: parsed.file_name(),
            owner: owner.map(str::to_owned),
            mime: None,
            sha256: None,
            protocol,
        }
    }
}

#[derive(Serialize)]
struct Event<'a> {
    event: &'static str,
    upload: &'a HookUpload,
}

/// Asks the pre-create hook (if any) whether `upload` may be created.
pub async fn pre_create(hooks: &Hooks, upload: &HookUpload) -> Result<()> {
    let Some(url) = &hooks.pre_create else { return Ok(()) };
    let client = awc::Client::builder().timeout(hooks.timeout).finish();
    let sent = client.post(url).send_json(&Event { event: "pre-create", upload }).await;
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(hook = %url, error = %e, "pre-create hook unreachable");
            return Err(Error::new(
                Reason::HookUnavailable,
                "The application could not be asked about this upload; retry later.",
            )
            .with_header("retry-after", RETRY_AFTER_SECS));
        }
    };
    if response.status().is_success() {
        return Ok(());
    }
    let message = response
        .json::<serde_json::Value>()
        .limit(16 << 10)
        .await
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "The application refused this upload.".to_string());
    tracing::info!(hook = %url, status = response.status().as_u16(), "pre-create hook refused an upload");
    Err(Error::new(Reason::RefusedByHook, message))
}

/// Tells the post-finish hook (if any) about a finished upload, in the background.
pub fn post_finish(hooks: &Hooks, upload: HookUpload) {
    let hooks = hooks.clone();
    let Some(url) = hooks.post_finish else { return };
    actix_web::rt::spawn(async move {
        let client = awc::Client::builder().timeout(hooks.timeout).finish();
        for attempt in 1..=3 {
            match client.post(&url).send_json(&Event { event: "post-finish", upload: &upload }).await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(hook = %url, attempt, status = response.status().as_u16(), "post-finish hook failed")
                }
                Err(e) => tracing::warn!(hook = %url, attempt, error = %e, "post-finish hook unreachable"),
            }
            actix_web::rt::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::error!(hook = %url, upload = ?upload.id, "post-finish hook gave up after 3 attempts");
    });
}
