//! The tus 1.0.0 protocol: core, creation, creation-with-upload,
//! creation-defer-length, expiration, checksum and termination.
//!
//! One module per verb. Every tus response under `/files` carries
//! `Tus-Resumable: 1.0.0`; `X-HTTP-Method-Override` on a POST is honoured. Requests
//! speaking the IETF draft on the same routes go to [`super::ietf`].

mod create;
mod delete;
mod download;
mod head;
pub(crate) mod headers;
mod options;
mod patch;
pub(crate) mod upload;

use super::ietf;
use crate::error::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::guard;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::web::{self, ServiceConfig};
use sluice_core::tus::TUS_VERSION;
use sluice_core::Reason;

/// Registers `/files` and `/files/{id}`, wrapped in `cors`.
pub(crate) fn routes(cfg: &mut ServiceConfig, cors: actix_cors::Cors) {
    cfg.service(
        web::scope("/files")
            .wrap(from_fn(tus_resumable))
            .wrap(from_fn(method_override))
            .wrap(cors)
            .service(
                web::resource(["", "/"])
                    .name("tus_collection")
                    .route(web::route().guard(guard::fn_guard(ietf::speaks_draft)).to(ietf::collection))
                    .route(web::post().to(create::handle))
                    .route(web::method(Method::OPTIONS).to(options::handle))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{id}")
                    .name("tus_upload")
                    .route(
                        web::route()
                            .guard(guard::fn_guard(ietf::speaks_draft))
                            .guard(
                                guard::Any(guard::Head()).or(guard::Patch()).or(guard::Delete()).or(guard::Options()),
                            )
                            .to(ietf::upload),
                    )
                    .route(web::head().to(head::handle))
                    .route(web::patch().to(patch::handle))
                    .route(web::delete().to(delete::handle))
                    .route(web::get().to(download::handle))
                    .route(web::method(Method::OPTIONS).to(options::handle))
                    .default_service(web::to(method_not_allowed)),
            ),
    );
}

/// Adds `Tus-Resumable` to every response but the draft's (whose clients must not
/// mistake the server for a tus one).
async fn tus_resumable(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let draft = ietf::is_draft(req.headers());
    let mut res = next.call(req).await?;
    if !draft {
        res.headers_mut().insert(HeaderName::from_static("tus-resumable"), HeaderValue::from_static(TUS_VERSION));
    }
    Ok(res)
}

/// `X-HTTP-Method-Override` lets clients behind proxies that only pass GET
/// and POST send PATCH, DELETE and HEAD as POST.
async fn method_override(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::POST {
        let wanted = req.headers().get("X-HTTP-Method-Override").and_then(|v| Method::from_bytes(v.as_bytes()).ok());
        if let Some(method) = wanted {
            req.head_mut().method = method;
        }
    }
    next.call(req).await
}

async fn method_not_allowed(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Error> {
    Err(Error::new(Reason::MethodNotAllowed, format!("{} is not supported here.", req.method())))
}
