//! Throwaway services for the test and bench runs, on loopback ports below 32768 (the
//! ephemeral range above can be taken by clients), under temporary directories, stopped
//! when dropped (so also when a step fails).
//!
//! - [`Postgres`]: Debian's PostgreSQL (`cargo xtask setup` installs it), initialised with
//!   `initdb` and run with `pg_ctl`, as the `postgres` user when we are root.

use crate::proc::{self, command};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs PostgreSQL's programs (one directory per major version).
const PG_LIB: &str = "/usr/lib/postgresql";

/// The newest installed PostgreSQL's `bin` directory.
pub fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(PG_LIB)
        .ok()?
        .filter_map(|e| {
            let path = e.ok()?.path();
            let major = path.file_name()?.to_str()?.parse().ok()?;
            path.join("bin/initdb").exists().then(|| (major, path.join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A free loopback port below 32768, starting from a place that depends on our pid so that
/// parallel runs rarely try the same ones.
pub fn free_port() -> Result<u16, String> {
    let start = 20_000 + (std::process::id() % 5_000) as u16 * 2;
    (start..32_000)
        .chain(15_000..start)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .ok_or_else(|| "no free loopback port below 32768".to_string())
}

/// A PostgreSQL server of our own, removed with its data when dropped.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    /// Initialises and starts a server (user `postgres`, trust authentication on loopback).
    pub fn start() -> Result<Postgres, String> {
        let bin = postgres_bin().ok_or("PostgreSQL is not installed (cargo xtask setup installs it)")?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("sluice-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let server = Postgres { dir, bin, port: free_port()? };
        if proc::is_root() {
            proc::run(command("chown").args(["postgres:postgres"]).arg(&server.dir))?;
        }
        let data = server.dir.join("data");
        let mut initdb = server.as_owner(&server.bin.join("initdb"));
        initdb.args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-sync", "-D"]).arg(&data);
        run_quietly(&mut initdb)?;
        server.pg_ctl_start()?;
        println!("postgres: {} (data under {})", server.url(), server.dir.display());
        Ok(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_owner(&self, program: &Path) -> Command {
        if proc::is_root() {
            let mut cmd = command("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            command(&program.to_string_lossy())
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let mut start = self.as_owner(&self.bin.join("pg_ctl"));
        start.arg("-D").arg(self.dir.join("data")).arg("-l").arg(self.dir.join("log"));
        start.args(["-w", "-o", &options, "start"]);
        run_quietly(&mut start)
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let mut stop = self.as_owner(&self.bin.join("pg_ctl"));
        stop.arg("-D").arg(self.dir.join("data")).args(["-w", "-m", mode, "stop"]);
        run_quietly(&mut stop)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.pg_ctl_stop("immediate") {
            eprintln!("postgres: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` with its output captured, shown only when it fails.
fn run_quietly(cmd: &mut Command) -> Result<(), String> {
    let line = proc::describe(cmd);
    let out = cmd.output().map_err(|e| format!("cannot start `{line}`: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{line}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn a_throwaway_postgres_starts_and_is_gone_when_dropped() {
        if postgres_bin().is_none() {
            eprintln!("SKIPPED: PostgreSQL is not installed (cargo xtask setup)");
            return;
        }
        let server = Postgres::start().unwrap();
        let addr = ("127.0.0.1", server.port);
        assert!(server.port < 32768);
        assert!(TcpStream::connect(addr).is_ok(), "it listens");
        let dir = server.dir.clone();
        drop(server);
        assert!(TcpStream::connect(addr).is_err(), "stopped");
        assert!(!dir.exists(), "its files removed");
    }
}
