//! Completion: the last check of a whole file, sealing its bytes, and telling the
//! application.

use super::Engine;
use crate::error::Result;
use crate::hooks::{self, HookUpload};
use crate::store::Fence;
use crate::store::{Kind, State, UploadRecord};
use futures_util::TryStreamExt;
use sluice_core::{sniff, SNIFF_LEN};

impl Engine {
    /// Completes an upload whose bytes are all stored (the caller holds its lease, or
    /// nobody else knows it yet). A whole or final file is judged by its leading bytes
    /// (refused: removed, and the refusal returned), gets its type recorded, counts as
    /// completed and fires the post-finish hook once; a part is only sealed. The seal
    /// commits under `fence`, the caller's lease, so a caller whose lease was taken over
    /// cannot seal.
    pub(super) async fn complete(&self, record: UploadRecord, fence: Fence) -> Result<UploadRecord> {
        let stored = record.offset;
        self.complete_from(record, stored, fence).await
    }

    /// [`Engine::complete`] for a record whose stored offset is still `stored` (the
    /// completion commits both at once).
    pub(super) async fn complete_from(
        &self,
        mut record: UploadRecord,
        stored: u64,
        fence: Fence,
    ) -> Result<UploadRecord> {
        record.fence = fence;
        let length = record.offset;
        let announced = record.kind != Kind::Partial;
        if announced {
            self.fill_head(&mut record).await?;
            let policy = self.policy.clone();
            let file_name = record.file_name();
            if let Err(refusal) = policy.check_type(&record.head, file_name.as_deref()) {
                self.remove(&record.id).await?;
                self.metrics.terminated.inc();
                return Err(refusal.into());
            }
            record.file_type = Some(sniff::sniff(&record.head, file_name.as_deref()).mime.to_string());
        }
        self.settle_digest(&mut record).await?;
        self.bytes.finish(&record.id, length).await?;
        record.length = Some(length);
        record.state = State::Complete;
        self.records.commit(&record, stored).await?;
        if announced {
            self.metrics.completed.inc();
            let mut event =
                HookUpload::new(record.protocol.name(), record.length, &record.metadata, record.owner.as_deref());
            event.id = Some(record.id.to_string());
            event.mime = record.file_type.clone();
            event.sha256 = record.sha256.clone();
            hooks::post_finish(&self.settings.hooks, event);
            tracing::info!(upload = %record.id, length, mime = ?record.file_type, "upload complete");
        }
        Ok(record)
    }

    /// Makes sure the record holds the file's leading bytes (a record written before
    /// heads were kept, or a window cut by a stop, reads the rest back once).
    async fn fill_head(&self, record: &mut UploadRecord) -> Result<()> {
        let needed = SNIFF_LEN.min(usize::try_from(record.offset).unwrap_or(SNIFF_LEN));
        if record.head.len() >= needed {
            return Ok(());
        }
        let chunks: Vec<bytes::Bytes> = self
            .bytes
            .read(&record.id, 0..needed as u64)
            .await?
            .try_collect()
            .await
            .map_err(crate::error::Error::internal)?;
        record.head = chunks.concat();
        Ok(())
    }
}
