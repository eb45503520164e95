//! The same module against a third-party tus server (`@tus/server` from npm),
//! which publishes no policy and may lack extensions (detected by `OPTIONS`).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn uploads_to_tus_node_server() {
    clear_stored();
    let client = connect(tus_endpoint(), r#"{"chunkSize": 524288, "fileSha256": true}"#).await;
    assert!(!client.policy_published(), "@tus/server has no /policy");
    assert!(client.extensions().iter().any(|e| e == "creation"), "{:?}", client.extensions());
    let f = random_file((3 << 20) / 2 + 99, 31, "third.bin");
    let rec = Recorder::default();
    let up = rec.upload(&client, &f);
    let result = wait(up.start()).await.unwrap_or_else(|e| panic!("upload: {}", error_message(&e)));
    assert_eq!(rec.field("chunkStart"), [0.0, 524288.0, 1048576.0, 1572864.0]);
    let checksum = str_field(&result, "checksum");
    if !client.extensions().iter().any(|e| e == "checksum") {
        assert_eq!(checksum, None, "no checksum sent to a server without the extension");
    }
    assert_eq!(str_field(&result, "sha256"), Some(native_digest(&f, "SHA-256", false).await));
    let url = str_field(&result, "url").expect("url");
    assert!(url.starts_with(tus_endpoint()), "{url}");
    let (status, offset) = head_offset(&url).await;
    assert_eq!((status, offset), (200, f.size()));
    assert_same(&stored(&url).await, &f).await;
}

/// What `@tus/server` stored for `url`, read through the harness (its own GET sends no CORS headers).
async fn stored(url: &str) -> web_sys::Blob {
    let id = url.rsplit('/').next().unwrap_or_default();
    get(&format!("{}/tus-data/{id}", control())).await
}

#[wasm_bindgen_test]
async fn pause_resume_and_cancel_on_tus_node_server() {
    clear_stored();
    let client = connect(tus_endpoint(), r#"{"chunkSize": 131072}"#).await;
    let f = random_file(1 << 20, 32, "third2.bin");
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(1);
    let up = rec.upload(&client, &f);
    let done = up.start();
    assert!(until(5000.0, || up.state() == "paused").await);
    up.resume();
    let result = wait(done).await.unwrap_or_else(|e| panic!("{}", error_message(&e)));
    assert_same(&stored(&str_field(&result, "url").expect("url")).await, &f).await;

    let g = random_file(1 << 20, 33, "third3.bin");
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(1);
    let up = rec.upload(&client, &g);
    let done = up.start();
    assert!(until(5000.0, || up.state() == "paused").await);
    let url = up.url().expect("url");
    wait(up.cancel()).await.expect("cancel");
    assert_eq!(error_code(&wait(done).await.expect_err("cancelled")), "cancelled");
    if client.extensions().iter().any(|e| e == "termination") {
        let (status, _) = head_offset(&url).await;
        assert!(status == 404 || status == 410, "terminated: {status}");
    }
}
