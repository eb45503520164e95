//! Records as small JSON files, one per upload, replaced atomically.

use super::bytes::FsBytes;
use super::parsed::{Parsed, Stamp};
use crate::id::UploadId;
use crate::store::{
    to_millis, Kind, OpenUsage, Protocol, RecordStore, Result, State, StoreError, UploadRecord, UsageIndex,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sluice_core::tus::Metadata;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Commits are compare-and-set; each id maps to one of these locks for the
/// read-compare-write (striped, so unrelated uploads rarely wait on each other).
const STRIPES: usize = 64;

/// Space set aside so that records can still be committed when the disk fills up
/// (bytes that made it to disk are then acknowledged, and the upload resumes once
/// space is freed). Given back when a write finds the disk full; taken again later.
const RESERVE: u64 = 1 << 20;

/// Upload records under `uploads/`.
#[derive(Debug)]
pub struct FsRecords {
    dir: PathBuf,
    durable: bool,
    stripes: Vec<Mutex<()>>,
    usage: UsageIndex,
    reserve_spent: AtomicBool,
    parsed: Parsed<UploadId, Doc>,
}

/// A record file: the record, and when it went away (a tombstone).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Doc {
    record: UploadRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gone_at: Option<u64>,
}

/// A record as the first version of Sluice wrote it (offset = data file length).
#[derive(Deserialize)]
struct LegacyDoc {
    length: Option<u64>,
    metadata: String,
    created_at: u64,
    #[serde(default)]
    file_type: Option<String>,
    #[serde(default)]
    gone_at: Option<u64>,
    #[serde(default)]
    owner: Option<String>,
}

impl FsRecords {
    pub(super) fn open(dir: &Path, durable: bool) -> io::Result<FsRecords> {
        let records = FsRecords {
            dir: dir.to_path_buf(),
            durable,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            usage: UsageIndex::default(),
            reserve_spent: AtomicBool::new(true),
            parsed: Parsed::default(),
        };
        records.retake_reserve();
        Ok(records)
    }

    fn reserve_path(&self) -> PathBuf {
        self.dir.join(".reserve")
    }

    /// Sets the reserve aside again if it was given back and the disk has room.
    fn retake_reserve(&self) {
        if !self.reserve_spent.load(Ordering::Relaxed) {
            return;
        }
        let taken = File::create(self.reserve_path()).and_then(|f| fs4::FileExt::allocate(&f, RESERVE));
        match taken {
            Ok(()) => self.reserve_spent.store(false, Ordering::Relaxed),
            Err(_) => {
                let _ = fs::remove_file(self.reserve_path());
            }
        }
    }

    fn path(&self, id: &UploadId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn stripe(&self, id: &UploadId) -> std::sync::MutexGuard<'_, ()> {
        let index = id.as_str().bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
        self.stripes[index % STRIPES].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The record file, parsed (a parse of the same file is reused: see `parsed.rs`).
    fn read_doc(&self, id: &UploadId) -> Result<Doc> {
        let reading = self.parsed.reading();
        let stamp = Stamp::of(&fs::metadata(self.path(id)).map_err(missing_or_io)?);
        if let Some(doc) = self.parsed.get(id, stamp) {
            return Ok(doc);
        }
        let doc = self.parse(id)?;
        self.parsed.keep(id.clone(), stamp, doc.clone(), reading);
        Ok(doc)
    }

    /// The record file, read and parsed afresh.
    fn parse(&self, id: &UploadId) -> Result<Doc> {
        let text = fs::read(self.path(id)).map_err(missing_or_io)?;
        serde_json::from_slice(&text).map_err(|e| StoreError::Io(io::Error::other(format!("record {id}: {e}"))))
    }

    fn read_live(&self, id: &UploadId) -> Result<UploadRecord> {
        let doc = self.read_doc(id)?;
        if doc.gone_at.is_some() {
            return Err(StoreError::Gone);
        }
        Ok(doc.record)
    }

    fn write_doc(&self, doc: &Doc) -> Result<()> {
        let bytes = serde_json::to_vec(doc).map_err(io::Error::other)?;
        let path = self.path(&doc.record.id);
        self.parsed.forget(&doc.record.id);
        match self.write_atomically(&path, &bytes) {
            Err(e) if e.kind() == io::ErrorKind::StorageFull && !self.reserve_spent.swap(true, Ordering::Relaxed) => {
                tracing::warn!("disk full: records now use the space set aside for them");
                fs::remove_file(self.reserve_path())?;
                Ok(self.write_atomically(&path, &bytes)?)
            }
            Err(e) => Err(e.into()),
            Ok(()) => {
                self.retake_reserve();
                Ok(())
            }
        }
    }

    /// Writes a small file so that it is either whole or absent after a crash
    /// (temporary file + rename), and durable first when `--fsync` is on.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if self.durable {
            file.sync_all()?;
        }
        fs::rename(tmp, path)?;
        if self.durable {
            File::open(&self.dir)?.sync_all()?; // the rename itself
        }
        Ok(())
    }

    /// Every record file, tombstones included; unreadable ones are skipped with a warning.
    fn docs(&self) -> Result<Vec<Doc>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).and_then(UploadId::parse) else { continue };
            // Read afresh: a sweep over every record would only churn the kept parses.
            match self.parse(&id) {
                Ok(doc) => out.push(doc),
                Err(StoreError::NotFound) => {} // removed meanwhile
                Err(e) => tracing::warn!(upload = %id, error = %e, "unreadable upload record skipped"),
            }
        }
        Ok(out)
    }

    /// Start-up repair against the data files (see the module docs), first-version
    /// records rewritten in today's form, and the usage index rebuilt.
    pub(super) fn reconcile(&self, bytes: Option<&FsBytes>) -> io::Result<()> {
        self.reconcile_all(bytes).map_err(|(path, e)| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// [`Self::reconcile`], with the path that failed.
    fn reconcile_all(&self, bytes: Option<&FsBytes>) -> std::result::Result<(), (PathBuf, io::Error)> {
        let at = |path: &Path| {
            let path = path.to_path_buf();
            move |e| (path, e)
        };
        for entry in fs::read_dir(&self.dir).map_err(at(&self.dir))? {
            let path = entry.map_err(at(&self.dir))?.path();
            let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension()) else {
                continue;
            };
            if ext == "tmp" {
                // A half-written record. Repairing its record (below, in any order) writes
                // through the same temporary name, so it may be gone already.
                remove_if_present(&path).map_err(at(&path))?;
                continue;
            }
            let Some(id) = UploadId::parse(stem.trim_end_matches(".json")) else { continue };
            if ext == "bin" && bytes.is_some() && !self.path(&id).exists() {
                remove_if_present(&path).map_err(at(&path))?; // created but never recorded: no client knows this id
            } else if ext == "json" {
                self.reconcile_one(&id, bytes).map_err(at(&path))?;
            }
        }
        Ok(())
    }

    /// Repairs one record against its data file (`bytes`; `None` when the bytes live
    /// elsewhere, and only the usage index is built).
    fn reconcile_one(&self, id: &UploadId, bytes: Option<&FsBytes>) -> io::Result<()> {
        let text = fs::read(self.path(id))?;
        let mut doc = match serde_json::from_slice::<Doc>(&text) {
            Ok(doc) => doc,
            Err(_) => match serde_json::from_slice::<LegacyDoc>(&text) {
                Ok(legacy) => {
                    let stored = bytes.map(|b| b.stored_len(id)).transpose()?.flatten();
                    let doc = upgrade(id, legacy, stored.unwrap_or(0));
                    self.write_doc(&doc).map_err(io::Error::other)?;
                    doc
                }
                Err(e) => {
                    tracing::warn!(upload = %id, error = %e, "unreadable upload record left alone");
                    return Ok(());
                }
            },
        };
        let Some(bytes) = bytes else {
            self.usage.update(&doc.record);
            return Ok(());
        };
        let marker = bytes.marker(id);
        let rolled_back = marker.exists();
        if rolled_back {
            fs::remove_file(&marker)?;
        }
        if doc.gone_at.is_some() {
            return Ok(());
        }
        let record = &mut doc.record;
        let stored = bytes.stored_len(id)?.unwrap_or(0);
        if stored < record.offset {
            tracing::warn!(upload = %id, recorded = record.offset, stored, "data lost (power loss?): resuming from what is stored");
            record.offset = stored;
            record.state = State::Receiving;
            record.head.truncate(usize::try_from(stored).unwrap_or(usize::MAX));
            self.write_doc(&doc).map_err(io::Error::other)?;
        } else if stored > record.offset {
            // An append the process did not live to commit. Its bytes arrived in order,
            // so they are kept (as a client would expect of a cut connection), unless it
            // was all or nothing (a checksummed chunk, its marker still there) or the
            // upload is finished.
            let keep = if rolled_back || record.is_complete() {
                record.offset
            } else {
                stored.min(record.length.unwrap_or(u64::MAX))
            };
            if keep > record.offset {
                tracing::info!(upload = %id, from = record.offset, to = keep, "kept bytes received before a crash");
                record.offset = keep;
                record.head = bytes.leading(id, keep.min(sluice_core::SNIFF_LEN as u64))?;
                self.write_doc(&doc).map_err(io::Error::other)?;
            }
            if stored > keep {
                bytes.truncate(id, keep)?;
            }
        }
        self.usage.update(&doc.record);
        Ok(())
    }
}

/// A first-version record in today's form: its offset was its data file's length.
fn upgrade(id: &UploadId, legacy: LegacyDoc, stored: u64) -> Doc {
    let metadata = Metadata::parse(&legacy.metadata).unwrap_or_default();
    let protocol = match metadata.get_str("sluice_protocol") {
        Some("form") => Protocol::Form,
        Some("flow") => Protocol::Flow,
        _ => Protocol::Tus,
    };
    let mut record = UploadRecord::new(id.clone(), protocol, Kind::Whole, legacy.length, metadata);
    record.created_at = UNIX_EPOCH + Duration::from_secs(legacy.created_at);
    record.modified_at = record.created_at;
    record.offset = stored;
    record.owner = legacy.owner;
    record.file_type = legacy.file_type;
    if record.has_all_bytes() {
        record.state = State::Complete;
    }
    Doc { record, gone_at: legacy.gone_at }
}

fn unix_millis_now() -> u64 {
    to_millis(SystemTime::now())
}

/// A record file that is not there is an unknown upload; any other failure is the disk's.
fn missing_or_io(e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound,
        _ => e.into(),
    }
}

#[async_trait(?Send)]
impl RecordStore for FsRecords {
    async fn insert(&self, record: &UploadRecord) -> Result<()> {
        let _stripe = self.stripe(&record.id);
        if self.path(&record.id).exists() {
            return Err(StoreError::Exists);
        }
        self.write_doc(&Doc { record: record.clone(), gone_at: None })?;
        self.usage.update(record);
        Ok(())
    }

    async fn get(&self, id: &UploadId) -> Result<UploadRecord> {
        self.read_live(id)
    }

    async fn commit(&self, record: &UploadRecord, expected_offset: u64) -> Result<()> {
        let _stripe = self.stripe(&record.id);
        let stored = self.read_live(&record.id)?;
        if stored.fence > record.fence {
            return Err(StoreError::Fenced);
        }
        if stored.offset != expected_offset {
            return Err(StoreError::OffsetMismatch { actual: stored.offset });
        }
        self.write_doc(&Doc { record: record.clone(), gone_at: None })?;
        self.usage.update(record);
        Ok(())
    }

    async fn mark_gone(&self, id: &UploadId) -> Result<()> {
        let _stripe = self.stripe(id);
        let mut doc = self.read_doc(id)?;
        if doc.gone_at.is_some() {
            return Err(StoreError::Gone);
        }
        doc.gone_at = Some(unix_millis_now());
        self.write_doc(&doc)?;
        self.usage.remove(id);
        Ok(())
    }

    async fn stale(&self, cutoff: SystemTime) -> Result<Vec<UploadId>> {
        Ok(self
            .docs()?
            .into_iter()
            .filter(|doc| doc.gone_at.is_none() && !doc.record.is_complete() && doc.record.modified_at < cutoff)
            .map(|doc| doc.record.id)
            .collect())
    }

    async fn purge_tombstones(&self, cutoff: SystemTime) -> Result<usize> {
        let cutoff = to_millis(cutoff);
        let mut purged = 0;
        for doc in self.docs()? {
            if doc.gone_at.is_some_and(|gone| gone < cutoff) {
                let _stripe = self.stripe(&doc.record.id);
                fs::remove_file(self.path(&doc.record.id))?;
                self.parsed.forget(&doc.record.id);
                purged += 1;
            }
        }
        Ok(purged)
    }

    async fn open_usage(&self, client: &str) -> Result<OpenUsage> {
        Ok(self.usage.client(client))
    }

    async fn promised_bytes(&self) -> Result<u64> {
        Ok(self.usage.promised())
    }

    async fn check(&self) -> Result<()> {
        fs::metadata(&self.dir)?;
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
