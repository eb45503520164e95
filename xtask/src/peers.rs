//! The peers of `cargo xtask bench --peers`: rustus (a tus server in Rust on actix-web) and
//! `@tus/server` with `@tus/file-store` (the tus project's own Node server), plus `oha` for the
//! HEAD load. Installed on first use of `--peers` only (CI does not run the bench, so `setup`
//! leaves them out), cached, and started here.

use crate::proc::{self, command, probe};
use crate::setup::{self, Done};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The rustus release installed from crates.io (the newest published there).
pub const RUSTUS_VERSION: &str = "0.5.10";
/// The oha release installed from crates.io.
pub const OHA_VERSION: &str = "1.16.0";
/// The folder with the Node peer's `package.json` and start script.
const NODE_DIR: &str = "xtask/peers";

/// The largest PATCH the scenarios send (4 GiB in one request): rustus reads a PATCH body whole
/// into memory and refuses bodies over `--max-body-size` (default 256 KiB), so it is raised to this.
pub const RUSTUS_MAX_BODY: u64 = 4 << 30;
/// rustus's address-space cap (`prlimit --as`): a 4 GiB body held in memory fits, and a runaway
/// cannot take the machine's 24 GiB down.
pub const RUSTUS_ADDRESS_SPACE: u64 = 10 << 30;

/// A tus server compared in the peers table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Peer {
    /// This project's server.
    Sluice,
    /// rustus, from crates.io.
    Rustus,
    /// `@tus/server` with `@tus/file-store`, from npm.
    TusNode,
}

impl Peer {
    /// Every server, in the order each round of a scenario runs them.
    pub const ALL: [Peer; 3] = [Peer::Sluice, Peer::Rustus, Peer::TusNode];

    /// The name in tables and console lines.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Sluice => "Sluice",
            Peer::Rustus => "rustus",
            Peer::TusNode => "@tus/server",
        }
    }
}

/// Installs what `--peers` needs (rustus, oha, the Node peer's packages), each step skipped when
/// present; compiles niced so other work on the machine keeps its share. Prints the time taken.
pub fn install() -> Result<(), String> {
    let t = Instant::now();
    setup::step(&format!("rustus {RUSTUS_VERSION} (cargo install: minutes, niced)"), || {
        cargo_install("rustus", RUSTUS_VERSION, &format!("Rustus {RUSTUS_VERSION}"))
    })?;
    setup::step(&format!("oha {OHA_VERSION} (cargo install: minutes, niced)"), || {
        cargo_install("oha", OHA_VERSION, &format!("oha {OHA_VERSION}"))
    })?;
    setup::step(&format!("npm ci in {NODE_DIR}/"), || setup::npm_ci(NODE_DIR))?;
    println!("bench --peers: peers ready after {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo install NAME --version VERSION --locked` at low priority unless `NAME --version`
/// prints `want`; retries without `--locked` (and says so) when the locked build fails, as it
/// does on registries missing a locked version.
fn cargo_install(name: &str, version: &str, want: &str) -> Result<Done, String> {
    if probe(command(name).arg("--version")).is_some_and(|v| v.trim() == want) {
        return Ok(Done::Skipped("`--version` matches"));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let install = |locked: bool| {
        let mut cmd = command("nice");
        cmd.args(["-n", "10"]).arg(&cargo).args(["install", name, "--version", version]);
        if locked {
            cmd.arg("--locked");
        }
        proc::run(&mut cmd)
    };
    let t = Instant::now();
    if let Err(e) = install(true) {
        println!("bench --peers: {e}; retrying without --locked (a locked dependency may be missing here)");
        install(false)?;
    }
    println!("bench --peers: {name} {version} built in {:.0} s", t.elapsed().as_secs_f64());
    match probe(command(name).arg("--version")) {
        Some(v) if v.trim() == want => Ok(Done::Installed),
        other => Err(format!("installed, but `{name} --version` says {other:?} (is cargo's bin folder on PATH?)")),
    }
}

/// rustus on `port` of 127.0.0.1, storing data and records in `data`, as its README runs it
/// (file storage, default extensions and workers) with the body limit raised to the largest
/// PATCH and its address space capped. It cannot announce an ephemeral port, hence `port`.
pub fn rustus(data: &Path, port: u16) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={RUSTUS_ADDRESS_SPACE}"))
        .arg("rustus")
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--max-body-size", &RUSTUS_MAX_BODY.to_string()])
        .arg("--data-dir")
        .arg(data)
        .arg("--info-dir")
        .arg(data);
    cmd
}

/// `@tus/server` with `@tus/file-store` in `data` (`xtask/peers/tus-node-server.mjs`), which
/// prints `listening on http://127.0.0.1:PORT`.
pub fn tus_node(data: &Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(proc::root().join(NODE_DIR).join("tus-node-server.mjs")).arg(data);
    cmd
}

/// `@tus/server` with `@tus/s3-store` (`xtask/peers/tus-node-s3-server.mjs`), storing into
/// the Garage its environment names; prints `listening on http://127.0.0.1:PORT`.
pub fn tus_node_s3() -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(proc::root().join(NODE_DIR).join("tus-node-s3-server.mjs"));
    cmd
}

/// The versions in the peers table's caption.
pub fn versions() -> String {
    let npm = |name: &str| {
        let manifest = proc::root().join(NODE_DIR).join("node_modules").join(name).join("package.json");
        std::fs::read_to_string(manifest)
            .ok()
            .and_then(|text| json_string(&text, "version"))
            .unwrap_or_else(|| "?".to_string())
    };
    let node = probe(command("node").arg("--version")).unwrap_or_default();
    format!(
        "rustus {RUSTUS_VERSION}, @tus/server {} with @tus/file-store {} on Node {}",
        npm("@tus/server"),
        npm("@tus/file-store"),
        node.trim().trim_start_matches('v')
    )
}

/// What oha measured.
#[derive(Debug)]
pub struct OhaResult {
    /// Requests per second over the run.
    pub rate: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Wall time, s.
    pub secs: f64,
}

/// `oha` sending HEAD with `Tus-Resumable: 1.0.0` to `url` from `conns` keep-alive connections
/// for `secs` seconds, waiting for requests in flight at the deadline. An error unless every
/// answer was 200.
pub fn oha_head(url: &str, conns: usize, secs: u64) -> Result<OhaResult, String> {
    let (conns, span) = (conns.to_string(), format!("{secs}s"));
    let mut cmd = command("oha");
    cmd.args(["--no-tui", "--output-format", "json", "-w", "-m", "HEAD", "-H", "Tus-Resumable: 1.0.0"])
        .args(["-c", &conns, "-z", &span, url]);
    let line = proc::describe(&cmd);
    let out = cmd.output().map_err(|e| format!("cannot start `{line}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{line}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    parse_oha(&String::from_utf8_lossy(&out.stdout))
}

/// Reads oha's JSON summary (std only; fields come in a fixed order, pretty-printed).
fn parse_oha(json: &str) -> Result<OhaResult, String> {
    // No key or number read here contains whitespace: drop it, so layout does not matter.
    let json: String = json.chars().filter(|c| !c.is_whitespace()).collect();
    let json = json.as_str();
    let number = |key: &str, within: Option<&str>| {
        let from = within.and_then(|w| json.find(&format!("\"{w}\""))).unwrap_or(0);
        json_number(&json[from..], key).ok_or_else(|| format!("oha output without {key}: {json:.300}"))
    };
    let statuses = json
        .find("\"statusCodeDistribution\":{")
        .map(|i| &json[i + "\"statusCodeDistribution\":{".len()..])
        .and_then(|rest| rest.split('}').next())
        .ok_or_else(|| format!("oha output without statusCodeDistribution: {json:.300}"))?;
    if !statuses.split(',').all(|s| s.starts_with("\"200\":")) || statuses.is_empty() {
        return Err(format!("HEAD answers other than 200: {{{statuses}}}"));
    }
    Ok(OhaResult {
        rate: number("requestsPerSec", Some("summary"))?,
        // `metrics.latency_ms` holds the percentiles in milliseconds.
        p50_us: number("p50", Some("latency_ms"))? * 1000.0,
        p99_us: number("p99", Some("latency_ms"))? * 1000.0,
        secs: number("total", Some("summary"))?,
    })
}

/// The number after the first `"key":` in `json`.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let rest = json[json.find(&pat)? + pat.len()..].trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c))).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string after the first `"key":` in `json` (no escapes expected).
fn json_string(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let rest = json[json.find(&pat)? + pat.len()..].trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OHA: &str = r#"{"summary":{"successRate":1.0,"total":5.001,"slowest":0.01,"fastest":0.0001,"average":0.0005,"requestsPerSec":14812.5,"totalData":0,"sizePerRequest":0,"sizePerSec":0.0},"metrics":{"success_rate":1.0,"requests_per_sec":14812.5,"latency_ms":{"min":0.1,"mean":0.5,"p50":0.42,"p95":0.9,"p99":1.75,"max":10.0}},"responseTimeHistogram":{"0.0001":3},"latencyPercentiles":{"p10":0.0002,"p50":0.00042,"p99":0.00175},"rps":{"mean":1.0,"stddev":0.0,"max":1.0,"min":1.0,"percentiles":{"p50":1.0}},"statusCodeDistribution":{"200":74070},"errorDistribution":{}}"#;

    #[test]
    fn reads_oha_json() {
        let r = parse_oha(OHA).unwrap();
        assert_eq!((r.rate, r.secs), (14812.5, 5.001));
        assert!((r.p50_us - 420.0).abs() < 1e-6 && (r.p99_us - 1750.0).abs() < 1e-6);
    }

    /// oha 1.16 pretty-prints, as here (abridged from a real run).
    #[test]
    fn reads_oha_pretty_json() {
        let pretty = "{\n  \"summary\": {\n    \"successRate\": 1.0,\n    \"total\": 1.015568845,\n    \
            \"requestsPerSec\": 187.08726733341254,\n    \"totalData\": 0\n  },\n  \"metrics\": {\n    \
            \"latency_ms\": {\n      \"min\": 1.433,\n      \"p50\": 1.034,\n      \"p99\": 17.157\n    }\n  },\n  \
            \"latencyPercentiles\": {\n    \"p50\": 0.001033539\n  },\n  \"statusCodeDistribution\": {\n    \
            \"200\": 190\n  },\n  \"errorDistribution\": {}\n}\n";
        let r = parse_oha(pretty).unwrap();
        assert_eq!((r.rate, r.secs), (187.08726733341254, 1.015568845));
        assert!((r.p50_us - 1034.0).abs() < 1e-6 && (r.p99_us - 17157.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_oha_runs_with_other_statuses() {
        let bad = OHA.replace(r#"{"200":74070}"#, r#"{"200":7,"404":3}"#);
        assert!(parse_oha(&bad).unwrap_err().contains("404"));
        let none = OHA.replace(r#"{"200":74070}"#, "{}");
        assert!(parse_oha(&none).is_err());
        assert!(parse_oha("{}").is_err());
    }

    #[test]
    fn json_scalars() {
        assert_eq!(json_number(r#"{"a": -1.5e3,"b":2}"#, "a"), Some(-1500.0));
        assert_eq!(json_number(r#"{"a":"x"}"#, "a"), None);
        assert_eq!(json_string(r#"{"name":"x","version": "2.4.5"}"#, "version").as_deref(), Some("2.4.5"));
    }
}
