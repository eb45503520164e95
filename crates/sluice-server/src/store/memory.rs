//! Records and bytes in RAM: for tests and for trying the seams out. It holds every
//! byte in memory, so it is never a production backend; it passes the same contract
//! as the others, which keeps the contract honest about what it assumes.

use super::{
    AppendMode, BodyStream, ByteStore, ByteStream, Fence, OpenUsage, RecordStore, Result, StoreError, UploadRecord,
    UsageIndex,
};
use crate::id::UploadId;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records in a map.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    records: Mutex<HashMap<UploadId, (UploadRecord, Option<SystemTime>)>>,
    usage: UsageIndex,
}

#[async_trait(?Send)]
impl RecordStore for MemoryRecords {
    async fn insert(&self, record: &UploadRecord) -> Result<()> {
        let mut records = lock(&self.records);
        if records.contains_key(&record.id) {
            return Err(StoreError::Exists);
        }
        records.insert(record.id.clone(), (record.clone(), None));
        self.usage.update(record);
        Ok(())
    }

    async fn get(&self, id: &UploadId) -> Result<UploadRecord> {
        match lock(&self.records).get(id) {
            None => Err(StoreError::NotFound),
            Some((_, Some(_))) => Err(StoreError::Gone),
            Some((record, None)) => Ok(record.clone()),
        }
    }

    async fn commit(&self, record: &UploadRecord, expected_offset: u64) -> Result<()> {
        let mut records = lock(&self.records);
        let stored = match records.get_mut(&record.id) {
            None => return Err(StoreError::NotFound),
            Some((_, Some(_))) => return Err(StoreError::Gone),
            Some((stored, None)) => stored,
        };
        if stored.fence > record.fence {
            return Err(StoreError::Fenced);
        }
        if stored.offset != expected_offset {
            return Err(StoreError::OffsetMismatch { actual: stored.offset });
        }
        *stored = record.clone();
        self.usage.update(record);
        Ok(())
    }

    async fn mark_gone(&self, id: &UploadId) -> Result<()> {
        match lock(&self.records).get_mut(id) {
            None => Err(StoreError::NotFound),
            Some((_, Some(_))) => Err(StoreError::Gone),
            Some((_, gone)) => {
                *gone = Some(SystemTime::now());
                self.usage.remove(id);
                Ok(())
            }
        }
    }

    async fn stale(&self, cutoff: SystemTime) -> Result<Vec<UploadId>> {
        Ok(lock(&self.records)
            .values()
            .filter(|(r, gone)| gone.is_none() && !r.is_complete() && r.modified_at < cutoff)
            .map(|(r, _)| r.id.clone())
            .collect())
    }

    async fn purge_tombstones(&self, cutoff: SystemTime) -> Result<usize> {
        let mut records = lock(&self.records);
        let before = records.len();
        records.retain(|_, (_, gone)| gone.is_none_or(|at| at >= cutoff));
        Ok(before - records.len())
    }

    async fn open_usage(&self, client: &str) -> Result<OpenUsage> {
        Ok(self.usage.client(client))
    }

    async fn promised_bytes(&self) -> Result<u64> {
        Ok(self.usage.promised())
    }

    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Bytes in a map of vectors.
#[derive(Debug, Default)]
pub struct MemoryBytes {
    files: Mutex<HashMap<UploadId, Vec<u8>>>,
}

impl MemoryBytes {
    /// Ids whose bytes are held (for tests that check nothing is left behind).
    pub fn ids(&self) -> Vec<UploadId> {
        lock(&self.files).keys().cloned().collect()
    }

    fn with_file<T>(&self, id: &UploadId, f: impl FnOnce(&mut Vec<u8>) -> Result<T>) -> Result<T> {
        match lock(&self.files).get_mut(id) {
            Some(file) => f(file),
            None => Err(StoreError::Gone),
        }
    }
}

#[async_trait(?Send)]
impl ByteStore for MemoryBytes {
    async fn create(&self, id: &UploadId) -> Result<()> {
        let mut files = lock(&self.files);
        if files.contains_key(id) {
            return Err(StoreError::Exists);
        }
        files.insert(id.clone(), Vec::new());
        Ok(())
    }

    async fn append(
        &self,
        id: &UploadId,
        offset: u64,
        body: BodyStream<'_>,
        mode: AppendMode,
        _fence: Fence,
    ) -> Result<u64> {
        let start = usize::try_from(offset).map_err(|_| StoreError::Full)?;
        self.with_file(id, |file| {
            if file.len() < start {
                return Err(StoreError::OffsetMismatch { actual: file.len() as u64 });
            }
            file.truncate(start);
            Ok(())
        })?;
        let mut end = start;
        while let Some(item) = body.next().await {
            match item {
                Ok(bytes) => {
                    self.with_file(id, |file| {
                        file.extend_from_slice(&bytes);
                        Ok(())
                    })?;
                    end += bytes.len();
                }
                Err(_) if mode == AppendMode::AllOrNothing => {
                    self.with_file(id, |file| {
                        file.truncate(start);
                        Ok(())
                    })?;
                    return Ok(offset);
                }
                Err(_) => break,
            }
        }
        Ok(end as u64)
    }

    async fn finish(&self, id: &UploadId, length: u64) -> Result<()> {
        let length = usize::try_from(length).map_err(|_| StoreError::Full)?;
        self.with_file(id, |file| {
            file.truncate(length);
            Ok(())
        })
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<bool> {
        let mut files = lock(&self.files);
        let mut joined = Vec::new();
        for (part, len) in parts {
            let bytes = files.get(part).ok_or(StoreError::Gone)?;
            let len = usize::try_from(*len).map_err(|_| StoreError::Full)?;
            joined.extend_from_slice(bytes.get(..len).ok_or(StoreError::Gone)?);
        }
        *files.get_mut(id).ok_or(StoreError::Gone)? = joined;
        Ok(true)
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream> {
        let bytes = self.with_file(id, |file| {
            let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(file.len());
            let end = usize::try_from(range.end).unwrap_or(usize::MAX).min(file.len());
            Ok(Bytes::copy_from_slice(&file[start..end.max(start)]))
        })?;
        Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])))
    }

    async fn delete(&self, id: &UploadId) -> Result<()> {
        lock(&self.files).remove(id);
        Ok(())
    }

    fn append_memory(&self) -> u64 {
        0
    }

    async fn check_writable(&self) -> Result<()> {
        Ok(())
    }
}
