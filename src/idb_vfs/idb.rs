//! IndexedDB and Web Locks glue: opening, loading, transactions, error mapping.
//!
//! Layout of one synqlite database in IndexedDB (database `synqlite-idb:<name>`, version 1):
//! - object store `blocks`: out-of-line keys `0, 1, 2, ...` (block index), values `Uint8Array`s
//!   of exactly [`BLOCK_SIZE`] bytes;
//! - object store `meta`: key `"file"`, value `{ format: 1, blockSize: 4096, size, generation }`
//!   where `size` is the logical file size and `generation` counts committed flushes.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use synqlite_core::Error;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest,
    IdbRequest, IdbTransaction, IdbVersionChangeEvent,
};

use super::file::{blocks_for, BLOCK_SIZE};

/// Object store holding the blocks.
pub(crate) const BLOCKS: &str = "blocks";
/// Object store holding the meta record.
pub(crate) const META: &str = "meta";
/// Key of the meta record.
pub(crate) const META_KEY: &str = "file";
/// Version of the meta record layout.
const FORMAT: f64 = 1.0;
/// Blocks fetched per `getAll` while loading (1 MiB), bounding the JS heap used by a load.
const LOAD_BATCH: u32 = 256;

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase`, for `transaction(names, mode, options)` (unstable in web-sys).
    type IdbDatabaseExt;

    #[wasm_bindgen(catch, method, js_name = transaction)]
    fn transaction_with_options(
        this: &IdbDatabaseExt,
        names: &Array,
        mode: &str,
        options: &Object,
    ) -> Result<IdbTransaction, JsValue>;

    /// `navigator.locks` (Web Locks API; unstable in web-sys).
    pub(crate) type Locks;

    #[wasm_bindgen(catch, method, js_name = request)]
    fn request(
        this: &Locks,
        name: &str,
        options: &Object,
        callback: &JsValue,
    ) -> Result<Promise, JsValue>;

    /// A `Promise`, for `then(undefined, onRejected)` with a plain JS function.
    type PromiseExt;

    #[wasm_bindgen(method, js_name = then)]
    fn then_fns(this: &PromiseExt, on_fulfilled: &JsValue, on_rejected: &Function) -> JsValue;
}

/// Splits a thrown JS value into (name, message).
pub(crate) fn describe(err: &JsValue) -> (String, String) {
    if let Some(e) = err.dyn_ref::<DomException>() {
        return (e.name(), e.message());
    }
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        return (e.name().into(), e.message().into());
    }
    let text = err.as_string().unwrap_or_else(|| format!("{err:?}"));
    ("Error".into(), text)
}

const QUOTA_EXCEEDED: &str = "QuotaExceededError";

/// Whether `err` is the browser's "quota exceeded" DOMException.
pub(crate) fn is_quota_error(err: &JsValue) -> bool {
    describe(err).0 == QUOTA_EXCEEDED
}

/// Maps a failure of browser storage (IndexedDB, or OPFS while opening its pool):
/// `QuotaExceededError` becomes `SQLITE_FULL`, anything else `STORAGE_UNAVAILABLE`; both keep
/// the DOMException's name and message.
pub(crate) fn storage_error(context: &str, err: &JsValue) -> Error {
    let (name, message) = describe(err);
    if name == QUOTA_EXCEEDED {
        Error::quota_exceeded(&format!("{context} ({name}: {message})"))
    } else {
        Error::StorageUnavailable(format!("{context} ({name}: {message})"))
    }
}

/// The `indexedDB` factory of this global (worker or window).
pub(crate) fn factory() -> Result<IdbFactory, Error> {
    let global: JsValue = js_sys::global().into();
    let unavailable = || {
        Error::StorageUnavailable(
            "IndexedDB is not available in this context (private mode or a sandboxed frame?)"
                .into(),
        )
    };
    let value = Reflect::get(&global, &"indexedDB".into()).map_err(|_| unavailable())?;
    if value.is_null() || value.is_undefined() {
        return Err(unavailable());
    }
    value.dyn_into::<IdbFactory>().map_err(|_| unavailable())
}

/// A promise that resolves on the transaction's `complete` and rejects on its `abort`.
///
/// A failed request fires `error` and then, since nobody calls `preventDefault`, `abort`; so
/// `abort` covers request failures, quota failures at commit and explicit `abort()` calls, and by
/// then `transaction.error` holds the cause.
pub(crate) fn transaction_promise(tx: &IdbTransaction) -> Promise {
    Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onabort(Some(&reject));
    })
}

/// Opens (creating at version 1 if needed) the IndexedDB database `db_name`.
pub(crate) async fn open_database(db_name: &str) -> Result<IdbDatabase, Error> {
    let context = format!("could not open IndexedDB database {db_name:?}");
    let req: IdbOpenDbRequest = factory()?
        .open_with_u32(db_name, 1)
        .map_err(|e| storage_error(&context, &e))?;
    let upgrade_req = req.clone();
    let on_upgrade =
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
            if event.old_version() >= 1.0 {
                return;
            }
            let created = upgrade_req
                .result()
                .and_then(|db| db.dyn_into::<IdbDatabase>())
                .and_then(|db| {
                    db.create_object_store(BLOCKS)?;
                    db.create_object_store(META)
                });
            if created.is_err() {
                // Abort the upgrade; the open request then fails with AbortError.
                if let Some(tx) = upgrade_req.transaction() {
                    let _ = tx.abort();
                }
            }
        });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let opened = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
        req.set_onblocked(Some(&reject));
    });
    let outcome = JsFuture::from(opened).await;
    req.set_onupgradeneeded(None);
    drop(on_upgrade);
    if outcome.is_err() {
        let err = match req.error() {
            Ok(Some(e)) => e.into(),
            _ => JsValue::from_str("blocked by another open connection of an older version"),
        };
        return Err(storage_error(&context, &err));
    }
    req.result()
        .and_then(|db| db.dyn_into::<IdbDatabase>())
        .map_err(|e| storage_error(&context, &e))
}

/// Deletes the IndexedDB database `db_name` (succeeds if it does not exist).
pub(crate) async fn delete_database(db_name: &str) -> Result<(), Error> {
    let context = format!("could not delete IndexedDB database {db_name:?}");
    let req = factory()?
        .delete_database(db_name)
        .map_err(|e| storage_error(&context, &e))?;
    let deleted = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
        req.set_onblocked(Some(&reject));
    });
    if JsFuture::from(deleted).await.is_ok() {
        return Ok(());
    }
    match req.error() {
        Ok(Some(e)) => Err(storage_error(&context, &e.into())),
        _ => Err(Error::StorageUnavailable(format!(
            "{context}: another connection (another tab?) still has it open; the deletion \
             completes once that connection closes"
        ))),
    }
}

/// A `readwrite` transaction over both stores with `durability: 'strict'`.
pub(crate) fn write_transaction(db: &IdbDatabase) -> Result<IdbTransaction, JsValue> {
    let names = Array::of2(&BLOCKS.into(), &META.into());
    let options = Object::new();
    Reflect::set(&options, &"durability".into(), &"strict".into())?;
    db.unchecked_ref::<IdbDatabaseExt>()
        .transaction_with_options(&names, "readwrite", &options)
}

/// The meta record `{ format, blockSize, size, generation }`.
pub(crate) fn meta_value(size: u64, generation: u64) -> Result<JsValue, JsValue> {
    let meta = Object::new();
    Reflect::set(&meta, &"format".into(), &FORMAT.into())?;
    Reflect::set(&meta, &"blockSize".into(), &(BLOCK_SIZE as f64).into())?;
    Reflect::set(&meta, &"size".into(), &(size as f64).into())?;
    Reflect::set(&meta, &"generation".into(), &(generation as f64).into())?;
    Ok(meta.into())
}

/// Reads a meta record: `Ok(None)` when absent, `(size, generation)` when valid.
pub(crate) fn parse_meta(value: &JsValue) -> Result<Option<(u64, u64)>, String> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let field = |key: &str| {
        Reflect::get(value, &key.into())
            .ok()
            .and_then(|v| v.as_f64())
            .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v < 9.0e15)
            .ok_or_else(|| format!("meta record has no valid {key:?}"))
    };
    if field("format")? != FORMAT {
        return Err("meta record has an unknown format (written by a newer synqlite?)".into());
    }
    if field("blockSize")? != BLOCK_SIZE as f64 {
        return Err("meta record has an unexpected block size".into());
    }
    Ok(Some((field("size")? as u64, field("generation")? as u64)))
}

/// A database image read from IndexedDB.
pub(crate) struct Loaded {
    pub blocks: Vec<Box<[u8]>>,
    pub size: u64,
    pub generation: u64,
}

/// Shared state of a [`load`] in progress.
struct LoadState {
    blocks: Vec<Box<[u8]>>,
    expected: usize,
    generation: u64,
    size: u64,
    problem: Option<String>,
    /// The request whose `success` handler runs next.
    current: Option<IdbRequest>,
    meta_req: Option<IdbRequest>,
}

/// Reads the meta record and all blocks in one `readonly` transaction, in batches of
/// [`LOAD_BATCH`] blocks (each next batch is requested from the previous one's `success`
/// handler, while the transaction is active), and validates them against the meta record.
pub(crate) async fn load(db: &IdbDatabase, db_name: &str) -> Result<Loaded, Error> {
    let context = format!("could not read IndexedDB database {db_name:?}");
    let js_err = |e: JsValue| storage_error(&context, &e);
    let names = Array::of2(&BLOCKS.into(), &META.into());
    let tx = db.transaction_with_str_sequence(&names).map_err(js_err)?;
    let blocks = tx.object_store(BLOCKS).map_err(js_err)?;
    let meta = tx.object_store(META).map_err(js_err)?;
    let count_req = blocks.count().map_err(js_err)?;
    let meta_req = meta.get(&META_KEY.into()).map_err(js_err)?;
    let state = Rc::new(RefCell::new(LoadState {
        blocks: Vec::new(),
        expected: 0,
        generation: 0,
        size: 0,
        problem: None,
        current: None,
        meta_req: Some(meta_req.clone()),
    }));

    let on_batch_fn: Rc<RefCell<Option<Function>>> = Rc::default();
    let (batch_state, batch_fn, batch_store, batch_tx) = (
        state.clone(),
        on_batch_fn.clone(),
        blocks.clone(),
        tx.clone(),
    );
    let on_batch = Closure::<dyn FnMut(JsValue)>::new(move |_event: JsValue| {
        let Ok(mut st) = batch_state.try_borrow_mut() else {
            return;
        };
        let step = take_batch(&mut st).and_then(|()| {
            let next = batch_fn.try_borrow().ok().and_then(|f| f.clone());
            match next {
                Some(f) => request_batch(&mut st, &batch_store, &f),
                None => Err("load handler missing".into()),
            }
        });
        if let Err(problem) = step {
            st.problem = Some(problem);
            let _ = batch_tx.abort();
        }
    });
    let on_batch_js: Function = on_batch.as_ref().unchecked_ref::<Function>().clone();
    if let Ok(mut slot) = on_batch_fn.try_borrow_mut() {
        *slot = Some(on_batch_js.clone());
    }

    let (meta_state, meta_store, meta_tx) = (state.clone(), blocks.clone(), tx.clone());
    let on_meta = Closure::<dyn FnMut(JsValue)>::new(move |_event: JsValue| {
        let Ok(mut st) = meta_state.try_borrow_mut() else {
            return;
        };
        let value = st.meta_req.take().and_then(|r| r.result().ok());
        let step = parse_meta(&value.unwrap_or(JsValue::UNDEFINED)).and_then(|meta| {
            let (size, generation) = meta.unwrap_or((0, 0));
            st.size = size;
            st.generation = generation;
            st.expected = blocks_for(size);
            let expected = st.expected;
            st.blocks.reserve(expected);
            request_batch(&mut st, &meta_store, &on_batch_js)
        });
        if let Err(problem) = step {
            st.problem = Some(problem);
            let _ = meta_tx.abort();
        }
    });
    meta_req.set_onsuccess(Some(on_meta.as_ref().unchecked_ref()));

    let outcome = JsFuture::from(transaction_promise(&tx)).await;
    drop((on_meta, on_batch));
    if let Ok(mut slot) = on_batch_fn.try_borrow_mut() {
        *slot = None;
    }
    let mut st = state
        .try_borrow_mut()
        .map_err(|_| Error::Internal("load state busy".into()))?;
    if let Some(problem) = st.problem.take() {
        return Err(Error::StorageUnavailable(format!(
            "IndexedDB database {db_name:?} is damaged: {problem}"
        )));
    }
    if outcome.is_err() {
        let err = tx.error().map(JsValue::from).unwrap_or(JsValue::NULL);
        return Err(storage_error(&context, &err));
    }
    let stored = count_req
        .result()
        .ok()
        .and_then(|c| c.as_f64())
        .unwrap_or(-1.0);
    if stored != st.expected as f64 || st.blocks.len() != st.expected {
        return Err(Error::StorageUnavailable(format!(
            "IndexedDB database {db_name:?} is damaged: {stored} blocks stored, {} expected for \
             {} bytes",
            st.expected, st.size
        )));
    }
    Ok(Loaded {
        blocks: std::mem::take(&mut st.blocks),
        size: st.size,
        generation: st.generation,
    })
}

/// Issues the `getAll` for the next batch (if blocks remain), handled by `handler`.
fn request_batch(
    st: &mut LoadState,
    store: &IdbObjectStore,
    handler: &Function,
) -> Result<(), String> {
    let start = st.blocks.len();
    if start >= st.expected {
        st.current = None;
        return Ok(());
    }
    let end = (start + LOAD_BATCH as usize).min(st.expected) - 1;
    let range = IdbKeyRange::bound(&(start as f64).into(), &(end as f64).into())
        .map_err(|e| describe(&e).1)?;
    let req = store
        .get_all_with_key_and_limit(&range, LOAD_BATCH)
        .map_err(|e| describe(&e).1)?;
    req.set_onsuccess(Some(handler));
    st.current = Some(req);
    Ok(())
}

/// Copies the result of the current batch into memory, checking count and block sizes.
fn take_batch(st: &mut LoadState) -> Result<(), String> {
    let req = st.current.take().ok_or("unexpected batch")?;
    let values: Array = req
        .result()
        .map_err(|e| describe(&e).1)?
        .dyn_into()
        .map_err(|_| "getAll did not return an array".to_string())?;
    let start = st.blocks.len();
    let want = (st.expected - start).min(LOAD_BATCH as usize);
    if values.length() as usize != want {
        return Err(format!(
            "blocks {start}..{} are incomplete ({} of {want} present)",
            start + want,
            values.length()
        ));
    }
    for value in values.iter() {
        let bytes = value
            .dyn_into::<Uint8Array>()
            .map_err(|_| format!("block {} is not a Uint8Array", st.blocks.len()))?;
        if bytes.length() as usize != BLOCK_SIZE {
            return Err(format!(
                "block {} has {} bytes instead of {BLOCK_SIZE}",
                st.blocks.len(),
                bytes.length()
            ));
        }
        let mut block = vec![0u8; BLOCK_SIZE].into_boxed_slice();
        bytes.copy_to(&mut block);
        st.blocks.push(block);
    }
    Ok(())
}

/// An exclusive Web Lock held until dropped.
pub(crate) struct HeldLock {
    release: Function,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

/// `navigator.locks`, when this browser has the Web Locks API.
fn lock_manager() -> Option<Locks> {
    let global: JsValue = js_sys::global().into();
    let navigator = Reflect::get(&global, &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

/// Tries once to take the exclusive lock `name` without waiting.
async fn try_lock(locks: &Locks, name: &str) -> Result<Option<HeldLock>, JsValue> {
    let mut release_fn = None;
    let release = Promise::new(&mut |resolve, _| release_fn = Some(resolve));
    let mut granted_fns = None;
    let granted = Promise::new(&mut |resolve, reject| granted_fns = Some((resolve, reject)));
    let (Some(release_fn), Some((granted_ok, granted_err))) = (release_fn, granted_fns) else {
        return Err("Promise executor did not run".into());
    };
    // Called exactly once by the Lock Manager (with null when the lock is taken).
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let held = !lock.is_null() && !lock.is_undefined();
        let _ = granted_ok.call1(&JsValue::UNDEFINED, &held.into());
        if held {
            release.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = Object::new();
    Reflect::set(&options, &"mode".into(), &"exclusive".into())?;
    Reflect::set(&options, &"ifAvailable".into(), &true.into())?;
    let request = locks.request(name, &options, &callback)?;
    // A failing request (e.g. SecurityError) rejects `granted` instead of leaving it pending.
    let _ = request
        .unchecked_ref::<PromiseExt>()
        .then_fns(&JsValue::UNDEFINED, &granted_err);
    let held = JsFuture::from(granted).await?;
    Ok((held.as_bool() == Some(true)).then_some(HeldLock {
        release: release_fn,
    }))
}

/// Takes the exclusive Web Lock `name`, retrying for up to `wait_ms` (a tab that is closing may
/// still hold it). `Ok(None)` when the browser has no Web Locks API.
pub(crate) async fn acquire_lock(name: &str, wait_ms: u32) -> Result<Option<HeldLock>, Error> {
    let Some(locks) = lock_manager() else {
        return Ok(None);
    };
    let mut waited = 0u32;
    let mut delay = 10u32;
    loop {
        match try_lock(&locks, name).await {
            Ok(Some(lock)) => return Ok(Some(lock)),
            Ok(None) if waited < wait_ms => {
                sleep(delay).await;
                waited = waited.saturating_add(delay);
                delay = (delay * 2).min(250);
            }
            Ok(None) => {
                return Err(Error::StorageUnavailable(format!(
                    "the database is open in another tab or worker (lock {name:?} is held); \
                     IndexedDB storage allows one at a time: close it there and retry"
                )))
            }
            Err(e) => return Err(storage_error(&format!("could not take lock {name:?}"), &e)),
        }
    }
}

/// Resolves after `ms` milliseconds.
pub(crate) async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _| {
        let global: JsValue = js_sys::global().into();
        let timer = Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        let scheduled = timer.is_some_and(|f| f.call2(&global, &resolve, &ms.into()).is_ok());
        if !scheduled {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(promise).await;
}
