//! Upload bytes as one data file per upload.

use super::writer::{sync_data, BlockWriter, Pacer, BLOCK};
use crate::id::UploadId;
use crate::store::{AppendMode, BodyStream, ByteStore, ByteStream, Fence, Result, StoreError};
use async_trait::async_trait;
use bytes::BytesMut;
use futures_util::StreamExt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::spawn_blocking;

/// Data files under `uploads/`.
#[derive(Debug)]
pub struct FsBytes {
    dir: PathBuf,
    durable: bool,
    pacer: Arc<Pacer>,
}

fn gone_if_missing(e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::Gone,
        _ => e.into(),
    }
}

impl FsBytes {
    pub(super) fn new(dir: &Path, durable: bool) -> FsBytes {
        FsBytes { dir: dir.to_path_buf(), durable, pacer: Arc::default() }
    }

    /// The directory holding the data files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &UploadId) -> PathBuf {
        self.dir.join(format!("{id}.bin"))
    }

    /// The marker that exists only while an all-or-nothing append runs: after a
    /// crash, its bytes are rolled back rather than kept.
    pub(super) fn marker(&self, id: &UploadId) -> PathBuf {
        self.dir.join(format!("{id}.pending"))
    }

    /// The data file's length, `None` if there is none.
    pub(super) fn stored_len(&self, id: &UploadId) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(id)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Up to `max` leading bytes of the data file.
    pub(super) fn leading(&self, id: &UploadId, max: u64) -> io::Result<Vec<u8>> {
        let mut head = Vec::new();
        File::open(self.path(id))?.take(max).read_to_end(&mut head)?;
        Ok(head)
    }

    pub(super) fn truncate(&self, id: &UploadId, len: u64) -> io::Result<()> {
        OpenOptions::new().write(true).open(self.path(id))?.set_len(len)
    }

    /// Opens the data file for writing at `offset`, dropping bytes stored past it.
    fn open_at(&self, id: &UploadId, offset: u64) -> Result<File> {
        let mut file = OpenOptions::new().write(true).open(self.path(id)).map_err(gone_if_missing)?;
        let stored = file.metadata()?.len();
        if stored < offset {
            return Err(StoreError::OffsetMismatch { actual: stored });
        }
        if stored > offset {
            file.set_len(offset)?; // bytes never acknowledged
        }
        file.seek(SeekFrom::Start(offset))?;
        Ok(file)
    }
}

#[async_trait(?Send)]
impl ByteStore for FsBytes {
    async fn create(&self, id: &UploadId) -> Result<()> {
        match OpenOptions::new().write(true).create_new(true).open(self.path(id)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists),
            Err(e) => Err(e.into()),
        }
    }

    async fn append(
        &self,
        id: &UploadId,
        offset: u64,
        body: BodyStream<'_>,
        mode: AppendMode,
        _fence: Fence,
    ) -> Result<u64> {
        // One process writes these files, and the lock table keeps one writer per
        // upload: the record's compare-and-set is the fence that matters here.
        let file = self.open_at(id, offset)?;
        let marker = self.marker(id);
        if mode == AppendMode::AllOrNothing {
            fs::write(&marker, b"")?;
            if self.durable {
                File::open(&self.dir)?.sync_all()?;
            }
        }
        let mut writer = BlockWriter::new(file, self.pacer.clone());
        let mut written = 0u64;
        let mut stopped = false;
        let mut failure = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(bytes) => {
                    let len = bytes.len() as u64;
                    if let Err(e) = writer.push(bytes).await {
                        // Stop at once: writing on past a failed block would leave a gap.
                        failure = Some(e);
                        break;
                    }
                    written += len;
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
        let kept = if mode == AppendMode::AllOrNothing && (stopped || failure.is_some()) {
            self.truncate(id, offset)?;
            offset
        } else {
            offset + written
        };
        if mode == AppendMode::AllOrNothing {
            fs::remove_file(&marker)?;
        }
        match failure {
            None => Ok(kept),
            Some(e) => {
                let end = self.stored_len(id)?.unwrap_or(offset);
                let cause = StoreError::from(e);
                if mode == AppendMode::KeepPartial && end > offset {
                    Err(StoreError::Partial { end, cause: Box::new(cause) })
                } else {
                    Err(cause)
                }
            }
        }
    }

    async fn finish(&self, id: &UploadId, length: u64) -> Result<()> {
        // Bytes past the length (never acknowledged) cannot exist once it is final.
        let stored = self.stored_len(id)?.ok_or(StoreError::Gone)?;
        if stored > length {
            self.truncate(id, length)?;
        }
        Ok(())
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<bool> {
        let target = self.path(id);
        let sources: Vec<(PathBuf, u64)> = parts.iter().map(|(part, len)| (self.path(part), *len)).collect();
        let durable = self.durable;
        // std's io::copy between files uses copy_file_range on Linux: the kernel moves
        // (or, on btrfs/xfs, reflinks) the bytes without bringing them to user space.
        spawn_blocking(move || -> Result<()> {
            let mut out = OpenOptions::new().write(true).open(&target).map_err(gone_if_missing)?;
            out.set_len(0)?;
            for (source, len) in sources {
                let file = File::open(&source).map_err(gone_if_missing)?;
                let copied = io::copy(&mut file.take(len), &mut out)?;
                if copied != len {
                    return Err(StoreError::Io(io::Error::other(format!(
                        "{} holds {copied} of its {len} bytes",
                        source.display()
                    ))));
                }
            }
            if durable {
                out.sync_data()?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)??;
        Ok(true)
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream> {
        let mut file = File::open(self.path(id)).map_err(gone_if_missing)?;
        file.seek(SeekFrom::Start(range.start))?;
        let left = range.end.saturating_sub(range.start);
        let chunks = futures_util::stream::try_unfold((file, left), |(mut file, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = usize::try_from(left).unwrap_or(BLOCK).min(BLOCK);
            let (file, chunk) = spawn_blocking(move || {
                let mut buf = BytesMut::zeroed(want);
                let n = file.read(&mut buf)?;
                buf.truncate(n);
                Ok::<_, io::Error>((file, buf.freeze()))
            })
            .await
            .map_err(io::Error::other)??;
            if chunk.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "data file shorter than its record"));
            }
            let left = left - chunk.len() as u64;
            Ok(Some((chunk, (file, left))))
        });
        Ok(Box::pin(chunks))
    }

    async fn delete(&self, id: &UploadId) -> Result<()> {
        match fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
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
}
