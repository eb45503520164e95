//! Authorization: bearer tokens on every upload route, uploads bound to the
//! token's subject, and a token's size cap.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use common::*;
use sluice_server::auth::{issue, unix_now, AuthKey, Claims};
use sluice_server::Settings;

const SECRET: &str = "a test secret that is long enough!!";

fn key() -> AuthKey {
    AuthKey::new(SECRET).unwrap()
}

fn token(sub: &str) -> String {
    issue(&key(), &Claims { sub: sub.into(), exp: unix_now() + 3600, max_size: None }).unwrap()
}

fn bearer(req: TestRequest, token: &str) -> TestRequest {
    req.insert_header(("Authorization", format!("Bearer {token}")))
}

async fn secured(
    policy: &str,
) -> Harness<
    impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
> {
    harness_with(policy, Settings { auth: Some(key()), ..Default::default() }).await
}

#[actix_web::test]
async fn every_upload_route_needs_a_valid_token() {
    let h = secured("").await;
    let alice = token("alice");
    let created =
        send(&h.app, bearer(tus(Method::POST, "/files/").insert_header(("Upload-Length", "3")), &alice)).await;
    assert_eq!(created.status, 201);
    let up = path_of(created.header("location").unwrap());
    let expired = issue(&key(), &Claims { sub: "alice".into(), exp: unix_now() - 1, max_size: None }).unwrap();
    let forged = issue(
        &AuthKey::new("someone else's secret, also long enough").unwrap(),
        &Claims { sub: "alice".into(), exp: unix_now() + 60, max_size: None },
    )
    .unwrap();
    let requests = || {
        vec![
            ("create", tus(Method::POST, "/files/").insert_header(("Upload-Length", "3"))),
            ("head", tus(Method::HEAD, &up)),
            ("patch", patch(&up, 0, b"abc")),
            ("delete", tus(Method::DELETE, &up)),
            ("download", TestRequest::get().uri(&up)),
            (
                "form",
                TestRequest::post()
                    .uri("/upload")
                    .insert_header(("Content-Type", "multipart/form-data; boundary=x"))
                    .set_payload("--x--\r\n"),
            ),
            ("flow", TestRequest::get().uri("/flow?flowChunkNumber=1")),
        ]
    };
    for (credential, label) in [
        (None, "no token"),
        (Some(expired.as_str()), "expired"),
        (Some(forged.as_str()), "forged"),
        (Some("Basic abc"), "not bearer"),
    ] {
        for (route, req) in requests() {
            let req = match credential {
                Some("Basic abc") => req.insert_header(("Authorization", "Basic abc")),
                Some(t) => bearer(req, t),
                None => req,
            };
            let reply = send(&h.app, req).await;
            assert_eq!((reply.status, reply.code().as_deref()), (401, Some("unauthorized")), "{label} {route}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{label} {route}");
        }
    }
    assert_eq!(
        send(&h.app, TestRequest::default().method(Method::OPTIONS).uri("/files/")).await.status,
        204,
        "discovery stays open"
    );
    assert_eq!(send(&h.app, TestRequest::get().uri("/policy")).await.status, 200);
    assert_eq!(
        send(&h.app, bearer(tus(Method::HEAD, &up), &alice)).await.header("upload-offset"),
        Some("0"),
        "nothing was written"
    );
}

#[actix_web::test]
async fn another_subject_sees_404_everywhere() {
    let h = secured("").await;
    let (alice, bob) = (token("alice"), token("bob"));
    let created =
        send(&h.app, bearer(tus(Method::POST, "/files/").insert_header(("Upload-Length", "3")), &alice)).await;
    let up = path_of(created.header("location").unwrap());
    for (name, req) in [
        ("head", tus(Method::HEAD, &up)),
        ("patch", patch(&up, 0, b"abc")),
        ("download", TestRequest::get().uri(&up)),
        ("delete", tus(Method::DELETE, &up)),
    ] {
        let reply = send(&h.app, bearer(req, &bob)).await;
        assert_eq!((reply.status, reply.code().as_deref()), (404, Some("upload_not_found")), "bob {name}");
    }
    assert_eq!(send(&h.app, bearer(patch(&up, 0, b"abc"), &alice)).await.status, 204);
    assert_eq!(send(&h.app, bearer(TestRequest::get().uri(&up), &alice)).await.body, b"abc");
    assert_eq!(send(&h.app, bearer(tus(Method::DELETE, &up), &alice)).await.status, 204);
}

#[actix_web::test]
async fn a_token_can_cap_the_file_size() {
    let h = secured("max_file_size = 1000").await;
    let small = issue(&key(), &Claims { sub: "carol".into(), exp: unix_now() + 60, max_size: Some(10) }).unwrap();
    let over = send(&h.app, bearer(tus(Method::POST, "/files/").insert_header(("Upload-Length", "11")), &small)).await;
    assert_eq!((over.status, over.code().as_deref()), (413, Some("file_too_large")));
    let deferred =
        send(&h.app, bearer(tus(Method::POST, "/files/").insert_header(("Upload-Defer-Length", "1")), &small)).await;
    let up = path_of(deferred.header("location").unwrap());
    let past = send(&h.app, bearer(patch(&up, 0, &[1u8; 11]), &small)).await;
    assert_eq!(past.status, 413, "the cap holds for deferred lengths too");
    let ok = send(&h.app, bearer(tus(Method::POST, "/files/").insert_header(("Upload-Length", "10")), &small)).await;
    assert_eq!(ok.status, 201);
}

#[actix_web::test]
async fn form_and_flow_uploads_belong_to_their_subject() {
    let h = secured("").await;
    let (alice, bob) = (token("alice"), token("bob"));
    let body = "--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--x--\r\n";
    let form = TestRequest::post()
        .uri("/upload")
        .insert_header(("Content-Type", "multipart/form-data; boundary=x"))
        .set_payload(body);
    let stored = send(&h.app, bearer(form, &alice)).await;
    assert_eq!(stored.status, 201, "{}", String::from_utf8_lossy(&stored.body));
    let id = serde_json::from_slice::<serde_json::Value>(&stored.body).unwrap()["files"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(send(&h.app, bearer(tus(Method::HEAD, &format!("/files/{id}")), &bob)).await.status, 404);
    assert_eq!(send(&h.app, bearer(tus(Method::HEAD, &format!("/files/{id}")), &alice)).await.status, 200);

    let query = "flowChunkNumber=1&flowChunkSize=5&flowCurrentChunkSize=5&flowTotalSize=5&flowIdentifier=5-a&flowFilename=a.txt&flowTotalChunks=1";
    let chunk = TestRequest::post()
        .uri(&format!("/flow?{query}"))
        .insert_header(("Content-Type", "application/octet-stream"))
        .set_payload("hello");
    assert_eq!(send(&h.app, bearer(chunk, &alice)).await.status, 200);
    let test = |t: &str| bearer(TestRequest::get().uri(&format!("/flow?{query}")), t);
    assert_eq!(send(&h.app, test(&alice)).await.status, 200);
    assert_eq!(send(&h.app, test(&bob)).await.status, 204, "same client address, another user: another scope");
}
