//! Writes a stream of byte slices to a file through two fixed buffers, so memory per
//! append is constant.
//!
//! **Adaptive.** While the page cache takes writes at memory speed, data is written
//! inline on the worker thread: a hand-off to the blocking pool costs more than the
//! write. Inline, a chunk that is not small goes from the network's buffer straight to
//! the file, with no copy (measured: copying 4 GiB through a block buffer first cost
//! a third of the rate on this VM); small chunks are gathered into a block first.
//! When a write is slow (the kernel throttles dirty pages, the disk is busy),
//! every writer of the process switches to the blocking pool for a while, one buffer
//! filling from the network while the other is written, so a slow disk does not stall
//! the worker threads that answer everyone else; then it tries inline again.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{spawn_blocking, JoinHandle};

/// An inline write slower than this sends writes to the blocking pool.
const SLOW_WRITE: Duration = Duration::from_millis(2);
/// How long writes stay on the blocking pool before inline writes are tried again.
const POOLED_FOR: Duration = Duration::from_secs(2);

/// Inline, a chunk at least this long is written as it is instead of being gathered.
const DIRECT: usize = 16 * 1024;

/// Where writes go now, shared by every writer of a store.
#[derive(Debug)]
pub(crate) struct Pacer {
    epoch: Instant,
    /// Milliseconds since `epoch` until which writes go to the blocking pool.
    pooled_until: AtomicU64,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer { epoch: Instant::now(), pooled_until: AtomicU64::new(0) }
    }
}

impl Pacer {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn inline(&self) -> bool {
        self.now_ms() >= self.pooled_until.load(Ordering::Relaxed)
    }

    fn slow_write_seen(&self) {
        self.pooled_until.store(self.now_ms() + POOLED_FOR.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Size of each of an append's two write buffers, and of reads.
pub const BLOCK: usize = 128 * 1024;

/// Write buffers, reused: appends take two and give them back, so buffer memory is
/// exactly what admission allows and the heap does not churn.
#[derive(Debug, Default)]
pub(crate) struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

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

/// `fdatasync` on the blocking pool (it can take long on a busy disk).
pub(super) async fn sync_data(file: File) -> io::Result<()> {
    spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other)?
}

/// A write on the worker thread; a slow one sends every writer to the blocking pool for a while.
fn write_inline(file: &mut File, pacer: &Pacer, data: &[u8]) -> io::Result<()> {
    let started = Instant::now();
    let result = file.write_all(data);
    if started.elapsed() > SLOW_WRITE {
        pacer.slow_write_seen();
    }
    result
}

/// A block write on the blocking pool: it hands back the file and the buffer.
type BlockWrite = JoinHandle<(File, Vec<u8>, io::Result<()>)>;

/// Writes a stream of byte slices through two fixed buffers: one fills while
/// the other is written on the blocking pool.
pub(crate) struct BlockWriter {
    file: Option<File>,
    filling: Vec<u8>,
    spare: Option<Vec<u8>>,
    in_flight: Option<BlockWrite>,
    pool: Arc<BufferPool>,
    pacer: Arc<Pacer>,
}

impl BlockWriter {
    pub(crate) fn new(file: File, pool: Arc<BufferPool>, pacer: Arc<Pacer>) -> BlockWriter {
        BlockWriter { file: Some(file), filling: pool.take(), spare: None, in_flight: None, pool, pacer }
    }

    pub(crate) async fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        if data.len() >= DIRECT && self.filling.is_empty() && self.in_flight.is_none() && self.pacer.inline() {
            let file = self.file.as_mut().ok_or_else(|| io::Error::other("block writer lost its file"))?;
            return write_inline(file, &self.pacer, data);
        }
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
        if self.pacer.inline() {
            let file = self.file.as_mut().ok_or_else(|| io::Error::other("block writer lost its file"))?;
            let result = write_inline(file, &self.pacer, &self.filling);
            self.filling.clear();
            return result;
        }

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
    pub(crate) async fn finish(mut self) -> io::Result<File> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of every kind of size: small ones gathered, large ones written straight
    /// through, some crossing a block boundary.
    fn chunks() -> Vec<Vec<u8>> {
        let sizes = [10, DIRECT, 3, BLOCK + 7, DIRECT - 1, 2 * BLOCK, 1, DIRECT + 5, BLOCK - 11, 64 * 1024];
        sizes.iter().enumerate().map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect()).collect()
    }

    async fn write_all(pacer: Arc<Pacer>) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let mut writer = BlockWriter::new(File::create(&path).unwrap(), Arc::default(), pacer);
        let mut expected = Vec::new();
        for chunk in chunks() {
            writer.push(&chunk).await.unwrap();
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
        let pacer = Arc::new(Pacer::default());
        pacer.slow_write_seen();
        assert!(!pacer.inline());
        let (written, expected) = write_all(pacer).await;
        assert!(written == expected, "the file differs from the chunks sent");
    }
}
