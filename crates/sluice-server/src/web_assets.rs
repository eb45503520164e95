//! The upload page, its script, styles and wasm package, embedded at build time (`build.rs`),
//! so `sluice serve` alone serves a page that works. `--web-dir` serves a directory instead.
//!
//! A build made without the package (`cargo test` before `cargo xtask build-web`) serves a
//! placeholder at `/` that says how to get the page; a release build refuses to build that way
//! unless asked to (`SLUICE_EMBED_WEB=0`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Shown at `/` by a build without the embedded page.
const PLACEHOLDER: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Sluice</title>\
<h1>Sluice is running</h1><p>This build has no upload page embedded. Build it with \
<code>cargo xtask build-web</code> and rebuild the server, or start the server with \
<code>--web-dir DIR</code>. The tus endpoint is <a href=\"/files/\">/files/</a>, the policy \
<a href=\"/policy\">/policy</a>, the server's status <a href=\"/status\">/status</a>.</p></html>";

/// Registers `GET /` and `GET /{file}` for the embedded page (after every other route).
pub(crate) fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/", web::get().to(index)).route("/{path:.+}", web::get().to(file));
}

async fn index() -> HttpResponse {
    match find("index.html") {
        Some(bytes) if EMBEDDED => respond("index.html", bytes),
        _ => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(PLACEHOLDER),
    }
}

async fn file(req: HttpRequest) -> HttpResponse {
    let path = req.match_info().get("path").unwrap_or("");
    match find(path) {
        Some(bytes) => respond(path, bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

fn find(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

fn respond(path: &str, bytes: &'static [u8]) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type(path))));
    // The page may change with each build; revalidate rather than cache stale code.
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    res.body(bytes)
}

/// The content type of an embedded file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("pkg/sluice_browser_bg.wasm"), "application/wasm");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn an_embedded_build_holds_a_loadable_page() {
        if EMBEDDED {
            for needed in ["index.html", "app.js", "app.css", "pkg/sluice_browser.js", "pkg/sluice_browser_bg.wasm"] {
                assert!(find(needed).is_some(), "{needed} is not embedded");
            }
            assert!(find("pkg/sluice_browser_bg.wasm").is_some_and(|w| w.starts_with(b"\0asm")));
        } else {
            assert!(FILES.is_empty());
        }
    }
}
