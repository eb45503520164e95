//! The in-process lock table: the embedded default (one instance, no service).

use super::{Held, Lease, LockError, Locks};
use crate::id::UploadId;
use crate::store::Fence;
use async_trait::async_trait;
use futures_util::future::{FutureExt, LocalBoxFuture};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Slot {
    writer: Arc<tokio::sync::Mutex<()>>,
    current: Mutex<CancellationToken>,
}

type Slots = Arc<Mutex<HashMap<UploadId, Arc<Slot>>>>;

/// The lock table for every upload in this process.
pub struct MemoryLocks {
    slots: Slots,
    takeover_wait: Duration,
    shutdown: CancellationToken,
    fences: AtomicU64,
}

struct MemoryHeld {
    _permit: OwnedMutexGuard<()>,
    id: UploadId,
    slot: Arc<Slot>,
    slots: Slots,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryLocks {
    /// A lock table whose takeovers wait at most `takeover_wait`. Cancelling
    /// `shutdown` asks every holder to stop, as a takeover would.
    pub fn new(takeover_wait: Duration, shutdown: CancellationToken) -> MemoryLocks {
        // Fences start from the clock so that they keep growing across restarts
        // (records keep the last fence they accepted).
        let start = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_micros() as u64);
        MemoryLocks { slots: Arc::default(), takeover_wait, shutdown, fences: AtomicU64::new(start) }
    }

    fn lease(&self, id: &UploadId, slot: Arc<Slot>, permit: OwnedMutexGuard<()>) -> Lease {
        let cancel = self.shutdown.child_token();
        *lock(&slot.current) = cancel.clone();
        let fence = Fence(self.fences.fetch_add(1, Ordering::Relaxed));
        let held = MemoryHeld { _permit: permit, id: id.clone(), slot, slots: self.slots.clone() };
        Lease::new(fence, cancel, Box::new(held))
    }

    /// Whether some request currently writes to `id`.
    pub fn is_busy(&self, id: &UploadId) -> bool {
        lock(&self.slots).get(id).is_some_and(|slot| slot.writer.try_lock().is_err())
    }
}

#[async_trait(?Send)]
impl Locks for MemoryLocks {
    async fn acquire(&self, id: &UploadId) -> Result<Lease, LockError> {
        let slot = lock(&self.slots).entry(id.clone()).or_default().clone();
        let permit = match slot.writer.clone().try_lock_owned() {
            Ok(permit) => permit,
            Err(_) => {
                lock(&slot.current).cancel();
                tokio::time::timeout(self.takeover_wait, slot.writer.clone().lock_owned())
                    .await
                    .map_err(|_| LockError::Locked)?
            }
        };
        Ok(self.lease(id, slot, permit))
    }

    async fn try_acquire(&self, id: &UploadId) -> Result<Option<Lease>, LockError> {
        let slot = lock(&self.slots).entry(id.clone()).or_default().clone();
        let Ok(permit) = slot.writer.clone().try_lock_owned() else { return Ok(None) };
        Ok(Some(self.lease(id, slot, permit)))
    }

    async fn preempt(&self, id: &UploadId) -> Result<(), LockError> {
        let Some(slot) = lock(&self.slots).get(id).cloned() else { return Ok(()) };
        if slot.writer.try_lock().is_ok() {
            return Ok(());
        }
        lock(&slot.current).cancel();
        let permit = tokio::time::timeout(self.takeover_wait, slot.writer.clone().lock_owned())
            .await
            .map_err(|_| LockError::Locked)?;
        drop(permit);
        forget_if_unused(&self.slots, id, &slot);
        Ok(())
    }
}

/// Removes the table's slot when nobody else refers to it (the table and `slot` hold
/// the only references).
fn forget_if_unused(slots: &Slots, id: &UploadId, slot: &Arc<Slot>) {
    let mut slots = lock(slots);
    if Arc::strong_count(slot) == 2 {
        slots.remove(id);
    }
}

impl Held for MemoryHeld {
    fn release(self: Box<Self>) -> LocalBoxFuture<'static, ()> {
        let MemoryHeld { _permit, id, slot, slots } = *self;
        drop(_permit);
        forget_if_unused(&slots, &id, &slot);
        async {}.boxed_local()
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
        let locks = MemoryLocks::new(Duration::from_secs(5), CancellationToken::new());
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
        let locks = MemoryLocks::new(Duration::from_secs(5), CancellationToken::new());
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
        let locks = MemoryLocks::new(Duration::from_secs(5), shutdown.clone());
        let a = locks.acquire(&id()).await.unwrap();
        let b = locks.acquire(&id()).await.unwrap();
        shutdown.cancel();
        assert!(a.cancellation().is_cancelled() && b.cancellation().is_cancelled());
    }

    #[actix_web::test]
    async fn a_holder_that_does_not_let_go_means_locked() {
        let locks = MemoryLocks::new(Duration::from_millis(50), CancellationToken::new());
        let id = id();
        let _stubborn = locks.acquire(&id).await.unwrap();
        assert!(locks.acquire(&id).await.is_err());
        assert!(locks.acquire(&self::id()).await.is_ok(), "other uploads are unaffected");
    }

    #[actix_web::test]
    async fn fences_grow_with_every_lease() {
        let locks = MemoryLocks::new(Duration::from_secs(5), CancellationToken::new());
        let id = id();
        let first = locks.acquire(&id).await.unwrap();
        let first_fence = first.fence();
        first.release().await;
        let second = locks.acquire(&id).await.unwrap();
        assert!(second.fence() > first_fence);
        assert!(locks.try_acquire(&id).await.unwrap().is_none(), "held: no lease without waiting");
        drop(second);
        assert!(locks.try_acquire(&id).await.unwrap().is_some());
    }
}
