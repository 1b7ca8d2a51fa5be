//! What a Rust panic leaves behind. The release build aborts on panic (`panic = "abort"`), which
//! reaches JS as a `WebAssembly.RuntimeError: unreachable` without a word on the cause. The hook
//! installed at module start writes the panic's message and location to the console and keeps it,
//! so the worker can put it in the `INTERNAL` error it reports for the trap (`lastPanic()`).

use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[wasm_bindgen(start)]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let text = format!("synqlite: internal error: {info}");
        web_sys::console::error_1(&JsValue::from_str(&text));
        // The hook runs once per panic and nothing else borrows LAST, but a panic inside a
        // panic must not recurse here: try_borrow_mut gives up instead.
        LAST.with(|last| {
            if let Ok(mut slot) = last.try_borrow_mut() {
                *slot = Some(text);
            }
        });
    }));
}

/// The message of the panic that stopped this module, if one did (the module is unusable after
/// it: every later call traps too).
///
/// ```js
/// try { db.query(sql) } catch (e) {
///   if (e instanceof WebAssembly.RuntimeError) console.error(lastPanic() ?? e.message);
/// }
/// ```
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST.with(|last| last.try_borrow().ok().and_then(|s| s.clone()))
}
