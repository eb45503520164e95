//! `sluice upload` against real servers: the `sluice` binary itself (killed, restarted,
//! with authorization, under admission limits) and `@tus/server` from npm.
//!
//! Every run uses its own `--state-dir`, never the user's cache.
#![allow(clippy::unwrap_used, missing_docs)]

use crate::blackbox;

use blackbox::{data, sha, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

/// `sluice upload --endpoint URL --state-dir STATE ARGS...`.
fn upload(endpoint: &str, state: &Path, args: &[&str]) -> Command {
    let mut cmd = sluice();
    cmd.args(["upload", "--endpoint", endpoint, "--state-dir"]).arg(state).args(args);
    cmd.env_remove("SLUICE_ENDPOINT").env_remove("SLUICE_TOKEN");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run sluice upload");
    eprintln!("stderr of {cmd:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(str::to_string).collect()
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout_lines(out).iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

fn endpoint(server: &Server) -> String {
    format!("http://{}/files/", server.addr)
}

/// The path part of an absolute upload URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    &rest[rest.find('/').unwrap()..]
}

/// The bytes of a completed upload, from `GET`.
fn download(server: &Server, url: &str) -> Vec<u8> {
    let mut stream = server.connect();
    blackbox::send_head(&mut stream, "GET", path_of(url), &[], None);
    read_binary(&mut stream)
}

fn read_binary(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains(" 200 "), "GET answered {line:?}");
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    body
}

/// The status of `HEAD url`.
fn head_status(server: &Server, url: &str) -> u16 {
    let mut stream = server.connect();
    blackbox::send_head(&mut stream, "HEAD", path_of(url), &[], None);
    blackbox::read_reply(&mut stream, true).status
}

/// A counter from `/metrics` (summed over labels matching `labels`, e.g. `method="POST"`).
fn metric(server: &Server, name: &str, labels: &[&str]) -> f64 {
    let text = server.request("GET", "/metrics", &[], b"").body;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn write_files(dir: &Path, sizes: &[(&str, usize)]) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    sizes
        .iter()
        .enumerate()
        .map(|(i, (name, len))| {
            let path = dir.join(name);
            let bytes = data(*len, i as u64 + 1);
            std::fs::write(&path, &bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Starts the binary on a given address (to restart it where the client expects it).
fn start_at(data_dir: &Path, listen: &str, flags: &[&str]) -> Server {
    let mut cmd = sluice();
    cmd.args(["serve", "--listen", listen, "--data-dir"]).arg(data_dir).args(flags);
    let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).spawn().expect("start sluice");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("listening line");
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("odd line {line:?}"));
    Server { addr: addr.to_string(), child, ops: None }
}

#[test]
fn a_directory_of_assorted_sizes_uploads_intact() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    let sizes = [
        ("empty.bin", 0),
        ("one.bin", 1),
        ("sniff-1.bin", 8191),
        ("sniff.bin", 8192),
        ("small.bin", 100_000),
        ("chunks.bin", 5 * MIB + 3),
        ("many-chunks.bin", 9 * MIB + 1),
    ];
    let files = write_files(&dir.path().join("files"), &sizes);
    let out = run(upload(&endpoint(&server), &dir.path().join("state"), &["--parallel", "3", "--chunk-size", "1MiB"])
        .arg(dir.path().join("files")));
    assert_eq!(out.status.code(), Some(0));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    for (path, bytes) in &files {
        let want = format!("{}\t", path.display());
        let line = lines.iter().find(|l| l.starts_with(&want)).unwrap_or_else(|| panic!("no line for {want}"));
        let url = &line[want.len()..];
        assert!(url.starts_with(&endpoint(&server)), "{url}");
        assert_eq!(sha(&download(&server, url)), sha(bytes), "{}", path.display());
    }
    // Plain progress lines (stderr is not a terminal), and no reasons.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("many-chunks.bin: 100% of 9.0 MiB"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(metric(&server, "sluice_uploads_completed_total", &[]), files.len() as f64);
}

#[test]
fn refused_files_are_reported_with_the_core_reason_and_cost_no_creation() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "max_file_size = \"1 MiB\"\nallowed_types = [\"image/png\"]\n").unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&policy));
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut big = PNG.to_vec();
    big.resize(2 * MIB, 7);
    std::fs::write(files.join("big.png"), &big).unwrap();
    std::fs::write(files.join("notes.txt"), b"plain words\n").unwrap();
    let mut good = PNG.to_vec();
    good.extend_from_slice(&data(50_000, 3));
    std::fs::write(files.join("good.png"), &good).unwrap();

    let out = run(upload(&endpoint(&server), &dir.path().join("state"), &[]).arg(&files));
    assert_eq!(out.status.code(), Some(1), "a refused file makes the run fail");
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{}\t", files.join("good.png").display())));
    // The same code and words as the core (and so the server and the browser).
    let core = sluice_core::Policy::from_toml(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    let too_big = core.check_file(Some("big.png"), big.len() as u64, &big).unwrap_err();
    let wrong_type = core.check_file(Some("notes.txt"), 12, b"plain words\n").unwrap_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, r) in [("big.png", too_big), ("notes.txt", wrong_type)] {
        let line = format!("{}: {}: {}", files.join(name).display(), r.reason.code(), r.message);
        assert!(stderr.lines().any(|l| l == line), "missing {line:?} in\n{stderr}");
    }
    // One creation reached the server: the good file's.
    assert_eq!(metric(&server, "sluice_requests_total", &["method=\"POST\""]), 1.0);
    assert_eq!(metric(&server, "sluice_uploads_created_total", &[]), 1.0);
    assert_eq!(metric(&server, "sluice_rejections_total", &[]), 0.0);
}

#[test]
fn killed_server_and_client_resume_on_rerun_and_send_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir, None);
    let addr = server.addr.clone();
    let files =
        write_files(&dir.path().join("files"), &[("a.bin", 48 * MIB), ("b.bin", 48 * MIB), ("c.bin", 48 * MIB)]);
    let state = dir.path().join("state");
    let cmd = |server: &Server| {
        let mut cmd = upload(&endpoint(server), &state, &["--json", "--parallel", "1", "--chunk-size", "1MiB"]);
        cmd.arg(dir.path().join("files"));
        cmd
    };
    let mut client = cmd(&server).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Kill both once the second file is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(&server, "sluice_received_bytes_total", &[]) < (48 + 8) as f64 * MIB as f64 {
        assert!(Instant::now() < deadline, "the upload did not get going");
        assert!(client.try_wait().unwrap().is_none(), "the client finished before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    kill(&mut client);

    let server = start_at(&data_dir, &addr, &[]);
    let out = run(&mut cmd(&server));
    assert_eq!(out.status.code(), Some(0));
    let results = json_lines(&out);
    assert_eq!(results.len(), 3, "{results:?}");
    let mut resent = 0;
    for (path, bytes) in &files {
        let r = results.iter().find(|r| r["file"] == path.display().to_string()).unwrap();
        let size = r["size"].as_u64().unwrap();
        let from = r["resumed_from"].as_u64().unwrap();
        resent += size - from;
        assert_eq!(sha(&download(&server, r["url"].as_str().unwrap())), sha(bytes), "{}", path.display());
    }
    let by_name = |n: &str| results.iter().find(|r| r["file"].as_str().unwrap().ends_with(n)).unwrap();
    assert_eq!(by_name("a.bin")["resumed_from"], 48 * MIB, "the first file was complete");
    let b = by_name("b.bin")["resumed_from"].as_u64().unwrap();
    assert!(b > 0 && b < 48 * MIB as u64, "the second file resumed mid-way ({b})");
    assert_eq!(by_name("c.bin")["resumed_from"], 0);
    // What the restarted server received is exactly what it lacked, and only the third file
    // was created anew.
    assert_eq!(metric(&server, "sluice_received_bytes_total", &[]), resent as f64);
    assert_eq!(metric(&server, "sluice_uploads_created_total", &[]), 1.0);

    // Once more: everything is there, nothing is sent, the same URLs come back.
    let again = run(&mut cmd(&server));
    assert_eq!(again.status.code(), Some(0));
    for r in json_lines(&again) {
        assert_eq!(r["resumed_from"], r["size"]);
        assert!(results.iter().any(|first| first["url"] == r["url"]));
    }
    assert_eq!(metric(&server, "sluice_received_bytes_total", &[]), resent as f64);
}

#[test]
fn a_server_restarted_mid_upload_is_waited_for_by_the_running_client() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir, None);
    let addr = server.addr.clone();
    let files = write_files(&dir.path().join("files"), &[("big.bin", 96 * MIB)]);
    let client = upload(&endpoint(&server), &dir.path().join("state"), &["--json", "--chunk-size", "4MiB"])
        .arg(&files[0].0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while metric(&server, "sluice_received_bytes_total", &[]) < (16 * MIB) as f64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let server = start_at(&data_dir, &addr, &[]);
    let out = client.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("network_error"), "the outage was reported as a retry: {stderr}");
    let r = &json_lines(&out)[0];
    assert_eq!(sha(&download(&server, r["url"].as_str().unwrap())), sha(&files[0].1));
    // The restarted server got only what it lacked (at most the chunk cut by the kill again).
    let received = metric(&server, "sluice_received_bytes_total", &[]);
    assert!(received <= (96 - 16 + 4) as f64 * MIB as f64, "received {received}");
}

#[test]
fn a_changed_file_starts_afresh_and_only_an_unfinished_old_upload_is_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    let path = dir.path().join("f.bin");
    let state = dir.path().join("state");
    let upload_json = |path: &Path| {
        let out = run(upload(&endpoint(&server), &state, &["--json"]).arg(path));
        assert_eq!(out.status.code(), Some(0));
        json_lines(&out).remove(0)
    };
    // A finished upload of the old content is left alone.
    std::fs::write(&path, data(2 * MIB, 1)).unwrap();
    let finished = upload_json(&path)["url"].as_str().unwrap().to_string();
    let changed = data(2 * MIB, 2); // same size, other bytes
    std::fs::write(&path, &changed).unwrap();
    let r = upload_json(&path);
    assert_ne!(r["url"].as_str().unwrap(), finished);
    assert_eq!(r["resumed_from"], 0);
    assert_eq!(sha(&download(&server, r["url"].as_str().unwrap())), sha(&changed));
    assert_eq!(head_status(&server, &finished), 200, "the finished upload is kept");

    // An unfinished one (the client killed mid-way) is terminated.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, data(48 * MIB, 3)).unwrap();
    let mut client = upload(&endpoint(&server), &state, &["--chunk-size", "1MiB"])
        .arg(&big)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before = metric(&server, "sluice_received_bytes_total", &[]);
    while metric(&server, "sluice_received_bytes_total", &[]) < before + (8 * MIB) as f64 {
        assert!(client.try_wait().unwrap().is_none(), "finished before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(&mut client);
    let records: Vec<Value> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    let unfinished = records
        .iter()
        .find(|r| r["fingerprint"]["path"].as_str().unwrap().ends_with("big.bin"))
        .and_then(|r| r["url"].as_str())
        .unwrap()
        .to_string();
    std::fs::write(&big, data(48 * MIB, 4)).unwrap();
    let r = upload_json(&big);
    assert_eq!(r["resumed_from"], 0);
    assert_eq!(head_status(&server, &unfinished), 410, "the unfinished upload is terminated");
}

#[test]
fn busy_and_rate_limited_answers_are_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    // One upload per client at a time (429 too_many_uploads + Retry-After: 1) while three
    // files go up at once.
    let server = Server::start_with(&dir.path().join("data"), None, &["--max-uploads-per-client", "1"]);
    write_files(&dir.path().join("files"), &[("a.bin", 24 * MIB), ("b.bin", 24 * MIB), ("c.bin", 24 * MIB)]);
    let out =
        run(upload(&endpoint(&server), &dir.path().join("state"), &["--parallel", "3"]).arg(dir.path().join("files")));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too_many_uploads: At most 1 uploads per client"), "{stderr}");
    assert!(stderr.contains("retrying in 1.0 s"), "Retry-After: 1 is what is waited: {stderr}");
    assert!(metric(&server, "sluice_rejections_total", &["too_many_uploads"]) >= 1.0);
    for line in stdout_lines(&out) {
        let (file, url) = line.split_once('\t').unwrap();
        assert_eq!(sha(&download(&server, url)), sha(&std::fs::read(file).unwrap()));
    }
    drop(server);

    // A memory budget smaller than two uploads: 503 server_busy + Retry-After.
    let server = Server::start_with(&dir.path().join("data2"), None, &["--memory-budget", "1MiB"]);
    let out =
        run(upload(&endpoint(&server), &dir.path().join("state2"), &["--parallel", "3"]).arg(dir.path().join("files")));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server_busy: "), "{stderr}");
    assert_eq!(stdout_lines(&out).len(), 3);
}

#[test]
fn tokens_open_an_authorized_server() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "an-auth-secret-of-at-least-32-bytes-long";
    let server = Server::start_with(&dir.path().join("data"), None, &["--auth-secret", secret]);
    let files = write_files(&dir.path().join("files"), &[("a.bin", 3 * MIB)]);
    let minted = sluice().args(["token", "--sub", "alice", "--auth-secret", secret]).output().unwrap();
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_string();

    let without = run(upload(&endpoint(&server), &dir.path().join("state"), &[]).arg(&files[0].0));
    assert_eq!(without.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&without.stderr).contains(": unauthorized: "));

    let with = run(upload(&endpoint(&server), &dir.path().join("state"), &["--token", &token]).arg(&files[0].0));
    assert_eq!(with.status.code(), Some(0));
    // From the environment too.
    let mut cmd = upload(&endpoint(&server), &dir.path().join("state-env"), &[]);
    let from_env = run(cmd.env("SLUICE_TOKEN", &token).arg(&files[0].0));
    assert_eq!(from_env.status.code(), Some(0));
    assert_eq!(metric(&server, "sluice_uploads_completed_total", &[]), 2.0);
}

#[test]
fn parts_are_joined_when_the_server_concatenates_and_sent_whole_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    let files = write_files(&dir.path().join("files"), &[("parts.bin", 10 * MIB + 5)]);
    let options = server.request("OPTIONS", "/files/", &[], b"");
    let concatenation = options.header("tus-extension").unwrap_or("").split(',').any(|e| e.trim() == "concatenation");
    let out =
        run(upload(&endpoint(&server), &dir.path().join("state"), &["--json", "--parts", "4", "--chunk-size", "1MiB"])
            .arg(&files[0].0));
    assert_eq!(out.status.code(), Some(0));
    let r = &json_lines(&out)[0];
    assert_eq!(r["parts"], if concatenation { 4 } else { 1 });
    assert_eq!(sha(&download(&server, r["url"].as_str().unwrap())), sha(&files[0].1));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["upload", "a.bin"][..],
        &["upload", "--endpoint", "http://127.0.0.1:9/files/"],
        &["upload", "--endpoint", "http://127.0.0.1:9/files/", "--parallel", "0", "a.bin"],
        &["upload", "--endpoint", "http://127.0.0.1:9/files/", "--checksum", "md5", "a.bin"],
        &["upload", "--endpoint", "http://127.0.0.1:9/files/", "--chunk-size", "0", "a.bin"],
    ] {
        let out = sluice().args(args).env_remove("SLUICE_ENDPOINT").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = sluice().args(["upload", "a.bin"]).env("SLUICE_ENDPOINT", "not a url").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("not a url: invalid_options: "));
}

/// `@tus/server` (npm, with its file store) on an ephemeral port, from `tests/node_modules`.
struct TusNode {
    child: Child,
    addr: String,
}

impl TusNode {
    fn start(store: &Path) -> TusNode {
        let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests");
        assert!(
            tests.join("node_modules/@tus/server").exists(),
            "@tus/server is missing: run `cargo xtask setup` (npm ci in tests/)"
        );
        let script = r#"
            import http from "node:http";
            import { Server } from "@tus/server";
            import { FileStore } from "@tus/file-store";
            const tus = new Server({ path: "/files", datastore: new FileStore({ directory: process.argv[1] }) });
            const server = http.createServer((req, res) => tus.handle(req, res));
            server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
        "#;
        let mut child = Command::new("node")
            .args(["--input-type=module", "-e", script])
            .arg(store)
            .current_dir(&tests)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_string();
        TusNode { child, addr }
    }
}

impl Drop for TusNode {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

#[test]
fn the_same_upload_works_against_tus_node_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let tus = TusNode::start(&store);
    let endpoint = format!("http://{}/files", tus.addr);
    let files = write_files(&dir.path().join("files"), &[("a.bin", 0), ("b.bin", 70_000), ("c.bin", 6 * MIB + 1)]);
    let state = dir.path().join("state");
    let out =
        run(upload(&endpoint, &state, &["--json", "--parts", "3", "--chunk-size", "1MiB"])
            .arg(dir.path().join("files")));
    assert_eq!(out.status.code(), Some(0));
    let results = json_lines(&out);
    assert_eq!(results.len(), 3);
    for (path, bytes) in &files {
        let r = results.iter().find(|r| r["file"] == path.display().to_string()).unwrap();
        assert_eq!(r["parts"], 1, "@tus/server's file store offers no concatenation: sent whole");
        let id = r["url"].as_str().unwrap().rsplit('/').next().unwrap();
        assert_eq!(sha(&std::fs::read(store.join(id)).unwrap()), sha(bytes), "{}", path.display());
    }
    // It takes no checksums: asking for one is refused before any upload.
    let out = run(upload(&endpoint, &state, &["--checksum", "sha256"]).arg(&files[1].0));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported: The server does not accept sha256 checksums"));
    // Resuming: run again, nothing to send, the same URLs.
    let again = run(upload(&endpoint, &state, &["--json"]).arg(dir.path().join("files")));
    assert_eq!(again.status.code(), Some(0));
    for r in json_lines(&again) {
        assert_eq!(r["resumed_from"], r["size"]);
        assert!(results.iter().any(|first| first["url"] == r["url"]));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
