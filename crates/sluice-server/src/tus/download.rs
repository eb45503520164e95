//! `GET /files/{id}`: download a completed upload (unless turned off).

use super::upload;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::AppState;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpResponse};
use sluice_core::Reason;

/// Streams the stored bytes as an attachment, never as inline content.
pub async fn handle(caller: Caller, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse> {
    if !state.settings.allow_download {
        return Err(Error::new(Reason::MethodNotAllowed, "Downloads are turned off on this server."));
    }
    let id = upload::parse_id(&path)?;
    let info = upload::live_info(&state, &id, &caller).await?;
    if !info.is_complete() {
        return Err(Error::new(
            Reason::UploadIncomplete,
            format!("This upload has {} of {:?} bytes; it can be downloaded once complete.", info.offset, info.length),
        ));
    }
    let name = upload::file_name(&info).unwrap_or_else(|| id.to_string());
    let body = state.storage.read(&id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::FilenameExt(actix_web::http::header::ExtendedValue {
                charset: actix_web::http::header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.into_bytes(),
            })],
        })
        .no_chunking(info.offset)
        .streaming(body))
}
