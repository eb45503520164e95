//! What several tus handlers share: the headers that describe an upload.

use crate::engine::Engine;
use crate::store::UploadRecord;
use actix_web::http::header::HttpDate;
use actix_web::HttpResponseBuilder;

/// Adds `Upload-Expires` for an unfinished upload.
pub(super) fn expiry_header(response: &mut HttpResponseBuilder, engine: &Engine, record: &UploadRecord) {
    if !record.is_complete() {
        response.insert_header(("Upload-Expires", HttpDate::from(engine.expires_at(record)).to_string()));
    }
}
