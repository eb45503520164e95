//! The upload engine: every protocol's operations, in no protocol's terms.
//!
//! Front-ends (tus, the IETF draft, HTML forms, Flow.js) parse HTTP into the plain
//! inputs below, call one operation, and render its answer. The engine owns
//! everything else: the policy checks, admission to the memory budget, sniffing the
//! file's type from its leading bytes, the one-writer lock and takeover, metrics,
//! webhooks and completion. Under it sit a [`RecordStore`], a [`ByteStore`] and a
//! [`Locks`] service; nothing below the engine knows HTTP and nothing above it
//! touches bytes.
//!
//! | operation | what it does |
//! |---|---|
//! | [`Engine::create`] | checks a declared upload and creates it |
//! | [`Engine::append`] | streams a body into an upload at its offset, then completes it when asked |
//! | [`Engine::info`] | where an upload stands (stopping a writer first when asked) |
//! | [`Engine::terminate`] | stops any writer and deletes the upload |
//! | [`Engine::concat`] | joins finished partial uploads into a final one |
//! | [`Engine::gather`] | joins parts as they finish (Flow.js), linear in their number |
//! | [`Engine::read`] | streams a completed upload's bytes, or a range of them |

mod append;
pub(crate) mod body;
mod complete;
mod digest;
pub(crate) mod expiry;
mod join;
mod quota;

pub(crate) use append::{AppendInput, Finish};
pub use quota::Quotas;

use crate::admission::Admission;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::hooks::{self, HookUpload, Hooks};
use crate::id::UploadId;
use crate::lock::{Lease, LockError, Locks};
use crate::metrics::Metrics;
use crate::store::{ByteStore, ByteStream, Fence, Kind, Protocol, RecordStore, StoreError, UploadRecord};
use sluice_core::tus::Metadata;
use sluice_core::units::format_size;
use sluice_core::{Policy, Reason};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Who asks: the verified caller (owner, token limits) and the client's address.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The caller's verified identity (none with authorization off).
    pub caller: &'a Caller,
    /// The client (its address, resolved through trusted proxies), for per-client caps and quotas.
    pub client: crate::client::ClientId,
}

impl Requester<'_> {
    fn client_key(&self) -> Option<String> {
        // With authorization on, quotas follow the user wherever they connect from.
        match self.caller.owner() {
            Some(owner) => Some(format!("sub:{owner}")),
            None => self.client.ip().map(|ip| ip.to_string()),
        }
    }
}

/// An upload to create.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The front-end creating it.
    pub protocol: Protocol,
    /// Whole or partial (finals come from [`Engine::concat`]).
    pub kind: Kind,
    /// Declared length; `None` defers it.
    pub length: Option<u64>,
    /// Client-declared metadata.
    pub metadata: Metadata,
    /// An id derived by the front-end (Flow.js); a random one when `None`.
    pub id: Option<UploadId>,
    /// The whole file's SHA-256 as the client declares it (hex), verified at completion.
    pub sha256: Option<String>,
}

/// What the engine needs besides its stores.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// A body that sends nothing for this long is ended, keeping what arrived.
    pub idle_timeout: Duration,
    /// Free space kept in reserve: a creation that would eat into it gets 507.
    pub disk_reserve: u64,
    /// The application's webhooks.
    pub hooks: Hooks,
    /// What one client may hold open and how fast it may create.
    pub quotas: Quotas,
}

/// The engine: shared by every worker and front-end.
pub struct Engine {
    /// The upload policy.
    pub policy: Arc<Policy>,
    records: Arc<dyn RecordStore>,
    bytes: Arc<dyn ByteStore>,
    locks: Arc<dyn Locks>,
    /// Memory budget and per-client caps.
    pub admission: Admission,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Cancelled when the server shuts down: streaming bodies stop and keep what arrived.
    pub shutdown: CancellationToken,
    settings: EngineSettings,
    creations: quota::CreationBuckets,
}

impl Engine {
    /// An engine over these stores. `shutdown` must be the token the lock service
    /// derives its cancellations from.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        policy: Policy,
        records: Arc<dyn RecordStore>,
        bytes: Arc<dyn ByteStore>,
        locks: Arc<dyn Locks>,
        admission: Admission,
        shutdown: CancellationToken,
        settings: EngineSettings,
    ) -> Engine {
        Engine {
            policy: Arc::new(policy),
            records,
            bytes,
            locks,
            admission,
            metrics: Metrics::default(),
            shutdown,
            settings,
            creations: quota::CreationBuckets::default(),
        }
    }

    /// The byte store (for readiness and free-space figures).
    pub fn bytes(&self) -> &dyn ByteStore {
        &*self.bytes
    }

    /// The record store (for readiness).
    pub fn records(&self) -> &dyn RecordStore {
        &*self.records
    }

    /// When an incomplete upload expires: its last write plus `upload_expiry`.
    pub fn expires_at(&self, record: &UploadRecord) -> SystemTime {
        record.modified_at + self.policy.upload_expiry
    }

    /// Checks a declared upload and creates it.
    pub async fn create(&self, who: Requester<'_>, new: NewUpload) -> Result<UploadRecord> {
        let policy = who.caller.policy(&self.policy);
        let whole = new.kind == Kind::Whole;
        let file_name = new.metadata.file_name();
        if let Some(length) = new.length {
            if whole {
                policy.check_size(length)?;
            } else if length > policy.max_file_size {
                // A part may be small (even empty); the joined file is checked as a whole.
                policy.check_size(length)?;
            }
        }
        if whole {
            policy.check_name(file_name.as_deref())?;
            if new.length == Some(0) {
                policy.check_type(&[], file_name.as_deref())?;
            }
        }
        self.admit_creation(who, new.length.unwrap_or(0)).await?;
        self.check_room(new.length.unwrap_or(0)).await?;
        if whole {
            let event = HookUpload::new(new.protocol.name(), new.length, &new.metadata, who.caller.owner());
            hooks::pre_create(&self.settings.hooks, &event).await?;
        }
        let id = match new.id {
            Some(id) => id,
            None => UploadId::random().map_err(Error::internal)?,
        };
        let mut record = UploadRecord::new(id, new.protocol, new.kind, new.length, new.metadata);
        record.owner = who.caller.owner().map(str::to_owned);
        record.client = who.client_key();
        record.expected_sha256 = new.sha256;
        self.bytes.create(&record.id).await?;
        if let Err(e) = self.records.insert(&record).await {
            let _ = self.bytes.delete(&record.id).await;
            return Err(e.into());
        }
        self.metrics.created.inc();
        tracing::info!(upload = %record.id, protocol = new.protocol.name(), length = ?record.length, "upload created");
        if record.length == Some(0) && !matches!(record.kind, Kind::Final(_)) {
            // Nobody else knows the upload yet: its own fence will do.
            let fence = record.fence;
            record = self.complete(record, fence).await?;
        }
        Ok(record)
    }

    /// A client past its creation rate or its caps on open uploads gets `429`.
    async fn admit_creation(&self, who: Requester<'_>, length: u64) -> Result<()> {
        let Some(client) = who.client_key() else { return Ok(()) };
        let quotas = &self.settings.quotas;
        self.creations.take(&client, quotas)?;
        quotas.check_open(self.records.open_usage(&client).await?, length)
    }

    /// A creation of `length` more bytes must leave the disk reserve and every
    /// admitted upload's unreceived bytes untouched (`507 storage_full`).
    async fn check_room(&self, length: u64) -> Result<()> {
        let Some(free) = self.bytes.available_space().await else { return Ok(()) };
        let promised = self.records.promised_bytes().await?;
        let room = free.saturating_sub(self.settings.disk_reserve).saturating_sub(promised);
        if length > room {
            return Err(Error::new(
                Reason::StorageFull,
                format!(
                    "This upload needs {}; the server has room for {} now.",
                    format_size(length),
                    format_size(room)
                ),
            ));
        }
        Ok(())
    }

    /// Where an upload stands. With `preempt`, a request writing to it is asked to
    /// stop first, so the offset reported is final (a client resuming after a lost
    /// connection asks this first).
    pub async fn info(&self, who: Requester<'_>, id: &UploadId, preempt: bool) -> Result<UploadRecord> {
        if preempt {
            self.locks.preempt(id).await?;
        }
        let record = self.live(who, id).await?;
        self.settle(record, None).await
    }

    /// Completes an upload that has every byte but was never completed (its process died
    /// between the last byte and the completion). Under the IETF draft only the client
    /// completes an upload, so those are left alone.
    async fn settle(&self, record: UploadRecord, held: Option<Fence>) -> Result<UploadRecord> {
        let due = !record.is_complete() && record.has_all_bytes() && record.protocol != Protocol::Ietf;
        if !due || matches!(record.kind, Kind::Final(_)) {
            return Ok(record);
        }
        if let Some(fence) = held {
            return self.complete(record, fence).await;
        }
        let lease = self.lease(&record.id).await?;
        let record = self.records.get(&record.id).await?;
        let settled = if record.is_complete() { record } else { self.complete(record, lease.fence()).await? };
        lease.release().await;
        Ok(settled)
    }

    /// The upload, unless it is unknown or another caller's (404), gone (410) or
    /// expired (410).
    async fn live(&self, who: Requester<'_>, id: &UploadId) -> Result<UploadRecord> {
        let record = self.records.get(id).await?;
        if !who.caller.may_see(record.owner.as_deref()) {
            return Err(StoreError::NotFound.into());
        }
        if !record.is_complete() && self.expires_at(&record) <= SystemTime::now() {
            return Err(Error::new(Reason::UploadGone, "This upload expired before it was finished."));
        }
        Ok(record)
    }

    /// Becomes the one writer of an upload, taking over from an older request.
    async fn lease(&self, id: &UploadId) -> Result<Lease> {
        Ok(self.locks.acquire(id).await?)
    }

    /// Stops any writer and deletes the upload; the id then answers 410.
    pub async fn terminate(&self, who: Requester<'_>, id: &UploadId) -> Result<()> {
        let lease = self.lease(id).await?;
        // Another caller's (404) or expired (410) uploads are refused before anything is deleted.
        self.live(who, id).await?;
        self.remove(id).await?;
        self.metrics.terminated.inc();
        tracing::info!(upload = %id, "upload terminated");
        lease.release().await;
        Ok(())
    }

    /// Deletes an upload's bytes and marks its record gone (the caller holds its lease).
    async fn remove(&self, id: &UploadId) -> Result<()> {
        self.bytes.delete(id).await?;
        match self.records.mark_gone(id).await {
            Ok(()) | Err(StoreError::Gone) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A completed upload's bytes in `range` (all of them when `None`), with its record.
    pub async fn read(
        &self,
        who: Requester<'_>,
        id: &UploadId,
        range: Option<Range<u64>>,
    ) -> Result<(UploadRecord, ByteStream)> {
        let record = self.live(who, id).await?;
        let record = self.settle(record, None).await?;
        if !record.is_complete() {
            return Err(Error::new(
                Reason::UploadIncomplete,
                format!(
                    "This upload has {} of {:?} bytes; it can be downloaded once complete.",
                    record.offset, record.length
                ),
            ));
        }
        let range = range.unwrap_or(0..record.offset);
        let bytes = self.bytes.read(id, range).await?;
        Ok((record, bytes))
    }
}

impl From<LockError> for Error {
    fn from(e: LockError) -> Error {
        match e {
            LockError::Locked => {
                Error::new(Reason::UploadLocked, "Another request is writing to this upload; try again shortly.")
            }
            LockError::Unavailable(why) => StoreError::Unavailable(why).into(),
        }
    }
}
