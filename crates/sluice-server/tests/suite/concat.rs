//! tus concatenation: `Upload-Concat: partial` and `final;URL URL…`.

#![allow(clippy::unwrap_used)]

use crate::common;

use actix_web::http::Method;
use actix_web::test::TestRequest;
use common::*;
use std::time::{Duration, SystemTime};

fn partial(length: u64) -> TestRequest {
    tus(Method::POST, "/files/")
        .insert_header(("Upload-Length", length.to_string()))
        .insert_header(("Upload-Concat", "partial"))
}

fn final_of(parts: &[&str]) -> TestRequest {
    tus(Method::POST, "/files/").insert_header(("Upload-Concat", format!("final;{}", parts.join(" "))))
}

/// Creates a partial upload holding `data` (finished unless `data` is shorter than `length`).
async fn part<S, B>(app: &S, length: u64, data: &[u8]) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let reply = send(app, partial(length)).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let path = path_of(reply.header("location").unwrap());
    if !data.is_empty() {
        // tus-js-client sends the header on every request of a part: it is ignored there.
        let req = patch(&path, 0, data).insert_header(("Upload-Concat", "partial"));
        assert_eq!(send(app, req).await.status, 204);
    }
    path
}

#[actix_web::test]
async fn parts_join_in_order_into_a_complete_final_upload() {
    let h = harness("").await;
    let a = part(&h.app, 6, b"hello ").await;
    let empty = part(&h.app, 0, b"").await;
    let b = part(&h.app, 5, b"world").await;

    let head = send(&h.app, tus(Method::HEAD, &a)).await;
    assert_eq!(head.header("upload-concat"), Some("partial"), "HEAD echoes Upload-Concat on a partial");
    assert_eq!(head.header("upload-offset"), Some("6"));

    // Absolute and relative URLs, a zero-length part in the middle, order as listed.
    let absolute = format!("http://localhost:8080{b}");
    let reply = send(
        &h.app,
        final_of(&[&a, &empty, &absolute]).insert_header(("Upload-Metadata", format!("filename {}", b64("hi.txt")))),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let joined = path_of(reply.header("location").unwrap());
    assert_eq!(reply.header("upload-offset"), Some("11"));

    let head = send(&h.app, tus(Method::HEAD, &joined)).await;
    assert_eq!((head.header("upload-offset"), head.header("upload-length")), (Some("11"), Some("11")));
    let concat = head.header("upload-concat").unwrap();
    assert!(concat.starts_with("final;http://"), "HEAD on a final lists its parts: {concat}");
    assert_eq!(concat.split(' ').count(), 3);
    assert_eq!(send(&h.app, TestRequest::get().uri(&joined)).await.body, b"hello world");

    // The other order makes another file.
    let reply = send(&h.app, final_of(&[&b, &a])).await;
    let swapped = path_of(reply.header("location").unwrap());
    assert_eq!(send(&h.app, TestRequest::get().uri(&swapped)).await.body, b"worldhello ");

    // A partial is never announced on its own: only the two finals completed.
    assert_eq!(metric(&h, "sluice_uploads_completed_total"), 2.0);

    // Terminating a part afterwards leaves the final whole; terminating the final works.
    assert_eq!(send(&h.app, tus(Method::DELETE, &a)).await.status, 204);
    assert_eq!(send(&h.app, TestRequest::get().uri(&joined)).await.body, b"hello world");
    assert_eq!(send(&h.app, tus(Method::DELETE, &joined)).await.status, 204);
    assert_eq!(send(&h.app, tus(Method::HEAD, &joined)).await.status, 410);
}

fn metric<S>(h: &Harness<S>, name: &str) -> f64 {
    let text = h.state.engine.metrics.encode();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

#[actix_web::test]
async fn what_a_final_upload_may_name_and_what_it_may_not() {
    let h = harness("").await;
    let done = part(&h.app, 3, b"abc").await;
    let unfinished = part(&h.app, 10, b"abc").await;
    let whole = create(&h.app, Some(3), None).await;
    assert_eq!(send(&h.app, patch(&whole, 0, b"xyz")).await.status, 204);
    let joined = path_of(send(&h.app, final_of(&[&done])).await.header("location").unwrap());
    let unknown = "/files/0123456789abcdef0123456789abcdef";

    let cases = vec![
        Case::new("an unknown part", final_of(&[&done, unknown]), 404, Some("upload_not_found")),
        Case::new("a path elsewhere", final_of(&["/elsewhere/x"]), 404, Some("upload_not_found")),
        Case::new("an unfinished part", final_of(&[&done, &unfinished]), 400, Some("part_not_finished")),
        Case::new("a whole upload as a part", final_of(&[&whole]), 400, Some("not_a_partial")),
        Case::new("a final as a part", final_of(&[&joined]), 400, Some("not_a_partial")),
        Case::new(
            "no parts",
            tus(Method::POST, "/files/").insert_header(("Upload-Concat", "final;")),
            400,
            Some("invalid_concat"),
        ),
        Case::new(
            "an unknown form",
            tus(Method::POST, "/files/").insert_header(("Upload-Concat", "parallel")),
            400,
            Some("invalid_concat"),
        ),
        Case::new(
            "a final with a body",
            final_of(&[&done])
                .insert_header(("Content-Type", "application/offset+octet-stream"))
                .set_payload(b"data".to_vec()),
            403,
            Some("final_upload_immutable"),
        ),
        Case::new("PATCH on a final", patch(&joined, 3, b"more"), 403, Some("final_upload_immutable")),
    ];
    run_table(&h.app, cases).await;
    assert_eq!(send(&h.app, TestRequest::get().uri(&joined)).await.body, b"abc", "the final is unchanged");
    assert_eq!(send(&h.app, tus(Method::HEAD, &done)).await.header("upload-offset"), Some("3"), "parts unchanged");
}

#[actix_web::test]
async fn the_policy_judges_the_joined_file_as_a_whole() {
    let h = harness("max_file_size = 8\nallowed_types = [\"image/png\"]").await;
    // Parts are not sniffed on their own: a PNG's tail is not a PNG, and is accepted.
    let head = part(&h.app, 8, &PNG[..8]).await;
    let tail = part(&h.app, 8, &PNG[8..16]).await;
    let reply = send(&h.app, final_of(&[&head, &tail])).await;
    assert_eq!((reply.status, reply.code().as_deref()), (413, Some("file_too_large")), "16 bytes > 8: {reply:?}");

    let h = harness("allowed_types = [\"image/png\"]").await;
    let png = part(&h.app, 16, &PNG[..16]).await;
    let rest = part(&h.app, PNG.len() as u64 - 16, &PNG[16..]).await;
    let reply = send(&h.app, final_of(&[&png, &rest])).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let pdf = part(&h.app, PDF.len() as u64, PDF).await;
    let reply = send(&h.app, final_of(&[&pdf])).await;
    assert_eq!((reply.status, reply.code().as_deref()), (415, Some("type_not_allowed")), "{reply:?}");
}

#[actix_web::test]
async fn unfinished_parts_expire_like_any_unfinished_upload() {
    let h = harness("upload_expiry = \"1h\"").await;
    let unfinished = part(&h.app, 10, b"abc").await;
    let finished = part(&h.app, 3, b"abc").await;
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    h.age(&unfinished, two_hours_ago).await;
    assert_eq!(h.state.engine.sweep().await.unwrap().expired, 1);
    assert_eq!(send(&h.app, final_of(&[&finished, &unfinished])).await.status, 410, "an expired part is gone");
    assert_eq!(send(&h.app, final_of(&[&finished])).await.status, 201, "a finished part is kept for its final");
}

#[actix_web::test]
async fn a_declared_whole_file_digest_is_verified_and_recorded() {
    use sha2::{Digest, Sha256};
    let h = harness("").await;
    let data = b"hello world, in three appends";
    let good = sluice_core::checksum::to_hex(&Sha256::digest(data));
    let upload = |digest: &str| {
        tus(Method::POST, "/files/")
            .insert_header(("Upload-Length", data.len().to_string()))
            .insert_header(("Upload-Metadata", format!("filename {},sha256 {}", b64("a.txt"), b64(digest))))
    };
    // Intact, in three appends (the hash state is kept between requests).
    let path = path_of(send(&h.app, upload(&good)).await.header("location").unwrap());
    for (at, piece) in [(0, &data[..5]), (5, &data[5..17]), (17, &data[17..])] {
        assert_eq!(send(&h.app, patch(&path, at, piece)).await.status, 204);
    }
    let head = send(&h.app, tus(Method::HEAD, &path)).await;
    let want = {
        use base64::Engine as _;
        format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data)))
    };
    assert_eq!(head.header("repr-digest"), Some(want.as_str()), "the verified digest is shown on HEAD");

    // Altered on the way: the last append completes a file whose digest differs.
    let other = sluice_core::checksum::to_hex(&Sha256::digest(b"something else entirely, yes"));
    let path = path_of(send(&h.app, upload(&other)).await.header("location").unwrap());
    assert_eq!(send(&h.app, patch(&path, 0, &data[..10])).await.status, 204);
    let last = send(&h.app, patch(&path, 10, &data[10..])).await;
    assert_eq!((last.status, last.code().as_deref()), (460, Some("digest_mismatch")), "{last:?}");
    assert_eq!(send(&h.app, tus(Method::HEAD, &path)).await.status, 410, "the corrupt file is not kept");

    let bad = send(&h.app, upload("not hex")).await;
    assert_eq!((bad.status, bad.code().as_deref()), (400, Some("invalid_metadata")));
}

#[actix_web::test]
async fn a_final_upload_verifies_the_digest_declared_for_the_joined_file() {
    use sha2::{Digest, Sha256};
    let h = harness("").await;
    let a = part(&h.app, 6, b"hello ").await;
    let b = part(&h.app, 5, b"world").await;
    let declare = |digest: &[u8]| {
        let hex = sluice_core::checksum::to_hex(digest);
        final_of(&[&a, &b]).insert_header(("Upload-Metadata", format!("sha256 {}", b64(&hex))))
    };
    let joined = send(&h.app, declare(&Sha256::digest(b"hello world"))).await;
    assert_eq!(joined.status, 201, "{joined:?}");
    let head = send(&h.app, tus(Method::HEAD, &path_of(joined.header("location").unwrap()))).await;
    assert!(head.header("repr-digest").is_some_and(|d| d.starts_with("sha-256=:")), "{head:?}");

    let wrong = send(&h.app, declare(&Sha256::digest(b"hello there"))).await;
    assert_eq!((wrong.status, wrong.code().as_deref()), (460, Some("digest_mismatch")), "{wrong:?}");
}
