//! `OPTIONS /files/`: capability discovery, and the small routes beside tus.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use common::*;

#[actix_web::test]
async fn options_lists_version_extensions_limits_and_algorithms() {
    let h = harness("max_file_size = 1000\nchecksum_algorithms = [\"sha256\", \"crc32c\"]").await;
    let cases = vec![
        Case::new(
            "options on the collection",
            TestRequest::default().method(Method::OPTIONS).uri("/files/"),
            204,
            None,
        )
        .with_headers(&[
            ("tus-version", "1.0.0"),
            (
                "tus-extension",
                "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,concatenation",
            ),
            ("tus-max-size", "1000"),
            ("tus-checksum-algorithm", "sha256,crc32c"),
        ]),
        Case::new(
            "options without the trailing slash",
            TestRequest::default().method(Method::OPTIONS).uri("/files"),
            204,
            None,
        )
        .with_headers(&[("tus-version", "1.0.0")]),
        Case::new("unsupported method on the collection", tus(Method::PUT, "/files/"), 405, Some("method_not_allowed")),
    ];
    run_table(&h.app, cases).await;
}

#[actix_web::test]
async fn policy_health_and_page() {
    let h = harness("max_file_size = \"1 GiB\"\nallowed_types = [\"image/*\"]").await;
    let policy = send(&h.app, TestRequest::get().uri("/policy")).await;
    assert_eq!(policy.status, 200);
    assert_eq!(policy.header("content-type"), Some("application/json"));
    let served = sluice_core::Policy::from_json(std::str::from_utf8(&policy.body).unwrap()).unwrap();
    assert_eq!(&served, h.state.engine.policy.as_ref(), "GET /policy parses back into the policy in force");
    assert_eq!(send(&h.app, TestRequest::get().uri("/healthz")).await.status, 200);
    let page = send(&h.app, TestRequest::get().uri("/")).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<html"));
}

#[actix_web::test]
async fn cors_preflight_and_exposed_headers() {
    let h = harness("").await;
    let preflight = send(
        &h.app,
        TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/files/")
            .insert_header(("Origin", "https://app.example"))
            .insert_header(("Access-Control-Request-Method", "PATCH"))
            .insert_header((
                "Access-Control-Request-Headers",
                "tus-resumable,upload-offset,content-type,upload-checksum",
            )),
    )
    .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert!(preflight.header("access-control-allow-methods").unwrap_or("").contains("PATCH"));
    let created = send(
        &h.app,
        tus(Method::POST, "/files/")
            .insert_header(("Upload-Length", "5"))
            .insert_header(("Origin", "https://app.example")),
    )
    .await;
    let exposed = created.header("access-control-expose-headers").unwrap_or("").to_ascii_lowercase();
    for header in ["location", "upload-offset", "upload-expires", "tus-checksum-algorithm", "upload-metadata"] {
        assert!(exposed.contains(header), "{header} is not exposed: {exposed}");
    }
}

#[actix_web::test]
async fn cors_allows_only_configured_origins_when_configured() {
    let settings = sluice_server::Settings { cors_origins: vec!["https://good.example".into()], ..Default::default() };
    let h = harness_with("", settings).await;
    let from = |origin: &'static str| {
        TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/files/")
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
    };
    let good = send(&h.app, from("https://good.example")).await;
    assert_eq!(good.header("access-control-allow-origin"), Some("https://good.example"));
    let bad = send(&h.app, from("https://evil.example")).await;
    assert_eq!(bad.header("access-control-allow-origin"), None, "{bad:?}");
}

#[actix_web::test]
async fn a_web_dir_is_served_at_the_root_without_shadowing_the_api() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<html>the page</html>").unwrap();
    std::fs::create_dir(web.path().join("pkg")).unwrap();
    std::fs::write(web.path().join("pkg").join("m.wasm"), b"\0asm").unwrap();
    let settings = sluice_server::Settings { web_dir: Some(web.path().to_path_buf()), ..Default::default() };
    let h = harness_with("", settings).await;
    let page = send(&h.app, TestRequest::get().uri("/")).await;
    assert_eq!((page.status, page.body.as_slice()), (200, &b"<html>the page</html>"[..]));
    let wasm = send(&h.app, TestRequest::get().uri("/pkg/m.wasm")).await;
    assert_eq!(wasm.header("content-type"), Some("application/wasm"), "instantiateStreaming needs the wasm type");
    assert_eq!(send(&h.app, TestRequest::get().uri("/policy")).await.status, 200);
    assert_eq!(send(&h.app, TestRequest::get().uri("/../../etc/passwd")).await.status, 404);
}
