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

/// A PostgreSQL server of a test's own (for tests that stop and start it), on a free
/// loopback port below 32768; removed when dropped. `None` when PostgreSQL is not installed.
pub struct PrivateServer {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    pub port: u16,
}

impl PrivateServer {
    pub fn start() -> Option<PrivateServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let start = 16_000 + (std::process::id() % 4_000) as u16 * 3;
        let port = (start..32_000).find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())?;
        let server = PrivateServer { dir, bin, port };
        if is_root() {
            let status = std::process::Command::new("chown").arg("postgres").arg(server.dir.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "chown");
        }
        let data = server.dir.path().join("data");
        server.run("initdb", &["--auth=trust", "--username=postgres", "--no-sync", "-D", data.to_str()?]);
        server.up();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again).
    pub fn up(&self) {
        let dir = self.dir.path();
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, dir.display());
        let (data, log) = (dir.join("data"), dir.join("log"));
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-o", &options, "start"]);
    }

    /// Stops (fast shutdown: sessions are ended).
    pub fn down(&self) {
        let data = self.dir.path().join("data");
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-w", "-m", "fast", "stop"]);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            std::process::Command::new(program)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL program");
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let program = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            std::process::Command::new(program)
        };
        let _ = cmd.arg("-D").arg(data).args(["-m", "immediate", "stop"]).output();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}
