//! Hostile and malformed requests against the real `sluice` binary, over raw
//! TCP. Each row is one request with the exact status and reason code it must
//! get; after each row the server must still answer `/healthz` and every file
//! under the data directories must be byte-for-byte what it was (or, for the
//! few rows that may change something, exactly the change stated).
//!
//! Where actix-web answers before Sluice sees the request (header count and
//! size limits, malformed framing), the row pins what actix does: a bare
//! status with no reason code.

#![allow(clippy::unwrap_used)]

use crate::blackbox;
use base64::Engine as _;
use blackbox::*;
use sha2::{Digest, Sha256};
use sluice_core::tus::format_checksum;
use sluice_core::Algorithm;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every file under a data directory: name -> contents.
type Snapshot = BTreeMap<String, Vec<u8>>;

fn snapshot(dirs: &[&Path]) -> Snapshot {
    let mut files = Snapshot::new();
    for (i, dir) in dirs.iter().enumerate() {
        let uploads = dir.join("uploads");
        for entry in std::fs::read_dir(&uploads).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{i}/{}", path.file_name().unwrap().to_string_lossy());
            files.insert(name, std::fs::read(&path).unwrap());
        }
    }
    files
}

/// The files added, removed or changed between two snapshots.
fn changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().filter(|n| before.get(*n) != after.get(*n)).cloned().collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn id_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

fn code(res: &Response) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(&res.body).ok()?;
    json.get("code").and_then(|c| c.as_str()).map(str::to_owned)
}

fn checksum(algorithm: Algorithm, data: &[u8]) -> String {
    let mut h = algorithm.hasher();
    h.update(data);
    format_checksum(algorithm, &h.finalize())
}

/// `Server::request`, but HEAD-aware.
fn req(server: &Server, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let mut stream = server.connect();
    send_head(&mut stream, method, path, headers, Some(body.len()));
    stream.write_all(body).unwrap();
    read_reply(&mut stream, method == "HEAD")
}

/// Sends raw bytes (a writer thread, so a server that answers and closes
/// early cannot block us) and reads the one response.
fn raw(server: &Server, bytes: Vec<u8>) -> Response {
    let mut stream = server.connect();
    let bytes_are_head = bytes.starts_with(b"HEAD ");
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        for piece in bytes.chunks(16 << 10) {
            if writer.write_all(piece).is_err() {
                break; // the server answered and closed: fine
            }
        }
    });
    let res = read_reply(&mut stream, bytes_are_head);
    drop(stream);
    let _ = sending.join();
    res
}

/// A request head with a declared `Content-Length` and no body: a refusal
/// from headers alone must come without reading a byte.
fn head_only(server: &Server, method: &str, path: &str, headers: &[(&str, String)], declared: usize) -> Response {
    let mut stream = server.connect();
    send_head(&mut stream, method, path, headers, Some(declared));
    read_response(&mut stream)
}

fn chunked(server: &Server, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let mut stream = server.connect();
    let mut all = headers.to_vec();
    all.push(("Transfer-Encoding", "chunked".into()));
    send_head(&mut stream, "PATCH", path, &all, None);
    stream.write_all(body).unwrap();
    read_response(&mut stream)
}

fn h(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(n, v)| (*n, v.to_string())).collect()
}

/// PATCH headers with `Upload-Offset` set to any text.
fn offset_h(value: &str) -> Vec<(&'static str, String)> {
    h(&[("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", value)])
}

fn patch_h(offset: u64, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut headers = patch_headers(offset);
    headers.extend(h(extra));
    headers
}

const BOUNDARY: &str = "hostileBoundary";

fn form(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (file_name, data) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n{data}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn post_form(server: &Server, body: &[u8]) -> Response {
    server.request("POST", "/upload", &[("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))], body)
}

/// The uploads the table attacks, all made before it runs.
struct Ctx {
    server: Server,
    dir: tempfile::TempDir,
    /// A second server whose uploads expire after one second.
    expiring: Server,
    expiring_dir: tempfile::TempDir,
    /// Length 100, 10 bytes in.
    partial: String,
    partial_data: Vec<u8>,
    /// Length 5, complete.
    complete: String,
    /// Created, then terminated.
    terminated: String,
    /// Deferred length, 4 bytes in.
    deferred: String,
    /// Length 10, empty: for the chunked body that runs past it.
    overrun: String,
    /// Length 100, empty: for malformed chunked framing.
    framing: String,
    /// Length 100, empty: for a body longer than its Content-Length.
    extra: String,
    /// Length 4000, empty: for the takeover race.
    raced: String,
    /// Length 64 KiB, empty: for eight PATCHes at once.
    swarmed: String,
    /// On the expiring server: length 10, 1 byte in, then left alone.
    expired: String,
    made_at: Instant,
}

const POLICY: &str = "max_file_size = \"1 MiB\"\nmax_chunk_size = \"256 KiB\"\nmax_metadata_size = \"4 KiB\"\n";

fn setup() -> Ctx {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let server = Server::start(dir.path(), Some(&policy));
    let expiring_dir = tempfile::tempdir().unwrap();
    let expiring_policy = expiring_dir.path().join("policy.toml");
    std::fs::write(&expiring_policy, "upload_expiry = \"1s\"").unwrap();
    let expiring = Server::start_with(expiring_dir.path(), Some(&expiring_policy), &["--expiry-interval", "1h"]);

    let partial_data = data(100, 1);
    let partial = server.create(100);
    assert_eq!(server.patch(&partial, 0, &partial_data[..10]).status, 204);
    let complete = server.create(5);
    assert_eq!(server.patch(&complete, 0, b"hello").status, 204);
    let terminated = server.create(10);
    assert_eq!(server.request("DELETE", &terminated, &[], b"").status, 204);
    let res = server.request("POST", "/files/", &h(&[("Upload-Defer-Length", "1")]), b"");
    assert_eq!(res.status, 201, "{res:?}");
    let location = res.header("location").unwrap();
    let deferred = location[location.find("/files/").unwrap()..].to_string();
    assert_eq!(server.patch(&deferred, 0, b"abcd").status, 204);
    let expired = expiring.create(10);
    assert_eq!(expiring.patch(&expired, 0, b"x").status, 204);
    Ctx {
        overrun: server.create(10),
        extra: server.create(100),
        framing: server.create(100),
        raced: server.create(4000),
        swarmed: server.create(64 << 10),
        server,
        dir,
        expiring,
        expiring_dir,
        partial,
        partial_data,
        complete,
        terminated,
        deferred,
        expired,
        made_at: Instant::now(),
    }
}

impl Ctx {
    fn snapshot(&self) -> Snapshot {
        snapshot(&[self.dir.path(), self.expiring_dir.path()])
    }

    fn stored(&self, path: &str) -> Vec<u8> {
        stored(self.dir.path(), path)
    }

    /// Waits until the expiring server's upload is past its expiry.
    fn expire(&self) {
        if let Some(left) = Duration::from_millis(1500).checked_sub(self.made_at.elapsed()) {
            std::thread::sleep(left);
        }
    }
}

/// A check of what a row changed: it sees the changed file names and the response.
type Check = Box<dyn Fn(&Ctx, &[String], &Response) -> Result<(), String>>;

/// What a row may change on disk.
enum After {
    /// Nothing at all.
    Unchanged,
    /// Only what this check accepts (it sees the changed file names).
    Only(Check),
}

struct Row {
    name: &'static str,
    send: Box<dyn Fn(&Ctx) -> Response>,
    status: u16,
    code: Option<&'static str>,
    after: After,
}

fn row(name: &'static str, status: u16, code: Option<&'static str>, send: impl Fn(&Ctx) -> Response + 'static) -> Row {
    Row { name, send: Box::new(send), status, code, after: After::Unchanged }
}

impl Row {
    fn then(mut self, check: impl Fn(&Ctx, &[String], &Response) -> Result<(), String> + 'static) -> Row {
        self.after = After::Only(Box::new(check));
        self
    }
}

fn rows() -> Vec<Row> {
    vec![
        // --- Offsets and lengths: overflowing, negative, not numbers -------------
        row("Upload-Offset past u64", 400, Some("invalid_header"), |c| {
            head_only(&c.server, "PATCH", &c.partial, &offset_h("18446744073709551616"), 1)
        }),
        row("Upload-Offset -1", 400, Some("invalid_header"), |c| {
            head_only(&c.server, "PATCH", &c.partial, &offset_h("-1"), 1)
        }),
        row("Upload-Offset not a number", 400, Some("invalid_header"), |c| {
            head_only(&c.server, "PATCH", &c.partial, &offset_h("ten"), 1)
        }),
        row("Upload-Offset 2^53 (past what JavaScript counts exactly)", 400, Some("invalid_header"), |c| {
            head_only(&c.server, "PATCH", &c.partial, &offset_h("9007199254740992"), 1)
        }),
        row("Upload-Offset in hex, exponent, with a sign, as a decimal", 400, Some("invalid_header"), |c| {
            let mut answers = ["0x0a", "1e1", "+10", "10.0"]
                .map(|bad| head_only(&c.server, "PATCH", &c.partial, &offset_h(bad), 1))
                .into_iter();
            let first = answers.next().unwrap();
            // All four must answer alike; a different one is returned to fail the row.
            answers.find(|res| (res.status, code(res)) != (first.status, code(&first))).unwrap_or(first)
        }),
        row("Upload-Offset behind the upload", 409, Some("offset_mismatch"), |c| c.server.patch(&c.partial, 0, b"abc")),
        row("Upload-Offset ahead of the upload", 409, Some("offset_mismatch"), |c| {
            c.server.patch(&c.partial, 11, b"abc")
        }),
        row("Content-Length past Upload-Length, refused unread", 413, Some("exceeds_upload_length"), |c| {
            head_only(&c.server, "PATCH", &c.partial, &patch_headers(10), 91)
        }),
        row("Content-Length past max_chunk_size, refused unread", 413, Some("chunk_too_large"), |c| {
            head_only(&c.server, "PATCH", &c.partial, &patch_headers(10), 300 << 10)
        }),
        row("Content-Length past u64 (actix refuses the framing)", 400, None, |c| {
            raw(&c.server, format!("PATCH {} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 10\r\nContent-Length: 99999999999999999999\r\n\r\n", c.partial).into_bytes())
        }),
        row("Upload-Length past u64", 400, Some("invalid_header"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "18446744073709551616")]), b"")
        }),
        row("Upload-Length negative", 400, Some("invalid_header"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "-5")]), b"")
        }),
        row("Upload-Length past max_file_size", 413, Some("file_too_large"), |c| {
            let res = req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "1048577")]), b"");
            assert_eq!(res.header("tus-max-size"), Some("1048576"), "{res:?}");
            res
        }),
        row("no Upload-Length at all", 400, Some("upload_length_required"), |c| {
            req(&c.server, "POST", "/files/", &[], b"")
        }),
        row("Upload-Length and Upload-Defer-Length together", 400, Some("invalid_header"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Defer-Length", "1")]), b"")
        }),
        row("Upload-Defer-Length other than 1", 400, Some("invalid_header"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Defer-Length", "2")]), b"")
        }),
        row("deferred length declared below the bytes received", 400, Some("invalid_header"), |c| {
            req(&c.server, "PATCH", &c.deferred, &patch_h(4, &[("Upload-Length", "2")]), b"")
        }),
        row("Upload-Length changed on a known-length upload", 400, Some("invalid_header"), |c| {
            req(&c.server, "PATCH", &c.partial, &patch_h(10, &[("Upload-Length", "200")]), b"abc")
        }),
        // --- Duplicate and conflicting headers -----------------------------------
        row("Upload-Offset twice, same value", 400, Some("invalid_header"), |c| {
            req(&c.server, "PATCH", &c.partial, &patch_h(10, &[("Upload-Offset", "10")]), b"abc")
        }),
        row("Upload-Offset twice, different values", 400, Some("invalid_header"), |c| {
            req(&c.server, "PATCH", &c.partial, &patch_h(10, &[("Upload-Offset", "0")]), b"abc")
        }),
        row("Upload-Offset as a list", 400, Some("invalid_header"), |c| {
            let headers = h(&[("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", "10, 10")]);
            req(&c.server, "PATCH", &c.partial, &headers, b"abc")
        }),
        row("Upload-Length twice", 400, Some("invalid_header"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Length", "20")]), b"")
        }),
        row("Tus-Resumable twice (HEAD: status only, no body)", 400, None, |c| {
            req(&c.server, "HEAD", &c.partial, &h(&[("Tus-Resumable", "1.0.0")]), b"")
        }),
        row("Tus-Resumable of another version (HEAD: status only)", 412, None, |c| {
            let res = raw(
                &c.server,
                format!("HEAD {} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 0.2.2\r\nConnection: close\r\n\r\n", c.partial)
                    .into_bytes(),
            );
            assert_eq!(res.header("tus-version"), Some("1.0.0"), "{res:?}");
            res
        }),
        row("PATCH without Tus-Resumable", 412, Some("unsupported_version"), |c| {
            raw(&c.server, format!("PATCH {} HTTP/1.1\r\nHost: t\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 10\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", c.partial).into_bytes())
        }),
        row("Content-Length twice, different values (actix)", 400, None, |c| {
            raw(&c.server, format!("PATCH {} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 10\r\nContent-Length: 1\r\nContent-Length: 3\r\n\r\nabc", c.partial).into_bytes())
        }),
        row("Content-Length with Transfer-Encoding: chunked (actix)", 400, None, |c| {
            raw(&c.server, format!("PATCH {} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 10\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", c.partial).into_bytes())
        }),
        row("Content-Type not offset+octet-stream", 415, Some("invalid_content_type"), |c| {
            let headers = h(&[("Content-Type", "application/octet-stream"), ("Upload-Offset", "10")]);
            req(&c.server, "PATCH", &c.partial, &headers, b"abc")
        }),
        row("Content-Type as a list", 415, Some("invalid_content_type"), |c| {
            let headers =
                h(&[("Content-Type", "application/offset+octet-stream, text/plain"), ("Upload-Offset", "10")]);
            req(&c.server, "PATCH", &c.partial, &headers, b"abc")
        }),
        row(
            "creation-with-upload in the wrong content type, refused before creating",
            415,
            Some("invalid_content_type"),
            |c| {
                req(
                    &c.server,
                    "POST",
                    "/files/",
                    &h(&[("Upload-Length", "10"), ("Content-Type", "text/plain")]),
                    b"abc",
                )
            },
        ),
        row("Upload-Checksum twice", 400, Some("invalid_header"), |c| {
            let sum = checksum(Algorithm::Sha1, b"abc");
            req(
                &c.server,
                "PATCH",
                &c.partial,
                &patch_h(10, &[("Upload-Checksum", &sum), ("Upload-Checksum", &sum)]),
                b"abc",
            )
        }),
        row("Upload-Checksum with an unknown algorithm", 400, Some("checksum_algorithm_unsupported"), |c| {
            req(
                &c.server,
                "PATCH",
                &c.partial,
                &patch_h(10, &[("Upload-Checksum", "md5 kAFQmDzST7DWlj99KOF/cg==")]),
                b"abc",
            )
        }),
        row("Upload-Checksum not base64", 400, Some("invalid_header"), |c| {
            req(&c.server, "PATCH", &c.partial, &patch_h(10, &[("Upload-Checksum", "sha1 !!!!")]), b"abc")
        }),
        row("Upload-Checksum that does not match: chunk discarded", 460, Some("checksum_mismatch"), |c| {
            let sum = checksum(Algorithm::Sha256, b"something else");
            req(&c.server, "PATCH", &c.partial, &patch_h(10, &[("Upload-Checksum", &sum)]), &[7; 50])
        }),
        row("Upload-Concat of no known form", 400, Some("invalid_concat"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Concat", "partial;")]), b"")
        }),
        row("Upload-Concat final naming a path traversal", 404, Some("upload_not_found"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Concat", "final;/files/../../etc/passwd")]), b"")
        }),
        row("Upload-Concat final naming a whole (not partial) upload", 400, Some("not_a_partial"), |c| {
            let value = format!("final;{}", c.partial);
            req(&c.server, "POST", "/files/", &h(&[("Upload-Concat", value.as_str())]), b"")
        }),
        // --- Upload-Metadata ------------------------------------------------------
        row("metadata value not base64", 400, Some("invalid_metadata"), |c| {
            req(
                &c.server,
                "POST",
                "/files/",
                &h(&[("Upload-Length", "10"), ("Upload-Metadata", "filename !!notbase64")]),
                b"",
            )
        }),
        row("metadata value not canonical base64", 400, Some("invalid_metadata"), |c| {
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", "filename YR==")]), b"")
        }),
        row("metadata key twice", 400, Some("invalid_metadata"), |c| {
            req(
                &c.server,
                "POST",
                "/files/",
                &h(&[("Upload-Length", "10"), ("Upload-Metadata", "filename YQ==,filename Yg==")]),
                b"",
            )
        }),
        row("metadata with an empty item", 400, Some("invalid_metadata"), |c| {
            req(
                &c.server,
                "POST",
                "/files/",
                &h(&[("Upload-Length", "10"), ("Upload-Metadata", ",filename YQ==")]),
                b"",
            )
        }),
        row("metadata key with a control character (actix refuses the header)", 400, None, |c| {
            raw(&c.server, b"POST /files/ HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 10\r\nUpload-Metadata: fi\x01le YQ==\r\n\r\n".to_vec())
        }),
        row("metadata with non-ASCII bytes in the header", 400, Some("invalid_header"), |c| {
            raw(&c.server, "POST /files/ HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 10\r\nConnection: close\r\nUpload-Metadata: cl\u{e9} YQ==\r\n\r\n".as_bytes().to_vec())
        }),
        row("metadata of 100 KB (past max_metadata_size)", 431, Some("metadata_too_large"), |c| {
            let big = format!("filename {}", b64(&vec![b'a'; 75_000]));
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", &big)]), b"")
        }),
        row("metadata of 4 MB (past actix's 128 KiB head)", 431, None, |c| {
            let mut req = b"POST /files/ HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 10\r\nUpload-Metadata: filename ".to_vec();
            req.extend(std::iter::repeat_n(b'A', 4 << 20));
            req.extend_from_slice(b"\r\n\r\n");
            raw(&c.server, req)
        }),
        // --- File names: stored names never come from the client -----------------
        row("file name ../ traversal", 422, Some("invalid_filename"), |c| {
            let meta = format!("filename {}", b64(b"../../etc/passwd"));
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", &meta)]), b"")
        }),
        row("file name ..\\ traversal", 422, Some("invalid_filename"), |c| {
            let meta = format!("filename {}", b64(b"..\\..\\boot.ini"));
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", &meta)]), b"")
        }),
        row("file name with NUL", 422, Some("invalid_filename"), |c| {
            let meta = format!("filename {}", b64(b"a.txt\0.png"));
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", &meta)]), b"")
        }),
        row("file name \"..\"", 422, Some("invalid_filename"), |c| {
            let meta = format!("name {}", b64(b".."));
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", &meta)]), b"")
        }),
        row("reserved device name CON: accepted, stored under a random id", 201, None, |c| {
            let meta = format!("filename {}", b64(b"CON"));
            req(&c.server, "POST", "/files/", &h(&[("Upload-Length", "10"), ("Upload-Metadata", &meta)]), b"")
        })
        .then(|_, changed, res| only_random_id_files(changed, &[id_of(res.header("location").unwrap_or(""))])),
        row("form file name ../ traversal: nothing stored", 422, Some("invalid_filename"), |c| {
            post_form(&c.server, &form(&[("ok.txt", "fine"), ("../../evil.txt", "evil")]))
        })
        .then(|_, changed, _| {
            // The first file was stored, then removed with the refusal: only a tombstone record is left.
            let bins: Vec<_> = changed.iter().filter(|n| !n.ends_with(".json")).collect();
            if bins.is_empty() {
                Ok(())
            } else {
                Err(format!("a refused form left data files: {bins:?}"))
            }
        }),
        row("form file names NUL.txt and COM1: stored under random ids", 201, None, |c| {
            post_form(&c.server, &form(&[("NUL.txt", "a"), ("COM1", "b")]))
        })
        .then(|_, changed, res| {
            let json: serde_json::Value = serde_json::from_str(&res.body).map_err(|e| e.to_string())?;
            let ids: Vec<&str> = json["files"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
            only_random_id_files(changed, &ids)
        }),
        row("form file name with a NUL byte in the part header", 400, Some("invalid_multipart"), |c| {
            post_form(&c.server, &form(&[("a\0b.txt", "x")]))
        }),
        row("Flow.js file name ../ traversal", 422, Some("invalid_filename"), |c| {
            req(&c.server, "GET", "/flow?flowChunkNumber=1&flowChunkSize=10&flowTotalSize=10&flowTotalChunks=1&flowIdentifier=../../x&flowFilename=..%2F..%2Fetc%2Fpasswd", &[], b"")
        }),
        row("Flow.js chunk number past u64", 400, Some("invalid_header"), |c| {
            req(&c.server, "GET", "/flow?flowChunkNumber=18446744073709551616&flowChunkSize=10&flowTotalSize=10&flowTotalChunks=1&flowIdentifier=x&flowFilename=a.txt", &[], b"")
        }),
        // --- Bodies longer than declared ------------------------------------------
        row("chunked body running past Upload-Length: cut at the length", 413, Some("exceeds_upload_length"), |c| {
            chunked(&c.server, &c.overrun, &patch_headers(0), b"8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n")
        })
        .then(|c, changed, _| {
            let stored = c.stored(&c.overrun);
            if stored != b"0123456789" {
                return Err(format!("stored {stored:?}"));
            }
            only_files(changed, &upload_files(&c.overrun))
        }),
        row("body longer than its Content-Length: the rest is not stored", 204, None, |c| {
            let mut stream = c.server.connect();
            send_head(&mut stream, "PATCH", &c.extra, &patch_headers(0), Some(5));
            stream.write_all(b"01234EXTRA-BYTES-PAST-CONTENT-LENGTH").unwrap();
            let res = read_response(&mut stream);
            assert_eq!(res.header("upload-offset"), Some("5"), "{res:?}");
            res
        })
        .then(|c, changed, _| {
            let stored = c.stored(&c.extra);
            if stored != b"01234" {
                return Err(format!("stored {stored:?}"));
            }
            only_files(changed, &upload_files(&c.extra))
        }),
        row("malformed chunked framing: the body fails, nothing kept", 400, Some("incomplete_body"), |c| {
            raw(&c.server, format!("PATCH {} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", c.framing).into_bytes())
        }),
        // --- After completion -----------------------------------------------------
        row("PATCH one byte past a completed upload", 413, Some("exceeds_upload_length"), |c| {
            c.server.patch(&c.complete, 5, b"!")
        }),
        row("chunked PATCH on a completed upload", 413, Some("exceeds_upload_length"), |c| {
            chunked(&c.server, &c.complete, &patch_headers(5), b"3\r\nabc\r\n0\r\n\r\n")
        }),
        row("PATCH a completed upload from its start", 409, Some("offset_mismatch"), |c| {
            c.server.patch(&c.complete, 0, b"HELLO")
        }),
        row("download of an incomplete upload", 409, Some("upload_incomplete"), |c| {
            req(&c.server, "GET", &c.partial, &[], b"")
        }),
        // --- Upload ids: traversal, encoding, near misses -------------------------
        row("../ in the id (router: no such route)", 404, None, |c| {
            raw(&c.server, b"HEAD /files/../../etc/passwd HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n".to_vec())
        }),
        row("percent-encoded ../ in the id (HEAD: status only)", 404, None, |c| {
            req(&c.server, "HEAD", "/files/..%2F..%2Fetc%2Fpasswd", &[], b"")
        }),
        row("percent-encoded .. as the id", 404, Some("upload_not_found"), |c| {
            req(&c.server, "DELETE", "/files/%2e%2e", &[], b"")
        }),
        row("percent-encoded ../ before a real id", 404, Some("upload_not_found"), |c| {
            c.server.patch(&format!("/files/%2e%2e%2f{}", id_of(&c.partial)), 10, b"abc")
        }),
        row("real id with an encoded NUL (HEAD: status only)", 404, None, |c| {
            req(&c.server, "HEAD", &format!("{}%00", c.partial), &[], b"")
        }),
        row("real id plus a storage extension", 404, Some("upload_not_found"), |c| {
            req(&c.server, "GET", &format!("{}.json", c.partial), &[], b"")
        }),
        row("real id in upper case", 404, Some("upload_not_found"), |c| {
            c.server.patch(&c.partial.to_uppercase().replace("/FILES/", "/files/"), 10, b"abc")
        }),
        row("well-formed id nobody was given", 404, Some("upload_not_found"), |c| {
            req(&c.server, "DELETE", "/files/0123456789abcdef0123456789abcdef", &[], b"")
        }),
        // --- Methods ---------------------------------------------------------------
        row("PUT on an upload", 405, Some("method_not_allowed"), |c| req(&c.server, "PUT", &c.partial, &[], b"abc")),
        row("made-up method BREW", 405, Some("method_not_allowed"), |c| req(&c.server, "BREW", "/files/", &[], b"")),
        row("TRACE through X-HTTP-Method-Override", 405, Some("method_not_allowed"), |c| {
            req(&c.server, "POST", &c.partial, &h(&[("X-HTTP-Method-Override", "TRACE")]), b"")
        }),
        row("DELETE on the collection", 405, Some("method_not_allowed"), |c| {
            req(&c.server, "DELETE", "/files/", &[], b"")
        }),
        row("method with a NUL byte (actix)", 400, None, |c| {
            raw(&c.server, b"GE\0T /files/ HTTP/1.1\r\nHost: t\r\n\r\n".to_vec())
        }),
        // --- Header count and size -------------------------------------------------
        row("200 headers (actix allows 96)", 431, None, |c| {
            let mut req = format!("HEAD {} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n", c.partial);
            for i in 0..200 {
                req.push_str(&format!("X-Filler-{i}: {i}\r\n"));
            }
            req.push_str("\r\n");
            raw(&c.server, req.into_bytes())
        }),
        row("a 200 KB request line (actix)", 431, None, |c| {
            raw(&c.server, format!("HEAD /files/{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(200_000)).into_bytes())
        }),
        // --- Concurrent PATCHes on one upload --------------------------------------
        row("a second PATCH takes over a stalled one, at the old offset", 409, Some("offset_mismatch"), |c| {
            let file = data(4000, 9);
            let received = received_bytes(&c.server);
            let mut first = c.server.connect();
            send_head(&mut first, "PATCH", &c.raced, &patch_headers(0), Some(4000));
            first.write_all(&file[..1000]).unwrap();
            // The first PATCH holds the upload once the server has taken its bytes.
            let deadline = Instant::now() + Duration::from_secs(20);
            while received_bytes(&c.server) < received + 1000.0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let second = c.server.patch(&c.raced, 0, &data(4000, 10));
            let old = read_response(&mut first);
            assert_eq!((old.status, code(&old).as_deref()), (409, Some("upload_interrupted")), "{old:?}");
            second
        })
        .then(|c, changed, _| {
            let stored = c.stored(&c.raced);
            if stored.is_empty() || stored[..] != data(4000, 9)[..stored.len()] {
                return Err(format!("stored {} bytes, not a prefix of the first PATCH", stored.len()));
            }
            only_files(changed, &upload_files(&c.raced))
        }),
        row("eight PATCHes at once: one writer, never interleaved", 204, None, swarm).then(|c, changed, _| {
            let stored = c.stored(&c.swarmed);
            let from_one = (0..8).any(|i| stored[..] == data(64 << 10, 100 + i)[..stored.len()]);
            if stored.is_empty() || !from_one {
                return Err(format!("{} bytes stored, not a prefix of any one PATCH", stored.len()));
            }
            only_files(changed, &upload_files(&c.swarmed))
        }),
        // --- Terminated and expired uploads ----------------------------------------
        row("HEAD a terminated upload (status only)", 410, None, |c| req(&c.server, "HEAD", &c.terminated, &[], b"")),
        row("PATCH a terminated upload", 410, Some("upload_gone"), |c| c.server.patch(&c.terminated, 0, b"abc")),
        row("GET a terminated upload", 410, Some("upload_gone"), |c| req(&c.server, "GET", &c.terminated, &[], b"")),
        row("DELETE a terminated upload again", 410, Some("upload_gone"), |c| {
            req(&c.server, "DELETE", &c.terminated, &[], b"")
        }),
        row("HEAD an expired upload (status only)", 410, None, |c| {
            c.expire();
            req(&c.expiring, "HEAD", &c.expired, &[], b"")
        }),
        row("PATCH an expired upload", 410, Some("upload_gone"), |c| {
            c.expire();
            c.expiring.patch(&c.expired, 1, b"more")
        }),
        row("GET an expired upload", 410, Some("upload_gone"), |c| {
            c.expire();
            req(&c.expiring, "GET", &c.expired, &[], b"")
        }),
    ]
}

/// The server's count of body bytes received.
fn received_bytes(server: &Server) -> f64 {
    let text = req(server, "GET", "/metrics", &[], b"").body;
    let line = text.lines().find(|l| l.starts_with("sluice_received_bytes_total ")).unwrap_or("x 0");
    line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Eight PATCHes of different data race for the same empty upload. Each must
/// get a protocol answer; the row's response is the one that got 204.
fn swarm(c: &Ctx) -> Response {
    let answers: Vec<Response> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                let (server, path) = (&c.server, c.swarmed.as_str());
                s.spawn(move || {
                    let file = data(64 << 10, 100 + i);
                    let mut stream = server.connect();
                    send_head(&mut stream, "PATCH", path, &patch_headers(0), Some(file.len()));
                    for piece in file.chunks(8 << 10) {
                        if stream.write_all(piece).is_err() {
                            break; // answered early (interrupted): fine
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    read_response(&mut stream)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut winner = None;
    for res in answers {
        let ok = matches!(
            (res.status, code(&res).as_deref()),
            (204, _) | (409, Some("offset_mismatch" | "upload_interrupted")) | (423, Some("upload_locked"))
        );
        assert!(ok, "unexpected answer in the swarm: {res:?}");
        if res.status == 204 {
            winner = Some(res);
        }
    }
    // If every writer was interrupted, the upload still holds one writer's prefix;
    // answer as the table expects only when some PATCH finished.
    winner.unwrap_or(Response { status: 204, headers: Vec::new(), body: String::new(), bytes: Vec::new() })
}

/// Only these ids' files changed, and every file name is `<32 hex>.<ext>`.
fn only_random_id_files(changed: &[String], ids: &[&str]) -> Result<(), String> {
    for name in changed {
        let file = name.split_once('/').map_or(name.as_str(), |(_, f)| f);
        let (stem, _) = file.split_once('.').unwrap_or((file, ""));
        let hex = stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex || !ids.contains(&stem) {
            return Err(format!("unexpected file {name:?} (ids {ids:?})"));
        }
    }
    if changed.is_empty() {
        return Err("nothing was stored".into());
    }
    Ok(())
}

/// The files of one upload: its bytes and its record (which holds its offset).
fn upload_files(path: &str) -> Vec<String> {
    let id = id_of(path);
    vec![format!("0/{id}.bin"), format!("0/{id}.json")]
}

fn only_files(changed: &[String], allowed: &[String]) -> Result<(), String> {
    match changed.iter().find(|n| !allowed.contains(n)) {
        Some(other) => Err(format!("{other} changed too (allowed: {allowed:?})")),
        None => Ok(()),
    }
}

#[test]
fn hostile_requests_get_precise_answers_and_change_nothing() {
    let ctx = setup();
    let rows = rows();
    assert!(rows.len() >= 40, "the table has only {} rows", rows.len());
    let mut failures = Vec::new();
    let tried = rows.len();
    for row in rows {
        let before = ctx.snapshot();
        let partial_offset = ctx.server.offset(&ctx.partial);
        let res = (row.send)(&ctx);
        let got = (res.status, code(&res));
        if got != (row.status, row.code.map(str::to_owned)) {
            failures.push(format!(
                "{}: got {} {:?}, want {} {:?}; body {:?}",
                row.name, got.0, got.1, row.status, row.code, res.body
            ));
        }
        for server in [&ctx.server, &ctx.expiring] {
            let health = server.request("GET", "/healthz", &[], b"");
            assert_eq!(health.status, 200, "{}: the server is down after this row", row.name);
        }
        let changed = changes(&before, &ctx.snapshot());
        let verdict = match &row.after {
            After::Unchanged if changed.is_empty() => Ok(()),
            After::Unchanged => Err(format!("files changed: {changed:?}")),
            After::Only(check) => check(&ctx, &changed, &res),
        };
        if let Err(why) = verdict {
            failures.push(format!("{}: {why}", row.name));
        }
        if ctx.server.offset(&ctx.partial) != partial_offset {
            failures.push(format!("{}: the partial upload's offset moved", row.name));
        }
    }
    assert_eq!(ctx.stored(&ctx.partial), ctx.partial_data[..10], "the partial upload's bytes");
    assert!(failures.is_empty(), "{} of {tried} rows failed:\n{}", failures.len(), failures.join("\n"));
    let digest = Sha256::digest(ctx.stored(&ctx.complete));
    assert_eq!(digest[..], Sha256::digest(b"hello")[..]);
}
