//! Reading parts of a `Blob` without ever reading it whole.
//!
//! - [`leading_bytes`] reads the first few KiB (what the sniffer needs) with
//!   `Blob.slice(0, n).arrayBuffer()`.
//! - [`Reader`] streams a byte range through a callback in pieces of at most
//!   [`READ_BUF`] bytes. It reads with a BYOB ("bring your own buffer")
//!   `ReadableStream` reader into one JS `ArrayBuffer` that is handed back and
//!   forth for the whole upload, and copies each piece into one reused wasm
//!   buffer, so hashing a multi-GiB file keeps the tab's memory flat. Where BYOB
//!   readers are missing it falls back to `arrayBuffer()` on small slices.

use crate::error::{code, Error, Result};
use crate::js;
use js_sys::{ArrayBuffer, Object, Uint8Array};
use std::ops::Range;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, ReadableStreamByobReader, ReadableStreamGetReaderOptions, ReadableStreamReaderMode};

/// Size of the reused read buffer (one in JS, one in wasm memory).
pub const READ_BUF: usize = 1 << 20;

/// The size of a blob in bytes (`Blob.size` is a double; sizes fit in 2^53).
pub fn size(blob: &Blob) -> u64 {
    blob.size() as u64
}

/// `blob.slice(start, end)`.
pub fn slice(blob: &Blob, range: Range<u64>) -> Result<Blob> {
    blob.slice_with_f64_and_f64(range.start as f64, range.end as f64).map_err(read_error)
}

/// Reads the first `min(n, size)` bytes.
pub async fn leading_bytes(blob: &Blob, n: usize) -> Result<Vec<u8>> {
    let end = size(blob).min(n as u64);
    if end == 0 {
        return Ok(Vec::new());
    }
    let buf = JsFuture::from(slice(blob, 0..end)?.array_buffer()).await.map_err(read_error)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

fn read_error(err: JsValue) -> Error {
    Error::new(code::READ_ERROR, format!("The file could not be read: {}", js::describe(&err)))
}

/// Streams byte ranges of blobs through a reused pair of buffers.
pub struct Reader {
    /// The JS buffer the BYOB reader fills; `None` while it is lent to a read
    /// (or after a read that did not give it back).
    js_buf: Option<ArrayBuffer>,
    /// The wasm-side copy handed to callbacks.
    scratch: Vec<u8>,
    byob: bool,
}

impl Default for Reader {
    fn default() -> Self {
        Reader { js_buf: None, scratch: vec![0; READ_BUF], byob: true }
    }
}

impl Reader {
    /// A reader with its buffers allocated lazily on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `sink` with the bytes of `blob[range]`, in order, in pieces of at
    /// most [`READ_BUF`] bytes. `sink` may be called with an empty slice never.
    pub async fn read(&mut self, blob: &Blob, range: Range<u64>, mut sink: impl FnMut(&[u8])) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let part = slice(blob, range.clone())?;
        if self.byob {
            match self.read_byob(&part, &mut sink).await {
                Ok(n) if n == range.end - range.start => return Ok(()),
                Ok(n) => {
                    return Err(Error::new(
                        code::READ_ERROR,
                        format!("The file changed while it was read ({n} of {} bytes).", range.end - range.start),
                    ))
                }
                Err(ReadFailure::Unsupported) => self.byob = false,
                Err(ReadFailure::Failed(e)) => return Err(e),
            }
        }
        self.read_sliced(&part, &mut sink).await
    }

    /// BYOB path: one `ArrayBuffer` lent to `read()` and returned in each result.
    /// Each piece is copied into the wasm buffer and the next read is issued
    /// *before* `sink` runs, so reading the file overlaps hashing it.
    async fn read_byob(&mut self, part: &Blob, sink: &mut impl FnMut(&[u8])) -> Result<u64, ReadFailure> {
        let options = ReadableStreamGetReaderOptions::new();
        options.set_mode(ReadableStreamReaderMode::Byob);
        let stream = part.stream();
        let reader = js_sys::Reflect::get(&stream, &"getReader".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or(ReadFailure::Unsupported)?
            .call1(&stream, &options)
            .map_err(|_| ReadFailure::Unsupported)?
            .unchecked_into::<ReadableStreamByobReader>();
        let read = |buf: ArrayBuffer| {
            let view: Object = Uint8Array::new(&buf).into();
            JsFuture::from(reader.read_with_array_buffer_view(&view))
        };
        let mut pending = read(self.js_buf.take().unwrap_or_else(|| ArrayBuffer::new(READ_BUF as u32)));
        let mut total = 0u64;
        loop {
            let result = pending.await.map_err(|e| ReadFailure::Failed(read_error(e)))?;
            let value = js::get(&result, "value");
            let done = js::get(&result, "done").as_bool().unwrap_or(true);
            let mut n = 0;
            let mut buf = None;
            if let Some(chunk) = value.dyn_ref::<Uint8Array>() {
                n = chunk.length() as usize;
                chunk.copy_to(&mut self.scratch[..n]);
                // The filled view's buffer is ours again: lend it to the next read.
                buf = Some(chunk.buffer());
            }
            if done {
                self.js_buf = buf;
                if n > 0 {
                    sink(&self.scratch[..n]);
                    total += n as u64;
                }
                return Ok(total);
            }
            pending = read(buf.unwrap_or_else(|| ArrayBuffer::new(READ_BUF as u32)));
            if n > 0 {
                sink(&self.scratch[..n]);
                total += n as u64;
            }
        }
    }

    /// Fallback: `arrayBuffer()` on slices of at most `READ_BUF` bytes.
    async fn read_sliced(&mut self, part: &Blob, sink: &mut impl FnMut(&[u8])) -> Result<()> {
        for sub in sluice_core::chunk::plan(0, size(part), READ_BUF as u64) {
            let buf = JsFuture::from(slice(part, sub)?.array_buffer()).await.map_err(read_error)?;
            let view = Uint8Array::new(&buf);
            let n = view.length() as usize;
            view.copy_to(&mut self.scratch[..n]);
            sink(&self.scratch[..n]);
        }
        Ok(())
    }
}

enum ReadFailure {
    Unsupported,
    Failed(Error),
}
