//! Writes a stream of byte slices to a file through two fixed buffers: one fills
//! from the network while the other is written on the blocking pool, so memory per
//! append is constant and a slow disk never stalls a worker thread.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use tokio::task::{spawn_blocking, JoinHandle};

/// Size of each of an append's two write buffers, and of reads.
pub const BLOCK: usize = 128 * 1024;

/// Write buffers, reused: appends take two and give them back, so buffer memory is
/// exactly what admission allows and the heap does not churn.
#[derive(Debug, Default)]
pub struct BufferPool(std::sync::Mutex<Vec<Vec<u8>>>);

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
pub async fn sync_data(file: File) -> io::Result<()> {
    spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other)?
}

/// A block write on the blocking pool: it hands back the file and the buffer.
type BlockWrite = JoinHandle<(File, Vec<u8>, io::Result<()>)>;

/// Writes a stream of byte slices through two fixed buffers: one fills while
/// the other is written on the blocking pool.
pub struct BlockWriter {
    file: Option<File>,
    filling: Vec<u8>,
    spare: Option<Vec<u8>>,
    in_flight: Option<BlockWrite>,
    pool: Arc<BufferPool>,
}

impl BlockWriter {
    pub fn new(file: File, pool: Arc<BufferPool>) -> BlockWriter {
        BlockWriter { file: Some(file), filling: pool.take(), spare: None, in_flight: None, pool }
    }

    pub async fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
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
    pub async fn finish(mut self) -> io::Result<File> {
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
