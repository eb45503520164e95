//! Garage (S3-compatible object storage) for tests and benches: installed by `setup`
//! (`cargo install garage --locked`, 8-15 minutes once per machine), started on loopback
//! under a temporary directory, stopped when dropped. Std only: the S3 black-box suite
//! includes this file too (`#[path]`), so both start Garage the same way.
//!
//! [`Garage::env`] gives what the S3 suites and the server read: `SLUICE_TEST_S3`
//! (`s3://BUCKET`), `SLUICE_S3_ENDPOINT`, `SLUICE_S3_REGION`, `SLUICE_S3_PATH_STYLE`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Garage release `setup` installs.
pub const VERSION: &str = "2.5.0";
/// The bucket the tests use.
pub const BUCKET: &str = "sluice-test";
/// Garage's region (any name; clients sign with it).
pub const REGION: &str = "garage";

/// Whether `garage --version` answers.
pub fn installed() -> bool {
    Command::new("garage")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running single-node Garage with one bucket and one key.
pub struct Garage {
    child: Option<Child>,
    dir: PathBuf,
    conf: PathBuf,
    envs: Vec<(String, String)>,
    /// The S3 API's address (`127.0.0.1:PORT`).
    pub s3_addr: String,
    admin_addr: String,
    secrets: Secrets,
}

struct Secrets {
    rpc: String,
    admin: String,
    key_id: String,
    key_secret: String,
}

impl Garage {
    /// Starts Garage under a fresh temporary directory and waits until it is ready.
    pub fn start() -> Result<Garage, String> {
        let dir = std::env::temp_dir().join(format!("sluice-garage-{}-{}", std::process::id(), random_hex(4)?));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let [rpc, s3, admin] = free_ports()?;
        let conf = dir.join("garage.toml");
        let text = format!(
            "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\n\
             [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
        );
        write_private(&conf, &text)?;
        let secrets = Secrets {
            rpc: random_hex(32)?,
            admin: random_hex(32)?,
            key_id: format!("GK{}", random_hex(12)?),
            key_secret: random_hex(32)?,
        };
        let s3_addr = format!("127.0.0.1:{s3}");
        let envs = vec![
            ("SLUICE_TEST_S3".to_string(), format!("s3://{BUCKET}")),
            ("SLUICE_S3_ENDPOINT".to_string(), format!("http://{s3_addr}")),
            ("SLUICE_S3_REGION".to_string(), REGION.to_string()),
            ("SLUICE_S3_PATH_STYLE".to_string(), "true".to_string()),
            ("AWS_ACCESS_KEY_ID".to_string(), secrets.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), secrets.key_secret.clone()),
        ];
        let mut garage =
            Garage { child: None, dir, conf, envs, s3_addr, admin_addr: format!("127.0.0.1:{admin}"), secrets };
        garage.resume()?;
        Ok(garage)
    }

    /// The variables that point a test or a server at this Garage.
    pub fn env(&self) -> &[(String, String)] {
        &self.envs
    }

    /// Stops the process (its data stays): an outage, for fault tests.
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again over the same data and waits until it answers.
    pub fn resume(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("garage.log"))
            .map_err(|e| format!("garage log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("garage")
            .arg("-c")
            .arg(&self.conf)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_RPC_SECRET", &self.secrets.rpc)
            .env("GARAGE_ADMIN_TOKEN", &self.secrets.admin)
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.secrets.key_id)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secrets.key_secret)
            .env("GARAGE_DEFAULT_BUCKET", BUCKET)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start garage (cargo xtask setup installs it): {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.healthy() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(self.dir.join("garage.log")).unwrap_or_default();
                    return Err(format!("garage exited ({status}): {}", log.lines().last().unwrap_or("")));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("garage.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(format!(
            "garage not ready after 30 s; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// `GET /health` on the admin API answers 200.
    fn healthy(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(&self.admin_addr) else { return false };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.admin_addr);
        if conn.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    }

    /// Peak resident memory of the Garage process (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.pause();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` with a Garage started for it and stopped afterwards, even when `f` fails.
pub fn with_garage(f: impl FnOnce(&Garage) -> Result<(), String>) -> Result<(), String> {
    let garage = Garage::start()?;
    println!("garage: S3 API at http://{} (bucket {BUCKET})", garage.s3_addr);
    f(&garage)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// `bytes` random bytes from the OS, as hex.
fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).map_err(|e| e.to_string())?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Three free loopback ports below the ephemeral range (clients cannot take them meanwhile).
fn free_ports() -> Result<[u16; 3], String> {
    let seed = u16::from_str_radix(&random_hex(2)?, 16).unwrap_or(0);
    let mut held = Vec::new();
    for step in 0..2000u16 {
        let port = 20_000 + (seed.wrapping_add(step.wrapping_mul(7))) % 12_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, listener));
            if held.len() == 3 {
                return Ok([held[0].0, held[1].0, held[2].0]);
            }
        }
    }
    Err("no free ports between 20000 and 32000".into())
}
