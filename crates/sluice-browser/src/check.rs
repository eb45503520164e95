//! Checking files against a policy before a byte is sent. Every decision is
//! the core crate's; this module only gathers what it needs from a `Blob`:
//! the name, the size, and at most [`SNIFF_LEN`] leading bytes.

use crate::api::{BatchVerdict, Verdict};
use crate::blob;
use crate::error::Result;
use sluice_core::units::format_size;
use sluice_core::{FileType, Policy, Rejection, SNIFF_LEN};
use wasm_bindgen::JsCast;
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
    /// The verdict as the JS API shows it.
    pub fn verdict(&self) -> Verdict {
        let (code, message, mime, label) = match &self.verdict {
            Ok(kind) => {
                let message = format!("{} ({}): accepted.", capitalise(kind.label), format_size(self.info.size));
                (None, message, Some(kind.mime.to_string()), Some(kind.label.to_string()))
            }
            Err(r) => (Some(r.reason.code().to_string()), r.message.clone(), None, None),
        };
        Verdict {
            ok: self.verdict.is_ok(),
            code,
            message,
            name: self.info.name.clone(),
            size: self.info.size as f64,
            mime,
            label,
        }
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

/// The batch verdict as the JS API shows it.
pub fn batch_verdict(batch: &Result<(), Rejection>, files: &[Checked]) -> BatchVerdict {
    let ok = batch.is_ok() && files.iter().all(|f| f.verdict.is_ok());
    let (code, message) = match batch {
        Ok(()) => {
            let message = match files.iter().filter(|f| f.verdict.is_err()).count() {
                0 => format!("{} file(s) accepted.", files.len()),
                n => format!("{n} of {} file(s) refused.", files.len()),
            };
            (None, message)
        }
        Err(r) => (Some(r.reason.code().to_string()), r.message.clone()),
    };
    BatchVerdict { ok, code, message, files: files.iter().map(Checked::verdict).collect() }
}

/// `"pdf document"` → `"Pdf document"`: the first letter upper-case.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
