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
use crate::engine::{AppendInput, Finish, NewUpload, Requester};
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::protocol::form::StoredFile;
use crate::protocol::{note_transfer, requester};
use crate::store::{Kind, Protocol, UploadRecord};
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

/// `Some(record)` for an upload that exists; unknown or gone ids are `None`.
async fn existing(state: &AppState, who: Requester<'_>, id: &UploadId) -> Result<Option<UploadRecord>> {
    match state.engine.info(who, id, false).await {
        Ok(record) => Ok(Some(record)),
        Err(e) if matches!(e.reason(), Reason::UploadNotFound | Reason::UploadGone) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn is_complete(state: &AppState, who: Requester<'_>, id: &UploadId) -> Result<bool> {
    Ok(existing(state, who, id).await?.is_some_and(|record| record.is_complete()))
}

/// `GET /flow`: does the server have this chunk? `200` yes, `204` no.
pub(crate) async fn test_chunk(req: HttpRequest, caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = query_params(&req)?;
    let chunk = Chunk::from_params(&params, &caller.policy(&state.engine.policy))?;
    let ids = Ids::new(&state, &req, &caller, &chunk);
    let who = requester(&req, &caller);
    let have =
        is_complete(&state, who, &ids.file()).await? || is_complete(&state, who, &ids.chunk(chunk.number)).await?;
    Ok(if have { HttpResponse::Ok().body("have it") } else { HttpResponse::NoContent().finish() })
}

/// `POST /flow`: stores one chunk; assembles the file when it was the last.
pub(crate) async fn upload_chunk(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let policy = caller.policy(&state.engine.policy);
    let mut params = query_params(&req)?;
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
        let field = part.map_err(crate::protocol::form::multipart_error)?;
        let is_file = field.content_disposition().and_then(|cd| cd.get_filename()).is_some();
        if is_file {
            let chunk = Chunk::from_params(&params, &policy)?;
            return store_chunk(&state, &req, &caller, &chunk, field).await;
        }
        fields += 1;
        if fields > policy.max_form_fields {
            return Err(Error::new(Reason::TooManyFields, "Too many fields before the chunk."));
        }
        let name = field.name().unwrap_or_default().to_owned();
        params.insert(name, crate::protocol::form::read_text(field, MAX_PARAM_LEN).await?);
    }
    Err(Error::new(Reason::InvalidMultipart, "The form has no file part."))
}

/// The file as a final upload joined from its chunks, for the engine to gather.
fn file_upload(chunk: &Chunk, ids: &Ids) -> NewUpload {
    NewUpload {
        protocol: Protocol::Flow,
        kind: Kind::Final((1..=chunk.total_chunks).map(|n| ids.chunk(n)).collect()),
        length: Some(chunk.total_size),
        metadata: Metadata::from_pairs([("filename", chunk.file_name.as_bytes())]),
        id: Some(ids.file()),
        sha256: None,
    }
}

async fn store_chunk<S, E>(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    chunk: &Chunk,
    body: S,
) -> Result<HttpResponse>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let engine = &state.engine;
    let who = requester(req, caller);
    let ids = Ids::new(state, req, caller, chunk);
    // The file is recorded (and the pre-create hook asked) before its first chunk is
    // stored; once it is complete, chunks sent again are answered with it.
    if let Some(done) = engine.gather(who, file_upload(chunk, &ids)).await? {
        return Ok(HttpResponse::Ok().json(stored_file(state, who, &done).await?));
    }
    let id = ids.chunk(chunk.number);
    let record = match existing(state, who, &id).await? {
        Some(record) => record,
        None => {
            let new = NewUpload {
                protocol: Protocol::Flow,
                kind: Kind::Partial,
                length: Some(chunk.len()),
                metadata: Metadata::default(),
                id: Some(id.clone()),
                sha256: None,
            };
            match engine.create(who, new).await {
                Ok(record) => record,
                // A parallel request for the same chunk created it first.
                Err(_) => engine.info(who, &id, false).await?,
            }
        }
    };
    if !record.is_complete() {
        let input = AppendInput {
            offset: 0,
            content_length: Some(chunk.len()),
            checksum: None,
            declared_length: None,
            whole_body: true,
            finish: Finish::AtLength,
            digest: false,
            body,
        };
        let stored = engine.append(who, &id, input).await;
        note_transfer(req, &id, stored.as_ref().map_or(0, |r| r.offset));
        let stored = stored.map_err(|e| match e.reason() {
            Reason::ExceedsUploadLength | Reason::ChunkTooLarge => Error::new(
                Reason::ChunkTooLarge,
                format!("Chunk {} is longer than {} bytes.", chunk.number, chunk.len()),
            ),
            _ => e,
        })?;
        if chunk.number == 1 {
            judge_leading_bytes(state, who, chunk, &stored).await?;
        }
    }
    match engine.gather(who, file_upload(chunk, &ids)).await? {
        Some(file) => {
            for number in 1..=chunk.total_chunks {
                let id = ids.chunk(number);
                if let Err(e) = engine.terminate(who, &id).await {
                    tracing::warn!(upload = %id, error = %e, "could not remove an assembled chunk");
                }
            }
            tracing::info!(upload = %file.id, chunks = chunk.total_chunks, "flow upload assembled");
            Ok(HttpResponse::Ok().json(stored_file(state, who, &file).await?))
        }
        None => Ok(HttpResponse::Ok().json(serde_json::json!({ "chunk": chunk.number, "complete": false }))),
    }
}

/// The first chunk carries the file's leading bytes: a file of a refused type is
/// refused now, not after every chunk has been sent.
async fn judge_leading_bytes(state: &AppState, who: Requester<'_>, chunk: &Chunk, first: &UploadRecord) -> Result<()> {
    let needed = SNIFF_LEN.min(usize::try_from(chunk.total_size).unwrap_or(SNIFF_LEN));
    if first.head.len() < needed {
        return Ok(()); // a chunk shorter than the window: judged when the file is joined
    }
    if let Err(refusal) = state.engine.policy.check_type(&first.head, Some(&chunk.file_name)) {
        state.engine.terminate(who, &first.id).await?;
        return Err(refusal.into());
    }
    Ok(())
}

/// The JSON description of a finished file, hashing it once if the record lacks its digest.
async fn stored_file(state: &AppState, who: Requester<'_>, record: &UploadRecord) -> Result<StoredFile> {
    let sha256 = match &record.sha256 {
        Some(digest) => digest.clone(),
        None => {
            let mut hasher = Algorithm::Sha256.hasher();
            let (_, mut bytes) = state.engine.read(who, &record.id, None).await?;
            while let Some(chunk) = bytes.next().await {
                hasher.update(&chunk.map_err(Error::internal)?);
            }
            to_hex(&hasher.finalize())
        }
    };
    Ok(StoredFile {
        id: record.id.to_string(),
        name: record.file_name().unwrap_or_default(),
        size: record.offset,
        sha256,
        mime: record.file_type.clone().unwrap_or_default(),
    })
}
