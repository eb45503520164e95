//! Where uploads live, behind two small seams that know nothing of HTTP:
//!
//! - a [`RecordStore`] keeps each upload's [`UploadRecord`] (offset, length, kind,
//!   metadata, the sniffed leading bytes) and moves the offset by compare-and-set,
//!   fenced by the writer's lock;
//! - a [`ByteStore`] keeps the bytes: appends at an offset, ranged reads, finish,
//!   delete and an optional fast path for joining uploads.
//!
//! The embedded default is the local disk ([`fs`]); [`s3`] keeps bytes in S3-compatible
//! object storage; [`postgres`] keeps records in PostgreSQL, shared by every instance;
//! [`memory`] keeps both in RAM (tests, and proof that the seams are not shaped around
//! files). Every backend
//! passes the same contract (`contract`, behind the `testing` feature).
//!
//! **The record is the truth.** An offset is acknowledged only once the record
//! says so; a byte store may hold bytes past it (written before a crash), which
//! are never read and are overwritten by the next append.

#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod fs;
pub mod memory;
pub mod postgres;
mod record;
pub mod s3;
mod usage;

pub use record::{to_millis, Fence, Kind, Protocol, State, UploadRecord};
pub use usage::{OpenUsage, UsageIndex};

use crate::id::UploadId;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

/// A request body on its way to a byte store. An `Err` item means the body ended
/// early (client gone, limit crossed, checksum wrong, interrupted): why is known to
/// whoever produced the stream, not to the store.
pub type BodyStream<'a> = &'a mut (dyn Stream<Item = Result<Bytes, BodyStopped>> + Unpin + 'a);

/// Stored bytes on their way out.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>;

/// Marker for a body that ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyStopped;

/// What to keep when a body ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    /// Keep every byte received before the stop (tus's resumable default).
    KeepPartial,
    /// Keep all of this append or none of it (a checksummed chunk).
    AllOrNothing,
}

/// Store failures. Backends map their own errors into these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No upload has this id.
    #[error("no such upload")]
    NotFound,
    /// The upload was terminated or expired.
    #[error("upload terminated or expired")]
    Gone,
    /// An upload with this id exists already.
    #[error("upload exists already")]
    Exists,
    /// A compare-and-set found another offset (or a newer writer's fence).
    #[error("upload is at offset {actual}")]
    OffsetMismatch {
        /// The stored offset.
        actual: u64,
    },
    /// A newer writer holds the upload: this writer's fence is stale.
    #[error("a newer writer holds this upload")]
    Fenced,
    /// No space left; bytes stored before this are kept.
    #[error("no space left")]
    Full,
    /// The backend service (object store, database) cannot be reached now; retry later.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (disk, corrupt record, protocol error).
    #[error(transparent)]
    Io(std::io::Error),
    /// An append failed after storing some of its bytes, in order, up to `end` (in
    /// [`AppendMode::KeepPartial`]; the engine acknowledges them and reports `cause`).
    #[error("{cause} (stored up to byte {end})")]
    Partial {
        /// Where the stored bytes end.
        end: u64,
        /// Why the append stopped.
        cause: Box<StoreError>,
    },
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => StoreError::Full,
            _ => StoreError::Io(e),
        }
    }
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keeps upload records. Shared by every worker (and, for shared backends, every
/// instance).
///
/// Contracts (checked by `contract::run`):
/// - `get`, `commit` and `mark_gone` return [`StoreError::NotFound`] for an unknown id
///   and [`StoreError::Gone`] for a terminated or expired one;
/// - `commit` is a compare-and-set: it writes only if the stored offset is
///   `expected_offset` (else [`StoreError::OffsetMismatch`]) and the stored fence is not
///   newer than the record's (else [`StoreError::Fenced`]);
/// - records survive a restart of the process.
#[async_trait(?Send)]
pub trait RecordStore: Send + Sync + 'static {
    /// Stores a new record ([`StoreError::Exists`] if the id is taken).
    async fn insert(&self, record: &UploadRecord) -> Result<()>;

    /// The record of a live upload.
    async fn get(&self, id: &UploadId) -> Result<UploadRecord>;

    /// Replaces the record if its stored offset is still `expected_offset` and its
    /// stored fence is not newer than `record.fence` (see the trait docs).
    async fn commit(&self, record: &UploadRecord, expected_offset: u64) -> Result<()>;

    /// Marks the upload terminated or expired: later calls answer [`StoreError::Gone`].
    async fn mark_gone(&self, id: &UploadId) -> Result<()>;

    /// Ids of unfinished uploads whose last write is older than `cutoff`.
    async fn stale(&self, cutoff: SystemTime) -> Result<Vec<UploadId>>;

    /// Forgets uploads that went away before `cutoff`, so their ids answer
    /// [`StoreError::NotFound`] from then on. Returns how many.
    async fn purge_tombstones(&self, cutoff: SystemTime) -> Result<usize>;

    /// Unfinished uploads of one client, and their declared bytes not yet received.
    async fn open_usage(&self, client: &str) -> Result<OpenUsage>;

    /// Declared bytes not yet received, over every unfinished upload (what the
    /// server has promised to store).
    async fn promised_bytes(&self) -> Result<u64>;

    /// Whether the store answers now (for readiness probes).
    async fn check(&self) -> Result<()>;
}

/// Keeps upload bytes.
///
/// Contracts (checked by `contract::run`):
/// - `append` writes at `offset`, which must not be past the bytes stored (bytes
///   stored past it, left by a crash, are overwritten); it returns the new end. When
///   the body stops early, `mode` says what is kept. When the backend fails after
///   storing some bytes of a [`AppendMode::KeepPartial`] append, it answers
///   [`StoreError::Partial`] with their end. Memory must not depend on the body's length;
/// - `read` streams exactly the range asked for, from bytes appended before;
/// - `delete` removes everything; later calls answer [`StoreError::Gone`] or
///   [`StoreError::NotFound`].
#[async_trait(?Send)]
pub trait ByteStore: Send + Sync + 'static {
    /// Makes room for a new upload's bytes.
    async fn create(&self, id: &UploadId) -> Result<()>;

    /// Appends `body` at `offset` on behalf of the writer holding `fence`; returns the
    /// new end of the stored bytes.
    async fn append(
        &self,
        id: &UploadId,
        offset: u64,
        body: BodyStream<'_>,
        mode: AppendMode,
        fence: Fence,
    ) -> Result<u64>;

    /// Seals an upload whose `length` bytes are all stored: it takes no more appends
    /// (an object store completes its multipart upload here).
    async fn finish(&self, id: &UploadId, length: u64) -> Result<()>;

    /// Fast path for joining finished uploads `parts` (id and length, in order) into the
    /// empty upload `id`. `Ok(false)` when the backend has no fast path: the caller then
    /// streams the parts through [`ByteStore::append`].
    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<bool> {
        let _ = (id, parts);
        Ok(false)
    }

    /// The bytes in `range`, streamed.
    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream>;

    /// Deletes the upload's bytes.
    async fn delete(&self, id: &UploadId) -> Result<()>;

    /// Memory one `append` holds while it streams (its buffers); the memory budget is
    /// counted in these.
    fn append_memory(&self) -> u64;

    /// Bytes that can still be stored, if the backend can tell.
    async fn available_space(&self) -> Option<u64> {
        None
    }

    /// Whether the backend takes writes now (for readiness probes).
    async fn check_writable(&self) -> Result<()>;
}
