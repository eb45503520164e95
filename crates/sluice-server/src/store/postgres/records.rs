//! Upload records in the `sluice_uploads` table.

use super::pool::{within, Pool};
use crate::id::UploadId;
use crate::store::{Kind, OpenUsage, RecordStore, Result, State, StoreError, UploadRecord};
use async_trait::async_trait;
use std::time::SystemTime;
use tokio_postgres::types::ToSql;

const INSERT: &str = "INSERT INTO sluice_uploads
    (id, \"offset\", length, fence, state, kind, client, owner, unreceived, created_at, modified_at, record)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (id) DO NOTHING";

const GET: &str = "SELECT record, gone_at IS NOT NULL FROM sluice_uploads WHERE id = $1";

/// The compare-and-set: the stored offset must be the expected one and the stored
/// fence not newer than the writer's.
const COMMIT: &str = "UPDATE sluice_uploads SET
        \"offset\" = $4, length = $5, state = $6, kind = $7, client = $8, owner = $9,
        unreceived = $10, modified_at = $11, record = $12, fence = $3
    WHERE id = $1 AND \"offset\" = $2 AND fence <= $3 AND gone_at IS NULL";

const WHY_NOT: &str = "SELECT \"offset\", fence, gone_at IS NOT NULL FROM sluice_uploads WHERE id = $1";

const MARK_GONE: &str = "UPDATE sluice_uploads SET gone_at = $2 WHERE id = $1 AND gone_at IS NULL";

const EXISTS: &str = "SELECT 1 FROM sluice_uploads WHERE id = $1";

const STALE: &str = "SELECT id FROM sluice_uploads
    WHERE state = 'receiving' AND gone_at IS NULL AND modified_at < $1";

const PURGE: &str = "DELETE FROM sluice_uploads WHERE gone_at < $1";

const USAGE: &str = "SELECT count(*), coalesce(sum(unreceived), 0)::bigint FROM sluice_uploads
    WHERE client = $1 AND state = 'receiving' AND gone_at IS NULL";

const PROMISED: &str = "SELECT coalesce(sum(unreceived), 0)::bigint FROM sluice_uploads
    WHERE state = 'receiving' AND gone_at IS NULL";

/// Upload records shared by every instance using the same database.
pub struct PgRecords {
    pool: Pool,
}

impl PgRecords {
    /// Records over `pool` (the schema must be migrated).
    pub fn new(pool: Pool) -> PgRecords {
        PgRecords { pool }
    }

    /// Runs one prepared statement, returning the rows it produced.
    async fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>> {
        let mut conn = self.pool.get().await?;
        let statement = conn.prepared(sql).await?;
        within(conn.query(&statement, params)).await
    }

    /// Runs one prepared statement, returning how many rows it changed.
    async fn execute(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let mut conn = self.pool.get().await?;
        let statement = conn.prepared(sql).await?;
        within(conn.execute(&statement, params)).await
    }

    /// Why a write found no live row: unknown or gone.
    async fn missing(&self, id: &UploadId) -> StoreError {
        match self.query(EXISTS, &[&id.as_str()]).await {
            Ok(rows) if rows.is_empty() => StoreError::NotFound,
            Ok(_) => StoreError::Gone,
            Err(e) => e,
        }
    }
}

/// The columns of a record, as the statements take them.
struct Columns {
    offset: i64,
    length: Option<i64>,
    fence: i64,
    state: &'static str,
    kind: &'static str,
    unreceived: i64,
    json: serde_json::Value,
}

impl Columns {
    fn of(record: &UploadRecord) -> Result<Columns> {
        Ok(Columns {
            offset: big(record.offset)?,
            length: record.length.map(big).transpose()?,
            fence: big(record.fence.0)?,
            state: match record.state {
                State::Receiving => "receiving",
                State::Complete => "complete",
            },
            kind: match record.kind {
                Kind::Whole => "whole",
                Kind::Partial => "partial",
                Kind::Final(_) => "final",
            },
            unreceived: big(record.unreceived())?,
            json: serde_json::to_value(record).map_err(|e| StoreError::Io(std::io::Error::other(e)))?,
        })
    }
}

/// A count or offset as PostgreSQL's `bigint`.
fn big(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Full)
}

fn small(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait(?Send)]
impl RecordStore for PgRecords {
    async fn insert(&self, record: &UploadRecord) -> Result<()> {
        let c = Columns::of(record)?;
        let inserted = self
            .execute(
                INSERT,
                &[
                    &record.id.as_str(),
                    &c.offset,
                    &c.length,
                    &c.fence,
                    &c.state,
                    &c.kind,
                    &record.client,
                    &record.owner,
                    &c.unreceived,
                    &record.created_at,
                    &record.modified_at,
                    &c.json,
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        Ok(())
    }

    async fn get(&self, id: &UploadId) -> Result<UploadRecord> {
        let rows = self.query(GET, &[&id.as_str()]).await?;
        let Some(row) = rows.first() else { return Err(StoreError::NotFound) };
        if row.get::<_, bool>(1) {
            return Err(StoreError::Gone);
        }
        let json: serde_json::Value = row.get(0);
        serde_json::from_value(json).map_err(|e| StoreError::Io(std::io::Error::other(format!("record {id}: {e}"))))
    }

    async fn commit(&self, record: &UploadRecord, expected_offset: u64) -> Result<()> {
        let c = Columns::of(record)?;
        let expected = big(expected_offset)?;
        let changed = self
            .execute(
                COMMIT,
                &[
                    &record.id.as_str(),
                    &expected,
                    &c.fence,
                    &c.offset,
                    &c.length,
                    &c.state,
                    &c.kind,
                    &record.client,
                    &record.owner,
                    &c.unreceived,
                    &record.modified_at,
                    &c.json,
                ],
            )
            .await?;
        if changed == 1 {
            return Ok(());
        }
        // Nothing changed: say precisely why.
        let rows = self.query(WHY_NOT, &[&record.id.as_str()]).await?;
        let Some(row) = rows.first() else { return Err(StoreError::NotFound) };
        let (offset, fence, gone): (i64, i64, bool) = (row.get(0), row.get(1), row.get(2));
        if gone {
            Err(StoreError::Gone)
        } else if fence > c.fence {
            Err(StoreError::Fenced)
        } else {
            Err(StoreError::OffsetMismatch { actual: small(offset) })
        }
    }

    async fn mark_gone(&self, id: &UploadId) -> Result<()> {
        match self.execute(MARK_GONE, &[&id.as_str(), &SystemTime::now()]).await? {
            0 => Err(self.missing(id).await),
            _ => Ok(()),
        }
    }

    async fn stale(&self, cutoff: SystemTime) -> Result<Vec<UploadId>> {
        let rows = self.query(STALE, &[&cutoff]).await?;
        Ok(rows.iter().filter_map(|row| UploadId::parse(row.get(0))).collect())
    }

    async fn purge_tombstones(&self, cutoff: SystemTime) -> Result<usize> {
        let purged = self.execute(PURGE, &[&cutoff]).await?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }

    async fn open_usage(&self, client: &str) -> Result<OpenUsage> {
        let rows = self.query(USAGE, &[&client]).await?;
        let row = rows.first().ok_or_else(|| StoreError::Io(std::io::Error::other("no usage row")))?;
        Ok(OpenUsage { uploads: small(row.get(0)), unreceived: small(row.get(1)) })
    }

    async fn promised_bytes(&self) -> Result<u64> {
        let rows = self.query(PROMISED, &[]).await?;
        Ok(rows.first().map_or(0, |row| small(row.get(0))))
    }

    async fn check(&self) -> Result<()> {
        self.pool.check().await
    }
}
