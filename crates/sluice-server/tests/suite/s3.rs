//! The real `sluice` binary with `--storage s3://…` over a real Garage that each test
//! starts for itself (and can stop): uploads in small and single PATCHes, an object
//! store outage, `kill -9` mid-PATCH, termination.
//!
//! Runs when `SLUICE_TEST_S3` is set (as `cargo xtask test` does), and then needs `garage`
//! on PATH (`cargo xtask setup` installs it); otherwise each test prints a notice and passes.

use crate::blackbox::{data, patch_headers, read_reply, read_response, send_head, sha, Response};
use crate::garage::{self, Garage};
use sluice_server::store::s3::{S3Bytes, S3Config};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MIB: usize = 1 << 20;

/// A Garage for one test, or `None` (with a notice) when it cannot run here.
fn garage() -> Option<Garage> {
    if std::env::var_os("SLUICE_TEST_S3").is_none() {
        println!("skipped: SLUICE_TEST_S3 is not set (cargo xtask test sets it and installs Garage)");
        return None;
    }
    assert!(garage::installed(), "SLUICE_TEST_S3 is set but `garage` is not on PATH (cargo xtask setup)");
    Some(Garage::start().expect("start garage"))
}

struct Sluice {
    child: Child,
    addr: String,
}

impl Sluice {
    /// The binary with its bytes in `garage` under `prefix`, records under `dir`.
    fn start(garage: &Garage, dir: &Path, prefix: &str) -> Sluice {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--takeover-wait", "2s", "--data-dir"]).arg(dir);
        cmd.args(["--storage", &format!("s3://{}/{prefix}", garage::BUCKET)]);
        for (name, value) in garage.env() {
            cmd.env(name, value);
        }
        let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).spawn().expect("start sluice");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("listening line");
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_string();
        Sluice { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        stream
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
        let mut stream = self.connect();
        send_head(&mut stream, method, path, headers, Some(body.len()));
        stream.write_all(body).unwrap();
        read_response(&mut stream)
    }

    fn create(&self, length: usize) -> String {
        let res = self.request("POST", "/files/", &[("Upload-Length", length.to_string())], b"");
        assert_eq!(res.status, 201, "{res:?}");
        let location = res.header("location").unwrap();
        location[location.find("/files/").unwrap()..].to_string()
    }

    fn patch(&self, path: &str, offset: usize, body: &[u8]) -> Response {
        self.request("PATCH", path, &patch_headers(offset as u64), body)
    }

    /// `HEAD path` (its answer has no body, whatever its Content-Length says).
    fn head(&self, path: &str) -> Response {
        let mut stream = self.connect();
        send_head(&mut stream, "HEAD", path, &[], None);
        read_reply(&mut stream, true)
    }

    fn offset(&self, path: &str) -> usize {
        let res = self.head(path);
        assert_eq!(res.status, 200, "{res:?}");
        res.header("upload-offset").unwrap().parse().unwrap()
    }

    /// `GET path`, the body as bytes.
    fn download(&self, path: &str) -> Vec<u8> {
        let mut stream = self.connect();
        send_head(&mut stream, "GET", path, &[], None);
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "download {path}: {line}");
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        body
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PATCHes `file` from `offset` in `chunk`-byte requests; each must be acknowledged.
fn upload_from(sluice: &Sluice, path: &str, file: &[u8], mut offset: usize, chunk: usize) {
    while offset < file.len() {
        let end = (offset + chunk).min(file.len());
        let res = sluice.patch(path, offset, &file[offset..end]);
        assert_eq!(res.status, 204, "PATCH at {offset}: {res:?}");
        assert_eq!(res.header("upload-offset").unwrap(), end.to_string());
        offset = end;
    }
}

/// Ids of uploads with any object left under `prefix`.
fn objects_left(garage: &Garage, prefix: &str) -> Vec<String> {
    let spool = tempfile::tempdir().unwrap();
    let config = config(garage, prefix, spool.path());
    actix_web::rt::System::new().block_on(async move { S3Bytes::open(config).unwrap().stored_ids().await.unwrap() })
}

fn config(garage: &Garage, prefix: &str, spool: &Path) -> S3Config {
    let env = |name: &str| garage.env().iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
    S3Config {
        endpoint: sluice_server::store::s3::Endpoint {
            bucket: garage::BUCKET.into(),
            url: Some(env("SLUICE_S3_ENDPOINT")),
            region: garage::REGION.into(),
            path_style: true,
            credentials: Some((env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), None)),
        },
        prefix: format!("{prefix}/"),
        spool_dir: spool.to_path_buf(),
        max_file_size: 4 << 30,
    }
}

#[test]
fn small_patches_and_one_big_patch_store_the_file_exactly() {
    let Some(garage) = garage() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(&garage, dir.path(), "sizes");
    // 1 MiB PATCHes: most end inside a part, so each leaves an incomplete part behind.
    let file = data(21 * MIB + 12_345, 1);
    let path = sluice.create(file.len());
    upload_from(&sluice, &path, &file, 0, MIB);
    assert_eq!(sha(&sluice.download(&path)), sha(&file), "1 MiB PATCHes");
    // One PATCH: several parts uploaded while the body streams.
    let file = data(19 * MIB + 7, 2);
    let path = sluice.create(file.len());
    upload_from(&sluice, &path, &file, 0, file.len());
    assert_eq!(sha(&sluice.download(&path)), sha(&file), "one PATCH");
    // An empty file has no parts at all.
    let path = sluice.create(0);
    assert_eq!(sluice.head(&path).status, 200);
    assert!(sluice.download(&path).is_empty());
}

#[test]
fn an_object_store_outage_answers_503_and_loses_nothing() {
    let Some(mut garage) = garage() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(&garage, dir.path(), "outage");
    let file = data(18 * MIB, 3);
    let path = sluice.create(file.len());
    upload_from(&sluice, &path, &file[..10 * MIB], 0, 3 * MIB);

    garage.pause();
    let res = sluice.patch(&path, 10 * MIB, &file[10 * MIB..13 * MIB]);
    assert_eq!(res.status, 503, "PATCH while the store is down: {res:?}");
    assert!(res.header("retry-after").is_some(), "503 comes with Retry-After: {res:?}");
    assert!(res.body.contains("backend_unavailable"), "{res:?}");
    let ready = sluice.request("GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "/readyz while the store is down: {ready:?}");

    garage.resume().unwrap();
    let offset = sluice.offset(&path);
    assert!(offset >= 10 * MIB, "acknowledged bytes were kept: offset {offset}");
    upload_from(&sluice, &path, &file, offset, 3 * MIB);
    assert_eq!(sluice.request("GET", "/readyz", &[], b"").status, 200);
    assert_eq!(sha(&sluice.download(&path)), sha(&file));
}

#[test]
fn kill_9_mid_patch_then_restart_resumes() {
    let Some(garage) = garage() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(&garage, dir.path(), "kill");
    let file = data(30 * MIB + 99, 4);
    let path = sluice.create(file.len());
    upload_from(&sluice, &path, &file[..10 * MIB], 0, 10 * MIB);

    // A PATCH for the rest: 12 MiB sent (a part uploads meanwhile), then the process dies.
    let mut stream = sluice.connect();
    send_head(&mut stream, "PATCH", &path, &patch_headers(10 * MIB as u64), Some(file.len() - 10 * MIB));
    stream.write_all(&file[10 * MIB..22 * MIB]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    sluice.kill();
    drop(stream);

    let sluice = Sluice::start(&garage, dir.path(), "kill");
    let offset = sluice.offset(&path);
    assert!(offset >= 10 * MIB, "acknowledged bytes survive kill -9: offset {offset}");
    upload_from(&sluice, &path, &file, offset, 4 * MIB);
    assert_eq!(sha(&sluice.download(&path)), sha(&file), "resumed after kill -9 from {offset}");
}

#[test]
fn termination_aborts_the_upload_and_deletes_every_object() {
    let Some(garage) = garage() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(&garage, dir.path(), "terminate");
    let file = data(20 * MIB, 5);
    let path = sluice.create(file.len());
    upload_from(&sluice, &path, &file[..13 * MIB], 0, 13 * MIB);
    let done = sluice.create(MIB);
    upload_from(&sluice, &done, &data(MIB, 6), 0, MIB);
    assert_eq!(objects_left(&garage, "terminate").len(), 2, "two uploads hold objects");

    for upload in [&path, &done] {
        let res = sluice.request("DELETE", upload, &[], b"");
        assert_eq!(res.status, 204, "{res:?}");
    }
    assert_eq!(objects_left(&garage, "terminate"), Vec::<String>::new(), "nothing is left under the prefix");
    assert_eq!(sluice.head(&path).status, 410);
}
