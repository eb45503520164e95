//! Black-box tests of the real `sluice` binary on 127.0.0.1:0, over raw TCP,
//! including SIGKILL in the middle of an upload.

#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(data_dir: &Path, policy: Option<&Path>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--takeover-wait", "5s", "--data-dir"]).arg(data_dir);
        if let Some(policy) = policy {
            cmd.arg("--policy").arg(policy);
        }
        let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).spawn().expect("start sluice");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read listening line");
        let addr =
            line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("odd first line {line:?}"));
        Server { addr: addr.to_string(), child }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
    }

    /// Sends one request with a whole body and reads the response.
    fn request(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
        let mut stream = self.connect();
        send_head(&mut stream, method, path, headers, Some(body.len()));
        stream.write_all(body).unwrap();
        read_response(&mut stream)
    }

    fn create(&self, length: u64) -> String {
        let res = self.request("POST", "/files/", &[("Upload-Length", length.to_string())], b"");
        assert_eq!(res.status, 201, "{res:?}");
        let location = res.header("location").expect("Location");
        location[location.find("/files/").unwrap()..].to_string()
    }

    fn patch(&self, path: &str, offset: u64, body: &[u8]) -> Response {
        self.request("PATCH", path, &patch_headers(offset), body)
    }

    fn offset(&self, path: &str) -> u64 {
        let res = self.request("HEAD", path, &[], b"");
        assert_eq!(res.status, 200, "{res:?}");
        res.header("upload-offset").unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn patch_headers(offset: u64) -> Vec<(&'static str, String)> {
    vec![("Content-Type", "application/offset+octet-stream".into()), ("Upload-Offset", offset.to_string())]
}

fn send_head(stream: &mut TcpStream, method: &str, path: &str, headers: &[(&str, String)], length: Option<usize>) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_response(stream: &mut TcpStream) -> Response {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status =
        line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((n, v)) = trimmed.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let length: usize =
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn stored(dir: &Path, path: &str) -> Vec<u8> {
    std::fs::read(dir.join("uploads").join(format!("{}.bin", path.rsplit('/').next().unwrap()))).unwrap()
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

#[test]
fn an_upload_survives_a_restart_between_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(10 << 20, 1);
    let server = Server::start(dir.path(), None);
    let up = server.create(file.len() as u64);
    assert_eq!(server.patch(&up, 0, &file[..4 << 20]).status, 204);
    server.kill();

    let server = Server::start(dir.path(), None);
    assert_eq!(server.offset(&up), 4 << 20, "the offset survives the restart");
    assert_eq!(server.patch(&up, 4 << 20, &file[4 << 20..]).status, 204);
    assert_eq!(sha(&stored(dir.path(), &up)), sha(&file));
}

#[test]
fn kill_9_in_the_middle_of_a_patch_leaves_only_correct_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(16 << 20, 2);
    let server = Server::start(dir.path(), None);
    let up = server.create(file.len() as u64);
    let mut stream = server.connect();
    send_head(&mut stream, "PATCH", &up, &patch_headers(0), Some(file.len()));
    stream.write_all(&file[..5 << 20]).unwrap();
    // Wait until the server has written some of it, then kill it mid-body.
    let data_file = dir.path().join("uploads").join(format!("{}.bin", up.rsplit('/').next().unwrap()));
    for waited in 0.. {
        if std::fs::metadata(&data_file).map_or(0, |m| m.len()) >= 1 << 20 {
            break;
        }
        assert!(waited < 6000, "the server never wrote the first MiB");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    drop(stream);

    let server = Server::start(dir.path(), None);
    let offset = server.offset(&up);
    assert!(offset > 0 && offset <= 5 << 20, "offset {offset}");
    assert_eq!(stored(dir.path(), &up), &file[..offset as usize], "every byte below the offset is correct");
    assert_eq!(server.patch(&up, offset, &file[offset as usize..]).status, 204);
    assert_eq!(sha(&stored(dir.path(), &up)), sha(&file));
}

#[test]
fn a_new_request_takes_over_from_a_stalled_patch() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let file = data(1000, 3);
    let up = server.create(1000);
    let mut stalled = server.connect();
    send_head(&mut stalled, "PATCH", &up, &patch_headers(0), Some(1000));
    stalled.write_all(&file[..100]).unwrap();
    stalled.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200)); // give the server time to read what was sent

    // HEAD takes over: the stalled PATCH stops and saves what it received
    // (all 100 bytes unless the machine is too loaded to have read them yet).
    let offset = server.offset(&up);
    assert!(offset <= 100, "offset {offset}");
    assert_eq!(stored(dir.path(), &up), &file[..offset as usize]);
    let old = read_response(&mut stalled);
    assert_eq!(old.status, 409, "{old:?}");
    assert!(old.body.contains("upload_interrupted"), "{old:?}");
    assert_eq!(server.patch(&up, offset, &file[offset as usize..]).status, 204);
    assert_eq!(stored(dir.path(), &up), file);
}

#[test]
fn a_chunked_body_is_cut_at_the_declared_length() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let up = server.create(10);
    let mut stream = server.connect();
    let mut headers = patch_headers(0);
    headers.push(("Transfer-Encoding", "chunked".into()));
    send_head(&mut stream, "PATCH", &up, &headers, None);
    stream.write_all(b"8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n").unwrap();
    let res = read_response(&mut stream);
    assert_eq!(res.status, 413, "{res:?}");
    assert!(res.body.contains("exceeds_upload_length"), "{res:?}");
    assert_eq!(stored(dir.path(), &up), b"0123456789", "nothing past the length is stored");
}

#[test]
fn a_body_cut_short_keeps_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let file = data(300_000, 4);
    let up = server.create(file.len() as u64);
    let mut stream = server.connect();
    send_head(&mut stream, "PATCH", &up, &patch_headers(0), Some(file.len()));
    stream.write_all(&file[..123_456]).unwrap();
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    let mut offset = 0;
    for _ in 0..200 {
        offset = server.offset(&up);
        if offset == 123_456 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(offset, 123_456);
    assert_eq!(stored(dir.path(), &up), &file[..123_456]);
}

#[test]
fn help_documents_flags_and_env_vars_and_bad_policies_fail_clearly() {
    let help = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--listen", "--data-dir", "--policy", "SLUICE_LISTEN", "SLUICE_DATA_DIR", "SLUICE_POLICY"] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "max_file_size = \"lots\"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["policy", "--policy"]).arg(&policy).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_file_size"), "{out:?}");
}

#[test]
fn env_vars_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "max_file_size = 1234").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .env("SLUICE_LISTEN", "127.0.0.1:0")
        .env("SLUICE_DATA_DIR", dir.path().join("data"))
        .env("SLUICE_POLICY", &policy)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let server = Server { addr: line.trim().trim_start_matches("listening on http://").to_string(), child };
    let res = server.request("OPTIONS", "/files/", &[], b"");
    assert_eq!(res.header("tus-max-size"), Some("1234"));
    assert!(dir.path().join("data").join("uploads").is_dir());
}
