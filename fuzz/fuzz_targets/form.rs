//! Multipart form handling: the real `POST /upload` (and `POST /flow`)
//! handlers, in-process with actix-web's test utilities and real file-system
//! storage, on arbitrary bodies and content types. Never a panic, never a 5xx,
//! and a refused form leaves no upload behind.
#![no_main]

use actix_web::test::{self, TestRequest};
use actix_web::App;
use libfuzzer_sys::fuzz_target;
use sluice_server::{configure, AppState, Backends, Settings};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;

const BOUNDARY: &str = "multipart/form-data; boundary=B";

const POLICY: &str = r#"
max_file_size = "64 KiB"
max_chunk_size = "16 KiB"
max_form_files = 4
max_form_fields = 8
max_form_field_size = 256
"#;

type Call = Rc<dyn Fn(TestRequest) -> Pin<Box<dyn Future<Output = (u16, Vec<u8>)>>>>;

struct Fixture {
    system: actix_web::rt::SystemRunner,
    app: Call,
    uploads: PathBuf,
    _dir: tempfile::TempDir,
}

thread_local! {
    // Leaked on purpose: dropping an actix system during thread-local
    // teardown at exit panics, and the app lives as long as the process.
    static FIXTURE: &'static Fixture = Box::leak(Box::new(fixture()));
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = actix_web::rt::System::new();
    let settings = Settings::default();
    let backends = Backends::local(dir.path(), false, settings.takeover_wait).expect("storage");
    let uploads = dir.path().join("uploads");
    let policy = sluice_core::Policy::from_toml(POLICY).expect("policy");
    let state = AppState::new(policy, backends, settings);
    let service = system.block_on(test::init_service(App::new().configure(configure(state))));
    let service = Rc::new(service);
    let app: Call = Rc::new(move |req: TestRequest| {
        let service = service.clone();
        Box::pin(async move {
            let res = test::call_service(&*service, req.to_request()).await;
            let status = res.status().as_u16();
            (status, test::read_body(res).await.to_vec())
        })
    });
    Fixture { system, app, uploads, _dir: dir }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).expect("uploads dir").map(|e| e.expect("entry").path()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (content_type, body) = if flags & 2 != 0 {
        (BOUNDARY.as_bytes(), rest)
    } else {
        match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (BOUNDARY.as_bytes(), rest),
        }
    };
    let uri = if flags & 1 == 0 {
        "/upload".to_string()
    } else {
        // A well-formed query, so the multipart path is what gets exercised.
        format!(
            "/flow?flowChunkNumber=1&flowChunkSize=16&flowTotalSize={}&flowTotalChunks=1&flowIdentifier=x&flowFilename=a.bin",
            body.len().min(16)
        )
    };
    let mut req = TestRequest::post().uri(&uri).set_payload(body.to_vec());
    if let Ok(value) = actix_web::http::header::HeaderValue::from_bytes(content_type) {
        req = req.insert_header((actix_web::http::header::CONTENT_TYPE, value));
    }
    if flags & 4 != 0 {
        req = req.insert_header(("Accept", "text/html"));
    }
    FIXTURE.with(|fixture| {
        let (status, answer) = fixture.system.block_on((fixture.app)(req));
        assert!(status < 500, "{status}: {}", String::from_utf8_lossy(&answer));
        if uri == "/upload" && !(200..300).contains(&status) && flags & 4 == 0 {
            // A refused form removes every file it stored (records stay as tombstones).
            let left: Vec<_> = files_in(&fixture.uploads)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "bin" || e == "pending"))
                .collect();
            assert!(left.is_empty(), "{status}: refused form left {left:?}");
        }
        for path in files_in(&fixture.uploads) {
            let _ = std::fs::remove_file(path);
        }
    });
});
