//! Resumption across runs: for each (endpoint, file) pair, the upload URL (or
//! the URLs of its parts) and the fingerprint of the file it was made for.
//!
//! One small JSON file per pair in the state directory, written atomically
//! (temporary file + rename), so a run killed at any moment leaves either the
//! old record or the new one. The fingerprint is the canonical path, size,
//! modification time, endpoint and a SHA-256 of the leading bytes: a file
//! changed since gets a fresh upload, never bytes appended to the old one.

use crate::source::LocalFile;
use serde::{Deserialize, Serialize};
use sluice_core::checksum::to_hex;
use sluice_core::Algorithm;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Identity of one file's content for resumption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The creation endpoint.
    pub endpoint: String,
    /// Canonical path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 when unknown).
    pub modified_ns: u128,
    /// SHA-256 (hex) of the leading bytes.
    pub leading_sha256: String,
}

impl Fingerprint {
    /// The fingerprint of `file` for uploads to `endpoint`.
    pub fn of(file: &LocalFile, endpoint: &str) -> Fingerprint {
        let mut h = Algorithm::Sha256.hasher();
        h.update(&file.leading);
        Fingerprint {
            endpoint: endpoint.to_string(),
            path: file.canonical.clone(),
            size: file.size,
            modified_ns: file.modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos()),
            leading_sha256: to_hex(&h.finalize()),
        }
    }

    /// The record's file name: a hash of endpoint and path (not of the content, so a changed
    /// file replaces its old record instead of leaving it behind).
    fn file_name(&self) -> String {
        let mut h = Algorithm::Sha256.hasher();
        h.update(self.endpoint.as_bytes());
        h.update(b"\n");
        h.update(self.path.as_os_str().as_encoded_bytes());
        format!("{}.json", &to_hex(&h.finalize())[..32])
    }
}

/// What is remembered about one file's upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The file it was made for.
    pub fingerprint: Fingerprint,
    /// The upload's URL (the final upload's, when sent in parts), once created.
    pub url: Option<String>,
    /// The partial uploads' URLs, in order, when sent in parts (empty otherwise).
    #[serde(default)]
    pub parts: Vec<Option<String>>,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The default: `sluice/uploads` in the user's cache directory (`$XDG_CACHE_HOME`,
    /// `~/.cache`, `~/Library/Caches`, `%LOCALAPPDATA%`).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("sluice").join("uploads"))
    }

    /// Where the state lives.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The record for this file, if one was kept *for the same content*.
    pub fn load(&self, fingerprint: &Fingerprint) -> Option<Record> {
        let text = std::fs::read(self.dir.join(fingerprint.file_name())).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        (record.fingerprint == *fingerprint).then_some(record)
    }

    /// The record kept for this endpoint and path whatever the content (to clean up after a change).
    pub fn load_stale(&self, fingerprint: &Fingerprint) -> Option<Record> {
        let text = std::fs::read(self.dir.join(fingerprint.file_name())).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Saves a record atomically. Failing to save only costs resumability, so the caller
    /// may go on; the error says why.
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let name = record.fingerprint.file_name();
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, self.dir.join(name))
    }

    /// Forgets the record for this endpoint and path.
    pub fn remove(&self, fingerprint: &Fingerprint) {
        let _ = std::fs::remove_file(self.dir.join(fingerprint.file_name()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_does_not_match_its_old_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, b"first content").unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let file = LocalFile::open(&path).unwrap();
        let fp = Fingerprint::of(&file, "http://h/files/");
        assert_eq!(state.load(&fp), None);
        let record = Record { fingerprint: fp.clone(), url: Some("http://h/files/1".into()), parts: vec![] };
        state.save(&record).unwrap();
        assert_eq!(state.load(&fp), Some(record.clone()));
        assert_eq!(state.load(&Fingerprint::of(&file, "http://other/files/")), None, "another endpoint");

        std::fs::write(&path, b"other content").unwrap(); // same size, new bytes
        let changed = Fingerprint::of(&LocalFile::open(&path).unwrap(), "http://h/files/");
        assert_ne!(changed, fp);
        assert_eq!(state.load(&changed), None);
        assert_eq!(state.load_stale(&changed), Some(record), "the old record is found for cleaning up");
        state.remove(&changed);
        assert_eq!(state.load_stale(&changed), None);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("state")).unwrap().collect();
        assert!(left.is_empty(), "no temporary files left: {left:?}");
    }
}
