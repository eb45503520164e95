//! A local file to upload: what the checks need (name, size, leading bytes),
//! and reading any byte range of it through a fixed buffer, either as a
//! request body or into a checksum. A file is never loaded whole: memory per
//! transfer is a few buffers whatever the file's size.

use crate::error::{Error, Result};
use bytes::Bytes;
use sluice_core::{Algorithm, SNIFF_LEN};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// Size of one read; bodies and checksums go through buffers of this size.
pub const BUFFER_SIZE: usize = 256 << 10;
/// Buffers a body reads ahead of the socket.
const READ_AHEAD: usize = 2;

/// A local file, opened and measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// The path as given.
    pub path: PathBuf,
    /// The canonical path (what resumption is keyed on).
    pub canonical: PathBuf,
    /// The file name sent as `filename` metadata and checked against the policy.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub modified: Option<SystemTime>,
    /// The first `min(SNIFF_LEN, size)` bytes: enough to sniff the type.
    pub leading: Vec<u8>,
}

impl LocalFile {
    /// Opens `path` and reads what the checks need (blocking I/O: at most [`SNIFF_LEN`] bytes).
    pub fn open(path: &Path) -> Result<LocalFile> {
        let err = |e: std::io::Error| Error::read(path, &e);
        let canonical = std::fs::canonicalize(path).map_err(err)?;
        let mut file = File::open(&canonical).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Err(Error::new(crate::error::code::READ_ERROR, format!("{}: not a regular file", path.display())));
        }
        let mut leading = Vec::with_capacity(SNIFF_LEN);
        file.by_ref().take(SNIFF_LEN as u64).read_to_end(&mut leading).map_err(err)?;
        let name = canonical.file_name().map(|n| n.to_string_lossy().into_owned());
        Ok(LocalFile {
            path: path.to_path_buf(),
            canonical,
            name,
            size: meta.len(),
            modified: meta.modified().ok(),
            leading,
        })
    }

    /// Whether the file on disk still has the size and modification time measured at open.
    pub(crate) fn unchanged(&self) -> Result<()> {
        let meta = std::fs::metadata(&self.canonical).map_err(|e| Error::read(&self.path, &e))?;
        if meta.len() != self.size || meta.modified().ok() != self.modified {
            return Err(Error::new(
                crate::error::code::READ_ERROR,
                format!("{} changed while it was being uploaded; run again to start it afresh", self.path.display()),
            ));
        }
        Ok(())
    }

    /// The bytes `start..start + len` as a request body with an exact length.
    pub(crate) fn body(&self, start: u64, len: u64) -> FileBody {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let path = self.canonical.clone();
        tokio::task::spawn_blocking(move || {
            let result = File::open(&path).and_then(|mut file| {
                file.seek(SeekFrom::Start(start))?;
                let mut left = len;
                while left > 0 {
                    let n = (left as usize).min(BUFFER_SIZE);
                    let mut buf = vec![0; n];
                    file.read_exact(&mut buf)?;
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break; // the request ended (failed or cancelled): stop reading.
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        FileBody { rx, left: len }
    }

    /// The checksum of the bytes `start..start + len` (blocking I/O through one buffer).
    pub(crate) fn digest(&self, algorithm: Algorithm, start: u64, len: u64) -> Result<Vec<u8>> {
        let err = |e: std::io::Error| Error::read(&self.path, &e);
        let mut file = File::open(&self.canonical).map_err(err)?;
        file.seek(SeekFrom::Start(start)).map_err(err)?;
        let mut hasher = algorithm.hasher();
        let mut buf = vec![0; BUFFER_SIZE];
        let mut left = len;
        while left > 0 {
            let n = (left as usize).min(BUFFER_SIZE);
            file.read_exact(&mut buf[..n]).map_err(err)?;
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        Ok(hasher.finalize())
    }
}

/// A byte range of a file as an HTTP body: read on the blocking pool a couple of
/// buffers ahead of the socket, with an exact size (so it goes out with `Content-Length`).
pub(crate) struct FileBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    left: u64,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.left -= bytes.len() as u64;
                Poll::Ready(Some(Ok(http_body::Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file ended before the range did",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// Expands the paths given on the command line: a directory stands for every
/// regular file below it, in name order. Unreadable directories are errors of their own.
pub fn expand(paths: &[PathBuf]) -> Vec<(PathBuf, Result<()>)> {
    let mut out = Vec::new();
    for path in paths {
        walk(path, &mut out);
    }
    out
}

fn walk(path: &Path, out: &mut Vec<(PathBuf, Result<()>)>) {
    if !path.is_dir() {
        out.push((path.to_path_buf(), Ok(())));
        return;
    }
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            children.sort();
            for child in children {
                walk(&child, out);
            }
        }
        Err(e) => out.push((path.to_path_buf(), Err(Error::read(path, &e)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(clippy::unwrap_used)]
    #[test]
    fn ranges_read_and_hash_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let data: Vec<u8> = (0..(BUFFER_SIZE * 2 + 77)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = LocalFile::open(&path).unwrap();
        assert_eq!(file.size, data.len() as u64);
        assert_eq!(file.leading, data[..SNIFF_LEN]);
        assert_eq!(file.name.as_deref(), Some("a.bin"));
        let (start, len) = (1000u64, BUFFER_SIZE as u64 + 5000);
        let mut want = Algorithm::Sha256.hasher();
        want.update(&data[start as usize..(start + len) as usize]);
        assert_eq!(file.digest(Algorithm::Sha256, start, len).unwrap(), want.finalize());
        let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
        let got = rt.block_on(async {
            use http_body::Body as _;
            let mut body = file.body(start, len);
            assert_eq!(body.size_hint().exact(), Some(len));
            let mut got = Vec::new();
            while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                got.extend_from_slice(frame.unwrap().data_ref().unwrap());
            }
            got
        });
        assert_eq!(got, data[start as usize..(start + len) as usize]);
        assert!(file.unchanged().is_ok());
        std::fs::write(&path, b"shorter").unwrap();
        assert_eq!(file.unchanged().unwrap_err().code, "read_error");
    }

    #[allow(clippy::unwrap_used)]
    #[test]
    fn directories_expand_to_their_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["b", "a", "sub/c"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let got: Vec<PathBuf> = expand(&[dir.path().to_path_buf()]).into_iter().map(|(p, _)| p).collect();
        let want: Vec<PathBuf> = ["a", "b", "sub/c"].iter().map(|n| dir.path().join(n)).collect();
        assert_eq!(got, want);
    }
}
