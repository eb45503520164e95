//! The embedded default backend: the local file system.
//!
//! Layout under the data directory, one upload per id:
//!
//! ```text
//! uploads/{id}.bin      the bytes; its length is the upload's offset
//! uploads/{id}.json     the record: length, metadata, created_at, type, gone_at
//! uploads/{id}.pending  exists only while an all-or-nothing append runs: the
//!                       offset to roll back to if the process dies mid-way
//! ```
//!
//! The offset *is* the data file's length, so there is no second copy of it to
//! fall out of step: after a crash (even `kill -9` mid-append) every byte below
//! the offset is one that was written.
//!
//! **What an acknowledged offset guarantees.** By default bytes are in the
//! operating system's page cache when a PATCH is acknowledged: they survive
//! the process crashing or being killed, not necessarily a power loss or a
//! kernel crash (the file system may then come back with a shorter file, never
//! with wrong bytes below its length on ext4/xfs in their default modes, and
//! the client resumes from there). With [`FsStorage::durable`] (`--fsync`),
//! data is flushed with `fdatasync` before the append returns, and records
//! with their directory, so acknowledged bytes survive power loss too. Writes go through a fixed pair of
//! [`BLOCK`]-sized buffers: one fills from the network while the other is
//! written by the blocking pool, so memory per append is constant.

use super::{AppendMode, BodyStream, NewUpload, Result, Storage, StorageError, UploadInfo};
use crate::id::UploadId;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::{spawn_blocking, JoinHandle};

/// Size of each of an append's two write buffers, and of download reads.
pub const BLOCK: usize = 128 * 1024;

/// Local file system storage rooted at a data directory.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    durable: bool,
    buffers: Arc<BufferPool>,
}

/// Write buffers, reused: appends take two and give them back, so buffer
/// memory is exactly what admission allows and the heap does not churn.
#[derive(Debug, Default)]
struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(BLOCK))
    }

    fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(buffer);
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    length: Option<u64>,
    metadata: String,
    created_at: u64,
    #[serde(default)]
    file_type: Option<String>,
    #[serde(default)]
    gone_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

impl FsStorage {
    /// Opens (creating if needed) storage under `data_dir`, and repairs what a
    /// crash may have left: half-finished all-or-nothing appends are rolled
    /// back, stray temporary files removed.
    pub fn open(data_dir: impl AsRef<Path>) -> io::Result<FsStorage> {
        let dir = data_dir.as_ref().join("uploads");
        fs::create_dir_all(&dir)?;
        let storage = FsStorage { dir, durable: false, buffers: Arc::default() };
        storage.recover()?;
        Ok(storage)
    }

    /// Flushes data and records to stable storage before acknowledging
    /// (see the module docs): slower, but acknowledged bytes survive power loss.
    pub fn durable(mut self, durable: bool) -> FsStorage {
        self.durable = durable;
        self
    }

    /// The directory holding the upload files.
    pub fn uploads_dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &UploadId, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    fn recover(&self) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension()) else {
                continue;
            };
            if ext == "tmp" {
                fs::remove_file(&path)?;
                continue;
            }
            let Some(id) = UploadId::parse(stem) else { continue };
            if ext == "pending" {
                // The marker is written (atomically) before the append's first byte,
                // so one that cannot be read means no byte of that append was written.
                match fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                    Some(offset) => {
                        if let Ok(file) = OpenOptions::new().write(true).open(self.path(&id, "bin")) {
                            // Only ever shrink: never pad with zeros bytes that never arrived.
                            if file.metadata()?.len() > offset {
                                file.set_len(offset)?;
                            }
                        }
                        tracing::warn!(upload = %id, offset, "rolled back an all-or-nothing append cut by a crash");
                    }
                    None => tracing::warn!(upload = %id, "removed an unreadable rollback marker"),
                }
                fs::remove_file(&path)?;
            } else if ext == "bin" && !self.path(&id, "json").exists() {
                fs::remove_file(&path)?; // created but never recorded: no client knows this id
            }
        }
        Ok(())
    }

    fn read_record(&self, id: &UploadId) -> Result<Record> {
        let text = match fs::read(self.path(id, "json")) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let record: Record =
            serde_json::from_slice(&text).map_err(|e| io::Error::other(format!("record {id}: {e}")))?;
        if record.gone_at.is_some() {
            return Err(StorageError::Gone);
        }
        Ok(record)
    }

    fn write_record(&self, id: &UploadId, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        Ok(self.write_atomically(&self.path(id, "json"), &bytes)?)
    }

    /// Writes a small file so that it is either whole or absent after a crash
    /// (temporary file + rename), and durable first when `--fsync` is on.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or_default()));
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

    fn update_record(&self, id: &UploadId, change: impl FnOnce(&mut Record)) -> Result<()> {
        let mut record = self.read_record(id)?;
        change(&mut record);
        self.write_record(id, &record)
    }

    fn data_stat(&self, id: &UploadId) -> Result<fs::Metadata> {
        match fs::metadata(self.path(id, "bin")) {
            Ok(meta) => Ok(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::Gone),
            Err(e) => Err(e.into()),
        }
    }

    fn info_from(&self, id: &UploadId, record: Record) -> Result<UploadInfo> {
        let data = self.data_stat(id)?;
        let created_at = UNIX_EPOCH + Duration::from_secs(record.created_at);
        Ok(UploadInfo {
            id: id.clone(),
            offset: data.len(),
            length: record.length,
            metadata: record.metadata,
            created_at,
            modified_at: data.modified().unwrap_or(created_at),
            file_type: record.file_type,
            owner: record.owner,
        })
    }

    fn records(&self) -> Result<Vec<(UploadId, Record)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).and_then(UploadId::parse) else { continue };
            let Ok(text) = fs::read(&path) else { continue }; // removed meanwhile
            match serde_json::from_slice::<Record>(&text) {
                Ok(record) => out.push((id, record)),
                Err(e) => tracing::warn!(upload = %id, error = %e, "unreadable upload record skipped"),
            }
        }
        Ok(out)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[async_trait(?Send)]
impl Storage for FsStorage {
    async fn create(&self, upload: NewUpload) -> Result<UploadInfo> {
        OpenOptions::new().write(true).create_new(true).open(self.path(&upload.id, "bin"))?;
        let record = Record {
            length: upload.length,
            metadata: upload.metadata,
            created_at: unix_now(),
            file_type: None,
            gone_at: None,
            owner: upload.owner,
        };
        self.write_record(&upload.id, &record)?;
        self.info_from(&upload.id, record)
    }

    async fn info(&self, id: &UploadId) -> Result<UploadInfo> {
        let record = self.read_record(id)?;
        self.info_from(id, record)
    }

    async fn append(&self, id: &UploadId, offset: u64, body: BodyStream<'_>, mode: AppendMode) -> Result<u64> {
        self.read_record(id)?;
        let file = match OpenOptions::new().append(true).open(self.path(id, "bin")) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::Gone),
            Err(e) => return Err(e.into()),
        };
        let actual = file.metadata()?.len();
        if actual != offset {
            return Err(StorageError::OffsetMismatch { actual });
        }
        let pending = self.path(id, "pending");
        if mode == AppendMode::AllOrNothing {
            self.write_atomically(&pending, offset.to_string().as_bytes())?;
        }
        let mut writer = BlockWriter::new(file, self.buffers.clone());
        let mut stopped = false;
        let mut failure = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(bytes) => {
                    if let Err(e) = writer.push(&bytes).await {
                        // Stop at once: writing on past a failed block would leave a gap.
                        failure = Some(e);
                        break;
                    }
                }
                Err(_) => {
                    stopped = true;
                    break;
                }
            }
        }
        if failure.is_none() {
            failure = match writer.finish().await {
                Ok(file) if self.durable => sync_data(file).await.err(),
                Ok(_) => None,
                Err(e) => Some(e),
            };
        }
        let data = self.path(id, "bin");
        if mode == AppendMode::AllOrNothing {
            if stopped || failure.is_some() {
                OpenOptions::new().write(true).open(&data)?.set_len(offset)?;
            }
            fs::remove_file(&pending)?;
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok(fs::metadata(&data)?.len())
    }

    async fn declare_length(&self, id: &UploadId, length: u64) -> Result<()> {
        self.update_record(id, |r| r.length = Some(length))
    }

    async fn read_head(&self, id: &UploadId, max: usize) -> Result<Vec<u8>> {
        self.read_record(id)?;
        let file = File::open(self.path(id, "bin")).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StorageError::Gone,
            _ => e.into(),
        })?;
        let mut head = Vec::with_capacity(max);
        file.take(max as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    async fn set_file_type(&self, id: &UploadId, mime: &str) -> Result<()> {
        self.update_record(id, |r| r.file_type = Some(mime.to_string()))
    }

    async fn read(&self, id: &UploadId) -> Result<Pin<Box<dyn Stream<Item = io::Result<Bytes>>>>> {
        self.read_record(id)?;
        let file = File::open(self.path(id, "bin"))?;
        let chunks = futures_util::stream::try_unfold(Some(file), |file| async move {
            let Some(mut file) = file else { return Ok(None) };
            let (file, chunk) = spawn_blocking(move || {
                let mut buf = BytesMut::zeroed(BLOCK);
                let n = file.read(&mut buf)?;
                buf.truncate(n);
                Ok::<_, io::Error>((file, buf.freeze()))
            })
            .await
            .map_err(io::Error::other)??;
            Ok(if chunk.is_empty() { None } else { Some((chunk, Some(file))) })
        });
        Ok(Box::pin(chunks))
    }

    async fn terminate(&self, id: &UploadId) -> Result<()> {
        self.read_record(id)?;
        match fs::remove_file(self.path(id, "bin")) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.update_record(id, |r| r.gone_at = Some(unix_now()))
    }

    async fn stale(&self, cutoff: SystemTime) -> Result<Vec<UploadId>> {
        let mut stale = Vec::new();
        for (id, record) in self.records()? {
            if record.gone_at.is_some() {
                continue;
            }
            let Ok(info) = self.info_from(&id, record) else { continue };
            if !info.is_complete() && info.modified_at < cutoff {
                stale.push(id);
            }
        }
        Ok(stale)
    }

    fn append_memory(&self) -> u64 {
        2 * BLOCK as u64
    }

    async fn available_space(&self) -> Option<u64> {
        fs4::available_space(&self.dir).ok()
    }

    async fn check_writable(&self) -> Result<()> {
        let probe = self.dir.join(".probe.tmp");
        fs::write(&probe, b"ok")?;
        fs::remove_file(probe)?;
        Ok(())
    }

    async fn purge_tombstones(&self, cutoff: SystemTime) -> Result<usize> {
        let cutoff = cutoff.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut purged = 0;
        for (id, record) in self.records()? {
            if record.gone_at.is_some_and(|gone| gone < cutoff) {
                fs::remove_file(self.path(&id, "json"))?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

/// `fdatasync` on the blocking pool (it can take long on a busy disk).
async fn sync_data(file: File) -> io::Result<()> {
    spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other)?
}

/// A block write on the blocking pool: it hands back the file and the buffer.
type BlockWrite = JoinHandle<(File, Vec<u8>, io::Result<()>)>;

/// Writes a stream of byte slices through two fixed buffers: one fills while
/// the other is written on the blocking pool.
struct BlockWriter {
    file: Option<File>,
    filling: Vec<u8>,
    spare: Option<Vec<u8>>,
    in_flight: Option<BlockWrite>,
    pool: Arc<BufferPool>,
}

impl BlockWriter {
    fn new(file: File, pool: Arc<BufferPool>) -> BlockWriter {
        BlockWriter { file: Some(file), filling: pool.take(), spare: None, in_flight: None, pool }
    }

    async fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (BLOCK - self.filling.len()).min(data.len());
            self.filling.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.filling.len() == BLOCK {
                self.submit().await?;
            }
        }
        Ok(())
    }

    async fn wait(&mut self) -> io::Result<()> {
        let Some(task) = self.in_flight.take() else { return Ok(()) };
        let (file, mut block, result) = task.await.map_err(io::Error::other)?;
        self.file = Some(file);
        block.clear();
        self.spare = Some(block);
        result
    }

    async fn submit(&mut self) -> io::Result<()> {
        self.wait().await?;
        let next = self.spare.take().unwrap_or_else(|| self.pool.take());
        let block = std::mem::replace(&mut self.filling, next);
        let mut file = self.file.take().ok_or_else(|| io::Error::other("block writer lost its file"))?;
        self.in_flight = Some(spawn_blocking(move || {
            let result = file.write_all(&block);
            (file, block, result)
        }));
        Ok(())
    }

    /// Writes what is buffered and waits for every write to land.
    async fn finish(mut self) -> io::Result<File> {
        // (Drop gives the buffers back to the pool.)
        if !self.filling.is_empty() {
            self.submit().await?;
        }
        self.wait().await?;
        self.file.take().ok_or_else(|| io::Error::other("block writer lost its file"))
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.filling));
        if let Some(spare) = self.spare.take() {
            self.pool.give(spare);
        }
    }
}
