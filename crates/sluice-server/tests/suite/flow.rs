//! `/flow`: the Flow.js / Resumable.js chunk protocol, driven as those
//! libraries drive it (test chunks, chunks out of order and in parallel, both
//! the multipart and the raw-body forms).

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::test::TestRequest;
use common::*;
use sha2::{Digest, Sha256};

const ALICE: &str = "127.0.0.1:40001";
const BOB: &str = "127.0.0.2:40002";

struct File {
    name: &'static str,
    id: &'static str,
    data: Vec<u8>,
    chunk: usize,
}

impl File {
    fn chunks(&self) -> usize {
        (self.data.len() / self.chunk).max(1) // Flow.js default: the remainder joins the last chunk
    }

    fn range(&self, n: usize) -> std::ops::Range<usize> {
        let start = (n - 1) * self.chunk;
        let end = if n == self.chunks() { self.data.len() } else { start + self.chunk };
        start..end
    }

    fn query(&self, n: usize, prefix: &str) -> String {
        format!(
            "{p}ChunkNumber={n}&{p}ChunkSize={cs}&{p}CurrentChunkSize={cur}&{p}TotalSize={t}&{p}Identifier={id}&{p}Filename={name}&{p}RelativePath={name}&{p}TotalChunks={tc}",
            p = prefix,
            cs = self.chunk,
            cur = self.range(n).len(),
            t = self.data.len(),
            id = self.id,
            name = self.name,
            tc = self.chunks()
        )
    }

    fn test(&self, n: usize, who: &str) -> TestRequest {
        TestRequest::get().uri(&format!("/flow?{}", self.query(n, "flow"))).peer_addr(who.parse().unwrap())
    }

    /// A chunk as Flow.js `method: "octet"` sends it.
    fn octet(&self, n: usize, who: &str) -> TestRequest {
        TestRequest::post()
            .uri(&format!("/flow?{}", self.query(n, "flow")))
            .peer_addr(who.parse().unwrap())
            .insert_header(("Content-Type", "application/octet-stream"))
            .set_payload(self.data[self.range(n)].to_vec())
    }

    /// A chunk as Resumable.js (and Flow.js by default) sends it: fields, then the file part.
    fn multipart(&self, n: usize, who: &str, prefix: &str) -> TestRequest {
        let b = "flowBoundary";
        let mut body = Vec::new();
        for pair in self.query(n, prefix).split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            body.extend_from_slice(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&self.data[self.range(n)]);
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        TestRequest::post()
            .uri("/flow")
            .peer_addr(who.parse().unwrap())
            .insert_header(("Content-Type", format!("multipart/form-data; boundary={b}")))
            .set_payload(body)
    }
}

fn file(len: usize, chunk: usize) -> File {
    File { name: "holiday.bin", id: "12345-holidaybin", data: (0..len).map(|i| (i * 31 % 253) as u8).collect(), chunk }
}

#[actix_web::test]
async fn chunks_out_of_order_and_in_parallel_make_the_file() {
    let h = harness("").await;
    let f = file(50_000, 10_000); // 5 chunks
    for n in 1..=5 {
        assert_eq!(send(&h.app, f.test(n, ALICE)).await.status, 204, "nothing yet");
    }
    assert_eq!(send(&h.app, f.octet(3, ALICE)).await.status, 200);
    assert_eq!(send(&h.app, f.test(3, ALICE)).await.status, 200, "chunk 3 is there");
    assert_eq!(send(&h.app, f.test(3, BOB)).await.status, 204, "another client never sees it");
    let (a, b, c) = tokio::join!(
        send(&h.app, f.multipart(5, ALICE, "flow")),
        send(&h.app, f.octet(1, ALICE)),
        send(&h.app, f.multipart(2, ALICE, "resumable")),
    );
    assert!([a.status, b.status, c.status].iter().all(|s| *s == 200));
    let last = send(&h.app, f.octet(4, ALICE)).await;
    assert_eq!(last.status, 200);
    let stored: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(stored["size"], 50_000);
    assert_eq!(stored["name"], "holiday.bin");
    assert_eq!(stored["sha256"], sluice_core::checksum::to_hex(&Sha256::digest(&f.data)));

    // In the same storage as a tus upload; the chunks are gone.
    let path = format!("/files/{}", stored["id"].as_str().unwrap());
    assert_eq!(send(&h.app, TestRequest::get().uri(&path)).await.body, f.data);
    assert_eq!(h.data_files().await, 1, "only the assembled file remains");

    // The same file again: every test chunk says "have it", nothing is resent.
    for n in 1..=5 {
        assert_eq!(send(&h.app, f.test(n, ALICE)).await.status, 200);
    }
    let again = send(&h.app, f.octet(2, ALICE)).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&again.body).unwrap()["id"], stored["id"]);
}

#[actix_web::test]
async fn identifiers_are_never_paths_and_scopes_never_mix() {
    let h = harness("").await;
    let mut f = file(3_000, 1_000);
    f.id = "..%2F..%2Fetc%2Fpasswd";
    for n in 1..=3 {
        assert_eq!(send(&h.app, f.octet(n, ALICE)).await.status, 200);
    }
    let g = File { data: vec![9; 3_000], ..file(3_000, 1_000) };
    let mut bob_last = None;
    for n in 1..=3 {
        let r = send(&h.app, g.octet(n, BOB)).await;
        assert_eq!(r.status, 200);
        bob_last = Some(r);
    }
    let bob: serde_json::Value = serde_json::from_slice(&bob_last.unwrap().body).unwrap();
    let path = format!("/files/{}", bob["id"].as_str().unwrap());
    assert_eq!(send(&h.app, TestRequest::get().uri(&path)).await.body, vec![9; 3_000], "Bob's bytes, not Alice's");
    assert!(!h.dir.path().join("etc").exists());
}

#[actix_web::test]
async fn a_cut_chunk_leaves_nothing_and_can_be_resent() {
    let h = harness("").await;
    let f = file(4_000, 2_000);
    let short = f.octet(1, ALICE).set_payload(f.data[..1_500].to_vec());
    let reply = send(&h.app, short).await;
    assert_eq!((reply.status, reply.code().as_deref()), (400, Some("incomplete_body")));
    assert_eq!(send(&h.app, f.test(1, ALICE)).await.status, 204, "all or nothing");
    assert_eq!(send(&h.app, f.octet(1, ALICE)).await.status, 200);
    assert_eq!(send(&h.app, f.octet(2, ALICE)).await.status, 200);
}

/// A multipart chunk whose identifier field is longer than any parameter may be.
fn long_field() -> TestRequest {
    let body = format!(
        "--b\r\nContent-Disposition: form-data; name=\"flowIdentifier\"\r\n\r\n{}\r\n--b--\r\n",
        "x".repeat(4097)
    );
    TestRequest::post()
        .uri("/flow")
        .peer_addr(ALICE.parse().unwrap())
        .insert_header(("Content-Type", "multipart/form-data; boundary=b"))
        .set_payload(body)
}

#[actix_web::test]
async fn refusals() {
    let h = harness("max_file_size = 100000\nmax_chunk_size = 20000\nallowed_types = [\"application/pdf\"]\nallowed_extensions = [\"pdf\", \"bin\"]").await;
    let f = file(50_000, 10_000);
    let q = |n: usize| f.query(n, "flow");
    let get = |query: String| TestRequest::get().uri(&format!("/flow?{query}")).peer_addr(ALICE.parse().unwrap());
    let cases: Vec<(&str, TestRequest, u16, &str)> = vec![
        (
            "a file over the limit",
            get(q(1)
                .replace("flowTotalSize=50000", "flowTotalSize=200000")
                .replace("flowTotalChunks=5", "flowTotalChunks=20")),
            413,
            "file_too_large",
        ),
        (
            "a chunk over max_chunk_size",
            get(q(1)
                .replace("flowChunkSize=10000", "flowChunkSize=25000")
                .replace("flowCurrentChunkSize=10000", "flowCurrentChunkSize=25000")
                .replace("flowTotalChunks=5", "flowTotalChunks=2")),
            413,
            "chunk_too_large",
        ),
        (
            "an extension not allowed",
            get(q(1).replace("Filename=holiday.bin", "Filename=run.exe")),
            415,
            "extension_not_allowed",
        ),
        (
            "a chunk number out of range",
            get(q(1).replace("flowChunkNumber=1", "flowChunkNumber=6")),
            400,
            "invalid_header",
        ),
        ("chunk number zero", get(q(1).replace("flowChunkNumber=1", "flowChunkNumber=0")), 400, "invalid_header"),
        (
            "inconsistent chunk count",
            get(q(1).replace("flowTotalChunks=5", "flowTotalChunks=9")),
            400,
            "invalid_header",
        ),
        (
            "inconsistent chunk size",
            get(q(1).replace("flowCurrentChunkSize=10000", "flowCurrentChunkSize=9999")),
            400,
            "invalid_header",
        ),
        ("a negative size", get(q(1).replace("flowTotalSize=50000", "flowTotalSize=-1")), 400, "invalid_header"),
        ("no identifier", get(q(1).replace("flowIdentifier=12345-holidaybin&", "")), 400, "invalid_header"),
        (
            "an identifier over 1024 bytes",
            get(q(1).replace("flowIdentifier=12345-holidaybin", &format!("flowIdentifier={}", "i".repeat(1025)))),
            400,
            "invalid_header",
        ),
        ("a parameter field over 4 KiB", long_field(), 413, "field_too_large"),
        ("a disallowed type in the first chunk", f.octet(1, ALICE), 415, "type_not_allowed"),
        ("a chunk longer than declared", f.octet(2, ALICE).set_payload(vec![0u8; 10_001]), 413, "chunk_too_large"),
    ];
    let mut failures = Vec::new();
    for (name, req, status, code) in cases {
        let reply = send(&h.app, req).await;
        if (reply.status, reply.code().as_deref()) != (status, Some(code)) {
            failures.push(format!("{name}: {} {}", reply.status, String::from_utf8_lossy(&reply.body)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(send(&h.app, f.test(1, ALICE)).await.status, 204, "the refused chunk was not kept");
}
