//! `HEAD /files/{id}`: offset retrieval.

use super::reply::{self, Answer};
use crate::auth::Caller;
use crate::error::Error;
use crate::protocol::{parse_id, requester};
use crate::AppState;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse};
use sluice_core::rufh::{field, InteropVersion};
use sluice_core::Reason;

/// Reports the offset, completeness, length (when known) and limits; never cached.
pub(super) async fn handle(
    req: &HttpRequest,
    version: InteropVersion,
    caller: &Caller,
    state: &AppState,
    path: &str,
) -> Answer {
    refuse_fields(req, version.fields_refused_on_head(), "an offset retrieval")?;
    let id = parse_id(path)?;
    // A client resuming asks this first: stopping an append its lost connection left
    // behind makes the offset final.
    let record = state.engine.info(requester(req, caller), &id, true).await.map_err(reply::unknown)?;
    let mut response = HttpResponse::NoContent();
    response.insert_header(CacheControl(vec![CacheDirective::NoStore]));
    response.insert_header((field::UPLOAD_OFFSET, record.offset));
    reply::complete_header(&mut response, version, record.is_complete());
    if let Some(length) = record.length {
        response.insert_header((field::UPLOAD_LENGTH, length));
    }
    let policy = caller.policy(&state.engine.policy);
    reply::limit_header(&mut response, version, &policy, &state.engine, Some(&record));
    Ok(response.finish())
}

/// Refuses a request carrying any of `names` (400), as versions 3 to 6 require of HEAD and DELETE.
pub(super) fn refuse_fields(req: &HttpRequest, names: &[&str], what: &str) -> Result<(), Error> {
    match names.iter().find(|name| req.headers().contains_key(**name)) {
        Some(name) => Err(Error::new(Reason::InvalidHeader, format!("{name} has no place in {what}."))),
        None => Ok(()),
    }
}
