//! Writes a stream of chunks to a file, holding at most two blocks' worth of them, so
//! memory per append is constant.
//!
//! **Adaptive.** While the page cache takes writes at memory speed, data is written
//! inline on the worker thread: a hand-off to the blocking pool costs more than the
//! write. Inline, a chunk that is not small goes from the network's buffer straight to
//! the file, with no copy (measured: copying 4 GiB through a block buffer first cost
//! a third of the rate on this VM); small chunks are gathered into a block first.
//! When writes stall the worker (the kernel throttles dirty pages, the disk is busy)
//! for over 1 % of a second, every writer on a worker that serves other connections
//! switches to the blocking pool for a while, one batch filling from the network while
//! the other is written, so a slow disk does not stall the worker threads that answer
//! everyone else; then it tries inline again. An upload alone on its worker holds no
//! one up, so it stays inline. A batch holds the network's chunks themselves
//! (reference-counted) and is written with one `writev`: the pool costs a hand-off per
//! block, not a copy of every byte.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{spawn_blocking, JoinHandle};

/// An inline write that took longer than this stalled its worker: the time past it counts.
const SLOW_WRITE: Duration = Duration::from_millis(1);
/// The window over which stalls are added up.
const STALL_WINDOW: Duration = Duration::from_secs(1);
/// Stalls adding up to this within a window send writes to the blocking pool (1 % of
/// the worker's time: past it, a p99 of other requests on that worker would feel them).
const STALL_BUDGET: Duration = Duration::from_millis(10);
/// How long writes stay on the blocking pool before inline writes are tried again.
const POOLED_FOR: Duration = Duration::from_secs(2);

/// Inline, a chunk at least this long is written as it is instead of being gathered.
const DIRECT: usize = 16 * 1024;

/// Where writes go now, shared by every writer of a store.
///
/// A hand-off to the blocking pool costs a cross-core wake-up per batch (measured on this
/// VM: a 4 GiB PATCH on the pool spent more of its worker's time waking pool threads than
/// copying bytes), so one stray slow write (a journal commit, a page allocation) does not
/// move anyone: only stalls that add up to a share of the worker's time do. And a stall
/// holds up only the other connections of the same worker thread: an upload that has its
/// worker to itself always writes inline.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Whether the current worker thread serves other connections.
    others_here: fn() -> bool,
    epoch: Instant,
    /// Milliseconds since `epoch` until which writes go to the blocking pool.
    pooled_until: AtomicU64,
    /// Milliseconds since `epoch` when the current stall window began.
    window_start: AtomicU64,
    /// Microseconds of stall added up in the current window.
    stalled_us: AtomicU64,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            others_here: crate::worker::others_here,
            epoch: Instant::now(),
            pooled_until: AtomicU64::new(0),
            window_start: AtomicU64::new(0),
            stalled_us: AtomicU64::new(0),
        }
    }
}

impl Pacer {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn inline(&self) -> bool {
        !(self.others_here)() || self.now_ms() >= self.pooled_until.load(Ordering::Relaxed)
    }

    /// Notes an inline write that took `took`; stalls past the budget move writes to the pool.
    fn wrote_inline(&self, took: Duration) {
        let Some(stall) = took.checked_sub(SLOW_WRITE).filter(|s| !s.is_zero()) else { return };
        let now = self.now_ms();
        if now.saturating_sub(self.window_start.load(Ordering::Relaxed)) >= STALL_WINDOW.as_millis() as u64 {
            self.window_start.store(now, Ordering::Relaxed);
            self.stalled_us.store(0, Ordering::Relaxed);
        }
        let stalled = self.stalled_us.fetch_add(stall.as_micros() as u64, Ordering::Relaxed) + stall.as_micros() as u64;
        if stalled >= STALL_BUDGET.as_micros() as u64 {
            self.stalled_us.store(0, Ordering::Relaxed);
            self.pooled_until.store(now + POOLED_FOR.as_millis() as u64, Ordering::Relaxed);
        }
    }
}

/// Size of each of an append's two write buffers, and of reads.
pub const BLOCK: usize = 128 * 1024;

/// `fdatasync` on the blocking pool (it can take long on a busy disk).
pub(super) async fn sync_data(file: File) -> io::Result<()> {
    spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other)?
}

/// A write on the worker thread; stalls that add up send every writer to the blocking pool for a while.
fn write_inline(file: &mut File, pacer: &Pacer, batch: &[Bytes]) -> io::Result<()> {
    let started = Instant::now();
    let result = write_batch(file, batch);
    pacer.wrote_inline(started.elapsed());
    result
}

fn lost_file() -> io::Error {
    io::Error::other("block writer lost its file")
}

/// A batch write on the blocking pool: it hands back the file.
type BatchWrite = JoinHandle<(File, io::Result<()>)>;

/// Writes every slice of `batch`, in order, with as few `writev` calls as the kernel allows.
fn write_batch(file: &mut File, batch: &[Bytes]) -> io::Result<()> {
    if let [one] = batch {
        return file.write_all(one);
    }
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes a stream of chunks to a file. Inline, large chunks go straight from the
/// network's buffer to the file. On the blocking pool, chunks are handed over as they
/// are (reference-counted, not copied), at most a block's worth per write, one batch
/// filling while the other is written. Small chunks are gathered into a block first,
/// so a stream of tiny chunks costs a copy, not a system call each.
pub(crate) struct BlockWriter {
    file: Option<File>,
    /// Small chunks being gathered (empty, without a buffer, until one comes).
    small: Vec<u8>,
    /// What the next write takes, in order.
    batch: Vec<Bytes>,
    /// Bytes in `batch`.
    batched: usize,
    in_flight: Option<BatchWrite>,
    pacer: Arc<Pacer>,
}

impl BlockWriter {
    pub(crate) fn new(file: File, pacer: Arc<Pacer>) -> BlockWriter {
        BlockWriter { file: Some(file), small: Vec::new(), batch: Vec::new(), batched: 0, in_flight: None, pacer }
    }

    /// Writes `data` after everything pushed before it.
    pub(crate) async fn push(&mut self, mut data: Bytes) -> io::Result<()> {
        if data.len() >= DIRECT {
            if self.small.is_empty() && self.batch.is_empty() && self.in_flight.is_none() && self.pacer.inline() {
                let file = self.file.as_mut().ok_or_else(lost_file)?;
                return write_inline(file, &self.pacer, std::slice::from_ref(&data));
            }
            self.seal_small();
            self.batched += data.len();
            self.batch.push(data);
        } else {
            while !data.is_empty() {
                if self.small.capacity() == 0 {
                    // A sealed block went out as `Bytes` and is freed once written.
                    self.small = Vec::with_capacity(BLOCK);
                }
                let take = (BLOCK - self.small.len()).min(data.len());
                self.small.extend_from_slice(&data.split_to(take));
                if self.small.len() == BLOCK {
                    self.seal_small();
                }
            }
        }
        if self.batched >= BLOCK {
            self.submit().await?;
        }
        Ok(())
    }

    /// Moves the gathered small chunks into the batch.
    fn seal_small(&mut self) {
        if !self.small.is_empty() {
            let block = std::mem::take(&mut self.small);
            self.batched += block.len();
            self.batch.push(Bytes::from(block));
        }
    }

    async fn wait(&mut self) -> io::Result<()> {
        let Some(task) = self.in_flight.take() else { return Ok(()) };
        let (file, result) = task.await.map_err(io::Error::other)?;
        self.file = Some(file);
        result
    }

    async fn submit(&mut self) -> io::Result<()> {
        self.wait().await?;
        let batch = std::mem::take(&mut self.batch);
        self.batched = 0;
        if self.pacer.inline() {
            let file = self.file.as_mut().ok_or_else(lost_file)?;
            return write_inline(file, &self.pacer, &batch);
        }
        let mut file = self.file.take().ok_or_else(lost_file)?;
        self.in_flight = Some(spawn_blocking(move || {
            let result = write_batch(&mut file, &batch);
            (file, result)
        }));
        Ok(())
    }

    /// Writes what is buffered and waits for every write to land.
    pub(crate) async fn finish(mut self) -> io::Result<File> {
        self.seal_small();
        if !self.batch.is_empty() {
            self.submit().await?;
        }
        self.wait().await?;
        self.file.take().ok_or_else(lost_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of every kind of size: small ones gathered, large ones written straight
    /// through, some crossing a block boundary, and a run of small ones filling several
    /// gather blocks in a row.
    fn chunks() -> Vec<Vec<u8>> {
        let sizes = [10, DIRECT, 3, BLOCK + 7, DIRECT - 1, 2 * BLOCK, 1, DIRECT + 5, BLOCK - 11, 64 * 1024];
        let small_run = std::iter::repeat_n(DIRECT - 3, 40);
        let sizes = sizes.into_iter().chain(small_run).chain([DIRECT]);
        sizes.enumerate().map(|(i, n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect()).collect()
    }

    async fn write_all(pacer: Arc<Pacer>) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let mut writer = BlockWriter::new(File::create(&path).unwrap(), pacer);
        let mut expected = Vec::new();
        for chunk in chunks() {
            writer.push(Bytes::from(chunk.clone())).await.unwrap();
            expected.extend_from_slice(&chunk);
        }
        writer.finish().await.unwrap();
        (std::fs::read(&path).unwrap(), expected)
    }

    #[actix_web::test]
    async fn inline_writes_keep_every_byte_in_order() {
        let (written, expected) = write_all(Arc::default()).await;
        assert!(written == expected, "the file differs from the chunks sent");
    }

    #[actix_web::test]
    async fn pooled_writes_keep_every_byte_in_order() {
        let pacer = Arc::new(crowded());
        pacer.wrote_inline(SLOW_WRITE + STALL_BUDGET);
        assert!(!pacer.inline());
        let (written, expected) = write_all(pacer).await;
        assert!(written == expected, "the file differs from the chunks sent");
    }

    /// A pacer on a worker that serves other connections too.
    fn crowded() -> Pacer {
        Pacer { others_here: || true, ..Pacer::default() }
    }

    #[test]
    fn only_stalls_that_add_up_move_writes_to_the_pool() {
        let pacer = crowded();
        pacer.wrote_inline(Duration::from_micros(900));
        pacer.wrote_inline(SLOW_WRITE + Duration::from_millis(4));
        assert!(pacer.inline(), "one stray slow write keeps writes inline");
        pacer.wrote_inline(SLOW_WRITE + Duration::from_millis(6));
        assert!(!pacer.inline(), "10 ms of stalls within a second move writes to the pool");
    }

    #[test]
    fn an_upload_alone_on_its_worker_writes_inline() {
        let pacer = Pacer { others_here: || false, ..Pacer::default() };
        pacer.wrote_inline(SLOW_WRITE + STALL_BUDGET);
        assert!(pacer.inline(), "stalling a worker that serves no one else holds no one up");
    }
}
