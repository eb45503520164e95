//! A fresh PostgreSQL schema per test, on the server named by `SLUICE_TEST_POSTGRES`
//! (`cargo xtask test` starts a throwaway one and sets it).

use sluice_server::store::postgres::Pool;

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
