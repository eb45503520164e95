//! Locks shared by every instance, in PostgreSQL (`sluice_locks`).
//!
//! - **A lease is a row** `(id, holder, instance, fence, expires_at)`. Acquiring is one
//!   upsert that succeeds when the row is absent or expired; the fence comes from the
//!   `sluice_fences` sequence, so it grows with every lease of every instance. Times are
//!   the database's clock, so instances' clocks do not matter.
//! - **Renewal**: each instance renews all its leases in one `UPDATE` every third of the
//!   lease. A lease found lost (taken over after it lapsed) fires its holder's
//!   cancellation; so does a database unreachable for long enough that leases may have
//!   lapsed. A holder that dies stops renewing: its leases lapse within one lease
//!   (`--lock-lease`, 10 s by default) and the upload can be taken over.
//! - **Takeover**: a request that finds the upload held sends `NOTIFY sluice_takeover`
//!   with the upload id; every instance LISTENs on a dedicated connection and fires the
//!   cancellation of its lease of that upload, whose holder saves what it received,
//!   commits and releases (`NOTIFY sluice_released`). The requester retries at each
//!   release notice (and every 50 ms) until the takeover wait is over.

use super::{Held, Lease, LockError, Locks};
use crate::id::UploadId;
use crate::store::postgres::{within, Pool, OPERATION_TIMEOUT};
use crate::store::{Fence, StoreError};
use async_trait::async_trait;
use futures_util::future::{FutureExt, LocalBoxFuture};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// How often a waiting request retries when no release notice arrives.
const POLL: Duration = Duration::from_millis(50);

/// How often a waiting request asks the holder again (a notice can be missed while an
/// instance reconnects its listener).
const ASK_AGAIN: Duration = Duration::from_millis(500);

const TAKE: &str = "INSERT INTO sluice_locks AS l (id, holder, instance, fence, expires_at)
    VALUES ($1, $2, $3, nextval('sluice_fences'), now() + make_interval(secs => $4))
    ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, instance = EXCLUDED.instance,
        fence = EXCLUDED.fence, expires_at = EXCLUDED.expires_at
    WHERE l.expires_at <= now()
    RETURNING fence";

const IS_HELD: &str = "SELECT 1 FROM sluice_locks WHERE id = $1 AND expires_at > now()";

const ASK: &str = "SELECT pg_notify('sluice_takeover', $1)";

const RELEASE: &str = "WITH gone AS (DELETE FROM sluice_locks WHERE id = $1 AND holder = $2 RETURNING id)
    SELECT pg_notify('sluice_released', id) FROM gone";

const RENEW: &str = "UPDATE sluice_locks SET expires_at = now() + make_interval(secs => $2)
    WHERE instance = $1 RETURNING holder";

/// The lock service over PostgreSQL; dropping it stops its renewal and listener.
pub struct PgLocks {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    /// This instance, as written in the rows it renews.
    instance: String,
    lease: Duration,
    takeover_wait: Duration,
    shutdown: CancellationToken,
    /// Leases this instance holds, by holder token.
    held: Mutex<HashMap<String, Holding>>,
    /// Woken at every release notice.
    released: Notify,
    /// Ends the background tasks.
    stop: CancellationToken,
}

struct Holding {
    id: UploadId,
    cancel: CancellationToken,
}

struct PgHeld {
    shared: Arc<Shared>,
    id: UploadId,
    holder: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(e: StoreError) -> LockError {
    match e {
        StoreError::Unavailable(why) => LockError::Unavailable(why),
        other => LockError::Unavailable(other.to_string()),
    }
}

/// A random token (hex) naming a lease or an instance.
fn token() -> Result<String, LockError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| LockError::Unavailable(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl PgLocks {
    /// The lock service of one instance: takeovers wait at most `takeover_wait`, leases
    /// lapse `lease` after their last renewal, and cancelling `shutdown` asks every
    /// holder to stop. Returns once this instance listens for takeover requests.
    pub async fn open(
        pool: Pool,
        takeover_wait: Duration,
        lease: Duration,
        shutdown: CancellationToken,
    ) -> Result<PgLocks, LockError> {
        let shared = Arc::new(Shared {
            pool: pool.clone(),
            instance: token()?,
            lease: lease.max(Duration::from_millis(300)),
            takeover_wait,
            shutdown,
            held: Mutex::default(),
            released: Notify::new(),
            stop: CancellationToken::new(),
        });
        let (ready, listening) = tokio::sync::oneshot::channel();
        pool.spawn(listen(shared.clone(), ready));
        pool.spawn(renew(shared.clone()));
        let locks = PgLocks { shared };
        match tokio::time::timeout(OPERATION_TIMEOUT, listening).await {
            Ok(Ok(Ok(()))) => Ok(locks),
            Ok(Ok(Err(why))) => Err(LockError::Unavailable(format!("cannot LISTEN on PostgreSQL: {why}"))),
            _ => Err(LockError::Unavailable("cannot LISTEN on PostgreSQL in time".into())),
        }
    }

    /// How many leases this instance holds now.
    pub fn held(&self) -> usize {
        lock(&self.shared.held).len()
    }
}

impl Drop for PgLocks {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl Shared {
    async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let mut conn = self.pool.get().await?;
        let statement = conn.prepared(sql).await?;
        within(conn.query(&statement, params)).await
    }

    /// Takes the lease if nobody holds it (or the holder's lapsed): its fence.
    async fn try_take(&self, id: &UploadId, holder: &str) -> Result<Option<Fence>, LockError> {
        let secs = self.lease.as_secs_f64();
        let rows = self.query(TAKE, &[&id.as_str(), &holder, &self.instance, &secs]).await.map_err(unavailable)?;
        Ok(rows.first().map(|row| Fence(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))))
    }

    fn lease(self: &Arc<Self>, id: &UploadId, holder: String, fence: Fence) -> Lease {
        let cancel = self.shutdown.child_token();
        lock(&self.held).insert(holder.clone(), Holding { id: id.clone(), cancel: cancel.clone() });
        Lease::new(fence, cancel, Box::new(PgHeld { shared: self.clone(), id: id.clone(), holder }))
    }

    async fn is_held(&self, id: &UploadId) -> Result<bool, LockError> {
        Ok(!self.query(IS_HELD, &[&id.as_str()]).await.map_err(unavailable)?.is_empty())
    }

    /// Asks whoever holds `id` (on any instance) to let go.
    async fn ask_to_let_go(&self, id: &UploadId) -> Result<(), LockError> {
        self.cancel_local(id.as_str());
        self.query(ASK, &[&id.as_str()]).await.map_err(unavailable)?;
        Ok(())
    }

    fn cancel_local(&self, id: &str) {
        for holding in lock(&self.held).values().filter(|h| h.id.as_str() == id) {
            holding.cancel.cancel();
        }
    }

    /// Waits until `ready` answers `Some`, asking the holder to let go meanwhile; `None`
    /// after the takeover wait means it did not.
    async fn wait_for<T>(
        &self,
        id: &UploadId,
        mut ready: impl AsyncFnMut() -> Result<Option<T>, LockError>,
    ) -> Result<Option<T>, LockError> {
        let deadline = Instant::now() + self.takeover_wait;
        let mut asked: Option<Instant> = None;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(done) = ready().await? {
                return Ok(Some(done));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if asked.is_none_or(|at| now - at >= ASK_AGAIN) {
                self.ask_to_let_go(id).await?;
                asked = Some(now);
            }
            tokio::select! {
                () = &mut released => {}
                () = tokio::time::sleep_until((now + POLL).min(deadline)) => {}
            }
        }
    }
}

#[async_trait(?Send)]
impl Locks for PgLocks {
    async fn acquire(&self, id: &UploadId) -> Result<Lease, LockError> {
        let shared = &self.shared;
        let holder = token()?;
        let fence = shared.wait_for(id, async || shared.try_take(id, &holder).await).await?;
        let fence = fence.ok_or(LockError::Locked)?;
        Ok(shared.lease(id, holder, fence))
    }

    async fn try_acquire(&self, id: &UploadId) -> Result<Option<Lease>, LockError> {
        let holder = token()?;
        let fence = self.shared.try_take(id, &holder).await?;
        Ok(fence.map(|fence| self.shared.lease(id, holder, fence)))
    }

    async fn preempt(&self, id: &UploadId) -> Result<(), LockError> {
        let shared = &self.shared;
        let free = async || Ok((!shared.is_held(id).await?).then_some(()));
        shared.wait_for(id, free).await?.ok_or(LockError::Locked)
    }
}

impl Held for PgHeld {
    fn release(self: Box<Self>) -> LocalBoxFuture<'static, ()> {
        let PgHeld { shared, id, holder } = *self;
        lock(&shared.held).remove(&holder);
        async move {
            if let Err(e) = shared.query(RELEASE, &[&id.as_str(), &holder]).await {
                tracing::warn!(upload = %id, error = %e, lapses_in = ?shared.lease, "lease not released; it lapses");
            }
        }
        .boxed_local()
    }
}

/// Renews this instance's leases every third of a lease, for as long as the service lives.
async fn renew(shared: Arc<Shared>) {
    let every = shared.lease / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let holders: Vec<String> = lock(&shared.held).keys().cloned().collect();
        if holders.is_empty() {
            renewed = Instant::now();
            continue;
        }
        let secs = shared.lease.as_secs_f64();
        match shared.query(RENEW, &[&shared.instance, &secs]).await {
            Ok(rows) => {
                renewed = Instant::now();
                let kept: Vec<&str> = rows.iter().map(|row| row.get(0)).collect();
                let mut held = lock(&shared.held);
                for holder in holders.iter().filter(|h| !kept.contains(&h.as_str())) {
                    if let Some(lost) = held.remove(holder) {
                        tracing::warn!(upload = %lost.id, "lease lost (it lapsed and was taken over): stopping its writer");
                        lost.cancel.cancel();
                    }
                }
            }
            Err(e) if renewed.elapsed() + every >= shared.lease => {
                // The leases may lapse before the next attempt: every holder stops now
                // (its commit is fenced anyway if another instance takes over).
                tracing::warn!(error = %e, "cannot renew locks; stopping every writer of this instance");
                for holding in lock(&shared.held).values() {
                    holding.cancel.cancel();
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew locks; retrying"),
        }
    }
}

/// Listens for takeover requests and release notices, reconnecting when the connection drops.
async fn listen(shared: Arc<Shared>, ready: Ready) {
    let mut ready = Some(ready);
    let mut failing = false;
    loop {
        let result = listen_once(&shared, &mut ready).await;
        if let (Some(ready), Err(e)) = (ready.take(), &result) {
            let _ = ready.send(Err(e.to_string())); // the service does not open
            return;
        }
        match result {
            Ok(()) if shared.stop.is_cancelled() => return,
            Ok(()) => {
                tracing::warn!("the PostgreSQL lock listener was disconnected; reconnecting");
                failing = false;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "the PostgreSQL lock listener cannot connect; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Told whether the listener could start.
type Ready = tokio::sync::oneshot::Sender<Result<(), String>>;

async fn listen_once(shared: &Shared, ready: &mut Option<Ready>) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = shared.pool.config().connect(NoTls).await?;
    let (notices, mut received) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(notice) = message {
                if notices.send(notice).is_err() {
                    break;
                }
            }
        }
    });
    client.batch_execute("LISTEN sluice_takeover; LISTEN sluice_released").await?;
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
    // Releases may have happened while this instance was not listening.
    shared.released.notify_waiters();
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => break,
            notice = received.recv() => match notice {
                None => break,
                Some(notice) if notice.channel() == "sluice_takeover" => shared.cancel_local(notice.payload()),
                Some(_) => shared.released.notify_waiters(),
            }
        }
    }
    driver.abort();
    Ok(())
}
