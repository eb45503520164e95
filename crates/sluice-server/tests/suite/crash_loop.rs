//! Crash loop: the real `sluice` binary is SIGKILLed at random moments while
//! several resuming tus clients upload, restarted on the same data directory,
//! and the clients resume (HEAD, then PATCH from the offset) until every file
//! is in. Checked at every kill and at the end:
//!
//! - every byte on disk below an upload's length is the client's byte (no
//!   corruption), at the moment of the kill, before any repair;
//! - no acknowledged byte is lost: after a restart, HEAD reports at least the
//!   offset the last `204` acknowledged;
//! - every upload a client started finishes (none stuck) and its sha256,
//!   downloaded and on disk, is the file's.
//!
//! Default: 20 kills, bounded to well under a minute. `SLUICE_LONG=1` runs
//! 300 kills (`SLUICE_CRASH_KILLS=N` sets any count); `SLUICE_CRASH_SEED=S`
//! replays a schedule.

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use blackbox::{data, sha};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--takeover-wait", "5s", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sluice");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("listening line");
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("odd first line {line:?}"));
    (child, addr.to_string())
}

/// A response, with its body as bytes.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request over a fresh connection; any I/O failure (the server was
/// killed) is an error the client retries, never a panic.
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    pace: bool,
) -> io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: crash\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    for piece in body.chunks(64 << 10) {
        stream.write_all(piece)?;
        if pace {
            // Spread a body over time so that kills land in the middle of it.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(io::ErrorKind::InvalidData)?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((n, v)) = trimmed.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = if method == "HEAD" {
        0
    } else {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap())
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Reply { status, headers, body })
}

/// One upload a client has been told about (it holds a Location).
struct Tracked {
    id: String,
    file: Arc<Vec<u8>>,
    /// The highest offset a `204` acknowledged.
    acked: u64,
    done: bool,
}

struct Shared {
    addr: RwLock<String>,
    dir: PathBuf,
    uploads: Mutex<Vec<Tracked>>,
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
    requests: AtomicU64,
    interrupted: AtomicU64,
}

impl Shared {
    fn addr(&self) -> String {
        self.addr.read().unwrap().clone()
    }

    fn fail(&self, why: String) {
        self.failures.lock().unwrap().push(why);
    }

    fn call(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8], pace: bool) -> Option<Reply> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match exchange(&self.addr(), method, path, headers, body, pace) {
            Ok(res) => Some(res),
            Err(_) => {
                self.interrupted.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20)); // the server is restarting
                None
            }
        }
    }
}

/// How a client sends its file: the ways real clients do it.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// One PATCH with everything left, streamed (tus-js-client with no chunkSize).
    Stream,
    /// 512 KiB PATCHes, each with a sha256 `Upload-Checksum` (all or nothing).
    ChecksummedChunks,
    /// creation-with-upload of the first 256 KiB, then 1 MiB PATCHes.
    CreateWithBody,
}

fn location_path(res: &Reply) -> Option<String> {
    let location = res.header("location")?;
    Some(location[location.find("/files/")?..].to_string())
}

fn offset_header(res: &Reply) -> Option<u64> {
    res.header("upload-offset")?.parse().ok()
}

/// Uploads files one after another until told to stop, resuming through kills.
fn client(shared: &Shared, index: u64, seed: u64) -> u64 {
    let style = [Style::Stream, Style::ChecksummedChunks, Style::CreateWithBody][index as usize % 3];
    let mut rng = Rng(seed ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut finished = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let len = (1 << 20) + rng.below(5 << 20) as usize;
        let file = Arc::new(data(len, rng.next()));
        if upload(shared, style, &file) {
            finished += 1;
        }
    }
    finished
}

/// One file, start to finish; `false` if it was abandoned because the run ended
/// before it was created.
fn upload(shared: &Shared, style: Style, file: &Arc<Vec<u8>>) -> bool {
    let len = file.len() as u64;
    let first = match style {
        Style::CreateWithBody => (256 << 10).min(file.len()),
        _ => 0,
    };
    // Create; a creation cut by a kill is simply tried again (the orphan, if
    // any, was never given to the client and expires).
    let path = loop {
        if shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        let mut headers = vec![("Upload-Length", len.to_string())];
        if first > 0 {
            headers.push(("Content-Type", "application/offset+octet-stream".into()));
        }
        let Some(res) = shared.call("POST", "/files/", &headers, &file[..first], false) else { continue };
        match (res.status, location_path(&res)) {
            (201, Some(path)) => {
                let acked = offset_header(&res).unwrap_or(0);
                let id = path.rsplit('/').next().unwrap().to_string();
                shared.uploads.lock().unwrap().push(Tracked { id, file: file.clone(), acked, done: false });
                break path;
            }
            (status, _) => shared.fail(format!("creation answered {status}: {}", res.text())),
        }
    };
    let id = path.rsplit('/').next().unwrap().to_string();
    let started = Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(240) {
            shared.fail(format!("upload {id} stuck for 240 s"));
            return false;
        }
        let Some(head) = shared.call("HEAD", &path, &[], b"", false) else { continue };
        if head.status != 200 {
            shared.fail(format!("HEAD {id} answered {}", head.status));
            return false;
        }
        let offset = offset_header(&head).unwrap();
        let acked = acked_of(shared, &id);
        if offset < acked {
            shared.fail(format!("upload {id}: offset {offset} after a restart, but {acked} was acknowledged"));
        }
        if offset == len {
            break;
        }
        let end = match style {
            Style::Stream => len,
            Style::ChecksummedChunks => (offset + (512 << 10)).min(len),
            Style::CreateWithBody => (offset + (1 << 20)).min(len),
        };
        let chunk = &file[offset as usize..end as usize];
        let mut headers = vec![
            ("Content-Type", "application/offset+octet-stream".to_string()),
            ("Upload-Offset", offset.to_string()),
        ];
        if let Style::ChecksummedChunks = style {
            let mut hasher = sluice_core::Algorithm::Sha256.hasher();
            hasher.update(chunk);
            headers.push((
                "Upload-Checksum",
                sluice_core::tus::format_checksum(sluice_core::Algorithm::Sha256, &hasher.finalize()),
            ));
        }
        let Some(res) = shared.call("PATCH", &path, &headers, chunk, true) else { continue };
        match res.status {
            204 => {
                let now = offset_header(&res).unwrap();
                if now != end {
                    shared.fail(format!("upload {id}: PATCH to {end} acknowledged {now}"));
                }
                set_acked(shared, &id, now);
            }
            // A resumed client may meet what its own lost connection left.
            409 | 423 => {}
            status => {
                shared.fail(format!("PATCH {id} answered {status}: {}", res.text()));
                return false;
            }
        }
    }
    // Downloaded bytes are the file's.
    loop {
        let Some(res) = shared.call("GET", &path, &[], b"", false) else { continue };
        if res.status != 200 || sha(&res.body) != sha(file) {
            shared.fail(format!(
                "GET {id} answered {} with {} bytes that are not the file",
                res.status,
                res.body.len()
            ));
        }
        break;
    }
    let mut uploads = shared.uploads.lock().unwrap();
    if let Some(t) = uploads.iter_mut().find(|t| t.id == id) {
        t.done = true;
    }
    true
}

fn acked_of(shared: &Shared, id: &str) -> u64 {
    shared.uploads.lock().unwrap().iter().find(|t| t.id == id).map_or(0, |t| t.acked)
}

fn set_acked(shared: &Shared, id: &str, offset: u64) {
    if let Some(t) = shared.uploads.lock().unwrap().iter_mut().find(|t| t.id == id) {
        t.acked = t.acked.max(offset);
    }
}

/// With the server dead and before any repair: every byte on disk is the
/// client's, and no acknowledged byte is missing.
fn check_disk(shared: &Shared, kill: u32) {
    let uploads = shared.uploads.lock().unwrap();
    for t in uploads.iter() {
        let path = shared.dir.join("uploads").join(format!("{}.bin", t.id));
        let Ok(stored) = std::fs::read(&path) else {
            shared.fail(format!("kill {kill}: {} has no data file", t.id));
            continue;
        };
        if stored.len() > t.file.len() || stored[..] != t.file[..stored.len()] {
            shared.fail(format!("kill {kill}: {} holds {} bytes that are not the file's", t.id, stored.len()));
        }
        if (stored.len() as u64) < t.acked {
            shared.fail(format!("kill {kill}: {} has {} bytes, {} were acknowledged", t.id, stored.len(), t.acked));
        }
    }
}

#[test]
fn sigkill_at_random_points_loses_and_corrupts_nothing() {
    let long = std::env::var_os("SLUICE_LONG").is_some();
    let kills: u32 =
        std::env::var("SLUICE_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(if long { 300 } else { 20 });
    let seed = std::env::var("SLUICE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("crash loop: {kills} kills, SLUICE_CRASH_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(dir.path());
    let shared = Arc::new(Shared {
        addr: RwLock::new(addr),
        dir: dir.path().to_path_buf(),
        uploads: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        requests: AtomicU64::new(0),
        interrupted: AtomicU64::new(0),
    });
    let clients: Vec<_> = (0..4u64)
        .map(|i| {
            let shared = shared.clone();
            std::thread::spawn(move || client(&shared, i, seed))
        })
        .collect();

    let began = Instant::now();
    let mut rng = Rng(seed);
    for kill in 1..=kills {
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        check_disk(&shared, kill);
        let (next, addr) = start(dir.path());
        child = next;
        *shared.addr.write().unwrap() = addr;
    }
    let killing = began.elapsed();
    shared.stop.store(true, Ordering::Relaxed);
    let finished: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    child.kill().unwrap();
    child.wait().unwrap();
    check_disk(&shared, kills + 1);

    // Every upload a client was given is complete, and its bytes are the file's.
    let uploads = shared.uploads.lock().unwrap();
    for t in uploads.iter() {
        if !t.done {
            shared.fail(format!("upload {} never finished", t.id));
            continue;
        }
        let stored = std::fs::read(dir.path().join("uploads").join(format!("{}.bin", t.id))).unwrap();
        if sha(&stored) != sha(&t.file) {
            shared.fail(format!("upload {}: sha256 differs", t.id));
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pending") || n.ends_with(".tmp"))
        .collect();
    // One more start repairs what the last kill left: no marker survives it.
    let (mut child, _) = start(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let after_repair: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pending") || n.ends_with(".tmp"))
        .collect();
    let bytes: usize = uploads.iter().map(|t| t.file.len()).sum();
    eprintln!(
        "crash loop: {kills} kills in {:.1}s; {} uploads ({finished} finished, {:.1} MiB) verified by sha256; \
         {} requests, {} cut or refused by a kill; markers left by the last kill: {leftovers:?}",
        killing.as_secs_f64(),
        uploads.len(),
        bytes as f64 / f64::from(1 << 20),
        shared.requests.load(Ordering::Relaxed),
        shared.interrupted.load(Ordering::Relaxed),
    );
    let failures = shared.failures.lock().unwrap();
    assert!(failures.is_empty(), "{} failure(s), seed {seed}:\n{}", failures.len(), failures.join("\n"));
    assert!(after_repair.is_empty(), "markers survive a restart: {after_repair:?}");
    assert!(finished as usize == uploads.len() && finished >= 4, "{finished} of {} uploads finished", uploads.len());
}

/// The state a SIGKILL leaves if it lands between `open` and `write` of the
/// all-or-nothing marker (`fs::write` creates the file, then writes the
/// offset): an empty `.pending`. No byte of that chunk can have been written
/// yet, so the upload is intact; the server must still start.
#[test]
fn an_empty_rollback_marker_left_by_a_kill_does_not_stop_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = blackbox::Server::start(dir.path(), None);
    let up = server.create(10);
    assert_eq!(server.patch(&up, 0, b"abcde").status, 204);
    server.kill();
    let id = up.rsplit('/').next().unwrap();
    std::fs::write(dir.path().join("uploads").join(format!("{id}.pending")), b"").unwrap();

    let server = blackbox::Server::start(dir.path(), None); // today: "Error: server failed", no listening line
    assert_eq!(server.offset(&up), 5);
    assert_eq!(blackbox::stored(dir.path(), &up), b"abcde");
}

/// A kill can leave a half-written record (`ID.json.tmp`) beside the record it was
/// replacing. Repairing that record at the next start writes through the same temporary
/// name, so when the directory listing reaches the leftover it may be gone: the start
/// must go on (it failed with "No such file or directory" before). Sixteen uploads, so
/// that some record comes before its leftover in the listing's order.
#[test]
fn half_written_records_left_by_a_kill_do_not_stop_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = blackbox::Server::start(dir.path(), None);
    let uploads: Vec<String> = (0..16).map(|_| server.create(10)).collect();
    for up in &uploads {
        assert_eq!(server.patch(up, 0, b"abcde").status, 204);
    }
    server.kill();
    let files = dir.path().join("uploads");
    for up in &uploads {
        let id = up.rsplit('/').next().unwrap();
        let record = files.join(format!("{id}.json"));
        std::fs::copy(&record, files.join(format!("{id}.json.tmp"))).unwrap();
        // Bytes received but not committed before the kill: the start keeps them and
        // rewrites the record.
        let mut data = std::fs::OpenOptions::new().append(true).open(files.join(format!("{id}.bin"))).unwrap();
        data.write_all(b"fg").unwrap();
    }

    let server = blackbox::Server::start(dir.path(), None);
    for up in &uploads {
        assert_eq!(server.offset(up), 7);
        assert_eq!(blackbox::stored(dir.path(), up), b"abcdefg");
    }
    let leftovers =
        std::fs::read_dir(&files).unwrap().filter(|e| e.as_ref().unwrap().path().extension() == Some("tmp".as_ref()));
    assert_eq!(leftovers.count(), 0, "half-written records are removed");
}

/// After a power loss the marker may reach the disk while the bytes written
/// before it did not. Rolling back must only ever shorten the data file.
#[test]
fn a_rollback_marker_past_the_data_never_pads_it_with_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let server = blackbox::Server::start(dir.path(), None);
    let up = server.create(10);
    assert_eq!(server.patch(&up, 0, b"abcde").status, 204);
    server.kill();
    let id = up.rsplit('/').next().unwrap();
    std::fs::write(dir.path().join("uploads").join(format!("{id}.pending")), b"9").unwrap();

    let server = blackbox::Server::start(dir.path(), None);
    assert_eq!(blackbox::stored(dir.path(), &up), b"abcde", "no zero bytes counted as received");
    assert_eq!(server.offset(&up), 5);
}
