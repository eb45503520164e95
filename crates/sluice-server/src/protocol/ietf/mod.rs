//! The IETF draft "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload),
//! interop versions 3 to 8, on `/files/` beside tus 1.0.
//!
//! A request carrying `Upload-Draft-Interop-Version` is served here, unless it also
//! says `Tus-Resumable` and names a version this server does not speak: tus answers
//! that one (as tusd does). Every rule that differs between versions comes from
//! [`InteropVersion`]; refusals are RFC 9457 problem details. From version 7 only a
//! request with `Upload-Complete: ?1` completes an upload; through version 6 reaching
//! the known length does too (tus-js-client 4.3.1 ends a chunked file upload with `?0`).
//!
//! | request | module |
//! |---|---|
//! | `POST /files/` with `Upload-Complete` (`Upload-Incomplete` in version 3) | `create` |
//! | `HEAD /files/{id}` | `head` |
//! | `PATCH /files/{id}` | `append` |
//! | `DELETE /files/{id}` | `delete` |
//! | `OPTIONS /files/` | `options` |
//!
//! No `104 Upload Resumption Supported` is sent: actix-http writes no interim
//! response but `100 Continue`. Clients that create first and append after
//! (tus-js-client, "careful" creation) lose nothing; one that sends the whole file
//! in its creation request learns the upload's URL only from the final response.

mod append;
mod create;
mod delete;
mod head;
mod options;
mod reply;

use crate::auth::Caller;
use crate::AppState;
use actix_web::guard::GuardContext;
use actix_web::http::header::HeaderMap;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use reply::Refusal;
use sluice_core::rufh::{field, InteropVersion};
use sluice_core::Reason;

/// Route guard: whether a request is for this front-end rather than tus.
pub(crate) fn speaks_draft(ctx: &GuardContext<'_>) -> bool {
    is_draft(ctx.head().headers())
}

/// Whether request headers speak the draft: `Upload-Draft-Interop-Version` with a
/// version spoken here, or with any value and no `Tus-Resumable` (refused here then).
pub(crate) fn is_draft(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(field::INTEROP_VERSION) else { return false };
    let supported = value.to_str().is_ok_and(|v| InteropVersion::parse(v).is_ok());
    supported || !headers.contains_key("tus-resumable")
}

/// `/files/`: creation and discovery.
pub(crate) async fn collection(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let version = match reply::version(&req) {
        Ok(version) => version,
        Err(refusal) => return refusal.render(None),
    };
    let answer = match *req.method() {
        Method::POST => create::handle(&req, version, &caller, payload, &state).await,
        Method::OPTIONS => Ok(options::handle(version, &caller, &state)),
        _ => Err(not_allowed(&req)),
    };
    reply::finish(version, answer)
}

/// `/files/{id}`: offset retrieval, append and cancellation.
pub(crate) async fn upload(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let version = match reply::version(&req) {
        Ok(version) => version,
        Err(refusal) => return refusal.render(None),
    };
    let answer = match *req.method() {
        Method::HEAD => head::handle(&req, version, &caller, &state, &path).await,
        Method::PATCH => append::handle(&req, version, &caller, payload, &state, &path).await,
        Method::DELETE => delete::handle(&req, version, &caller, &state, &path).await,
        Method::OPTIONS => Ok(options::handle(version, &caller, &state)),
        _ => Err(not_allowed(&req)),
    };
    reply::finish(version, answer)
}

fn not_allowed(req: &HttpRequest) -> Refusal {
    crate::error::Error::new(Reason::MethodNotAllowed, format!("{} is not supported here.", req.method())).into()
}
