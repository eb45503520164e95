//! Several `sluice serve --state postgres://…` processes sharing one database and one byte
//! store (a shared data directory, or with `SLUICE_TEST_S3` one Garage bucket), as behind a
//! load balancer: an upload moves freely
//! between instances, a reader on one stops a writer on another, a killed instance's
//! uploads resume on another with nothing acknowledged lost, and a database that goes
//! away answers 503 + Retry-After until it is back. Skipped (with a notice) without
//! `SLUICE_TEST_POSTGRES`; `SLUICE_LONG=1` runs 20 kills instead of 3.

use crate::blackbox;
use crate::common::pg;

use blackbox::{data, patch_headers, read_reply, read_response, send_head, sha, Server};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The lease of the instances under test: a killed instance's uploads resume after it.
const LEASE: &str = "1s";

/// One instance on PostgreSQL state, its bytes under `dir` (shared by the instances of a
/// test), or in the bucket of `SLUICE_TEST_S3` under a prefix named after `dir` when that
/// is set (`cargo xtask test` runs these tests once each way).
fn instance(dir: &Path, url: &str) -> Server {
    let mut flags = vec!["--state".to_string(), url.to_string(), "--workers".into(), "2".into()];
    flags.extend(["--lock-lease".into(), LEASE.into()]);
    if let Ok(bucket) = std::env::var("SLUICE_TEST_S3") {
        let prefix = dir.file_name().unwrap().to_string_lossy().trim_start_matches('.').to_string();
        flags.extend(["--storage".into(), format!("{}/instances-{prefix}", bucket.trim_end_matches('/'))]);
    }
    Server::start_with(dir, None, &flags.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The upload's bytes as an instance serves them (`GET`), wherever they are stored.
fn stored(server: &Server, path: &str) -> Vec<u8> {
    let res = server.request("GET", path, &[], b"");
    assert_eq!(res.status, 200, "GET {path}: {res:?}");
    res.bytes
}

async fn database(test: &str) -> Option<String> {
    Some(pg::fresh_schema(&pg::server_url(test)?).await)
}

fn upload_path(location_of: &Server, len: u64) -> String {
    location_of.create(len)
}

#[actix_web::test]
async fn an_upload_moves_between_instances_chunk_by_chunk() {
    let Some(url) = database("an_upload_moves_between_instances_chunk_by_chunk").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let servers = [instance(dir.path(), &url), instance(dir.path(), &url)];
    let file = data(300_000, 1);
    let path = upload_path(&servers[0], file.len() as u64);
    for (i, chunk) in file.chunks(40_000).enumerate() {
        let offset = (i * 40_000) as u64;
        let server = &servers[i % 2];
        assert_eq!(server.offset(&path), offset, "both instances see the same offset");
        let res = server.patch(&path, offset, chunk);
        assert_eq!(res.status, 204, "chunk {i} on instance {}: {res:?}", i % 2);
    }
    assert_eq!(servers[1].offset(&path), file.len() as u64);
    assert_eq!(sha(&stored(&servers[0], &path)), sha(&file));
}

#[actix_web::test]
async fn a_head_on_one_instance_stops_a_writer_on_another() {
    let Some(url) = database("a_head_on_one_instance_stops_a_writer_on_another").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (instance(dir.path(), &url), instance(dir.path(), &url));
    let file = data(1000, 2);
    let path = a.create(file.len() as u64);
    // A client on A sends 400 bytes of 1000 and goes quiet (its connection lost, say).
    let mut stalled = a.connect();
    send_head(&mut stalled, "PATCH", &path, &patch_headers(0), Some(file.len()));
    stalled.write_all(&file[..400]).unwrap();
    stalled.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Resuming through B: the HEAD asks A's writer to stop and reports where it stopped.
    let head = b.request("HEAD", &path, &[], b"");
    assert_eq!(head.status, 200, "{head:?}");
    let offset: u64 = head.header("upload-offset").unwrap().parse().unwrap();
    assert!(offset > 0 && offset <= 400, "A saved what it received: {offset}");
    let interrupted = read_response(&mut stalled);
    assert_eq!(interrupted.status, 409, "A's writer was stopped: {interrupted:?}");
    assert!(interrupted.body.contains("upload_interrupted"), "{interrupted:?}");
    let res = b.patch(&path, offset, &file[offset as usize..]);
    assert_eq!(res.status, 204, "{res:?}");
    assert_eq!(sha(&stored(&a, &path)), sha(&file));
}

/// One PATCH whose body is written in paced pieces (so a kill lands mid-body); the new
/// offset if it was acknowledged, `None` if the server went away.
fn paced_patch(addr: &str, path: &str, offset: u64, body: &[u8]) -> Option<u64> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: test\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    for piece in body.chunks(16 * 1024) {
        stream.write_all(piece).ok()?;
        std::thread::sleep(Duration::from_millis(3));
    }
    let mut reply = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut reply).ok()?;
    let text = String::from_utf8_lossy(&reply);
    if !text.starts_with("HTTP/1.1 204") {
        return None;
    }
    text.lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("upload-offset:").map(|v| v.trim().to_string()))?
        .parse()
        .ok()
}

#[actix_web::test]
async fn after_kill_9_the_upload_resumes_on_another_instance() {
    let Some(url) = database("after_kill_9_the_upload_resumes_on_another_instance").await else { return };
    let kills = if std::env::var("SLUICE_LONG").is_ok_and(|v| v == "1") { 20 } else { 3 };
    let dir = tempfile::tempdir().unwrap();
    let mut servers = [instance(dir.path(), &url), instance(dir.path(), &url)];
    for round in 0..kills {
        let (victim, survivor) = (round % 2, (round + 1) % 2);
        let file = data(1_500_000, 100 + round as u64);
        let path = servers[victim].create(file.len() as u64);
        // The client uploads in 256 KiB PATCHes on the victim; acknowledged offsets are recorded.
        let addr = servers[victim].addr.clone();
        let (client_path, client_file) = (path.clone(), file.clone());
        let client = std::thread::spawn(move || {
            let mut acked = 0u64;
            while acked < client_file.len() as u64 {
                let end = (acked as usize + 256 * 1024).min(client_file.len());
                match paced_patch(&addr, &client_path, acked, &client_file[acked as usize..end]) {
                    Some(offset) => acked = offset,
                    None => break,
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(150 + 97 * (round as u64 % 5)));
        let killed = std::mem::replace(&mut servers[victim], instance(dir.path(), &url));
        killed.kill();
        let acked = client.join().unwrap();

        // The client resumes on the survivor: HEAD waits out the dead writer's lease.
        let started = Instant::now();
        let offset = servers[survivor].offset(&path);
        assert!(offset >= acked, "round {round}: offset {offset} below acknowledged {acked}");
        assert!(started.elapsed() < Duration::from_secs(10), "the dead holder's lease lapsed");
        let res = servers[survivor].patch(&path, offset, &file[offset as usize..]);
        assert_eq!(res.status, 204, "round {round}: {res:?}");
        assert_eq!(sha(&stored(&servers[survivor], &path)), sha(&file), "round {round}: the stored file is the file");
    }
    eprintln!("{kills} kills, every upload resumed on the other instance with matching sha256");
}

#[actix_web::test]
async fn while_the_database_is_down_answers_are_503_and_nothing_is_lost() {
    if pg::server_url("while_the_database_is_down_answers_are_503_and_nothing_is_lost").is_none() {
        return;
    }
    let Some(db) = pg::PrivateServer::start() else { panic!("PostgreSQL is installed but cannot start") };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (instance(dir.path(), &db.url()), instance(dir.path(), &db.url()));
    let file = data(200_000, 3);
    let path = a.create(file.len() as u64);
    assert_eq!(a.patch(&path, 0, &file[..80_000]).status, 204);

    db.down();
    let patch = a.patch(&path, 80_000, &file[80_000..120_000]);
    let mut stream = b.connect();
    send_head(&mut stream, "HEAD", &path, &[], None);
    let head = read_reply(&mut stream, true);
    for res in [patch, head] {
        assert_eq!(res.status, 503, "while the database is down: {res:?}");
        assert!(res.header("retry-after").is_some(), "{res:?}");
    }
    assert_eq!(a.request("GET", "/readyz", &[], b"").status, 503);

    db.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    while [&a, &b].iter().any(|s| s.request("GET", "/readyz", &[], b"").status != 200) {
        assert!(Instant::now() < deadline, "ready again once the database is back");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(b.offset(&path), 80_000, "every acknowledged byte is there");
    assert_eq!(b.patch(&path, 80_000, &file[80_000..]).status, 204);
    assert_eq!(sha(&stored(&a, &path)), sha(&file));
}

/// Runs one step of `tests/interop/tus-js-client-step.mjs`: `(url, offset)` it reports.
fn tus_js_client(endpoint: &str, file: &Path, stop_at: Option<u64>, upload_url: Option<&str>) -> (String, u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/tus-js-client-step.mjs");
    let stop = stop_at.map_or("-".to_string(), |n| n.to_string());
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&script).arg(endpoint).arg(file).arg(stop);
    if let Some(url) = upload_url {
        cmd.arg(url);
    }
    let out = cmd.output().expect("node (tests/ needs `npm ci`: `cargo xtask setup`)");
    assert!(out.status.success(), "tus-js-client: {}", String::from_utf8_lossy(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the step prints JSON");
    (reply["url"].as_str().unwrap().to_string(), reply["offset"].as_u64().unwrap())
}

#[actix_web::test]
async fn tus_js_client_begins_on_one_instance_and_resumes_on_another() {
    let Some(url) = database("tus_js_client_begins_on_one_instance_and_resumes_on_another").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let servers = [instance(dir.path(), &url), instance(dir.path(), &url)];
    let bytes = data(5 * 1024 * 1024 + 4321, 7);
    let file = dir.path().join("across.bin");
    std::fs::write(&file, &bytes).unwrap();

    let (first, at) = tus_js_client(&format!("http://{}/files/", servers[0].addr), &file, Some(2 << 20), None);
    let path = first.split_once(&servers[0].addr).map(|(_, p)| p.to_string()).expect("a URL on instance A");
    let held = servers[1].offset(&path);
    assert!(held >= 2 << 20 && held <= at && held < bytes.len() as u64, "B sees {held} after A took {at}");

    // The same upload, through instance B: tus-js-client asks B for the offset and goes on.
    let on_b = format!("http://{}{path}", servers[1].addr);
    let (done, end) = tus_js_client(&format!("http://{}/files/", servers[1].addr), &file, None, Some(&on_b));
    assert_eq!((done.as_str(), end), (on_b.as_str(), bytes.len() as u64));
    assert_eq!(sha(&stored(&servers[0], &path)), sha(&bytes), "read back through A");
}

#[actix_web::test]
async fn busy_workers_keep_to_the_pool_size() {
    let Some(url) = database("busy_workers_keep_to_the_pool_size").await else { return };
    // The instance's connections carry a name of this test's own in pg_stat_activity.
    let name = format!("sluice-{}", url.rsplit("search_path%3D").next().unwrap());
    let named = format!("{url}&application_name={name}");
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--state", &named, "--state-pool-size", "2", "--workers", "2"];
    let server = Server::start_with(dir.path(), None, &flags);
    let file = data(64 * 1024, 9);
    let path = server.create(file.len() as u64);

    // Both workers query at once, far more often than two connections can answer.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| (0..40).for_each(|_| assert_eq!(server.offset(&path), 0)));
        }
    });
    assert_eq!(server.patch(&path, 0, &file).status, 204);
    assert_eq!(server.offset(&path), file.len() as u64);

    let probe = sluice_server::store::postgres::Pool::new(&url, 1).unwrap();
    let conn = probe.get().await.unwrap();
    let row =
        conn.query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&name]).await.unwrap();
    let open: i64 = row.get(0);
    // Two pooled connections, and the lock service's own one for LISTEN.
    assert!((1..=3).contains(&open), "{open} connections open for a pool of 2");
}
