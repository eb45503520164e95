//! Retry across a server restart: the harness kills the Sluice server and
//! starts it again on the same port and data dir; the upload rides it out.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn upload_survives_a_server_restart() {
    clear_stored();
    let client = connect(endpoint(), r#"{"chunkSize": 262144, "retryDelay": 200, "maxRetryDelay": 1000}"#).await;
    let f = random_file(2 << 20, 21, "restart.bin");
    let rec = Recorder::default();
    *rec.pause_after.borrow_mut() = Some(2);
    let up = rec.upload(&client, &f);
    let done = up.start();
    assert!(until(5000.0, || up.state() == "paused").await, "state {}", up.state());
    // The server goes down (for 1.5 s) while the upload is mid-file.
    restart_server(1500).await;
    up.resume();
    let result = wait(done).await.unwrap_or_else(|e| panic!("upload: {}", error_message(&e)));
    assert!(up.retries() >= 1, "it had to retry while the server was down");
    assert!(rec.states.borrow().iter().any(|s| s == "retrying"), "{:?}", rec.states.borrow());
    assert_same(&get(&str_field(&result, "url").expect("url")).await, &f).await;
}

#[wasm_bindgen_test]
async fn restart_during_a_transfer() {
    clear_stored();
    let client = connect(endpoint(), r#"{"chunkSize": 65536, "retryDelay": 200, "maxRetryDelay": 1000}"#).await;
    let f = random_file(4 << 20, 22, "restart2.bin");
    let rec = Recorder::default();
    let up = rec.upload(&client, &f);
    let done = up.start();
    assert!(until(5000.0, || !rec.progress.borrow().is_empty()).await);
    // No pause this time: requests in flight fail mid-way.
    restart_server(1000).await;
    let result = wait(done).await.unwrap_or_else(|e| panic!("upload: {}", error_message(&e)));
    assert_same(&get(&str_field(&result, "url").expect("url")).await, &f).await;
}
