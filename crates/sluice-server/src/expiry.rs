//! Removing incomplete uploads nobody wrote to for `upload_expiry`.
//!
//! Expiry is measured from an upload's last write, so a slow upload that keeps
//! progressing never expires; completed uploads never expire. An expired
//! upload answers 410 at once (see `tus::upload::live_info`); the sweep frees
//! its disk space, skipping uploads a request is writing to right now, and
//! later forgets the tombstone so the id answers 404.

use crate::storage::StorageError;
use crate::AppState;
use std::time::{Duration, SystemTime};

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Uploads expired and their bytes deleted.
    pub expired: usize,
    /// Tombstones forgotten.
    pub forgotten: usize,
}

/// Runs one sweep now.
pub async fn sweep(state: &AppState) -> Result<Swept, StorageError> {
    let expiry = state.policy.upload_expiry;
    let cutoff = SystemTime::now().checked_sub(expiry).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut swept = Swept::default();
    for id in state.storage.stale(cutoff).await? {
        let Some(_guard) = state.locks.try_acquire(&id) else { continue };
        state.storage.terminate(&id).await?;
        state.metrics.expired.inc();
        tracing::info!(upload = %id, "expired upload removed");
        swept.expired += 1;
    }
    swept.forgotten = state.storage.purge_tombstones(cutoff).await?;
    Ok(swept)
}

/// Sweeps every `interval` for as long as the actix system runs.
pub fn spawn(state: actix_web::web::Data<AppState>, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(interval);
        loop {
            ticks.tick().await;
            if let Err(e) = sweep(&state).await {
                tracing::error!(error = %e, "expiry sweep failed");
            }
        }
    });
}
