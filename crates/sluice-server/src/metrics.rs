//! Operator metrics, exported at `GET /metrics` in the Prometheus text format
//! (via the `prometheus-client` crate).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `sluice_uploads_created_total` | counter | uploads created |
//! | `sluice_uploads_completed_total` | counter | uploads whose last byte arrived |
//! | `sluice_uploads_terminated_total` | counter | uploads deleted by clients (or refused by type) |
//! | `sluice_uploads_expired_total` | counter | incomplete uploads removed by expiry |
//! | `sluice_uploads_in_flight` | gauge | appends streaming right now |
//! | `sluice_received_bytes_total` | counter | body bytes received |
//! | `sluice_rejections_total{reason}` | counter | refusals by stable reason code |
//! | `sluice_requests_total{route,method,status,protocol}` | counter | requests (`protocol`: `tus`, `ietf`, `form`, `flow` or `none`) |
//! | `sluice_request_duration_seconds{route}` | histogram | request latency |
//! | `sluice_memory_budget_bytes` / `..._in_use_bytes` | gauge | upload-buffer budget and its use |
//! | `sluice_resident_memory_bytes` | gauge | the process's resident memory (Linux) |
//! | `sluice_storage_available_bytes` | gauge | free space where uploads are stored |
//! | `sluice_connections_open` | gauge | connections open on the public listener |
//! | `sluice_connections_refused_total{reason}` | counter | connections closed before a request was served, by [`ConnectionRefusal`] |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Labels of a refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The stable reason code.
    pub reason: String,
}

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern, e.g. `/files/{id}` (never the raw path).
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The response status.
    pub status: u16,
    /// The upload protocol the request spoke (`tus`, `ietf`, `form`, `flow`), or `none`.
    pub protocol: &'static str,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route pattern.
    pub route: String,
}

type LatencyFamily = Family<RouteLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 4.0, 10))
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Uploads created.
    pub created: Counter,
    /// Uploads completed.
    pub completed: Counter,
    /// Uploads terminated.
    pub terminated: Counter,
    /// Uploads expired.
    pub expired: Counter,
    /// Body bytes received.
    pub received_bytes: Counter,
    /// Appends streaming now.
    pub in_flight: Gauge,
    /// Refusals by reason.
    pub rejections: Family<ReasonLabel, Counter>,
    /// Requests by route, method, status.
    pub requests: Family<RequestLabels, Counter>,
    /// Latency by route.
    pub latency: LatencyFamily,
    /// Upload-buffer budget.
    pub budget_bytes: Gauge,
    /// Upload-buffer budget in use.
    pub budget_in_use_bytes: Gauge,
    /// Resident memory.
    pub resident_bytes: Gauge,
    /// Free storage space.
    pub storage_available_bytes: Gauge,
    /// Refusals by reason, readable for the status page.
    pub rejection_counts: crate::status::RejectionCounts,
    /// The public listener's connections.
    pub connections: Arc<ConnectionMetrics>,
}

/// Why a connection was closed before a request on it could be answered. These refusals have
/// no response to carry a [`Reason`](sluice_core::Reason), so they are counted apart from
/// `sluice_rejections_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// The client address already holds `--max-connections-per-client` connections.
    TooManyConnections,
    /// The listener already holds `--max-connections` connections.
    ConnectionLimit,
    /// A request head was not complete within `--header-timeout`.
    HeaderTimeout,
    /// The first request head was refused by the HTTP parser (malformed, or headers too large).
    MalformedHead,
}

impl ConnectionRefusal {
    /// Every refusal, in a stable order.
    pub const ALL: [ConnectionRefusal; 4] = [
        ConnectionRefusal::TooManyConnections,
        ConnectionRefusal::ConnectionLimit,
        ConnectionRefusal::HeaderTimeout,
        ConnectionRefusal::MalformedHead,
    ];

    /// The stable code, used as the metric label.
    pub fn code(self) -> &'static str {
        match self {
            ConnectionRefusal::TooManyConnections => "too_many_connections",
            ConnectionRefusal::ConnectionLimit => "connection_limit",
            ConnectionRefusal::HeaderTimeout => "header_timeout",
            ConnectionRefusal::MalformedHead => "malformed_head",
        }
    }
}

/// Metrics of the public listener's connections, shared with its connection gate.
#[derive(Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: Gauge,
    refused: Family<ReasonLabel, Counter>,
    counts: [AtomicU64; 4],
}

impl ConnectionMetrics {
    /// Counts a refused connection.
    pub fn refuse(&self, why: ConnectionRefusal) {
        self.refused.get_or_create(&ReasonLabel { reason: why.code().to_string() }).inc();
        if let Some(i) = ConnectionRefusal::ALL.iter().position(|r| *r == why) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refused connections since start, by code (only codes seen).
    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        ConnectionRefusal::ALL
            .iter()
            .zip(&self.counts)
            .map(|(r, n)| (r.code(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let metrics = Metrics {
            created: Counter::default(),
            completed: Counter::default(),
            terminated: Counter::default(),
            expired: Counter::default(),
            received_bytes: Counter::default(),
            in_flight: Gauge::default(),
            rejections: Family::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            budget_bytes: Gauge::default(),
            budget_in_use_bytes: Gauge::default(),
            resident_bytes: Gauge::default(),
            storage_available_bytes: Gauge::default(),
            rejection_counts: Default::default(),
            connections: Arc::default(),
            registry: Registry::default(),
        };
        registry.register("uploads_created", "Uploads created", metrics.created.clone());
        registry.register("uploads_completed", "Uploads whose last byte arrived", metrics.completed.clone());
        registry.register(
            "uploads_terminated",
            "Uploads deleted by clients or refused by type",
            metrics.terminated.clone(),
        );
        registry.register("uploads_expired", "Incomplete uploads removed by expiry", metrics.expired.clone());
        registry.register("received_bytes", "Body bytes received", metrics.received_bytes.clone());
        registry.register("uploads_in_flight", "Appends streaming now", metrics.in_flight.clone());
        registry.register("rejections", "Refusals by stable reason code", metrics.rejections.clone());
        registry.register("requests", "Requests by route, method, status and protocol", metrics.requests.clone());
        registry.register("request_duration_seconds", "Request latency by route", metrics.latency.clone());
        registry.register("memory_budget_bytes", "Memory budget for upload buffers", metrics.budget_bytes.clone());
        registry.register(
            "memory_budget_in_use_bytes",
            "Upload-buffer budget in use",
            metrics.budget_in_use_bytes.clone(),
        );
        registry.register("resident_memory_bytes", "Resident memory of the process", metrics.resident_bytes.clone());
        registry.register("storage_available_bytes", "Free space for uploads", metrics.storage_available_bytes.clone());
        registry.register(
            "connections_open",
            "Connections open on the public listener",
            metrics.connections.open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed before a request was served, by reason",
            metrics.connections.refused.clone(),
        );
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    /// Counts a refusal.
    pub fn reject(&self, reason: sluice_core::Reason) {
        self.rejections.get_or_create(&ReasonLabel { reason: reason.code().to_string() }).inc();
        self.rejection_counts.add(reason);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

/// The process's resident memory in bytes (Linux `/proc/self/status`), if known.
pub(crate) fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
