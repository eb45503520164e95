//! `cargo xtask bench [--long] [--runs N] [--only TEXT] [--peers]`: throughput, memory and HEAD latency of the
//! release server over loopback, beside a plain streaming baseline
//! (`crates/sluice-server/examples/baseline.rs`: an actix-web handler that writes a PUT body to a
//! file, no protocol) and, with `--peers`, beside rustus and `@tus/server` on the same scenarios
//! (`peers.rs`). Prints a table and rewrites the `## Figures` section of `docs/benchmarks.md`.
//! Reports; never asserts on timings.
//!
//! Each scenario gets a fresh server process and data dir, so `VmHWM` (peak RSS) is per
//! scenario, and its data is deleted afterwards (disk is limited). Peer scenarios run the three
//! servers in turn within each round (Sluice, rustus, @tus/server, Sluice, …), so machine noise
//! hits all of them alike.

mod cli;
mod join;

use crate::http::{self, Body, Conn};
use crate::peers::{self, Peer};
use crate::proc::{self, Server};
use crate::report::{
    self, Figure, Head, PeerHeads, PeerRow, Peers, BASE_1, BASE_4, CALM_1, CONCURRENT, CROWD, DISK_1, DISK_4, DISK_8,
    FLOOD_1, FORM_1, FORM_4, FSYNC_1, FSYNC_SPLIT_4, ONE_1, ONE_4, ONE_8, PEER_CONCURRENT, PEER_ONE_1, PEER_ONE_4,
    PEER_SPLIT_4, QUIET_1, S3_CONCURRENT, S3_ONE_1, S3_ONE_4, S3_PLAIN_1, S3_PLAIN_32, S3_PLAIN_4, SPLIT_4,
};
use crate::report::{
    CLI_1, CLI_4, CLI_4_NONE, COPY_4, CURL_BASE_4, CURL_PATCH_4, JOIN_4, S3_TUS_NODE_1, S3_TUS_NODE_32, S3_TUS_NODE_4,
};
use crate::services;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

const POLICY: &str = "\
# Written by `cargo xtask bench`.
max_file_size = \"16 GiB\"
max_chunk_size = \"16 GiB\"
allowed_types = []
checksum = \"optional\"
";

/// `--max-uploads-per-client` for the bench server (passed as its env var).
pub const MAX_UPLOADS_PER_CLIENT: u32 = 1024;

/// Flags of `cargo xtask bench`.
pub struct Options {
    /// `--long`: add the 8 GiB single-PATCH scenario.
    pub long: bool,
    /// `--runs N` (default 3): runs per throughput scenario; the median is reported. On a VM the
    /// first run after a pause is often slower (page-cache memory faulted in from the host).
    pub runs: u32,
    /// `--only TEXT`: only the scenarios whose name contains TEXT, or one of its `|`-separated
    /// parts (`HEAD` for the HEAD one); the figures are printed but `docs/benchmarks.md` is
    /// left alone.
    pub only: Option<String>,
    /// `--peers`: also run rustus and `@tus/server` beside Sluice (installed on first use).
    pub peers: bool,
}

impl Options {
    /// Parses `--long`, `--runs N`, `--only TEXT` and `--peers`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options { long: false, runs: 3, only: None, peers: false };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--long" => opts.long = true,
                "--runs" => {
                    opts.runs = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--runs needs a positive number")?;
                }
                "--only" => opts.only = Some(args.next().ok_or("--only needs a text")?.clone()),
                "--peers" => opts.peers = true,
                other => {
                    return Err(format!("unknown flag `{other}` (expected --long, --runs N, --only TEXT, --peers)"))
                }
            }
        }
        Ok(opts)
    }
}

/// The server a run starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `crates/sluice-server/examples/baseline.rs`.
    Baseline,
    /// A tus server: Sluice or a peer.
    Tus(Peer),
}

const SLUICE: Kind = Kind::Tus(Peer::Sluice);

/// A scenario of an interleaved group: its name, bytes per run, the server and the load.
type Interleaved<'a> = (&'static str, u64, Kind, &'a dyn Fn(&Bench, &str) -> Result<Duration, String>);

/// What one run of a throughput scenario measured.
struct Run {
    took: Duration,
    /// Server `VmRSS` right after start, KiB.
    start_rss_kib: Option<u64>,
    /// Server `VmHWM` after the run, KiB.
    peak_rss_kib: Option<u64>,
}

impl Run {
    /// Adds this run to `fig`: its time, and the memory figures (first start, largest peak).
    fn add_to(self, fig: &mut Figure) {
        fig.runs.push(self.took.as_secs_f64());
        fig.start_rss_kib = fig.start_rss_kib.or(self.start_rss_kib);
        fig.peak_rss_kib = fig.peak_rss_kib.max(self.peak_rss_kib);
    }
}

/// Binaries, scratch space and the body buffer shared by all scenarios.
struct Bench {
    sluice: PathBuf,
    baseline: PathBuf,
    work: PathBuf,
    policy: PathBuf,
    /// 1 MiB of pseudo-random bytes, filled once; every body is sent from it.
    buf: Vec<u8>,
    /// Runs per throughput scenario.
    repeat: u32,
    /// Servers started so far (names data dirs and logs).
    runs: u32,
    /// Extra `sluice serve` flags for the next scenarios (`--fsync`, `--no-request-metrics`).
    flags: Vec<&'static str>,
    /// Extra `sluice serve` environment for the next scenarios (the S3 store's).
    env: Vec<(String, String)>,
}

/// Set when `bench` re-runs itself from an optimised build of xtask.
const REEXEC_ENV: &str = "SLUICE_XTASK_BENCH_OPTIMISED";

/// Runs every scenario, prints the figures and updates `docs/benchmarks.md`.
pub fn run(opts: Options) -> Result<(), String> {
    if cfg!(debug_assertions) && std::env::var_os(REEXEC_ENV).is_none() {
        // `cargo xtask` is a debug build; the load generator must not be the bottleneck, so the
        // bench runs from a release build of xtask (a few seconds to compile).
        let mut cmd = proc::cargo();
        cmd.args(["run", "--quiet", "--release", "-p", "xtask", "--", "bench"]).env(REEXEC_ENV, "1");
        if opts.long {
            cmd.arg("--long");
        }
        cmd.args(["--runs", &opts.runs.to_string()]);
        if let Some(only) = &opts.only {
            cmd.args(["--only", only]);
        }
        if opts.peers {
            cmd.arg("--peers");
        }
        return proc::run(&mut cmd).map_err(|_| "the optimised bench run failed (see above)".to_string());
    }
    let root = proc::root();
    if opts.peers {
        peers::install()?;
    }
    proc::run(proc::cargo().args([
        "build",
        "--release",
        "-p",
        "sluice-server",
        "--bins",
        "--example",
        "baseline",
        "--example",
        "s3_put",
    ]))?;
    let work = root.join("target/bench");
    // Logs and data of an earlier (perhaps interrupted) run.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let policy = work.join("policy.toml");
    std::fs::write(&policy, POLICY).map_err(|e| format!("{}: {e}", policy.display()))?;
    let mut b = Bench {
        sluice: root.join("target/release/sluice"),
        baseline: root.join("target/release/examples/baseline"),
        work,
        policy,
        buf: http::random_bytes(MIB as usize, 0x5eed),
        repeat: opts.runs,
        runs: 0,
        flags: Vec::new(),
        env: Vec::new(),
    };

    let load_before = report::loadavg();
    let mut figures = Vec::new();
    let wanted = |name: &str| opts.only.as_ref().is_none_or(|only| only.split('|').any(|part| name.contains(part)));
    let run = |figures: &mut Vec<Figure>, b: &mut Bench, name: &'static str, f: &dyn Fn(&mut Bench) -> Figure| {
        if wanted(name) {
            let fig = f(b);
            println!("{}", fig.line());
            figures.push(fig);
        }
    };
    // The rows whose ratio to the baseline has a target run in turn, round after round, so
    // noise on the machine hits the baseline and Sluice alike.
    let run_interleaved = |figures: &mut Vec<Figure>, b: &mut Bench, rows: &[Interleaved<'_>]| {
        let rows: Vec<_> = rows.iter().filter(|row| wanted(row.0)).copied().collect();
        for fig in b.interleaved(&rows) {
            println!("{}", fig.line());
            figures.push(fig);
        }
    };
    run(&mut figures, &mut b, DISK_1, &|b| b.disk_scenario(DISK_1, GIB));
    run(&mut figures, &mut b, DISK_4, &|b| b.disk_scenario(DISK_4, 4 * GIB));
    if opts.long {
        run(&mut figures, &mut b, DISK_8, &|b| b.disk_scenario(DISK_8, 8 * GIB));
    }
    for len in [GIB, 4 * GIB] {
        let (base, one, form) = if len == GIB { (BASE_1, ONE_1, FORM_1) } else { (BASE_4, ONE_4, FORM_4) };
        let put = move |b: &Bench, addr: &str| b.put(addr, len);
        let patch = move |b: &Bench, addr: &str| b.upload(addr, len, len);
        let post = move |b: &Bench, addr: &str| b.form(addr, len);
        run_interleaved(
            &mut figures,
            &mut b,
            &[(base, len, Kind::Baseline, &put), (one, len, SLUICE, &patch), (form, len, SLUICE, &post)],
        );
    }
    if opts.long {
        run(&mut figures, &mut b, ONE_8, &|b| {
            b.scenario(ONE_8, 8 * GIB, SLUICE, |b, addr| b.upload(addr, 8 * GIB, 8 * GIB))
        });
    }
    run(&mut figures, &mut b, SPLIT_4, &|b| {
        b.scenario(SPLIT_4, 4 * GIB, SLUICE, |b, addr| b.upload(addr, 4 * GIB, 8 * MIB))
    });
    let with_flag = |b: &mut Bench, flag: &'static str, name: &'static str, len: u64, chunk: u64| {
        b.flags = vec![flag];
        let fig = b.scenario(name, len, SLUICE, |b, addr| b.upload(addr, len, chunk));
        b.flags.clear();
        fig
    };
    run(&mut figures, &mut b, FSYNC_1, &|b| with_flag(b, "--fsync", FSYNC_1, GIB, GIB));
    run(&mut figures, &mut b, FSYNC_SPLIT_4, &|b| with_flag(b, "--fsync", FSYNC_SPLIT_4, 4 * GIB, 8 * MIB));
    run(&mut figures, &mut b, QUIET_1, &|b| with_flag(b, "--no-request-metrics", QUIET_1, GIB, GIB));
    run(&mut figures, &mut b, CROWD, &|b| {
        // The crowd's 256 connections are open at once from one address, and each refused one
        // reconnects (default cap 128 per client).
        b.flags = vec!["--max-connections-per-client", "1024"];
        let fig = b.scenario(CROWD, 256 * 16 * MIB, SLUICE, |b, addr| b.crowd(addr, 256, 16 * MIB));
        b.flags.clear();
        fig
    });
    run(&mut figures, &mut b, CONCURRENT, &|b| {
        b.scenario(CONCURRENT, 32 * 64 * MIB, SLUICE, |b, addr| b.concurrent(addr, 32, 64 * MIB))
    });
    // `sluice upload` from a file on disk, beside curl sending the same file (bench/cli.rs).
    let input = |b: &Bench, len| b.input_file(len).unwrap_or_default();
    run(&mut figures, &mut b, CURL_BASE_4, &|b| {
        let file = input(b, 4 * GIB);
        b.scenario(CURL_BASE_4, 4 * GIB, Kind::Baseline, |b, addr| b.curl_put(addr, &file))
    });
    run(&mut figures, &mut b, CURL_PATCH_4, &|b| {
        let file = input(b, 4 * GIB);
        b.scenario(CURL_PATCH_4, 4 * GIB, SLUICE, |b, addr| b.curl_patch(addr, &file))
    });
    run(&mut figures, &mut b, CLI_1, &|b| b.cli_scenario(CLI_1, GIB, &[]));
    run(&mut figures, &mut b, CLI_4, &|b| b.cli_scenario(CLI_4, 4 * GIB, &[]));
    run(&mut figures, &mut b, CLI_4_NONE, &|b| b.cli_scenario(CLI_4_NONE, 4 * GIB, &["--checksum", "none"]));
    // tus concatenation: the server joins 4 finished parts, beside `cp` of as many bytes.
    run(&mut figures, &mut b, COPY_4, &|b| b.copy_scenario(COPY_4, 4 * GIB));
    run(&mut figures, &mut b, JOIN_4, &|b| b.scenario(JOIN_4, 4 * GIB, SLUICE, |b, addr| b.join(addr, 4 * GIB, 4)));
    // S3: Garage alone (plain multipart uploads) beside Sluice -> Garage.
    for (plain, through, len, count) in
        [(S3_PLAIN_1, S3_ONE_1, GIB, 1), (S3_PLAIN_4, S3_ONE_4, 4 * GIB, 1), (S3_PLAIN_32, S3_CONCURRENT, 64 * MIB, 32)]
    {
        run(&mut figures, &mut b, plain, &|b| b.s3_scenario(plain, None, len, count));
        run(&mut figures, &mut b, through, &|b| b.s3_scenario(through, Some(Peer::Sluice), len, count));
    }
    // The tus project's own server on the same Garage (`--peers`: it needs npm packages).
    if opts.peers {
        for (name, len, count) in [(S3_TUS_NODE_1, GIB, 1), (S3_TUS_NODE_4, 4 * GIB, 1), (S3_TUS_NODE_32, 64 * MIB, 32)]
        {
            run(&mut figures, &mut b, name, &|b| b.s3_scenario(name, Some(Peer::TusNode), len, count));
        }
    }
    if wanted(FLOOD_1) || wanted(CALM_1) {
        for fig in b.flood_scenario(GIB, FLOOD_CONNECTIONS) {
            println!("{}", fig.line());
            figures.push(fig);
        }
    }
    let head = if wanted("HEAD") {
        let head = b.head_scenario(8, Duration::from_secs(5));
        println!("{}", head.line());
        head
    } else {
        Head { error: Some("not run (--only)".into()), ..Head::default() }
    };
    // The same HEAD load without per-request metrics: what metrics cost.
    let quiet_head = if wanted("HEAD") {
        b.flags = vec!["--no-request-metrics"];
        let quiet = b.head_scenario(8, Duration::from_secs(5));
        b.flags.clear();
        println!("without request metrics: {}", quiet.line());
        Some(quiet)
    } else {
        None
    };
    let postgres_head = wanted("HEAD").then(|| postgres_head(&mut b));
    let peers = opts.peers.then(|| {
        let load_before = report::loadavg();
        println!("peers ({}), interleaved, {} rounds:", peers::versions(), b.repeat);
        let mut rows = Vec::new();
        let mut peer_run =
            |b: &mut Bench, name: &'static str, bytes: u64, f: &dyn Fn(&Bench, &str) -> Result<Duration, String>| {
                if wanted(name) {
                    rows.push(b.peer_scenario(name, bytes, f));
                }
            };
        peer_run(&mut b, PEER_ONE_1, GIB, &|b, addr| b.upload(addr, GIB, GIB));
        peer_run(&mut b, PEER_ONE_4, 4 * GIB, &|b, addr| b.upload(addr, 4 * GIB, 4 * GIB));
        peer_run(&mut b, PEER_SPLIT_4, 4 * GIB, &|b, addr| b.upload(addr, 4 * GIB, 8 * MIB));
        peer_run(&mut b, PEER_CONCURRENT, 32 * 64 * MIB, &|b, addr| b.concurrent(addr, 32, 64 * MIB));
        let heads = wanted("HEAD").then(|| b.peer_heads(8, 5));
        Peers { rows, heads, load: (load_before, report::loadavg()), versions: peers::versions() }
    });
    let load = (load_before, report::loadavg());
    let mut text = report::render(&figures, &head, quiet_head.as_ref(), peers.as_ref(), &opts, load);
    if let Some(pg) = &postgres_head {
        text.push_str(&postgres_head_rows(pg));
    }
    println!("\n{text}");
    if opts.only.is_some() {
        println!("--only: docs/benchmarks.md left as it is");
        return Ok(());
    }
    let doc = root.join("docs/benchmarks.md");
    report::update_doc(&doc, &text)?;
    println!("updated {}", doc.display());
    let failed: Vec<&str> = figures
        .iter()
        .filter(|f| f.error.is_some())
        .map(|f| f.name)
        .chain(head.error.is_some().then_some("HEAD"))
        .chain(postgres_head.as_ref().and_then(|h| h.error.as_ref()).map(|_| "HEAD, PostgreSQL state"))
        .chain(peers.iter().flat_map(|p| &p.rows).filter(|r| r.figures[0].error.is_some()).map(|r| r.name))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("scenarios failed (see table): {}", failed.join(", ")))
    }
}

/// The HEAD load again with records and locks in PostgreSQL (`--state`; a throwaway local
/// server, xtask's services.rs): every HEAD asks the lock table and reads the record.
fn postgres_head(b: &mut Bench) -> Head {
    let postgres = match services::Postgres::start() {
        Ok(postgres) => postgres,
        Err(e) => return Head { error: Some(e), ..Head::default() },
    };
    // `flags` holds static strings; one URL per bench run is leaked on purpose.
    let url: &'static str = Box::leak(postgres.url().into_boxed_str());
    b.flags = vec!["--state", url];
    let head = b.head_scenario(8, Duration::from_secs(5));
    b.flags.clear();
    println!("with PostgreSQL state: {}", head.line());
    head
}

/// The PostgreSQL HEAD figure and its targets, for docs/benchmarks.md.
fn postgres_head_rows(head: &Head) -> String {
    let Some(e) = &head.error else {
        let met = |ok: bool| if ok { "yes" } else { "**no**" };
        return format!(
            "\nHEAD with PostgreSQL state (`--state postgres://…`, a local PostgreSQL 15 on loopback, same load): \
             {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs ({} requests; peak RSS {:.1} MiB).\n\n\
             | target | measured | met |\n|---|---|---|\n\
             | HEAD, PostgreSQL state ≥ 10k req/s | {:.0} req/s | {} |\n\
             | HEAD, PostgreSQL state p99 ≤ 2 ms | {:.3} ms | {} |\n",
            head.rate(),
            head.p50_us,
            head.p99_us,
            head.requests,
            head.peak_rss_kib.unwrap_or(0) as f64 / 1024.0,
            head.rate(),
            met(head.rate() >= 10_000.0),
            head.p99_us / 1000.0,
            met(head.p99_us <= 2_000.0),
        );
    };
    format!("\nHEAD with PostgreSQL state: failed: {e}\n")
}

impl Bench {
    /// Starts a fresh server of `kind` on a fresh data dir.
    fn start(&mut self, kind: Kind) -> Result<(Server, PathBuf), String> {
        // Start each scenario with no dirty pages left by the previous one, so background
        // writeback of old data does not slow this one down.
        let _ = proc::probe(&mut Command::new("sync"));
        self.runs += 1;
        let data = self.work.join(format!("data-{}", self.runs));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let log = self.work.join(format!("server-{}.log", self.runs));
        let mut cmd = match kind {
            Kind::Baseline => {
                let mut cmd = Command::new(&self.baseline);
                cmd.arg("127.0.0.1:0").arg(&data);
                cmd
            }
            Kind::Tus(Peer::Sluice) => {
                let mut cmd = Command::new(&self.sluice);
                cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(&data)
                    .arg("--policy")
                    .arg(&self.policy);
                // Every bench client is 127.0.0.1: let the 32 concurrent uploads in (default 16).
                cmd.env("SLUICE_MAX_UPLOADS_PER_CLIENT", MAX_UPLOADS_PER_CLIENT.to_string());
                // ... and the 256-client crowd's creations, which come at once (default burst 200).
                cmd.env("SLUICE_CREATION_RATE", "1000");
                cmd.args(&self.flags);
                cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
                cmd
            }
            // With Garage's variables set (the S3 scenarios): @tus/s3-store into that Garage.
            Kind::Tus(Peer::TusNode) if !self.env.is_empty() => {
                let mut cmd = peers::tus_node_s3();
                cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
                cmd
            }
            Kind::Tus(Peer::TusNode) => peers::tus_node(&data),
            Kind::Tus(Peer::Rustus) => {
                let port = proc::free_port()?;
                let mut cmd = peers::rustus(&data, port);
                cmd.current_dir(&self.work);
                return Ok((Server::start_at(cmd, &log, &format!("127.0.0.1:{port}"))?, data));
            }
        };
        cmd.current_dir(&self.work);
        Ok((Server::start(cmd, &log)?, data))
    }

    /// One run on a fresh server of `kind`: the time `f` measured and the server's memory.
    fn run_once(&mut self, kind: Kind, f: &dyn Fn(&Bench, &str) -> Result<Duration, String>) -> Result<Run, String> {
        let (mut server, data) = self.start(kind)?;
        let start_rss_kib = server.rss_kib();
        let result = f(self, &server.addr);
        let peak_rss_kib = server.peak_rss_kib();
        let result = result.map_err(|e| match server.exit_status() {
            // The server died under the load (e.g. out of memory): say so, with its last words.
            Some(status) => format!("{e}; the server exited ({status}): {}", server.log_tail(3)),
            None => e,
        });
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
        Ok(Run { took: result?, start_rss_kib, peak_rss_kib })
    }

    /// Runs one throughput scenario `repeat` times, each on a fresh server: `bytes` moved by
    /// `f`, timed by `f` itself. Peak RSS is the largest of the runs.
    fn scenario(
        &mut self,
        name: &'static str,
        bytes: u64,
        kind: Kind,
        f: impl Fn(&Bench, &str) -> Result<Duration, String>,
    ) -> Figure {
        let mut fig = Figure::new(name, bytes);
        for _ in 0..self.repeat {
            match self.run_once(kind, &f) {
                Ok(run) => run.add_to(&mut fig),
                Err(e) => {
                    fig.error = Some(e);
                    break;
                }
            }
        }
        fig
    }

    /// Several scenarios run in turn, `repeat` rounds, each run on a fresh server, so noise
    /// on the machine hits them alike. A scenario that fails is left out of later rounds.
    fn interleaved(&mut self, rows: &[Interleaved<'_>]) -> Vec<Figure> {
        let mut figures: Vec<Figure> = rows.iter().map(|&(name, bytes, ..)| Figure::new(name, bytes)).collect();
        for _ in 0..self.repeat {
            for (&(_, _, kind, f), fig) in rows.iter().zip(&mut figures) {
                if fig.error.is_some() {
                    continue;
                }
                match self.run_once(kind, f) {
                    Ok(run) => run.add_to(fig),
                    Err(e) => fig.error = Some(e),
                }
            }
        }
        figures
    }

    /// One scenario on every tus server: `repeat` rounds, each starting Sluice, rustus and
    /// `@tus/server` in turn on fresh processes, so noise on the machine hits all three alike.
    /// A server that fails is left out of later rounds; the others go on.
    fn peer_scenario(
        &mut self,
        name: &'static str,
        bytes: u64,
        f: &dyn Fn(&Bench, &str) -> Result<Duration, String>,
    ) -> PeerRow {
        let mut row = PeerRow { name, figures: Peer::ALL.map(|_| Figure::new(name, bytes)).into() };
        for round in 1..=self.repeat {
            for (peer, fig) in Peer::ALL.into_iter().zip(&mut row.figures) {
                if fig.error.is_some() {
                    continue;
                }
                match self.run_once(Kind::Tus(peer), f) {
                    Ok(run) => {
                        println!(
                            "  {name}, {}, round {round}: {:.0} MB/s, peak RSS {} (load {})",
                            peer.label(),
                            bytes as f64 / 1e6 / run.took.as_secs_f64(),
                            report::mib(run.peak_rss_kib),
                            report::loadavg()
                        );
                        run.add_to(fig);
                    }
                    Err(e) => {
                        println!("  {name}, {}, round {round}: FAILED: {e}", peer.label());
                        fig.error = Some(e);
                    }
                }
            }
        }
        for (peer, fig) in Peer::ALL.into_iter().zip(&row.figures) {
            println!("{:<12} {}", peer.label(), fig.line());
        }
        row
    }

    /// `count` uploads of `len` bytes at once into a fresh Garage per run: plain S3 multipart
    /// uploads (`examples/s3_put.rs`), or through a tus server (Sluice with `--storage s3://…`,
    /// or `@tus/server` with `@tus/s3-store`), one PATCH each. Peak RSS is the tus server's
    /// (Garage's own for the plain runs).
    fn s3_scenario(&mut self, name: &'static str, through: Option<Peer>, len: u64, count: usize) -> Figure {
        let mut fig = Figure::new(name, len * count as u64);
        for _ in 0..self.repeat {
            let garage = match crate::garage::Garage::start() {
                Ok(garage) => garage,
                Err(e) => {
                    fig.error = Some(e);
                    return fig;
                }
            };
            let result = if let Some(peer) = through {
                self.env = garage.env().to_vec();
                self.env.push(("SLUICE_STORAGE".into(), format!("s3://{}/bench", crate::garage::BUCKET)));
                let started = self.start(Kind::Tus(peer));
                self.env.clear();
                started.and_then(|(server, data)| {
                    fig.start_rss_kib = fig.start_rss_kib.or(server.rss_kib());
                    let took = if count == 1 {
                        self.upload(&server.addr, len, len)
                    } else {
                        self.concurrent(&server.addr, count, len)
                    };
                    fig.peak_rss_kib = fig.peak_rss_kib.max(server.peak_rss_kib());
                    drop(server);
                    let _ = std::fs::remove_dir_all(&data);
                    took
                })
            } else {
                let mut cmd = Command::new(proc::root().join("target/release/examples/s3_put"));
                cmd.arg(len.to_string()).arg(count.to_string()).envs(garage.env().iter().map(|(k, v)| (k, v)));
                let out = proc::probe(&mut cmd);
                fig.peak_rss_kib = fig.peak_rss_kib.max(garage.peak_rss_kib());
                out.and_then(|text| text.trim().parse::<f64>().ok())
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| "examples/s3_put failed".to_string())
            };
            drop(garage);
            match result {
                Ok(took) => fig.runs.push(took.as_secs_f64()),
                Err(e) => {
                    fig.error = Some(e);
                    return fig;
                }
            }
        }
        fig
    }

    /// A legitimate upload of `len` bytes in one PATCH from 127.0.0.1, on one fresh server per run,
    /// with no flood and during a flood of `conns` slow-header connections from 127.0.0.2
    /// (`xtask/src/flood.py`), alternating which goes first. Returns (no flood, flood).
    fn flood_scenario(&mut self, len: u64, conns: usize) -> [Figure; 2] {
        let (mut calm, mut flooded) = (Figure::new(CALM_1, len), Figure::new(FLOOD_1, len));
        for run in 0..self.repeat {
            let (server, data) = match self.start(SLUICE) {
                Ok(s) => s,
                Err(e) => {
                    (calm.error, flooded.error) = (Some(e.clone()), Some(e));
                    break;
                }
            };
            let mut flood = None;
            for with_flood in if run % 2 == 0 { [false, true] } else { [true, false] } {
                flood = None;
                if with_flood {
                    match Flood::start(&server.addr, conns, &self.work) {
                        Ok(f) => flood = Some(f),
                        Err(e) => flooded.error = Some(e),
                    }
                }
                let fig = if with_flood { &mut flooded } else { &mut calm };
                if fig.error.is_some() {
                    continue;
                }
                fig.start_rss_kib = fig.start_rss_kib.or(server.rss_kib());
                match self.upload(&server.addr, len, len) {
                    Ok(took) => fig.runs.push(took.as_secs_f64()),
                    Err(e) => fig.error = Some(e),
                }
                // Peak RSS is the process's: the flooded figure's covers both uploads.
                if with_flood || run % 2 == 0 {
                    fig.peak_rss_kib = fig.peak_rss_kib.max(server.peak_rss_kib());
                }
            }
            drop(flood);
            drop(server);
            let _ = std::fs::remove_dir_all(&data);
        }
        [calm, flooded]
    }

    /// The disk alone: `len` bytes written to a file from the buffer in this process, no HTTP
    /// and no fsync (like the servers). The ceiling for the HTTP figures: past the page cache's
    /// dirty limits, writes go at the speed of writeback.
    fn disk_scenario(&mut self, name: &'static str, len: u64) -> Figure {
        let mut fig = Figure::new(name, len);
        for _ in 0..self.repeat {
            let _ = proc::probe(&mut Command::new("sync"));
            self.runs += 1;
            let path = self.work.join(format!("disk-{}.bin", self.runs));
            let t = Instant::now();
            let written = std::fs::File::create(&path).and_then(|mut f| {
                let mut left = len;
                while left > 0 {
                    let n = left.min(self.buf.len() as u64);
                    f.write_all(&self.buf[..n as usize])?;
                    left -= n;
                }
                Ok(())
            });
            let took = t.elapsed();
            let _ = std::fs::remove_file(&path);
            match written {
                Ok(()) => fig.runs.push(took.as_secs_f64()),
                Err(e) => {
                    fig.error = Some(format!("{}: {e}", path.display()));
                    return fig;
                }
            }
        }
        fig
    }

    /// Baseline: one `PUT /bench.bin` of `len` bytes.
    fn put(&self, addr: &str, len: u64) -> Result<Duration, String> {
        let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let t = Instant::now();
        let resp = conn
            .request("PUT", "/bench.bin", &[], Body::Repeat { buf: &self.buf, start: 0, len })
            .map_err(|e| format!("PUT: {e}"))?;
        let took = t.elapsed();
        if !(200..300).contains(&resp.status) {
            return Err(format!("PUT /bench.bin -> {}", resp.summary()));
        }
        Ok(took)
    }

    /// Sluice: create an upload of `len` bytes, then send it in PATCHes of `chunk` bytes on one
    /// keep-alive connection.
    fn upload(&self, addr: &str, len: u64, chunk: u64) -> Result<Duration, String> {
        let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let t = Instant::now();
        let path = create(&mut conn, len)?;
        let mut offset = 0;
        while offset < len {
            let n = chunk.min(len - offset);
            patch(&mut conn, &path, offset, n, &self.buf)?;
            offset += n;
        }
        Ok(t.elapsed())
    }

    /// Sluice: one `multipart/form-data` POST to `/upload` carrying one file of `len` bytes.
    fn form(&self, addr: &str, len: u64) -> Result<Duration, String> {
        const BOUNDARY: &str = "sluiceBenchBoundary9f3a1c";
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{BOUNDARY}--\r\n");
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let t = Instant::now();
        let body = Body::Framed { head: head.as_bytes(), buf: &self.buf, len, tail: tail.as_bytes() };
        let resp = conn
            .request("POST", "/upload", &[("Content-Type", content_type.as_str())], body)
            .map_err(|e| format!("POST /upload: {e}"))?;
        let took = t.elapsed();
        if resp.status != 201 {
            return Err(format!("POST /upload -> {}", resp.summary()));
        }
        Ok(took)
    }

    /// Sluice: `n` threads, each creating and sending one upload of `len` bytes in one PATCH.
    fn concurrent(&self, addr: &str, n: usize, len: u64) -> Result<Duration, String> {
        at_once(n, || {
            let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
            let path = create(&mut conn, len)?;
            patch(&mut conn, &path, 0, len, &self.buf)
        })
    }

    /// Sluice under a crowd: `n` clients at once, each sending one upload of `len` bytes in
    /// 1 MiB PATCHes with the default memory budget. Past the budget the server answers 503
    /// (or 429) before reading; like a real client, each then waits, asks HEAD for the offset
    /// and goes on.
    fn crowd(&self, addr: &str, n: usize, len: u64) -> Result<Duration, String> {
        at_once(n, || {
            let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
            let path = create(&mut conn, len)?;
            let mut offset = 0;
            let mut refusals = 0;
            while offset < len {
                let n = MIB.min(len - offset);
                match patch(&mut conn, &path, offset, n, &self.buf) {
                    Ok(()) => offset += n,
                    Err(e) => {
                        refusals += 1;
                        if refusals > 1000 {
                            return Err(format!("gave up after {refusals} refusals: {e}"));
                        }
                        std::thread::sleep(Duration::from_millis(250));
                        conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
                        offset = head_offset(&mut conn, &path)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// HEAD on one upload from `conns` keep-alive connections for `span`.
    fn head_scenario(&mut self, conns: usize, span: Duration) -> Head {
        let mut head = Head { conns, secs: span.as_secs_f64(), ..Head::default() };
        let (server, data) = match self.start(SLUICE) {
            Ok(s) => s,
            Err(e) => {
                head.error = Some(e);
                return head;
            }
        };
        let result = self.heads(&server.addr, conns, span);
        head.peak_rss_kib = server.peak_rss_kib();
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
        match result {
            Ok((mut lat, secs)) => {
                lat.sort_unstable_by(f64::total_cmp);
                head.requests = lat.len() as u64;
                head.secs = secs;
                head.p50_us = percentile(&lat, 50.0);
                head.p99_us = percentile(&lat, 99.0);
            }
            Err(e) => head.error = Some(e),
        }
        head
    }

    /// An upload of 1 MiB with 512 KiB received, for HEAD loads; its path.
    fn head_target(&self, addr: &str) -> Result<String, String> {
        let mut conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let path = create(&mut conn, MIB)?;
        patch(&mut conn, &path, 0, 512 * KIB, &self.buf)?;
        Ok(path)
    }

    /// HEAD on every tus server with oha, `conns` connections for `secs` seconds: `repeat`
    /// rounds of Sluice, rustus, `@tus/server` in turn, each on a fresh process.
    fn peer_heads(&mut self, conns: usize, secs: u64) -> PeerHeads {
        let mut runs: Vec<Vec<Head>> = Peer::ALL.iter().map(|_| Vec::new()).collect();
        for round in 1..=self.repeat {
            for (peer, runs) in Peer::ALL.into_iter().zip(&mut runs) {
                let head = self.oha_head(Kind::Tus(peer), conns, secs);
                println!("  {}, round {round}: {} (load {})", peer.label(), head.line(), report::loadavg());
                runs.push(head);
            }
        }
        PeerHeads { tool: format!("oha {}", peers::OHA_VERSION), conns, secs, runs }
    }

    /// One oha HEAD run against a fresh server of `kind`.
    fn oha_head(&mut self, kind: Kind, conns: usize, secs: u64) -> Head {
        let mut head = Head { conns, secs: secs as f64, ..Head::default() };
        let (server, data) = match self.start(kind) {
            Ok(s) => s,
            Err(e) => {
                head.error = Some(e);
                return head;
            }
        };
        let result = self
            .head_target(&server.addr)
            .and_then(|path| peers::oha_head(&format!("http://{}{path}", server.addr), conns, secs));
        head.peak_rss_kib = server.peak_rss_kib();
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
        match result {
            Ok(r) => {
                head.requests = (r.rate * r.secs).round() as u64;
                head.secs = r.secs;
                head.p50_us = r.p50_us;
                head.p99_us = r.p99_us;
            }
            Err(e) => head.error = Some(e),
        }
        head
    }

    /// Returns every latency in µs and the wall time.
    fn heads(&self, addr: &str, conns: usize, span: Duration) -> Result<(Vec<f64>, f64), String> {
        let path = self.head_target(addr)?;
        let path = path.as_str();
        let barrier = Barrier::new(conns);
        let t = Instant::now();
        let per_thread: Vec<Result<Vec<f64>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..conns)
                .map(|_| {
                    s.spawn(|| {
                        let conn = Conn::connect(addr).map_err(|e| format!("connect {addr}: {e}"));
                        barrier.wait();
                        let mut conn = conn?;
                        let mut lat = Vec::with_capacity(1 << 20);
                        let deadline = Instant::now() + span;
                        while Instant::now() < deadline {
                            let t = Instant::now();
                            let resp = conn
                                .request("HEAD", path, &[("Tus-Resumable", "1.0.0")], Body::Empty)
                                .map_err(|e| format!("HEAD {path}: {e}"))?;
                            lat.push(t.elapsed().as_secs_f64() * 1e6);
                            if resp.status != 200 || resp.header("upload-offset") != Some("524288") {
                                return Err(format!("HEAD {path} -> {} {:?}", resp.status, resp.headers));
                            }
                        }
                        Ok(lat)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect()
        });
        let secs = t.elapsed().as_secs_f64();
        let mut all = Vec::new();
        for r in per_thread {
            all.extend(r?);
        }
        Ok((all, secs))
    }
}

/// Slow-header connections in the flood scenario.
const FLOOD_CONNECTIONS: usize = 2000;

/// The flood script (`xtask/src/flood.py`) running against a server; killed on drop.
struct Flood(std::process::Child);

impl Flood {
    /// Starts `conns` slow-header connections from 127.0.0.2 and waits until all were tried,
    /// then a second for the server to settle.
    fn start(addr: &str, conns: usize, work: &std::path::Path) -> Result<Flood, String> {
        use std::io::BufRead;
        let script = proc::root().join("xtask/src/flood.py");
        let log = std::fs::File::create(work.join("flood.log")).map_err(|e| format!("flood.log: {e}"))?;
        let mut child = Command::new("python3")
            .arg(&script)
            .args([addr, &conns.to_string(), "127.0.0.2"])
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start python3 {}: {e}", script.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut line = String::new();
        let flood = Flood(child);
        std::io::BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("flood: {e}"))?;
        if line.trim() != "ready" {
            return Err(format!("the flood did not start (see {})", work.join("flood.log").display()));
        }
        std::thread::sleep(Duration::from_secs(1));
        Ok(flood)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `POST /files/` with `Upload-Length`; returns the upload's path from `Location`.
fn create(conn: &mut Conn, len: u64) -> Result<String, String> {
    create_with(conn, len, &[])
}

/// [`create`] with more request headers (e.g. `Upload-Concat: partial`).
fn create_with(conn: &mut Conn, len: u64, extra: &[(&str, &str)]) -> Result<String, String> {
    let len_text = len.to_string();
    let mut headers = vec![("Tus-Resumable", "1.0.0"), ("Upload-Length", len_text.as_str())];
    headers.extend_from_slice(extra);
    let resp = conn.request("POST", "/files/", &headers, Body::Empty).map_err(|e| format!("POST /files/: {e}"))?;
    if resp.status != 201 {
        return Err(format!("POST /files/ (Upload-Length: {len}) -> {}", resp.summary()));
    }
    let location = resp.header("location").ok_or("201 without Location")?;
    Ok(path_of(location).to_string())
}

/// One PATCH of `len` bytes at `offset`; checks the 204 and the new offset.
fn patch(conn: &mut Conn, path: &str, offset: u64, len: u64, buf: &[u8]) -> Result<(), String> {
    let offset_text = offset.to_string();
    let headers = [
        ("Tus-Resumable", "1.0.0"),
        ("Content-Type", "application/offset+octet-stream"),
        ("Upload-Offset", offset_text.as_str()),
    ];
    let resp = conn
        .request("PATCH", path, &headers, Body::Repeat { buf, start: offset, len })
        .map_err(|e| format!("PATCH {path} at {offset}: {e}"))?;
    let want = (offset + len).to_string();
    if resp.status != 204 || resp.header("upload-offset") != Some(want.as_str()) {
        return Err(format!(
            "PATCH {path} (Upload-Offset: {offset}, {len} bytes) -> {}, Upload-Offset {:?} (want {want})",
            resp.summary(),
            resp.header("upload-offset")
        ));
    }
    Ok(())
}

/// Runs `client` on `n` threads released at the same moment; the time until all are done.
fn at_once(n: usize, client: impl Fn() -> Result<(), String> + Sync) -> Result<Duration, String> {
    let barrier = Barrier::new(n + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    client()
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        let results: Vec<Result<(), String>> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect();
        let took = t.elapsed();
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        match errors.first() {
            None => Ok(took),
            Some(e) => Err(format!("{} of {n} uploads failed, first: {e}", errors.len())),
        }
    })
}

/// The upload's offset, from `HEAD`.
fn head_offset(conn: &mut Conn, path: &str) -> Result<u64, String> {
    let resp = conn
        .request("HEAD", path, &[("Tus-Resumable", "1.0.0")], Body::Empty)
        .map_err(|e| format!("HEAD {path}: {e}"))?;
    resp.header("upload-offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("HEAD {path} -> {} without Upload-Offset", resp.summary()))
}

/// The path of a `Location` that may be absolute (`http://host/files/x`) or a path.
fn path_of(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

/// Nearest-rank percentile of sorted values; 0 when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_paths() {
        assert_eq!(path_of("http://127.0.0.1:1/files/ab"), "/files/ab");
        assert_eq!(path_of("/files/ab"), "/files/ab");
        assert_eq!(path_of("http://h"), "/");
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
        assert_eq!(percentile(&[3.0], 1.0), 3.0);
    }
}
