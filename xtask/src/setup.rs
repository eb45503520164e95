//! `cargo xtask setup`: installs what a fresh machine of the project's kind (Debian 12 with
//! rustup, cargo, node, npm) lacks: the wasm target, Chromium and Firefox ESR (apt),
//! wasm-bindgen-cli, wasm-pack and geckodriver (cargo install), and the npm packages of `tests/`
//! (which include binaryen, whose `wasm-opt` optimises the release wasm: Debian's breaks it).
//! Each step checks first and prints `installed` or `skipped`, so a second run takes about a second.

use crate::proc::{self, command, probe};
use std::path::Path;

/// The wasm-bindgen CLI must match the `wasm-bindgen` crate exactly (the test runner fails on a
/// schema mismatch). Taken from Cargo.lock when the crate is there; this is the fallback.
const WASM_BINDGEN_VERSION: &str = "0.2.130";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Written into `DIR/node_modules` by `npm_ci`: the lock file's hash and node's version.
const STAMP: &str = "node_modules/.sluice-npm-ci.stamp";

/// Runs every setup step.
pub fn run() -> Result<(), String> {
    step("rust target wasm32-unknown-unknown", wasm_target)?;
    step("rustup components clippy, rustfmt", components)?;
    step("chromium + chromium-driver (apt)", chromium)?;
    step("firefox-esr (apt)", firefox)?;
    step("openssl (apt)", openssl)?;
    step("wasm-bindgen-cli", wasm_bindgen)?;
    step("wasm-pack", wasm_pack)?;
    step("geckodriver", geckodriver)?;
    step("npm ci in tests/ (playwright-core, esbuild, binaryen's wasm-opt)", || npm_ci("tests"))?;
    step("postgresql (apt)", postgresql)?;
    step("garage (S3-compatible store for the S3 suites)", garage)?;
    Ok(())
}

/// What a step did.
pub enum Done {
    Installed,
    Skipped(&'static str),
}

/// Runs one step and prints `setup: NAME: installed` or `skipped (why)`.
pub fn step(name: &str, f: impl FnOnce() -> Result<Done, String>) -> Result<(), String> {
    match f().map_err(|e| format!("setup step `{name}`: {e}"))? {
        Done::Installed => println!("setup: {name}: installed"),
        Done::Skipped(why) => println!("setup: {name}: skipped ({why})"),
    }
    Ok(())
}

fn wasm_target() -> Result<Done, String> {
    let installed = probe(command("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(Done::Skipped("already installed"));
    }
    proc::run(command("rustup").args(["target", "add", WASM_TARGET]))?;
    Ok(Done::Installed)
}

fn components() -> Result<Done, String> {
    let installed = probe(command("rustup").args(["component", "list", "--installed"])).unwrap_or_default();
    let missing: Vec<&str> = ["clippy", "rustfmt"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l == *c || l.starts_with(&format!("{c}-"))))
        .collect();
    if missing.is_empty() {
        return Ok(Done::Skipped("already installed"));
    }
    proc::run(command("rustup").args(["component", "add"]).args(&missing))?;
    Ok(Done::Installed)
}

fn chromium() -> Result<Done, String> {
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() {
        return Ok(Done::Skipped("/usr/bin/chromium and /usr/bin/chromedriver present"));
    }
    apt_install(&["chromium", "chromium-driver"])?;
    Ok(Done::Installed)
}

/// Firefox for `wasm-pack test --firefox` (driven through geckodriver; Playwright's Firefox
/// builds cannot be downloaded here).
fn firefox() -> Result<Done, String> {
    if Path::new("/usr/bin/firefox-esr").exists() {
        return Ok(Done::Skipped("/usr/bin/firefox-esr present"));
    }
    apt_install(&["firefox-esr"])?;
    Ok(Done::Installed)
}

/// `apt-get install -y PACKAGES`, after one `apt-get update` per setup run.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    static UPDATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !UPDATED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        apt(&["update"])?;
    }
    apt(&[&["install", "-y"][..], packages].concat())
}

/// wasm-pack builds the npm package and runs the browser tests (`wasm-pack test`).
fn wasm_pack() -> Result<Done, String> {
    if probe(command("wasm-pack").arg("--version")).is_some() {
        return Ok(Done::Skipped("wasm-pack --version answers"));
    }
    println!("setup: wasm-pack missing; cargo install takes ~4 min");
    proc::run(proc::cargo().args(["install", "wasm-pack", "--locked"]))?;
    Ok(Done::Installed)
}

/// geckodriver lets `wasm-pack test --firefox` drive Firefox.
fn geckodriver() -> Result<Done, String> {
    if probe(command("geckodriver").arg("--version")).is_some() {
        return Ok(Done::Skipped("geckodriver --version answers"));
    }
    println!("setup: geckodriver missing; cargo install takes ~2 min");
    proc::run(proc::cargo().args(["install", "geckodriver", "--locked"]))?;
    Ok(Done::Installed)
}

/// The JWT tests generate RSA and Ed25519 key pairs and sign EdDSA tokens with the OpenSSL CLI.
fn openssl() -> Result<Done, String> {
    if Path::new("/usr/bin/openssl").exists() {
        return Ok(Done::Skipped("/usr/bin/openssl present"));
    }
    apt_install(&["openssl"])?;
    Ok(Done::Installed)
}

/// PostgreSQL for the tests of `--state postgres://…` (xtask's services.rs runs it).
fn postgresql() -> Result<Done, String> {
    if crate::services::postgres_bin().is_some() {
        return Ok(Done::Skipped("initdb and pg_ctl present"));
    }
    apt_install(&["postgresql"])?;
    Ok(Done::Installed)
}

fn apt(args: &[&str]) -> Result<(), String> {
    let mut cmd = if proc::is_root() {
        command("apt-get")
    } else {
        let mut sudo = command("sudo");
        sudo.args(["-E", "apt-get"]);
        sudo
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    proc::run(&mut cmd)
}

/// The `wasm-bindgen` version in Cargo.lock, if any crate depends on it.
fn locked_wasm_bindgen_version() -> Option<String> {
    let lock = std::fs::read_to_string(proc::root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            let version = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}

fn wasm_bindgen() -> Result<Done, String> {
    let version = locked_wasm_bindgen_version().unwrap_or_else(|| WASM_BINDGEN_VERSION.to_string());
    let current = probe(command("wasm-bindgen").arg("--version")).unwrap_or_default();
    if current.split_whitespace().nth(1) == Some(version.as_str()) {
        return Ok(Done::Skipped("wasm-bindgen --version matches"));
    }
    println!("setup: wasm-bindgen-cli {version} missing (found {:?}); cargo install takes ~4 min", current.trim());
    // No --locked: a locked dependency of wasm-bindgen-cli is missing from the registry index.
    proc::run(proc::cargo().args(["install", "wasm-bindgen-cli", "--version", &version]))?;
    Ok(Done::Installed)
}

/// Garage, the S3-compatible store the S3 suites run against (no release binary can be
/// downloaded here). Only the features the tests use: LMDB metadata, bundled C libraries;
/// without SQLite, metrics and K2V it builds in about half the time.
fn garage() -> Result<Done, String> {
    if crate::garage::installed() {
        return Ok(Done::Skipped("garage --version answers"));
    }
    println!("setup: garage missing; `cargo install garage` takes several minutes once");
    proc::run(proc::cargo().args([
        "install",
        "garage",
        "--version",
        crate::garage::VERSION,
        "--locked",
        "--no-default-features",
        "--features",
        "lmdb,bundled-libs",
    ]))?;
    Ok(Done::Installed)
}

/// `npm ci` in `dir` (relative to the root) unless its stamp says `node_modules` matches the
/// lock file and the node version.
pub fn npm_ci(dir: &str) -> Result<Done, String> {
    let dir = proc::root().join(dir);
    let lock_path = dir.join("package-lock.json");
    let lock = std::fs::read(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let node = probe(command("node").arg("--version")).unwrap_or_default();
    let want = format!("{:016x} {}", fnv1a(&lock), node.trim());
    let stamp = dir.join(STAMP);
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == want) {
        return Ok(Done::Skipped("node_modules matches package-lock.json"));
    }
    // playwright-core never downloads browsers; the variable is belt and braces.
    proc::run(
        command("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
    )?;
    std::fs::write(&stamp, want).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(Done::Installed)
}

/// FNV-1a, 64-bit: a stable content hash for the stamp (std's hasher is not stable).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_known_values() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
