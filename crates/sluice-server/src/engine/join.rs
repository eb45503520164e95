//! Joining partial uploads into a final one: at once when every part is finished
//! (tus concatenation), or as parts finish (Flow.js chunks).
//!
//! The final file is judged as a whole before a byte is copied: its total size, its
//! name, and its type from the leading bytes its parts' records hold. The byte store's
//! fast path joins the bytes (on a local disk, `copy_file_range`: no bytes through user
//! space); a store without one streams the parts through the ordinary append, one
//! fixed buffer at a time.

use super::{Engine, NewUpload, Requester};
use crate::error::{Error, Result};
use crate::hooks::{self, HookUpload};
use crate::id::UploadId;
use crate::store::{AppendMode, BodyStopped, Fence, Kind, StoreError, UploadRecord};
use futures_util::StreamExt;
use sluice_core::{Reason, SNIFF_LEN};

impl Engine {
    /// Joins the finished partial uploads `parts`, in order, into a new final upload,
    /// complete when this returns. Every part must be the requester's, partial and
    /// finished (`404`, `not_a_partial`, `part_not_finished` otherwise).
    pub async fn concat(&self, who: Requester<'_>, mut new: NewUpload, parts: Vec<UploadId>) -> Result<UploadRecord> {
        let mut found = Vec::with_capacity(parts.len());
        for id in &parts {
            let part = self.live(who, id).await?;
            if part.kind != Kind::Partial {
                return Err(Error::new(
                    Reason::NotAPartial,
                    format!("Upload {id} was not created as a partial upload; only partial uploads can be joined."),
                ));
            }
            if !part.is_complete() {
                return Err(Error::new(
                    Reason::PartNotFinished,
                    format!("Partial upload {id} has {} of {:?} bytes; finish it first.", part.offset, part.length),
                ));
            }
            found.push(part);
        }
        new.kind = Kind::Final(parts);
        new.length = Some(total_length(&found)?);
        let record = self.create_final(who, new, &found).await?;
        self.join(record, &found, Fence::default()).await
    }

    /// Records the final upload `new` (kind [`Kind::Final`] with its parts, a derived id)
    /// if it is not yet, advances over the parts that have finished, and joins them once
    /// all have: the completed upload then, `None` while parts are missing. Each part is
    /// looked at once over the file's life, so gathering is linear in the number of parts.
    pub async fn gather(&self, who: Requester<'_>, new: NewUpload) -> Result<Option<UploadRecord>> {
        let id = new.id.clone().ok_or_else(|| Error::internal("gather needs a derived id"))?;
        let lease = self.lease(&id).await?;
        let mut record = match self.live(who, &id).await {
            Ok(record) => record,
            Err(e) if e.reason() == Reason::UploadNotFound => self.create_final(who, new, &[]).await?,
            Err(e) => return Err(e),
        };
        if record.is_complete() {
            return Ok(Some(record));
        }
        let Kind::Final(parts) = record.kind.clone() else {
            return Err(Error::internal(format!("upload {id} is not a final upload")));
        };
        let before = record.parts_ready;
        while let Some(part) = parts.get(record.parts_ready as usize) {
            match self.records.get(part).await {
                Ok(found) if found.is_complete() => record.parts_ready += 1,
                Ok(_) | Err(StoreError::NotFound | StoreError::Gone) => break,
                Err(e) => return Err(e.into()),
            }
        }
        record.fence = lease.fence();
        if (record.parts_ready as usize) < parts.len() {
            if record.parts_ready != before {
                record.modified_at = std::time::SystemTime::now();
                self.records.commit(&record, record.offset).await?;
            }
            lease.release().await;
            return Ok(None);
        }
        let mut found = Vec::with_capacity(parts.len());
        for part in &parts {
            found.push(self.records.get(part).await?);
        }
        if record.length != Some(total_length(&found)?) {
            return Err(Error::internal(format!("the parts of {id} do not add up to its length")));
        }
        record.head = joined_head(&found);
        if let Err(refusal) = self.policy.check_type(&record.head, record.file_name().as_deref()) {
            self.remove(&id).await?;
            for part in &parts {
                self.remove(part).await?;
            }
            return Err(refusal.into());
        }
        let fence = lease.fence();
        let joined = self.join(record, &found, fence).await?;
        lease.release().await;
        Ok(Some(joined))
    }

    /// Checks a final upload as a whole and records it (not yet joined). With its parts
    /// at hand, its type is judged from their leading bytes too.
    async fn create_final(&self, who: Requester<'_>, new: NewUpload, parts: &[UploadRecord]) -> Result<UploadRecord> {
        let policy = who.caller.policy(&self.policy);
        let length = new.length.ok_or_else(|| Error::internal("a final upload's length is known"))?;
        let file_name = new.metadata.file_name();
        policy.check_size(length)?;
        policy.check_name(file_name.as_deref())?;
        let head = joined_head(parts);
        if !parts.is_empty() {
            policy.check_type(&head, file_name.as_deref())?;
        }
        self.admit_creation(who, length).await?;
        self.check_room(length).await?;
        let event = HookUpload::new(new.protocol.name(), Some(length), &new.metadata, who.caller.owner());
        hooks::pre_create(&self.settings.hooks, &event).await?;
        let id = match new.id {
            Some(id) => id,
            None => UploadId::random().map_err(Error::internal)?,
        };
        let mut record = UploadRecord::new(id, new.protocol, new.kind, Some(length), new.metadata);
        record.owner = who.caller.owner().map(str::to_owned);
        record.client = who.client_key();
        record.expected_sha256 = new.sha256;
        record.head = head;
        self.bytes.create(&record.id).await?;
        if let Err(e) = self.records.insert(&record).await {
            let _ = self.bytes.delete(&record.id).await;
            return Err(e.into());
        }
        self.metrics.created.inc();
        Ok(record)
    }

    /// Joins the parts' bytes into `record` (empty, recorded) and completes it.
    async fn join(&self, mut record: UploadRecord, parts: &[UploadRecord], fence: Fence) -> Result<UploadRecord> {
        let list: Vec<(UploadId, u64)> = parts.iter().map(|p| (p.id.clone(), p.offset)).collect();
        let total = total_length(parts)?;
        if !self.bytes.concat(&record.id, &list).await? {
            let bytes = self.bytes.clone();
            let pieces = futures_util::stream::iter(list)
                .then(move |(id, len)| {
                    let bytes = bytes.clone();
                    async move { bytes.read(&id, 0..len).await }
                })
                .map(|opened| match opened {
                    Ok(stream) => stream.left_stream(),
                    Err(e) => futures_util::stream::once(async move { Err(std::io::Error::other(e.to_string())) })
                        .right_stream(),
                })
                .flatten()
                .map(|chunk| chunk.map_err(|_| BodyStopped));
            let mut pieces = Box::pin(pieces);
            let end = self.bytes.append(&record.id, 0, &mut pieces, AppendMode::AllOrNothing, fence).await?;
            if end != total {
                return Err(Error::internal(format!("joined {end} of {total} bytes into {}", record.id)));
            }
        }
        let stored = record.offset;
        record.offset = total;
        record.fence = fence;
        record.parts_ready = parts.len() as u64;
        tracing::info!(upload = %record.id, parts = parts.len(), total, "parts joined");
        self.complete_from(record, stored, fence).await
    }
}

/// The sum of the parts' lengths.
fn total_length(parts: &[UploadRecord]) -> Result<u64> {
    parts.iter().try_fold(0u64, |sum, part| {
        sum.checked_add(part.offset)
            .ok_or_else(|| Error::new(Reason::FileTooLarge, "The parts add up to more than any file may be."))
    })
}

/// The joined file's leading bytes, from its parts' records.
fn joined_head(parts: &[UploadRecord]) -> Vec<u8> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    for part in parts {
        let want = (SNIFF_LEN - head.len()).min(usize::try_from(part.offset).unwrap_or(usize::MAX));
        let take = want.min(part.head.len());
        head.extend_from_slice(&part.head[..take]);
        if head.len() == SNIFF_LEN || take < want {
            break; // full, or a part whose record lacks some of its leading bytes: stop at the gap
        }
    }
    head
}
