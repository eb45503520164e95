//! The Flow.js / Resumable.js chunk protocol at `/flow`.
//!
//! - `GET /flow?flowChunkNumber=..&...` (testChunks): `200` if the server has
//!   that chunk (or the whole file), `204` if not.
//! - `POST /flow`: one chunk, as `multipart/form-data` (the parameters as text
//!   fields, then the `file` part) or as a raw body with the parameters in the
//!   query string (Flow.js `method: "octet"`). `200` when stored.
//!
//! Both `flow*` and `resumable*` parameter names are read. Each chunk is stored
//! as an ordinary upload, all or nothing (a chunk cut short leaves nothing, so
//! a chunk is either complete or absent); chunks may arrive in any order and
//! in parallel. When the last one is in, the chunks are concatenated in order
//! into the final upload — checked against the policy like any other, hashed,
//! in the same storage as a tus upload — and removed. The answer to that last
//! chunk is the stored file as JSON.
//!
//! **Ids are never taken from the client.** Chunk and final ids are derived
//! with HMAC-SHA-256 from the server's secret, the client's scope and the
//! declared identifier, name, sizes and chunking: a client identifier can
//! never be a path, and ids cannot be guessed. The scope is the client's
//! address plus an optional `sluice_scope` cookie, which a page can set to a
//! per-browser random value so that two users behind one address never share
//! chunks. (With authentication, the scope becomes the user.)
//!
//! Refusals keep the statuses of the one mapping: sizes `413` and types `415`
//! are permanent errors for both libraries, so they stop at once; malformed
//! parameters (`400`) are permanent for Resumable.js.

use crate::auth::Caller;
use crate::body::{IncomingBody, SniffWindow};
use crate::error::{Error, Result};
use crate::form::StoredFile;
use crate::hooks::{self, HookUpload};
use crate::id::UploadId;
use crate::storage::{AppendMode, NewUpload, StorageError, UploadInfo};
use crate::tus::upload::{record_type, stop_error};
use crate::AppState;
use actix_multipart::Multipart;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sluice_core::checksum::to_hex;
use sluice_core::tus::Metadata;
use sluice_core::units::format_size;
use sluice_core::{Algorithm, Reason, SNIFF_LEN};
use std::collections::HashMap;

/// The parameters of one chunk, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 1-based chunk number.
    pub number: u64,
    /// The nominal chunk size.
    pub chunk_size: u64,
    /// The whole file's size.
    pub total_size: u64,
    /// How many chunks the file has.
    pub total_chunks: u64,
    /// The client's identifier for the file (only ever hashed).
    pub identifier: String,
    /// The declared file name.
    pub file_name: String,
}

impl Chunk {
    /// Reads `flow*` or `resumable*` parameters and checks them against each
    /// other and against the policy.
    pub fn from_params(params: &HashMap<String, String>, policy: &sluice_core::Policy) -> Result<Chunk> {
        let get = |name: &str| {
            params.get(&format!("flow{name}")).or_else(|| params.get(&format!("resumable{name}"))).map(String::as_str)
        };
        let number = |name: &str| -> Result<u64> {
            let value = get(name).ok_or_else(|| bad(format!("flow{name} (or resumable{name}) is required.")))?;
            sluice_core::tus::parse_length(&format!("flow{name}"), value).map_err(Error::from)
        };
        let text = |name: &str| -> Result<String> {
            get(name).map(str::to_owned).ok_or_else(|| bad(format!("flow{name} (or resumable{name}) is required.")))
        };
        let chunk = Chunk {
            number: number("ChunkNumber")?,
            chunk_size: number("ChunkSize")?,
            total_size: number("TotalSize")?,
            total_chunks: number("TotalChunks")?,
            identifier: text("Identifier")?,
            file_name: text("Filename")?,
        };
        if chunk.identifier.is_empty() || chunk.identifier.len() > 1024 {
            return Err(bad("flowIdentifier must be 1 to 1024 bytes long.".into()));
        }
        if chunk.chunk_size == 0 {
            return Err(bad("flowChunkSize must be at least 1.".into()));
        }
        // Flow.js and Resumable.js either fold the remainder into the last
        // chunk (floor) or send it as a chunk of its own (ceil).
        let floor = (chunk.total_size / chunk.chunk_size).max(1);
        let ceil = chunk.total_size.div_ceil(chunk.chunk_size).max(1);
        if chunk.total_chunks != floor && chunk.total_chunks != ceil {
            return Err(bad(format!(
                "flowTotalChunks is {}, but {} bytes in chunks of {} make {floor} or {ceil}.",
                chunk.total_chunks, chunk.total_size, chunk.chunk_size
            )));
        }
        if chunk.number == 0 || chunk.number > chunk.total_chunks {
            return Err(bad(format!("flowChunkNumber must be 1 to {}.", chunk.total_chunks)));
        }
        if let Some(current) = get("CurrentChunkSize") {
            let current = sluice_core::tus::parse_length("flowCurrentChunkSize", current)?;
            if current != chunk.len() {
                return Err(bad(format!("Chunk {} is {} bytes, not {current}.", chunk.number, chunk.len())));
            }
        }
        policy.check_size(chunk.total_size)?;
        policy.check_name(Some(&chunk.file_name))?;
        if chunk.total_size == 0 {
            policy.check_type(&[], Some(&chunk.file_name))?; // an empty file never fills a sniff window
        }
        if chunk.len() > policy.max_chunk_size {
            return Err(Error::new(
                Reason::ChunkTooLarge,
                format!(
                    "Chunks may be at most {}; this one is {}.",
                    format_size(policy.max_chunk_size),
                    format_size(chunk.len())
                ),
            ));
        }
        Ok(chunk)
    }

    /// Where this chunk starts in the file.
    pub fn offset(&self) -> u64 {
        (self.number - 1) * self.chunk_size
    }

    /// This chunk's exact length.
    pub fn len(&self) -> u64 {
        if self.number == self.total_chunks {
            self.total_size - self.offset()
        } else {
            self.chunk_size
        }
    }

    /// Whether this chunk is empty (only the one chunk of an empty file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Longest Flow.js parameter sent as a form field (identifiers, names).
const MAX_PARAM_LEN: u64 = 4096;

/// The query string's parameters (Flow.js sends them there for test chunks and raw bodies).
fn query_params(req: &HttpRequest) -> Result<HashMap<String, String>> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad(format!("Bad query string: {e}.")))
}

fn bad(message: String) -> Error {
    Error::new(Reason::InvalidHeader, message)
}

/// Ids for one client's file: derived, never taken from the request.
struct Ids {
    file_key: [u8; 32],
}

impl Ids {
    fn new(state: &AppState, req: &HttpRequest, caller: &Caller, chunk: &Chunk) -> Ids {
        // With authorization the scope is the user; without, the client's
        // address plus the page's optional per-browser cookie.
        let (scope, cookie) = match caller.owner() {
            Some(subject) => (format!("sub:{subject}"), String::new()),
            None => (
                crate::client::ClientId::of(req).to_string(),
                req.cookie("sluice_scope").map(|c| c.value().to_owned()).unwrap_or_default(),
            ),
        };
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(state.settings.secret.bytes())
            .expect("HMAC takes any key length");
        for part in [
            scope.as_bytes(),
            cookie.as_bytes(),
            chunk.identifier.as_bytes(),
            chunk.file_name.as_bytes(),
            &chunk.total_size.to_be_bytes(),
            &chunk.chunk_size.to_be_bytes(),
            &chunk.total_chunks.to_be_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Ids { file_key: mac.finalize().into_bytes().into() }
    }

    fn derive(&self, label: &[u8]) -> UploadId {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.file_key).expect("HMAC takes any key length");
        mac.update(label);
        let digest = mac.finalize().into_bytes();
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&digest[..16]);
        UploadId::from_bits(bits)
    }

    fn chunk(&self, number: u64) -> UploadId {
        self.derive(&number.to_be_bytes())
    }

    fn file(&self) -> UploadId {
        self.derive(b"file")
    }
}

/// `Some(info)` for an upload that exists; unknown or gone ids are `None`.
async fn existing(state: &AppState, id: &UploadId) -> Result<Option<UploadInfo>> {
    match state.storage.info(id).await {
        Ok(info) => Ok(Some(info)),
        Err(StorageError::NotFound | StorageError::Gone) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn is_complete(state: &AppState, id: &UploadId) -> Result<bool> {
    Ok(existing(state, id).await?.is_some_and(|info| info.is_complete()))
}

/// `GET /flow`: does the server have this chunk? `200` yes, `204` no.
pub async fn test_chunk(req: HttpRequest, caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = query_params(&req)?;
    let chunk = Chunk::from_params(&params, &caller.policy(&state.policy))?;
    let ids = Ids::new(&state, &req, &caller, &chunk);
    let have = is_complete(&state, &ids.file()).await? || is_complete(&state, &ids.chunk(chunk.number)).await?;
    Ok(if have { HttpResponse::Ok().body("have it") } else { HttpResponse::NoContent().finish() })
}

/// `POST /flow`: stores one chunk; assembles the file when it was the last.
pub async fn upload_chunk(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let policy = caller.policy(&state.policy);
    let mut params = query_params(&req)?;
    let _permit = state.admission.admit(&crate::client::ClientId::of(&req))?;
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    if !is_form {
        let chunk = Chunk::from_params(&params, &policy)?;
        return store_chunk(&state, &req, &caller, &chunk, payload).await;
    }
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut fields = 0u32;
    while let Some(part) = multipart.next().await {
        let field = part.map_err(crate::form::multipart_error)?;
        let is_file = field.content_disposition().and_then(|cd| cd.get_filename()).is_some();
        if is_file {
            let chunk = Chunk::from_params(&params, &policy)?;
            return store_chunk(&state, &req, &caller, &chunk, field).await;
        }
        fields += 1;
        if fields > state.policy.max_form_fields {
            return Err(Error::new(Reason::TooManyFields, "Too many fields before the chunk."));
        }
        let name = field.name().unwrap_or_default().to_owned();
        params.insert(name, crate::form::read_text(field, MAX_PARAM_LEN).await?);
    }
    Err(Error::new(Reason::InvalidMultipart, "The form has no file part."))
}

async fn store_chunk<S, E>(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    chunk: &Chunk,
    body: S,
) -> Result<HttpResponse>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let ids = Ids::new(state, req, caller, chunk);
    if let Some(done) = existing(state, &ids.file()).await?.filter(UploadInfo::is_complete) {
        return Ok(HttpResponse::Ok().json(stored_file(state, &done, None).await?));
    }
    let id = ids.chunk(chunk.number);
    let info = match existing(state, &id).await? {
        Some(info) => info,
        None => {
            let created = state
                .storage
                .create(NewUpload {
                    id: id.clone(),
                    length: Some(chunk.len()),
                    metadata: String::new(),
                    owner: caller.owner().map(str::to_owned),
                })
                .await;
            match created {
                Ok(info) => info,
                // A parallel request for the same chunk created it first.
                Err(_) => state.storage.info(&id).await?,
            }
        }
    };
    if !info.is_complete() {
        let guard = crate::tus::upload::lock(state, &id).await?;
        let info = state.storage.info(&id).await?;
        if !info.is_complete() {
            write_chunk(state, chunk, &info, body, &guard).await?;
        }
    }
    if let Some(file) = assemble_if_complete(state, caller, chunk, &ids).await? {
        return Ok(HttpResponse::Ok().json(file));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "chunk": chunk.number, "complete": false })))
}

async fn write_chunk<S, E>(
    state: &AppState,
    chunk: &Chunk,
    info: &UploadInfo,
    body: S,
    guard: &crate::locks::UploadGuard,
) -> Result<()>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // The first chunk carries the leading bytes: judge the type now.
    let needed = SNIFF_LEN.min(usize::try_from(chunk.total_size).unwrap_or(SNIFF_LEN));
    let sniff = (chunk.number == 1 && chunk.len() as usize >= needed).then(|| SniffWindow {
        seen: Vec::new(),
        needed,
        file_name: Some(chunk.file_name.clone()),
        policy: state.policy.clone(),
    });
    let mut body = IncomingBody::new(body, chunk.len(), None, sniff, guard.cancellation(), state.settings.idle_timeout)
        .counting(state.metrics.received_bytes.clone())
        .exact();
    state.metrics.in_flight.inc();
    let appended = state.storage.append(&info.id, 0, &mut body, AppendMode::AllOrNothing).await;
    state.metrics.in_flight.dec();
    let offset = appended?;
    match body.stop() {
        None => Ok(()),
        Some(stop) => {
            let too_long = || {
                Error::new(
                    Reason::ChunkTooLarge,
                    format!("Chunk {} is longer than {} bytes.", chunk.number, chunk.len()),
                )
            };
            Err(stop_error(state, &info.id, offset, stop, too_long))
        }
    }
}

/// When every chunk is in, concatenates them into the final upload.
async fn assemble_if_complete(
    state: &AppState,
    caller: &Caller,
    chunk: &Chunk,
    ids: &Ids,
) -> Result<Option<StoredFile>> {
    // Missing chunks are most likely the ones after this one: look there first.
    let order = (chunk.number + 1..=chunk.total_chunks).chain(1..chunk.number);
    for number in order {
        if !is_complete(state, &ids.chunk(number)).await? {
            return Ok(None);
        }
    }
    let file_id = ids.file();
    let guard = crate::tus::upload::lock(state, &file_id).await?;
    let info = match existing(state, &file_id).await? {
        Some(info) if info.is_complete() => return Ok(Some(stored_file(state, &info, None).await?)),
        Some(info) => info,
        None => {
            let metadata = Metadata::from_pairs([
                ("filename", chunk.file_name.as_bytes()),
                ("sluice_protocol", b"flow".as_slice()),
            ])
            .encode();
            hooks::pre_create(state, &HookUpload::new("flow", Some(chunk.total_size), &metadata, caller.owner()))
                .await?;
            let created = state
                .storage
                .create(NewUpload {
                    id: file_id.clone(),
                    length: Some(chunk.total_size),
                    metadata,
                    owner: caller.owner().map(str::to_owned),
                })
                .await?;
            state.metrics.created.inc();
            created
        }
    };
    let chunk_ids: Vec<UploadId> = (1..=chunk.total_chunks).map(|n| ids.chunk(n)).collect();
    let storage = state.storage.clone();
    let pieces = futures_util::stream::iter(chunk_ids.clone())
        .then(move |id| {
            let storage = storage.clone();
            async move { storage.read(&id).await.map_err(|e| std::io::Error::other(e.to_string())) }
        })
        .map(|opened| match opened {
            Ok(stream) => stream.left_stream(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
        })
        .flatten();
    let window = SniffWindow {
        seen: Vec::new(),
        needed: SNIFF_LEN.min(usize::try_from(chunk.total_size).unwrap_or(SNIFF_LEN)),
        file_name: Some(chunk.file_name.clone()),
        policy: state.policy.clone(),
    };
    let mut body = IncomingBody::new(
        Box::pin(pieces),
        chunk.total_size,
        None,
        Some(window),
        guard.cancellation(),
        state.settings.idle_timeout,
    )
    .exact()
    .digesting(Algorithm::Sha256);
    let offset = state.storage.append(&file_id, 0, &mut body, AppendMode::AllOrNothing).await?;
    if let Some(stop) = body.stop() {
        if matches!(stop, crate::body::Stop::TypeRefused(_)) {
            state.storage.terminate(&file_id).await?;
            for id in &chunk_ids {
                state.storage.terminate(id).await?;
            }
        }
        let too_long = || Error::internal("chunks add up to more than the file");
        return Err(stop_error(state, &file_id, offset, stop, too_long));
    }
    let digest = body.take_digest();
    let info = UploadInfo { offset, ..info };
    record_type(state, &info).await?;
    for id in &chunk_ids {
        if let Err(e) = state.storage.terminate(id).await {
            tracing::warn!(upload = %id, error = %e, "could not remove an assembled chunk");
        }
    }
    tracing::info!(upload = %file_id, chunks = chunk.total_chunks, "flow upload assembled");
    Ok(Some(stored_file(state, &info, digest).await?))
}

/// The JSON description of a finished file (hashing it again if needed).
async fn stored_file(state: &AppState, info: &UploadInfo, digest: Option<Vec<u8>>) -> Result<StoredFile> {
    let digest = match digest {
        Some(digest) => digest,
        None => {
            let mut hasher = Algorithm::Sha256.hasher();
            let mut bytes = state.storage.read(&info.id).await?;
            while let Some(chunk) = bytes.next().await {
                hasher.update(&chunk.map_err(Error::internal)?);
            }
            hasher.finalize()
        }
    };
    let current = state.storage.info(&info.id).await?;
    Ok(StoredFile {
        id: info.id.to_string(),
        name: crate::tus::upload::file_name(info).unwrap_or_default(),
        size: current.offset,
        sha256: to_hex(&digest),
        mime: current.file_type.unwrap_or_default(),
    })
}
