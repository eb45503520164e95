//! What unfinished uploads hold, per client and in total, kept up to date in memory
//! by the embedded record stores (a database answers the same with a query).

use super::UploadRecord;
use crate::id::UploadId;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// One client's unfinished uploads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenUsage {
    /// How many.
    pub uploads: u64,
    /// Their declared bytes not yet received.
    pub unreceived: u64,
}

/// Per-upload contributions, and their sums per client and overall.
#[derive(Debug, Default)]
pub struct UsageIndex(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    uploads: HashMap<UploadId, (Option<String>, u64)>,
    clients: HashMap<String, OpenUsage>,
    promised: u64,
}

impl UsageIndex {
    /// Records what `record` holds now (nothing once it is complete).
    pub fn update(&self, record: &UploadRecord) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner.remove(&record.id);
        if !record.is_complete() {
            inner.add(record.id.clone(), record.client.clone(), record.unreceived());
        }
    }

    /// Forgets an upload (terminated, expired).
    pub fn remove(&self, id: &UploadId) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// One client's unfinished uploads.
    pub fn client(&self, client: &str) -> OpenUsage {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clients.get(client).copied().unwrap_or_default()
    }

    /// Declared bytes not yet received, over every unfinished upload.
    pub fn promised(&self) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).promised
    }
}

impl Inner {
    fn add(&mut self, id: UploadId, client: Option<String>, unreceived: u64) {
        if let Some(client) = &client {
            let usage = self.clients.entry(client.clone()).or_default();
            usage.uploads += 1;
            usage.unreceived += unreceived;
        }
        self.promised += unreceived;
        self.uploads.insert(id, (client, unreceived));
    }

    fn remove(&mut self, id: &UploadId) {
        let Some((client, unreceived)) = self.uploads.remove(id) else { return };
        self.promised -= unreceived;
        if let Some(client) = client {
            if let Some(usage) = self.clients.get_mut(&client) {
                usage.uploads -= 1;
                usage.unreceived -= unreceived;
                if usage.uploads == 0 {
                    self.clients.remove(&client);
                }
            }
        }
    }
}
