//! Checking files against a policy before a byte is sent. Every decision is
//! the core crate's; this module only gathers what it needs from a `Blob`:
//! the name, the size, and at most [`SNIFF_LEN`] leading bytes.

use crate::blob;
use crate::error::Result;
use crate::js;
use sluice_core::units::format_size;
use sluice_core::{FileType, Policy, Rejection, SNIFF_LEN};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File};

/// What the browser knows about a file without reading it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// `File.name`; `None` for a plain `Blob`.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// `File.lastModified` (Unix ms); `None` for a plain `Blob`.
    pub last_modified: Option<f64>,
    /// The type the browser guessed from the extension (`Blob.type`), possibly empty.
    pub browser_type: String,
}

impl FileInfo {
    /// Reads name, size and modification time (no file I/O).
    pub fn of(blob: &Blob) -> FileInfo {
        let file = blob.dyn_ref::<File>();
        FileInfo {
            name: file.map(|f| f.name()),
            size: blob::size(blob),
            last_modified: file.map(|f| f.last_modified()),
            browser_type: blob.type_(),
        }
    }
}

/// A checked file: its facts, its leading bytes, and the core's verdict.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Name, size, modification time.
    pub info: FileInfo,
    /// The first `min(SNIFF_LEN, size)` bytes (also used for the resume fingerprint).
    pub leading: Vec<u8>,
    /// The sniffed type, or why the file is refused.
    pub verdict: Result<FileType, Rejection>,
}

/// Checks one file, reading only its leading bytes.
pub async fn check(policy: &Policy, blob: &Blob) -> Result<Checked> {
    let info = FileInfo::of(blob);
    let leading = blob::leading_bytes(blob, SNIFF_LEN).await?;
    let verdict = policy.check_file(info.name.as_deref(), info.size, &leading);
    Ok(Checked { info, leading, verdict })
}

impl Checked {
    /// The verdict as a plain JS object (see the `Verdict` TypeScript interface).
    pub fn to_js(&self) -> JsValue {
        let obj: JsValue = js_sys::Object::new().into();
        js::set(&obj, "ok", self.verdict.is_ok());
        js::set(&obj, "name", self.info.name.clone().map_or(JsValue::NULL, JsValue::from));
        js::set(&obj, "size", self.info.size as f64);
        match &self.verdict {
            Ok(kind) => {
                js::set(&obj, "code", JsValue::NULL);
                js::set(&obj, "mime", kind.mime);
                js::set(&obj, "label", kind.label);
                let message = format!("{} ({}): accepted.", capitalise(kind.label), format_size(self.info.size));
                js::set(&obj, "message", message);
            }
            Err(r) => {
                js::set(&obj, "code", r.reason.code());
                js::set(&obj, "mime", JsValue::NULL);
                js::set(&obj, "label", JsValue::NULL);
                js::set(&obj, "message", r.message.as_str());
            }
        }
        obj
    }
}

/// The verdict on a whole drop: the batch limits, then every file.
pub async fn check_batch(policy: &Policy, blobs: &[Blob]) -> Result<(Result<(), Rejection>, Vec<Checked>)> {
    let sizes: Vec<u64> = blobs.iter().map(blob::size).collect();
    let batch = policy.check_batch(&sizes);
    let mut files = Vec::with_capacity(blobs.len());
    for b in blobs {
        files.push(check(policy, b).await?);
    }
    Ok((batch, files))
}

/// The batch verdict as a plain JS object (the `BatchVerdict` interface).
pub fn batch_to_js(batch: &Result<(), Rejection>, files: &[Checked]) -> JsValue {
    let obj: JsValue = js_sys::Object::new().into();
    let all_ok = batch.is_ok() && files.iter().all(|f| f.verdict.is_ok());
    js::set(&obj, "ok", all_ok);
    match batch {
        Ok(()) => {
            js::set(&obj, "code", JsValue::NULL);
            let refused = files.iter().filter(|f| f.verdict.is_err()).count();
            let message = match refused {
                0 => format!("{} file(s) accepted.", files.len()),
                n => format!("{n} of {} file(s) refused.", files.len()),
            };
            js::set(&obj, "message", message);
        }
        Err(r) => {
            js::set(&obj, "code", r.reason.code());
            js::set(&obj, "message", r.message.as_str());
        }
    }
    let list = js_sys::Array::new();
    for f in files {
        list.push(&f.to_js());
    }
    js::set(&obj, "files", list);
    obj
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
