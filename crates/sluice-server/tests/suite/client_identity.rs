//! Client identity against the real binary: behind a proxy listed in `--trusted-proxies`, the
//! forwarded address is the client (two clients behind one proxy get separate caps); from any
//! other peer, `X-Forwarded-For` is ignored. Peers are 127.0.0.1 and 127.0.0.2 (all of
//! 127.0.0.0/8 is loopback on Linux).

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use blackbox::*;
use std::io::Write;
use std::net::TcpStream;

/// Opens a PATCH from `source` claiming to forward `forwarded`, sends part of the body and leaves
/// it streaming (it holds one of its client's upload places).
fn hold(server: &Server, source: &str, forwarded: &str, path: &str, file: &[u8]) -> TcpStream {
    let mut stream = server.connect_from(source);
    let mut headers = patch_headers(0);
    headers.push(("X-Forwarded-For", forwarded.to_string()));
    send_head(&mut stream, "PATCH", path, &headers, Some(file.len()));
    stream.write_all(&file[..10]).unwrap();
    stream.flush().unwrap();
    stream
}

fn patch_from(server: &Server, source: &str, forwarded: &str, path: &str, file: &[u8]) -> Response {
    let mut headers = patch_headers(0);
    headers.push(("X-Forwarded-For", forwarded.to_string()));
    request_on(server.connect_from(source), "PATCH", path, &headers, file)
}

/// Waits (bounded: 5 s) until one upload is streaming.
fn wait_until_streaming(server: &Server) {
    for _ in 0..500 {
        if server.request("GET", "/metrics", &[], b"").body.lines().any(|l| l == "sluice_uploads_in_flight 1") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the held upload never started streaming");
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(dir.path(), None, &["--max-uploads-per-client", "1", "--trusted-proxies", "127.0.0.1/32"]);
    let file = data(1000, 1);
    let (a, b, c) = (server.create(1000), server.create(1000), server.create(1000));

    // The proxy (127.0.0.1) forwards alice (198.51.100.1); the client prepended a forged entry.
    let mut alice = hold(&server, "127.0.0.1", "203.0.113.99, 198.51.100.1", &a, &file);
    wait_until_streaming(&server);

    let bob = patch_from(&server, "127.0.0.1", "198.51.100.2", &b, &file);
    assert_eq!(bob.status, 204, "bob, behind the same proxy, has his own cap: {bob:?}");
    let again = patch_from(&server, "127.0.0.1", "198.51.100.1", &c, &file);
    assert_eq!((again.status, again.header("retry-after")), (429, Some("1")), "alice is at her cap: {again:?}");
    assert!(again.body.contains("too_many_uploads"));
    // The forged entry is not the client: "203.0.113.99" has no upload in flight...
    let forged = patch_from(&server, "127.0.0.1", "203.0.113.99", &c, &file);
    assert_eq!(forged.status, 204, "{forged:?}");

    alice.write_all(&file[10..]).unwrap();
    assert_eq!(read_response(&mut alice).status, 204);
}

#[test]
fn from_a_peer_not_listed_x_forwarded_for_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start_with(dir.path(), None, &["--max-uploads-per-client", "1", "--trusted-proxies", "127.0.0.1/32"]);
    let file = data(1000, 2);
    let (a, b) = (server.create(1000), server.create(1000));

    // 127.0.0.2 is not a trusted proxy: whatever it forwards, it is one client.
    let mut first = hold(&server, "127.0.0.2", "198.51.100.1", &a, &file);
    wait_until_streaming(&server);
    let second = patch_from(&server, "127.0.0.2", "198.51.100.2", &b, &file);
    assert_eq!(second.status, 429, "a forged X-Forwarded-For does not make another client: {second:?}");
    let elsewhere = patch_from(&server, "127.0.0.3", "198.51.100.1", &b, &file);
    assert_eq!(elsewhere.status, 204, "another peer address is another client: {elsewhere:?}");

    first.write_all(&file[10..]).unwrap();
    assert_eq!(read_response(&mut first).status, 204);
}

#[test]
fn without_trusted_proxies_forwarding_headers_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--max-uploads-per-client", "1"]);
    let file = data(1000, 3);
    let (a, b) = (server.create(1000), server.create(1000));
    let mut first = hold(&server, "127.0.0.1", "198.51.100.1", &a, &file);
    wait_until_streaming(&server);
    let second = patch_from(&server, "127.0.0.1", "198.51.100.2", &b, &file);
    assert_eq!(second.status, 429, "{second:?}");
    first.write_all(&file[10..]).unwrap();
    assert_eq!(read_response(&mut first).status, 204);
}
