//! The spool: local files where an append stages a part until it is full.
//!
//! Spool files are unlinked as soon as they are created, so a crash leaves nothing
//! behind to clean up and nothing here is ever the only copy of an acknowledged byte:
//! the object store is. After an append, its last staging file (the bytes of the
//! upload's incomplete part, also pushed to the store) is kept open for the next
//! append of the same upload, which reuses it when the store's copy still has the
//! same ETag instead of downloading it again.

use crate::id::UploadId;
use crate::store::fs::{BlockWriter, Pacer};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Incomplete parts kept open between appends (each costs one descriptor and up to a
/// part of disk).
const KEPT: usize = 64;

/// A file holding the incomplete part `index` of an upload, as pushed with `etag`.
#[derive(Debug)]
pub(super) struct Kept {
    /// The part's index (0-based).
    pub index: u64,
    /// Bytes of the part it holds.
    pub len: u64,
    /// The ETag of the store's copy.
    pub etag: String,
    /// The file.
    pub file: Arc<File>,
}

/// Staging files under one directory.
#[derive(Debug)]
pub(super) struct Spool {
    dir: PathBuf,
    pacer: Arc<Pacer>,
    kept: Mutex<HashMap<UploadId, Kept>>,
    serial: AtomicU64,
}

impl Spool {
    /// Opens the spool in `dir` (created if missing), removing files a crashed
    /// process left behind (every acknowledged byte is in the object store).
    pub(super) fn open(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut removed = 0;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "spool") {
                std::fs::remove_file(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %dir.display(), "spool: removed staging files of a previous run");
        }
        let probe = dir.join(".probe.spool");
        std::fs::write(&probe, b"ok")?;
        std::fs::remove_file(probe)?;
        Ok(Spool { dir: dir.to_path_buf(), pacer: Arc::default(), kept: Mutex::default(), serial: AtomicU64::new(0) })
    }

    /// A new, empty staging file (already unlinked).
    pub(super) fn create(&self) -> io::Result<File> {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{}-{serial}.spool", std::process::id()));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(file)
    }

    /// A writer appending to `file` (at most two blocks' worth of chunks held).
    pub(super) fn writer(&self, file: File) -> BlockWriter {
        BlockWriter::new(file, self.pacer.clone())
    }

    /// The kept incomplete part of `id`, if it is part `index` with this `etag` and at
    /// least `len` bytes: a writable copy of its file, cut to `len` and positioned there.
    pub(super) fn reuse(&self, id: &UploadId, index: u64, etag: &str, len: u64) -> io::Result<Option<File>> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        let Some(kept) = kept else { return Ok(None) };
        if kept.index != index || kept.etag != etag || kept.len < len {
            return Ok(None);
        }
        let mut file = kept.file.try_clone()?;
        file.set_len(len)?;
        file.seek(SeekFrom::Start(len))?;
        Ok(Some(file))
    }

    /// Keeps `id`'s incomplete part for its next append.
    pub(super) fn keep(&self, id: &UploadId, kept: Kept) {
        let mut map = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= KEPT && !map.contains_key(id) {
            // Any one: the next append of that upload downloads its part again.
            if let Some(evicted) = map.keys().next().cloned() {
                map.remove(&evicted);
            }
        }
        map.insert(id.clone(), kept);
    }

    /// The index of `id`'s kept part.
    pub(super) fn kept_index(&self, id: &UploadId) -> Option<u64> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).get(id).map(|k| k.index)
    }

    /// The index of `id`'s kept part, forgetting it.
    pub(super) fn forget(&self, id: &UploadId) -> Option<u64> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).remove(id).map(|k| k.index)
    }
}
