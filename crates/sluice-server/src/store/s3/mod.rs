//! Upload bytes in S3-compatible object storage (AWS S3, Garage, MinIO, Ceph, R2).
//!
//! One S3 multipart upload per Sluice upload. Objects under the configured prefix,
//! per upload id:
//!
//! ```text
//! {id}            the file, once finished (CompleteMultipartUpload)
//! {id}.upload     the multipart upload's id and part size (JSON): any instance finds it
//! {id}.part.{n}   the bytes of incomplete part n (0-based) as the last append left them
//! ```
//!
//! An append stages bytes in the local spool (see `spool`) and uploads each part as
//! it fills (≥ 5 MiB, S3's rule, enforced here: Garage would accept less). Whatever is
//! left when the body ends is pushed as `{id}.part.{n}` before the append returns, so
//! every acknowledged byte is in the object store and any instance can continue: the
//! next append pulls that object back (or reuses its local copy when the ETag still
//! matches) and completes it into a real part. `{id}.part.{n}` is only replaced by
//! appends that start inside part `n`, so bytes below a committed offset are never
//! lost, even when an append uploaded parts and died before its offset was committed
//! (the next append simply uploads those parts again).
//!
//! The part size is `max(8 MiB, ceil(max_file_size / 10,000))`, so the policy's
//! largest file fits S3's 10,000 parts.

mod append;
mod client;
mod spool;

pub use client::Endpoint;

use crate::id::UploadId;
use crate::store::{AppendMode, BodyStream, ByteStore, ByteStream, Fence, Result, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use client::{Body, Client};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// S3's smallest part (all but the last).
pub const MIN_PART: u64 = 5 << 20;
/// S3's largest part, and the largest range one UploadPartCopy may copy.
pub const MAX_PART: u64 = 5 << 30;
/// S3's most parts per object.
pub const MAX_PARTS: u64 = 10_000;
/// The smallest part size Sluice uses.
const BASE_PART: u64 = 8 << 20;
/// Multipart states kept in memory.
const STATES_KEPT: usize = 4096;

/// Where the bytes go and how they are staged.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket, its endpoint and credentials.
    pub endpoint: Endpoint,
    /// Key prefix for every object (empty, or ending in `/`).
    pub prefix: String,
    /// Local staging directory.
    pub spool_dir: PathBuf,
    /// The largest file the policy allows (sets the part size).
    pub max_file_size: u64,
}

impl S3Config {
    /// The test bucket named by `SLUICE_TEST_S3` (`s3://BUCKET`), with the server's own
    /// variables for the rest (`SLUICE_S3_ENDPOINT`, `SLUICE_S3_REGION`,
    /// `SLUICE_S3_PATH_STYLE`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), objects under
    /// `prefix`; `None` when `SLUICE_TEST_S3` is unset (`cargo xtask test` sets them all).
    #[cfg(any(test, feature = "testing"))]
    pub fn from_test_env(prefix: &str, spool_dir: &std::path::Path) -> Option<S3Config> {
        let location = std::env::var("SLUICE_TEST_S3").ok()?;
        let (bucket, base) = parse_location(&location).expect("SLUICE_TEST_S3");
        let var = |name: &str| std::env::var(name).ok();
        Some(S3Config {
            endpoint: Endpoint {
                bucket,
                url: var("SLUICE_S3_ENDPOINT"),
                region: var("SLUICE_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                path_style: var("SLUICE_S3_PATH_STYLE").is_some_and(|v| v == "true" || v == "1"),
                credentials: var("AWS_ACCESS_KEY_ID").zip(var("AWS_SECRET_ACCESS_KEY")).map(|(k, s)| (k, s, None)),
            },
            prefix: format!("{base}{prefix}/"),
            spool_dir: spool_dir.to_path_buf(),
            max_file_size: 4 << 30,
        })
    }
}

/// Parses `s3://BUCKET[/PREFIX]` into the bucket and a prefix ending in `/` (or empty).
pub fn parse_location(text: &str) -> std::result::Result<(String, String), String> {
    let rest = text.strip_prefix("s3://").ok_or_else(|| format!("{text}: expected s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
        return Err(format!("{text}: `{bucket}` is not a valid bucket name"));
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    Ok((bucket.to_string(), prefix))
}

/// The part size for uploads of at most `max_file_size` bytes.
pub fn part_size(max_file_size: u64) -> u64 {
    BASE_PART.max(max_file_size.div_ceil(MAX_PARTS))
}

/// What `{id}.upload` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadState {
    upload_id: String,
    part_size: u64,
}

/// Upload bytes in an S3 bucket.
#[derive(Debug)]
pub struct S3Bytes {
    client: Arc<Client>,
    prefix: String,
    part_size: u64,
    spool: spool::Spool,
    states: Mutex<HashMap<UploadId, Arc<UploadState>>>,
}

impl S3Bytes {
    /// A byte store in `config`'s bucket (the bucket is not contacted yet: the
    /// readiness probe does that).
    pub fn open(config: S3Config) -> std::result::Result<S3Bytes, String> {
        let client = Client::new(&config.endpoint)?;
        let spool = spool::Spool::open(&config.spool_dir)
            .map_err(|e| format!("--spool-dir {}: {e}", config.spool_dir.display()))?;
        Ok(S3Bytes {
            client: Arc::new(client),
            prefix: config.prefix,
            part_size: part_size(config.max_file_size),
            spool,
            states: Mutex::default(),
        })
    }

    /// The part size of new uploads.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// Ids of the uploads that have any object under the prefix (tests check that
    /// termination leaves nothing behind).
    pub async fn stored_ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .client
            .list(&self.prefix)
            .await?
            .into_iter()
            .filter_map(|(key, _)| {
                key.strip_prefix(&self.prefix).map(|rest| rest.split('.').next().unwrap_or("").to_string())
            })
            .collect();
        ids.dedup();
        Ok(ids)
    }

    /// The finished file's key.
    pub fn object_key(&self, id: &UploadId) -> String {
        format!("{}{id}", self.prefix)
    }

    fn state_key(&self, id: &UploadId) -> String {
        format!("{}{id}.upload", self.prefix)
    }

    fn tail_key(&self, id: &UploadId, index: u64) -> String {
        format!("{}{id}.part.{index}", self.prefix)
    }

    /// The multipart state of `id`; `None` when it has none (finished, deleted or unknown).
    async fn state(&self, id: &UploadId) -> Result<Option<Arc<UploadState>>> {
        if let Some(state) = self.states.lock().unwrap_or_else(PoisonError::into_inner).get(id) {
            return Ok(Some(state.clone()));
        }
        let Some(text) = self.client.get_small(&self.state_key(id)).await? else { return Ok(None) };
        let state: UploadState = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Io(io::Error::other(format!("{}: {e}", self.state_key(id)))))?;
        let state = Arc::new(state);
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if states.len() >= STATES_KEPT {
            states.clear();
        }
        states.insert(id.clone(), state.clone());
        Ok(Some(state))
    }

    fn forget(&self, id: &UploadId) {
        self.states.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        self.spool.forget(id);
    }

    /// Deletes every `{id}.part.*` object and the state object (after the multipart
    /// upload was completed or aborted).
    async fn drop_leftovers(&self, id: &UploadId) -> Result<()> {
        for (key, _) in self.client.list(&format!("{}{id}.part.", self.prefix)).await? {
            self.client.delete(&key).await?;
        }
        self.client.delete(&self.state_key(id)).await?;
        self.forget(id);
        Ok(())
    }

    /// Whether `id` is a finished object of `length` bytes.
    async fn is_finished(&self, id: &UploadId, length: u64) -> Result<bool> {
        Ok(self.client.head(&self.object_key(id)).await?.is_some_and(|info| info.size == length))
    }

    /// The first `len` bytes of the incomplete part `index` (object ETag `etag`) in a spool
    /// file: the one this instance kept, or downloaded (another instance wrote it, or this
    /// one restarted). Streamed through the spool's writer, never held in memory.
    async fn incomplete_part(&self, id: &UploadId, index: u64, etag: &str, len: u64) -> Result<File> {
        if let Some(file) = self.spool.reuse(id, index, etag, len)? {
            return Ok(file);
        }
        let key = self.tail_key(id, index);
        let mut writer = self.spool.writer(self.spool.create()?);
        let mut bytes = self.client.get(&key, Some(0..len)).await?.ok_or(StoreError::Gone)?;
        let mut pulled = 0u64;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            pulled += chunk.len() as u64;
            writer.push(chunk).await?;
        }
        if pulled != len {
            return Err(StoreError::Unavailable(format!("{key}: got {pulled} of {len} bytes")));
        }
        Ok(writer.finish().await?)
    }

    /// Ends a multipart upload that has every byte: its parts, the last one copied from
    /// `{id}.part.{n}` on the store's side.
    async fn complete(&self, id: &UploadId, state: &UploadState, length: u64) -> Result<()> {
        let key = self.object_key(id);
        let size = state.part_size;
        if length == 0 {
            // S3 cannot complete a multipart upload without parts.
            self.client.abort(&key, &state.upload_id).await?;
            self.client.put(&key, Body::Empty).await?;
            return Ok(());
        }
        let Some(uploaded) = self.client.list_parts(&key, &state.upload_id).await? else {
            return if self.is_finished(id, length).await? { Ok(()) } else { Err(StoreError::Gone) };
        };
        let count = length.div_ceil(size);
        let last_len = length - (count - 1) * size;
        let by_number: HashMap<u16, &client::Part> = uploaded.iter().map(|p| (p.number, p)).collect();
        let mut etags = Vec::with_capacity(count as usize);
        for index in 0..count {
            let number = part_number(index)?;
            let want = if index + 1 == count { last_len } else { size };
            match by_number.get(&number) {
                Some(part) if part.size == want => etags.push(part.etag.clone()),
                _ if index + 1 == count && want >= MIN_PART => {
                    // The last, incomplete part: copied from its object, on the store's side.
                    let tail = self.tail_key(id, index);
                    let etag = self.client.upload_part_copy(&key, &state.upload_id, number, &tail, 0..want).await?;
                    etags.push(etag);
                }
                _ if index + 1 == count => {
                    // Under 5 MiB, which some stores (Garage) refuse as a copy source: sent
                    // again from the spool (this instance's copy, or downloaded into it).
                    let tail = self.tail_key(id, index);
                    let info =
                        self.client.head(&tail).await?.filter(|info| info.size >= want).ok_or(StoreError::Gone)?;
                    let file = Arc::new(self.incomplete_part(id, index, &info.etag, want).await?);
                    let sent = self.client.upload_part(&key, &state.upload_id, number, Body::File(file, 0..want));
                    etags.push(sent.await?.ok_or(StoreError::Gone)?);
                }
                found => {
                    return Err(StoreError::Io(io::Error::other(format!(
                        "upload {id}: part {number} holds {:?} bytes, expected {want}",
                        found.map(|p| p.size)
                    ))))
                }
            }
        }
        self.client.complete(&key, &state.upload_id, &etags).await
    }
}

/// The S3 part number (1-based) of part `index`, within S3's 10,000.
fn part_number(index: u64) -> Result<u16> {
    if index >= MAX_PARTS {
        return Err(StoreError::Io(io::Error::other(
            "more than 10,000 parts: the file is larger than the policy allows",
        )));
    }
    Ok(u16::try_from(index + 1).unwrap_or(u16::MAX))
}

#[async_trait(?Send)]
impl ByteStore for S3Bytes {
    async fn create(&self, id: &UploadId) -> Result<()> {
        if self.client.head(&self.state_key(id)).await?.is_some()
            || self.client.head(&self.object_key(id)).await?.is_some()
        {
            return Err(StoreError::Exists);
        }
        let upload_id = self.client.create_multipart(&self.object_key(id)).await?;
        let state = UploadState { upload_id, part_size: self.part_size };
        let json = serde_json::to_vec(&state).map_err(io::Error::other)?;
        self.client.put(&self.state_key(id), Body::Bytes(Bytes::from(json))).await?;
        self.states.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), Arc::new(state));
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
        // The record's compare-and-set (with the fence) decides which writer's offset
        // counts; parts past a committed offset are uploaded again by the next append.
        let Some(state) = self.state(id).await? else {
            // A finished upload takes empty appends only (its object is sealed).
            let finished = self.client.head(&self.object_key(id)).await?.ok_or(StoreError::Gone)?;
            while let Some(item) = body.next().await {
                if item.is_ok_and(|bytes| !bytes.is_empty()) {
                    return Err(StoreError::OffsetMismatch { actual: finished.size });
                }
            }
            return Ok(offset);
        };
        append::Append::new(self, id, &state, offset, mode).run(body).await
    }

    async fn finish(&self, id: &UploadId, length: u64) -> Result<()> {
        let Some(state) = self.state(id).await? else {
            return if self.is_finished(id, length).await? { Ok(()) } else { Err(StoreError::Gone) };
        };
        self.complete(id, &state, length).await?;
        self.drop_leftovers(id).await?;
        tracing::debug!(upload = %id, length, "multipart upload completed");
        Ok(())
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<bool> {
        // S3 needs every part but the last to be at least 5 MiB, and some stores (Garage)
        // refuse any copy source under 5 MiB: otherwise the engine streams the parts.
        let sources: Vec<&(UploadId, u64)> = parts.iter().filter(|(_, len)| *len > 0).collect();
        if sources.is_empty() || sources.iter().any(|(_, len)| *len < MIN_PART) {
            return Ok(false);
        }
        let copies: u64 = sources.iter().map(|(_, len)| len.div_ceil(MAX_PART)).sum();
        if copies > MAX_PARTS {
            return Ok(false);
        }
        let state = self.state(id).await?.ok_or(StoreError::Gone)?;
        let key = self.object_key(id);
        let mut etags = Vec::new();
        for (source, len) in sources {
            // A source over 5 GiB is copied in equal ranges, each under S3's limit.
            let pieces = len.div_ceil(MAX_PART);
            let piece = len.div_ceil(pieces);
            let mut start = 0;
            while start < *len {
                let end = (start + piece).min(*len);
                let number = part_number(etags.len() as u64)?;
                let source_key = self.object_key(source);
                etags
                    .push(self.client.upload_part_copy(&key, &state.upload_id, number, &source_key, start..end).await?);
                start = end;
            }
        }
        self.client.complete(&key, &state.upload_id, &etags).await?;
        self.drop_leftovers(id).await?;
        Ok(true)
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream> {
        if range.is_empty() {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        if let Some(stream) = self.client.get(&self.object_key(id), Some(range.clone())).await? {
            return Ok(Box::pin(stream));
        }
        // Not finished: only bytes of the incomplete part are readable (S3 does not
        // serve the parts of an unfinished multipart upload).
        let state = self.state(id).await?.ok_or(StoreError::Gone)?;
        let index = range.start / state.part_size;
        let base = index * state.part_size;
        let tail = self.client.head(&self.tail_key(id, index)).await?;
        if tail.is_none_or(|t| base + t.size < range.end) {
            return Err(StoreError::Io(io::Error::other(format!(
                "upload {id}: bytes {range:?} are in uploaded parts of an unfinished upload, which S3 does not serve"
            ))));
        }
        let stream = self.client.get(&self.tail_key(id, index), Some(range.start - base..range.end - base)).await?;
        let stream = stream.ok_or(StoreError::Gone)?;
        Ok(Box::pin(stream.map(|chunk| chunk)))
    }

    async fn delete(&self, id: &UploadId) -> Result<()> {
        if let Some(state) = self.state(id).await? {
            self.client.abort(&self.object_key(id), &state.upload_id).await?;
        }
        self.client.delete(&self.object_key(id)).await?;
        self.drop_leftovers(id).await
    }

    fn append_memory(&self) -> u64 {
        // Two spool write buffers, and reads in flight to the store.
        4 * crate::store::fs::BLOCK as u64
    }

    async fn check_writable(&self) -> Result<()> {
        self.client.head_bucket().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_into_bucket_and_prefix() {
        assert_eq!(parse_location("s3://uploads").unwrap(), ("uploads".into(), String::new()));
        assert_eq!(parse_location("s3://uploads/a/b/").unwrap(), ("uploads".into(), "a/b/".into()));
        assert!(parse_location("uploads").is_err());
        assert!(parse_location("s3://Up_loads").is_err());
        assert!(parse_location("s3://").is_err());
    }

    #[test]
    fn parts_fit_the_largest_file_in_ten_thousand() {
        assert_eq!(part_size(4 << 30), 8 << 20);
        let five_tib = 5u64 << 40;
        let size = part_size(five_tib);
        assert!((MIN_PART..=MAX_PART).contains(&size));
        assert!(five_tib.div_ceil(size) <= MAX_PARTS);
        assert!(part_number(MAX_PARTS - 1).is_ok());
        assert!(part_number(MAX_PARTS).is_err());
    }
}
