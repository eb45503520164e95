//! A small pool of PostgreSQL connections whose drivers live on a thread of their own.
//!
//! actix runs one single-threaded runtime per worker. A `tokio_postgres` connection is
//! a future that must be polled on a runtime that outlives every query sent through
//! it, whichever worker sends them; so connections are opened, and their driver tasks
//! run, on one dedicated runtime thread (`sluice-postgres`), and workers talk to them
//! through `Client`s (channels, runtime-agnostic). Background work (lock renewal,
//! LISTEN) runs there too ([`Pool::spawn`]). The thread stops when the pool is dropped.

use crate::store::StoreError;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Dropped with the pool: ends the runtime thread (and every connection on it).
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A connection and the statements prepared on it.
struct Pooled {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// A connection lent by the pool; it goes back when dropped (unless it broke).
pub struct Conn {
    pooled: Option<Pooled>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// A pool of at most `size` connections to the database at `url`
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`). Connects lazily; see [`Pool::check`].
    pub fn new(url: &str, size: usize) -> Result<Pool, StoreError> {
        let mut config: Config = url.parse().map_err(|e| invalid(format!("bad PostgreSQL URL: {e}")))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("sluice");
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
        Ok(Pool {
            inner: Arc::new(Inner {
                config,
                runtime,
                idle: Mutex::default(),
                permits: Arc::new(Semaphore::new(size.max(1))),
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

    /// A connection: an idle one, or a new one while fewer than the pool's size are open.
    pub async fn get(&self) -> Result<Conn, StoreError> {
        let permit = tokio::time::timeout(OPERATION_TIMEOUT, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Unavailable("no PostgreSQL connection free in time".into()))?
            .map_err(|_| StoreError::Unavailable("the PostgreSQL pool is closed".into()))?;
        let idle = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.retain(|c| !c.client.is_closed());
            idle.pop()
        };
        let pooled = match idle {
            Some(pooled) => pooled,
            None => Pooled { client: self.connect().await?, statements: HashMap::new() },
        };
        Ok(Conn { pooled: Some(pooled), pool: self.inner.clone(), _permit: permit })
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
