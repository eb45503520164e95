//! One file's upload: resume or create, then append chunk by chunk with
//! retries; or, with parts, several partial uploads at once joined at the end.
//!
//! Every append starts where the server says it stands: after any failure the
//! offset is re-read (`HEAD`) before sending again, so a byte the server
//! acknowledged is never sent twice and one it lost is sent again.

use crate::client::{Inner, Progress, Uploaded};
use crate::error::{code, Error, Result};
use crate::retry::{classify, jitter, Verdict};
use crate::source::LocalFile;
use crate::state::{Fingerprint, Record};
use crate::tus::{self, Kind};
use futures_util::future::try_join_all;
use sluice_core::Algorithm;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::task::JoinHandle;

/// Smallest part worth its own request when a file is sent in parts.
pub const MIN_PART_SIZE: u64 = 1 << 20;

/// One file in flight.
struct Job<'a> {
    inner: &'a Inner,
    file: &'a LocalFile,
    progress: &'a dyn Progress,
    /// Bytes the server holds, over every part.
    acked: AtomicU64,
    record: Mutex<Record>,
}

pub(crate) async fn run(inner: &Inner, file: &LocalFile, progress: &dyn Progress) -> Result<Uploaded> {
    let fingerprint = Fingerprint::of(file, inner.wire.endpoint.as_str());
    let record = match inner.state.as_ref().and_then(|s| s.load(&fingerprint)) {
        Some(record) => record,
        None => {
            forget_stale(inner, &fingerprint).await;
            Record { fingerprint, url: None, parts: Vec::new() }
        }
    };
    let ranges = plan_parts(file.size, inner.options.parts, inner.caps.has("concatenation"));
    let job = Job { inner, file, progress, acked: AtomicU64::new(0), record: Mutex::new(record) };
    if ranges.len() > 1 {
        job.in_parts(ranges).await
    } else {
        job.whole().await
    }
}

/// Splits `size` bytes into `parts` ranges of about equal size (the last takes the rest),
/// each at least [`MIN_PART_SIZE`]; one range when the server cannot join parts.
pub fn plan_parts(size: u64, parts: usize, concatenation: bool) -> Vec<Range<u64>> {
    let n = if concatenation { (parts as u64).min(size / MIN_PART_SIZE).max(1) } else { 1 };
    let step = size / n;
    (0..n).map(|i| i * step..if i + 1 == n { size } else { (i + 1) * step }).collect()
}

/// A changed file's unfinished old upload is of no use: terminate it (best effort) and
/// forget it. A finished one is left alone: it is the file as it was, and may be in use.
async fn forget_stale(inner: &Inner, fingerprint: &Fingerprint) {
    let Some(state) = &inner.state else { return };
    let Some(stale) = state.load_stale(fingerprint) else { return };
    if inner.caps.has("termination") {
        let urls = stale.url.iter().chain(stale.parts.iter().flatten());
        for url in urls {
            let unfinished = inner.wire.status(url).await.is_ok_and(|s| s.length.is_none_or(|l| s.offset < l));
            if unfinished {
                let _ = inner.wire.terminate(url).await;
            }
        }
    }
    state.remove(fingerprint);
}

impl Job<'_> {
    async fn whole(&self) -> Result<Uploaded> {
        let size = self.file.size;
        let known = self.record.lock().map_or(None, |r| r.url.clone());
        let resumed = match known {
            Some(url) => self.resume(&url, size).await?.map(|offset| (url, offset)),
            None => None,
        };
        let (url, offset) = match resumed {
            Some(found) => found,
            None => {
                let metadata = tus::metadata(self.file);
                let url = self.retrying(|| self.inner.wire.create(size, &metadata, Kind::Whole)).await?;
                self.remember(|r| {
                    r.url = Some(url.clone());
                    r.parts.clear();
                });
                (url, 0)
            }
        };
        self.add_acked(offset, 0);
        self.send_range(&url, 0..size, offset).await?;
        Ok(Uploaded { url, size, resumed_from: offset, parts: 1 })
    }

    async fn in_parts(&self, ranges: Vec<Range<u64>>) -> Result<Uploaded> {
        let size = self.file.size;
        let (known_final, mut known_parts) =
            self.record.lock().map_or((None, Vec::new()), |r| (r.url.clone(), r.parts.clone()));
        if let Some(url) = known_final {
            if self.resume(&url, size).await? == Some(size) {
                self.add_acked(size, 0);
                return Ok(Uploaded { url, size, resumed_from: size, parts: ranges.len() });
            }
        }
        if known_parts.len() != ranges.len() {
            known_parts = vec![None; ranges.len()];
            self.remember(|r| {
                r.url = None;
                r.parts = vec![None; ranges.len()];
            });
        }
        let resumed_from = AtomicU64::new(0);
        let sends = ranges.iter().cloned().zip(known_parts).enumerate().map(|(i, (range, known))| {
            let resumed_from = &resumed_from;
            async move {
                let len = range.end - range.start;
                let resumed = match known {
                    Some(url) => self.resume(&url, len).await?.map(|offset| (url, offset)),
                    None => None,
                };
                let (url, offset) = match resumed {
                    Some(found) => found,
                    None => {
                        let metadata = sluice_core::tus::Metadata::default();
                        let url = self.retrying(|| self.inner.wire.create(len, &metadata, Kind::Partial)).await?;
                        self.remember(|r| r.parts[i] = Some(url.clone()));
                        (url, 0)
                    }
                };
                resumed_from.fetch_add(offset, Ordering::Relaxed);
                self.add_acked(offset, 0);
                self.send_range(&url, range, offset).await?;
                Ok::<String, Error>(url)
            }
        });
        let urls = try_join_all(sends).await?;
        let metadata = tus::metadata(self.file);
        let url = self.retrying(|| self.inner.wire.join(&urls, &metadata)).await?;
        self.remember(|r| r.url = Some(url.clone()));
        Ok(Uploaded { url, size, resumed_from: resumed_from.into_inner(), parts: ranges.len() })
    }

    /// Where a remembered upload stands: `Some(offset)` to go on from, `None` when it is of no
    /// use any more (gone, not ours, another length) and a new one must be made.
    async fn resume(&self, url: &str, len: u64) -> Result<Option<u64>> {
        match self.retrying(|| self.inner.wire.status(url)).await {
            Ok(status) if status.length.is_none_or(|l| l == len) && status.offset <= len => Ok(Some(status.offset)),
            Ok(_) => Ok(None),
            Err(e) if e.status.is_some_and(|s| (400..500).contains(&s)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends the file's bytes `range` to the upload at `url`, which holds `offset` of them.
    async fn send_range(&self, url: &str, range: Range<u64>, mut offset: u64) -> Result<()> {
        let len = range.end - range.start;
        let chunk = self.inner.options.chunk_size.clamp(1, self.inner.policy.max_chunk_size.max(1));
        let algorithm = self.inner.checksum;
        let backoff = self.inner.options.backoff;
        let mut failures = 0u32;
        // The checksum of the next chunk, computed on the blocking pool while this one is sent.
        let mut next_digest: Option<(u64, JoinHandle<Result<Vec<u8>>>)> = None;
        while offset < len {
            self.file.unchanged()?;
            let end = (offset + chunk).min(len);
            let digest = match algorithm {
                None => None,
                Some(alg) => {
                    let pending = next_digest.take().filter(|(at, _)| *at == offset).map(|(_, h)| h);
                    let handle = pending.unwrap_or_else(|| self.digest(alg, range.start + offset, end - offset));
                    Some((alg, joined(handle).await?))
                }
            };
            if let (Some(alg), true) = (algorithm, end < len) {
                let next_end = (end + chunk).min(len);
                next_digest = Some((end, self.digest(alg, range.start + end, next_end - end)));
            }
            let body = reqwest::Body::wrap(self.file.body(range.start + offset, end - offset));
            let sent =
                self.inner.wire.append(url, offset, body, digest.as_ref().map(|(a, d)| (*a, d.as_slice()))).await;
            let failure = match sent {
                Ok(new) if new > offset && new <= len => {
                    self.add_acked(new, offset);
                    offset = new;
                    failures = 0;
                    continue;
                }
                Ok(new) => Error::unexpected(format!(
                    "The server answered a PATCH at byte {offset} with Upload-Offset {new}, outside {offset}..={len}."
                )),
                Err(e) => e,
            };
            let verdict = classify(&failure);
            if verdict == Verdict::Stop || failures >= backoff.max_retries {
                return Err(failure);
            }
            if verdict == Verdict::Retry {
                let delay = backoff.delay(failures, jitter(), failure.retry_after);
                self.progress.retrying(&failure, delay);
                tokio::time::sleep(delay).await;
            }
            failures += 1;
            let status = self.retrying(|| self.inner.wire.status(url)).await?;
            if status.offset > len {
                return Err(Error::unexpected(format!(
                    "The server holds {} bytes of a {len}-byte upload.",
                    status.offset
                )));
            }
            self.add_acked(status.offset, offset);
            offset = status.offset;
        }
        Ok(())
    }

    fn digest(&self, algorithm: Algorithm, start: u64, len: u64) -> JoinHandle<Result<Vec<u8>>> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || file.digest(algorithm, start, len))
    }

    /// Runs an idempotent request until it succeeds, fails for good or runs out of retries.
    async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let backoff = self.inner.options.backoff;
        let mut attempt = 0;
        loop {
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if classify(&error) == Verdict::Stop || attempt >= backoff.max_retries {
                return Err(error);
            }
            let delay = backoff.delay(attempt, jitter(), error.retry_after);
            self.progress.retrying(&error, delay);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Moves one range's acknowledged count from `before` to `now` and reports the file's total.
    fn add_acked(&self, now: u64, before: u64) {
        let total = if now >= before {
            self.acked.fetch_add(now - before, Ordering::Relaxed) + (now - before)
        } else {
            self.acked.fetch_sub(before - now, Ordering::Relaxed) - (before - now)
        };
        self.progress.acknowledged(total);
    }

    /// Updates the record and saves it (a failed save only costs resumability).
    fn remember(&self, change: impl FnOnce(&mut Record)) {
        let Ok(mut record) = self.record.lock() else { return };
        change(&mut record);
        if let Some(state) = &self.inner.state {
            let _ = state.save(&record);
        }
    }
}

async fn joined<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    handle.await.map_err(|e| Error::new(code::READ_ERROR, format!("reading the file failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_once_and_are_not_tiny() {
        const M: u64 = MIN_PART_SIZE;
        let whole = |size: u64| vec![Range { start: 0, end: size }];
        assert_eq!(plan_parts(10 * M, 4, false), whole(10 * M));
        assert_eq!(plan_parts(10 * M, 1, true), whole(10 * M));
        assert_eq!(plan_parts(M / 2, 4, true), whole(M / 2));
        assert_eq!(plan_parts(0, 4, true), whole(0));
        assert_eq!(plan_parts(2 * M + 1, 4, true).len(), 2);
        for (size, n) in [(10 * M + 3, 4), (4 * M, 4), (100 * M + 7, 3)] {
            let ranges = plan_parts(size, n, true);
            assert_eq!(ranges.len(), n);
            let mut at = 0;
            for r in &ranges {
                assert_eq!(r.start, at);
                assert!(r.end - r.start >= M);
                at = r.end;
            }
            assert_eq!(at, size);
        }
    }
}
