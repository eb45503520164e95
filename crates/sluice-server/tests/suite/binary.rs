//! Black-box tests of the real `sluice` binary on 127.0.0.1:0, over raw TCP,
//! including SIGKILL in the middle of an upload.

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use blackbox::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

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
    // Wait for the server to see the cut and end that PATCH; a HEAD sooner would
    // preempt it and keep only what it had read so far (a resend, not a loss).
    for waited in 0.. {
        let metrics = server.request("GET", "/metrics", &[], b"").body;
        if metrics.lines().any(|l| l == "sluice_uploads_in_flight 0")
            && metrics.contains("sluice_received_bytes_total 123456")
        {
            break;
        }
        assert!(waited < 1000, "the cut PATCH never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.offset(&up), 123_456);
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
    let server = Server { addr: line.trim().trim_start_matches("listening on http://").to_string(), ops: None, child };
    let res = server.request("OPTIONS", "/files/", &[], b"");
    assert_eq!(res.header("tus-max-size"), Some("1234"));
    assert!(dir.path().join("data").join("uploads").is_dir());
}
