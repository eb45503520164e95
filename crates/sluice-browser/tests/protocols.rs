//! The IETF draft and parallel parts (tus concatenation) from the browser, against a real
//! Sluice server: the stored file is the file, the whole file's SHA-256 is declared and
//! verified (the server shows it back as `Repr-Digest`), a reload resumes every part, and
//! pausing a draft upload resumes from the server's offset.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MIB: u32 = 1 << 20;

/// The `Repr-Digest` the server shows for a file whose SHA-256 it verified.
async fn verified_digest(url: &str) -> Option<String> {
    head_header(url, "Repr-Digest").await
}

#[wasm_bindgen_test]
async fn the_draft_uploads_declares_its_digest_and_the_server_verifies_it() {
    clear_stored();
    let client = connect(endpoint(), r#"{"protocol": "ietf", "fileSha256": true}"#).await;
    let f = random_file(2 * MIB + 4321, 21, "draft.bin");
    let rec = Recorder::default();
    let up = rec.upload(&client, &f);
    let result = wait(up.start()).await.unwrap_or_else(|e| panic!("draft upload: {}", error_message(&e)));
    let url = str_field(&result, "url").expect("url");
    assert_same(&get(&url).await, &f).await;
    assert_eq!(rec.field("chunkEnd"), [1048576.0, 2097152.0, f.size()], "1 MiB appends (max-append-size)");
    assert!(rec.strings("checksum").iter().all(Option::is_none), "the draft carries no chunk checksum");
    let native = native_digest(&f, "SHA-256", true).await;
    assert_eq!(verified_digest(&url).await, Some(format!("sha-256=:{native}:")));
    assert_eq!(str_field(&result, "sha256"), Some(native_digest(&f, "SHA-256", false).await));
    assert!(stored_keys().is_empty());
}

#[wasm_bindgen_test]
async fn a_refusal_through_the_draft_carries_the_servers_code_and_words() {
    // The local check is off: the server's problem details (the test policy wants 1 B at
    // least) are what the page gets.
    let client = connect(endpoint(), r#"{"protocol": "ietf", "check": false}"#).await;
    let up = Recorder::default().upload(&client, &file(&[], "empty.bin"));
    let err = wait(up.start()).await.expect_err("an empty file is under the policy's minimum");
    assert_eq!(error_code(&err), "file_too_small");
    assert!(error_message(&err).contains("at least"), "{}", error_message(&err));
}

#[wasm_bindgen_test]
async fn a_paused_draft_upload_resumes_after_a_reload() {
    clear_stored();
    let f = random_file(2 * MIB + 77, 22, "draft-resume.bin");
    let opts = r#"{"protocol": "ietf", "chunkSize": 524288}"#;
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(2);
    let first = rec.upload(&connect(endpoint(), opts).await, &f);
    let _pending = first.start();
    assert!(until(5000.0, || first.state() == "paused").await, "state {}", first.state());
    let url = first.url().expect("url");
    let (_, held) = head_offset(&url).await;
    assert!(held >= 1048576.0 && held < f.size(), "held {held}");
    let second = Recorder::default().upload(&connect(endpoint(), opts).await, &f);
    let result = wait(second.start()).await.unwrap_or_else(|e| panic!("resume: {}", error_message(&e)));
    assert_eq!(second.resumed_from(), Some(held));
    assert_eq!(str_field(&result, "url").as_deref(), Some(url.as_str()));
    assert_same(&get(&url).await, &f).await;
}

#[wasm_bindgen_test]
async fn parallel_parts_are_joined_into_the_file_and_its_digest_verified() {
    clear_stored();
    let client = connect(endpoint(), r#"{"parallel": 4, "fileSha256": true}"#).await;
    let f = random_file(5 * MIB + 999, 23, "parallel.bin");
    let rec = Recorder::default();
    let up = rec.upload(&client, &f);
    let result = wait(up.start()).await.unwrap_or_else(|e| panic!("parallel upload: {}", error_message(&e)));
    let url = str_field(&result, "url").expect("url");
    assert_same(&get(&url).await, &f).await;
    let native = native_digest(&f, "SHA-256", true).await;
    assert_eq!(verified_digest(&url).await, Some(format!("sha-256=:{native}:")));
    // Progress counts every part: it only grows, and ends at the file's size.
    let uploaded = rec.field("uploaded");
    assert!(uploaded.windows(2).all(|w| w[0] < w[1]), "{uploaded:?}");
    assert_eq!(uploaded.last(), Some(&f.size()));
    // The parts' chunks cover the file exactly once.
    let mut spans: Vec<(f64, f64)> = rec.field("chunkStart").into_iter().zip(rec.field("chunkEnd")).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(spans.first().map(|s| s.0), Some(0.0));
    assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
    assert_eq!(spans.last().map(|s| s.1), Some(f.size()));
    assert_eq!(up.offset(), f.size());
    assert!(stored_keys().is_empty());
}

#[wasm_bindgen_test]
async fn a_reload_resumes_every_part_of_a_parallel_upload() {
    clear_stored();
    let f = random_file(4 * MIB + 5, 24, "parallel-resume.bin");
    let opts = r#"{"parallel": 2, "chunkSize": 524288}"#;
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(3);
    let first = rec.upload(&connect(endpoint(), opts).await, &f);
    let _pending = first.start();
    assert!(until(5000.0, || first.state() == "paused").await, "state {}", first.state());
    assert_eq!(stored_keys().len(), 1, "the parts are remembered");
    // "Reload": a new client, the same file chosen again; it lists the parts as one pending upload.
    let client = connect(endpoint(), opts).await;
    let pending = wait(client.pending_uploads()).await.expect("pending");
    let pending = js_sys::Array::from(&pending);
    assert_eq!(pending.length(), 1);
    let held = num_field(&pending.get(0), "offset").expect("offset");
    assert!(held >= 3.0 * 524288.0 && held < f.size(), "held {held}");
    let rec = Recorder::default();
    let second = rec.upload(&client, &f);
    let result = wait(second.start()).await.unwrap_or_else(|e| panic!("resume: {}", error_message(&e)));
    assert_eq!(second.resumed_from(), Some(held));
    let first = rec.field("uploaded").first().copied().unwrap_or(0.0);
    assert!(first > held, "progress starts from what the server held: {first} after {held}");
    assert_same(&get(&str_field(&result, "url").expect("url")).await, &f).await;
    assert!(stored_keys().is_empty());
}
