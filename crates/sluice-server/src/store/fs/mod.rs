//! The embedded default backend: the local file system, no service to run.
//!
//! Layout under the data directory, one upload per id:
//!
//! ```text
//! uploads/{id}.bin      the bytes (possibly followed by bytes never acknowledged)
//! uploads/{id}.json     the record (see `UploadRecord`), written whole or not at all
//! ```
//!
//! An append writes bytes first and commits the record's offset after, so after a
//! crash (even `kill -9` mid-append) every byte below the recorded offset is one that
//! was written; bytes past it were never acknowledged and the next append overwrites
//! them. A checksummed (all-or-nothing) chunk simply never commits when it fails.
//!
//! **What an acknowledged offset guarantees.** By default bytes are in the operating
//! system's page cache when a PATCH is acknowledged: they survive the process crashing
//! or being killed, not necessarily a power loss or a kernel crash. If the file system
//! comes back with a data file shorter than its record, [`open`] lowers the record to
//! what is really there and the client resumes from it. With `durable` (`--fsync`),
//! data is flushed with `fdatasync` before the record is committed, and records with
//! their directory, so acknowledged bytes survive power loss too.

mod bytes;
mod parsed;
mod records;
mod writer;

pub use self::bytes::FsBytes;
pub use records::FsRecords;
pub use writer::BLOCK;
pub(crate) use writer::{BlockWriter, Pacer};

use std::fs;
use std::io;
use std::path::Path;

/// Opens (creating if needed) both stores under `data_dir`, and repairs what a crash
/// may have left: stray temporary files, data files without a record, bytes past a
/// record's offset, records past their data.
pub fn open(data_dir: impl AsRef<Path>, durable: bool) -> io::Result<(FsRecords, FsBytes)> {
    let dir = data_dir.as_ref().join("uploads");
    fs::create_dir_all(&dir)?;
    let records = FsRecords::open(&dir, durable)?;
    let bytes = FsBytes::new(&dir, durable);
    records.reconcile(Some(&bytes))?;
    Ok((records, bytes))
}

/// The byte store alone under `data_dir` (records kept elsewhere, such as PostgreSQL).
/// Bytes past a record's offset are overwritten by the next append, so no repair is needed.
pub fn open_bytes(data_dir: impl AsRef<Path>, durable: bool) -> io::Result<FsBytes> {
    let dir = data_dir.as_ref().join("uploads");
    fs::create_dir_all(&dir)?;
    Ok(FsBytes::new(&dir, durable))
}

/// Opens (creating if needed) only the record store under `data_dir`, for bytes kept
/// elsewhere (object storage): records are never lowered to match local data files.
pub fn open_records(data_dir: impl AsRef<Path>, durable: bool) -> io::Result<FsRecords> {
    let dir = data_dir.as_ref().join("uploads");
    fs::create_dir_all(&dir)?;
    let records = FsRecords::open(&dir, durable)?;
    records.reconcile(None)?;
    Ok(records)
}
