//! `OPTIONS /files/`: what this server supports.

use crate::AppState;
use actix_web::{web, HttpResponse};
use sluice_core::tus::{TUS_EXTENSIONS, TUS_VERSION};

/// Lists version, extensions, maximum size and checksum algorithms.
pub(super) async fn handle(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", TUS_EXTENSIONS))
        .insert_header(("Tus-Max-Size", state.engine.policy.max_file_size))
        .insert_header(("Tus-Checksum-Algorithm", state.engine.policy.algorithm_list()))
        .finish()
}
