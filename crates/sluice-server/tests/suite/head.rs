//! `HEAD /files/{id}`: offset, length, metadata, expiry; never cached.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use common::*;

#[actix_web::test]
async fn head_table() {
    let h = harness("").await;
    let meta = format!("filename {},flag", b64("a.txt"));
    let known = create(&h.app, Some(10), Some(&meta)).await;
    assert_eq!(send(&h.app, patch(&known, 0, b"abcd")).await.status, 204);
    let deferred = create(&h.app, None, None).await;
    let done = create(&h.app, Some(2), None).await;
    assert_eq!(send(&h.app, patch(&done, 0, b"ok")).await.status, 204);
    let gone = create(&h.app, Some(2), None).await;
    assert_eq!(send(&h.app, tus(Method::DELETE, &gone)).await.status, 204);
    let meta: &'static str = Box::leak(meta.into_boxed_str());

    let cases = vec![
        Case::new("partial upload", tus(Method::HEAD, &known), 200, None).with_headers(Box::leak(Box::new([
            ("upload-offset", "4"),
            ("upload-length", "10"),
            ("upload-metadata", meta),
            ("cache-control", "no-store"),
            ("upload-expires", "*"),
        ]))),
        Case::new("deferred length", tus(Method::HEAD, &deferred), 200, None)
            .with_headers(&[("upload-defer-length", "1"), ("upload-offset", "0")]),
        Case::new("complete upload", tus(Method::HEAD, &done), 200, None)
            .with_headers(&[("upload-offset", "2"), ("upload-length", "2")]),
        Case::new("terminated upload", tus(Method::HEAD, &gone), 410, None),
        Case::new("unknown id", tus(Method::HEAD, "/files/0123456789abcdef0123456789abcdef"), 404, None),
        Case::new("malformed id", tus(Method::HEAD, "/files/..%2F..%2Fetc"), 404, None),
        Case::new(
            "no Tus-Resumable",
            actix_web::test::TestRequest::default().method(Method::HEAD).uri(&known),
            412,
            None,
        )
        .with_headers(&[("tus-version", "1.0.0")]),
    ];
    run_table(&h.app, cases).await;
    let complete = send(&h.app, tus(Method::HEAD, &done)).await;
    assert_eq!(complete.header("upload-expires"), None, "complete uploads do not expire");
}
