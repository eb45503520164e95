//! The benchmark report: one figure per scenario, the targets beside them, and the
//! `## Figures` section of `docs/benchmarks.md` (the rest of that file is left as it is).

use crate::bench::{Options, MAX_UPLOADS_PER_CLIENT};
use crate::peers::{Peer, RUSTUS_ADDRESS_SPACE, RUSTUS_MAX_BODY};
use std::path::Path;

/// Scenario names; the targets look figures up by them.
pub const DISK_1: &str = "disk only, write 1 GiB";
/// The disk alone, 4 GiB.
pub const DISK_4: &str = "disk only, write 4 GiB";
/// The disk alone, 8 GiB (`--long`).
pub const DISK_8: &str = "disk only, write 8 GiB";
/// Baseline, 1 GiB.
pub const BASE_1: &str = "baseline PUT 1 GiB";
/// Baseline, 4 GiB.
pub const BASE_4: &str = "baseline PUT 4 GiB";
/// Sluice, 1 GiB in one PATCH.
pub const ONE_1: &str = "sluice 1 GiB, one PATCH";
/// Sluice, 4 GiB in one PATCH.
pub const ONE_4: &str = "sluice 4 GiB, one PATCH";
/// Sluice, 8 GiB in one PATCH (`--long`).
pub const ONE_8: &str = "sluice 8 GiB, one PATCH";
/// Sluice, 4 GiB in 8 MiB PATCHes.
pub const SPLIT_4: &str = "sluice 4 GiB, 8 MiB PATCHes";
/// Sluice, 32 concurrent uploads of 64 MiB.
pub const CONCURRENT: &str = "sluice 32 x 64 MiB concurrent";
/// A 1 GiB upload in one PATCH with `--fsync` (fdatasync before acknowledging).
pub const FSYNC_1: &str = "sluice 1 GiB, one PATCH, --fsync";
/// A 4 GiB upload in 8 MiB PATCHes with `--fsync`: one fdatasync per PATCH.
pub const FSYNC_SPLIT_4: &str = "sluice 4 GiB, 8 MiB PATCHes, --fsync";
/// A 1 GiB upload in one PATCH with `--no-request-metrics`: what metrics cost.
pub const QUIET_1: &str = "sluice 1 GiB, one PATCH, --no-request-metrics";
/// 256 clients at once, 16 MiB each in 1 MiB PATCHes, default memory budget (64 MiB).
pub const CROWD: &str = "sluice 256 x 16 MiB concurrent, default budget";
/// A 1 GiB file in one multipart form request (`POST /upload`).
pub const FORM_1: &str = "sluice 1 GiB, multipart form";
/// A 4 GiB file in one multipart form request (`POST /upload`).
pub const FORM_4: &str = "sluice 4 GiB, multipart form";
/// `curl -T` of a 4 GiB file from disk to the baseline handler.
pub const CURL_BASE_4: &str = "curl -T 4 GiB file, baseline";
/// `curl` sending a 4 GiB file from disk to Sluice as one tus PATCH.
pub const CURL_PATCH_4: &str = "curl 4 GiB file, one tus PATCH to sluice";
/// `sluice upload` of a 1 GiB file (default: 32 MiB chunks, sha256 per chunk).
pub const CLI_1: &str = "sluice upload 1 GiB file";
/// `sluice upload` of a 4 GiB file (default: 32 MiB chunks, sha256 per chunk).
pub const CLI_4: &str = "sluice upload 4 GiB file";
/// `sluice upload --checksum none` of a 4 GiB file.
pub const CLI_4_NONE: &str = "sluice upload 4 GiB file, --checksum none";
/// `cp` of a 4 GiB file: the bytes copied once, on the file system the join uses.
pub const COPY_4: &str = "disk only, cp of a 4 GiB file";
/// The `POST` of a tus final upload joining 4 finished parts of 1 GiB (the parts' upload untimed).
pub const JOIN_4: &str = "sluice joins a 4 GiB final from 4 parts";
/// Peer scenario (`--peers`, on every tus server): 1 GiB in one PATCH.
pub const PEER_ONE_1: &str = "1 GiB, one PATCH";
/// Peer scenario: 4 GiB in one PATCH.
pub const PEER_ONE_4: &str = "4 GiB, one PATCH";
/// Peer scenario: 4 GiB in 8 MiB PATCHes on one connection.
pub const PEER_SPLIT_4: &str = "4 GiB, 8 MiB PATCHes";
/// Peer scenario: 32 uploads of 64 MiB at once, one PATCH each.
pub const PEER_CONCURRENT: &str = "32 x 64 MiB concurrent";
/// Garage alone: one plain S3 multipart upload of 1 GiB.
pub const S3_PLAIN_1: &str = "garage alone, multipart 1 GiB";
/// Garage alone: one plain S3 multipart upload of 4 GiB.
pub const S3_PLAIN_4: &str = "garage alone, multipart 4 GiB";
/// Garage alone: 32 plain S3 multipart uploads of 64 MiB at once.
pub const S3_PLAIN_32: &str = "garage alone, 32 x 64 MiB multipart";
/// Sluice -> Garage, 1 GiB in one PATCH.
pub const S3_ONE_1: &str = "sluice -> garage 1 GiB, one PATCH";
/// Sluice -> Garage, 4 GiB in one PATCH.
pub const S3_ONE_4: &str = "sluice -> garage 4 GiB, one PATCH";
/// `@tus/server` with `@tus/s3-store` -> Garage, 1 GiB in one PATCH (`--peers`).
pub const S3_TUS_NODE_1: &str = "@tus/server + @tus/s3-store -> garage 1 GiB, one PATCH";
/// `@tus/server` with `@tus/s3-store` -> Garage, 4 GiB in one PATCH (`--peers`).
pub const S3_TUS_NODE_4: &str = "@tus/server + @tus/s3-store -> garage 4 GiB, one PATCH";
/// `@tus/server` with `@tus/s3-store` -> Garage, 32 concurrent uploads of 64 MiB (`--peers`).
pub const S3_TUS_NODE_32: &str = "@tus/server + @tus/s3-store -> garage 32 x 64 MiB concurrent";
/// Sluice -> Garage, 32 concurrent uploads of 64 MiB.
pub const S3_CONCURRENT: &str = "sluice -> garage 32 x 64 MiB concurrent";

/// A 1 GiB upload in one PATCH, no flood, on the server the flood scenario then floods.
pub const CALM_1: &str = "sluice 1 GiB, one PATCH, no flood (flood scenario)";
/// The same upload during 2000 slow-header connections from another address.
pub const FLOOD_1: &str = "sluice 1 GiB, one PATCH, during a 2000-connection slow-header flood";

const MB: f64 = 1e6;

/// One throughput scenario.
pub struct Figure {
    /// Scenario name.
    pub name: &'static str,
    /// Bytes uploaded in all, per run.
    pub bytes: u64,
    /// Wall time of each successful run, s.
    pub runs: Vec<f64>,
    /// Server `VmHWM` after the run, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Server `VmRSS` right after start, KiB.
    pub start_rss_kib: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Figure {
    /// A scenario with no runs yet.
    pub fn new(name: &'static str, bytes: u64) -> Figure {
        Figure { name, bytes, runs: Vec::new(), peak_rss_kib: None, start_rss_kib: None, error: None }
    }

    /// The median wall time (upper median for an even count).
    pub fn secs(&self) -> Option<f64> {
        let mut runs = self.runs.clone();
        runs.sort_unstable_by(f64::total_cmp);
        runs.get(runs.len() / 2).copied()
    }

    /// MB/s (10^6 bytes per second) of the median run.
    pub fn mb_s(&self) -> Option<f64> {
        self.secs().map(|s| self.bytes as f64 / MB / s)
    }

    /// The median MB/s, with the range over the runs when there are several.
    fn mb_s_text(&self) -> String {
        let rates: Vec<f64> = self.runs.iter().map(|s| self.bytes as f64 / MB / s).collect();
        let (lo, hi) = rates.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        match self.mb_s() {
            Some(m) if rates.len() > 1 => format!("{m:.0} ({lo:.0}–{hi:.0})"),
            m => opt(m, 0),
        }
    }

    /// One console line.
    pub fn line(&self) -> String {
        match &self.error {
            Some(e) => format!("{:<32} FAILED: {e}", self.name),
            None => format!(
                "{:<32} {:>18} MB/s  peak RSS {:>9}  (RSS at start {})",
                self.name,
                self.mb_s_text(),
                mib(self.peak_rss_kib),
                mib(self.start_rss_kib)
            ),
        }
    }
}

/// The HEAD scenario.
#[derive(Default)]
pub struct Head {
    /// Keep-alive connections (one thread each).
    pub conns: usize,
    /// Requests completed.
    pub requests: u64,
    /// Wall time.
    pub secs: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Server `VmHWM`, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Head {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.requests as f64 / self.secs
        } else {
            0.0
        }
    }

    /// One console line.
    pub fn line(&self) -> String {
        match &self.error {
            Some(e) => format!("{:<32} FAILED: {e}", "HEAD"),
            None => format!(
                "{:<32} {:>8.0} req/s  p50 {:.0} µs  p99 {:.0} µs  ({} requests, {} connections)",
                "HEAD",
                self.rate(),
                self.p50_us,
                self.p99_us,
                self.requests,
                self.conns
            ),
        }
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// KiB as `9.3 MiB`, or `4.02 GiB` from 1 GiB up; `-` when unknown.
pub fn mib(kib: Option<u64>) -> String {
    match kib {
        None => "-".to_string(),
        Some(k) if k >= 1 << 20 => format!("{:.2} GiB", k as f64 / (1 << 20) as f64),
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
    }
}

/// One scenario on every tus server (`--peers`).
pub struct PeerRow {
    /// Scenario name.
    pub name: &'static str,
    /// One figure per server, in `Peer::ALL` order.
    pub figures: Vec<Figure>,
}

/// HEAD load on every tus server (`--peers`).
pub struct PeerHeads {
    /// The load generator, e.g. `oha 1.16.0`.
    pub tool: String,
    /// Keep-alive connections.
    pub conns: usize,
    /// Seconds per run.
    pub secs: u64,
    /// The runs of each server, in `Peer::ALL` order.
    pub runs: Vec<Vec<Head>>,
}

/// Everything `--peers` measured.
pub struct Peers {
    /// Throughput scenarios.
    pub rows: Vec<PeerRow>,
    /// The HEAD load, unless left out by `--only`.
    pub heads: Option<PeerHeads>,
    /// 1-minute load average before and after the peer runs.
    pub load: (String, String),
    /// The peers' versions, for the caption.
    pub versions: String,
}

/// Whether a bigger figure is the better one (throughput) or the smaller (latency, memory).
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// Sluice ÷ peer as `1.23×`, in bold when Sluice is behind; `-` when either is missing.
fn ratio(sluice: Option<f64>, peer: Option<f64>, better: Better) -> String {
    let (Some(a), Some(b)) = (sluice, peer) else { return "-".to_string() };
    if b <= 0.0 {
        return "-".to_string();
    }
    let r = a / b;
    let text = if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    };
    let behind = match better {
        Better::Higher => r < 1.0,
        Better::Lower => r > 1.0,
    };
    if behind {
        format!("**{text}**")
    } else {
        text
    }
}

/// An error as one table cell: one line, no `|`, at most 160 characters.
fn error_cell(e: &str) -> String {
    let one_line: String = e.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
    let short: String = one_line.chars().take(160).collect();
    if short.len() < one_line.len() {
        format!("failed: {short}…")
    } else {
        format!("failed: {short}")
    }
}

/// The runs that did not fail.
fn good(runs: &[Head]) -> Vec<&Head> {
    runs.iter().filter(|h| h.error.is_none()).collect()
}

/// The median of `values` (upper median for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Appends one peers-table row: a label, three cells, and Sluice's ratio to each peer.
fn peer_line(out: &mut String, label: &str, cells: &[String], values: &[Option<f64>], better: Better) {
    out.push_str(&format!(
        "| {label} | {} | {} | {} | {} | {} |\n",
        cells[0],
        cells[1],
        cells[2],
        ratio(values[0], values[1], better),
        ratio(values[0], values[2], better)
    ));
}

/// The peers table (markdown), with its caption.
fn render_peers(peers: &Peers, runs: u32) -> String {
    let (before, after) = &peers.load;
    let labels: Vec<&str> = Peer::ALL.iter().map(|p| p.label()).collect();
    let mut out = String::from("\n### Beside other tus servers (`--peers`)\n\n");
    out.push_str(&format!(
        "Sluice beside {}: the same scenarios and client, interleaved (each of {runs} rounds starts Sluice, rustus \
         and @tus/server in turn, each on a fresh process and data dir), medians with the range in brackets; \
         1-minute load average {before} before the peer runs, {after} after them. rustus runs as its README shows \
         (file storage, default extensions, access log on) with `--max-body-size {RUSTUS_MAX_BODY}`, because it \
         reads each PATCH body whole into memory (default limit 256 KiB), under `prlimit --as={RUSTUS_ADDRESS_SPACE}` \
         so it cannot exhaust the machine. @tus/server runs as its README shows (`xtask/peers/tus-node-server.mjs`, \
         `maxSize` 16 GiB); its peak RSS is the node process's. Ratios are Sluice ÷ peer: above 1× is ahead for \
         MB/s and req/s, below 1× is ahead for latency and memory; **bold** marks where Sluice is behind.\n\n",
        peers.versions
    ));
    out.push_str(&format!(
        "| scenario | {} | {} | {} | Sluice/rustus | Sluice/@tus |\n|---|---:|---:|---:|---:|---:|\n",
        labels[0], labels[1], labels[2]
    ));
    for row in &peers.rows {
        let ok = |f: &Figure| f.error.is_none();
        let cells: Vec<String> = row
            .figures
            .iter()
            .map(|f| match &f.error {
                Some(e) => error_cell(e),
                None => f.mb_s_text(),
            })
            .collect();
        let rates: Vec<Option<f64>> = row.figures.iter().map(|f| f.mb_s().filter(|_| ok(f))).collect();
        peer_line(&mut out, &format!("{}: MB/s", row.name), &cells, &rates, Better::Higher);
        let rss: Vec<Option<u64>> = row.figures.iter().map(|f| f.peak_rss_kib.filter(|_| ok(f))).collect();
        let cells: Vec<String> = rss.iter().map(|&k| mib(k)).collect();
        let rss: Vec<Option<f64>> = rss.iter().map(|k| k.map(|k| k as f64)).collect();
        peer_line(&mut out, "… peak RSS", &cells, &rss, Better::Lower);
    }
    if let Some(heads) = &peers.heads {
        let stat = |runs: &[Head], f: fn(&Head) -> f64| median(good(runs).iter().map(|h| f(h)).collect());
        let failed = |runs: &[Head]| match (good(runs).is_empty(), runs.iter().find_map(|h| h.error.as_deref())) {
            (true, Some(e)) => Some(error_cell(e)),
            _ => None,
        };
        let rates: Vec<Option<f64>> = heads.runs.iter().map(|r| stat(r, Head::rate)).collect();
        let cells: Vec<String> = heads
            .runs
            .iter()
            .zip(&rates)
            .map(|(runs, rate)| {
                failed(runs).unwrap_or_else(|| {
                    let all: Vec<f64> = good(runs).iter().map(|h| h.rate()).collect();
                    let (lo, hi) = all.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
                    match rate {
                        Some(m) if all.len() > 1 => format!("{m:.0} ({lo:.0}–{hi:.0})"),
                        m => opt(*m, 0),
                    }
                })
            })
            .collect();
        let label = format!("HEAD, {} connections, {} s ({}): req/s", heads.conns, heads.secs, heads.tool);
        peer_line(&mut out, &label, &cells, &rates, Better::Higher);
        for (label, f) in
            [("… p50 latency", (|h: &Head| h.p50_us) as fn(&Head) -> f64), ("… p99 latency", |h| h.p99_us)]
        {
            let values: Vec<Option<f64>> = heads.runs.iter().map(|r| stat(r, f)).collect();
            let cells: Vec<String> =
                values.iter().map(|v| v.map_or("-".into(), |us| format!("{:.3} ms", us / 1000.0))).collect();
            peer_line(&mut out, label, &cells, &values, Better::Lower);
        }
        let rss: Vec<Option<u64>> =
            heads.runs.iter().map(|r| good(r).iter().filter_map(|h| h.peak_rss_kib).max()).collect();
        let cells: Vec<String> = rss.iter().map(|&k| mib(k)).collect();
        let rss: Vec<Option<f64>> = rss.iter().map(|k| k.map(|k| k as f64)).collect();
        peer_line(&mut out, "… peak RSS", &cells, &rss, Better::Lower);
    }
    out
}

/// Renders the `## Figures` section (markdown, ending with a newline).
/// `(before, after)` are the 1-minute load averages around the run.
pub fn render(
    figures: &[Figure],
    head: &Head,
    quiet_head: Option<&Head>,
    peers: Option<&Peers>,
    opts: &Options,
    (before, after): (String, String),
) -> String {
    let find = |name: &str| figures.iter().find(|f| f.name == name && f.error.is_none());
    let mut out = String::from("## Figures\n\n");
    out.push_str("<!-- Written by `cargo xtask bench`; rerun it rather than editing by hand. -->\n\n");
    out.push_str(&format!(
        "Run {} with `cargo xtask bench{}{} --runs {}` at commit {}; {}; 1-minute load average {before} before \
         the run, {after} after it (other work on the machine skews the figures).\n",
        utc_now(),
        if opts.long { " --long" } else { "" },
        if opts.peers { " --peers" } else { "" },
        opts.runs,
        git_rev(),
        machine()
    ));
    out.push_str(&format!(
        "Loopback; a std-only HTTP/1.1 client (xtask) on the same machine sends every body from one 1 MiB \
         pseudo-random buffer. MB = 10^6 bytes; MB/s is the median of the runs (range in brackets); time is the \
         median run's. Peak RSS is the server's `VmHWM`, a fresh process per run, largest of the runs. \
         Baseline: `crates/sluice-server/examples/baseline.rs`, an actix-web handler writing a PUT body to a file \
         chunk by chunk with no protocol. The baseline PUT, the single PATCH and the multipart form of the same \
         size run interleaved (baseline, PATCH, form, baseline, …, each on a fresh process), so noise on the \
         machine hits them alike and their ratio is the figure to read. \"Disk only\" writes the same bytes to a file from the bench process \
         (no HTTP, no fsync, like the servers): what the file system alone gives. On this kind of VM it varies a \
         lot from run to run (page-cache memory is faulted in from the host, and past the dirty limits writes go \
         at writeback speed). Sluice runs with the bench policy (`max_file_size` and `max_chunk_size` 16 GiB) and \
         `SLUICE_MAX_UPLOADS_PER_CLIENT={MAX_UPLOADS_PER_CLIENT}` and `SLUICE_CREATION_RATE=1000` (all bench clients \
         share one address), other \
         settings default; the 256-client crowd adds `--max-connections-per-client 1024`, its connections being open \
         at once from one address. The flood rows (same server, same client) come from `xtask/src/flood.py` holding 2000 \
         slow-header connections from 127.0.0.2 while the upload comes from 127.0.0.1; the flooded row's \
         \"vs baseline\" is against the no-flood row. \
         Rows starting with `curl` or `sluice upload` send a file from disk (page cache) and compare with \
         `curl -T` of the same file to the baseline; in `sluice upload` rows the peak RSS is the client's own \
         (the `curl` rows show the server's).\n\n",
    ));
    out.push_str(
        "| scenario | time | MB/s | vs baseline | vs disk only | peak RSS | RSS at start |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in figures {
        let base = match f.name {
            ONE_1 | FORM_1 | FSYNC_1 | QUIET_1 | CALM_1 => find(BASE_1),
            FLOOD_1 => find(CALM_1),
            ONE_4 | SPLIT_4 | FORM_4 | FSYNC_SPLIT_4 => find(BASE_4),
            CURL_PATCH_4 | CLI_1 | CLI_4 | CLI_4_NONE => find(CURL_BASE_4),
            S3_ONE_1 | S3_TUS_NODE_1 => find(S3_PLAIN_1),
            S3_ONE_4 | S3_TUS_NODE_4 => find(S3_PLAIN_4),
            S3_CONCURRENT | S3_TUS_NODE_32 => find(S3_PLAIN_32),
            JOIN_4 => find(COPY_4),
            _ => None,
        };
        let disk = match f.name {
            BASE_1 | ONE_1 | FORM_1 | FSYNC_1 | QUIET_1 => find(DISK_1),
            BASE_4 | ONE_4 | SPLIT_4 | FORM_4 | FSYNC_SPLIT_4 | CURL_BASE_4 | CURL_PATCH_4 | CLI_4 | CLI_4_NONE => {
                find(DISK_4)
            }
            ONE_8 => find(DISK_8),
            _ => None,
        };
        let of_disk = match (f.mb_s(), disk.and_then(Figure::mb_s)) {
            (Some(a), Some(b)) => format!("{:.0}%", 100.0 * a / b),
            _ => "-".to_string(),
        };
        let ratio = match (f.mb_s(), base.and_then(Figure::mb_s)) {
            (Some(a), Some(b)) => format!("{:.0}%", 100.0 * a / b),
            _ => "-".to_string(),
        };
        match &f.error {
            Some(e) => out.push_str(&format!("| {} | failed: {} | | | | | |\n", f.name, e.replace('|', "\\|"))),
            None => out.push_str(&format!(
                "| {} | {} s | {} | {} | {} | {} | {} |\n",
                f.name,
                opt(f.secs(), 2),
                f.mb_s_text(),
                ratio,
                of_disk,
                mib(f.peak_rss_kib),
                mib(f.start_rss_kib)
            )),
        }
    }
    match &head.error {
        Some(e) => out.push_str(&format!("\nHEAD: failed: {e}\n")),
        None => out.push_str(&format!(
            "\nHEAD on one upload, {} keep-alive connections for {:.1} s: {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs \
             ({} requests; peak RSS {}).\n",
            head.conns,
            head.secs,
            head.rate(),
            head.p50_us,
            head.p99_us,
            head.requests,
            mib(head.peak_rss_kib)
        )),
    }

    out.push_str("\n| target | measured | met |\n|---|---|---|\n");
    let mut target = |what: String, measured: String, met: Option<bool>| {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        out.push_str(&format!("| {what} | {measured} | {met} |\n"));
    };
    for name in [ONE_1, ONE_4, ONE_8] {
        if let Some(f) = find(name) {
            let v = f.mb_s().unwrap_or(0.0);
            target(format!("{name}: ≥ 1000 MB/s"), format!("{v:.0} MB/s"), Some(v >= 1000.0));
        }
    }
    for (name, base) in [(ONE_1, BASE_1), (ONE_4, BASE_4)] {
        if let (Some(a), Some(b)) = (find(name).and_then(Figure::mb_s), find(base).and_then(Figure::mb_s)) {
            let r = a / b;
            target(format!("{name}: ≥ 90% of {base}"), format!("{:.0}%", 100.0 * r), Some(r >= 0.9));
        }
    }
    if let (Some(a), Some(b)) = (find(JOIN_4).and_then(Figure::mb_s), find(COPY_4).and_then(Figure::mb_s)) {
        let r = a / b;
        target(format!("{JOIN_4}: not slower than {COPY_4}"), format!("{:.0}%", 100.0 * r), Some(r >= 1.0));
    }
    for name in [ONE_4, SPLIT_4, FORM_4, JOIN_4] {
        if let Some(k) = find(name).and_then(|f| f.peak_rss_kib) {
            target(format!("{name}: peak RSS ≤ 16 MiB"), mib(Some(k)), Some(k <= 16 * 1024));
        }
    }
    let big = if find(ONE_8).is_some() { ONE_8 } else { ONE_4 };
    if let (Some(a), Some(b)) = (find(ONE_1).and_then(|f| f.peak_rss_kib), find(big).and_then(|f| f.peak_rss_kib)) {
        let growth = b as i64 - a as i64;
        let span = if big == ONE_8 { "1 → 8 GiB" } else { "1 → 4 GiB (8 GiB needs --long)" };
        target(format!("peak RSS growth {span}: < 1 MiB"), format!("{growth:+} KiB"), Some(growth < 1024));
    }
    if let (Some(a), Some(b)) = (find(FORM_1).and_then(|f| f.peak_rss_kib), find(FORM_4).and_then(|f| f.peak_rss_kib)) {
        let growth = b as i64 - a as i64;
        target("multipart peak RSS growth 1 → 4 GiB: < 1 MiB".into(), format!("{growth:+} KiB"), Some(growth < 1024));
    }
    if let Some(k) = find(CROWD).and_then(|f| f.peak_rss_kib) {
        // The stated bound: budget + 8 MiB base + 256 KiB per open connection (actix's buffers).
        let limit = (64 + 8 + 256 / 4) * 1024;
        target(
            format!("{CROWD}: peak RSS ≤ budget 64 MiB + 8 MiB + 256 KiB × 256 connections = 136 MiB"),
            mib(Some(k)),
            Some(k <= limit),
        );
    }
    if let (Some(with), Some(without)) = (find(ONE_1).and_then(Figure::mb_s), find(QUIET_1).and_then(Figure::mb_s)) {
        let cost = 100.0 * (1.0 - with / without);
        target("request metrics cost, 1 GiB PATCH: < 2%".into(), format!("{cost:+.1}%"), Some(cost < 2.0));
    }
    if let Some(quiet) = quiet_head.filter(|q| q.error.is_none() && head.error.is_none()) {
        let cost = 100.0 * (1.0 - head.rate() / quiet.rate());
        target(
            format!("request metrics cost, HEAD rate ({:.0} vs {:.0} req/s): < 2%", head.rate(), quiet.rate()),
            format!("{cost:+.1}%"),
            Some(cost < 2.0),
        );
    }
    if let (Some(a), Some(b)) = (find(FLOOD_1).and_then(Figure::mb_s), find(CALM_1).and_then(Figure::mb_s)) {
        let r = a / b;
        target(
            format!("{FLOOD_1}: ≥ 50% of the same upload with no flood"),
            format!("{:.0}%", 100.0 * r),
            Some(r >= 0.5),
        );
    }
    if let Some(k) = find(CONCURRENT).and_then(|f| f.peak_rss_kib) {
        target(format!("{CONCURRENT}: peak RSS ≤ 48 MiB"), mib(Some(k)), Some(k <= 48 * 1024));
    }
    for name in [CLI_4, CLI_4_NONE] {
        if let (Some(a), Some(b)) = (find(name).and_then(Figure::mb_s), find(CURL_BASE_4).and_then(Figure::mb_s)) {
            let r = a / b;
            target(format!("{name}: ≥ 90% of {CURL_BASE_4}"), format!("{:.0}%", 100.0 * r), Some(r >= 0.9));
        }
    }
    for name in [CLI_1, CLI_4, CLI_4_NONE] {
        if let Some(k) = find(name).and_then(|f| f.peak_rss_kib) {
            target(format!("{name}: client peak RSS ≤ 32 MiB"), mib(Some(k)), Some(k <= 32 * 1024));
        }
    }
    if let (Some(a), Some(b)) = (find(CLI_1).and_then(|f| f.peak_rss_kib), find(CLI_4).and_then(|f| f.peak_rss_kib)) {
        let growth = b as i64 - a as i64;
        target("client peak RSS growth 1 → 4 GiB: < 1 MiB".into(), format!("{growth:+} KiB"), Some(growth < 1024));
    }
    if head.error.is_none() {
        target("HEAD ≥ 50k req/s".into(), format!("{:.0} req/s", head.rate()), Some(head.rate() >= 50_000.0));
        target("HEAD p99 ≤ 0.5 ms".into(), format!("{:.3} ms", head.p99_us / 1000.0), Some(head.p99_us <= 500.0));
    }
    if let Some(peers) = peers {
        out.push_str(&render_peers(peers, opts.runs));
    }
    out
}

/// Replaces the `## Figures` section of `doc` (up to the next `## ` heading) with `section`,
/// or appends it; creates the file when missing.
pub fn update_doc(doc: &Path, section: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(doc).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let new = splice(&old, section);
    std::fs::write(doc, new).map_err(|e| format!("{}: {e}", doc.display()))
}

fn splice(old: &str, section: &str) -> String {
    let lines: Vec<&str> = old.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == "## Figures") else {
        let mut out = old.trim_end().to_string();
        out.push_str("\n\n");
        out.push_str(section);
        return out;
    };
    let end = lines[start + 1..].iter().position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
    let mut out = String::new();
    for l in &lines[..start] {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(section);
    if end < lines.len() {
        out.push('\n');
        for l in &lines[end..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The 1-minute load average, as text.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn git_rev() -> String {
    let rev = crate::proc::probe(crate::proc::command("git").args(["rev-parse", "--short", "HEAD"]));
    let dirty = crate::proc::probe(crate::proc::command("git").args(["status", "--porcelain"]))
        .is_some_and(|s| !s.trim().is_empty());
    match rev {
        Some(r) => format!("`{}`{}", r.trim(), if dirty { " (with uncommitted changes)" } else { "" }),
        None => "(unknown)".to_string(),
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
        })
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB RAM, Linux {}", kernel.trim())
}

/// Now as `YYYY-MM-DD HH:MM UTC`, std only.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs % 86_400 / 3600, secs % 3600 / 60)
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn every_table_row_has_the_header_s_columns() {
        let mut ok = Figure::new(ONE_4, 4 << 30);
        ok.runs = vec![2.0, 4.0, 3.0];
        ok.peak_rss_kib = Some(8000);
        let mut base = Figure::new(BASE_4, 4 << 30);
        base.runs = vec![2.0];
        let mut failed = Figure::new(CONCURRENT, 1);
        failed.error = Some("429 | too many".into());
        let head = Head { conns: 8, requests: 1000, secs: 1.0, ..Head::default() };
        let opts = Options { long: false, runs: 3, only: None, peers: true };
        let peers = peers_sample();
        let text = render(&[ok, base, failed], &head, None, Some(&peers), &opts, ("0.1".into(), "0.2".into()));
        for table in text.split("\n\n").filter(|t| t.starts_with('|')) {
            let columns: Vec<usize> = table.lines().map(|l| l.replace("\\|", "").matches('|').count()).collect();
            assert!(columns.iter().all(|&c| c == columns[0]), "{table}");
        }
        assert!(text.contains("| sluice 4 GiB, one PATCH | 3.00 s | 1432 (1074–2147) | 67% |"), "{text}");
        assert!(text.contains("| HEAD ≥ 50k req/s | 1000 req/s | **no** |"), "{text}");
    }

    /// Sluice ahead of rustus on MB/s but not on memory; @tus/server failed the scenario.
    fn peers_sample() -> Peers {
        let fig = |secs: f64, rss: u64, error: Option<&str>| {
            let mut f = Figure::new(PEER_ONE_1, 1 << 30);
            f.runs = vec![secs];
            f.peak_rss_kib = Some(rss);
            f.error = error.map(str::to_string);
            f
        };
        let head = |rate: f64, p99: f64, error: Option<&str>| Head {
            conns: 8,
            requests: rate as u64,
            secs: 1.0,
            p50_us: 100.0,
            p99_us: p99,
            peak_rss_kib: Some(10_240),
            error: error.map(str::to_string),
        };
        Peers {
            rows: vec![PeerRow {
                name: PEER_ONE_1,
                figures: vec![fig(1.0, 20_480, None), fig(2.0, 10_240, None), fig(1.0, 1, Some("died |\n here"))],
            }],
            heads: Some(PeerHeads {
                tool: "oha 1.16.0".into(),
                conns: 8,
                secs: 5,
                runs: vec![
                    vec![head(14_000.0, 400.0, None), head(15_000.0, 500.0, None), head(0.0, 0.0, Some("x"))],
                    vec![head(14_800.0, 300.0, None)],
                    vec![head(0.0, 0.0, Some("refused"))],
                ],
            }),
            load: ("1.0".into(), "2.0".into()),
            versions: "rustus 0.5.10".into(),
        }
    }

    #[test]
    fn peers_table_marks_where_sluice_is_behind() {
        let text = render_peers(&peers_sample(), 3);
        assert!(text.contains("| 1 GiB, one PATCH: MB/s | 1074 | 537 | failed: died \\| here | 2.00× | - |"), "{text}");
        assert!(text.contains("| … peak RSS | 20.0 MiB | 10.0 MiB | - | **2.00×** | - |"), "{text}");
        let head = "| HEAD, 8 connections, 5 s (oha 1.16.0): req/s | 15000 (14000–15000) | 14800 | failed: refused | 1.01× | - |";
        assert!(text.contains(head), "{text}");
        assert!(text.contains("| … p99 latency | 0.500 ms | 0.300 ms | - | **1.67×** | - |"), "{text}");
    }

    #[test]
    fn sizes_and_ratios() {
        assert_eq!(mib(Some(9523)), "9.3 MiB");
        assert_eq!(mib(Some(4 << 20)), "4.00 GiB");
        assert_eq!(ratio(Some(3.0), Some(1.0), Better::Higher), "3.00×");
        assert_eq!(ratio(Some(1.0), Some(200.0), Better::Lower), "0.005×");
        assert_eq!(ratio(Some(1.0), Some(200.0), Better::Higher), "**0.005×**");
        assert_eq!(ratio(Some(1.0), None, Better::Higher), "-");
    }

    #[test]
    fn splice_replaces_only_the_figures_section() {
        let doc = "# B\n\nprose\n\n## Figures\n\nold\n\n## Method\n\nmore\n";
        assert_eq!(splice(doc, "## Figures\n\nnew\n"), "# B\n\nprose\n\n## Figures\n\nnew\n\n## Method\n\nmore\n");
        assert_eq!(splice("# B\n\nprose\n", "## Figures\n\nnew\n"), "# B\n\nprose\n\n## Figures\n\nnew\n");
        assert_eq!(splice("## Figures\nold\n", "## Figures\n\nnew\n"), "## Figures\n\nnew\n");
    }
}
