//! Sluice in the browser: check a file against the server's upload policy
//! before a single byte is sent, then upload it in hashed, resumable tus 1.0
//! chunks, with memory that stays flat for multi-GiB files.
//!
//! Every rule is decided by `sluice-core`, the same code the server runs, so a
//! file refused here would be refused there with the same code and message.
//!
//! - [`Client`] connects to a tus endpoint: `OPTIONS` tells it what the server
//!   supports (checksums, termination, maximum size) and `GET /policy` gives
//!   Sluice's policy (a server without one gets a policy derived from
//!   `OPTIONS`, so any tus 1.0 server works).
//! - [`Client::check`] / [`Client::check_batch`] read at most the first
//!   8 KiB of a file (`Blob.slice`) and return a verdict with a stable code.
//! - [`Client::upload`] returns an [`Upload`]: `start()`, `pause()`,
//!   `resume()`, `cancel()`. Chunks are `Blob` slices sent as-is; each is
//!   hashed in wasm over one reused buffer (BYOB stream reader). Network
//!   errors, 5xx, 423, 429 and 460 are retried with backoff, jitter and
//!   `Retry-After`; a 409 re-reads the offset; progress counts only bytes the
//!   server acknowledged. A `localStorage` fingerprint resumes after a reload.
//!
//! ```js
//! import init, { Client } from "./pkg/sluice_browser.js";
//! await init();
//! const client = await Client.connect("https://example.com/files/", { concurrency: 3 });
//! input.onchange = async () => {
//!   const file = input.files[0];
//!   const verdict = await client.check(file);         // reads 8 KiB at most
//!   if (!verdict.ok) return show(`${verdict.message} (${verdict.code})`);
//!   const upload = client.upload(file, { onProgress: (p) => bar.value = p.fraction });
//!   pauseButton.onclick = () => upload.pause();
//!   try { const { url } = await upload.start(); show(`Uploaded to ${url}`); }
//!   catch (e) { show(`${e.message} (${e.code})`); }  // e.code: same codes as the server
//! };
//! ```
//!
//! Modules: [`check`] (verdicts), [`blob`] (leading bytes, BYOB chunk reads),
//! [`client`] (connection, policy, settings), [`upload`] (the resumable loop),
//! [`tus`] (requests and `OPTIONS` detection), [`retry`] (backoff),
//! [`progress`] (speed and ETA), [`fingerprint`] (resume after reload).
//! Only this file holds `#[wasm_bindgen]` exports.

pub mod blob;
pub mod check;
pub mod client;
pub mod error;
pub mod fingerprint;
pub mod http;
mod js;
pub mod progress;
pub mod retry;
mod sync;
pub mod tus;
pub mod upload;

use client::{ChecksumChoice, Config, PolicySource, Shared};
use error::{code, Error};
use js_sys::{Array, Function, Promise};
use sluice_core::{Algorithm, Policy};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::Blob;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of `Client.connect`. Every field is optional. */
export interface ClientOptions {
  /** The policy as JSON text or object; skips fetching it. */
  policy?: string | object;
  /** Where to fetch the policy (default: `../policy` relative to the endpoint); `null`: derive it from OPTIONS. */
  policyUrl?: string | null;
  /** Largest chunk in bytes (default 16 MiB), capped by the policy's `max_chunk_size`. */
  chunkSize?: number;
  /** Per-chunk checksum: "auto" (default: the server's first supported), "none", "sha1", "sha256", "crc32c". */
  checksum?: "auto" | "none" | "sha1" | "sha256" | "crc32c";
  /** Uploads that transfer at once (default 3). */
  concurrency?: number;
  /** Consecutive failures tolerated per upload (default 10). */
  retries?: number;
  /** First retry delay in ms (default 500); doubles per attempt, jittered. */
  retryDelay?: number;
  /** Longest retry delay in ms (default 20000). */
  maxRetryDelay?: number;
  /** Remember uploads in localStorage to resume after a reload (default true). */
  resume?: boolean;
  /** Check each file against the policy before sending (default true). */
  check?: boolean;
  /** Compute the whole file's SHA-256 while uploading (default false). */
  fileSha256?: boolean;
}

/** Options of `Client.upload`. */
export interface UploadOptions {
  /** Called after each chunk the server acknowledged. */
  onProgress?: (progress: Progress) => void;
  /** Called when the upload's state changes. */
  onStateChange?: (state: UploadState) => void;
  /** Extra Upload-Metadata pairs (`filename` and `filetype` are set already). */
  metadata?: Record<string, string>;
}

/** Where an upload stands. */
export type UploadState =
  "idle" | "checking" | "queued" | "uploading" | "paused" | "retrying" | "done" | "failed" | "cancelled";

/** A file's verdict. `code` is one of the server's stable reason codes. */
export interface Verdict {
  ok: boolean;
  code: string | null;
  message: string;
  name: string | null;
  size: number;
  /** The type sniffed from the leading bytes (when accepted). */
  mime: string | null;
  label: string | null;
}

/** A drop's verdict: the batch limits, then each file. */
export interface BatchVerdict {
  ok: boolean;
  code: string | null;
  message: string;
  files: Verdict[];
}

/** Progress of acknowledged bytes. */
export interface Progress {
  uploaded: number;
  total: number;
  fraction: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  /** The chunk just acknowledged. */
  chunkStart: number;
  chunkEnd: number;
  /** The Upload-Checksum sent with it, e.g. "sha256 <base64>". */
  checksum: string | null;
  retries: number;
}

/** What `Upload.start()` resolves with. */
export interface UploadResult {
  url: string;
  size: number;
  /** Whole-file SHA-256 (hex) with `fileSha256: true`. */
  sha256: string | null;
  /** Per-chunk checksum algorithm used. */
  checksum: string | null;
  /** The server offset it resumed from, or null for a fresh upload. */
  resumedFrom: number | null;
}

/** Errors thrown by this module carry a stable code (the server's codes, or
 * "cancelled", "network_error", "unexpected_response", "read_error", "invalid_options"). */
export interface SluiceError extends Error {
  code: string;
  status?: number;
}
"#;

fn js_err(e: impl Into<Error>) -> JsValue {
    e.into().to_js()
}

fn options_error(message: String) -> JsValue {
    Error::new(code::INVALID_OPTIONS, message).to_js()
}

fn number(options: &JsValue, key: &str) -> Result<Option<f64>, JsValue> {
    let v = js::get(options, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(options_error(format!("{key} must be a non-negative number"))),
    }
}

fn boolean(options: &JsValue, key: &str, default: bool) -> bool {
    js::get(options, key).as_bool().unwrap_or(default)
}

fn parse_client_options(options: &JsValue) -> Result<(PolicySource, Config), JsValue> {
    let mut config = Config::default();
    if let Some(n) = number(options, "chunkSize")? {
        config.chunk_size = n as u64;
    }
    if let Some(n) = number(options, "concurrency")? {
        config.concurrency = n as usize;
    }
    if let Some(n) = number(options, "retries")? {
        config.backoff.max_retries = n as u32;
    }
    if let Some(n) = number(options, "retryDelay")? {
        config.backoff.base_ms = n;
    }
    if let Some(n) = number(options, "maxRetryDelay")? {
        config.backoff.max_ms = n;
    }
    config.resume = boolean(options, "resume", true);
    config.check = boolean(options, "check", true);
    config.file_sha256 = boolean(options, "fileSha256", false);
    let checksum = js::get(options, "checksum");
    config.checksum = match checksum.as_string().as_deref() {
        None if checksum.is_undefined() || checksum.is_null() => ChecksumChoice::Auto,
        Some("auto") => ChecksumChoice::Auto,
        Some("none") => ChecksumChoice::Off,
        Some(name) if Algorithm::from_name(name).is_some() => {
            ChecksumChoice::Prefer(Algorithm::from_name(name).unwrap_or(Algorithm::Sha256))
        }
        _ => return Err(options_error("checksum must be auto, none, sha1, sha256 or crc32c".into())),
    };
    let policy = js::get(options, "policy");
    let policy_url = js::get(options, "policyUrl");
    let source = if let Some(text) = policy.as_string() {
        PolicySource::Json(text)
    } else if policy.is_object() {
        let text = js_sys::JSON::stringify(&policy).map_err(|e| options_error(js::describe(&e)))?;
        PolicySource::Json(String::from(text))
    } else if policy_url.is_null() {
        PolicySource::Off
    } else if let Some(url) = policy_url.as_string() {
        PolicySource::Url(url)
    } else {
        PolicySource::Default
    };
    Ok((source, config))
}

/// A connection to one tus endpoint. Create it with `Client.connect`.
#[wasm_bindgen]
pub struct Client {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl Client {
    /// Connects to a tus endpoint (e.g. `https://host/files/`): asks it what
    /// it supports (`OPTIONS`) and fetches its policy.
    pub async fn connect(
        endpoint: String,
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: Option<JsValue>,
    ) -> Result<Client, JsValue> {
        let (source, config) = parse_client_options(&options.unwrap_or(JsValue::UNDEFINED))?;
        let shared = Shared::connect(&endpoint, source, config).await.map_err(js_err)?;
        Ok(Client { shared: Rc::new(shared) })
    }

    /// The policy files are checked against, as JSON.
    #[wasm_bindgen(getter)]
    pub fn policy(&self) -> String {
        self.shared.policy.to_json()
    }

    /// Whether the server published its policy (`false`: derived from `OPTIONS`).
    #[wasm_bindgen(getter, js_name = policyPublished)]
    pub fn policy_published(&self) -> bool {
        self.shared.policy_published
    }

    /// The tus endpoint, resolved.
    #[wasm_bindgen(getter)]
    pub fn endpoint(&self) -> String {
        self.shared.endpoint.clone()
    }

    /// The checksum algorithm chunks carry, or `undefined` when the server supports none.
    #[wasm_bindgen(getter, js_name = checksumAlgorithm)]
    pub fn checksum_algorithm(&self) -> Option<String> {
        self.shared.checksum.map(|a| a.name().to_string())
    }

    /// The tus extensions the server announced.
    #[wasm_bindgen(getter)]
    pub fn extensions(&self) -> Vec<String> {
        self.shared.caps.extensions.clone()
    }

    /// The chunk size uploads use, in bytes.
    #[wasm_bindgen(getter, js_name = chunkSize)]
    pub fn chunk_size(&self) -> f64 {
        self.shared.chunk_size() as f64
    }

    /// Checks a file against the policy, reading at most its first 8 KiB.
    #[wasm_bindgen(unchecked_return_type = "Promise<Verdict>")]
    pub fn check(&self, file: Blob) -> Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let checked = check::check(&shared.policy, &file).await.map_err(js_err)?;
            Ok(checked.to_js())
        })
    }

    /// Checks a whole drop: the batch limits (count, total size), then each file.
    #[wasm_bindgen(js_name = checkBatch, unchecked_return_type = "Promise<BatchVerdict>")]
    pub fn check_batch(&self, #[wasm_bindgen(unchecked_param_type = "Blob[]")] files: Array) -> Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let blobs = blobs_of(&files)?;
            let (batch, checked) = check::check_batch(&shared.policy, &blobs).await.map_err(js_err)?;
            Ok(check::batch_to_js(&batch, &checked))
        })
    }

    /// Prepares an upload of `file`; call `start()` on it. At most
    /// `concurrency` uploads of this client transfer at once; the others wait.
    pub fn upload(
        &self,
        file: Blob,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<JsValue>,
    ) -> Result<Upload, JsValue> {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let mut hooks = upload::Hooks {
            on_progress: js::get(&options, "onProgress").dyn_into::<Function>().ok(),
            on_state: js::get(&options, "onStateChange").dyn_into::<Function>().ok(),
            metadata: Vec::new(),
        };
        let metadata = js::get(&options, "metadata");
        if metadata.is_object() {
            let entries = js_sys::Object::entries(metadata.unchecked_ref());
            for entry in entries.iter() {
                let pair: Array = entry.unchecked_into();
                let key = pair.get(0).as_string().unwrap_or_default();
                let value =
                    pair.get(1).as_string().ok_or_else(|| options_error(format!("metadata {key} must be a string")))?;
                if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                    return Err(options_error(format!("metadata key {key:?} is not a valid tus key")));
                }
                hooks.metadata.push((key, value));
            }
        }
        let inner = Rc::new(upload::Upload::new(self.shared.clone(), file, hooks));
        Ok(Upload { inner, done: RefCell::new(None) })
    }
}

fn blobs_of(files: &Array) -> Result<Vec<Blob>, JsValue> {
    files
        .iter()
        .map(|f| f.dyn_into::<Blob>().map_err(|_| options_error("checkBatch takes an array of File or Blob".into())))
        .collect()
}

/// One file's resumable upload. Created by `Client.upload`.
#[wasm_bindgen]
pub struct Upload {
    inner: Rc<upload::Upload>,
    done: RefCell<Option<Promise>>,
}

#[wasm_bindgen]
impl Upload {
    /// Starts (or, called again, returns the same promise): resolves when the
    /// server holds every byte, rejects with a `SluiceError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<UploadResult>")]
    pub fn start(&self) -> Promise {
        if let Some(p) = self.done.borrow().as_ref() {
            return p.clone();
        }
        let inner = self.inner.clone();
        let promise = future_to_promise(async move {
            let outcome = inner.run().await.map_err(js_err)?;
            let obj: JsValue = js_sys::Object::new().into();
            js::set(&obj, "url", outcome.url);
            js::set(&obj, "size", outcome.size as f64);
            js::set(&obj, "sha256", outcome.sha256.map_or(JsValue::NULL, JsValue::from));
            js::set(&obj, "checksum", outcome.checksum.map_or(JsValue::NULL, |a| JsValue::from(a.name())));
            js::set(&obj, "resumedFrom", outcome.resumed_from.map_or(JsValue::NULL, |o| JsValue::from(o as f64)));
            Ok(obj)
        });
        *self.done.borrow_mut() = Some(promise.clone());
        promise
    }

    /// Pauses: the request in flight is aborted; `resume()` continues from the server's offset.
    pub fn pause(&self) {
        self.inner.pause();
    }

    /// Resumes a paused upload.
    pub fn resume(&self) {
        self.inner.resume();
    }

    /// Cancels: stops sending and terminates the upload on the server. Resolves once done.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn cancel(&self) -> Promise {
        self.inner.cancel();
        let done = self.done.borrow().clone();
        future_to_promise(async move {
            if let Some(done) = done {
                let _ = JsFuture::from(done).await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The current state.
    #[wasm_bindgen(getter, unchecked_return_type = "UploadState")]
    pub fn state(&self) -> String {
        self.inner.phase().name().to_string()
    }

    /// Bytes the server has acknowledged.
    #[wasm_bindgen(getter)]
    pub fn offset(&self) -> f64 {
        self.inner.offset() as f64
    }

    /// The file size in bytes.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        self.inner.size() as f64
    }

    /// The upload URL, once created (or found again after a reload).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> Option<String> {
        self.inner.url()
    }

    /// How many times a request was retried.
    #[wasm_bindgen(getter)]
    pub fn retries(&self) -> u32 {
        self.inner.retries()
    }

    /// The server offset the upload resumed from, if it resumed an earlier one.
    #[wasm_bindgen(getter, js_name = resumedFrom)]
    pub fn resumed_from(&self) -> Option<f64> {
        self.inner.resumed_from().map(|o| o as f64)
    }

    /// The whole file's SHA-256 (hex), after a finished upload with `fileSha256: true`.
    #[wasm_bindgen(getter)]
    pub fn sha256(&self) -> Option<String> {
        self.inner.sha256()
    }
}

/// Checks a file against a policy given as JSON, without any server.
#[wasm_bindgen(js_name = checkFile, unchecked_return_type = "Promise<Verdict>")]
pub fn check_file(policy: &str, file: Blob) -> Promise {
    let policy = Policy::from_json(policy);
    future_to_promise(async move {
        let policy = policy.map_err(js_err)?;
        let checked = check::check(&policy, &file).await.map_err(js_err)?;
        Ok(checked.to_js())
    })
}

/// The digest (lowercase hex) of a whole blob, read in pieces through the same
/// reused buffer uploads use: `"sha256"`, `"sha1"` or `"crc32c"`.
#[wasm_bindgen(unchecked_return_type = "Promise<string>")]
pub fn digest(file: Blob, algorithm: &str) -> Promise {
    let algorithm = Algorithm::from_name(algorithm);
    future_to_promise(async move {
        let algorithm = algorithm.ok_or_else(|| options_error("algorithm must be sha1, sha256 or crc32c".into()))?;
        let mut hasher = algorithm.hasher();
        let mut reader = blob::Reader::new();
        reader.read(&file, 0..blob::size(&file), |b| hasher.update(b)).await.map_err(js_err)?;
        Ok(JsValue::from(sluice_core::checksum::to_hex(&hasher.finalize())))
    })
}
