//! `DELETE /files/{id}` (termination), downloads, and expiry.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use common::*;
use std::time::{Duration, SystemTime};

#[actix_web::test]
async fn termination_table() {
    let h = harness("").await;
    let up = create(&h.app, Some(5), None).await;
    assert_eq!(send(&h.app, patch(&up, 0, b"ab")).await.status, 204);
    let cases = vec![
        Case::new("terminate", tus(Method::DELETE, &up), 204, None),
        Case::new("head after", tus(Method::HEAD, &up), 410, None),
        Case::new("patch after", patch(&up, 2, b"c"), 410, Some("upload_gone")),
        Case::new("terminate again", tus(Method::DELETE, &up), 410, Some("upload_gone")),
        Case::new(
            "unknown id",
            tus(Method::DELETE, "/files/0123456789abcdef0123456789abcdef"),
            404,
            Some("upload_not_found"),
        ),
        Case::new("no Tus-Resumable", TestRequest::delete().uri(&up), 412, Some("unsupported_version")),
    ];
    run_table(&h.app, cases).await;
    assert!(!h.has_data(&up).await, "terminated bytes are deleted");
}

#[actix_web::test]
async fn downloads_only_complete_uploads_as_attachments() {
    let h = harness("").await;
    let meta = format!("filename {}", b64("r\u{e9}sum\u{e9}.txt"));
    let up = create(&h.app, Some(5), Some(&meta)).await;
    assert_eq!(send(&h.app, patch(&up, 0, b"ab")).await.status, 204);
    let early = send(&h.app, TestRequest::get().uri(&up)).await;
    assert_eq!((early.status, early.code().as_deref()), (409, Some("upload_incomplete")));
    assert_eq!(send(&h.app, patch(&up, 2, b"cde")).await.status, 204);
    let got = send(&h.app, TestRequest::get().uri(&up)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"abcde");
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert!(got.header("content-disposition").unwrap().starts_with("attachment"), "{got:?}");

    let off = harness_with("", sluice_server::Settings { allow_download: false, ..Default::default() }).await;
    let up = create(&off.app, Some(1), None).await;
    assert_eq!(send(&off.app, patch(&up, 0, b"x")).await.status, 204);
    let refused = send(&off.app, TestRequest::get().uri(&up)).await;
    assert_eq!((refused.status, refused.code().as_deref()), (405, Some("method_not_allowed")));
}

#[actix_web::test]
async fn idle_incomplete_uploads_expire_and_are_swept() {
    let h = harness("upload_expiry = \"1h\"").await;
    let idle = create(&h.app, Some(5), None).await;
    let busy = create(&h.app, Some(5), None).await;
    let done = create(&h.app, Some(1), None).await;
    assert_eq!(send(&h.app, patch(&done, 0, b"x")).await.status, 204);
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for path in [&idle, &done] {
        h.age(path, two_hours_ago).await;
    }

    let reply = send(&h.app, tus(Method::HEAD, &idle)).await;
    assert_eq!(reply.status, 410, "expired uploads answer 410 before the sweep");
    let swept = h.state.engine.sweep().await.unwrap();
    assert_eq!(swept.expired, 1, "only the idle incomplete upload expires");
    assert!(!h.has_data(&idle).await, "its bytes are deleted");
    assert_eq!(send(&h.app, tus(Method::HEAD, &busy)).await.status, 200);
    assert_eq!(send(&h.app, tus(Method::HEAD, &done)).await.status, 200, "complete uploads never expire");
}
