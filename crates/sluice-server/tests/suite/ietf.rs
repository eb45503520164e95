//! The IETF resumable-uploads draft on `/files/`, interop versions 3 to 8: one test per
//! item of the server checklist (numbers as in the draft notes), each run for every
//! version, with raw requests against the real app.

#![allow(clippy::unwrap_used)]

use crate::common;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use common::*;
use sluice_core::rufh::{field, InteropVersion, Problem, ProblemType, UploadLimit, PARTIAL_UPLOAD, PROBLEM_JSON};
use sluice_core::Reason;

const POLICY: &str = "max_file_size = 1000\nmax_chunk_size = 100\nupload_expiry = \"1h\"";

fn versions() -> impl Iterator<Item = InteropVersion> {
    InteropVersion::ALL.into_iter()
}

fn v(n: i64) -> InteropVersion {
    InteropVersion::new(n).unwrap()
}

/// A request speaking `version` of the draft.
fn draft(method: Method, uri: &str, version: InteropVersion) -> TestRequest {
    TestRequest::default().method(method).uri(uri).insert_header((field::INTEROP_VERSION, version.to_string()))
}

/// Adds the version's completeness field saying `complete`.
fn complete(req: TestRequest, version: InteropVersion, complete: bool) -> TestRequest {
    req.insert_header(version.render_complete(complete))
}

/// A creation: `Upload-Complete` (or v3's field), optional `Upload-Length`, optional content.
fn creation(version: InteropVersion, done: bool, length: Option<u64>, body: &[u8]) -> TestRequest {
    let mut req = complete(draft(Method::POST, "/files/", version), version, done);
    if let Some(length) = length {
        req = req.insert_header((field::UPLOAD_LENGTH, length.to_string()));
    }
    req.set_payload(body.to_vec())
}

/// An append, with `application/partial-upload` where the version needs it.
fn append(version: InteropVersion, path: &str, offset: u64, done: Option<bool>, body: &[u8]) -> TestRequest {
    let mut req = draft(Method::PATCH, path, version).insert_header((field::UPLOAD_OFFSET, offset.to_string()));
    if let Some(content_type) = version.append_content_type() {
        req = req.insert_header(("Content-Type", content_type));
    }
    if let Some(done) = done {
        req = complete(req, version, done);
    }
    req.set_payload(body.to_vec())
}

/// Creates an upload (careful creation: `?0`, no content) and returns its path.
async fn create_upload<S, B>(app: &S, version: InteropVersion, length: Option<u64>) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let reply = send(app, creation(version, false, length, b"")).await;
    assert_eq!(reply.status, 201, "v{version} create: {reply:?}");
    path_of(reply.header("location").expect("Location"))
}

/// Collects every mismatch so one run shows them all.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    /// The status, the reason code and, for an error, the problem details body with the
    /// problem type the version defines for that reason (else `about:blank`).
    fn status(&mut self, what: &str, version: InteropVersion, reply: &Reply, status: u16, reason: Option<Reason>) {
        if reply.status != status {
            self.0.push(format!(
                "v{version} {what}: status {} (want {status}) body {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
            return;
        }
        if reply.header("tus-resumable").is_some() {
            self.0.push(format!("v{version} {what}: a draft response carries Tus-Resumable"));
        }
        let Some(reason) = reason else { return };
        if reply.header("content-type") != Some(PROBLEM_JSON) {
            self.0.push(format!(
                "v{version} {what}: content-type {:?}, want {PROBLEM_JSON}",
                reply.header("content-type")
            ));
        }
        let Some(problem) = Problem::from_json(&String::from_utf8_lossy(&reply.body)) else {
            self.0.push(format!("v{version} {what}: body is not problem details"));
            return;
        };
        if problem.reason() != Some(reason) {
            self.0.push(format!(
                "v{version} {what}: code {:?} (want {}): {:?}",
                problem.code,
                reason.code(),
                problem.detail
            ));
        }
        if problem.status != Some(status) {
            self.0.push(format!("v{version} {what}: problem status {:?}", problem.status));
        }
    }

    /// The problem type of an error body.
    fn problem(&mut self, what: &str, version: InteropVersion, reply: &Reply, want: Option<ProblemType>) {
        let problem = Problem::from_json(&String::from_utf8_lossy(&reply.body));
        let got = problem.as_ref().and_then(Problem::problem_type);
        if got != want {
            self.0.push(format!("v{version} {what}: problem type {got:?} (want {want:?})"));
        }
        if want.is_none() && problem.as_ref().map(|p| p.kind.as_str()) != Some("about:blank") {
            self.0.push(format!("v{version} {what}: untyped problem is not about:blank"));
        }
    }

    /// A header's value; `Some("*")` means present with any value, `None` absent.
    fn header(&mut self, what: &str, version: InteropVersion, reply: &Reply, name: &str, want: Option<&str>) {
        match (reply.header(name), want) {
            (None, None) | (Some(_), Some("*")) => {}
            (got, want) if got == want => {}
            (got, want) => self.0.push(format!("v{version} {what}: {name} = {got:?} (want {want:?})")),
        }
    }

    /// The completeness field says `complete`.
    fn complete(&mut self, what: &str, version: InteropVersion, reply: &Reply, complete: bool) {
        let (name, value) = version.render_complete(complete);
        self.header(what, version, reply, name, Some(value));
    }

    /// `Upload-Limit` (version 6 on) of an unfinished upload: the policy's sizes, and the
    /// seconds it has left (the hour of `upload_expiry`, less the test's own run time).
    fn lifetime_limit(&mut self, what: &str, version: InteropVersion, reply: &Reply) {
        let got = reply.header(field::UPLOAD_LIMIT);
        if !version.has_upload_limit() {
            return self.header(what, version, reply, field::UPLOAD_LIMIT, None);
        }
        let policy = sluice_core::Policy::from_toml(POLICY).unwrap();
        let want = UploadLimit::from_policy(&policy);
        match got.and_then(|value| UploadLimit::parse(version, value)) {
            Some(limit)
                if limit == UploadLimit { max_age: limit.max_age, ..want }
                    && limit.max_age.is_some_and(|s| (3500..=3600).contains(&s)) => {}
            _ => self
                .0
                .push(format!("v{version} {what}: Upload-Limit {got:?}, want the policy's with max-age near 3600")),
        }
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "{} check(s) failed:\n{}", self.0.len(), self.0.join("\n"));
    }
}

/// The `Upload-Limit` the policy renders to for `version`.
fn limit(version: InteropVersion) -> Option<String> {
    let policy = sluice_core::Policy::from_toml(POLICY).unwrap();
    UploadLimit::from_policy(&policy).render(version)
}

// A. Dispatch

#[actix_web::test]
async fn a1_supported_interop_version_speaks_the_draft_and_tus_stays_tus() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, creation(version, false, Some(10), b"")).await;
        f.status("creation", version, &reply, 201, None);
        f.header("creation", version, &reply, "location", Some("*"));
        f.header("creation", version, &reply, field::INTEROP_VERSION, Some(&version.to_string()));
        // A supported interop version wins over Tus-Resumable (as in tusd).
        let both =
            send(&h.app, creation(version, false, Some(10), b"").insert_header(("Tus-Resumable", "1.0.0"))).await;
        f.status("creation with Tus-Resumable too", version, &both, 201, None);
        f.complete("creation with Tus-Resumable too", version, &both, false);
    }
    let tus = send(&h.app, tus(Method::POST, "/files/").insert_header(("Upload-Length", "10"))).await;
    assert_eq!(tus.status, 201);
    assert_eq!(tus.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(tus.header(field::UPLOAD_COMPLETE), None);
    f.assert_none();
}

#[actix_web::test]
async fn a2_unsupported_or_malformed_interop_version_is_refused_clearly() {
    let h = harness(POLICY).await;
    for (value, status, reason) in [
        ("2", 412, Reason::UnsupportedVersion),
        ("9", 412, Reason::UnsupportedVersion),
        ("six", 400, Reason::InvalidHeader),
        ("6.0", 400, Reason::InvalidHeader),
    ] {
        let reply = send(
            &h.app,
            TestRequest::post()
                .uri("/files/")
                .insert_header((field::INTEROP_VERSION, value))
                .insert_header((field::UPLOAD_COMPLETE, "?0")),
        )
        .await;
        assert_eq!(reply.status, status, "{value}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some(PROBLEM_JSON), "{value}");
        assert_eq!(reply.code().as_deref(), Some(reason.code()), "{value}");
        assert_eq!(reply.header("location"), None, "{value}: nothing is created");
    }
}

#[actix_web::test]
async fn a3_each_version_reads_its_own_completeness_field_and_only_booleans() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        // The other version's field does not count: the creation has no completeness field.
        let other = if version == v(3) { field::UPLOAD_COMPLETE } else { field::UPLOAD_INCOMPLETE };
        let reply = send(&h.app, draft(Method::POST, "/files/", version).insert_header((other, "?0"))).await;
        f.status("creation with the other version's field", version, &reply, 400, Some(Reason::InvalidHeader));
        // `1` is not an sf-boolean: refused before 8, ignored from 8 (so missing: refused too).
        let reply =
            send(&h.app, draft(Method::POST, "/files/", version).insert_header((version.complete_field(), "1"))).await;
        f.status("creation with a non-boolean", version, &reply, 400, Some(Reason::InvalidHeader));
    }
    f.assert_none();
}

// B. OPTIONS

#[actix_web::test]
async fn b4_b5_options_announces_upload_limit_and_accept_patch() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, draft(Method::OPTIONS, "/files/", version)).await;
        f.status("OPTIONS", version, &reply, 204, None);
        f.header("OPTIONS", version, &reply, field::UPLOAD_LIMIT, limit(version).as_deref());
        let accept_patch = version.append_content_type();
        f.header("OPTIONS", version, &reply, "accept-patch", accept_patch);
    }
    assert_eq!(limit(v(6)).unwrap(), "max-size=1000, max-append-size=100, expires=3600");
    assert_eq!(limit(v(7)).unwrap(), "max-size=1000, max-append-size=100, max-age=3600");
    f.assert_none();
}

#[actix_web::test]
async fn b6_cors_allows_and_exposes_the_drafts_fields() {
    let h = harness(POLICY).await;
    let asked = "upload-complete,upload-incomplete,upload-offset,upload-length,upload-draft-interop-version,content-type,content-disposition,repr-digest";
    let preflight = send(
        &h.app,
        TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/files/")
            .insert_header(("Origin", "https://app.example"))
            .insert_header(("Access-Control-Request-Method", "PATCH"))
            .insert_header(("Access-Control-Request-Headers", asked)),
    )
    .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    let allowed = preflight.header("access-control-allow-headers").unwrap_or("").to_ascii_lowercase();
    for header in asked.split(',') {
        assert!(allowed.contains(header), "{header} is not allowed: {allowed}");
    }
    let created =
        send(&h.app, creation(v(6), false, Some(5), b"").insert_header(("Origin", "https://app.example"))).await;
    let exposed = created.header("access-control-expose-headers").unwrap_or("").to_ascii_lowercase();
    for header in [
        "location",
        "upload-offset",
        "upload-complete",
        "upload-incomplete",
        "upload-length",
        "upload-limit",
        "upload-draft-interop-version",
    ] {
        assert!(exposed.contains(header), "{header} is not exposed: {exposed}");
    }
}

// C. Upload creation

#[actix_web::test]
async fn c7_creation_is_a_post() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, complete(draft(Method::PUT, "/files/", version), version, false)).await;
        f.status("PUT creation", version, &reply, 405, Some(Reason::MethodNotAllowed));
    }
    f.assert_none();
}

#[actix_web::test]
async fn c8_creation_refuses_a_non_zero_offset() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let at_5 = creation(version, false, Some(10), b"").insert_header((field::UPLOAD_OFFSET, "5"));
        f.status("creation at offset 5", version, &send(&h.app, at_5).await, 400, Some(Reason::InvalidHeader));
        let at_0 = creation(version, false, Some(10), b"").insert_header((field::UPLOAD_OFFSET, "0"));
        f.status("creation at offset 0", version, &send(&h.app, at_0).await, 201, None);
    }
    f.assert_none();
}

#[actix_web::test]
async fn c9_conflicting_lengths_are_refused() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        // Upload-Length says 10, but this completing request ends the upload at 5 bytes.
        let reply = send(&h.app, creation(version, true, Some(10), b"hello")).await;
        f.status("?1 creation shorter than Upload-Length", version, &reply, 400, Some(Reason::InconsistentLength));
        f.problem(
            "?1 creation shorter than Upload-Length",
            version,
            &reply,
            version.problem_type(Reason::InconsistentLength),
        );
        f.header("?1 creation shorter than Upload-Length", version, &reply, "location", None);
    }
    f.assert_none();
}

#[actix_web::test]
async fn c10_size_limits_are_enforced_before_creating() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, creation(version, false, Some(1001), b"")).await;
        f.status("Upload-Length over max-size", version, &reply, 413, Some(Reason::FileTooLarge));
        f.header("Upload-Length over max-size", version, &reply, field::UPLOAD_LIMIT, limit(version).as_deref());
        f.header("Upload-Length over max-size", version, &reply, "location", None);
    }
    f.assert_none();
}

#[actix_web::test]
async fn c13_incomplete_creation_with_content() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, creation(version, false, Some(10), b"hello")).await;
        f.status("?0 creation with 5 bytes", version, &reply, 201, None);
        f.header("?0 creation with 5 bytes", version, &reply, "location", Some("*"));
        f.header("?0 creation with 5 bytes", version, &reply, field::UPLOAD_OFFSET, Some("5"));
        f.complete("?0 creation with 5 bytes", version, &reply, false);
        f.lifetime_limit("?0 creation with 5 bytes", version, &reply);
    }
    f.assert_none();
}

#[actix_web::test]
async fn c14_complete_creation_with_content() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, creation(version, true, None, b"hello")).await;
        f.status("?1 creation with 5 bytes", version, &reply, 201, None);
        f.header("?1 creation with 5 bytes", version, &reply, field::UPLOAD_OFFSET, Some("5"));
        f.complete("?1 creation with 5 bytes", version, &reply, true);
        let Some(location) = reply.header("location") else { continue };
        let head = send(&h.app, draft(Method::HEAD, &path_of(location), version)).await;
        f.status("HEAD after ?1 creation", version, &head, 204, None);
        f.complete("HEAD after ?1 creation", version, &head, true);
        f.header("HEAD after ?1 creation", version, &head, field::UPLOAD_LENGTH, Some("5"));
        let download = send(&h.app, TestRequest::get().uri(&path_of(location))).await;
        assert_eq!(download.body, b"hello", "v{version}: the stored bytes");
    }
    f.assert_none();
}

#[actix_web::test]
async fn c15_empty_creations() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, creation(version, false, None, b"")).await;
        f.status("empty ?0 creation", version, &reply, 201, None);
        f.header("empty ?0 creation", version, &reply, field::UPLOAD_OFFSET, Some("0"));
        f.complete("empty ?0 creation", version, &reply, false);

        let reply = send(&h.app, creation(version, true, None, b"")).await;
        f.status("empty ?1 creation", version, &reply, 201, None);
        f.complete("empty ?1 creation", version, &reply, true);
        let Some(location) = reply.header("location") else { continue };
        let head = send(&h.app, draft(Method::HEAD, &path_of(location), version)).await;
        f.complete("HEAD of an empty complete upload", version, &head, true);
        f.header("HEAD of an empty complete upload", version, &head, field::UPLOAD_LENGTH, Some("0"));
    }
    f.assert_none();
}

// D. Offset retrieval

#[actix_web::test]
async fn d18_d19_head_reports_offset_completeness_and_no_store() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(10)).await;
        send(&h.app, append(version, &path, 0, Some(false), b"abc")).await;
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        f.status("HEAD", version, &head, 204, None);
        f.header("HEAD", version, &head, field::UPLOAD_OFFSET, Some("3"));
        f.complete("HEAD", version, &head, false);
        f.header("HEAD", version, &head, "cache-control", Some("no-store"));
        f.header("HEAD", version, &head, field::UPLOAD_LENGTH, Some("10"));
        f.lifetime_limit("HEAD", version, &head);
        // Without a declared length, HEAD sends none.
        let path = create_upload(&h.app, version, None).await;
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        f.header("HEAD without a length", version, &head, field::UPLOAD_LENGTH, None);
    }
    f.assert_none();
}

#[actix_web::test]
async fn d18_offset_reaching_the_length_completes_only_through_version_6() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(3)).await;
        let reply = send(&h.app, append(version, &path, 0, Some(false), b"abc")).await;
        f.status("?0 append up to the length", version, &reply, 204, None);
        f.complete("?0 append up to the length", version, &reply, version.completes_at_length());
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        f.header("HEAD at the length", version, &head, field::UPLOAD_OFFSET, Some("3"));
        if version.completes_at_length() {
            // Through version 6 reaching the length completes the upload (tusd, tus-js-client).
            f.complete("HEAD at the length, completed", version, &head, true);
            continue;
        }
        f.complete("HEAD at the length, not completed", version, &head, false);
        // An empty ?1 append completes it.
        let reply = send(&h.app, append(version, &path, 3, Some(true), b"")).await;
        f.status("empty ?1 append", version, &reply, 204, None);
        f.complete("empty ?1 append", version, &reply, true);
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        f.complete("HEAD after the empty ?1 append", version, &head, true);
    }
    f.assert_none();
}

#[actix_web::test]
async fn d20_head_with_upload_fields_is_refused_through_version_6() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(10)).await;
        for (name, value) in [
            (field::UPLOAD_OFFSET, "0"),
            (version.complete_field(), version.render_complete(false).1),
            (field::UPLOAD_LENGTH, "10"),
        ] {
            let refused = version.fields_refused_on_head().contains(&name);
            let reply = send(&h.app, draft(Method::HEAD, &path, version).insert_header((name, value))).await;
            let what = format!("HEAD with {name}");
            if refused {
                f.status(&what, version, &reply, 400, Some(Reason::InvalidHeader));
            } else {
                f.status(&what, version, &reply, 204, None);
            }
        }
    }
    assert!(v(6).fields_refused_on_head().contains(&field::UPLOAD_LENGTH));
    assert!(v(7).fields_refused_on_head().is_empty());
    f.assert_none();
}

#[actix_web::test]
async fn d21_unknown_or_cancelled_upload_is_404() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply = send(&h.app, draft(Method::HEAD, "/files/0123456789abcdef0123456789abcdef", version)).await;
        f.status("HEAD of an unknown upload", version, &reply, 404, None);
    }
    f.assert_none();
}

// E. Upload append

#[actix_web::test]
async fn e24_append_needs_an_offset_and_from_8_a_completeness_field() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(5)).await;
        let mut req = complete(draft(Method::PATCH, &path, version), version, false).set_payload(b"ab".to_vec());
        if let Some(content_type) = version.append_content_type() {
            req = req.insert_header(("Content-Type", content_type));
        }
        f.status("PATCH without Upload-Offset", version, &send(&h.app, req).await, 400, Some(Reason::InvalidHeader));
        let reply = send(&h.app, append(version, &path, 0, None, b"hello")).await;
        match version.default_complete() {
            Some(true) => {
                f.status("PATCH without a completeness field", version, &reply, 204, None);
                f.complete("PATCH without a completeness field completes", version, &reply, true);
            }
            _ => f.status("PATCH without a completeness field", version, &reply, 400, Some(Reason::InvalidHeader)),
        }
    }
    f.assert_none();
}

#[actix_web::test]
async fn e25_append_media_type_from_version_6() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(10)).await;
        let untyped = complete(draft(Method::PATCH, &path, version), version, false)
            .insert_header((field::UPLOAD_OFFSET, "0"))
            .set_payload(b"ab".to_vec());
        let reply = send(&h.app, untyped).await;
        if version.append_content_type().is_some() {
            f.status("PATCH without partial-upload", version, &reply, 415, Some(Reason::InvalidContentType));
            f.header("PATCH without partial-upload", version, &reply, "accept-patch", Some(PARTIAL_UPLOAD));
            let tus_typed = complete(draft(Method::PATCH, &path, version), version, false)
                .insert_header((field::UPLOAD_OFFSET, "0"))
                .insert_header(("Content-Type", "application/offset+octet-stream"))
                .set_payload(b"ab".to_vec());
            f.status(
                "PATCH typed as tus",
                version,
                &send(&h.app, tus_typed).await,
                415,
                Some(Reason::InvalidContentType),
            );
        } else {
            f.status("PATCH without a content type", version, &reply, 204, None);
        }
    }
    f.assert_none();
}

#[actix_web::test]
async fn e26_append_to_an_unknown_upload_is_404() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let reply =
            send(&h.app, append(version, "/files/0123456789abcdef0123456789abcdef", 0, Some(false), b"x")).await;
        f.status("PATCH of an unknown upload", version, &reply, 404, Some(Reason::UploadNotFound));
    }
    f.assert_none();
}

#[actix_web::test]
async fn e27_mismatching_offset_is_409_with_the_current_offset() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(10)).await;
        send(&h.app, append(version, &path, 0, Some(false), b"hello")).await;
        let reply = send(&h.app, append(version, &path, 3, Some(false), b"lo")).await;
        f.status("PATCH at a stale offset", version, &reply, 409, Some(Reason::OffsetMismatch));
        f.header("PATCH at a stale offset", version, &reply, field::UPLOAD_OFFSET, Some("5"));
        f.complete("PATCH at a stale offset", version, &reply, false);
        f.problem("PATCH at a stale offset", version, &reply, version.problem_type(Reason::OffsetMismatch));
        if version.has_problem(ProblemType::MismatchingOffset) {
            let problem = Problem::from_json(&String::from_utf8_lossy(&reply.body)).unwrap();
            assert_eq!((problem.expected_offset, problem.provided_offset), (Some(5), Some(3)), "v{version}");
        }
    }
    f.assert_none();
}

#[actix_web::test]
async fn e28_append_to_a_completed_upload_per_version() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        for has_content in [true, false] {
            let reply = send(&h.app, creation(version, true, None, b"hello")).await;
            let path = path_of(reply.header("location").unwrap());
            let body: &[u8] = if has_content { b"more" } else { b"" };
            let reply = send(&h.app, append(version, &path, 5, Some(true), body)).await;
            let (reason, problem) = version.completed_append(has_content);
            let what = format!("append to a completed upload (content: {has_content})");
            f.status(&what, version, &reply, status_of(reason), Some(reason));
            f.problem(&what, version, &reply, problem);
            let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
            f.header("HEAD after the refused append", version, &head, field::UPLOAD_OFFSET, Some("5"));
        }
    }
    f.assert_none();
}

/// The status Sluice sends for a reason (the table in `error.rs`, restated for the rows used here).
fn status_of(reason: Reason) -> u16 {
    match reason {
        Reason::UploadGone => 410,
        Reason::UploadCompleted | Reason::InconsistentLength => 400,
        other => panic!("no status restated for {other}"),
    }
}

#[actix_web::test]
async fn e29_e30_appends_acknowledge_the_offset() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(10)).await;
        let reply = send(&h.app, append(version, &path, 0, Some(false), b"hello")).await;
        f.status("?0 append", version, &reply, 204, None);
        f.header("?0 append", version, &reply, field::UPLOAD_OFFSET, Some("5"));
        f.complete("?0 append", version, &reply, false);
        let reply = send(&h.app, append(version, &path, 5, Some(true), b"world")).await;
        f.status("?1 append", version, &reply, 204, None);
        f.header("?1 append", version, &reply, field::UPLOAD_OFFSET, Some("10"));
        f.complete("?1 append", version, &reply, true);
        let download = send(&h.app, TestRequest::get().uri(&path)).await;
        assert_eq!(download.body, b"helloworld", "v{version}");
    }
    f.assert_none();
}

#[actix_web::test]
async fn e31_lengths_must_agree_and_are_never_overrun() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let inconsistent = version.problem_type(Reason::InconsistentLength);
        let path = create_upload(&h.app, version, Some(10)).await;
        // ?1 with 5 bytes at 0 ends the upload at 5, not 10.
        let reply = send(&h.app, append(version, &path, 0, Some(true), b"hello")).await;
        f.status("?1 append ending before the length", version, &reply, 400, Some(Reason::InconsistentLength));
        f.problem("?1 append ending before the length", version, &reply, inconsistent);
        // Upload-Length on the append disagrees with the recorded one.
        let reply =
            send(&h.app, append(version, &path, 0, Some(false), b"he").insert_header((field::UPLOAD_LENGTH, "11")))
                .await;
        f.status("append with another Upload-Length", version, &reply, 400, Some(Reason::InconsistentLength));
        // Content past the length is not stored.
        let reply = send(&h.app, append(version, &path, 0, Some(false), b"hello world")).await;
        f.status("append past the length", version, &reply, 400, Some(Reason::InconsistentLength));
        f.problem("append past the length", version, &reply, inconsistent);
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        let offset: u64 = head.header(field::UPLOAD_OFFSET).and_then(|o| o.parse().ok()).unwrap_or(u64::MAX);
        assert!(offset <= 10, "v{version}: stored past the length ({offset})");
        // A length given on the first ?1 request is recorded from Content-Length.
        let path = create_upload(&h.app, version, None).await;
        let reply = send(&h.app, append(version, &path, 0, Some(true), b"abc")).await;
        f.status("?1 append fixes the length", version, &reply, 204, None);
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        f.header("HEAD after the length was fixed", version, &head, field::UPLOAD_LENGTH, Some("3"));
    }
    f.assert_none();
}

#[actix_web::test]
async fn e32_max_append_size_is_enforced() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(500)).await;
        let reply = send(&h.app, append(version, &path, 0, Some(false), &[b'x'; 101])).await;
        f.status("append over max-append-size", version, &reply, 413, Some(Reason::ChunkTooLarge));
        f.header("append over max-append-size", version, &reply, field::UPLOAD_LIMIT, limit(version).as_deref());
        let reply = send(&h.app, append(version, &path, 0, Some(false), &[b'x'; 100])).await;
        f.status("append at max-append-size", version, &reply, 204, None);
    }
    f.assert_none();
}

// F. Cancellation

#[actix_web::test]
async fn f35_f36_cancellation() {
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    for version in versions() {
        let path = create_upload(&h.app, version, Some(10)).await;
        for name in version.fields_refused_on_delete() {
            let value = if *name == field::UPLOAD_OFFSET { "0" } else { version.render_complete(false).1 };
            let reply = send(&h.app, draft(Method::DELETE, &path, version).insert_header((*name, value))).await;
            f.status(&format!("DELETE with {name}"), version, &reply, 400, Some(Reason::InvalidHeader));
        }
        let reply = send(&h.app, draft(Method::DELETE, &path, version)).await;
        f.status("DELETE", version, &reply, 204, None);
        let head = send(&h.app, draft(Method::HEAD, &path, version)).await;
        f.status("HEAD after DELETE", version, &head, 404, None);
        let reply = send(&h.app, append(version, &path, 0, Some(false), b"x")).await;
        assert!(matches!(reply.status, 404 | 410), "v{version}: PATCH after DELETE: {}", reply.status);
    }
    f.assert_none();
}

// Cross-cutting: metrics carry the protocol.

#[actix_web::test]
async fn metrics_count_draft_uploads_under_their_own_protocol_label() {
    let h = harness(POLICY).await;
    send(&h.app, creation(v(6), true, None, b"hello")).await;
    send(&h.app, tus(Method::POST, "/files/").insert_header(("Upload-Length", "5"))).await;
    let metrics = String::from_utf8(send(&h.app, TestRequest::get().uri("/metrics")).await.body).unwrap();
    assert!(metrics.contains("protocol=\"ietf\""), "{metrics}");
    assert!(metrics.contains("protocol=\"tus\""), "{metrics}");
}

// Whole-file integrity: `Repr-Digest` on creation is verified at completion.

#[actix_web::test]
async fn repr_digest_on_creation_is_verified_when_the_upload_completes() {
    use sha2::Digest as _;
    let h = harness(POLICY).await;
    let mut f = Failures::default();
    let digest_of = |bytes: &[u8]| sluice_core::repr_digest::format_sha256(&sha2::Sha256::digest(bytes).into());
    for version in versions() {
        let intact = creation(version, true, None, b"hello").insert_header(("Repr-Digest", digest_of(b"hello")));
        f.status("?1 creation with its Repr-Digest", version, &send(&h.app, intact).await, 201, None);
        let altered = creation(version, true, None, b"hello").insert_header(("Repr-Digest", digest_of(b"world")));
        let reply = send(&h.app, altered).await;
        f.status("?1 creation with another file's Repr-Digest", version, &reply, 460, Some(Reason::DigestMismatch));
        let malformed = creation(version, true, None, b"hello").insert_header(("Repr-Digest", "sha-256=:AAAA:"));
        let reply = send(&h.app, malformed).await;
        f.status("malformed Repr-Digest", version, &reply, 400, Some(Reason::InvalidHeader));
    }
    f.assert_none();
}
