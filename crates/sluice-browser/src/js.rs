//! The few global JavaScript functions the crate needs, bound directly so the
//! module works on a page and in a worker alike (no `window` required).

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `globalThis.fetch(request)`.
    #[wasm_bindgen(js_name = fetch)]
    pub fn fetch_with_request(request: &web_sys::Request) -> Promise;

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;

    type Performance;
    #[wasm_bindgen(thread_local_v2, js_name = performance)]
    static PERFORMANCE: Option<Performance>;
    #[wasm_bindgen(method)]
    fn now(this: &Performance) -> f64;
}

/// Milliseconds from a monotonic clock (`performance.now()`, else `Date.now()`).
pub fn now_ms() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map(|p| p.now())).unwrap_or_else(js_sys::Date::now)
}

/// A uniformly random number in `[0, 1)` (`Math.random`), for jitter.
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// A promise that resolves after `ms` milliseconds.
pub fn timeout(ms: f64) -> Promise {
    Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms.max(0.0));
    })
}

/// Reads a property of a JS object (`undefined` when absent or not an object).
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Sets a property on a JS object (ignores failures on frozen objects).
pub fn set(obj: &JsValue, key: &str, value: impl Into<JsValue>) {
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// A short description of a thrown JS value, for error messages.
pub fn describe(err: &JsValue) -> String {
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    err.as_string().unwrap_or_else(|| format!("{err:?}"))
}

/// Whether a thrown JS value is a DOMException named `AbortError`.
pub fn is_abort(err: &JsValue) -> bool {
    get(err, "name").as_string().as_deref() == Some("AbortError")
}
