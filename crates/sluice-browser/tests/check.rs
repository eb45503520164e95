//! Verdicts on crafted files, against the policy a real Sluice server publishes (needs the
//! servers of `cargo xtask test-browser`: feature `live-tests`).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";

async fn verdict(file: &web_sys::File) -> JsValue {
    let client = connect(endpoint(), "{}").await;
    wait(client.check(file.clone().into())).await.expect("check")
}

#[wasm_bindgen_test]
async fn connects_and_reads_the_published_policy() {
    let client = connect(endpoint(), "{}").await;
    assert!(client.policy_published());
    assert!(client.policy().contains("\"max_chunk_size\":1048576"), "{}", client.policy());
    let ext = client.extensions();
    for e in ["creation", "checksum", "termination"] {
        assert!(ext.iter().any(|x| x == e), "{e} missing from {ext:?}");
    }
    assert_eq!(client.checksum_algorithm().as_deref(), Some("sha256"), "the policy's first algorithm");
    assert_eq!(client.chunk_size(), 1048576.0, "16 MiB default capped by max_chunk_size");
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
        let v = verdict(&file(bytes, name)).await;
        assert_eq!(bool_field(&v, "ok"), Some(code.is_none()), "{name}: {v:?}");
        assert_eq!(str_field(&v, "code").as_deref(), *code, "{name}: {}", str_field(&v, "message").unwrap_or_default());
        assert_eq!(str_field(&v, "name").as_deref(), Some(*name));
    }
    let png = verdict(&file(PNG, "photo.pdf")).await;
    let message = str_field(&png, "message").unwrap_or_default();
    assert!(message.starts_with("This file is a PNG image; only "), "{message}");
    let pdf = verdict(&file(PDF, "report.pdf")).await;
    assert_eq!(str_field(&pdf, "mime").as_deref(), Some("application/pdf"));
}

#[wasm_bindgen_test]
async fn oversize_file_is_refused_without_reading_it() {
    // 9 MiB against an 8 MiB limit; the verdict needs only the size and 8 KiB.
    let big = random_file(9 << 20, 7, "big.bin");
    let v = verdict(&big).await;
    assert_eq!(str_field(&v, "code").as_deref(), Some("file_too_large"));
    assert_eq!(str_field(&v, "message").as_deref(), Some("This file is 9.0 MiB; the limit is 8.0 MiB."));
}

#[wasm_bindgen_test]
async fn batch_limits() {
    let client = connect(endpoint(), "{}").await;
    let files = js_sys::Array::new();
    for i in 0..4 {
        files.push(&file(b"text", &format!("{i}.txt")));
    }
    let v = wait(client.check_batch(files)).await.expect("batch");
    assert_eq!(str_field(&v, "code").as_deref(), Some("too_many_files"));
    assert_eq!(bool_field(&v, "ok"), Some(false));

    let files = js_sys::Array::of2(&random_file(7 << 20, 1, "a.bin"), &random_file(7 << 20, 2, "b.bin"));
    let v = wait(client.check_batch(files)).await.expect("batch");
    assert_eq!(str_field(&v, "code").as_deref(), Some("batch_too_large"));

    let files = js_sys::Array::of2(&file(PDF, "a.pdf"), &file(PNG, "b.pdf"));
    let v = wait(client.check_batch(files)).await.expect("batch");
    assert_eq!(bool_field(&v, "ok"), Some(false), "one file is refused");
    assert_eq!(str_field(&v, "code"), None, "the batch itself is within limits");
    let each: js_sys::Array = js_sys::Reflect::get(&v, &"files".into()).expect("files").into();
    assert_eq!(bool_field(&each.get(0), "ok"), Some(true));
    assert_eq!(str_field(&each.get(1), "code").as_deref(), Some("type_not_allowed"));
}
