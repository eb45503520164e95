//! One append to an S3 upload: stage in the spool, upload each part as it fills,
//! push the incomplete rest before returning.
//!
//! With [`AppendMode::KeepPartial`] a part is uploaded as soon as it is full, while the
//! body keeps filling the next one (one upload in flight at a time, so the spool holds
//! at most two parts per append). With [`AppendMode::AllOrNothing`] the whole body is
//! staged and only sent once it ended well (its checksum verified): a failed chunk
//! leaves the store as it was.

use super::client::Body;
use super::spool::Kept;
use super::{part_number, S3Bytes, UploadState};
use crate::id::UploadId;
use crate::store::fs::BlockWriter;
use crate::store::{AppendMode, BodyStream, Result, StoreError};
use futures_util::StreamExt;
use std::fs::File;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A part upload running in the background.
type InFlight = JoinHandle<Result<u64>>;

pub(super) struct Append<'a> {
    store: &'a S3Bytes,
    id: &'a UploadId,
    state: &'a UploadState,
    offset: u64,
    mode: AppendMode,
}

/// The part being filled: part `index`, `len` bytes of it in the spool file.
struct Stage {
    index: u64,
    len: u64,
    writer: BlockWriter,
}

impl<'a> Append<'a> {
    pub(super) fn new(
        store: &'a S3Bytes,
        id: &'a UploadId,
        state: &'a UploadState,
        offset: u64,
        mode: AppendMode,
    ) -> Append<'a> {
        Append { store, id, state, offset, mode }
    }

    pub(super) async fn run(self, body: BodyStream<'_>) -> Result<u64> {
        let size = self.state.part_size;
        let index = self.offset / size;
        let need = self.offset - index * size;
        let file = self.begin(index, need).await?;
        let mut stage = Stage { index, len: need, writer: self.store.spool.writer(file) };
        let keep_partial = self.mode == AppendMode::KeepPartial;

        let mut in_flight: Option<InFlight> = None;
        // Where the parts uploaded by this append end (contiguous from the start).
        let mut uploaded_end = self.offset;
        let mut received = 0u64;
        let mut stopped = false;
        let mut failure: Option<StoreError> = None;
        'body: while let Some(item) = body.next().await {
            let Ok(mut bytes) = item else {
                stopped = true;
                break;
            };
            while !bytes.is_empty() {
                let room = if keep_partial { size - stage.len } else { u64::MAX };
                let chunk = bytes.split_to(usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len()));
                let len = chunk.len() as u64;
                if let Err(e) = stage.writer.push(chunk).await {
                    failure = Some(e.into());
                    break 'body;
                }
                stage.len += len;
                received += len;
                if keep_partial && stage.len == size {
                    if let Err(e) = self.rotate(&mut stage, &mut in_flight, &mut uploaded_end).await {
                        failure = Some(e);
                        break 'body;
                    }
                }
            }
        }
        let file = if failure.is_none() {
            match stage.writer.finish().await {
                Ok(file) => Some(file),
                Err(e) => {
                    failure = Some(e.into());
                    None
                }
            }
        } else {
            None
        };
        if let Some(upload) = in_flight.take() {
            match upload.await.map_err(|e| StoreError::Io(std::io::Error::other(e)))? {
                Ok(end) => uploaded_end = end,
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let file = match (failure, file) {
            (None, Some(file)) if keep_partial || !stopped => file,
            (None, _) => return Ok(self.offset), // an all-or-nothing body that stopped: nothing kept
            (Some(e), _) => return Err(self.failed(uploaded_end, e)),
        };
        if received == 0 {
            return Ok(self.offset);
        }
        let end = self.offset + received;
        match self.flush(Arc::new(file), stage.index, stage.len).await {
            Ok(()) => Ok(end),
            Err(e) => Err(self.failed(uploaded_end, e)),
        }
    }

    /// A spool file holding the first `need` bytes of part `index` (the bytes below the
    /// offset), positioned after them.
    async fn begin(&self, index: u64, need: u64) -> Result<File> {
        let spool = &self.store.spool;
        if let Some(kept) = spool.kept_index(self.id) {
            if kept < index {
                // Its offset is committed past that part: the incomplete part is obsolete.
                spool.forget(self.id);
                if let Err(e) = self.store.client.delete(&self.store.tail_key(self.id, kept)).await {
                    tracing::debug!(upload = %self.id, error = %e, "could not delete an obsolete incomplete part");
                }
            }
        }
        if need == 0 {
            return Ok(spool.create()?);
        }
        let key = self.store.tail_key(self.id, index);
        let info = self.store.client.head(&key).await?;
        let Some(info) = info.filter(|info| info.size >= need) else {
            let held = self.store.client.head(&key).await?.map_or(0, |i| i.size);
            return Err(StoreError::OffsetMismatch { actual: index * self.state.part_size + held });
        };
        self.store.incomplete_part(self.id, index, &info.etag, need).await
    }

    /// Sends the full part being staged (after the one in flight, if any) and starts the next.
    async fn rotate(&self, stage: &mut Stage, in_flight: &mut Option<InFlight>, uploaded_end: &mut u64) -> Result<()> {
        let next = self.store.spool.writer(self.store.spool.create()?);
        let writer = std::mem::replace(&mut stage.writer, next);
        let file = Arc::new(writer.finish().await?);
        if let Some(previous) = in_flight.take() {
            *uploaded_end = previous.await.map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        }
        let size = self.state.part_size;
        let index = stage.index;
        let number = part_number(index)?;
        let client = self.store.client.clone();
        let key = self.store.object_key(self.id);
        let upload_id = self.state.upload_id.clone();
        *in_flight = Some(actix_web::rt::spawn(async move {
            client.upload_part(&key, &upload_id, number, Body::File(file, 0..size)).await?.ok_or(StoreError::Gone)?;
            Ok((index + 1) * size)
        }));
        stage.index += 1;
        stage.len = 0;
        Ok(())
    }

    /// Sends what the spool holds of parts from `index` on (`len` bytes): whole parts as
    /// parts, the rest as the incomplete part's object, kept in the spool for the next append.
    async fn flush(&self, file: Arc<File>, index: u64, len: u64) -> Result<()> {
        let size = self.state.part_size;
        let key = self.store.object_key(self.id);
        let whole = len / size;
        for n in 0..whole {
            let range = n * size..(n + 1) * size;
            let number = part_number(index + n)?;
            let sent =
                self.store.client.upload_part(&key, &self.state.upload_id, number, Body::File(file.clone(), range));
            sent.await?.ok_or(StoreError::Gone)?;
        }
        let rest = len - whole * size;
        if rest == 0 {
            return Ok(());
        }
        let tail = index + whole;
        let range = whole * size..len;
        let etag = self.store.client.put(&self.store.tail_key(self.id, tail), Body::File(file.clone(), range)).await?;
        if whole == 0 {
            self.store.spool.keep(self.id, Kept { index: tail, len: rest, etag, file });
        }
        Ok(())
    }

    /// The answer for an append that failed: in keep-partial mode, the parts uploaded
    /// before the failure are kept (and acknowledged); else nothing is.
    fn failed(&self, uploaded_end: u64, cause: StoreError) -> StoreError {
        self.store.spool.forget(self.id);
        if self.mode == AppendMode::KeepPartial && uploaded_end > self.offset {
            StoreError::Partial { end: uploaded_end, cause: Box::new(cause) }
        } else {
            cause
        }
    }
}
