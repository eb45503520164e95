//! Where upload bytes and records live, behind one small trait.
//!
//! [`Storage`] is the seam every backend implements; the local file system
//! ([`FsStorage`]) is the embedded default. The trait knows nothing of HTTP or
//! tus: it stores bytes at offsets and small records. Its contract is checked
//! for any backend by [`contract::run`].

pub mod contract;
mod fs;

pub use fs::FsStorage;

use crate::id::UploadId;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::time::SystemTime;

/// A request body on its way to storage. An `Err` item means the body ended
/// early (client gone, limit crossed, checksum wrong, interrupted): why is
/// known to whoever produced the stream, not to storage.
pub type BodyStream<'a> = &'a mut (dyn Stream<Item = Result<Bytes, BodyStopped>> + Unpin + 'a);

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

/// A new upload's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// Its id (random, from [`UploadId::random`]).
    pub id: UploadId,
    /// Total length, or `None` while deferred.
    pub length: Option<u64>,
    /// The raw `Upload-Metadata` header, echoed back by HEAD.
    pub metadata: String,
    /// Who owns it (the token's subject), when authorization is on.
    pub owner: Option<String>,
}

/// What storage knows of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    /// The id.
    pub id: UploadId,
    /// Bytes stored so far: every byte below this offset is as received.
    pub offset: u64,
    /// Total length, or `None` while deferred.
    pub length: Option<u64>,
    /// The raw `Upload-Metadata` header.
    pub metadata: String,
    /// When it was created.
    pub created_at: SystemTime,
    /// When bytes last arrived (creation time if none have).
    pub modified_at: SystemTime,
    /// The sniffed MIME type, recorded when the upload completed.
    pub file_type: Option<String>,
    /// Who owns it, when authorization is on.
    pub owner: Option<String>,
}

impl UploadInfo {
    /// Whether every declared byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.length == Some(self.offset)
    }
}

/// Storage failures. Backends map their own errors into these.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No upload has this id.
    #[error("no such upload")]
    NotFound,
    /// The upload was terminated or expired.
    #[error("upload terminated or expired")]
    Gone,
    /// An append did not start at the stored offset.
    #[error("upload is at offset {actual}")]
    OffsetMismatch {
        /// The stored offset.
        actual: u64,
    },
    /// No space left; bytes stored before this are kept.
    #[error("no space left")]
    Full,
    /// The backend failed (disk, network, corrupt record).
    #[error(transparent)]
    Io(std::io::Error),
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => StorageError::Full,
            _ => StorageError::Io(e),
        }
    }
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A place to keep uploads. Implementations must be safe to share between
/// worker threads; the server guarantees one writer per upload at a time.
///
/// Contracts (checked by [`contract::run`]):
/// - every method returns [`StorageError::NotFound`] for an unknown id and
///   [`StorageError::Gone`] for a terminated or expired one;
/// - state survives a restart of the process, and a crash during `append`
///   leaves an offset whose bytes are all as received.
#[async_trait(?Send)]
pub trait Storage: Send + Sync + 'static {
    /// Creates an empty upload.
    async fn create(&self, upload: NewUpload) -> Result<UploadInfo>;

    /// The upload's current state.
    async fn info(&self, id: &UploadId) -> Result<UploadInfo>;

    /// Appends `body` at `offset`, which must be the stored offset (else
    /// [`StorageError::OffsetMismatch`], nothing written). Returns the new
    /// offset. When the body stops early, `mode` says what is kept. Memory use
    /// must not depend on the body's length.
    async fn append(&self, id: &UploadId, offset: u64, body: BodyStream<'_>, mode: AppendMode) -> Result<u64>;

    /// Sets the length of an upload created with a deferred length.
    async fn declare_length(&self, id: &UploadId, length: u64) -> Result<()>;

    /// Up to `max` leading bytes of the upload (fewer if fewer are stored).
    async fn read_head(&self, id: &UploadId, max: usize) -> Result<Vec<u8>>;

    /// Records the sniffed type of a completed upload.
    async fn set_file_type(&self, id: &UploadId, mime: &str) -> Result<()>;

    /// The stored bytes, streamed; for completed uploads.
    async fn read(&self, id: &UploadId) -> Result<Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>>;

    /// Deletes the upload's bytes; later calls answer [`StorageError::Gone`].
    async fn terminate(&self, id: &UploadId) -> Result<()>;

    /// Ids of incomplete uploads whose last write is older than `cutoff`.
    async fn stale(&self, cutoff: SystemTime) -> Result<Vec<UploadId>>;

    /// Memory one `append` holds while it streams (its write buffers); the
    /// server's memory budget is counted in these.
    fn append_memory(&self) -> u64;

    /// Bytes that can still be stored, if the backend can tell.
    async fn available_space(&self) -> Option<u64> {
        None
    }

    /// Whether the backend can take writes now (for readiness probes).
    async fn check_writable(&self) -> Result<()>;

    /// Forgets terminated or expired uploads that went away before `cutoff`,
    /// so their ids answer [`StorageError::NotFound`] from then on.
    async fn purge_tombstones(&self, cutoff: SystemTime) -> Result<usize>;
}
