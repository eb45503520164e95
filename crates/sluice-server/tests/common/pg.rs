//! A fresh PostgreSQL schema per test, on the server named by `SLUICE_TEST_POSTGRES`
//! (`cargo xtask test` starts a throwaway one and sets it).

use sluice_server::lock::PgLocks;
use sluice_server::store::postgres::{Pool, Postgres};
use sluice_server::Backends;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The test server's URL, or `None` (with a notice) when this run has none.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var("SLUICE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test}: SLUICE_TEST_POSTGRES is not set (cargo xtask test sets it)");
            None
        }
    }
}

/// A URL whose connections see only a new, empty schema of their own, so tests
/// running side by side never see each other's rows.
pub async fn fresh_schema(url: &str) -> String {
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).expect("random");
    let schema: String = std::iter::once("t".to_string()).chain(name.iter().map(|b| format!("{b:02x}"))).collect();
    let pool = Pool::new(url, 1).expect("pool");
    pool.get().await.expect("connect").batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// PostgreSQL records and locks in a fresh schema, bytes on disk under `dir`: what
/// `sluice serve --state postgres://…` runs on.
pub async fn backends(dir: &std::path::Path, takeover_wait: Duration) -> Backends {
    let url = std::env::var("SLUICE_TEST_POSTGRES").expect("SLUICE_TEST_STORE=postgres needs SLUICE_TEST_POSTGRES");
    let url = fresh_schema(&url).await;
    let pg = Postgres::open(&url, 4).await.expect("open PostgreSQL");
    let shutdown = CancellationToken::new();
    let locks = PgLocks::open(pg.pool().clone(), takeover_wait, Duration::from_secs(10), shutdown.clone())
        .await
        .expect("locks");
    Backends {
        records: Arc::new(pg.records()),
        bytes: Arc::new(sluice_server::store::fs::open_bytes(dir, false).expect("bytes")),
        locks: Arc::new(locks),
        shutdown,
    }
}
