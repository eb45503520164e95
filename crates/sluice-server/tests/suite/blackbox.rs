//! Harness for black-box tests: the real `sluice` binary on 127.0.0.1:0,
//! spoken to over raw TCP so that nothing hides framing.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The operations listener's address, when started with `--ops-listen`.
    pub ops: Option<String>,
}

impl Server {
    pub fn start(data_dir: &Path, policy: Option<&Path>) -> Server {
        Server::start_with(data_dir, policy, &[])
    }

    /// Starts the binary with extra `serve` flags.
    pub fn start_with(data_dir: &Path, policy: Option<&Path>, flags: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--takeover-wait", "5s", "--data-dir"]).arg(data_dir);
        if let Some(policy) = policy {
            cmd.arg("--policy").arg(policy);
        }
        cmd.args(flags);
        let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).spawn().expect("start sluice");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).expect("read listening line");
        let addr =
            line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("odd first line {line:?}"));
        let ops = flags.contains(&"--ops-listen").then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read ops listening line");
            let ops = line.trim().strip_prefix("ops listening on http://");
            ops.unwrap_or_else(|| panic!("odd second line {line:?}")).to_string()
        });
        Server { addr: addr.to_string(), ops, child }
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
    }

    /// Connects from another loopback address (all of 127.0.0.0/8 is local on Linux).
    pub fn connect_from(&self, source: &str) -> TcpStream {
        connect_from(source, &self.addr)
    }

    /// Sends one request with a whole body and reads the response.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
        let mut stream = self.connect();
        send_head(&mut stream, method, path, headers, Some(body.len()));
        stream.write_all(body).unwrap();
        read_response(&mut stream)
    }

    pub fn create(&self, length: u64) -> String {
        let res = self.request("POST", "/files/", &[("Upload-Length", length.to_string())], b"");
        assert_eq!(res.status, 201, "{res:?}");
        let location = res.header("location").expect("Location");
        location[location.find("/files/").unwrap()..].to_string()
    }

    pub fn patch(&self, path: &str, offset: u64, body: &[u8]) -> Response {
        self.request("PATCH", path, &patch_headers(offset), body)
    }

    pub fn offset(&self, path: &str) -> u64 {
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

/// A TCP connection to `addr` whose source address is `source` (port chosen by the kernel).
pub fn connect_from(source: &str, addr: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let target: std::net::SocketAddr = addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&format!("{source}:0").parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    socket.connect(&target.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

/// Sends one request on `stream` with a whole body and reads the response.
pub fn request_on(
    mut stream: TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Response {
    send_head(&mut stream, method, path, headers, Some(body.len()));
    stream.write_all(body).unwrap();
    read_reply(&mut stream, method == "HEAD")
}

pub fn patch_headers(offset: u64) -> Vec<(&'static str, String)> {
    vec![("Content-Type", "application/offset+octet-stream".into()), ("Upload-Offset", offset.to_string())]
}

pub fn send_head(stream: &mut TcpStream, method: &str, path: &str, headers: &[(&str, String)], length: Option<usize>) {
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
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as received.
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn read_response(stream: &mut TcpStream) -> Response {
    read_reply(stream, false)
}

/// Reads one response; a HEAD response (`head`) has no body whatever its Content-Length.
pub fn read_reply(stream: &mut TcpStream, head: bool) -> Response {
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
    let length: usize = if head {
        0
    } else {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap())
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned(), bytes: body }
}

pub fn data(len: usize, seed: u64) -> Vec<u8> {
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

pub fn stored(dir: &Path, path: &str) -> Vec<u8> {
    std::fs::read(dir.join("uploads").join(format!("{}.bin", path.rsplit('/').next().unwrap()))).unwrap()
}

pub fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}
