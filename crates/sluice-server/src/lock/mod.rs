//! One writer per upload, and how a newer request takes over from an older one.
//!
//! A request that writes (append, terminate, join) holds its upload's [`Lease`]; a
//! request that only reads where an upload stands (HEAD) preempts the writer without
//! taking the lease. When the lease is held (say by an older PATCH whose client
//! vanished without closing the connection), the newer request asks the holder to
//! stop — the holder's [`Lease::cancellation`] fires, it saves what it received and
//! answers `409 upload_interrupted` — and waits up to the takeover wait. If the
//! holder does not let go in time, the newer request gets `423 upload_locked`. This
//! is the behaviour of tusd and of the IETF resumable-uploads draft: a client that
//! lost its connection can always resume at once, and writes never interleave.
//!
//! Every lease carries a [`Fence`]: a number larger than any lease of the same upload
//! granted before. Record stores refuse a commit whose fence is older than the last
//! one they accepted, so a writer whose lease lapsed (it was paused, its instance lost
//! the database) cannot overwrite what a newer writer committed. A shared
//! implementation renews its lease while the holder streams and fires the
//! cancellation if renewal fails.

pub mod memory;
pub mod postgres;

pub use memory::MemoryLocks;
pub use postgres::PgLocks;

use crate::id::UploadId;
use crate::store::Fence;
use async_trait::async_trait;
use futures_util::future::{FutureExt, LocalBoxFuture};
use tokio_util::sync::CancellationToken;

/// Why a lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The holder did not let go within the takeover wait.
    #[error("the upload is held by another request")]
    Locked,
    /// The lock service cannot be reached now.
    #[error("lock service unavailable: {0}")]
    Unavailable(String),
}

/// The lock service.
#[async_trait(?Send)]
pub trait Locks: Send + Sync + 'static {
    /// Becomes the writer of `id`, asking a current holder to let go first.
    async fn acquire(&self, id: &UploadId) -> Result<Lease, LockError>;

    /// Becomes the writer of `id` only if nobody is (no takeover, no wait): for
    /// background work such as the expiry sweep, which must never remove an upload
    /// that someone holds.
    async fn try_acquire(&self, id: &UploadId) -> Result<Option<Lease>, LockError>;

    /// Makes sure nobody writes to `id` at this moment, without becoming its writer:
    /// a current holder is asked to stop and waited for ([`LockError::Locked`] if it
    /// does not let go in time). Readers use this so they never queue behind one another.
    async fn preempt(&self, id: &UploadId) -> Result<(), LockError>;
}

/// What a lease's implementation does when it ends.
pub trait Held {
    /// Lets go of the lease.
    fn release(self: Box<Self>) -> LocalBoxFuture<'static, ()>;
}

/// Proof of being the one writer of an upload, until released or dropped.
pub struct Lease {
    fence: Fence,
    cancel: CancellationToken,
    held: Option<Box<dyn Held>>,
}

impl Lease {
    /// A lease with its fence, its cancellation (fired when a newer request wants the
    /// upload, the server shuts down or the lease is lost) and what releases it.
    pub fn new(fence: Fence, cancel: CancellationToken, held: Box<dyn Held>) -> Lease {
        Lease { fence, cancel, held: Some(held) }
    }

    /// The fencing token to commit with.
    pub fn fence(&self) -> Fence {
        self.fence
    }

    /// Fires when the holder should stop writing and let go.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Lets go, and waits until the lock service knows.
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}

impl Drop for Lease {
    /// A lease dropped without [`Lease::release`] (an error path, a cancelled request)
    /// is released at once when that needs no I/O, else in the background.
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            let mut release = held.release();
            if (&mut release).now_or_never().is_none() {
                actix_web::rt::spawn(release);
            }
        }
    }
}
