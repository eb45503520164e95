//! `PATCH /files/{id}`: appends, and every refusal a chunk can meet. Each
//! refusal leaves the offset where it was.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use common::*;
use sluice_core::{tus::format_checksum, Algorithm};

fn digest(algorithm: Algorithm, data: &[u8]) -> String {
    let mut h = algorithm.hasher();
    h.update(data);
    format_checksum(algorithm, &h.finalize())
}

async fn offset_of<S, B>(app: &S, path: &str) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    send(app, tus(Method::HEAD, path)).await.header("upload-offset").unwrap_or("?").to_string()
}

#[actix_web::test]
async fn patch_table() {
    let h = harness("max_file_size = 100\nmax_chunk_size = 10").await;
    let up = create(&h.app, Some(20), None).await;
    assert_eq!(send(&h.app, patch(&up, 0, b"01234")).await.status, 204);
    let other_type = tus(Method::PATCH, &up)
        .insert_header(("Content-Type", "application/octet-stream"))
        .insert_header(("Upload-Offset", "5"))
        .set_payload("x");
    let cases = vec![
        Case::new("offset behind", patch(&up, 0, b"abc"), 409, Some("offset_mismatch")),
        Case::new("offset ahead", patch(&up, 9, b"abc"), 409, Some("offset_mismatch")),
        Case::new("wrong content type", other_type, 415, Some("invalid_content_type")),
        Case::new(
            "no content type",
            tus(Method::PATCH, &up).insert_header(("Upload-Offset", "5")).set_payload("x"),
            415,
            Some("invalid_content_type"),
        ),
        Case::new(
            "no offset",
            tus(Method::PATCH, &up).insert_header(("Content-Type", "application/offset+octet-stream")).set_payload("x"),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "negative offset",
            patch(&up, 5, b"x").insert_header(("Upload-Offset", "-5")),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "offset not a number",
            patch(&up, 5, b"x").insert_header(("Upload-Offset", "5.0")),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "offset overflows",
            patch(&up, 5, b"x").insert_header(("Upload-Offset", "99999999999999999999999")),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "offset twice",
            patch(&up, 5, b"x").append_header(("Upload-Offset", "5")),
            400,
            Some("invalid_header"),
        ),
        Case::new("chunk over max_chunk_size", patch(&up, 5, b"0123456789a"), 413, Some("chunk_too_large")),
        Case::new(
            "unsupported checksum",
            patch(&up, 5, b"x").insert_header(("Upload-Checksum", "md5 AAAA")),
            400,
            Some("checksum_algorithm_unsupported"),
        ),
        Case::new(
            "malformed checksum",
            patch(&up, 5, b"x").insert_header(("Upload-Checksum", "sha1 !!")),
            400,
            Some("invalid_header"),
        ),
        Case::new(
            "wrong checksum",
            patch(&up, 5, b"56789").insert_header(("Upload-Checksum", digest(Algorithm::Sha1, b"nope"))),
            460,
            Some("checksum_mismatch"),
        ),
        Case::new(
            "unknown id",
            patch("/files/0123456789abcdef0123456789abcdef", 0, b"x"),
            404,
            Some("upload_not_found"),
        ),
        Case::new(
            "no Tus-Resumable",
            actix_web::test::TestRequest::patch()
                .uri(&up)
                .insert_header(("Content-Type", "application/offset+octet-stream"))
                .insert_header(("Upload-Offset", "5"))
                .set_payload("x"),
            412,
            Some("unsupported_version"),
        ),
    ];
    run_table(&h.app, cases).await;
    assert_eq!(offset_of(&h.app, &up).await, "5", "no refusal moved the offset");

    let cases = vec![
        Case::new(
            "good sha1",
            patch(&up, 5, b"56789").insert_header(("Upload-Checksum", digest(Algorithm::Sha1, b"56789"))),
            204,
            None,
        )
        .with_headers(&[("upload-offset", "10"), ("upload-expires", "*")]),
        Case::new(
            "good sha256",
            patch(&up, 10, b"abcde").insert_header(("Upload-Checksum", digest(Algorithm::Sha256, b"abcde"))),
            204,
            None,
        )
        .with_headers(&[("upload-offset", "15")]),
        Case::new("past the length", patch(&up, 15, b"fghijk"), 413, Some("exceeds_upload_length")),
        Case::new(
            "good crc32c",
            patch(&up, 15, b"fghij").insert_header(("Upload-Checksum", digest(Algorithm::Crc32c, b"fghij"))),
            204,
            None,
        )
        .with_headers(&[("upload-offset", "20")]),
        Case::new("after completion", patch(&up, 20, b"x"), 413, Some("exceeds_upload_length")),
        Case::new("empty patch after completion", patch(&up, 20, b""), 204, None)
            .with_headers(&[("upload-offset", "20")]),
    ];
    run_table(&h.app, cases).await;
    let body = send(&h.app, actix_web::test::TestRequest::get().uri(&up)).await.body;
    assert_eq!(body, b"0123456789abcdefghij");
}

#[actix_web::test]
async fn required_checksums() {
    let h = harness("checksum = \"required\"\nchecksum_algorithms = [\"sha256\"]").await;
    let up = create(&h.app, Some(3), None).await;
    let cases = vec![
        Case::new("no checksum", patch(&up, 0, b"abc"), 400, Some("checksum_required")),
        Case::new(
            "not an accepted algorithm",
            patch(&up, 0, b"abc").insert_header(("Upload-Checksum", digest(Algorithm::Sha1, b"abc"))),
            400,
            Some("checksum_algorithm_unsupported"),
        ),
        Case::new(
            "accepted",
            patch(&up, 0, b"abc").insert_header(("Upload-Checksum", digest(Algorithm::Sha256, b"abc"))),
            204,
            None,
        ),
    ];
    run_table(&h.app, cases).await;
}

#[actix_web::test]
async fn deferred_length_is_declared_once() {
    let h = harness("max_file_size = 100").await;
    let up = create(&h.app, None, None).await;
    let cases = vec![
        Case::new("data before the length", patch(&up, 0, b"abc"), 204, None).with_headers(&[("upload-offset", "3")]),
        Case::new(
            "length over the limit",
            patch(&up, 3, b"d").insert_header(("Upload-Length", "101")),
            413,
            Some("file_too_large"),
        ),
        Case::new(
            "length below the offset",
            patch(&up, 3, b"").insert_header(("Upload-Length", "2")),
            400,
            Some("invalid_header"),
        ),
        Case::new("length declared", patch(&up, 3, b"de").insert_header(("Upload-Length", "6")), 204, None)
            .with_headers(&[("upload-offset", "5")]),
        Case::new(
            "length changed",
            patch(&up, 5, b"f").insert_header(("Upload-Length", "7")),
            400,
            Some("invalid_header"),
        ),
        Case::new("same length again", patch(&up, 5, b"f").insert_header(("Upload-Length", "6")), 204, None)
            .with_headers(&[("upload-offset", "6")]),
    ];
    run_table(&h.app, cases).await;
    let head = send(&h.app, tus(Method::HEAD, &up)).await;
    assert_eq!(head.header("upload-length"), Some("6"));
}

#[actix_web::test]
async fn the_type_is_sniffed_when_the_leading_bytes_are_in_even_across_chunks() {
    let h = harness("allowed_types = [\"application/pdf\"]").await;
    let up = create(&h.app, Some(PNG.len() as u64), Some(&format!("filename {}", b64("x.pdf")))).await;
    assert_eq!(send(&h.app, patch(&up, 0, &PNG[..4])).await.status, 204, "too few bytes to judge yet");
    let reply = send(&h.app, patch(&up, 4, &PNG[4..])).await;
    assert_eq!((reply.status, reply.code().as_deref()), (415, Some("type_not_allowed")));
    assert_eq!(send(&h.app, tus(Method::HEAD, &up)).await.status, 410, "the upload is removed");

    let ok = create(&h.app, Some(PDF.len() as u64), Some(&format!("filename {}", b64("x.pdf")))).await;
    assert_eq!(send(&h.app, patch(&ok, 0, &PDF[..3])).await.status, 204);
    assert_eq!(send(&h.app, patch(&ok, 3, &PDF[3..])).await.status, 204);
}

#[actix_web::test]
async fn the_sniff_window_is_the_first_8_kib_of_a_large_file() {
    let h = harness("allowed_types = [\"text/plain\"]").await;
    let mut data = b"hello, plain text\n".repeat(1000);
    data.truncate(20_000);
    let up = create(&h.app, Some(data.len() as u64 + 1), None).await;
    assert_eq!(send(&h.app, patch(&up, 0, &data)).await.status, 204, "text: accepted");
    // Binary past the window does not change the verdict made on the window.
    assert_eq!(send(&h.app, patch(&up, data.len() as u64, b"\0")).await.status, 204);
}

#[actix_web::test]
async fn method_override_turns_a_post_into_a_patch() {
    let h = harness("").await;
    let up = create(&h.app, Some(3), None).await;
    let reply =
        send(&h.app, patch(&up, 0, b"abc").method(Method::POST).insert_header(("X-HTTP-Method-Override", "PATCH")))
            .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.header("upload-offset"), Some("3"));
    let reply = send(&h.app, tus(Method::POST, &up).insert_header(("X-HTTP-Method-Override", "DELETE"))).await;
    assert_eq!(reply.status, 204);
    assert_eq!(send(&h.app, tus(Method::HEAD, &up)).await.status, 410);
}

#[actix_web::test]
async fn unsupported_methods_get_405_with_a_reason() {
    let h = harness("").await;
    let up = create(&h.app, Some(3), None).await;
    let reply = send(&h.app, tus(Method::PUT, &up)).await;
    assert_eq!((reply.status, reply.code().as_deref()), (405, Some("method_not_allowed")));
}
