//! Removing unfinished uploads nobody wrote to for `upload_expiry`.
//!
//! Expiry is measured from an upload's last write, so a slow upload that keeps
//! progressing never expires; completed uploads never expire. An expired upload
//! answers 410 at once (see [`Engine::info`]); the sweep frees its space, and
//! later forgets the tombstone so the id answers 404. The sweep takes each upload's
//! lock without waiting before removing it, so it never removes an upload that a
//! request (on any instance sharing the lock service) is writing to; every instance
//! may run it.

use super::Engine;
use crate::error::Result;
use std::time::{Duration, SystemTime};

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Uploads expired and their bytes deleted.
    pub expired: usize,
    /// Tombstones forgotten.
    pub forgotten: usize,
}

impl Engine {
    /// Runs one sweep now.
    pub async fn sweep(&self) -> Result<Swept> {
        let cutoff = SystemTime::now().checked_sub(self.policy.upload_expiry).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut swept = Swept::default();
        for id in self.records.stale(cutoff).await? {
            let Some(lease) = self.locks.try_acquire(&id).await? else { continue };
            // Written to between the query and the lock: not stale any more.
            match self.records.get(&id).await {
                Ok(record) if !record.is_complete() && record.modified_at < cutoff => {
                    // Every byte arrived but the completion never ran: complete, not expire.
                    if self.settle(record, Some(lease.fence())).await?.is_complete() {
                        continue;
                    }
                }
                _ => continue,
            }
            self.remove(&id).await?;
            self.metrics.expired.inc();
            tracing::info!(upload = %id, "expired upload removed");
            swept.expired += 1;
            lease.release().await;
        }
        swept.forgotten = self.records.purge_tombstones(cutoff).await?;
        Ok(swept)
    }
}

/// Sweeps every `interval` for as long as the server runs.
pub(crate) fn spawn(state: actix_web::web::Data<crate::AppState>, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(interval);
        loop {
            ticks.tick().await;
            if let Err(e) = state.engine.sweep().await {
                tracing::error!(error = %e, "expiry sweep failed");
            }
        }
    });
}
