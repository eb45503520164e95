//! One file's upload: find or create it on the server, then send it chunk by
//! chunk until the server has every byte, surviving pauses, network errors,
//! server restarts and page reloads.
//!
//! Each stretch of the file goes to one URL in order (tus and the draft both append
//! in order), hashing the next chunk while the current one is on the wire. A whole
//! upload is one stretch; a parallel upload (tus concatenation) sends its parts'
//! stretches at once and then joins them with a final upload.

use crate::api::Progress;
use crate::blob::{self, Reader};
use crate::check::{self, Checked};
use crate::client::Shared;
use crate::error::{code, Error, Result};
use crate::fingerprint::{self, Store};
use crate::hashpool::HashJob;
use crate::http::{Failure, Reply};
use crate::js;
use crate::parts::{self, Remembered};
use crate::progress::Meter;
use crate::retry::{self, Verdict};
use crate::sync::Signal;
use crate::tus;
use crate::wire::Creation;
use js_sys::Function;
use sluice_core::checksum::to_hex;
use sluice_core::tus::{format_checksum, parse_checksum, Metadata};
use sluice_core::{chunk, Algorithm, Reason};
use std::cell::RefCell;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::JsValue;
use web_sys::{AbortController, AbortSignal, Blob};

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
    /// Parts for this file, instead of the client's setting.
    pub parallel: Option<usize>,
}

struct State {
    phase: Phase,
    paused: bool,
    cancelled: bool,
    holds_slot: bool,
    /// A stretch is waiting for the concurrency slot (the others wait for it).
    acquiring: bool,
    /// The upload's URL (the final upload's, once a parallel upload is joined).
    url: Option<String>,
    /// A parallel upload's partial uploads.
    part_urls: Vec<String>,
    key: Option<String>,
    /// Bytes the server acknowledged, per stretch.
    acked: Vec<u64>,
    resumed_from: Option<u64>,
    retries: u32,
    /// Requests in flight, aborted by pause and cancel.
    in_flight: Vec<(u32, AbortController)>,
    next_request: u32,
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

/// A stretch of the file sent to one upload URL: the whole file, or one part.
struct Stretch {
    /// Its place among the stretches (for progress).
    index: usize,
    /// Where it starts in the file.
    start: u64,
    blob: Blob,
    len: u64,
    url: String,
}

/// Where an upload stands on the server.
#[derive(Clone, Copy)]
struct Synced {
    offset: u64,
    complete: bool,
}

/// A stored URL the server no longer knows (or never will): forget it and start over.
fn forgettable(e: &Error) -> bool {
    e.status.is_some_and(|s| (400..500).contains(&s)) || e.code == code::UNEXPECTED_RESPONSE
}

impl Upload {
    /// An upload of `file` through `shared`'s endpoint; nothing happens until [`Upload::run`].
    pub fn new(shared: Rc<Shared>, file: Blob, hooks: Hooks) -> Upload {
        let state = State {
            phase: Phase::Idle,
            paused: false,
            cancelled: false,
            holds_slot: false,
            acquiring: false,
            url: None,
            part_urls: Vec::new(),
            key: None,
            acked: vec![0],
            resumed_from: None,
            retries: 0,
            in_flight: Vec::new(),
            next_request: 0,
            sha256: None,
            meter: Meter::new(5000.0),
        };
        Upload { shared, file, hooks, state: RefCell::new(state), signal: Signal::default() }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state.borrow().phase
    }

    /// Bytes the server has acknowledged (over every part).
    pub fn offset(&self) -> u64 {
        self.state.borrow().acked.iter().sum()
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

    /// Stops sending (the requests in flight are aborted) until [`Upload::resume`].
    pub fn pause(&self) {
        {
            let mut st = self.state.borrow_mut();
            if st.phase.is_final() || st.paused {
                return;
            }
            st.paused = true;
        }
        self.abort_all();
        self.signal.notify();
    }

    /// Continues a paused upload from the server's offset.
    pub fn resume(&self) {
        self.state.borrow_mut().paused = false;
        self.signal.notify();
    }

    /// Stops for good; the running upload terminates itself on the server.
    pub fn cancel(&self) {
        {
            let mut st = self.state.borrow_mut();
            if st.phase.is_final() {
                return;
            }
            st.cancelled = true;
        }
        self.abort_all();
        self.signal.notify();
    }

    fn abort_all(&self) {
        let in_flight = std::mem::take(&mut self.state.borrow_mut().in_flight);
        for (_, controller) in in_flight {
            controller.abort();
        }
    }

    /// A signal for one request, aborted by pause and cancel until [`Upload::settled`].
    fn track(&self) -> Result<(u32, AbortSignal)> {
        let controller = AbortController::new().map_err(|e| Error::new(code::READ_ERROR, js::describe(&e)))?;
        let signal = controller.signal();
        let mut st = self.state.borrow_mut();
        let id = st.next_request;
        st.next_request = id.wrapping_add(1);
        st.in_flight.push((id, controller));
        Ok((id, signal))
    }

    fn settled(&self, id: u32) {
        self.state.borrow_mut().in_flight.retain(|(i, _)| *i != id);
    }

    /// Runs the upload to its end.
    pub async fn run(self: Rc<Self>) -> Result<Outcome> {
        if self.state.borrow().cancelled {
            self.set_phase(Phase::Cancelled);
            return Err(cancelled());
        }
        let result = self.run_inner().await;
        self.abort_all();
        let (urls, key) = {
            let mut st = self.state.borrow_mut();
            if st.holds_slot {
                st.holds_slot = false;
                self.shared.slots.release();
            }
            let urls: Vec<String> = st.url.iter().chain(st.part_urls.iter()).cloned().collect();
            (urls, st.key.clone())
        };
        let store = Store::open(self.shared.config.resume);
        let phase = match &result {
            Ok(_) => Phase::Done,
            Err(e) if e.code == code::CANCELLED => {
                for url in &urls {
                    self.shared.protocol.terminate(url, &self.shared.caps).await;
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
        // The whole file's digest is declared when the upload is created, so it is read first.
        let sha256 = match shared.config.file_sha256 {
            true => Some(self.hash_file().await?),
            false => None,
        };
        self.state.borrow_mut().sha256 = sha256.as_ref().map(|d| to_hex(d));
        self.checkpoint().await?;

        // A reload resumes what this file started before, in as many parts as it used.
        let remembered = store.get(&key).map(|v| Remembered::decode(&v));
        let wanted = match &remembered {
            Some(Remembered::Parts(urls)) => urls.len(),
            Some(Remembered::Whole(_)) => 1,
            None => shared.parallel(self.hooks.parallel.unwrap_or(shared.config.parallel)),
        };
        let ranges = parts::plan(size, wanted);
        let url = match remembered {
            Some(Remembered::Parts(urls)) if urls.len() == ranges.len() => {
                self.run_parts(&checked, &key, &store, ranges, urls.into_iter().map(Some).collect(), sha256.as_ref())
                    .await?
            }
            _ if ranges.len() > 1 => {
                let none = vec![None; ranges.len()];
                self.run_parts(&checked, &key, &store, ranges, none, sha256.as_ref()).await?
            }
            Some(Remembered::Whole(url)) => self.run_whole(&checked, &key, &store, Some(url), sha256.as_ref()).await?,
            _ => self.run_whole(&checked, &key, &store, None, sha256.as_ref()).await?,
        };
        let (sha256, resumed_from) = {
            let st = self.state.borrow();
            (st.sha256.clone(), st.resumed_from)
        };
        Ok(Outcome { url, size, sha256, checksum: shared.checksum, resumed_from })
    }

    /// The file as one upload: resumed at `remembered`'s offset, else created.
    async fn run_whole(
        &self,
        checked: &Checked,
        key: &str,
        store: &Store,
        remembered: Option<String>,
        sha256: Option<&[u8; 32]>,
    ) -> Result<String> {
        let size = self.size();
        let mut failures = 0u32;
        let found = match remembered {
            Some(url) => {
                self.state.borrow_mut().url = Some(url.clone());
                match self.sync_offset(&url, size, checked, &mut failures).await {
                    Ok(synced) => Some((url, synced)),
                    Err(e) if e.code != code::CANCELLED && forgettable(&e) => {
                        store.remove(key);
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let (url, synced) = match found {
            Some((url, synced)) => {
                self.state.borrow_mut().resumed_from = Some(synced.offset);
                (url, synced)
            }
            None => {
                let metadata = self.metadata(checked);
                let creation = Creation { length: size, metadata: &metadata, sha256, partial: false };
                let url = self.create(checked, &creation, &mut failures).await?;
                self.state.borrow_mut().url = Some(url.clone());
                store.set(key, &Remembered::Whole(url.clone()).encode());
                (url, Synced { offset: 0, complete: size == 0 })
            }
        };
        let stretch = Stretch { index: 0, start: 0, blob: self.file.clone(), len: size, url: url.clone() };
        self.send(stretch, synced, checked).await?;
        Ok(url)
    }

    /// The file in parts sent at once (each resumed from `remembered`, else created as a tus
    /// partial upload), then joined by a final upload whose URL is returned.
    async fn run_parts(
        &self,
        checked: &Checked,
        key: &str,
        store: &Store,
        ranges: Vec<Range<u64>>,
        remembered: Vec<Option<String>>,
        sha256: Option<&[u8; 32]>,
    ) -> Result<String> {
        let mut failures = 0u32;
        self.state.borrow_mut().acked = vec![0; ranges.len()];
        let mut stretches = Vec::with_capacity(ranges.len());
        let mut resumed = false;
        for (index, (range, url)) in ranges.into_iter().zip(remembered).enumerate() {
            let len = range.end - range.start;
            let found = match url {
                Some(url) => match self.sync_offset(&url, len, checked, &mut failures).await {
                    Ok(synced) => Some((url, synced)),
                    Err(e) if e.code != code::CANCELLED && forgettable(&e) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let (url, synced) = match found {
                Some(found) => {
                    resumed = true;
                    found
                }
                None => {
                    let none = Metadata::from_pairs(Vec::<(String, Vec<u8>)>::new());
                    let creation = Creation { length: len, metadata: &none, sha256: None, partial: true };
                    let url = self.create(checked, &creation, &mut failures).await?;
                    (url, Synced { offset: 0, complete: len == 0 })
                }
            };
            self.state.borrow_mut().part_urls.push(url.clone());
            self.acknowledge(index, synced.offset, None);
            let blob = blob::slice(&self.file, range.clone())?;
            stretches.push((Stretch { index, start: range.start, blob, len, url }, synced));
        }
        let urls = self.state.borrow().part_urls.clone();
        store.set(key, &Remembered::Parts(urls.clone()).encode());
        if resumed {
            self.state.borrow_mut().resumed_from = Some(self.offset());
        }
        let sends = stretches.into_iter().map(|(stretch, synced)| self.send(stretch, synced, checked)).collect();
        if let Err(e) = all(sends).await {
            // The other parts' requests stop with the first that cannot go on.
            self.abort_all();
            return Err(e);
        }
        let url = self.join(checked, &urls, sha256, &mut failures).await?;
        self.state.borrow_mut().url = Some(url.clone());
        store.set(key, &Remembered::Whole(url.clone()).encode());
        Ok(url)
    }

    /// Sends one stretch from `synced` until the server has it all (and, in the draft,
    /// has been told it is complete).
    async fn send(&self, stretch: Stretch, synced: Synced, checked: &Checked) -> Result<()> {
        let shared = self.shared.clone();
        let protocol = shared.protocol;
        let (mut offset, mut complete) = (synced.offset, synced.complete);
        self.acknowledge(stretch.index, offset, None);
        let chunk_size = shared.chunk_size();
        let algorithm = shared.checksum;
        let mut reader = Reader::new();
        let mut prepared: Option<(Range<u64>, Prepared)> = None;
        let mut need_sync = false;
        let mut failures = 0u32;
        loop {
            if self.checkpoint().await? || need_sync {
                let synced = self.sync_offset(&stretch.url, stretch.len, checked, &mut failures).await?;
                if synced.offset > offset {
                    // Someone (another tab, an earlier request) made progress: not a failure streak.
                    failures = 0;
                }
                (offset, complete) = (synced.offset, synced.complete);
                self.acknowledge(stretch.index, offset, None);
                need_sync = false;
            }
            let range = match chunk::plan(offset, stretch.len, chunk_size).next() {
                Some(range) => range,
                None if complete => break,
                // Every byte is there, but a draft upload waits for the request that completes it.
                None => stretch.len..stretch.len,
            };
            let checksum = match prepared.take() {
                Some((r, p)) if r == range => {
                    self.finish_hash(&stretch.blob, &mut reader, range.clone(), algorithm, p).await?
                }
                _ => {
                    let p = self.start_hash(&stretch.blob, &mut reader, range.clone(), algorithm).await?;
                    self.finish_hash(&stretch.blob, &mut reader, range.clone(), algorithm, p).await?
                }
            };
            let (request, signal) = self.track()?;
            let body = blob::slice(&stretch.blob, range.clone())?;
            let last = range.end == stretch.len;
            let pending = protocol.patch(&stretch.url, offset, body, checksum.clone(), last, Some(&signal));
            // While this chunk is on the wire, hash the next one (in a worker when there is one).
            if let Some(next) = chunk::plan(range.end, stretch.len, chunk_size).next() {
                let p = self.start_hash(&stretch.blob, &mut reader, next.clone(), algorithm).await?;
                prepared = Some((next, p));
            }
            let result = match pending {
                Ok(p) => p.reply().await,
                Err(f) => Err(f),
            };
            self.settled(request);
            match result {
                Ok(reply) if reply.ok() => {
                    let acked = tus::offset_of(&reply)?;
                    if acked > range.end || acked < offset || (acked == offset && !range.is_empty()) {
                        // Not what the protocol allows; ask the server where it stands.
                        need_sync = true;
                        continue;
                    }
                    offset = acked;
                    complete = protocol.is_complete(&reply, offset, stretch.len);
                    if last && offset == stretch.len && !complete {
                        let err = Error::new(code::UNEXPECTED_RESPONSE, "The server did not complete the upload.");
                        self.count_retry(&mut failures, err)?;
                        need_sync = true;
                        continue;
                    }
                    failures = 0;
                    let span = stretch.start + range.start..stretch.start + range.end;
                    self.acknowledge(stretch.index, offset, Some((span, checksum)));
                }
                Ok(reply) => {
                    let err = self.refusal(&reply, checked).await;
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
                    self.backoff(&mut failures, None, f.into_error(&stretch.url)).await?;
                    need_sync = true;
                }
            }
        }
        Ok(())
    }

    /// The whole file's SHA-256: in a hashing worker when the client has one, else here.
    async fn hash_file(&self) -> Result<[u8; 32]> {
        let size = self.size();
        if let Some(pool) = &self.shared.pool {
            if let Ok(job) = pool.hash(&self.file, 0..size, Algorithm::Sha256) {
                match job.value().await.map(|value| parse_checksum(&value)) {
                    Ok(Ok((_, digest))) => {
                        if let Ok(digest) = <[u8; 32]>::try_from(digest) {
                            return Ok(digest);
                        }
                    }
                    Ok(Err(e)) => {
                        web_sys::console::warn_1(&format!("sluice: {e}; hashing the file on the page").into())
                    }
                    Err(e) => web_sys::console::warn_1(&format!("sluice: {e}; hashing the file on the page").into()),
                }
            }
        }
        let mut hasher = Algorithm::Sha256.hasher();
        Reader::new().read(&self.file, 0..size, |b| hasher.update(b)).await?;
        <[u8; 32]>::try_from(hasher.finalize())
            .map_err(|_| Error::new(code::READ_ERROR, "SHA-256 gave a digest of the wrong size."))
    }

    /// `filename`, `filetype` (the sniffed type, else the browser's) and the page's pairs.
    fn metadata(&self, checked: &Checked) -> Metadata {
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
        Metadata::from_pairs(pairs)
    }

    /// `POST` the creation request (retrying transient failures) and return the upload URL.
    async fn create(&self, checked: &Checked, creation: &Creation<'_>, failures: &mut u32) -> Result<String> {
        let endpoint = &self.shared.endpoint;
        loop {
            self.checkpoint().await?;
            let sent = self.shared.protocol.create(endpoint, creation).await;
            if let Some(url) = self.created(sent, checked, failures).await? {
                return Ok(url);
            }
        }
    }

    /// `POST` the final upload that joins `parts` (retrying transient failures): its URL.
    async fn join(
        &self,
        checked: &Checked,
        parts: &[String],
        sha256: Option<&[u8; 32]>,
        failures: &mut u32,
    ) -> Result<String> {
        let mut pairs = self.metadata(checked).pairs().to_vec();
        if let Some(digest) = sha256 {
            pairs.push(("sha256".into(), to_hex(digest).into_bytes()));
        }
        let metadata = Metadata::from_pairs(pairs);
        loop {
            self.checkpoint().await?;
            let sent = tus::create_final(&self.shared.endpoint, parts, &metadata).await;
            if let Some(url) = self.created(sent, checked, failures).await? {
                return Ok(url);
            }
        }
    }

    /// A creation's answer: the new upload's URL, `None` after waiting out a transient
    /// failure (send it again), or the refusal.
    async fn created(
        &self,
        sent: Result<Reply, Failure>,
        checked: &Checked,
        failures: &mut u32,
    ) -> Result<Option<String>> {
        let endpoint = &self.shared.endpoint;
        match sent {
            Ok(reply) if reply.ok() => tus::location(&reply, endpoint).map(Some),
            Ok(reply) => {
                let err = self.refusal(&reply, checked).await;
                match retry::decide(true, err.reason()) {
                    Verdict::Retry => self.backoff(failures, reply.retry_after_ms(), err).await.map(|_| None),
                    _ => Err(err),
                }
            }
            Err(f) => self.backoff(failures, None, f.into_error(endpoint)).await.map(|_| None),
        }
    }

    /// `HEAD` the upload (retrying transient failures): the server's offset, and whether
    /// the upload is complete.
    async fn sync_offset(&self, url: &str, length: u64, checked: &Checked, failures: &mut u32) -> Result<Synced> {
        let protocol = self.shared.protocol;
        loop {
            self.checkpoint().await?;
            let (request, signal) = self.track()?;
            let result = protocol.head(url, Some(&signal)).await;
            self.settled(request);
            match result {
                Ok(reply) if reply.ok() => {
                    let declared = reply.header("Upload-Length");
                    if declared.is_some_and(|l| l.trim() != length.to_string()) {
                        return Err(Error::new(
                            code::UNEXPECTED_RESPONSE,
                            "The upload on the server has a different length than this file.",
                        ));
                    }
                    let offset = tus::offset_of(&reply)?;
                    if offset > length {
                        return Err(Error::new(
                            code::UNEXPECTED_RESPONSE,
                            "The server holds more bytes than this file has.",
                        ));
                    }
                    return Ok(Synced { offset, complete: protocol.is_complete(&reply, offset, length) });
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

    /// Starts the checksum of `range` of `blob`: handed to a hashing worker when the client
    /// has them, else computed now on this thread.
    async fn start_hash(
        &self,
        blob: &Blob,
        reader: &mut Reader,
        range: Range<u64>,
        algorithm: Option<Algorithm>,
    ) -> Result<Prepared> {
        if let (Some(pool), Some(algorithm)) = (&self.shared.pool, algorithm) {
            if let Ok(job) = pool.hash(blob, range.clone(), algorithm) {
                return Ok(Prepared::Worker(job));
            }
        }
        Ok(Prepared::Done(digest(blob, reader, range, algorithm).await?))
    }

    /// The checksum a [`Upload::start_hash`] prepared. Should a worker fail, the chunk is hashed
    /// here instead (a file that really cannot be read fails here too, with its own error).
    async fn finish_hash(
        &self,
        blob: &Blob,
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
                    digest(blob, reader, range, algorithm).await
                }
            },
        }
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

    /// Honours pause and cancel, and holds a concurrency slot while sending (one per upload,
    /// whatever the number of its parts). Returns `true` when it waited in a pause (the caller
    /// must re-sync).
    async fn checkpoint(&self) -> Result<bool> {
        let mut was_paused = false;
        loop {
            let (cancelled, paused, holds, acquiring) = {
                let st = self.state.borrow();
                (st.cancelled, st.paused, st.holds_slot, st.acquiring)
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
                if acquiring {
                    // Another part is waiting for the slot; its arrival is announced.
                    let _ = wasm_bindgen_futures::JsFuture::from(self.signal.changed()).await;
                    continue;
                }
                self.set_phase(Phase::Queued);
                self.state.borrow_mut().acquiring = true;
                let got = self.shared.slots.acquire(self.signal.changed()).await;
                {
                    let mut st = self.state.borrow_mut();
                    st.acquiring = false;
                    st.holds_slot |= got;
                }
                self.signal.notify();
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

    /// Records stretch `index`'s acknowledged offset and reports progress over the file
    /// (`chunk` is the span of the file the server just took, with its checksum).
    fn acknowledge(&self, index: usize, offset: u64, chunk: Option<(Range<u64>, Option<String>)>) {
        let size = self.size();
        let progress = {
            let mut st = self.state.borrow_mut();
            if st.acked.len() <= index {
                st.acked.resize(index + 1, 0);
            }
            st.acked[index] = offset;
            let total: u64 = st.acked.iter().sum();
            st.meter.record(js::now_ms(), total);
            let Some((range, checksum)) = chunk else { return };
            crate::api::to_js(&Progress {
                uploaded: total as f64,
                total: size as f64,
                fraction: if size == 0 { 1.0 } else { total as f64 / size as f64 },
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

/// Runs `sends` at once until every one is done, or the first fails (the others are then
/// dropped; the caller aborts their requests).
async fn all<F: Future<Output = Result<()>>>(sends: Vec<F>) -> Result<()> {
    let mut running: Vec<Option<Pin<Box<F>>>> = sends.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        for slot in running.iter_mut() {
            if let Some(send) = slot {
                if let Poll::Ready(result) = send.as_mut().poll(cx) {
                    *slot = None;
                    result?;
                }
            }
        }
        if running.iter().all(Option::is_none) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Reads `range` of `blob` once for its chunk checksum (`None` without an algorithm).
async fn digest(
    blob: &Blob,
    reader: &mut Reader,
    range: Range<u64>,
    algorithm: Option<Algorithm>,
) -> Result<Option<String>> {
    let Some(algorithm) = algorithm else { return Ok(None) };
    let mut hasher = algorithm.hasher();
    reader.read(blob, range, |b| hasher.update(b)).await?;
    Ok(Some(format_checksum(hasher.algorithm(), &hasher.finalize())))
}

fn cancelled_error() -> Error {
    Error::new(code::CANCELLED, "The upload was cancelled.")
}

fn cancelled() -> Error {
    cancelled_error()
}
