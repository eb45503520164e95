//! The schema, created on first start: `crates/sluice-server/migrations/*.sql`, applied
//! in order in one transaction under an advisory lock, so several instances starting
//! together apply each migration exactly once.

use super::pool::{within, Pool};
use crate::store::StoreError;

/// The migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "records", include_str!("../../../migrations/0001_records.sql")),
    (2, "locks", include_str!("../../../migrations/0002_locks.sql")),
];

/// The advisory lock key that serializes migrations ("sluice" in ASCII).
const MIGRATION_LOCK: i64 = 0x736c_7569_6365;

/// Applies the migrations this database lacks; returns how many were applied.
pub(super) async fn migrate(pool: &Pool) -> Result<usize, StoreError> {
    let mut conn = pool.get().await?;
    let tx = within(conn.client_mut().transaction()).await?;
    within(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])).await?;
    within(tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sluice_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    ))
    .await?;
    let row = within(tx.query_one("SELECT coalesce(max(version), 0) FROM sluice_migrations", &[])).await?;
    let current: i32 = row.get(0);
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|(version, ..)| *version > current) {
        within(tx.batch_execute(sql)).await?;
        within(tx.execute("INSERT INTO sluice_migrations (version, name) VALUES ($1, $2)", &[version, name])).await?;
        tracing::info!(version, name, "PostgreSQL migration applied");
        applied += 1;
    }
    within(tx.commit()).await?;
    Ok(applied)
}
