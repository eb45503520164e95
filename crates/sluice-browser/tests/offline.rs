//! The browser module in a real browser with no server at all: what `wasm-pack test --headless
//! --chrome` (or `--firefox`) runs on a fresh clone. Crafted files against a policy given as
//! JSON, digests against the browser's own SubtleCrypto and published check values, reading
//! slices, hashing workers, words for a page, and the retry decisions on real `Response`s.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use sluice_browser::blob::{self, Reader, READ_BUF};
use sluice_browser::hashpool::{self, HashPool};
use sluice_browser::retry::{decide, Verdict};
use sluice_core::Algorithm;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The policy the live tests' server publishes (xtask/src/browser.rs), as JSON.
const POLICY: &str = r#"{
  "max_file_size": "8 MiB", "min_file_size": 1, "max_chunk_size": "1 MiB",
  "allowed_types": ["application/pdf", "text/plain", "application/octet-stream", "image/jpeg"],
  "allowed_extensions": ["pdf", "txt", "bin", "jpg"],
  "checksum_algorithms": ["sha256", "crc32c", "sha1"],
  "max_files_per_batch": 3, "max_batch_size": "12 MiB"
}"#;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";

/// SHA-256 of `patterned(1000, 9)`, computed natively (Python's hashlib over the same xorshift32).
const SHA256_PATTERN_1000_9: &str = "c83a765e3fda07ba2c178c64a4db3d898040f48b784addc37fdf59b267e370a8";

async fn verdict(policy: &str, file: &web_sys::File) -> JsValue {
    wait(sluice_browser::check_file(policy, file.clone().into())).await.expect("check")
}

async fn hex(blob: &web_sys::Blob, algorithm: &str) -> Result<String, JsValue> {
    wait(sluice_browser::digest(blob.clone(), algorithm)).await.map(|v| v.as_string().expect("hex string"))
}

#[wasm_bindgen_test]
async fn crafted_files_get_the_core_verdicts() {
    let cases: &[(&[u8], &str, Option<&str>)] = &[
        (PDF, "report.pdf", None),
        (b"plain words\n", "notes.txt", None),
        (PNG, "photo.pdf", Some("type_not_allowed")),
        (b"", "empty.txt", Some("file_too_small")),
        (b"MZ\x90\0", "setup.exe", Some("extension_not_allowed")),
        (b"hello", "README", Some("extension_not_allowed")),
    ];
    for (bytes, name, code) in cases {
        let v = verdict(POLICY, &file(bytes, name)).await;
        assert_eq!(bool_field(&v, "ok"), Some(code.is_none()), "{name}: {v:?}");
        assert_eq!(str_field(&v, "code").as_deref(), *code, "{name}: {}", str_field(&v, "message").unwrap_or_default());
    }
    let png = verdict(POLICY, &file(PNG, "photo.pdf")).await;
    let message = str_field(&png, "message").unwrap_or_default();
    assert!(message.starts_with("This file is a PNG image; only "), "{message}");
    let pdf = verdict(POLICY, &file(PDF, "report.pdf")).await;
    assert_eq!(str_field(&pdf, "mime").as_deref(), Some("application/pdf"));
    assert_eq!(num_field(&pdf, "size"), Some(PDF.len() as f64));
}

#[wasm_bindgen_test]
async fn oversize_file_is_refused_by_its_size() {
    // 9 MiB against an 8 MiB limit; the verdict needs only the size and 8 KiB.
    let v = verdict(POLICY, &random_file(9 << 20, 7, "big.bin")).await;
    assert_eq!(str_field(&v, "code").as_deref(), Some("file_too_large"));
    assert_eq!(str_field(&v, "message").as_deref(), Some("This file is 9.0 MiB; the limit is 8.0 MiB."));
}

#[wasm_bindgen_test]
async fn a_malformed_policy_is_invalid_policy() {
    for bad in [r#"{"max_file_size":"huge"}"#, r#"{"min_file_size":10,"max_file_size":5}"#, "not json"] {
        let err = wait(sluice_browser::check_file(bad, file(PNG, "x.png").into())).await.expect_err(bad);
        assert_eq!(error_code(&err), "invalid_policy", "{bad}");
    }
    let v = verdict(r#"{"allowed_types":["image/*"]}"#, &file(PNG, "x.png")).await;
    assert_eq!(str_field(&v, "mime").as_deref(), Some("image/png"));
}

#[wasm_bindgen_test]
async fn digests_equal_the_browsers_own() {
    // Read through the same reused 1 MiB BYOB buffer as uploads, across several reads.
    let f = random_file((3 << 20) + 12_345, 42, "d.bin");
    for (ours, native) in [("sha256", "SHA-256"), ("sha1", "SHA-1")] {
        assert_eq!(hex(&f, ours).await.expect(ours), native_digest(&f, native, false).await, "{ours}");
    }
}

#[wasm_bindgen_test]
async fn digests_match_published_check_values() {
    // CRC-32C has no browser implementation: RFC 3720's check value.
    assert_eq!(hex(&file(b"123456789", "c.txt"), "crc32c").await.expect("digest"), "e3069283");
    assert_eq!(
        hex(&file(b"", "e.txt"), "sha256").await.expect("digest"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&file(b"abc", "abc.txt"), "sha1").await.expect("digest"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(hex(&random_file(1000, 9, "s.bin"), "sha256").await.expect("digest"), SHA256_PATTERN_1000_9);
}

#[wasm_bindgen_test]
async fn unknown_algorithms_are_refused() {
    let err = hex(&file(b"x", "x.txt"), "md5").await.expect_err("md5");
    assert_eq!(error_code(&err), "invalid_options");
    let err = sluice_browser::chunk_checksum(file(b"x", "x.txt").into(), 0.0, 1.0, "md5".into()).await;
    assert_eq!(error_code(&err.expect_err("md5")), "invalid_options");
}

#[wasm_bindgen_test]
async fn chunk_checksums_of_slices_equal_native_ones() {
    let f = random_file((2 << 20) + 777, 5, "chunks.bin");
    let size = f.size();
    for (start, end) in [(0.0, 1.0), (0.0, 1048576.0), (1048576.0, 2097152.0), (2097152.0, size), (13.0, 1048589.0)] {
        let ours = sluice_browser::chunk_checksum(f.clone().into(), start, end, "sha256".into()).await.expect("sum");
        let part = f.slice_with_f64_and_f64(start, end).expect("slice");
        assert_eq!(ours, format!("sha256 {}", native_digest(&part, "SHA-256", true).await), "{start}..{end}");
    }
}

#[wasm_bindgen_test]
async fn chunk_checksum_refuses_ranges_outside_the_blob() {
    let f: web_sys::Blob = file(b"0123456789", "r.txt").into();
    for (start, end) in [(0.0, 11.0), (5.0, 4.0), (-1.0, 3.0), (f64::NAN, 3.0)] {
        let err = sluice_browser::chunk_checksum(f.clone(), start, end, "sha256".into()).await;
        assert_eq!(error_code(&err.expect_err("out of range")), "invalid_options", "{start}..{end}");
    }
}

#[wasm_bindgen_test]
async fn the_reader_streams_ranges_in_bounded_pieces() {
    let len = (READ_BUF as u32) * 2 + 4321;
    let f: web_sys::Blob = random_file(len, 11, "r.bin").into();
    let all = js_sys::Uint8Array::new(&wait(blob_bytes(&f)).await.expect("bytes")).to_vec();
    let mut reader = Reader::new();
    // Several ranges through one reader: its buffers are reused, the bytes must still be right.
    for range in [0..len as u64, 5..(READ_BUF as u64 + 7), (len as u64 - 10)..len as u64, 3..3] {
        let mut got = Vec::new();
        let mut biggest = 0;
        reader
            .read(&f, range.clone(), |piece| {
                assert!(!piece.is_empty(), "never an empty piece");
                biggest = biggest.max(piece.len());
                got.extend_from_slice(piece);
            })
            .await
            .expect("read");
        assert_eq!(got, all[range.start as usize..range.end as usize], "{range:?}");
        assert!(biggest <= READ_BUF, "a piece of {biggest} bytes");
    }
}

#[wasm_bindgen_test]
async fn leading_bytes_are_at_most_what_was_asked() {
    let f: web_sys::Blob = random_file(20_000, 3, "l.bin").into();
    assert_eq!(blob::leading_bytes(&f, 8192).await.expect("read").len(), 8192);
    let small: web_sys::Blob = file(b"tiny", "t.txt").into();
    assert_eq!(blob::leading_bytes(&small, 8192).await.expect("read"), b"tiny");
    let part = blob::slice(&f, 100..300).expect("slice");
    assert_eq!(blob::size(&part), 200);
}

#[wasm_bindgen_test]
async fn hashing_workers_give_the_same_checksums() {
    // The test harness loads this module as plain ES modules, so its own URL is importable.
    let pool = HashPool::start(2, &hashpool::glue_url()).await.expect("workers start");
    assert_eq!(pool.size(), 2);
    let f: web_sys::Blob = random_file((3 << 20) + 99, 17, "w.bin").into();
    let ranges = [0..1u64 << 20, 1 << 20..2 << 20, 2 << 20..(3 << 20) + 99, 0..0];
    // All jobs in flight at once, answered in any order.
    let jobs: Vec<_> =
        ranges.iter().map(|r| (r.clone(), pool.hash(&f, r.clone(), Algorithm::Sha256).expect("queued"))).collect();
    for (range, job) in jobs {
        let got = job.value().await.expect("worker checksum");
        let part = blob::slice(&f, range.clone()).expect("slice");
        assert_eq!(got, format!("sha256 {}", native_digest(&part, "SHA-256", true).await), "{range:?}");
    }
    let crc = pool.hash(&file(b"123456789", "c.txt").into(), 0..9, Algorithm::Crc32c).expect("queued").value().await;
    assert_eq!(crc.expect("crc"), "crc32c 4waSgw==");
}

#[wasm_bindgen_test]
async fn workers_that_cannot_load_the_package_are_reported_not_hung() {
    // A URL that is not the package: the pool refuses to start (the upload then hashes on the page).
    assert!(HashPool::start(1, "data:text/javascript,export default 1").await.is_none());
}

#[wasm_bindgen_test]
fn a_policy_in_plain_words() {
    let d = sluice_browser::describe_policy(POLICY, Some("sha256".into())).expect("describe");
    let rules: js_sys::Array = js_sys::Reflect::get(&d, &"rules".into()).expect("rules").into();
    let text: Vec<String> = rules.iter().map(|r| str_field(&r, "text").unwrap_or_default()).collect();
    assert_eq!(text[0], "Up to 8.0 MiB per file; empty files are refused.");
    assert!(text.iter().any(|t| t == "Ending in .pdf, .txt, .bin or .jpg."), "{text:?}");
    assert!(text.iter().any(|t| t == "Up to 3 files at a time, 12.0 MiB in total."), "{text:?}");
    assert!(text.iter().any(|t| t == "Every piece is verified with SHA-256 on arrival."), "{text:?}");
    assert!(str_field(&d, "hint").unwrap_or_default().starts_with("Up to 8.0 MiB each · PDF documents"));
    let err = sluice_browser::describe_policy("{", None).expect_err("bad JSON");
    assert_eq!(error_code(&err), "invalid_policy");
}

#[wasm_bindgen_test]
fn sizes_and_messages_in_the_servers_words() {
    assert_eq!(sluice_browser::format_size(0.0), "0 B");
    assert_eq!(sluice_browser::format_size(512.0), "512 B");
    assert_eq!(sluice_browser::format_size(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    assert_eq!(sluice_browser::format_size(f64::NAN), "0 B");
    for &reason in sluice_core::Reason::ALL {
        let m = sluice_browser::message_for(reason.code());
        assert!(!m.is_empty() && m.ends_with('.'), "{}: {m}", reason.code());
    }
    assert_eq!(sluice_browser::message_for("type_not_allowed"), "A file was of a type that is not accepted.");
}

#[wasm_bindgen_test]
async fn retries_are_decided_by_reason_on_real_responses() {
    use sluice_browser::http::Reply;
    let cases: &[(u16, &str, &str, Verdict)] = &[
        (507, r#"{"code":"storage_full","message":"No room."}"#, "storage_full", Verdict::Stop),
        (503, r#"{"code":"server_busy","message":"Busy."}"#, "server_busy", Verdict::Retry),
        (409, r#"{"code":"offset_mismatch","message":"No."}"#, "offset_mismatch", Verdict::Resync),
        (409, r#"{"code":"upload_interrupted","message":"Taken over."}"#, "upload_interrupted", Verdict::Retry),
        (413, r#"{"code":"file_too_large","message":"Big."}"#, "file_too_large", Verdict::Stop),
        // Any tus server: no JSON body, the status says what it means.
        (460, "checksum mismatch", "checksum_mismatch", Verdict::Retry),
        (502, "", "backend_unavailable", Verdict::Retry),
        (507, "", "storage_full", Verdict::Stop),
        (418, "teapot", "unexpected_response", Verdict::Stop),
    ];
    for (status, body, code, verdict) in cases {
        let response = response(*status, body);
        let err = Reply { status: *status, response }.error().await;
        assert_eq!(err.code, *code, "{status} {body}");
        assert_eq!(err.status, Some(*status));
        assert_eq!(decide(true, err.reason()), *verdict, "{status} {body}");
    }
    assert_eq!(decide(false, None), Verdict::Retry, "no answer at all");
    assert!(!sluice_browser::is_transient("storage_full"));
    assert!(sluice_browser::is_transient("server_busy"));
    assert!(!sluice_browser::is_transient("from_the_future"));
}

#[wasm_bindgen_test]
async fn bad_options_are_refused_before_any_request() {
    let cases = [
        r#"{"chunkSize": -1}"#,
        r#"{"checksum": "md5"}"#,
        r#"{"concurrency": "three"}"#,
        r#"{"hashWorkers": -2}"#,
        r#"{"parallel": -1}"#,
        r#"{"protocol": "http2"}"#,
    ];
    for json in cases {
        // Port 9 (discard) on loopback: were any request sent, it would fail differently.
        let err = sluice_browser::Client::connect("http://127.0.0.1:9/files/".into(), Some(options(json))).await;
        assert_eq!(error_code(&err.err().expect(json)), "invalid_options", "{json}");
    }
    let err = sluice_browser::Client::connect("not a url".into(), None).await.err().expect("bad endpoint");
    assert_eq!(error_code(&err), "invalid_options");
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_a_network_error() {
    let err = sluice_browser::Client::connect("http://127.0.0.1:9/files/".into(), None).await.err().expect("refused");
    assert_eq!(error_code(&err), "network_error");
    assert!(error_message(&err).contains("127.0.0.1:9"), "{}", error_message(&err));
}

#[wasm_bindgen_test]
fn fingerprints_tell_files_apart_and_read_back() {
    use sluice_browser::check::FileInfo;
    use sluice_browser::fingerprint::{key, parse};
    let info = FileInfo { name: Some("a.pdf".into()), size: 10, last_modified: Some(5.0), browser_type: String::new() };
    let a = key("http://x/files/", &info, b"%PDF-1.7 one");
    assert_ne!(a, key("http://x/files/", &info, b"%PDF-1.7 two"), "same name, size and date; other bytes");
    let back = parse("http://x/files/", &a).expect("own key");
    assert_eq!((back.name.as_str(), back.size, back.last_modified), ("a.pdf", 10, Some(5.0)));
    assert!(parse("http://y/files/", &a).is_none());
}

#[wasm_bindgen_test]
fn backoff_grows_is_capped_and_obeys_retry_after() {
    let b = sluice_browser::retry::Backoff { base_ms: 100.0, max_ms: 1000.0, max_retries: 5 };
    assert_eq!(b.delay_ms(0, 1.0, None), 100.0);
    assert_eq!(b.delay_ms(3, 1.0, None), 800.0);
    assert_eq!(b.delay_ms(30, 0.0, None), 500.0);
    assert_eq!(b.delay_ms(0, 0.5, Some(7000.0)), 7000.0);
}
