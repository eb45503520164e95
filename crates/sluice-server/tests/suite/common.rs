//! Shared harness for the in-process protocol tests: a real app driven through
//! actix's test service, and a table runner. The backend is the file system in a
//! temporary directory, the in-memory stores with `SLUICE_TEST_STORE=memory`,
//! PostgreSQL records and locks (in a schema of their own on `SLUICE_TEST_POSTGRES`) with
//! bytes on disk with `SLUICE_TEST_STORE=postgres`, or S3 bytes (real Garage;
//! `SLUICE_TEST_S3` and the server's S3 variables set) with records on the disk with
//! `SLUICE_TEST_STORE=s3` (`cargo xtask test` runs these tests against all four).
#![allow(dead_code, missing_docs)]

pub mod pg;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::Method;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use sluice_server::store::memory::{MemoryBytes, MemoryRecords};
use sluice_server::store::s3::{S3Bytes, S3Config};
use sluice_server::{configure, AppState, Backends, Settings};
use std::sync::Arc;

pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
pub const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n";

pub struct Harness<S> {
    pub app: S,
    pub dir: tempfile::TempDir,
    pub state: actix_web::web::Data<AppState>,
    memory: Option<Arc<MemoryBytes>>,
    s3: Option<Arc<S3Bytes>>,
}

impl<S> Harness<S> {
    /// How many uploads hold bytes in the backend.
    pub async fn data_files(&self) -> usize {
        if let Some(s3) = &self.s3 {
            return s3.stored_ids().await.expect("list the bucket").len();
        }
        match &self.memory {
            Some(bytes) => bytes.ids().len(),
            None => std::fs::read_dir(self.dir.path().join("uploads"))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "bin"))
                .count(),
        }
    }

    /// Whether the upload at `path` (`/files/{id}` or an id) holds bytes in the backend.
    pub async fn has_data(&self, path: &str) -> bool {
        let id = path.rsplit('/').next().unwrap();
        if let Some(s3) = &self.s3 {
            return s3.stored_ids().await.expect("list the bucket").iter().any(|i| i == id);
        }
        match &self.memory {
            Some(bytes) => bytes.ids().iter().any(|i| i.as_str() == id),
            None => self.dir.path().join("uploads").join(format!("{id}.bin")).exists(),
        }
    }

    /// Makes the upload at `path` look last written to at `when` (for expiry tests).
    pub async fn age(&self, path: &str, when: std::time::SystemTime) {
        let id = sluice_server::id::UploadId::parse(path.rsplit('/').next().unwrap()).unwrap();
        let records = self.state.engine.records();
        let mut record = records.get(&id).await.unwrap();
        record.modified_at = when;
        records.commit(&record, record.offset).await.unwrap();
    }
}

/// Whether this run uses the in-memory stores.
pub fn in_memory() -> bool {
    std::env::var("SLUICE_TEST_STORE").is_ok_and(|v| v == "memory")
}

pub async fn harness(
    policy_toml: &str,
) -> Harness<impl Service<actix_http::Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>>
{
    harness_with(policy_toml, Settings::default()).await
}

pub async fn harness_with(
    policy_toml: &str,
    settings: Settings,
) -> Harness<impl Service<actix_http::Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>>
{
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = sluice_core::Policy::from_toml(policy_toml).expect("policy");
    let (backends, memory, s3) = if std::env::var("SLUICE_TEST_STORE").is_ok_and(|v| v == "postgres") {
        (pg::backends(dir.path(), settings.takeover_wait).await, None, None)
    } else if in_memory() {
        let bytes = Arc::new(MemoryBytes::default());
        let mut backends = Backends::memory(settings.takeover_wait);
        backends.records = Arc::new(MemoryRecords::default());
        backends.bytes = bytes.clone();
        (backends, Some(bytes), None)
    } else if std::env::var("SLUICE_TEST_STORE").is_ok_and(|v| v == "s3") {
        let prefix = format!("tables-{}", sluice_server::id::UploadId::random().unwrap());
        let config = S3Config::from_test_env(&prefix, &dir.path().join("spool"))
            .expect("SLUICE_TEST_S3 for SLUICE_TEST_STORE=s3");
        let bytes = Arc::new(S3Bytes::open(config).expect("S3 byte store"));
        let mut backends = Backends::memory(settings.takeover_wait);
        backends.records = Arc::new(sluice_server::store::fs::open_records(dir.path(), false).expect("records"));
        backends.bytes = bytes.clone();
        (backends, None, Some(bytes))
    } else {
        (Backends::local(dir.path(), false, settings.takeover_wait).expect("storage"), None, None)
    };
    let state = AppState::new(policy, backends, settings);
    let app = test::init_service(App::new().configure(configure(state.clone()))).await;
    Harness { app, dir, state, memory, s3 }
}

/// A response, read whole (test bodies are small).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json.get("code").and_then(|c| c.as_str()).map(str::to_owned)
    }
}

pub async fn send<S, B>(app: &S, req: TestRequest) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = test::read_body(res).await.to_vec();
    Reply { status, headers, body }
}

/// A tus request builder with `Tus-Resumable` set.
pub fn tus(method: Method, uri: &str) -> TestRequest {
    TestRequest::default().method(method).uri(uri).insert_header(("Tus-Resumable", "1.0.0"))
}

/// A PATCH with the right content type.
pub fn patch(uri: &str, offset: u64, body: &[u8]) -> TestRequest {
    tus(Method::PATCH, uri)
        .insert_header(("Content-Type", "application/offset+octet-stream"))
        .insert_header(("Upload-Offset", offset.to_string()))
        .set_payload(body.to_vec())
}

/// Creates an upload and returns its path (`/files/{id}`).
pub async fn create<S, B>(app: &S, length: Option<u64>, metadata: Option<&str>) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = tus(Method::POST, "/files/");
    req = match length {
        Some(n) => req.insert_header(("Upload-Length", n.to_string())),
        None => req.insert_header(("Upload-Defer-Length", "1")),
    };
    if let Some(m) = metadata {
        req = req.insert_header(("Upload-Metadata", m));
    }
    let reply = send(app, req).await;
    assert_eq!(reply.status, 201, "create failed: {reply:?}");
    path_of(reply.header("location").expect("Location"))
}

/// The path part of an absolute upload URL.
pub fn path_of(location: &str) -> String {
    let start = location.find("/files/").expect("Location has /files/");
    location[start..].to_string()
}

/// Base64 for metadata values.
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// One row of a table test: a request and what must come back.
pub struct Case {
    pub name: &'static str,
    pub req: TestRequest,
    pub status: u16,
    pub code: Option<&'static str>,
    pub headers: &'static [(&'static str, &'static str)],
}

impl Case {
    pub fn new(name: &'static str, req: TestRequest, status: u16, code: Option<&'static str>) -> Case {
        Case { name, req, status, code, headers: &[] }
    }

    pub fn with_headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Case {
        self.headers = headers;
        self
    }
}

/// Runs each case; `"*"` as an expected header value means "present".
pub async fn run_table<S, B>(app: &S, cases: Vec<Case>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut failures = Vec::new();
    for case in cases {
        let reply = send(app, case.req).await;
        if reply.status != case.status {
            failures.push(format!(
                "{}: status {} (want {}) body {}",
                case.name,
                reply.status,
                case.status,
                String::from_utf8_lossy(&reply.body)
            ));
            continue;
        }
        if case.code.map(str::to_owned) != reply.code() && case.code.is_some() {
            failures.push(format!("{}: code {:?} (want {:?})", case.name, reply.code(), case.code));
        }
        for (name, want) in case.headers {
            match (reply.header(name), *want) {
                (None, _) => failures.push(format!("{}: missing header {name}", case.name)),
                (Some(_), "*") => {}
                (Some(got), want) if got != want => {
                    failures.push(format!("{}: {name} = {got:?} (want {want:?})", case.name))
                }
                _ => {}
            }
        }
        if reply.header("tus-resumable") != Some("1.0.0") {
            failures.push(format!("{}: no Tus-Resumable on the response", case.name));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}
