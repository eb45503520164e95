//! Operations against the real binary: the memory budget, the per-client
//! cap, idle bodies, graceful shutdown, a full disk, and the metrics that
//! report them.

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use blackbox::*;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Opens a PATCH for `total` bytes, sends `sent` of them, and leaves it hanging.
fn stall(server: &Server, path: &str, file: &[u8], sent: usize) -> TcpStream {
    let mut stream = server.connect();
    send_head(&mut stream, "PATCH", path, &patch_headers(0), Some(file.len()));
    stream.write_all(&file[..sent]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Polls until `check` holds (bounded: 10 s), so tests wait on state, not on time.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never happened: {what}");
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = server.request("GET", "/metrics", &[], b"").body;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn in_flight(server: &Server) -> f64 {
    metric(server, "sluice_uploads_in_flight")
}

#[test]
fn past_the_memory_budget_new_uploads_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    // 640 KiB = exactly one streaming upload: 256 KiB of write buffers + 384 KiB of actix buffers.
    let server = Server::start_with(dir.path(), None, &["--memory-budget", "640 KiB"]);
    let file = data(4000, 1);
    let (a, b) = (server.create(4000), server.create(4000));
    let mut holder = stall(&server, &a, &file, 1000);
    eventually("the first upload is streaming", || in_flight(&server) == 1.0);

    let refused = server.patch(&b, 0, &file);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(refused.body.contains("server_busy"));
    assert_eq!(refused.header("connection"), Some("close"), "an unread body is not drained through actix's buffers");
    assert_eq!(server.request("GET", "/readyz", &[], b"").status, 503, "not ready while the budget is in use");
    assert_eq!(server.offset(&b), 0, "the refused upload has nothing written");

    holder.write_all(&file[1000..]).unwrap();
    assert_eq!(read_response(&mut holder).status, 204);
    assert_eq!(server.patch(&b, 0, &file).status, 204, "the retry goes through once the budget is free");
    assert_eq!(stored(dir.path(), &b), file);
    // The refused PATCH and the readiness probe that said "busy".
    assert_eq!(metric(&server, "sluice_rejections_total{reason=\"server_busy\"}"), 2.0);
}

#[test]
fn one_client_cannot_hold_more_uploads_than_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--max-uploads-per-client", "1"]);
    let file = data(4000, 2);
    let (a, b) = (server.create(4000), server.create(4000));
    let mut holder = stall(&server, &a, &file, 10);
    eventually("the first upload is streaming", || in_flight(&server) == 1.0);
    let refused = server.patch(&b, 0, &file);
    assert_eq!((refused.status, refused.header("retry-after")), (429, Some("1")), "{refused:?}");
    assert!(refused.body.contains("too_many_uploads"));
    holder.write_all(&file[10..]).unwrap();
    assert_eq!(read_response(&mut holder).status, 204);
    assert_eq!(server.patch(&b, 0, &file).status, 204);
}

#[test]
fn a_stalled_body_is_cut_off_and_keeps_what_arrived_while_others_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--idle-timeout", "1s"]);
    let file = data(5000, 3);
    let slow = server.create(5000);
    let mut slowloris = stall(&server, &slow, &file, 1000);
    let other = server.create(5000);
    assert_eq!(server.patch(&other, 0, &file).status, 204, "other uploads are unaffected");

    let cut = read_response(&mut slowloris);
    assert_eq!(cut.status, 408, "{cut:?}");
    assert!(cut.body.contains("idle_timeout"));
    assert_eq!(server.offset(&slow), 1000, "what arrived is kept");
    assert_eq!(server.patch(&slow, 1000, &file[1000..]).status, 204);
    assert_eq!(stored(dir.path(), &slow), file);
}

#[test]
fn sigterm_ends_in_flight_uploads_after_the_grace_period_keeping_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--shutdown-grace", "1s", "--idle-timeout", "60s"]);
    let file = data(3 << 20, 4);
    let up = server.create(file.len() as u64);
    let sent = 1 << 20;
    let mut stream = stall(&server, &up, &file, sent);
    eventually("the upload is streaming", || in_flight(&server) == 1.0);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let ended = read_response(&mut stream);
    assert_eq!(ended.status, 503, "{ended:?}");
    assert_eq!(ended.header("retry-after"), Some("1"));
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
    drop(server);

    let server = Server::start(dir.path(), None);
    assert_eq!(server.offset(&up), sent as u64, "every byte that arrived was kept");
    assert_eq!(server.patch(&up, sent as u64, &file[sent..]).status, 204);
    assert_eq!(sha(&stored(dir.path(), &up)), sha(&file));
}

/// A small real file system for the disk-full tests; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root (the test suite runs as root)");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_answers_507_keeps_what_was_written_and_resumes_after_space_is_freed() {
    // 6 MiB, of which the record store sets 1 MiB aside for records when the disk fills.
    let disk = SmallDisk::new("6m");
    let server = Server::start_with(disk.path(), None, &["--disk-reserve", "0"]);

    let too_big = server.request("POST", "/files/", &[("Upload-Length", (16u64 << 20).to_string())], b"");
    assert_eq!(too_big.status, 507, "an upload that cannot fit is refused at creation: {too_big:?}");
    assert!(too_big.body.contains("storage_full"));

    let first = data(3 << 19, 5);
    let second = data(3 << 19, 6);
    let a = server.create(first.len() as u64);
    let b = server.create(second.len() as u64);
    assert_eq!(server.patch(&a, 0, &first).status, 204);
    // Something other than Sluice fills the disk after both uploads were admitted.
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    let full = server.patch(&b, 0, &second);
    assert_eq!(full.status, 507, "running out of space mid-way: {full:?}");
    let kept = server.offset(&b);
    assert!(kept > 0 && kept < second.len() as u64, "kept {kept}");
    assert_eq!(stored(disk.path(), &b), &second[..kept as usize], "nothing corrupted");
    assert_eq!(stored(disk.path(), &a), first, "other uploads unaffected");

    assert_eq!(server.request("DELETE", &a, &[], b"").status, 204, "free space");
    assert_eq!(server.patch(&b, kept, &second[kept as usize..]).status, 204, "resumes after space is freed");
    assert_eq!(sha(&stored(disk.path(), &b)), sha(&second));
    drop(server);
}

#[test]
fn declared_bytes_never_promise_more_than_the_disk_holds() {
    let disk = SmallDisk::new("8m");
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(policy.path(), "upload_expiry = \"2s\"\n").unwrap();
    let server =
        Server::start_with(disk.path(), Some(policy.path()), &["--disk-reserve", "0", "--expiry-interval", "1s"]);
    // Three clients each declare 3 MiB on a disk of 8: the third would overcommit.
    let one = server.create(3 << 20);
    let two = server.create(3 << 20);
    let three = server.request("POST", "/files/", &[("Upload-Length", (3u64 << 20).to_string())], b"");
    assert_eq!(three.status, 507, "the upload that would overcommit is refused at creation: {three:?}");
    assert!(three.body.contains("storage_full"), "{three:?}");
    // The admitted ones finish: their space was kept for them.
    assert_eq!(server.patch(&one, 0, &data(3 << 20, 1)).status, 204);
    // The second is abandoned; once it expires, its promise is released.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(server.request("GET", &two, &[], b"").status, 410, "expired");
    let again = server.request("POST", "/files/", &[("Upload-Length", (3u64 << 20).to_string())], b"");
    assert_eq!(again.status, 201, "space promised to an expired upload is available again: {again:?}");
}

#[test]
fn metrics_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let file = data(1000, 7);
    let a = server.create(1000);
    assert_eq!(server.patch(&a, 0, &file[..400]).status, 204);
    assert_eq!(server.patch(&a, 0, &file[..400]).status, 409);
    assert_eq!(server.patch(&a, 400, &file[400..]).status, 204);
    let b = server.create(10);
    assert_eq!(server.request("DELETE", &b, &[], b"").status, 204);
    assert_eq!(server.request("POST", "/files/", &[], b"").status, 400);

    assert_eq!(metric(&server, "sluice_uploads_created_total"), 2.0);
    assert_eq!(metric(&server, "sluice_uploads_completed_total"), 1.0);
    assert_eq!(metric(&server, "sluice_uploads_terminated_total"), 1.0);
    assert_eq!(metric(&server, "sluice_received_bytes_total"), 1000.0, "a refused body is never read");
    assert_eq!(metric(&server, "sluice_uploads_in_flight"), 0.0);
    assert_eq!(metric(&server, "sluice_rejections_total{reason=\"offset_mismatch\"}"), 1.0);
    assert_eq!(metric(&server, "sluice_rejections_total{reason=\"upload_length_required\"}"), 1.0);
    assert_eq!(
        metric(
            &server,
            "sluice_requests_total{route=\"/files/{id}\",method=\"PATCH\",status=\"204\",protocol=\"tus\"}"
        ),
        2.0
    );
    assert!(metric(&server, "sluice_resident_memory_bytes") > 1e6);
    assert_eq!(metric(&server, "sluice_memory_budget_bytes"), (64u64 << 20) as f64);
    assert!(metric(&server, "sluice_storage_available_bytes") > 0.0);
    assert_eq!(server.request("GET", "/readyz", &[], b"").status, 200);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--header-timeout", "1s"]);
    let mut stalled = server.connect();
    stalled.write_all(b"PATCH /files/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: x\r\n").unwrap();
    let cut = read_response(&mut stalled);
    assert_eq!(cut.status, 408, "{cut:?}");
    assert_eq!(server.request("GET", "/healthz", &[], b"").status, 200, "the server goes on");
}

#[test]
fn a_keep_alive_connection_that_trickles_its_next_head_is_cut_off_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--header-timeout", "1s"]);
    let mut conn = server.connect();
    conn.write_all(b"GET /policy HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut conn, false).status, 200, "the first request is served; the connection stays open");
    // The next head starts and never ends: a header line every 200 ms, for up to 15 s.
    conn.write_all(b"GET /policy HTTP/1.1\r\nHost: x\r\n").unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut closed = false;
    for _ in 0..75 {
        let mut buf = [0u8; 64];
        match std::io::Read::read(&mut conn, &mut buf) {
            Ok(0) => closed = true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => closed = true,
        }
        if closed || conn.write_all(b"X-Slow: 1\r\n").is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the server kept a trickling head open for 15 s");
    assert_eq!(metric(&server, "sluice_connections_refused_total{reason=\"header_timeout\"}"), 1.0);

    // The first head's timeout (answered 408 by actix) and a malformed head are counted too.
    let mut stalled = server.connect();
    stalled.write_all(b"GET /policy HTTP/1.1\r\n").unwrap();
    assert_eq!(read_response(&mut stalled).status, 408);
    let mut garbage = server.connect();
    garbage.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut garbage).status, 400);
    assert_eq!(metric(&server, "sluice_connections_refused_total{reason=\"header_timeout\"}"), 2.0);
    assert_eq!(metric(&server, "sluice_connections_refused_total{reason=\"malformed_head\"}"), 1.0);
}

/// Whether a GET /policy from `source` on a fresh connection is answered 200.
fn answered(server: &Server, source: &str) -> bool {
    let mut conn = server.connect_from(source);
    let _ = conn.write_all(b"GET /policy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut reply = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut reply);
    reply.starts_with(b"HTTP/1.1 200")
}

#[test]
fn one_address_past_its_connection_cap_is_closed_at_once_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--max-connections-per-client", "3"]);
    let held: Vec<TcpStream> = (0..3).map(|_| server.connect_from("127.0.0.1")).collect();
    let open_now = || metric_from(&server, "127.0.0.2", "sluice_connections_open");
    // The three held connections and the probe itself.
    eventually("three held connections are admitted", || open_now() == 4.0);
    assert!(!answered(&server, "127.0.0.1"), "a fourth connection is closed without an answer");
    assert!(answered(&server, "127.0.0.2"), "another address is served");
    assert_eq!(
        metric_from(&server, "127.0.0.2", "sluice_connections_refused_total{reason=\"too_many_connections\"}"),
        1.0
    );
    drop(held);
    eventually("closed connections give their places back", || answered(&server, "127.0.0.1"));
}

fn metric_from(server: &Server, source: &str, name: &str) -> f64 {
    let text = request_on(server.connect_from(source), "GET", "/metrics", &[], b"").body;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn refusals_are_counted_even_without_request_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--no-request-metrics"]);
    assert_eq!(server.request("POST", "/files/", &[], b"").status, 400);
    assert_eq!(metric(&server, "sluice_rejections_total{reason=\"upload_length_required\"}"), 1.0);
    assert_eq!(metric(&server, "sluice_requests_total"), 0.0, "per-request series are off");
}
