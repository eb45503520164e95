//! The browser module: building its package (`cargo xtask build-web`) and its test suite
//! (`cargo xtask test-browser`).
//!
//! **The package** is built by `wasm-pack build --release --target web`: the npm package
//! `sluice-browser` (ES module, wasm, generated TypeScript types, README, licences) in `web/pkg/`,
//! where the page imports it and the server's build embeds it. `wasm-opt` is npm's binaryen
//! (`tests/node_modules/.bin`, put first on PATH): Debian's binaryen silently breaks the module.
//!
//! **The suite**:
//! 1. Builds the package and the release server and starts the server on `127.0.0.1:0` with the
//!    test policy below, and starts `@tus/server` (npm, `crates/sluice-browser/js/tus-server.mjs`)
//!    as the third-party server.
//! 2. Starts a small **control server** (std only, below) that the tests in the browser call:
//!    `POST /restart?down_ms=N` kills the Sluice server, answers once it is down, and starts it
//!    again on the same port and data dir `N` ms later (the "retry across a server restart"
//!    test); `GET /tus-data/ID` serves what `@tus/server` stored (its own GET sends no CORS
//!    headers); it also serves the release package and page, and takes the page's report.
//! 3. Runs the wasm-bindgen tests with `wasm-pack test --headless`, in Chromium and in Firefox
//!    ESR, with the `live-tests` feature: the self-contained tests (`tests/offline.rs`, what a
//!    plain `wasm-pack test` runs on a fresh clone) and the ones against the servers. The
//!    addresses reach those as compile-time environment variables (`SLUICE_TEST_ENDPOINT`,
//!    `SLUICE_TEST_CONTROL`, `SLUICE_TEST_TUS`).
//! 4. Opens `tests/release.html` in headless Chromium with the **release** package (wasm-opt
//!    included): it checks and uploads a file and posts its result to the control server, which
//!    catches a post-processing step that breaks the module.
//!
//! Every process started here is stopped here, by its own handle.

use crate::proc::{self, cargo, command, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The policy the browser tests are written against (see `crates/sluice-browser/tests/`).
const POLICY: &str = r#"
max_file_size = "8 MiB"
min_file_size = 1
max_chunk_size = "1 MiB"
allowed_types = ["application/pdf", "text/plain", "application/octet-stream", "image/jpeg"]
allowed_extensions = ["pdf", "txt", "bin", "jpg"]
checksum = "optional"
checksum_algorithms = ["sha256", "crc32c", "sha1"]
max_files_per_batch = 3
max_batch_size = "12 MiB"
"#;

const CRATE: &str = "crates/sluice-browser";

/// The browsers `wasm-pack test` runs the module in.
const BROWSERS: &[&str] = &["--chrome", "--firefox"];

/// Runs the browser test suite.
pub fn test() -> Result<(), String> {
    let root = proc::root();
    // Builds the package into web/pkg first (the server embeds it).
    crate::test::build_release_server()?;
    npm_install(&root.join(CRATE).join("js"))?;
    // The server addresses are compiled into the wasm test binaries, which every run shares:
    // two runs at once (say `cargo xtask test` by two people in one checkout) would test each
    // other's servers. Take turns.
    let _turn = RunLock::acquire(&target_dir().join("browser-tests.lock"))?;
    let work = target_dir().join("browser-tests");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let policy = work.join("policy.toml");
    std::fs::write(&policy, POLICY).map_err(|e| format!("{}: {e}", policy.display()))?;

    let sluice = Arc::new(Restartable::start(target_dir().join("release/sluice"), &work, &policy)?);
    // The control server's thread keeps a handle to the server forever: stop it explicitly.
    let result = suite(&root, &work, sluice.clone());
    let _ = sluice.stop();
    result?;
    println!("browser tests: all passed");
    Ok(())
}

fn suite(root: &Path, work: &Path, sluice: Arc<Restartable>) -> Result<(), String> {
    let tus_dir = work.join("tus-node-data");
    std::fs::create_dir_all(&tus_dir).map_err(|e| format!("{}: {e}", tus_dir.display()))?;
    let mut node = command("node");
    node.arg(root.join(CRATE).join("js/tus-server.mjs")).arg(&tus_dir);
    let tus_node = Server::start(node, &work.join("tus-node.log"))?;
    let control = Control::start(sluice.clone(), root.join(CRATE), tus_dir)?;
    let endpoint = format!("http://{}/files/", sluice.addr());
    let tus_endpoint = format!("http://{}/files/", tus_node.addr);
    println!("browser tests: sluice {endpoint}, @tus/server {tus_endpoint}, control {}", control.url());

    for browser in BROWSERS {
        let mut cmd = command("wasm-pack");
        cmd.args(["test", "--headless", browser, CRATE, "--features", "live-tests"])
            .env("SLUICE_TEST_ENDPOINT", &endpoint)
            .env("SLUICE_TEST_CONTROL", control.url())
            .env("SLUICE_TEST_TUS", &tus_endpoint)
            .env("WASM_BINDGEN_TEST_TIMEOUT", "300");
        proc::run(&mut cmd)?;
    }
    // The pure modules (backoff, progress, fingerprints, capability parsing, words) on the host too.
    proc::run(cargo().args(["test", "-p", "sluice-browser", "--lib"]))?;

    release_page(&control, &endpoint, work)
}

/// The target dir (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => proc::root().join(d),
        None => proc::root().join("target"),
    }
}

/// `npm ci` in `dir` unless its `node_modules` is current.
fn npm_install(dir: &Path) -> Result<(), String> {
    let stamp = dir.join("node_modules/.sluice-npm-ci.stamp");
    let lock = std::fs::read(dir.join("package-lock.json")).unwrap_or_default();
    if std::fs::read(&stamp).ok().as_deref() == Some(&lock[..]) {
        return Ok(());
    }
    proc::run(command("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir))?;
    std::fs::write(&stamp, lock).map_err(|e| format!("{}: {e}", stamp.display()))
}

/// Builds the release package into `out` with `wasm-pack build --release --target web`, with
/// npm's binaryen first on PATH for `wasm-opt`.
pub fn build_package(out: &Path) -> Result<(), String> {
    let root = proc::root();
    let npm_bin = root.join("tests/node_modules/.bin");
    for (tool, how) in [
        ("wasm-pack", "cargo install wasm-pack --locked"),
        ("wasm-bindgen", "cargo install wasm-bindgen-cli --version 0.2.130"),
    ] {
        if proc::probe(command(tool).arg("--version")).is_none() {
            return Err(format!("{tool} is not installed; run `cargo xtask setup` (or `{how}`)"));
        }
    }
    if !npm_bin.join("wasm-opt").exists() {
        return Err("npm's binaryen (wasm-opt) is missing; run `cargo xtask setup` (npm ci in tests/)".into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(npm_bin).chain(std::env::split_paths(&path)))
        .map_err(|e| format!("PATH: {e}"))?;
    // wasm-pack writes package.json's `files` before it copies the licence files, listing
    // only those already in the output directory: on a fresh clone the package would ship
    // without them. Put them there first.
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for licence in ["LICENSE-MIT", "LICENSE-APACHE"] {
        let from = root.join(CRATE).join(licence);
        std::fs::copy(&from, out.join(licence)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    let mut cmd = command("wasm-pack");
    cmd.args(["build", "--release", "--target", "web", "--out-dir"]).arg(out).arg(CRATE).env("PATH", path);
    proc::run(&mut cmd)
}

/// Loads the release build in headless Chromium: `tests/release.html` checks a crafted file and
/// uploads one, then posts `{ok, ...}` to the control server.
fn release_page(control: &Control, endpoint: &str, work: &Path) -> Result<(), String> {
    // The package the server embeds, built by `build_release_server` (wasm-opt included).
    *control.pkg.lock().map_err(|_| "poisoned")? = Some(proc::root().join("web/pkg"));
    let url = format!("{}/release.html?endpoint={endpoint}", control.url());
    let profile = work.join("chromium-profile");
    let mut chromium = Command::new("chromium");
    chromium
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    println!("$ {}", proc::describe(&chromium));
    let browser = Browser(chromium.spawn().map_err(|e| format!("cannot start chromium: {e}"))?);
    let report = control.reports.lock().map_err(|_| "poisoned")?.recv_timeout(Duration::from_secs(90));
    drop(browser);
    let report = report.map_err(|_| "the release page sent no report within 90 s".to_string())?;
    println!("release page: {report}");
    if report.contains("\"ok\":true") {
        Ok(())
    } else {
        Err(format!("the release build failed in Chromium: {report}"))
    }
}

/// The Chromium we started, killed when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        // SIGTERM first so Chromium shuts its helper processes down itself; SIGKILL after 5 s.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Sluice server, restartable on the same port and data dir.
struct Restartable {
    bin: PathBuf,
    data: PathBuf,
    policy: PathBuf,
    log_dir: PathBuf,
    addr: String,
    server: Mutex<Option<Server>>,
    starts: Mutex<u32>,
}

impl Restartable {
    fn start(bin: PathBuf, work: &Path, policy: &Path) -> Result<Restartable, String> {
        let data = work.join("sluice-data");
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let mut r = Restartable {
            bin,
            data,
            policy: policy.to_path_buf(),
            log_dir: work.to_path_buf(),
            addr: String::new(),
            server: Mutex::new(None),
            starts: Mutex::new(0),
        };
        let server = r.spawn("127.0.0.1:0")?;
        r.addr = server.addr.clone();
        *r.server.lock().map_err(|_| "poisoned")? = Some(server);
        Ok(r)
    }

    fn addr(&self) -> &str {
        &self.addr
    }

    fn spawn(&self, listen: &str) -> Result<Server, String> {
        let n = {
            let mut starts = self.starts.lock().map_err(|_| "poisoned")?;
            *starts += 1;
            *starts
        };
        let mut cmd = Command::new(&self.bin);
        cmd.args(["serve", "--listen", listen, "--data-dir"]).arg(&self.data).arg("--policy").arg(&self.policy);
        Server::start(cmd, &self.log_dir.join(format!("sluice-{n}.log")))
    }

    /// Stops the server (returns once it is gone).
    fn stop(&self) -> Result<(), String> {
        let old = self.server.lock().map_err(|_| "poisoned")?.take();
        drop(old);
        Ok(())
    }

    /// Starts it again on the same address, retrying while the port is still held.
    fn restart(&self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..25 {
            match self.spawn(&self.addr) {
                Ok(s) => {
                    *self.server.lock().map_err(|_| "poisoned")? = Some(s);
                    return Ok(());
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("could not restart sluice on {}: {last}", self.addr))
    }
}

/// The control server the browser tests call (std only, one thread per connection).
struct Control {
    addr: String,
    pkg: Arc<Mutex<Option<PathBuf>>>,
    reports: Mutex<mpsc::Receiver<String>>,
}

impl Control {
    fn start(sluice: Arc<Restartable>, crate_dir: PathBuf, tus_dir: PathBuf) -> Result<Control, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("control server: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
        let pkg: Arc<Mutex<Option<PathBuf>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let ctx = Arc::new(Ctx { sluice, crate_dir, tus_dir, pkg: pkg.clone(), reports: Mutex::new(tx) });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let ctx = ctx.clone();
                std::thread::spawn(move || {
                    let _ = ctx.serve(stream);
                });
            }
        });
        Ok(Control { addr, pkg, reports: Mutex::new(rx) })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct Ctx {
    sluice: Arc<Restartable>,
    crate_dir: PathBuf,
    /// `@tus/server`'s data dir: its GET answers lack CORS headers, so the tests read uploads here.
    tus_dir: PathBuf,
    pkg: Arc<Mutex<Option<PathBuf>>>,
    reports: Mutex<mpsc::Sender<String>>,
}

impl Ctx {
    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (status, ctype, out) = match (method.as_str(), path) {
            ("OPTIONS", _) => (204, "text/plain", Vec::new()),
            ("POST", "/restart") => {
                let down_ms = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("down_ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000u64);
                match self.sluice.stop() {
                    Ok(()) => {
                        let sluice = self.sluice.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(down_ms));
                            if let Err(e) = sluice.restart() {
                                eprintln!("control: {e}");
                            }
                        });
                        (200, "text/plain", b"down".to_vec())
                    }
                    Err(e) => (500, "text/plain", e.into_bytes()),
                }
            }
            ("POST", "/report") => {
                let text = String::from_utf8_lossy(&body).into_owned();
                if let Ok(tx) = self.reports.lock() {
                    let _ = tx.send(text);
                }
                (200, "text/plain", b"thanks".to_vec())
            }
            ("GET", p) if p.starts_with("/tus-data/") => {
                let id = &p["/tus-data/".len()..];
                let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                match valid.then(|| std::fs::read(self.tus_dir.join(id)).ok()).flatten() {
                    Some(b) => (200, "application/octet-stream", b),
                    None => (404, "text/plain", Vec::new()),
                }
            }
            ("GET", "/release.html") => match std::fs::read(self.crate_dir.join("tests/release.html")) {
                Ok(b) => (200, "text/html", b),
                Err(_) => (404, "text/plain", Vec::new()),
            },
            ("GET", p) if p.starts_with("/pkg/") && !p.contains("..") => {
                let dir = self.pkg.lock().ok().and_then(|d| d.clone());
                match dir.and_then(|d| std::fs::read(d.join(&p[5..])).ok()) {
                    Some(b) if p.ends_with(".wasm") => (200, "application/wasm", b),
                    Some(b) if p.ends_with(".js") => (200, "text/javascript", b),
                    Some(b) => (200, "application/octet-stream", b),
                    None => (404, "text/plain", Vec::new()),
                }
            }
            _ => (404, "text/plain", Vec::new()),
        };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\n\
             Access-Control-Allow-Methods: GET, POST, OPTIONS\r\nAccess-Control-Allow-Headers: *\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            out.len()
        )?;
        stream.write_all(&out)?;
        stream.flush()
    }
}

/// A lock file holding the owner's pid; a stale one (dead owner) is taken over.
struct RunLock(PathBuf);

impl RunLock {
    fn acquire(path: &Path) -> Result<RunLock, String> {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(path));
        let mut waited = false;
        for _ in 0..1800 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(RunLock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path).unwrap_or_default();
                    let alive =
                        owner.trim().parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if !alive && !owner.is_empty() {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if !waited {
                        println!("browser tests: waiting for the run of pid {} to finish", owner.trim());
                        waited = true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Err(format!("{} is held by another run for 30 minutes", path.display()))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
