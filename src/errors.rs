//! The one mapping from Rust errors to JS: an `Error` object with `code` (and `extendedCode` for
//! SQLite errors, `retryable` for errors a sync server reported). The worker script forwards `name`, `message`, `code` and `extendedCode`.

use js_sys::Reflect;
use synqlite_core::Error;
use wasm_bindgen::prelude::*;

/// Converts an error into a JS `Error` whose `code` is the stable code of `err`.
pub fn to_js(err: Error) -> JsValue {
    let js = js_sys::Error::new(&err.to_string());
    js.set_name("SynqliteError");
    let obj: &JsValue = js.as_ref();
    // Setting a property on a fresh plain Error object cannot fail.
    let _ = Reflect::set(obj, &"code".into(), &err.code().into());
    if let Some(ext) = err.extended_code() {
        let _ = Reflect::set(obj, &"extendedCode".into(), &ext.into());
    }
    if let Error::Remote { retryable, .. } = &err {
        // What the sync server said about retrying (its error frame's flag).
        let _ = Reflect::set(obj, &"retryable".into(), &(*retryable).into());
    }
    js.into()
}

/// Result type of exported functions.
pub type JsResult<T> = Result<T, JsValue>;

/// Maps a core result into the JS error convention.
pub fn js<T>(r: synqlite_core::Result<T>) -> JsResult<T> {
    r.map_err(to_js)
}

/// The message of a `SQLITE_FULL` caused by the origin's storage quota: `detail` says what
/// failed. One wording for the Rust side (IndexedDB, the OPFS pool) and the worker script
/// (OPFS writes the browser refused at the quota); the wording is the core's.
///
/// ```js
/// const message = quotaExceededMessage(`an OPFS write failed with ${left} bytes left`);
/// ```
#[wasm_bindgen(js_name = quotaExceededMessage)]
pub fn quota_exceeded_message(detail: &str) -> String {
    synqlite_core::error::quota_exceeded_message(detail)
}
