//! One file's upload: find or create it on the server, then send it chunk by
//! chunk until the server has every byte, surviving pauses, network errors,
//! server restarts and page reloads.
//!
//! The loop is sequential per upload (tus appends in order), but it hashes
//! the next chunk while the current one is on the wire, so hashing and
//! sending overlap.

use crate::api::Progress;
use crate::blob::{self, Reader};
use crate::check::{self, Checked};
use crate::client::Shared;
use crate::error::{code, Error, Result};
use crate::fingerprint::{self, Store};
use crate::hashpool::HashJob;
use crate::http::{Failure, Reply};
use crate::js;
use crate::progress::Meter;
use crate::retry::{self, Verdict};
use crate::sync::Signal;
use crate::tus;
use js_sys::Function;
use sluice_core::checksum::to_hex;
use sluice_core::tus::{format_checksum, Metadata};
use sluice_core::{chunk, Algorithm, Hasher, Reason};
use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use web_sys::{AbortController, Blob};

pub use crate::api::UploadState as Phase;

/// Callbacks and per-upload options from the page.
#[derive(Default)]
pub struct Hooks {
    /// Called with a `Progress` object after each acknowledged chunk.
    pub on_progress: Option<Function>,
    /// Called with the phase name whenever it changes.
    pub on_state: Option<Function>,
    /// Extra `Upload-Metadata` pairs.
    pub metadata: Vec<(String, String)>,
}

struct State {
    phase: Phase,
    paused: bool,
    cancelled: bool,
    holds_slot: bool,
    url: Option<String>,
    key: Option<String>,
    offset: u64,
    resumed_from: Option<u64>,
    retries: u32,
    abort: Option<AbortController>,
    sha256: Option<String>,
    meter: Meter,
}

/// The result of a finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The upload's URL on the server.
    pub url: String,
    /// Bytes uploaded (the file size).
    pub size: u64,
    /// The whole file's SHA-256 (hex), when requested.
    pub sha256: Option<String>,
    /// The per-chunk checksum algorithm used, if any.
    pub checksum: Option<Algorithm>,
    /// The server offset the upload resumed from (`None` for a fresh upload).
    pub resumed_from: Option<u64>,
}

/// One file's upload.
pub struct Upload {
    shared: Rc<Shared>,
    file: Blob,
    hooks: Hooks,
    state: RefCell<State>,
    signal: Signal,
}

/// A chunk's checksum: known, or being computed by a worker.
enum Prepared {
    Done(Option<String>),
    Worker(HashJob),
}

/// The whole-file SHA-256, fed each byte exactly once and in order even when
/// chunks are re-read after a failure.
struct FileDigest {
    hasher: Hasher,
    pos: u64,
}

impl FileDigest {
    fn feed(&mut self, at: u64, bytes: &[u8]) {
        let end = at + bytes.len() as u64;
        if at <= self.pos && self.pos < end {
            self.hasher.update(&bytes[(self.pos - at) as usize..]);
            self.pos = end;
        }
    }
}

impl Upload {
    /// An upload of `file` through `shared`'s endpoint; nothing happens until [`Upload::run`].
    pub fn new(shared: Rc<Shared>, file: Blob, hooks: Hooks) -> Upload {
        let state = State {
            phase: Phase::Idle,
            paused: false,
            cancelled: false,
            holds_slot: false,
            url: None,
            key: None,
            offset: 0,
            resumed_from: None,
            retries: 0,
            abort: None,
            sha256: None,
            meter: Meter::new(5000.0),
        };
        Upload { shared, file, hooks, state: RefCell::new(state), signal: Signal::default() }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state.borrow().phase
    }

    /// Bytes the server has acknowledged.
    pub fn offset(&self) -> u64 {
        self.state.borrow().offset
    }

    /// The file size.
    pub fn size(&self) -> u64 {
        blob::size(&self.file)
    }

    /// The upload URL, once known.
    pub fn url(&self) -> Option<String> {
        self.state.borrow().url.clone()
    }

    /// Retries so far (network errors, 5xx, 423, 429, 460, 409 re-syncs).
    pub fn retries(&self) -> u32 {
        self.state.borrow().retries
    }

    /// Stops sending (the request in flight is aborted) until [`Upload::resume`].
    pub fn pause(&self) {
        let mut st = self.state.borrow_mut();
        if st.phase.is_final() || st.paused {
            return;
        }
        st.paused = true;
        if let Some(c) = st.abort.take() {
            c.abort();
        }
        drop(st);
        self.signal.notify();
    }

    /// Continues a paused upload from the server's offset.
    pub fn resume(&self) {
        self.state.borrow_mut().paused = false;
        self.signal.notify();
    }

    /// Stops for good; the running upload terminates itself on the server.
    pub fn cancel(&self) {
        let mut st = self.state.borrow_mut();
        if st.phase.is_final() {
            return;
        }
        st.cancelled = true;
        if let Some(c) = st.abort.take() {
            c.abort();
        }
        drop(st);
        self.signal.notify();
    }

    /// Runs the upload to its end.
    pub async fn run(self: Rc<Self>) -> Result<Outcome> {
        if self.state.borrow().cancelled {
            self.set_phase(Phase::Cancelled);
            return Err(cancelled());
        }
        let result = self.run_inner().await;
        let (url, key) = {
            let mut st = self.state.borrow_mut();
            if st.holds_slot {
                st.holds_slot = false;
                self.shared.slots.release();
            }
            (st.url.clone(), st.key.clone())
        };
        let store = Store::open(self.shared.config.resume);
        let phase = match &result {
            Ok(_) => Phase::Done,
            Err(e) if e.code == code::CANCELLED => {
                if let Some(url) = url.filter(|_| self.shared.caps.has("termination")) {
                    let _ = tus::terminate(&url).await;
                }
                Phase::Cancelled
            }
            Err(_) => Phase::Failed,
        };
        let forget = match &result {
            Ok(_) => true,
            Err(e) => {
                e.code == code::CANCELLED || matches!(e.reason(), Some(Reason::UploadNotFound | Reason::UploadGone))
            }
        };
        if let Some(key) = key.filter(|_| forget) {
            store.remove(&key);
        }
        self.set_phase(phase);
        result
    }

    async fn run_inner(&self) -> Result<Outcome> {
        let shared = self.shared.clone();
        let size = self.size();
        self.set_phase(Phase::Checking);
        let checked = check::check(&shared.policy, &self.file).await?;
        if shared.config.check {
            checked.verdict.clone().map_err(Error::from)?;
        }
        let key = fingerprint::key(&shared.endpoint, &checked.info, &checked.leading);
        self.state.borrow_mut().key = Some(key.clone());
        let store = Store::open(shared.config.resume);
        let mut failures = 0u32;
        self.checkpoint().await?;

        // Find the upload this file started before (resume after reload), else create one.
        let mut offset = 0;
        let mut url = None;
        if let Some(stored) = store.get(&key) {
            self.state.borrow_mut().url = Some(stored.clone());
            match self.sync_offset(&stored, &checked, &mut failures).await {
                Ok(o) => {
                    offset = o;
                    url = Some(stored);
                    self.state.borrow_mut().resumed_from = Some(o);
                }
                Err(e) if e.code == code::CANCELLED => return Err(e),
                Err(e) if e.status.is_some_and(|s| (400..500).contains(&s)) || e.code == code::UNEXPECTED_RESPONSE => {
                    store.remove(&key);
                }
                Err(e) => return Err(e),
            }
        }
        let url = match url {
            Some(u) => u,
            None => {
                let u = self.create(&checked, &mut failures).await?;
                self.state.borrow_mut().url = Some(u.clone());
                store.set(&key, &u);
                u
            }
        };
        self.acknowledge(offset, None);

        let chunk_size = shared.chunk_size();
        let algorithm = shared.checksum;
        let mut reader = Reader::new();
        let mut file_digest =
            shared.config.file_sha256.then(|| FileDigest { hasher: Algorithm::Sha256.hasher(), pos: 0 });
        let mut prepared: Option<(Range<u64>, Prepared)> = None;
        let mut need_sync = false;
        loop {
            if self.checkpoint().await? || need_sync {
                let synced = self.sync_offset(&url, &checked, &mut failures).await?;
                if synced > offset {
                    // Someone (another tab, an earlier request) made progress: not a failure streak.
                    failures = 0;
                }
                offset = synced;
                self.acknowledge(offset, None);
                need_sync = false;
            }
            let Some(range) = chunk::plan(offset, size, chunk_size).next() else { break };
            let checksum = match prepared.take() {
                Some((r, p)) if r == range => self.finish_hash(&mut reader, range.clone(), algorithm, p).await?,
                _ => {
                    let p = self.start_hash(&mut reader, range.clone(), algorithm, file_digest.as_mut()).await?;
                    self.finish_hash(&mut reader, range.clone(), algorithm, p).await?
                }
            };
            let controller = AbortController::new().map_err(|e| Error::new(code::READ_ERROR, js::describe(&e)))?;
            let signal = controller.signal();
            self.state.borrow_mut().abort = Some(controller);
            let body = blob::slice(&self.file, range.clone())?;
            let pending = tus::patch(&url, offset, body, checksum.clone(), Some(&signal));
            // While this chunk is on the wire, hash the next one (in a worker when there is one).
            if let Some(next) = chunk::plan(range.end, size, chunk_size).next() {
                let p = self.start_hash(&mut reader, next.clone(), algorithm, file_digest.as_mut()).await?;
                prepared = Some((next, p));
            }
            let result = match pending {
                Ok(p) => p.reply().await,
                Err(f) => Err(f),
            };
            self.state.borrow_mut().abort = None;
            match result {
                Ok(reply) if reply.ok() => {
                    let acked = tus::offset_of(&reply)?;
                    if acked <= offset || acked > range.end {
                        // Not what tus allows; ask the server where it stands.
                        need_sync = true;
                        continue;
                    }
                    offset = acked;
                    failures = 0;
                    self.acknowledge(offset, Some((range, checksum)));
                }
                Ok(reply) => {
                    let err = self.refusal(&reply, &checked).await;
                    match retry::decide(true, err.reason()) {
                        Verdict::Resync => {
                            self.count_retry(&mut failures, err)?;
                            need_sync = true;
                        }
                        Verdict::Retry => {
                            self.backoff(&mut failures, reply.retry_after_ms(), err).await?;
                            need_sync = true;
                        }
                        Verdict::Stop => return Err(err),
                    }
                }
                Err(Failure::Aborted) => need_sync = true,
                Err(f) => {
                    self.backoff(&mut failures, None, f.into_error(&url)).await?;
                    need_sync = true;
                }
            }
        }
        let sha256 = file_digest.map(|d| to_hex(&d.hasher.finalize()));
        self.state.borrow_mut().sha256 = sha256.clone();
        let resumed_from = self.state.borrow().resumed_from;
        Ok(Outcome { url, size, sha256, checksum: algorithm, resumed_from })
    }

    /// `POST` the creation request (retrying transient failures) and return the upload URL.
    async fn create(&self, checked: &Checked, failures: &mut u32) -> Result<String> {
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(name) = &checked.info.name {
            pairs.push(("filename".into(), name.clone().into_bytes()));
        }
        let filetype = match &checked.verdict {
            Ok(kind) if kind.mime != sluice_core::sniff::UNKNOWN_TYPE => kind.mime.to_string(),
            _ => checked.info.browser_type.clone(),
        };
        if !filetype.is_empty() {
            pairs.push(("filetype".into(), filetype.into_bytes()));
        }
        for (k, v) in &self.hooks.metadata {
            if !pairs.iter().any(|(key, _)| key == k) {
                pairs.push((k.clone(), v.clone().into_bytes()));
            }
        }
        let metadata = Metadata::from_pairs(pairs);
        let endpoint = &self.shared.endpoint;
        loop {
            self.checkpoint().await?;
            match tus::create(endpoint, checked.info.size, &metadata).await {
                Ok(reply) if reply.ok() => return tus::location(&reply, endpoint),
                Ok(reply) => {
                    let err = self.refusal(&reply, checked).await;
                    match retry::decide(true, err.reason()) {
                        Verdict::Retry => self.backoff(failures, reply.retry_after_ms(), err).await?,
                        _ => return Err(err),
                    }
                }
                Err(f) => self.backoff(failures, None, f.into_error(endpoint)).await?,
            }
        }
    }

    /// `HEAD` the upload (retrying transient failures) and return the server's offset.
    async fn sync_offset(&self, url: &str, checked: &Checked, failures: &mut u32) -> Result<u64> {
        loop {
            self.checkpoint().await?;
            let controller = AbortController::new().map_err(|e| Error::new(code::READ_ERROR, js::describe(&e)))?;
            let signal = controller.signal();
            self.state.borrow_mut().abort = Some(controller);
            let result = tus::head(url, Some(&signal)).await;
            self.state.borrow_mut().abort = None;
            match result {
                Ok(reply) if reply.ok() => {
                    let length = reply.header("Upload-Length");
                    if length.is_some_and(|l| l.trim() != checked.info.size.to_string()) {
                        return Err(Error::new(
                            code::UNEXPECTED_RESPONSE,
                            "The upload on the server has a different length than this file.",
                        ));
                    }
                    let offset = tus::offset_of(&reply)?;
                    if offset > checked.info.size {
                        return Err(Error::new(
                            code::UNEXPECTED_RESPONSE,
                            "The server holds more bytes than this file has.",
                        ));
                    }
                    return Ok(offset);
                }
                Ok(reply) => {
                    let err = self.refusal(&reply, checked).await;
                    match retry::decide(true, err.reason()) {
                        Verdict::Retry => self.backoff(failures, reply.retry_after_ms(), err).await?,
                        _ => return Err(err),
                    }
                }
                Err(Failure::Aborted) => {}
                Err(f) => self.backoff(failures, None, f.into_error(url)).await?,
            }
        }
    }

    /// Starts the checksum of `range`: handed to a hashing worker when the client has them (and
    /// no whole-file digest needs the bytes here), else computed now on this thread.
    async fn start_hash(
        &self,
        reader: &mut Reader,
        range: Range<u64>,
        algorithm: Option<Algorithm>,
        file: Option<&mut FileDigest>,
    ) -> Result<Prepared> {
        if let (Some(pool), Some(algorithm), None) = (&self.shared.pool, algorithm, &file) {
            if let Ok(job) = pool.hash(&self.file, range.clone(), algorithm) {
                return Ok(Prepared::Worker(job));
            }
        }
        Ok(Prepared::Done(self.digest(reader, range, algorithm, file).await?))
    }

    /// The checksum a [`Upload::start_hash`] prepared. Should a worker fail, the chunk is hashed
    /// here instead (a file that really cannot be read fails here too, with its own error).
    async fn finish_hash(
        &self,
        reader: &mut Reader,
        range: Range<u64>,
        algorithm: Option<Algorithm>,
        prepared: Prepared,
    ) -> Result<Option<String>> {
        match prepared {
            Prepared::Done(c) => Ok(c),
            Prepared::Worker(job) => match job.value().await {
                Ok(c) => Ok(Some(c)),
                Err(e) => {
                    web_sys::console::warn_1(&format!("sluice: {e}; hashing this chunk on the page").into());
                    self.digest(reader, range, algorithm, None).await
                }
            },
        }
    }

    /// Reads `range` once, feeding the chunk checksum and the whole-file digest.
    async fn digest(
        &self,
        reader: &mut Reader,
        range: Range<u64>,
        algorithm: Option<Algorithm>,
        mut file: Option<&mut FileDigest>,
    ) -> Result<Option<String>> {
        if let Some(fd) = file.as_deref_mut() {
            if fd.pos < range.start {
                // Resumed past bytes this page never read: read them for the file digest only.
                let gap = fd.pos..range.start;
                let mut at = gap.start;
                reader
                    .read(&self.file, gap, |b| {
                        fd.feed(at, b);
                        at += b.len() as u64;
                    })
                    .await?;
            }
        }
        let file_needs = file.as_deref().is_some_and(|fd| fd.pos < range.end);
        if algorithm.is_none() && !file_needs {
            return Ok(None);
        }
        let mut hasher = algorithm.map(Algorithm::hasher);
        let mut at = range.start;
        reader
            .read(&self.file, range, |b| {
                if let Some(h) = hasher.as_mut() {
                    h.update(b);
                }
                if let Some(fd) = file.as_deref_mut() {
                    fd.feed(at, b);
                }
                at += b.len() as u64;
            })
            .await?;
        Ok(hasher.map(|h| format_checksum(h.algorithm(), &h.finalize())))
    }

    /// The server's refusal, with the local check's message when the local
    /// check reaches the same reason (so the page shows one wording).
    async fn refusal(&self, reply: &Reply, checked: &Checked) -> Error {
        let mut err = reply.error().await;
        if let (Some(reason), Err(local)) = (err.reason(), &checked.verdict) {
            if local.reason == reason {
                err.message = local.message.clone();
            }
        }
        err
    }

    /// Counts a failure; `err` once the retries are spent.
    fn count_retry(&self, failures: &mut u32, err: Error) -> Result<()> {
        if *failures >= self.shared.config.backoff.max_retries {
            return Err(err);
        }
        *failures += 1;
        self.state.borrow_mut().retries += 1;
        Ok(())
    }

    /// Counts a failure and waits the backoff delay (cut short by pause or cancel).
    async fn backoff(&self, failures: &mut u32, retry_after_ms: Option<f64>, err: Error) -> Result<()> {
        let attempt = *failures;
        self.count_retry(failures, err)?;
        let delay = self.shared.config.backoff.delay_ms(attempt, js::random(), retry_after_ms);
        self.set_phase(Phase::Retrying);
        self.signal.sleep(delay).await;
        Ok(())
    }

    /// Honours pause and cancel, and holds a concurrency slot while sending.
    /// Returns `true` when it waited in a pause (the caller must re-sync).
    async fn checkpoint(&self) -> Result<bool> {
        let mut was_paused = false;
        loop {
            let (cancelled, paused, holds) = {
                let st = self.state.borrow();
                (st.cancelled, st.paused, st.holds_slot)
            };
            if cancelled {
                return Err(cancelled_error());
            }
            if paused {
                if holds {
                    self.state.borrow_mut().holds_slot = false;
                    self.shared.slots.release();
                }
                self.state.borrow_mut().meter.reset();
                self.set_phase(Phase::Paused);
                was_paused = true;
                let _ = wasm_bindgen_futures::JsFuture::from(self.signal.changed()).await;
                continue;
            }
            if !holds {
                self.set_phase(Phase::Queued);
                if !self.shared.slots.acquire(self.signal.changed()).await {
                    continue;
                }
                self.state.borrow_mut().holds_slot = true;
                continue;
            }
            self.set_phase(Phase::Uploading);
            return Ok(was_paused);
        }
    }

    fn set_phase(&self, phase: Phase) {
        let changed = {
            let mut st = self.state.borrow_mut();
            let changed = st.phase != phase;
            st.phase = phase;
            changed
        };
        if changed {
            if let Some(f) = &self.hooks.on_state {
                let _ = f.call1(&JsValue::NULL, &JsValue::from_str(phase.name()));
            }
        }
    }

    /// Records an acknowledged offset and reports progress.
    fn acknowledge(&self, offset: u64, chunk: Option<(Range<u64>, Option<String>)>) {
        let size = self.size();
        let progress = {
            let mut st = self.state.borrow_mut();
            st.offset = offset;
            st.meter.record(js::now_ms(), offset);
            let Some((range, checksum)) = chunk else { return };
            crate::api::to_js(&Progress {
                uploaded: offset as f64,
                total: size as f64,
                fraction: if size == 0 { 1.0 } else { offset as f64 / size as f64 },
                bytes_per_second: st.meter.bytes_per_second(),
                eta_seconds: st.meter.eta_seconds(size),
                chunk_start: range.start as f64,
                chunk_end: range.end as f64,
                checksum,
                retries: st.retries,
            })
        };
        if let Some(f) = &self.hooks.on_progress {
            let _ = f.call1(&JsValue::NULL, &progress);
        }
    }

    /// The whole file's SHA-256 (hex), once done with `fileSha256` on.
    pub fn sha256(&self) -> Option<String> {
        self.state.borrow().sha256.clone()
    }

    /// The server offset this upload resumed from, if it resumed.
    pub fn resumed_from(&self) -> Option<u64> {
        self.state.borrow().resumed_from
    }
}

fn cancelled_error() -> Error {
    Error::new(code::CANCELLED, "The upload was cancelled.")
}

fn cancelled() -> Error {
    cancelled_error()
}
