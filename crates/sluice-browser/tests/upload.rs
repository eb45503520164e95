//! Uploads to a real Sluice server: chunk boundaries, checksums equal to
//! native ones, resume from the server's offset, pause/resume, cancel,
//! refusals, concurrency, and two tabs racing on one upload.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen_test::*;
use web_sys::Blob;

wasm_bindgen_test_configure!(run_in_browser);

const MIB: u32 = 1 << 20;

fn slice(f: &Blob, a: f64, b: f64) -> Blob {
    f.slice_with_f64_and_f64(a, b).expect("slice")
}

#[wasm_bindgen_test]
async fn uploads_in_policy_sized_chunks_with_native_checksums() {
    clear_stored();
    let client = connect(endpoint(), r#"{"chunkSize": 4194304, "fileSha256": true}"#).await;
    let f = random_file(2 * MIB + MIB / 2 + 123, 1, "data.bin");
    let rec = Recorder::default();
    let up = rec.upload(&client, &f);
    let result = wait(up.start()).await.unwrap_or_else(|e| panic!("upload: {}", error_message(&e)));
    let size = f.size();
    // 4 MiB asked, 1 MiB allowed by the policy: boundaries at every MiB.
    assert_eq!(rec.field("chunkStart"), [0.0, 1048576.0, 2097152.0]);
    assert_eq!(rec.field("chunkEnd"), [1048576.0, 2097152.0, size]);
    assert_eq!(rec.field("uploaded"), rec.field("chunkEnd"), "progress counts acknowledged bytes");
    assert_eq!(rec.field("fraction").last(), Some(&1.0));
    // Each Upload-Checksum equals SubtleCrypto's digest of the same slice.
    let sent = rec.strings("checksum");
    for (i, (a, b)) in rec.field("chunkStart").into_iter().zip(rec.field("chunkEnd")).enumerate() {
        let native = native_digest(&slice(&f, a, b), "SHA-256", true).await;
        assert_eq!(sent[i].as_deref(), Some(format!("sha256 {native}").as_str()), "chunk {i}");
    }
    assert_eq!(str_field(&result, "checksum").as_deref(), Some("sha256"));
    assert_eq!(str_field(&result, "sha256"), Some(native_digest(&f, "SHA-256", false).await));
    let url = str_field(&result, "url").expect("url");
    assert!(url.starts_with(endpoint()), "{url}");
    assert_same(&get(&url).await, &f).await;
    assert_eq!(up.state(), "done");
    assert_eq!(up.offset(), size);
    assert!(stored_keys().is_empty(), "the resume entry is removed on success: {:?}", stored_keys());
    let states = rec.states.borrow().clone();
    assert_eq!(states.first().map(String::as_str), Some("checking"));
    assert_eq!(states.last().map(String::as_str), Some("done"));
}

#[wasm_bindgen_test]
async fn other_chunk_sizes_and_algorithms() {
    for (alg, native) in [("sha1", Some("SHA-1")), ("crc32c", None), ("none", None)] {
        let opts = format!(r#"{{"chunkSize": 300000, "checksum": "{alg}"}}"#);
        let client = connect(endpoint(), &opts).await;
        let f = random_file(MIB + 7, 2, "odd.bin");
        let rec = Recorder::default();
        let up = rec.upload(&client, &f);
        let result = wait(up.start()).await.unwrap_or_else(|e| panic!("{alg}: {}", error_message(&e)));
        assert_eq!(rec.field("chunkStart"), [0.0, 300000.0, 600000.0, 900000.0], "{alg}");
        let sent = rec.strings("checksum");
        match alg {
            "none" => assert!(sent.iter().all(Option::is_none)),
            _ => assert!(sent.iter().all(|c| c.as_deref().is_some_and(|c| c.starts_with(&format!("{alg} "))))),
        }
        if let Some(native) = native {
            let first = native_digest(&slice(&f, 0.0, 300000.0), native, true).await;
            assert_eq!(sent[0].as_deref(), Some(format!("{alg} {first}").as_str()));
        }
        assert_same(&get(&str_field(&result, "url").expect("url")).await, &f).await;
    }
}

#[wasm_bindgen_test]
async fn resumes_from_the_server_offset_after_a_reload() {
    clear_stored();
    let f = random_file(MIB + 5000, 3, "resume.bin");
    // First page: upload one 256 KiB chunk, then pause.
    let client = connect(endpoint(), r#"{"chunkSize": 262144}"#).await;
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(1);
    let first = rec.upload(&client, &f);
    let _pending = first.start();
    assert!(until(5000.0, || first.state() == "paused").await, "state {}", first.state());
    let url = first.url().expect("url");
    assert_eq!(stored_keys().len(), 1, "the upload is remembered");
    // Someone else appends 1000 bytes meanwhile: the server's offset is now 263144, not chunk-aligned.
    let (status, offset) = patch_raw(&url, 262144, &slice(&f, 262144.0, 263144.0)).await;
    assert_eq!((status, offset), (204, 263144.0));
    // "Reload": a new client, the same file chosen again.
    let client = connect(endpoint(), r#"{"chunkSize": 262144}"#).await;
    let rec = Recorder::default();
    let second = rec.upload(&client, &f);
    let result = wait(second.start()).await.unwrap_or_else(|e| panic!("resume: {}", error_message(&e)));
    assert_eq!(second.resumed_from(), Some(263144.0));
    assert_eq!(num_field(&result, "resumedFrom"), Some(263144.0));
    assert_eq!(str_field(&result, "url").as_deref(), Some(url.as_str()));
    assert_eq!(rec.field("chunkStart").first(), Some(&263144.0), "continues at the server's offset");
    assert_same(&get(&url).await, &f).await;
    assert!(stored_keys().is_empty());
}

#[wasm_bindgen_test]
async fn a_different_file_with_the_same_name_is_not_resumed() {
    clear_stored();
    let client = connect(endpoint(), r#"{"chunkSize": 262144}"#).await;
    let a = random_file(MIB, 4, "same.bin");
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(1);
    let first = rec.upload(&client, &a);
    let _pending = first.start();
    assert!(until(5000.0, || first.state() == "paused").await);
    // Same name, size and time, other leading bytes.
    let b = random_file(MIB, 5, "same.bin");
    let second = Recorder::default().upload(&client, &b);
    let result = wait(second.start()).await.unwrap_or_else(|e| panic!("{}", error_message(&e)));
    assert_eq!(second.resumed_from(), None);
    assert_ne!(str_field(&result, "url"), first.url());
    let _ = wait(first.cancel()).await;
    clear_stored();
}

#[wasm_bindgen_test]
async fn pause_and_resume() {
    clear_stored();
    let client = connect(endpoint(), r#"{"chunkSize": 131072}"#).await;
    let f = random_file(MIB, 6, "pause.bin");
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(2);
    let up = rec.upload(&client, &f);
    let done = up.start();
    assert!(until(5000.0, || up.state() == "paused").await, "state {}", up.state());
    let at = up.offset();
    sleep(300.0).await;
    assert_eq!(up.state(), "paused");
    assert_eq!(up.offset(), at, "nothing acknowledged while paused");
    let (_, server) = head_offset(&up.url().expect("url")).await;
    assert!(server >= at, "the server holds at least what was acknowledged");
    up.resume();
    let result = wait(done).await.unwrap_or_else(|e| panic!("{}", error_message(&e)));
    assert_same(&get(&str_field(&result, "url").expect("url")).await, &f).await;
    let states = rec.states.borrow().clone();
    assert!(states.iter().any(|s| s == "paused"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("done"));
}

#[wasm_bindgen_test]
async fn cancel_terminates_on_the_server() {
    clear_stored();
    let client = connect(endpoint(), r#"{"chunkSize": 131072}"#).await;
    let f = random_file(MIB, 7, "cancel.bin");
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(1);
    let up = rec.upload(&client, &f);
    let done = up.start();
    assert!(until(5000.0, || up.state() == "paused").await);
    let url = up.url().expect("url");
    wait(up.cancel()).await.expect("cancel resolves");
    let err = wait(done).await.expect_err("start rejects");
    assert_eq!(error_code(&err), "cancelled");
    assert_eq!(up.state(), "cancelled");
    let (status, _) = head_offset(&url).await;
    assert!(status == 404 || status == 410, "terminated upload answers {status}");
    assert!(stored_keys().is_empty());
}

#[wasm_bindgen_test]
async fn server_refusals_carry_the_local_message() {
    clear_stored();
    // Skip the local check: the server refuses with the same code, and the
    // page shows the same words the local check gives.
    let client = connect(endpoint(), r#"{"check": false, "retries": 0}"#).await;
    let png = file(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0", "photo.pdf");
    let local = wait(client.check(png.clone().into())).await.expect("check");
    let err = wait(client.upload(png.into(), None).expect("upload").start()).await.expect_err("refused");
    assert_eq!(error_code(&err), "type_not_allowed");
    assert_eq!(Some(error_message(&err)), str_field(&local, "message"));

    let big = random_file(9 * MIB, 8, "big.bin");
    let err = wait(client.upload(big.into(), None).expect("upload").start()).await.expect_err("refused");
    assert_eq!(error_code(&err), "file_too_large");
    assert_eq!(error_message(&err), "This file is 9.0 MiB; the limit is 8.0 MiB.");

    // With the check on, nothing is sent at all.
    let client = connect(endpoint(), "{}").await;
    let err = wait(client.upload(file(b"", "e.txt").into(), None).expect("u").start()).await.expect_err("refused");
    assert_eq!(error_code(&err), "file_too_small");
}

#[wasm_bindgen_test]
async fn concurrency_limit_queues_uploads() {
    clear_stored();
    let client = connect(endpoint(), r#"{"concurrency": 1, "chunkSize": 262144}"#).await;
    let a = random_file(MIB, 10, "a.bin");
    let b = random_file(MIB, 11, "b.bin");
    let (ra, rb) = (Recorder::default(), Recorder::default());
    let (ua, ub) = (ra.upload(&client, &a), rb.upload(&client, &b));
    let (pa, pb) = (ua.start(), ub.start());
    // Either may get the slot first (each reads its file before asking for one).
    assert!(until(5000.0, || ua.state() == "uploading" || ub.state() == "uploading").await);
    let (busy, other) = if ua.state() == "uploading" { (&ua, &ub) } else { (&ub, &ua) };
    // Both states are read in one turn of the event loop: a consistent view.
    while busy.state() != "done" {
        assert_ne!(other.state(), "uploading", "two uploads sending at once with concurrency 1");
        sleep(2.0).await;
    }
    let ra_done = wait(pa).await.expect("a");
    let rb_done = wait(pb).await.expect("b");
    assert_same(&get(&str_field(&ra_done, "url").expect("url")).await, &a).await;
    assert_same(&get(&str_field(&rb_done, "url").expect("url")).await, &b).await;
}

#[wasm_bindgen_test]
async fn two_tabs_racing_on_one_upload_both_finish_intact() {
    clear_stored();
    let f = random_file(2 * MIB, 12, "race.bin");
    let c1 = connect(endpoint(), r#"{"chunkSize": 65536, "retryDelay": 20}"#).await;
    let c2 = connect(endpoint(), r#"{"chunkSize": 65536, "retryDelay": 20}"#).await;
    let (r1, r2) = (Recorder::default(), Recorder::default());
    let u1 = r1.upload(&c1, &f);
    let p1 = u1.start();
    assert!(until(5000.0, || !r1.progress.borrow().is_empty()).await);
    // The second "tab" finds the same upload through localStorage and races the first:
    // the loser of each round gets 409 (or 423) and re-reads the offset.
    let u2 = r2.upload(&c2, &f);
    let p2 = u2.start();
    let (a, b) = (wait(p1).await, wait(p2).await);
    let a = a.unwrap_or_else(|e| panic!("tab 1: {}", error_message(&e)));
    let b = b.unwrap_or_else(|e| panic!("tab 2: {}", error_message(&e)));
    assert_eq!(str_field(&a, "url"), str_field(&b, "url"));
    assert_same(&get(&str_field(&a, "url").expect("url")).await, &f).await;
}
