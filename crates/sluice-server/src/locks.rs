//! One writer per upload, and how a newer request takes over from an older one.
//!
//! A PATCH or DELETE must hold its upload's lock; a HEAD preempts a writer
//! (see [`UploadLocks::preempt`]) without taking the lock. When the lock is held (say
//! an older PATCH whose client vanished without closing the connection), the
//! newer request asks the holder to stop — the holder saves what it received
//! and answers `409 upload_interrupted` — and waits up to `takeover_wait` for
//! the lock. If the holder does not let go in time, the newer request gets
//! `423 upload_locked`. This is the behaviour of tusd and of the IETF
//! resumable-uploads draft: a client that lost its connection can always
//! resume at once, and writes never interleave.

use crate::id::UploadId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Slot {
    writer: Arc<tokio::sync::Mutex<()>>,
    current: Mutex<CancellationToken>,
}

/// The lock table for every upload in this process.
pub struct UploadLocks {
    slots: Arc<Mutex<HashMap<UploadId, Arc<Slot>>>>,
    takeover_wait: Duration,
    shutdown: CancellationToken,
}

/// Proof of being the one writer of an upload; released on drop.
pub struct UploadGuard {
    _permit: OwnedMutexGuard<()>,
    cancel: CancellationToken,
    id: UploadId,
    slot: Arc<Slot>,
    slots: Arc<Mutex<HashMap<UploadId, Arc<Slot>>>>,
}

/// The lock was held and its holder did not let go in time.
#[derive(Debug)]
pub struct Locked;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UploadLocks {
    /// A lock table whose takeovers wait at most `takeover_wait`. Cancelling
    /// `shutdown` asks every holder to stop, as a takeover would.
    pub fn new(takeover_wait: Duration, shutdown: CancellationToken) -> UploadLocks {
        UploadLocks { slots: Arc::default(), takeover_wait, shutdown }
    }

    /// Becomes the writer of `id`, asking a current writer to stop first.
    pub async fn acquire(&self, id: &UploadId) -> Result<UploadGuard, Locked> {
        let slot = lock(&self.slots).entry(id.clone()).or_default().clone();
        let permit = match slot.writer.clone().try_lock_owned() {
            Ok(permit) => permit,
            Err(_) => {
                lock(&slot.current).cancel();
                tokio::time::timeout(self.takeover_wait, slot.writer.clone().lock_owned()).await.map_err(|_| Locked)?
            }
        };
        let cancel = self.shutdown.child_token();
        *lock(&slot.current) = cancel.clone();
        Ok(UploadGuard { _permit: permit, cancel, id: id.clone(), slot, slots: self.slots.clone() })
    }

    /// Makes sure nobody writes to `id` at this moment without becoming its
    /// writer: a current writer is asked to stop and waited for (`Locked` if it
    /// does not let go in time). Readers (HEAD) use this, so they never queue
    /// behind one another.
    pub async fn preempt(&self, id: &UploadId) -> Result<(), Locked> {
        let Some(slot) = lock(&self.slots).get(id).cloned() else { return Ok(()) };
        if slot.writer.try_lock().is_ok() {
            return Ok(());
        }
        lock(&slot.current).cancel();
        let permit =
            tokio::time::timeout(self.takeover_wait, slot.writer.clone().lock_owned()).await.map_err(|_| Locked)?;
        drop(permit);
        let mut slots = lock(&self.slots);
        // This clone and the table's: nobody else waits, so forget the slot.
        if Arc::strong_count(&slot) == 2 {
            slots.remove(id);
        }
        Ok(())
    }

    /// Becomes the writer of `id` only if nobody is (no takeover, no wait).
    pub fn try_acquire(&self, id: &UploadId) -> Option<UploadGuard> {
        let slot = lock(&self.slots).entry(id.clone()).or_default().clone();
        let permit = slot.writer.clone().try_lock_owned().ok()?;
        let cancel = self.shutdown.child_token();
        *lock(&slot.current) = cancel.clone();
        Some(UploadGuard { _permit: permit, cancel, id: id.clone(), slot, slots: self.slots.clone() })
    }

    /// Whether some request currently writes to `id`.
    pub fn is_busy(&self, id: &UploadId) -> bool {
        lock(&self.slots).get(id).is_some_and(|slot| slot.writer.try_lock().is_err())
    }
}

impl UploadGuard {
    /// Fires when a newer request wants this upload.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut slots = lock(&self.slots);
        // The table and this guard hold the only references: nobody waits.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> UploadId {
        UploadId::random().unwrap()
    }

    #[actix_web::test]
    async fn a_newer_request_takes_over() {
        let locks = UploadLocks::new(Duration::from_secs(5), CancellationToken::new());
        let id = id();
        let old = locks.acquire(&id).await.unwrap();
        let token = old.cancellation();
        let release = async move {
            token.cancelled().await;
            drop(old);
        };
        let (new, ()) = tokio::join!(locks.acquire(&id), release);
        assert!(new.is_ok());
        assert!(locks.is_busy(&id));
        drop(new);
        assert!(!locks.is_busy(&id));
        assert!(lock(&locks.slots).is_empty(), "released slots are forgotten");
    }

    #[actix_web::test]
    async fn preempting_stops_a_writer_but_readers_do_not_queue() {
        let locks = UploadLocks::new(Duration::from_secs(5), CancellationToken::new());
        let id = id();
        assert!(locks.preempt(&id).await.is_ok(), "nobody writes: returns at once");
        assert!(lock(&locks.slots).is_empty(), "and leaves no slot behind");
        let writer = locks.acquire(&id).await.unwrap();
        let token = writer.cancellation();
        let release = async move {
            token.cancelled().await;
            drop(writer);
        };
        let (preempted, ()) = tokio::join!(locks.preempt(&id), release);
        assert!(preempted.is_ok());
        assert!(!locks.is_busy(&id));
        assert!(lock(&locks.slots).is_empty());
    }

    #[actix_web::test]
    async fn shutdown_asks_every_holder_to_stop() {
        let shutdown = CancellationToken::new();
        let locks = UploadLocks::new(Duration::from_secs(5), shutdown.clone());
        let a = locks.acquire(&id()).await.unwrap();
        let b = locks.acquire(&id()).await.unwrap();
        shutdown.cancel();
        assert!(a.cancellation().is_cancelled() && b.cancellation().is_cancelled());
    }

    #[actix_web::test]
    async fn a_holder_that_does_not_let_go_means_locked() {
        let locks = UploadLocks::new(Duration::from_millis(50), CancellationToken::new());
        let id = id();
        let _stubborn = locks.acquire(&id).await.unwrap();
        assert!(locks.acquire(&id).await.is_err());
        assert!(locks.acquire(&self::id()).await.is_ok(), "other uploads are unaffected");
    }
}
