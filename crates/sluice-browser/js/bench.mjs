// Benchmark of sluice-browser in headless Chromium (system /usr/bin/chromium via playwright-core).
//
//   node crates/sluice-browser/js/bench.mjs [--no-doc]
//
// Builds the RELEASE wasm package (`cargo xtask build-web`: wasm-pack, wasm-opt from npm's
// binaryen) and the release server that embeds it, and the native hashing baseline, then measures:
//   0. the package's size (raw and gzip), before and after wasm-bindgen + wasm-opt;
//   1. time to check a 4 GiB disk-backed file (setInputFiles hands Chromium the path);
//   2. SHA-256 (and CRC-32C) throughput of `digest()` over a 2 GiB disk-backed file, vs the same
//      sluice-core code run natively (examples/native_hash.rs);
//   3. uploading that 2 GiB file to a local Sluice server, per checksum setting (chunk checksums
//      computed by the module's hashing workers), with the renderer's memory: JS heap (CDP
//      Runtime.getHeapUsage after HeapProfiler.collectGarbage) and the renderer processes' RSS
//      sampled from /proc every 50 ms, and the page thread's long tasks (PerformanceObserver);
//   4. the same upload as one stream (`parallel: 1`) and as 4 parts joined by the server.
// Prints a Markdown section and writes it to docs/benchmarks.md ("## Browser figures").
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import readline from "node:readline";
import zlib from "node:zlib";
import { chromium } from "playwright-core";

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const root = path.resolve(import.meta.dirname, "../../..");
const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
const work = path.join(target, "browser-bench");
const pkg = path.join(root, "web/pkg");
const writeDoc = !process.argv.includes("--no-doc");

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
}

// ---- build ----------------------------------------------------------------------------------
run("cargo", ["xtask", "build-web"]);
try {
  run("cargo", ["build", "--release", "-p", "sluice-server"]);
} catch (e) {
  // The server may be mid-edit in a shared checkout: measure with the binary already built.
  if (!fs.existsSync(path.join(target, "release/sluice"))) throw e;
  console.warn("warning: building sluice-server failed; using the existing target/release/sluice");
}
run("cargo", ["build", "--release", "-p", "sluice-browser", "--example", "native_hash"]);

// ---- files ----------------------------------------------------------------------------------
fs.mkdirSync(work, { recursive: true });
const big = path.join(work, "check-4GiB.bin"); // sparse: only its first bytes are ever read
if (!fs.existsSync(big) || fs.statSync(big).size !== 4 * GIB) {
  fs.writeFileSync(big, "%PDF-1.7\n");
  fs.truncateSync(big, 4 * GIB);
}
const up = path.join(work, "upload-2GiB.bin");
if (!fs.existsSync(up) || fs.statSync(up).size !== 2 * GIB) {
  console.log(`writing ${up}`);
  const block = Buffer.alloc(64 * MIB);
  let x = 0x9e3779b9;
  for (let i = 0; i < block.length; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; block.writeUInt32LE(x, i); }
  const fd = fs.openSync(up, "w");
  for (let i = 0; i < 32; i++) { block[0] = i; fs.writeSync(fd, block); }
  fs.closeSync(fd);
}

// ---- servers --------------------------------------------------------------------------------
const policy = path.join(work, "policy.toml");
fs.writeFileSync(policy, 'max_file_size = "8 GiB"\nmax_chunk_size = "64 MiB"\nchecksum_algorithms = ["sha256", "crc32c", "sha1"]\n');
const data = path.join(work, "data");
fs.rmSync(data, { recursive: true, force: true });
fs.mkdirSync(data);
const sluice = spawn(path.join(target, "release/sluice"),
  ["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--policy", policy],
  { stdio: ["ignore", "pipe", fs.openSync(path.join(work, "sluice.log"), "w")] });
const first = await new Promise((resolve, reject) => {
  readline.createInterface({ input: sluice.stdout }).once("line", resolve);
  sluice.once("exit", (code) => reject(new Error(`sluice exited (${code})`)));
});
const endpoint = `${first.replace("listening on ", "").trim()}/files/`;

const page = `<!doctype html><meta charset="utf-8"><input type="file" id="big"><input type="file" id="up">
<script type="module">
import init, * as sluice from "/pkg/sluice_browser.js";
await init();
window.sluice = sluice;
window.ready = true;
</script>`;
const statics = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/") { res.writeHead(200, { "content-type": "text/html" }); return res.end(page); }
  const file = path.join(pkg, path.basename(url.pathname));
  if (!url.pathname.startsWith("/pkg/") || !fs.existsSync(file)) { res.writeHead(404); return res.end(); }
  const type = file.endsWith(".wasm") ? "application/wasm" : "text/javascript";
  res.writeHead(200, { "content-type": type });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => statics.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${statics.address().port}`;

// ---- /proc helpers --------------------------------------------------------------------------
function children() {
  const map = new Map();
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      map.set(Number(pid), ppid);
    } catch { /* gone */ }
  }
  return map;
}
function renderers() {
  const parent = children();
  const mine = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) if (!mine.has(pid) && mine.has(ppid)) { mine.add(pid); grew = true; }
  }
  return [...mine].filter((pid) => {
    try { return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer"); } catch { return false; }
  });
}
function rssKib(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
      if (m) sum += Number(m[1]);
    } catch { /* gone */ }
  }
  return sum;
}

// ---- measurements ---------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const results = {};
const sizeOf = (file) => {
  const bytes = fs.readFileSync(file);
  return { raw: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
};
results.size = {
  cargo: sizeOf(path.join(target, "wasm32-unknown-unknown/release/sluice_browser.wasm")),
  pkg: sizeOf(path.join(pkg, "sluice_browser_bg.wasm")),
  js: sizeOf(path.join(pkg, "sluice_browser.js")),
};
console.log("size:", JSON.stringify(results.size));
try {
  const tab = await browser.newPage();
  await tab.goto(origin);
  await tab.waitForFunction(() => window.ready === true);
  await tab.setInputFiles("#big", big);
  await tab.setInputFiles("#up", up);
  const cdp = await tab.context().newCDPSession(tab);

  results.check = await tab.evaluate(async (endpoint) => {
    const client = await window.sluice.Client.connect(endpoint, {});
    const file = document.querySelector("#big").files[0];
    const times = [];
    let verdict;
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      verdict = await client.check(file);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { size: file.size, median: times[4], max: times[8], first: times, verdict };
  }, endpoint);
  console.log("check:", JSON.stringify(results.check));

  results.hash = {};
  for (const alg of ["sha256", "crc32c"]) {
    results.hash[alg] = await tab.evaluate(async (alg) => {
      const file = document.querySelector("#up").files[0];
      const t0 = performance.now();
      const hex = await window.sluice.digest(file, alg);
      const ms = performance.now() - t0;
      return { ms, mb_s: file.size / 1e6 / (ms / 1000), hex };
    }, alg);
    console.log(`wasm ${alg}:`, JSON.stringify(results.hash[alg]));
  }
  const native = execFileSync(path.join(target, "release/examples/native_hash"), [up, "sha256", "crc32c"], { encoding: "utf8" });
  results.native = Object.fromEntries(native.trim().split("\n").map((l) => JSON.parse(l)).map((r) => [r.algorithm, r]));
  console.log("native:", JSON.stringify(results.native));

  // The ceiling: a hand-written fetch loop over the same 64 MiB slices, no wasm, no checksum.
  results.baseline = await tab.evaluate(async (endpoint) => {
    const file = document.querySelector("#up").files[0];
    const H = { "Tus-Resumable": "1.0.0" };
    const created = await fetch(endpoint, { method: "POST", headers: { ...H, "Upload-Length": String(file.size) } });
    const url = new URL(created.headers.get("Location"), endpoint).href;
    const t0 = performance.now();
    for (let off = 0; off < file.size; off += 64 * 1024 * 1024) {
      const end = Math.min(file.size, off + 64 * 1024 * 1024);
      const r = await fetch(url, { method: "PATCH", body: file.slice(off, end),
        headers: { ...H, "Upload-Offset": String(off), "Content-Type": "application/offset+octet-stream" } });
      if (r.status !== 204) throw new Error(`PATCH ${r.status}`);
    }
    const ms = performance.now() - t0;
    await fetch(url, { method: "DELETE", headers: H });
    return { ms, mb_s: file.size / 1e6 / (ms / 1000) };
  }, endpoint);
  console.log("plain fetch loop:", JSON.stringify(results.baseline));

  results.upload = [];
  for (const checksum of ["none", "crc32c", "sha256"]) {
    await cdp.send("HeapProfiler.collectGarbage");
    const heap0 = (await cdp.send("Runtime.getHeapUsage")).usedSize;
    const pids = renderers();
    const rss0 = rssKib(pids);
    let peak = rss0;
    const sampler = setInterval(() => { peak = Math.max(peak, rssKib(pids)); }, 50);
    const r = await tab.evaluate(async ({ endpoint, checksum }) => {
      const client = await window.sluice.Client.connect(endpoint, { checksum, chunkSize: 64 * 1024 * 1024, resume: false });
      const file = document.querySelector("#up").files[0];
      const long = [];
      const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) long.push(e.duration); });
      observer.observe({ type: "longtask" });
      const upload = client.upload(file);
      const t0 = performance.now();
      const result = await upload.start();
      const ms = performance.now() - t0;
      // Entries are delivered after the task: let the observer catch up.
      await new Promise((r) => setTimeout(r, 200));
      observer.disconnect();
      const workers = client.hashWorkers;
      client.free();
      return { ms, mb_s: file.size / 1e6 / (ms / 1000), checksum: result.checksum, url: result.url, workers,
        long_tasks: long.length, longest_task_ms: Math.max(0, ...long) };
    }, { endpoint, checksum });
    clearInterval(sampler);
    peak = Math.max(peak, rssKib(pids));
    await cdp.send("HeapProfiler.collectGarbage");
    const heap1 = (await cdp.send("Runtime.getHeapUsage")).usedSize;
    Object.assign(r, { renderers: pids.length, rss0_mib: rss0 / 1024, rss_growth_mib: (peak - rss0) / 1024, heap_growth_mib: (heap1 - heap0) / MIB });
    results.upload.push(r);
    console.log(`upload (${checksum}):`, JSON.stringify(r));
    // Free the disk for the next run.
    await fetch(r.url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } }).catch(() => {});
  }

  // One stream vs parallel parts joined by the server (tus concatenation), no checksum.
  results.parallel = [];
  for (const parts of [1, 4]) {
    const r = await tab.evaluate(async ({ endpoint, parts }) => {
      const client = await window.sluice.Client.connect(endpoint, { checksum: "none", chunkSize: 64 * 1024 * 1024, resume: false, parallel: parts });
      const file = document.querySelector("#up").files[0];
      const t0 = performance.now();
      const result = await client.upload(file).start();
      const ms = performance.now() - t0;
      client.free();
      return { parts, ms, mb_s: file.size / 1e6 / (ms / 1000), url: result.url };
    }, { endpoint, parts });
    results.parallel.push(r);
    console.log(`upload (parallel ${parts}):`, JSON.stringify(r));
    await fetch(r.url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } }).catch(() => {});
  }
} finally {
  await browser.close();
  statics.close();
  sluice.kill();
}

// ---- report ---------------------------------------------------------------------------------
const f1 = (x) => x.toFixed(1);
const now = new Date().toISOString().slice(0, 16).replace("T", " ");
const mark = (ok) => (ok ? "yes" : "**no**");
const c = results.check;
const s = results.hash.sha256;
const lines = [
  "## Browser figures",
  "",
  "<!-- Written by `node crates/sluice-browser/js/bench.mjs`; rerun it rather than editing by hand. -->",
  "",
  `Run ${now} UTC in headless Chromium (${execFileSync("/usr/bin/chromium", ["--version"], { encoding: "utf8" }).trim()}), release wasm package (\`cargo xtask build-web\`: wasm-pack, wasm-opt from npm's binaryen), files handed over as disk paths (\`setInputFiles\`), server on loopback. MB = 10^6 bytes, KB = 10^3 bytes.`,
  "",
  "| measurement | result | target | met |",
  "|---|---:|---:|---|",
  `| wasm size, cargo output (before wasm-bindgen and wasm-opt): raw / gzip | ${(results.size.cargo.raw / 1e3).toFixed(0)} KB / ${(results.size.cargo.gzip / 1e3).toFixed(0)} KB | - | - |`,
  `| wasm size, the package (wasm-opt -O3): raw / gzip | ${(results.size.pkg.raw / 1e3).toFixed(0)} KB / ${(results.size.pkg.gzip / 1e3).toFixed(0)} KB | ≤ 200 KB gzip | ${mark(results.size.pkg.gzip <= 200e3)} |`,
  `| JS glue (sluice_browser.js): raw / gzip | ${(results.size.js.raw / 1e3).toFixed(0)} KB / ${(results.size.js.gzip / 1e3).toFixed(0)} KB | - | - |`,
  `| check a 4 GiB file (median of 9; max) | ${f1(c.median)} ms (${f1(c.max)} ms) | < 20 ms | ${mark(c.median < 20)} |`,
  `| SHA-256 in wasm, 2 GiB file via BYOB reads | ${s.mb_s.toFixed(0)} MB/s | ≥ 400 MB/s | ${mark(s.mb_s >= 400)} |`,
  `| SHA-256 native (same sluice-core code) | ${results.native.sha256.mb_s.toFixed(0)} MB/s | - | - |`,
  `| CRC-32C in wasm / native | ${results.hash.crc32c.mb_s.toFixed(0)} / ${results.native.crc32c.mb_s.toFixed(0)} MB/s | - | - |`,
];
lines.push(`| upload 2 GiB, plain JS fetch loop (no wasm, no checksum; the browser's ceiling) | ${results.baseline.mb_s.toFixed(0)} MB/s (${f1(results.baseline.ms / 1000)} s) | - | - |`);
const plain = results.upload.find((u) => u.checksum == null);
for (const u of results.upload) {
  const share = plain ? u.mb_s / plain.mb_s : NaN;
  const target = u.checksum ? `≥ 90 % of no checksum (${(share * 100).toFixed(0)} %)` : "-";
  lines.push(`| upload 2 GiB, 64 MiB chunks, checksum ${u.checksum ?? "none"} (${u.workers} hashing worker${u.workers === 1 ? "" : "s"}) | ${u.mb_s.toFixed(0)} MB/s (${f1(u.ms / 1000)} s) | ${target} | ${u.checksum ? mark(share >= 0.9) : "-"} |`);
  lines.push(`| … renderer RSS growth (peak − start, ${u.renderers} renderer) / JS heap growth | ${f1(u.rss_growth_mib)} MiB / ${f1(u.heap_growth_mib)} MiB | < 32 MiB | ${mark(u.rss_growth_mib < 32)} |`);
  lines.push(`| … page-thread tasks over 50 ms (longest) | ${u.long_tasks} (${f1(u.longest_task_ms)} ms) | 0 | ${mark(u.long_tasks === 0)} |`);
}
const [one, four] = results.parallel;
if (one && four) {
  const gain = four.mb_s / one.mb_s;
  lines.push(`| upload 2 GiB, no checksum, one stream (\`parallel: 1\`) | ${one.mb_s.toFixed(0)} MB/s (${f1(one.ms / 1000)} s) | - | - |`);
  lines.push(`| upload 2 GiB, no checksum, 4 parts joined (\`parallel: 4\`) | ${four.mb_s.toFixed(0)} MB/s (${f1(four.ms / 1000)} s), ${gain.toFixed(2)}× one stream | ≥ 1.5× and ≥ 400 MB/s | ${mark(gain >= 1.5 && four.mb_s >= 400)} |`);
}
lines.push("", `Digests agree with native: sha256 ${s.hex === results.native.sha256.digest ? "yes" : "**NO**"}, crc32c ${results.hash.crc32c.hex === results.native.crc32c.digest ? "yes" : "**NO**"}.`, "");
const section = lines.join("\n");
console.log(`\n${section}`);
if (writeDoc) {
  const doc = path.join(root, "docs/benchmarks.md");
  const old = fs.existsSync(doc) ? fs.readFileSync(doc, "utf8") : "# Benchmarks\n";
  const all = old.split("\n");
  const start = all.findIndex((l) => l.trimEnd() === "## Browser figures");
  let out;
  if (start < 0) {
    out = `${old.trimEnd()}\n\n${section}`;
  } else {
    let end = all.findIndex((l, i) => i > start && l.startsWith("## "));
    if (end < 0) end = all.length;
    out = [...all.slice(0, start), section.trimEnd(), ...(end < all.length ? ["", ...all.slice(end)] : [""])].join("\n");
  }
  fs.writeFileSync(doc, out);
  console.log(`updated ${doc}`);
}
