//! Choosing and installing the storage a database lives on.
//!
//! - `opfs`: the OPFS SAH-pool VFS of sqlite-wasm-vfs, one pool directory per database name
//!   (`.synqlite/<name>`), so different databases can be owned by different workers.
//! - `idb`: the durable IndexedDB VFS of [`crate::idb_vfs`]; writes are durable once flushed.
//! - `memory`: a private in-memory database (tests, or when nothing else exists).
//! - `auto`: OPFS where the browser has sync access handles and lets this page use them, else
//!   IndexedDB where it exists, else memory. OPFS is unavailable where the worker lacks
//!   `navigator.storage.getDirectory` or `FileSystemSyncAccessHandle` (WebKitGTK as shipped) and
//!   where `getDirectory()` itself is refused (Safari's private windows, WebKit's ephemeral
//!   sessions); the `STORAGE_UNAVAILABLE` of an explicit `opfs` names which.
//!
//! A pool whose handles are still held by a worker that is shutting down (a tab that just closed)
//! is retried for a few seconds before giving up with `STORAGE_UNAVAILABLE`.

use crate::idb_vfs::idb::storage_error;
use crate::idb_vfs::IdbStore;
use sqlite_wasm_rs::WasmOsCallback;
use sqlite_wasm_vfs::sahpool::{self, OpfsSAHError, OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil};
use synqlite_core::rusqlite::{Connection, OpenFlags};
use synqlite_core::{Error, Result};
use wasm_bindgen::{JsCast, JsValue};

/// Where an open database lives, with what is needed to release it.
pub enum Backend {
    Opfs(OpfsSAHPoolUtil),
    Idb(IdbStore),
    Memory,
}

impl Backend {
    /// The storage name reported to JS as `db.storage`.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Opfs(_) => "opfs",
            Backend::Idb(_) => "idb",
            Backend::Memory => "memory",
        }
    }

    /// Releases the storage after the connection was closed.
    pub fn release(self) {
        match self {
            Backend::Opfs(util) => {
                // SAFETY: the only connection on this pool was closed by the caller and no
                // pointers into the VFS are kept; uninstalling frees the OPFS handles so another
                // worker (tab) can install the pool.
                let _ = unsafe { util.uninstall() };
            }
            Backend::Idb(store) => store.close(),
            Backend::Memory => {}
        }
    }
}

/// Checks a database name: it becomes a directory, an IndexedDB name and a channel name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid database name {name:?}: use 1-64 letters, digits, '_', '-' or '.', not starting with '.'"
        )))
    }
}

const OPFS_FILE: &str = "/db.sqlite3";

/// Opens `name` on the wanted storage (`auto`, `opfs`, `idb` or `memory`).
pub async fn open(name: &str, wanted: &str) -> Result<(Connection, Backend)> {
    validate_name(name)?;
    match wanted {
        "opfs" => open_opfs(name).await,
        "idb" => open_idb(name).await,
        "memory" => open_memory(),
        // Fall back only when a storage does not exist here; a storage that exists but fails
        // (locked, damaged, full) is an error, never a silent switch to an empty database.
        "auto" => match open_opfs(name).await {
            Err(Error::StorageUnavailable(why)) if why.starts_with(NOT_AVAILABLE) => {
                if has_indexed_db() {
                    open_idb(name).await
                } else {
                    open_memory()
                }
            }
            other => other,
        },
        other => Err(Error::InvalidArgument(format!(
            "unknown storage {other:?}: use 'auto', 'opfs', 'idb' or 'memory'"
        ))),
    }
}

/// How every "OPFS does not exist for this page" error starts (`auto` then falls back).
const NOT_AVAILABLE: &str = "OPFS is not available here";

/// Names what a worker lacks for OPFS sync access handles.
fn missing_opfs_capability() -> &'static str {
    let global: JsValue = js_sys::global().into();
    let get = |target: &JsValue, key: &str| {
        js_sys::Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
    };
    if global
        .dyn_ref::<web_sys::DedicatedWorkerGlobalScope>()
        .is_none()
    {
        return "OPFS sync access handles exist only in a dedicated worker";
    }
    let navigator = get(&global, "navigator");
    let storage = get(&navigator, "storage");
    if storage.is_undefined() || storage.is_null() {
        return "the worker has no navigator.storage (Storage API)";
    }
    if !get(&storage, "getDirectory").is_function() {
        return "the worker has no navigator.storage.getDirectory (File System API)";
    }
    if get(&global, "FileSystemSyncAccessHandle").is_undefined() {
        return "the worker has no FileSystemSyncAccessHandle (createSyncAccessHandle)";
    }
    "needs a dedicated worker in a secure context"
}

fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_URI
}

async fn open_opfs(name: &str) -> Result<(Connection, Backend)> {
    let cfg = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(&format!("synqlite-opfs-{name}"))
        .directory(&format!(".synqlite/{name}"))
        .build();
    let mut delay = 20;
    let mut waited = 0;
    let util = loop {
        match sahpool::install::<WasmOsCallback>(&cfg, false).await {
            Ok(util) => break util,
            Err(OpfsSAHError::NotSupported) => {
                return Err(Error::StorageUnavailable(format!(
                    "{NOT_AVAILABLE}: {}",
                    missing_opfs_capability()
                )))
            }
            // The API exists but this page may not use it: private windows refuse the root.
            Err(OpfsSAHError::Opfs {
                operation: "get OPFS root",
                message,
                ..
            }) => {
                return Err(Error::StorageUnavailable(format!(
                    "{NOT_AVAILABLE}: navigator.storage.getDirectory() was refused ({message}), as in private windows"
                )))
            }
            // Handles still held by a worker that is going away: wait for it.
            Err(e @ OpfsSAHError::Opfs { .. }) if waited < 8_000 && is_locked(&e) => {
                sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(500);
            }
            // No room left in the origin's quota for the pool's files: SQLITE_FULL, as writes.
            Err(OpfsSAHError::Opfs {
                operation, value, ..
            }) => {
                return Err(storage_error(
                    &format!("could not open the OPFS pool of {name:?}: {operation}"),
                    &value,
                ))
            }
            Err(e) => {
                return Err(Error::StorageUnavailable(format!(
                    "could not open the OPFS pool of {name:?}: {e}"
                )))
            }
        }
    };
    let conn = Connection::open_with_flags_and_vfs(
        OPFS_FILE,
        flags(),
        format!("synqlite-opfs-{name}").as_str(),
    );
    // A persistent journal: each commit zeroes the journal's header instead of deleting the
    // file, which in the SAH pool costs two more handle writes and flushes per transaction.
    // Exclusive locking: this connection is the only one on the pool (the pool's access
    // handles are exclusive to this worker), so SQLite can keep its page cache between
    // transactions instead of re-reading the file header to learn whether another connection
    // wrote, which each read-only transaction (a point read) otherwise pays.
    let conn = conn.and_then(|c| {
        c.execute_batch("PRAGMA journal_mode=PERSIST; PRAGMA locking_mode=EXCLUSIVE")
            .map(|()| c)
    });
    match conn {
        Ok(conn) => Ok((conn, Backend::Opfs(util))),
        Err(e) => {
            Backend::Opfs(util).release();
            Err(e.into())
        }
    }
}

fn is_locked(e: &OpfsSAHError) -> bool {
    let text = e.to_string();
    text.contains("NoModificationAllowedError") || text.contains("InvalidStateError")
}

async fn open_idb(name: &str) -> Result<(Connection, Backend)> {
    let store = IdbStore::open(name).await?;
    let conn = Connection::open_with_flags_and_vfs(store.file_name(), flags(), IdbStore::VFS_NAME);
    match conn {
        Ok(conn) => {
            // Journals never reach IndexedDB: durability comes from flushing whole committed
            // states, so a memory journal (for ROLLBACK) is all SQLite needs.
            if let Err(e) = conn.execute_batch("PRAGMA journal_mode=MEMORY") {
                drop(conn);
                store.close();
                return Err(e.into());
            }
            Ok((conn, Backend::Idb(store)))
        }
        Err(e) => {
            store.close();
            Err(e.into())
        }
    }
}

fn has_indexed_db() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .is_ok_and(|v| !v.is_undefined() && !v.is_null())
}

fn open_memory() -> Result<(Connection, Backend)> {
    Ok((Connection::open_in_memory()?, Backend::Memory))
}

/// Resolves after `ms` milliseconds (worker or window global).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global: JsValue = js_sys::global().into();
        let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&global, &resolve, &JsValue::from(ms));
            }
            None => {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
