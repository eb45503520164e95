//! PostgreSQL state (`--state postgres://…`): upload records, locks and shared settings
//! in one database, so any number of instances share every upload.
//!
//! - [`PgRecords`]: the record store (`sluice_uploads`); the offset moves by one fenced
//!   compare-and-set `UPDATE`; quotas and promised bytes are SQL aggregates over
//!   unfinished uploads (indexed);
//! - the lock service lives in [`crate::lock::postgres`] (`sluice_locks`, LISTEN/NOTIFY);
//! - [`Postgres::shared_secret`]: the key of derived ids (`sluice_settings`).
//!
//! The schema is created on first start (`migrate`). A database that cannot be
//! reached gives [`StoreError::Unavailable`]
//! (503 + `Retry-After`), never a panic.

mod migrate;
mod pool;
mod records;

pub use pool::{store_error, within, Conn, Pool, OPERATION_TIMEOUT};
pub use records::PgRecords;

use crate::secret::Secret;
use crate::store::StoreError;

/// An open, migrated database.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
}

impl Postgres {
    /// Connects to `url` with at most `pool_size` connections and creates or upgrades
    /// the schema. Fails with [`StoreError::Unavailable`] when the database cannot be reached.
    pub async fn open(url: &str, pool_size: usize) -> Result<Postgres, StoreError> {
        let pool = Pool::new(url, pool_size)?;
        migrate::migrate(&pool).await?;
        Ok(Postgres { pool })
    }

    /// The connection pool (shared by the records and the locks).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The record store.
    pub fn records(&self) -> PgRecords {
        PgRecords::new(self.pool.clone())
    }

    /// The key of ids derived from client-supplied identifiers, the same for every
    /// instance: the first instance to start stores a random one.
    pub async fn shared_secret(&self) -> Result<Secret, StoreError> {
        let fresh = Secret::random().map_err(StoreError::Io)?;
        let conn = self.pool.get().await?;
        let fresh_bytes: &[u8] = fresh.bytes();
        within(conn.execute(
            "INSERT INTO sluice_settings (name, value) VALUES ('id_secret', $1) ON CONFLICT (name) DO NOTHING",
            &[&fresh_bytes],
        ))
        .await?;
        let row = within(conn.query_one("SELECT value FROM sluice_settings WHERE name = 'id_secret'", &[])).await?;
        let stored: Vec<u8> = row.get(0);
        let bytes: [u8; 32] = stored
            .try_into()
            .map_err(|_| StoreError::Io(std::io::Error::other("sluice_settings.id_secret is not 32 bytes")))?;
        Ok(Secret::from_bytes(bytes))
    }
}
