//! `POST /files/`: creation, defer-length, creation-with-upload, and every
//! limit a creation request can cross.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use common::*;

/// A creation request; it names the file `a.txt` unless a case sets other metadata.
fn post() -> actix_web::test::TestRequest {
    tus(Method::POST, "/files/").insert_header(("Upload-Metadata", "filename YS50eHQ="))
}

#[actix_web::test]
async fn creation_table() {
    let h = harness(
        r#"
        max_file_size = 1000
        min_file_size = 1
        allowed_extensions = ["pdf", "png", "txt"]
        max_filename_length = 20
        max_metadata_size = 200
        "#,
    )
    .await;
    let name = |n: &str| format!("filename {}", b64(n));
    let cases = vec![
        Case::new("length", post().insert_header(("Upload-Length", "100")), 201, None).with_headers(&[
            ("location", "*"),
            ("upload-expires", "*"),
            ("upload-offset", "0"),
        ]),
        Case::new("length at the limit", post().insert_header(("Upload-Length", "1000")), 201, None),
        Case::new(
            "length past the limit",
            post().insert_header(("Upload-Length", "1001")),
            413,
            Some("file_too_large"),
        )
        .with_headers(&[("tus-max-size", "1000")]),
        Case::new(
            "length below the minimum",
            post().insert_header(("Upload-Length", "0")),
            422,
            Some("file_too_small"),
        ),
        Case::new("no length", post(), 400, Some("upload_length_required")),
        Case::new(
            "both length and deferral",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Defer-Length", "1")),
            400,
            Some("invalid_header"),
        ),
        Case::new("deferred", post().insert_header(("Upload-Defer-Length", "1")), 201, None),
        Case::new(
            "deferral other than 1",
            post().insert_header(("Upload-Defer-Length", "2")),
            400,
            Some("invalid_header"),
        ),
        Case::new("negative length", post().insert_header(("Upload-Length", "-1")), 400, Some("invalid_header")),
        Case::new("length not a number", post().insert_header(("Upload-Length", "ten")), 400, Some("invalid_header")),
        Case::new(
            "length that overflows",
            post().insert_header(("Upload-Length", "184467440737095516160")),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "length sent twice",
            post().append_header(("Upload-Length", "5")).append_header(("Upload-Length", "6")),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "no Tus-Resumable",
            actix_web::test::TestRequest::post().uri("/files/").insert_header(("Upload-Length", "5")),
            412,
            Some("unsupported_version"),
        )
        .with_headers(&[("tus-version", "1.0.0")]),
        Case::new(
            "old Tus-Resumable",
            actix_web::test::TestRequest::post()
                .uri("/files/")
                .insert_header(("Tus-Resumable", "0.2.2"))
                .insert_header(("Upload-Length", "5")),
            412,
            Some("unsupported_version"),
        ),
        Case::new(
            "metadata with a good name",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Metadata", name("a.PDF"))),
            201,
            None,
        ),
        Case::new(
            "metadata with bad base64",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Metadata", "filename %%%")),
            400,
            Some("invalid_metadata"),
        ),
        Case::new(
            "metadata with a duplicate key",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Metadata", "a YQ==,a Yg==")),
            400,
            Some("invalid_metadata"),
        ),
        Case::new(
            "metadata too large",
            post()
                .insert_header(("Upload-Length", "5"))
                .insert_header(("Upload-Metadata", format!("big {}", b64(&"x".repeat(300))))),
            431,
            Some("metadata_too_large"),
        ),
        Case::new(
            "extension not allowed",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Metadata", name("run.exe"))),
            415,
            Some("extension_not_allowed"),
        ),
        Case::new(
            "no name while extensions are restricted",
            tus(Method::POST, "/files/").insert_header(("Upload-Length", "5")),
            422,
            Some("filename_required"),
        ),
        Case::new(
            "name with a path",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Metadata", name("../../etc/a.txt"))),
            422,
            Some("invalid_filename"),
        ),
        Case::new(
            "name with NUL",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Metadata", name("a\0.txt"))),
            422,
            Some("invalid_filename"),
        ),
        Case::new(
            "name too long",
            post()
                .insert_header(("Upload-Length", "5"))
                .insert_header(("Upload-Metadata", name("abcdefghijklmnopq.txt"))),
            422,
            Some("filename_too_long"),
        ),
        Case::new(
            "an Upload-Concat of no known form (concatenation itself: tests/suite/concat.rs)",
            post().insert_header(("Upload-Length", "5")).insert_header(("Upload-Concat", "partial;x")),
            400,
            Some("invalid_concat"),
        ),
    ];
    run_table(&h.app, cases).await;
}

#[actix_web::test]
async fn creation_with_upload_stores_the_body() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        post()
            .insert_header(("Upload-Length", "11"))
            .insert_header(("Content-Type", "application/offset+octet-stream"))
            .set_payload("hello world"),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.header("upload-offset"), Some("11"));
    assert_eq!(reply.header("upload-expires"), None, "a complete upload does not expire");
    let path = path_of(reply.header("location").unwrap());
    let got = send(&h.app, actix_web::test::TestRequest::get().uri(&path)).await;
    assert_eq!(got.body, b"hello world");
}

#[actix_web::test]
async fn creation_with_upload_refuses_a_body_of_another_type() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        post().insert_header(("Upload-Length", "5")).insert_header(("Content-Type", "text/plain")).set_payload("hello"),
    )
    .await;
    assert_eq!((reply.status, reply.code().as_deref()), (415, Some("invalid_content_type")));
}

#[actix_web::test]
async fn creation_with_upload_sniffs_and_removes_a_refused_type() {
    let h = harness("allowed_types = [\"application/pdf\"]").await;
    let reply = send(
        &h.app,
        post()
            .insert_header(("Upload-Length", PNG.len().to_string()))
            .insert_header(("Upload-Metadata", format!("filename {}", b64("report.pdf"))))
            .insert_header(("Content-Type", "application/offset+octet-stream"))
            .set_payload(PNG),
    )
    .await;
    assert_eq!((reply.status, reply.code().as_deref()), (415, Some("type_not_allowed")), "{reply:?}");
    let message = serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()["message"].clone();
    assert_eq!(message, "This file is a PNG image; only PDF documents are accepted.");
    let path = path_of(reply.header("location").expect("Location is given even on failure"));
    let head = send(&h.app, tus(Method::HEAD, &path)).await;
    assert_eq!(head.status, 410, "the refused upload is removed");
    assert_eq!(h.data_files().await, 0, "no data file is left behind");
}

#[actix_web::test]
async fn empty_files_have_no_type() {
    let h = harness("allowed_types = [\"image/*\"]").await;
    let reply = send(&h.app, post().insert_header(("Upload-Length", "0"))).await;
    assert_eq!((reply.status, reply.code().as_deref()), (415, Some("type_not_allowed")));
    let any = harness("").await;
    let reply = send(&any.app, post().insert_header(("Upload-Length", "0"))).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("upload-expires"), None, "an empty upload is complete at once");
}
