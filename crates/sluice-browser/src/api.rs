//! The shapes the JavaScript API takes and returns. Each is a Rust type: `tsify` writes its
//! TypeScript declaration into the package's `.d.ts`, and `serde-wasm-bindgen` converts it, so
//! an option or a field is added in one place and the compiler checks every use.

use crate::error::{code, Error};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use tsify::Tsify;
use wasm_bindgen::JsValue;

/// Options of `Client.connect`. Every field is optional.
#[derive(Debug, Default, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ClientOptions {
    /// The policy as JSON text or object; skips fetching it.
    #[tsify(optional, type = "string | object")]
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// Where to fetch the policy (default: `../policy` relative to the endpoint); `null`: derive
    /// it from `OPTIONS` (any tus server).
    #[tsify(optional, type = "string | null")]
    #[serde(default, deserialize_with = "present")]
    pub policy_url: Option<Option<String>>,
    /// Largest chunk in bytes (default 16 MiB), capped by the policy's `max_chunk_size`.
    #[tsify(optional)]
    pub chunk_size: Option<f64>,
    /// Per-chunk checksum (default `"auto"`).
    #[tsify(optional)]
    pub checksum: Option<ChecksumOption>,
    /// Uploads that transfer at once (default 3).
    #[tsify(optional)]
    pub concurrency: Option<f64>,
    /// Consecutive failures tolerated per upload (default 10).
    #[tsify(optional)]
    pub retries: Option<f64>,
    /// First retry delay in ms (default 500); doubles per attempt, jittered.
    #[tsify(optional)]
    pub retry_delay: Option<f64>,
    /// Longest retry delay in ms (default 20000).
    #[tsify(optional)]
    pub max_retry_delay: Option<f64>,
    /// Remember uploads in localStorage to resume them after a reload (default true).
    #[tsify(optional)]
    pub resume: Option<bool>,
    /// Check each file against the policy before sending (default true).
    #[tsify(optional)]
    pub check: Option<bool>,
    /// Compute the whole file's SHA-256 before sending (in a hashing worker when there is one)
    /// and declare it, so the server refuses the upload with `digest_mismatch` unless the bytes
    /// it stored hash the same (default false).
    #[tsify(optional)]
    pub file_sha256: Option<bool>,
    /// The protocol: tus 1.0 (default), or the IETF resumable-uploads draft.
    #[tsify(optional)]
    pub protocol: Option<ProtocolOption>,
    /// Split each file into this many parts sent at once and joined on the server (tus
    /// concatenation; default 1). Used when the server lists `concatenation`; parts are at
    /// least 1 MiB.
    #[tsify(optional)]
    pub parallel: Option<f64>,
    /// Web Workers that compute chunk checksums off the page's thread (default: one per spare
    /// core, at most 4; 0 hashes on the page's thread).
    #[tsify(optional)]
    pub hash_workers: Option<f64>,
    /// URL of this package's `sluice_browser.js` for the hashing workers to import. Needed only
    /// when a bundler merged the package into another script; otherwise found by itself.
    #[tsify(optional)]
    pub worker_url: Option<String>,
}

/// `undefined` → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The protocol uploads speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Tsify)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolOption {
    /// tus 1.0: any tus server.
    Tus,
    /// The IETF resumable-uploads draft (interop version 8).
    Ietf,
}

/// Which checksum each chunk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Tsify)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumOption {
    /// The strongest the server accepts: SHA-256, else CRC-32C, else SHA-1.
    Auto,
    /// The fastest the server accepts: CRC-32C, else as `auto`.
    Fast,
    /// None (refused by a server whose policy requires checksums).
    None,
    /// SHA-1, if the server accepts it (else `auto`).
    Sha1,
    /// SHA-256, if the server accepts it (else `auto`).
    Sha256,
    /// CRC-32C, if the server accepts it (else `auto`).
    Crc32c,
}

/// Options of `Client.upload`.
#[derive(Default, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct UploadOptions {
    /// Called after each chunk the server acknowledged.
    #[tsify(optional, type = "(progress: Progress) => void")]
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    pub on_progress: JsValue,
    /// Called when the upload's state changes.
    #[tsify(optional, type = "(state: UploadState) => void")]
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    pub on_state_change: JsValue,
    /// Extra Upload-Metadata pairs (`filename` and `filetype` are set already).
    #[tsify(optional)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Parts for this file, instead of the client's `parallel`.
    #[tsify(optional)]
    pub parallel: Option<f64>,
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Created, not started.
    Idle,
    /// Reading the leading bytes and checking the file.
    Checking,
    /// Waiting for a free slot (concurrency limit).
    Queued,
    /// Sending.
    Uploading,
    /// Paused by the page.
    Paused,
    /// Waiting before trying again after a failure.
    Retrying,
    /// Every byte acknowledged.
    Done,
    /// Stopped by an error.
    Failed,
    /// Cancelled by the page (and terminated on the server).
    Cancelled,
}

impl UploadState {
    /// The name the JS API uses.
    pub fn name(self) -> &'static str {
        match self {
            UploadState::Idle => "idle",
            UploadState::Checking => "checking",
            UploadState::Queued => "queued",
            UploadState::Uploading => "uploading",
            UploadState::Paused => "paused",
            UploadState::Retrying => "retrying",
            UploadState::Done => "done",
            UploadState::Failed => "failed",
            UploadState::Cancelled => "cancelled",
        }
    }

    /// Whether the upload is over (done, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, UploadState::Done | UploadState::Failed | UploadState::Cancelled)
    }
}

/// A file's verdict. `code` is one of the server's stable reason codes.
#[derive(Debug, Clone, Serialize, Tsify)]
#[tsify(missing_as_null)]
pub struct Verdict {
    /// Whether the file may be sent.
    pub ok: bool,
    /// Why not (a reason code), or `null`.
    pub code: Option<String>,
    /// Plain words for a person.
    pub message: String,
    /// `File.name`, or `null` for a plain `Blob`.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: f64,
    /// The type sniffed from the leading bytes (when accepted).
    pub mime: Option<String>,
    /// Words for that type, e.g. "PDF document" (when accepted).
    pub label: Option<String>,
}

/// A drop's verdict: the batch limits, then each file.
#[derive(Debug, Clone, Serialize, Tsify)]
#[tsify(missing_as_null)]
pub struct BatchVerdict {
    /// Whether the batch and every file in it may be sent.
    pub ok: bool,
    /// Why the batch as a whole is refused (`too_many_files`, `batch_too_large`), or `null`.
    pub code: Option<String>,
    /// Plain words for a person.
    pub message: String,
    /// Each file's verdict, in order.
    pub files: Vec<Verdict>,
}

/// Progress of acknowledged bytes.
#[derive(Debug, Clone, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct Progress {
    /// Bytes the server acknowledged.
    pub uploaded: f64,
    /// The file size.
    pub total: f64,
    /// `uploaded / total` (1 for an empty file).
    pub fraction: f64,
    /// Recent speed.
    pub bytes_per_second: f64,
    /// Seconds left at that speed, or `null` while unknown.
    pub eta_seconds: Option<f64>,
    /// The chunk just acknowledged: first byte.
    pub chunk_start: f64,
    /// The chunk just acknowledged: end (exclusive).
    pub chunk_end: f64,
    /// The Upload-Checksum sent with it, e.g. "sha256 <base64>".
    pub checksum: Option<String>,
    /// Retries so far.
    pub retries: u32,
}

/// What `Upload.start()` resolves with.
#[derive(Debug, Clone, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct UploadResult {
    /// The upload's URL on the server.
    pub url: String,
    /// Bytes uploaded.
    pub size: f64,
    /// Whole-file SHA-256 (hex) with `fileSha256: true`.
    pub sha256: Option<String>,
    /// Per-chunk checksum algorithm used.
    pub checksum: Option<String>,
    /// The server offset it resumed from, or `null` for a fresh upload.
    pub resumed_from: Option<f64>,
}

/// An unfinished upload this browser started earlier (found in localStorage).
#[derive(Debug, Clone, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct PendingUpload {
    /// The file's name.
    pub name: String,
    /// The file's size in bytes.
    pub size: f64,
    /// The file's modification time (Unix ms), or `null` for a plain `Blob`.
    pub last_modified: Option<f64>,
    /// The upload's URL (`parts URL URL…` for a parallel upload not yet joined); pass it to
    /// `discard`.
    pub url: String,
    /// Bytes the server holds, or `null` when it could not be asked.
    pub offset: Option<f64>,
}

/// A policy in plain words, for a page to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
pub struct PolicyDescription {
    /// One line per rule: a short label ("Size", "Types") and a sentence.
    pub rules: Vec<PolicyRule>,
    /// A one-line summary for a drop zone: "Up to 4.0 GiB each · images or PDF documents".
    pub hint: String,
}

/// One rule of a [`PolicyDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
pub struct PolicyRule {
    /// A short label.
    pub label: String,
    /// The rule in a sentence.
    pub text: String,
}

/// What this module throws: a JS `Error` named `SluiceError` with these fields.
#[derive(Debug, Clone, Tsify)]
pub struct SluiceError {
    /// `"SluiceError"`.
    pub name: String,
    /// Plain words for a person.
    pub message: String,
    /// A stable code: the server's reason codes, or `cancelled`, `network_error`,
    /// `unexpected_response`, `read_error`, `invalid_options`.
    pub code: String,
    /// The HTTP status, when a server answered.
    #[tsify(optional)]
    pub status: Option<u16>,
}

/// Converts a value to JS: `None` as `null`, maps as plain objects.
pub fn to_js<T: Serialize>(value: &T) -> JsValue {
    let serializer =
        serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true).serialize_maps_as_objects(true);
    value.serialize(&serializer).unwrap_or(JsValue::UNDEFINED)
}

/// Reads options from JS (`undefined` → the defaults); a bad field is an `invalid_options` error.
pub fn from_js<T: for<'de> Deserialize<'de> + Default>(value: JsValue) -> Result<T, Error> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| Error::new(code::INVALID_OPTIONS, format!("Bad options: {e}")))
}
