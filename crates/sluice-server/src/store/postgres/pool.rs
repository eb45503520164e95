//! A small pool of PostgreSQL connections whose drivers run beside their users.
//!
//! A `tokio_postgres` connection is a future that must be polled on a runtime that
//! outlives every query sent through it. actix runs one single-threaded runtime per
//! worker, for the server's whole life; a connection opened by a worker while it serves a
//! request has its driver spawned on that worker, so the worker's queries never cross a
//! thread (on a small machine a cross-core wake-up per query and per answer costs more
//! than the query). Every other caller (startup, an embedder's own threads, which may
//! block) uses connections whose drivers run on the pool's own thread (`sluice-postgres`),
//! where lock renewal and LISTEN also run ([`Pool::spawn`]). Any caller may use any idle
//! connection (a `Client` is a channel); each takes one of its own thread's first, and the
//! pool opens at most `size` in all. The thread stops when the pool is dropped.

use crate::store::StoreError;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

/// How long one database operation (waiting for a connection included) may take
/// before it counts as unavailable.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to one database, shared by every worker (cheap to clone).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    runtime: tokio::runtime::Handle,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
    size: usize,
    /// Connections open now (lent or idle); never more than `size` but for a race.
    open: Arc<AtomicUsize>,
    /// Dropped with the pool: ends the runtime thread (and every connection on it).
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Where a connection's driver runs: an actix worker's thread, or (`None`) the pool's.
type Home = Option<ThreadId>;

/// A connection and the statements prepared on it.
struct Pooled {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    home: Home,
    _counted: Counted,
}

/// One unit of [`Inner::open`], given back when the connection is dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection lent by the pool; it goes back when dropped (unless it broke).
pub struct Conn {
    pooled: Option<Pooled>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// A pool of at most `size` connections to the database at `url`
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`; connections name themselves `sluice` in
    /// `pg_stat_activity` unless the URL sets `application_name`). Connects lazily; see
    /// [`Pool::check`].
    pub fn new(url: &str, size: usize) -> Result<Pool, StoreError> {
        let mut config: Config = url.parse().map_err(|e| invalid(format!("bad PostgreSQL URL: {e}")))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("sluice");
        }
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sluice-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => return drop(handle_tx.send(Err(e))),
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                let _ = runtime.block_on(stopped);
            })
            .map_err(StoreError::Io)?;
        let runtime = handle_rx.recv().map_err(|e| invalid(e.to_string()))?.map_err(StoreError::Io)?;
        let size = size.max(1);
        Ok(Pool {
            inner: Arc::new(Inner {
                config,
                runtime,
                idle: Mutex::default(),
                permits: Arc::new(Semaphore::new(size)),
                size,
                open: Arc::default(),
                _stop: stop,
            }),
        })
    }

    /// The connection settings (for a dedicated connection, such as a listener's).
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs `task` on the pool's runtime thread, where it lives as long as the pool.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.runtime.spawn(task);
    }

    /// A connection: an idle one of this thread's, else a new one here while fewer than
    /// the pool's size are open, else any idle one.
    pub async fn get(&self) -> Result<Conn, StoreError> {
        let permit = tokio::time::timeout(OPERATION_TIMEOUT, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Unavailable("no PostgreSQL connection free in time".into()))?
            .map_err(|_| StoreError::Unavailable("the PostgreSQL pool is closed".into()))?;
        let worker = actix_rt::Arbiter::try_current().filter(|_| crate::worker::serving_here());
        let here: Home = worker.as_ref().map(|_| std::thread::current().id());
        let pooled = match self.idle_or_slot(here) {
            Some(pooled) => pooled,
            None => {
                // The slot is counted from here on; a failed connect gives it back.
                let counted = Counted(self.inner.open.clone());
                let (client, home) = match worker {
                    Some(worker) => (self.connect_on(&worker).await?, here),
                    None => (self.connect().await?, None),
                };
                Pooled { client, statements: HashMap::new(), home, _counted: counted }
            }
        };
        Ok(Conn { pooled: Some(pooled), pool: self.inner.clone(), _permit: permit })
    }

    /// An idle connection homed `here`; else `None` with a slot counted for a new one if
    /// the pool has room; else any idle one (a new slot when none is idle, which only a
    /// connection dropped but not yet uncounted can cause).
    fn idle_or_slot(&self, here: Home) -> Option<Pooled> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|c| !c.client.is_closed());
        if let Some(at) = idle.iter().position(|c| c.home == here) {
            return Some(idle.swap_remove(at));
        }
        let open = &self.inner.open;
        let room = open.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.inner.size).then_some(n + 1));
        if room.is_ok() {
            return None;
        }
        let any = idle.pop();
        if any.is_none() {
            open.fetch_add(1, Ordering::Relaxed);
        }
        any
    }

    /// Opens a connection whose driver runs on `worker`, the calling actix worker.
    /// A connection homed there serves other threads too when they find no other idle
    /// one, which a worker's short stalls can delay but never block.
    async fn connect_on(&self, worker: &actix_rt::ArbiterHandle) -> Result<Client, StoreError> {
        let (client, connection) = within(self.inner.config.connect(NoTls)).await?;
        let driving = worker.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        if !driving {
            return Err(StoreError::Unavailable("this worker is stopping".into()));
        }
        Ok(client)
    }

    /// Opens a connection whose driver runs on the pool's runtime thread.
    async fn connect(&self) -> Result<Client, StoreError> {
        let config = self.inner.config.clone();
        let opened = self.inner.runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "PostgreSQL connection ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match opened.await {
            Ok(connected) => connected.map_err(store_error),
            Err(e) => Err(StoreError::Unavailable(format!("PostgreSQL connection task: {e}"))),
        }
    }

    /// Whether the database answers.
    pub async fn check(&self) -> Result<(), StoreError> {
        let conn = self.get().await?;
        within(conn.simple_query("SELECT 1")).await?;
        Ok(())
    }
}

impl Conn {
    /// The statement for `sql`, prepared once per connection.
    pub async fn prepared(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        let pooled = self.pooled.as_mut().expect("a lent connection");
        if let Some(statement) = pooled.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = within(pooled.client.prepare(sql)).await?;
        pooled.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The client, for transactions (which need `&mut`).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.pooled.as_mut().expect("a lent connection").client
    }
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.pooled.as_ref().expect("a lent connection").client
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(pooled) = self.pooled.take() {
            if !pooled.client.is_closed() {
                self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(pooled);
            }
        }
    }
}

/// Runs a database call with the [`OPERATION_TIMEOUT`], mapping its errors.
pub async fn within<T>(call: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, call).await {
        Ok(result) => result.map_err(store_error),
        Err(_) => Err(StoreError::Unavailable("PostgreSQL did not answer in time".into())),
    }
}

/// A driver error as a store error: a connection that failed or a server that is
/// shutting down or refusing connections is unavailable (retry later); a taken id
/// exists; anything else is a backend failure.
pub fn store_error(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed (refused, reset, closed, timed out).
        return StoreError::Unavailable(format!("PostgreSQL: {e}"));
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        return StoreError::Exists;
    }
    let class = &code.code()[..2];
    // 08: connection exception; 53: insufficient resources; 57: operator intervention
    // (admin shutdown, crash shutdown, cannot connect now).
    if matches!(class, "08" | "53" | "57") {
        return StoreError::Unavailable(format!("PostgreSQL: {e}"));
    }
    StoreError::Io(std::io::Error::other(format!("PostgreSQL: {e}")))
}

fn invalid(message: String) -> StoreError {
    StoreError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, message))
}
