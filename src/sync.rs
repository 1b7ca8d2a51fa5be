//! The client end of a sync connection, for the worker script: a thin wrapper over
//! `synqlite_core::sync::ClientSession`. The worker owns the WebSocket and moves bytes; this
//! object applies inbound chunks (each in one transaction with its cursor) and produces the
//! frames to send.

use crate::database::Database;
use crate::errors::JsResult;
use js_sys::{Array, Object, Reflect, Uint8Array};
use std::cell::RefCell;
use synqlite_core::sync::{ClientConfig, ClientSession};
use wasm_bindgen::prelude::*;

/// One connection's protocol state.
///
/// ```js
/// const s = new SyncSession('room', token, 1024);
/// ws.onopen = () => ws.send(s.hello(db));
/// ws.onmessage = async (e) => {
///   const out = s.handle(db, new Uint8Array(e.data)); // applies changes, throws on error frames
///   await db.flush();                                  // durable before acknowledging
///   for (const f of out.send) ws.send(f);
/// };
/// // after local commits: for (const f of s.pump(db)) ws.send(f);
/// ```
#[wasm_bindgen]
pub struct SyncSession {
    inner: RefCell<ClientSession>,
}

fn frames(list: Vec<Vec<u8>>) -> Array {
    list.iter()
        .map(|f| JsValue::from(Uint8Array::from(f.as_slice())))
        .collect()
}

fn set(obj: &Object, key: &str, value: JsValue) {
    // Defining a data property on a plain object we created cannot fail.
    let _ = Reflect::set(obj, &key.into(), &value);
}

#[wasm_bindgen]
impl SyncSession {
    /// A session joining `room` with an optional token, asking for `chunk_size` rows per chunk.
    #[wasm_bindgen(constructor)]
    pub fn new(room: String, token: Option<String>, chunk_size: Option<u32>) -> SyncSession {
        let mut cfg = ClientConfig::new(room);
        cfg.token = token;
        if let Some(n) = chunk_size {
            cfg.chunk_size = n;
        }
        SyncSession {
            inner: RefCell::new(ClientSession::new(cfg)),
        }
    }

    /// The Hello frame to send once the socket is open.
    pub fn hello(&self, db: &Database) -> JsResult<Uint8Array> {
        let mut s = self.inner.borrow_mut();
        let bytes = db.with_conn(|c| s.hello(c))?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }

    /// Handles one received frame. Returns `{ send, receivedRows, committed, joined, applied,
    /// total, caughtUp, upToDate }`; throws an Error with the server's `code` for error frames.
    pub fn handle(&self, db: &Database, frame: &[u8]) -> JsResult<JsValue> {
        let mut s = self.inner.borrow_mut();
        let out = db.with_conn(|c| s.handle(c, frame))?;
        Ok(self.output(&s, out))
    }

    /// Handles frames received back to back (an array of `Uint8Array`), in order: consecutive
    /// change chunks are applied in one transaction (one durable commit). Returns what
    /// `handle` returns, for all of them.
    ///
    /// ```js
    /// const out = s.handleBatch(db, queued.splice(0, queued.length));
    /// ```
    #[wasm_bindgen(js_name = handleBatch)]
    pub fn handle_batch(&self, db: &Database, frames: Vec<Uint8Array>) -> JsResult<JsValue> {
        let bytes: Vec<Vec<u8>> = frames.iter().map(Uint8Array::to_vec).collect();
        let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let mut s = self.inner.borrow_mut();
        let out = db.with_conn(|c| s.handle_batch(c, &slices))?;
        Ok(self.output(&s, out))
    }

    fn output(&self, s: &ClientSession, out: synqlite_core::sync::ClientOutput) -> JsValue {
        let obj = Object::new();
        set(&obj, "send", frames(out.send).into());
        set(&obj, "receivedRows", (out.received_rows as f64).into());
        set(&obj, "committed", out.committed.into());
        self.state_into(s, &obj);
        obj.into()
    }

    /// Frames with local changes to upload (empty before the server's Welcome or when the
    /// window is full).
    pub fn pump(&self, db: &Database) -> JsResult<Array> {
        let mut s = self.inner.borrow_mut();
        Ok(frames(db.with_conn(|c| s.pump(c))?))
    }

    /// `{ joined, applied, total, caughtUp, upToDate }`.
    pub fn state(&self) -> JsValue {
        let obj = Object::new();
        self.state_into(&self.inner.borrow(), &obj);
        obj.into()
    }

    fn state_into(&self, s: &ClientSession, obj: &Object) {
        let (applied, total) = s.progress();
        set(obj, "joined", s.joined().into());
        set(obj, "applied", (applied as f64).into());
        set(obj, "total", (total as f64).into());
        set(obj, "caughtUp", s.caught_up().into());
        set(obj, "upToDate", s.up_to_date().into());
    }
}
