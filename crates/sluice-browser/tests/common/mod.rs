//! Helpers shared by the browser test binaries: where the servers are (set by
//! `cargo xtask test-browser` at compile time, for the `live-tests` binaries only), crafted files, raw tus
//! requests, native (SubtleCrypto) digests, and a recorder of progress events.
#![allow(dead_code)]

use js_sys::{Promise, Uint8Array};
use sluice_browser::{Client, Upload};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File};

const HOW: &str = "run the browser tests with `cargo xtask test-browser`, which starts the servers";

/// The Sluice tus endpoint under test.
pub fn endpoint() -> &'static str {
    option_env!("SLUICE_TEST_ENDPOINT").unwrap_or_else(|| panic!("SLUICE_TEST_ENDPOINT is unset: {HOW}"))
}

/// The harness's control server (restart, reports).
pub fn control() -> &'static str {
    option_env!("SLUICE_TEST_CONTROL").unwrap_or_else(|| panic!("SLUICE_TEST_CONTROL is unset: {HOW}"))
}

/// The third-party tus server (`@tus/server`).
pub fn tus_endpoint() -> &'static str {
    option_env!("SLUICE_TEST_TUS").unwrap_or_else(|| panic!("SLUICE_TEST_TUS is unset: {HOW}"))
}

#[wasm_bindgen(inline_js = r#"
export function patterned(len, seed) {
  const a = new Uint8Array(len);
  let x = (seed >>> 0) || 1;
  for (let i = 0; i < len; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; a[i] = x & 0xff; }
  return a;
}
export function makeFile(bytes, name) {
  return new File([bytes], name, { type: "", lastModified: 1700000000000 + bytes.length });
}
export async function subtle(blob, alg, base64) {
  const d = new Uint8Array(await crypto.subtle.digest(alg, await blob.arrayBuffer()));
  if (base64) return btoa(String.fromCharCode(...d));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}
export async function download(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return await r.blob();
}
export async function head(url) {
  const r = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  return [r.status, Number(r.headers.get("Upload-Offset") ?? -1)];
}
export async function headHeader(url, name) {
  const r = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  return r.headers.get(name);
}
export async function rawPatch(url, offset, blob) {
  const r = await fetch(url, { method: "PATCH", body: blob, headers: {
    "Tus-Resumable": "1.0.0", "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" } });
  return [r.status, Number(r.headers.get("Upload-Offset") ?? -1)];
}
export async function post(url) {
  const r = await fetch(url, { method: "POST" });
  return r.status;
}
export function blobBytes(blob) { return blob.arrayBuffer(); }
export function makeResponse(status, body) { return new Response(body === "" ? null : body, { status }); }
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
export function storedKeys() {
  const keys = [];
  for (let i = 0; i < localStorage.length; i++) keys.push(localStorage.key(i));
  return keys.filter((k) => k.startsWith("sluice:"));
}
export function clearStored() { for (const k of storedKeys()) localStorage.removeItem(k); }
export function errorCode(e) { return e && e.code !== undefined ? String(e.code) : `not a SluiceError: ${e}`; }
export function errorMessage(e) { return e && e.message !== undefined ? String(e.message) : String(e); }
"#)]
extern "C" {
    /// Deterministic pseudo-random bytes (xorshift32).
    pub fn patterned(len: u32, seed: u32) -> Uint8Array;
    #[wasm_bindgen(js_name = makeFile)]
    fn make_file_js(bytes: &Uint8Array, name: &str) -> File;
    fn subtle(blob: &Blob, alg: &str, base64: bool) -> Promise;
    fn download(url: &str) -> Promise;
    fn head(url: &str) -> Promise;
    #[wasm_bindgen(js_name = headHeader)]
    fn head_header_js(url: &str, name: &str) -> Promise;
    #[wasm_bindgen(js_name = rawPatch)]
    fn raw_patch(url: &str, offset: f64, blob: &Blob) -> Promise;
    fn post(url: &str) -> Promise;
    /// `blob.arrayBuffer()`.
    #[wasm_bindgen(js_name = blobBytes)]
    pub fn blob_bytes(blob: &Blob) -> Promise;
    /// `new Response(body, {status})` (no body when empty).
    #[wasm_bindgen(js_name = makeResponse)]
    pub fn response(status: u16, body: &str) -> web_sys::Response;
    #[wasm_bindgen(js_name = sleep)]
    fn sleep_js(ms: f64) -> Promise;
    /// Keys this crate stored in `localStorage`.
    #[wasm_bindgen(js_name = storedKeys)]
    pub fn stored_keys() -> Vec<String>;
    /// Forgets every stored upload.
    #[wasm_bindgen(js_name = clearStored)]
    pub fn clear_stored();
    /// The `code` of a thrown SluiceError.
    #[wasm_bindgen(js_name = errorCode)]
    pub fn error_code(e: &JsValue) -> String;
    /// The `message` of a thrown error.
    #[wasm_bindgen(js_name = errorMessage)]
    pub fn error_message(e: &JsValue) -> String;
}

/// A `File` holding `bytes`.
pub fn file(bytes: &[u8], name: &str) -> File {
    make_file_js(&Uint8Array::from(bytes), name)
}

/// A `File` of `len` deterministic pseudo-random bytes.
pub fn random_file(len: u32, seed: u32, name: &str) -> File {
    make_file_js(&patterned(len, seed), name)
}

/// Awaits a promise.
pub async fn wait(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// Sleeps.
pub async fn sleep(ms: f64) {
    let _ = wait(sleep_js(ms)).await;
}

/// Native digest (SubtleCrypto): hex, or base64 as in `Upload-Checksum`.
pub async fn native_digest(blob: &Blob, alg: &str, base64: bool) -> String {
    wait(subtle(blob, alg, base64)).await.expect("subtle digest").as_string().expect("string")
}

/// `GET url` as a blob.
pub async fn get(url: &str) -> Blob {
    wait(download(url)).await.expect("download").unchecked_into()
}

/// `HEAD url`: (status, Upload-Offset or -1).
pub async fn head_offset(url: &str) -> (u16, f64) {
    let v: js_sys::Array = wait(head(url)).await.expect("head").unchecked_into();
    (v.get(0).as_f64().unwrap_or(0.0) as u16, v.get(1).as_f64().unwrap_or(-1.0))
}

/// A header of a tus `HEAD url` (e.g. `Repr-Digest`), if sent.
pub async fn head_header(url: &str, name: &str) -> Option<String> {
    wait(head_header_js(url, name)).await.expect("head").as_string()
}

/// A raw `PATCH` behind the client's back: (status, new offset).
pub async fn patch_raw(url: &str, offset: u64, blob: &Blob) -> (u16, f64) {
    let v: js_sys::Array = wait(raw_patch(url, offset as f64, blob)).await.expect("patch").unchecked_into();
    (v.get(0).as_f64().unwrap_or(0.0) as u16, v.get(1).as_f64().unwrap_or(-1.0))
}

/// Asks the harness to restart the Sluice server (returns once it is down).
pub async fn restart_server(down_ms: u32) {
    let status = wait(post(&format!("{}/restart?down_ms={down_ms}", control()))).await.expect("control server");
    assert_eq!(status.as_f64(), Some(200.0), "restart request failed");
}

/// Asserts two blobs hold the same bytes (compared by native SHA-256).
pub async fn assert_same(a: &Blob, b: &Blob) {
    assert_eq!(a.size(), b.size(), "sizes differ");
    assert_eq!(native_digest(a, "SHA-256", false).await, native_digest(b, "SHA-256", false).await, "bytes differ");
}

/// Options as JS from JSON text.
pub fn options(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("valid JSON options")
}

/// Connects to `endpoint` with JSON options.
pub async fn connect(endpoint: &str, json: &str) -> Client {
    Client::connect(endpoint.to_string(), Some(options(json))).await.unwrap_or_else(|e| panic!("connect: {e:?}"))
}

/// Records progress events and states; can pause its upload after the n-th acknowledged chunk.
#[derive(Clone, Default)]
pub struct Recorder {
    /// Progress objects in order.
    pub progress: Rc<RefCell<Vec<JsValue>>>,
    /// State names in order.
    pub states: Rc<RefCell<Vec<String>>>,
    /// The upload to act on.
    pub target: Rc<RefCell<Option<Rc<Upload>>>>,
    /// Pause the target after this many progress events.
    pub pause_after: Rc<RefCell<Option<usize>>>,
}

impl Recorder {
    /// Upload options with this recorder's callbacks.
    pub fn options(&self) -> JsValue {
        let opts: JsValue = js_sys::Object::new().into();
        let me = self.clone();
        let on_progress = Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
            me.progress.borrow_mut().push(p);
            let n = me.progress.borrow().len();
            if *me.pause_after.borrow() == Some(n) {
                if let Some(u) = me.target.borrow().as_ref() {
                    u.pause();
                }
            }
        });
        let me = self.clone();
        let on_state = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
            me.states.borrow_mut().push(s.as_string().unwrap_or_default());
        });
        js_sys::Reflect::set(&opts, &"onProgress".into(), on_progress.as_ref()).expect("set");
        js_sys::Reflect::set(&opts, &"onStateChange".into(), on_state.as_ref()).expect("set");
        on_progress.forget();
        on_state.forget();
        opts
    }

    /// Creates an upload recorded by this recorder.
    pub fn upload(&self, client: &Client, file: &Blob) -> Rc<Upload> {
        let up = Rc::new(client.upload(file.clone(), Some(self.options())).expect("upload"));
        *self.target.borrow_mut() = Some(up.clone());
        up
    }

    /// A numeric field of every progress event.
    pub fn field(&self, key: &str) -> Vec<f64> {
        self.progress
            .borrow()
            .iter()
            .map(|p| js_sys::Reflect::get(p, &key.into()).ok().and_then(|v| v.as_f64()).unwrap_or(-1.0))
            .collect()
    }

    /// A string field of every progress event.
    pub fn strings(&self, key: &str) -> Vec<Option<String>> {
        self.progress
            .borrow()
            .iter()
            .map(|p| js_sys::Reflect::get(p, &key.into()).ok().and_then(|v| v.as_string()))
            .collect()
    }
}

/// Waits (polling) until `f` holds, up to `ms`.
pub async fn until(ms: f64, mut f: impl FnMut() -> bool) -> bool {
    let mut waited = 0.0;
    while waited < ms {
        if f() {
            return true;
        }
        sleep(10.0).await;
        waited += 10.0;
    }
    f()
}

/// A string field of a JS object.
pub fn str_field(obj: &JsValue, key: &str) -> Option<String> {
    js_sys::Reflect::get(obj, &key.into()).ok().and_then(|v| v.as_string())
}

/// A number field of a JS object.
pub fn num_field(obj: &JsValue, key: &str) -> Option<f64> {
    js_sys::Reflect::get(obj, &key.into()).ok().and_then(|v| v.as_f64())
}

/// A boolean field of a JS object.
pub fn bool_field(obj: &JsValue, key: &str) -> Option<bool> {
    js_sys::Reflect::get(obj, &key.into()).ok().and_then(|v| v.as_bool())
}
