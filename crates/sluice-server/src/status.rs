//! The live status page's data: one sample a second, ten minutes kept.
//!
//! `GET /status` serves the page (`web/status.html`); it polls
//! `GET /status/samples` and draws memory against the budget, throughput,
//! uploads in flight, rejections by reason, open connections and connections
//! refused by reason, all from the server's own counters. Sampling reads counters only: it costs nothing per request.

use crate::metrics::resident_memory;
use crate::AppState;
use serde::Serialize;
use sluice_core::Reason;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Samples kept: ten minutes at one a second.
pub(crate) const KEPT: usize = 600;

/// The server's state at one moment. Counters are cumulative; the page
/// derives rates from consecutive samples.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// Resident memory of the process.
    pub resident_bytes: u64,
    /// Upload-buffer budget in use.
    pub budget_in_use_bytes: u64,
    /// Appends streaming now.
    pub in_flight: u64,
    /// Body bytes received since start.
    pub received_bytes: u64,
    /// Uploads completed since start.
    pub completed: u64,
    /// Refusals since start, by reason code (only reasons seen).
    pub rejections: BTreeMap<&'static str, u64>,
    /// Connections open on the public listener.
    pub connections_open: u64,
    /// Connections refused since start, by code (only codes seen; see `ConnectionRefusal`).
    pub connection_refusals: BTreeMap<&'static str, u64>,
}

/// Rejection counts by reason, readable for sampling.
pub struct RejectionCounts(Vec<AtomicU64>);

impl Default for RejectionCounts {
    fn default() -> Self {
        RejectionCounts(Reason::ALL.iter().map(|_| AtomicU64::new(0)).collect())
    }
}

impl RejectionCounts {
    /// Counts one refusal.
    pub fn add(&self, reason: Reason) {
        if let Some(i) = Reason::ALL.iter().position(|r| *r == reason) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Reason::ALL
            .iter()
            .zip(&self.0)
            .map(|(r, n)| (r.code(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The kept samples.
#[derive(Default)]
pub struct History(Mutex<VecDeque<Sample>>);

/// What `GET /status/samples` returns.
#[derive(Serialize)]
pub struct Report {
    /// The memory budget for upload buffers.
    pub budget_bytes: u64,
    /// Samples, oldest first.
    pub samples: Vec<Sample>,
}

impl History {
    /// Takes a sample now and keeps it.
    pub fn record(&self, state: &AppState) {
        let m = &state.engine.metrics;
        let sample = Sample {
            at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            resident_bytes: resident_memory().unwrap_or(0),
            budget_in_use_bytes: state.engine.admission.bytes_in_use(),
            in_flight: state.engine.admission.in_flight(),
            received_bytes: m.received_bytes.get(),
            completed: m.completed.get(),
            rejections: m.rejection_counts.snapshot(),
            connections_open: u64::try_from(m.connections.open.get()).unwrap_or(0),
            connection_refusals: m.connections.refusals(),
        };
        let mut samples = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Everything kept, oldest first.
    pub fn report(&self, state: &AppState) -> Report {
        let samples = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Report { budget_bytes: state.engine.admission.budget_bytes(), samples: samples.iter().cloned().collect() }
    }
}

/// Samples every `every` for as long as the actix system runs.
pub(crate) fn spawn(state: actix_web::web::Data<AppState>, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        loop {
            ticks.tick().await;
            state.history.record(&state);
        }
    });
}
