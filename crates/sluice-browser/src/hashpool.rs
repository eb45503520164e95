//! Chunk checksums off the page's thread: a small pool of Web Workers, each running this same
//! wasm module, hashes `Blob` slices while the page sends earlier chunks.
//!
//! Each worker is a module worker built from a `blob:` URL. It imports this package's JS glue
//! (found through `import.meta.url`, or the `workerUrl` option when a bundler merged the package
//! into another script), instantiates the `WebAssembly.Module` the page already compiled (sent
//! with `postMessage`, so nothing is fetched or compiled twice) and answers
//! `{id, blob, start, end, algorithm}` with the `Upload-Checksum` value from [`crate::chunk_checksum`].
//! A `Blob` crosses to a worker by reference: a disk-backed file is read in the worker, never
//! copied through the page.
//!
//! Where workers cannot start (a Content-Security-Policy without `blob:` workers, a bundled
//! package without `workerUrl`, an old browser), [`HashPool::start`] gives `None` and the upload
//! hashes on the page's thread as before: slower, never wrong.

use crate::error::{code, Error, Result};
use crate::js;
use js_sys::{Array, Function, Object, Promise};
use sluice_core::Algorithm;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, MessageEvent, Worker, WorkerOptions, WorkerType};

/// The file name of the package's JS glue (`wasm-pack build` / `wasm-bindgen` output).
pub const PACKAGE_JS: &str = "sluice_browser.js";
/// Most workers a pool starts by default.
pub const MAX_DEFAULT_WORKERS: usize = 4;

/// What each worker runs. `init` arrives first, then hash requests.
const WORKER_JS: &str = r#"
let ready = null;
self.onmessage = async (event) => {
  const m = event.data;
  if (m.init) {
    ready = import(m.url).then(async (pkg) => {
      if (typeof pkg.default !== "function" || typeof pkg.chunkChecksum !== "function") {
        throw new Error(`${m.url} is not the sluice-browser package`);
      }
      await pkg.default({ module_or_path: m.module });
      return pkg;
    });
    try { await ready; self.postMessage({ ready: true }); }
    catch (e) { self.postMessage({ ready: false, error: String((e && e.message) || e) }); }
    return;
  }
  try {
    const pkg = await ready;
    const checksum = await pkg.chunkChecksum(m.blob, m.start, m.end, m.algorithm);
    self.postMessage({ id: m.id, checksum });
  } catch (e) {
    self.postMessage({ id: m.id, error: String((e && e.message) || e), code: (e && e.code) || "read_error" });
  }
};
"#;

#[wasm_bindgen]
extern "C" {
    type ImportMeta;
    #[wasm_bindgen(method, getter)]
    fn url(this: &ImportMeta) -> String;
    #[wasm_bindgen(thread_local_v2, js_namespace = import, js_name = meta)]
    static IMPORT_META: ImportMeta;
}

/// The URL this package's JS glue was loaded from (`import.meta.url` of the glue).
pub fn glue_url() -> String {
    IMPORT_META.with(|m| m.url())
}

/// The default worker count: one per spare core, between 1 and [`MAX_DEFAULT_WORKERS`].
pub fn default_workers() -> usize {
    let cores = js::get(&js_sys::global(), "navigator");
    let cores = js::get(&cores, "hardwareConcurrency").as_f64().unwrap_or(2.0) as usize;
    cores.saturating_sub(1).clamp(1, MAX_DEFAULT_WORKERS)
}

struct Member {
    worker: Worker,
    busy: Cell<usize>,
    // Kept alive as long as the worker.
    _handlers: Handlers,
}

type Waiters = RefCell<HashMap<u32, (Function, Function)>>;

/// A started pool of hashing workers.
pub struct HashPool {
    members: Vec<Member>,
    waiters: Rc<Waiters>,
    next_id: Cell<u32>,
    url: String,
}

impl HashPool {
    /// Starts `n` workers that import the package from `package_url`, and waits until each has
    /// instantiated the module. `None` (with the cause on the console) when they cannot start.
    pub async fn start(n: usize, package_url: &str) -> Option<HashPool> {
        match Self::try_start(n, package_url).await {
            Ok(pool) => Some(pool),
            Err(e) => {
                web_sys::console::warn_1(&format!("sluice: chunk checksums on the page's thread: {e}").into());
                None
            }
        }
    }

    async fn try_start(n: usize, package_url: &str) -> Result<HashPool, String> {
        let parts = Array::of1(&JsValue::from_str(WORKER_JS));
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("text/javascript");
        let script = Blob::new_with_str_sequence_and_options(&parts, &options).map_err(|e| js::describe(&e))?;
        let script_url = web_sys::Url::create_object_url_with_blob(&script).map_err(|e| js::describe(&e))?;
        let waiters: Rc<Waiters> = Rc::default();
        let mut members = Vec::with_capacity(n);
        let mut readies = Vec::with_capacity(n);
        let result = (|| {
            for _ in 0..n.max(1) {
                let opts = WorkerOptions::new();
                opts.set_type(WorkerType::Module);
                let worker = Worker::new_with_options(&script_url, &opts).map_err(|e| js::describe(&e))?;
                let (ready, handlers) = listen(&worker, waiters.clone());
                let init: JsValue = Object::new().into();
                js::set(&init, "init", true);
                js::set(&init, "url", package_url);
                js::set(&init, "module", wasm_bindgen::module());
                worker.post_message(&init).map_err(|e| js::describe(&e))?;
                readies.push(ready);
                members.push(Member { worker, busy: Cell::new(0), _handlers: handlers });
            }
            Ok::<_, String>(())
        })();
        let _ = web_sys::Url::revoke_object_url(&script_url);
        let pool = HashPool { members, waiters, next_id: Cell::new(0), url: package_url.to_string() };
        result?;
        // Every worker must answer `ready` (or fail) within 20 s.
        for ready in readies {
            let raced = Promise::race(&Array::of2(&ready, &js::timeout(20_000.0)));
            let answer = JsFuture::from(raced).await.map_err(|e| js::describe(&e))?;
            if !js::get(&answer, "ready").as_bool().unwrap_or(false) {
                let why = js::get(&answer, "error").as_string().unwrap_or_else(|| "no answer within 20 s".into());
                return Err(why);
            }
        }
        Ok(pool)
    }

    /// How many workers run.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// The package URL the workers imported.
    pub fn package_url(&self) -> &str {
        &self.url
    }

    /// Starts hashing `blob[range]` on the least busy worker; the returned job resolves to the
    /// `Upload-Checksum` value. The worker starts at once: await the job when it is needed.
    pub fn hash(&self, blob: &Blob, range: Range<u64>, algorithm: Algorithm) -> Result<HashJob> {
        let member = self.members.iter().min_by_key(|m| m.busy.get()).ok_or_else(|| no_worker("none started"))?;
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        let waiters = self.waiters.clone();
        let promise = Promise::new(&mut |resolve, reject| {
            waiters.borrow_mut().insert(id, (resolve, reject));
        });
        let msg: JsValue = Object::new().into();
        js::set(&msg, "id", id);
        js::set(&msg, "blob", blob.clone());
        js::set(&msg, "start", range.start as f64);
        js::set(&msg, "end", range.end as f64);
        js::set(&msg, "algorithm", algorithm.name());
        if let Err(e) = member.worker.post_message(&msg) {
            self.waiters.borrow_mut().remove(&id);
            return Err(no_worker(&js::describe(&e)));
        }
        member.busy.set(member.busy.get() + 1);
        let busy = member.busy.clone();
        Ok(HashJob { future: JsFuture::from(promise), done: Box::new(move || busy.set(busy.get().saturating_sub(1))) })
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        for m in &self.members {
            m.worker.terminate();
        }
    }
}

/// A checksum being computed by a worker.
pub struct HashJob {
    future: JsFuture,
    done: Box<dyn Fn()>,
}

impl HashJob {
    /// Waits for the `Upload-Checksum` value.
    pub async fn value(self) -> Result<String> {
        let answer = self.future.await;
        (self.done)();
        match answer {
            Ok(v) => v.as_string().ok_or_else(|| no_worker("the worker answered without a checksum")),
            Err(e) => {
                let code = js::get(&e, "code").as_string().unwrap_or_else(|| code::READ_ERROR.into());
                Err(Error { code, message: js::describe(&e), status: None })
            }
        }
    }
}

fn no_worker(detail: &str) -> Error {
    Error::new(code::READ_ERROR, format!("A hashing worker failed: {detail}"))
}

type Handlers = (Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(JsValue)>);

/// Routes a worker's answers: `{ready}` resolves the returned promise, `{id, checksum|error}`
/// settles that job. A worker that fails to load resolves it with `{ready: false}`.
fn listen(worker: &Worker, waiters: Rc<Waiters>) -> (Promise, Handlers) {
    let ready_slot: Rc<RefCell<Option<Function>>> = Rc::default();
    let failed_slot = ready_slot.clone();
    let ready = {
        let slot = ready_slot.clone();
        Promise::new(&mut |resolve, _| *slot.borrow_mut() = Some(resolve))
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        if js::get(&data, "ready").as_bool().is_some() {
            if let Some(resolve) = ready_slot.borrow_mut().take() {
                let _ = resolve.call1(&JsValue::NULL, &data);
            }
            return;
        }
        let Some(id) = js::get(&data, "id").as_f64() else { return };
        let Some((resolve, reject)) = waiters.borrow_mut().remove(&(id as u32)) else { return };
        let checksum = js::get(&data, "checksum");
        if checksum.is_string() {
            let _ = resolve.call1(&JsValue::NULL, &checksum);
        } else {
            let err = js_sys::Error::new(&js::get(&data, "error").as_string().unwrap_or_default());
            let err: JsValue = err.into();
            js::set(&err, "code", js::get(&data, "code"));
            let _ = reject.call1(&JsValue::NULL, &err);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        if let Some(resolve) = failed_slot.borrow_mut().take() {
            let answer: JsValue = Object::new().into();
            js::set(&answer, "ready", false);
            let why = js::get(&event, "message").as_string().unwrap_or_else(|| "the worker failed to load".into());
            js::set(&answer, "error", why);
            let _ = resolve.call1(&JsValue::NULL, &answer);
        }
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    (ready, (on_message, on_error))
}
