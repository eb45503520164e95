//! `POST /upload`: multipart form uploads, every limit crossed, every
//! malformation answered precisely, and nothing left behind on refusal.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::test::TestRequest;
use common::*;
use sha2::{Digest, Sha256};

const BOUNDARY: &str = "sluiceBoundary7MA4YWxk";

/// Builds a multipart body from (name, file name, bytes) parts.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn post(body: Vec<u8>) -> TestRequest {
    TestRequest::post()
        .uri("/upload")
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(body)
}

#[actix_web::test]
async fn several_files_and_fields_are_stored_with_their_digests() {
    let h = harness("").await;
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let body = form(&[
        ("title", None, b"holiday"),
        ("a", Some("notes.txt"), b"plain text\n"),
        ("b", Some("photo.png"), PNG),
        ("c", Some("data.bin"), &big),
        ("tag", None, b"one"),
        ("tag", None, b"two"),
        ("empty", Some(""), b""),
    ]);
    let reply = send(&h.app, post(body)).await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "the empty file input is skipped");
    assert_eq!(files[0]["type"], "text/plain");
    assert_eq!(files[1]["type"], "image/png");
    assert_eq!(files[2]["size"], 300_000);
    assert_eq!(files[2]["sha256"], sluice_core::checksum::to_hex(&Sha256::digest(&big)));
    assert_eq!(json["fields"]["tag"], serde_json::json!(["one", "two"]));
    assert_eq!(json["fields"]["title"], serde_json::json!(["holiday"]));
    // The same storage as tus: a completed upload that HEAD and GET know.
    let path = format!("/files/{}", files[2]["id"].as_str().unwrap());
    let head = send(&h.app, tus(actix_web::http::Method::HEAD, &path)).await;
    assert_eq!((head.header("upload-offset"), head.header("upload-length")), (Some("300000"), Some("300000")));
    assert_eq!(send(&h.app, TestRequest::get().uri(&path)).await.body, big);
}

#[actix_web::test]
async fn refusals_are_precise_and_leave_nothing_behind() {
    let h = harness(
        r#"
        max_file_size = 1000
        allowed_types = ["text/plain", "image/png"]
        allowed_extensions = ["txt", "png"]
        max_form_files = 2
        max_form_fields = 3
        max_form_field_size = 10
        "#,
    )
    .await;
    let ok = ("ok", Some("fine.txt"), &b"fine\n"[..]);
    let huge_header = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\nX-Junk: {}\r\n\r\nv\r\n--{BOUNDARY}--\r\n",
        "j".repeat(100_000)
    );
    let many_fields: Vec<(&str, Option<&str>, &[u8])> = (0..2000).map(|_| ("f", None, &b"v"[..])).collect();
    let cases: Vec<(&str, TestRequest, u16, &str)> = vec![
        (
            "a file over the limit, after a good one",
            post(form(&[ok, ("big", Some("big.txt"), &[b'a'; 1001])])),
            413,
            "file_too_large",
        ),
        ("a disallowed type", post(form(&[ok, ("pdf", Some("x.png"), PDF)])), 415, "type_not_allowed"),
        ("a disallowed extension", post(form(&[ok, ("exe", Some("run.exe"), b"MZ")])), 415, "extension_not_allowed"),
        ("a name with a path", post(form(&[("p", Some("../../x.txt"), b"x")])), 422, "invalid_filename"),
        ("too many files", post(form(&[ok, ok, ok])), 422, "too_many_files"),
        ("thousands of tiny fields", post(form(&many_fields)), 422, "too_many_fields"),
        ("a text field too large", post(form(&[("note", None, b"0123456789a")])), 413, "field_too_large"),
        (
            "a declared length past what the form may carry",
            post(form(&[ok])).insert_header(("Content-Length", "999999999")),
            413,
            "request_too_large",
        ),
        (
            "no boundary",
            TestRequest::post()
                .uri("/upload")
                .insert_header(("Content-Type", "multipart/form-data"))
                .set_payload(form(&[ok])),
            400,
            "invalid_multipart",
        ),
        (
            "not a form",
            TestRequest::post().uri("/upload").insert_header(("Content-Type", "application/json")).set_payload("{}"),
            415,
            "invalid_content_type",
        ),
        ("a truncated body", post(form(&[ok])[..60].to_vec()), 400, "invalid_multipart"),
        (
            "a part without headers",
            post(format!("--{BOUNDARY}\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n").into_bytes()),
            400,
            "invalid_multipart",
        ),
        ("a huge part header", post(huge_header.into_bytes()), 431, "part_header_too_large"),
    ];
    let mut failures = Vec::new();
    for (name, req, status, code) in cases {
        let reply = send(&h.app, req).await;
        if (reply.status, reply.code().as_deref()) != (status, Some(code)) {
            failures.push(format!("{name}: {} {}", reply.status, String::from_utf8_lossy(&reply.body)));
        }
        if h.data_files().await != 0 {
            failures.push(format!("{name}: left a file behind"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let fine = send(&h.app, post(form(&[ok, ("pic", Some("p.png"), PNG)]))).await;
    assert_eq!(fine.status, 201, "the same server still takes a good form");
}

#[actix_web::test]
async fn a_browser_form_is_sent_back_to_the_page() {
    let h = harness("max_file_size = 10").await;
    let ok = send(&h.app, post(form(&[("a", Some("a.txt"), b"hi")])).insert_header(("Accept", "text/html,*/*"))).await;
    assert_eq!((ok.status, ok.header("location")), (303, Some("/?uploaded=1")));
    let refused =
        send(&h.app, post(form(&[("a", Some("a.txt"), &[b'x'; 11])])).insert_header(("Accept", "text/html"))).await;
    assert_eq!((refused.status, refused.header("location")), (303, Some("/?error=file_too_large")));
    assert_eq!(h.data_files().await, 1);
}
