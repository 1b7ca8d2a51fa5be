//! Durable IndexedDB storage for SQLite: the `synqlite-idb` VFS (fallback when OPFS is missing).
//!
//! # Mechanism
//! - **Memory while open.** [`IdbStore::open`] reads every block of the database from IndexedDB
//!   into wasm memory and attaches it to the `synqlite-idb` VFS under [`IdbStore::file_name`].
//!   SQLite then runs entirely against memory: the VFS callbacks are synchronous and never call
//!   into JS. Journals, statement journals and temp files are memory files that are never
//!   persisted; WAL is refused (it would keep commits out of the main file).
//! - **Dirty blocks and before-images.** The main file is kept as 4096-byte blocks. A write marks
//!   its blocks dirty; the first write to a block since the last flush keeps a copy of its
//!   previous content (its before-image), and so does a truncate that drops or clears a block.
//! - **Flush = one IndexedDB transaction.** [`IdbStore::flush`] runs while SQLite is in autocommit
//!   mode, i.e. when the in-memory file is a committed database. It synchronously opens one
//!   `readwrite` transaction with `durability: 'strict'`, puts a copy of every dirty block, deletes
//!   blocks past a shrunken end, and updates the meta record `{ size, generation }`. The returned
//!   [`FlushFuture`] resolves when the transaction's `complete` event fired: from then on the state
//!   survives a killed worker, a closed tab or a crash. Before that, IndexedDB still holds the
//!   previous committed state in full, because a transaction is all-or-nothing: there is never a
//!   torn database and never a hot journal to recover.
//! - **Failure undoes the writes.** If the transaction aborts (quota exceeded, storage cleared),
//!   the before-images are put back, so memory equals the durable state again. SQLite notices at
//!   its next read transaction: the change counter in page 1 differs from its cached copy, so it
//!   drops its page cache (and a changed schema cookie re-prepares statements). The error is
//!   `SQLITE_FULL` for a full quota, `STORAGE_UNAVAILABLE` otherwise.
//! - **One writer.** While open, the store holds the exclusive Web Lock `synqlite-idb:<name>`,
//!   so a second tab or worker gets `STORAGE_UNAVAILABLE` instead of two in-memory copies
//!   overwriting each other's blocks. As a second line of defence each flush checks, inside its
//!   transaction, that the stored `generation` is the one this store last wrote, and aborts if
//!   not.
//!
//! # Use
//! ```ignore
//! let store = IdbStore::open("media").await?;
//! let conn = Connection::open_with_flags_and_vfs(store.file_name(), flags, IdbStore::VFS_NAME)?;
//! conn.execute_batch("PRAGMA journal_mode=MEMORY")?;
//! conn.execute("INSERT INTO t VALUES (1)", [])?;
//! if conn.is_autocommit() && store.is_dirty() {
//!     store.flush()?.await?; // durable now; run no SQL until this resolved
//! }
//! conn.close().map_err(|(_, e)| e)?;
//! store.close();
//! ```

pub(crate) mod file;
pub(crate) mod idb;
pub(crate) mod vfs;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::Uint8Array;
use synqlite_core::Error;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbKeyRange, IdbTransaction};

use file::BlockFile;

/// `SQLITE_MISUSE`: the caller broke the flush protocol.
const SQLITE_MISUSE: i32 = 21;
/// How long [`IdbStore::open`] waits for another tab or worker to release the database.
const DEFAULT_LOCK_WAIT_MS: u32 = 5_000;

thread_local! {
    /// Names opened (or being opened or deleted) in this worker.
    static IN_USE: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    /// Counts opens, so every open gets its own file namespace in the VFS.
    static OPENS: Cell<u64> = const { Cell::new(0) };
}

/// Marks a database name as in use in this worker until dropped.
struct NameClaim(String);

impl NameClaim {
    fn take(name: &str, action: &str) -> Result<NameClaim, Error> {
        let claimed = IN_USE.with(|names| {
            names
                .try_borrow_mut()
                .map(|mut names| names.insert(name.to_owned()))
                .unwrap_or(false)
        });
        if claimed {
            Ok(NameClaim(name.to_owned()))
        } else {
            Err(Error::StorageUnavailable(format!(
                "cannot {action} database {name:?}: it is already open in this worker; close it first"
            )))
        }
    }
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        IN_USE.with(|names| {
            if let Ok(mut names) = names.try_borrow_mut() {
                names.remove(&self.0);
            }
        });
    }
}

/// One synqlite database stored in IndexedDB, loaded into memory and attached to the
/// `synqlite-idb` VFS. Dropping it is the same as [`IdbStore::close`].
pub struct IdbStore {
    name: String,
    file_name: String,
    file: Rc<RefCell<BlockFile>>,
    state: Rc<vfs::VfsState>,
    /// The IndexedDB connection; replaced by a new one after a flush ran out of quota.
    db: Rc<RefCell<IdbDatabase>>,
    fail_next_flush: Cell<bool>,
    // Released after `db` is closed (fields drop after `Drop::drop` ran).
    _lock: Option<idb::HeldLock>,
    _claim: NameClaim,
}

impl IdbStore {
    /// The name of the SQLite VFS to open [`IdbStore::file_name`] with.
    pub const VFS_NAME: &'static str = "synqlite-idb";

    /// Opens (creating if needed) the database `name`: takes its Web Lock (waiting up to 5 s for
    /// a tab that is closing), loads it from IndexedDB `synqlite-idb:<name>` and attaches it to
    /// the VFS (registered on first use). Errors: `STORAGE_UNAVAILABLE` when IndexedDB is missing
    /// or blocked, the stored data is damaged, or the database is open elsewhere.
    pub async fn open(name: &str) -> Result<IdbStore, Error> {
        Self::open_with_lock_wait(name, DEFAULT_LOCK_WAIT_MS).await
    }

    /// [`IdbStore::open`] with an explicit wait for the lock held by another tab or worker.
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub async fn open_with_lock_wait(name: &str, lock_wait_ms: u32) -> Result<IdbStore, Error> {
        if name.is_empty() || name.len() > 255 || name.contains('\0') {
            return Err(Error::InvalidArgument(format!(
                "invalid IndexedDB database name {name:?}: use 1-255 characters without NUL"
            )));
        }
        let claim = NameClaim::take(name, "open")?;
        let state = vfs::state()?;
        let db_name = Self::idb_name(name);
        let lock = idb::acquire_lock(&db_name, lock_wait_ms).await?;
        let db = idb::open_database(&db_name).await?;
        let loaded = match idb::load(&db, &db_name).await {
            Ok(loaded) => loaded,
            Err(e) => {
                db.close();
                return Err(e);
            }
        };
        let file = Rc::new(RefCell::new(BlockFile::from_durable(
            loaded.blocks,
            loaded.size,
            loaded.generation,
        )));
        // A fresh directory per open: a connection wrongly left open on a closed store can never
        // touch the journal of a later open of the same database.
        let seq = OPENS.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        let file_name = format!("/synqlite-idb/{seq}/{name}.db");
        if !state.attach(&file_name, file.clone()) {
            db.close();
            return Err(Error::Internal(format!(
                "{file_name:?} is already attached to the {} VFS",
                Self::VFS_NAME
            )));
        }
        Ok(IdbStore {
            name: name.to_owned(),
            file_name,
            file,
            state,
            db: Rc::new(RefCell::new(db)),
            fail_next_flush: Cell::new(false),
            _lock: lock,
            _claim: claim,
        })
    }

    /// The IndexedDB database (and Web Lock) name used for `name`.
    pub fn idb_name(name: &str) -> String {
        format!("{}:{name}", Self::VFS_NAME)
    }

    /// The database name given to [`IdbStore::open`].
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name to pass to `Connection::open_with_flags_and_vfs` with [`Self::VFS_NAME`].
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// Whether there are writes that [`IdbStore::flush`] would save.
    pub fn is_dirty(&self) -> bool {
        self.file.try_borrow().map(|f| f.is_dirty()).unwrap_or(true)
    }

    /// Current size of the database file in bytes (in memory, flushed or not).
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub fn file_size(&self) -> u64 {
        self.file.try_borrow().map(|f| f.size()).unwrap_or(0)
    }

    /// Starts saving every write since the last flush in one IndexedDB transaction; await the
    /// returned future for durability. Call only when the connection is in autocommit mode, and
    /// run no SQL until the future resolved.
    ///
    /// The snapshot is taken before this returns. On failure the future yields the error and the
    /// in-memory database has been rolled back to the last durable state. Returns an error
    /// (`SQLITE_MISUSE`) right away if a flush is still in flight or a write transaction holds
    /// the database; `STORAGE_UNAVAILABLE` if the transaction cannot even start (then the
    /// writes are rolled back as well).
    pub fn flush(&self) -> Result<FlushFuture, Error> {
        let mut file = self
            .file
            .try_borrow_mut()
            .map_err(|_| Error::Internal("database file is busy".into()))?;
        if file.flush_in_flight() {
            return Err(Error::sqlite(
                SQLITE_MISUSE,
                format!(
                    "a flush of database {:?} is still in flight; await it before flushing again",
                    self.name
                ),
            ));
        }
        if file.write_locked() {
            return Err(Error::sqlite(
                SQLITE_MISUSE,
                format!(
                    "database {:?} is locked for writing (open transaction, or PRAGMA \
                     locking_mode=EXCLUSIVE); flush only in autocommit mode",
                    self.name
                ),
            ));
        }
        if !file.is_dirty() {
            return Ok(FlushFuture::ready(Ok(())));
        }
        let plan = file
            .begin_flush()
            .map_err(|why| Error::sqlite(SQLITE_MISUSE, why))?;
        let inject = self.fail_next_flush.replace(false);
        let started = self.start_transaction(&plan, inject);
        let (tx, conflict, guard) = match started {
            Ok(started) => started,
            Err((tx, err)) => {
                if let Some(tx) = tx {
                    let _ = tx.abort();
                }
                file.fail_flush();
                return Err(idb::storage_error(&self.flush_context(), &err));
            }
        };
        drop(file);

        let slot = Rc::new(FlushSlot::default());
        let (task_slot, file, context) = (slot.clone(), self.file.clone(), self.flush_context());
        let (connection, db_name) = (self.db.clone(), Self::idb_name(&self.name));
        let done = idb::transaction_promise(&tx);
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = JsFuture::from(done).await;
            drop(guard);
            let quota = outcome.is_err()
                && tx
                    .error()
                    .is_some_and(|e| idb::is_quota_error(&JsValue::from(e)));
            if quota {
                // Firefox refuses every later put on a connection whose transaction exceeded
                // the quota (InvalidStateError), even one that frees space: a new connection
                // starts clean. The caller runs no SQL before this flush's future resolved.
                reconnect(&connection, &db_name).await;
            }
            let result = match file.try_borrow_mut() {
                Err(_) => Err(Error::Internal("database file busy at flush end".into())),
                Ok(mut f) if outcome.is_ok() => {
                    f.finish_flush();
                    Ok(())
                }
                Ok(mut f) => {
                    f.fail_flush();
                    Err(match conflict.take() {
                        Some(why) => Error::StorageUnavailable(format!(
                            "{context}: {why}; the unsaved writes were undone, reopen the database"
                        )),
                        None => {
                            let err = tx.error().map(JsValue::from).unwrap_or(JsValue::NULL);
                            let mut e = idb::storage_error(&context, &err);
                            add_undone_note(&mut e);
                            e
                        }
                    })
                }
            };
            task_slot.complete(result);
        });
        Ok(FlushFuture { slot: Some(slot) })
    }

    fn flush_context(&self) -> String {
        format!("saving database {:?} to IndexedDB failed", self.name)
    }

    /// Issues every request of a flush on one new transaction. On error returns the transaction
    /// (if it was created) so the caller can abort it.
    #[allow(clippy::type_complexity)]
    fn start_transaction(
        &self,
        plan: &file::FlushPlan,
        inject_failure: bool,
    ) -> Result<
        (IdbTransaction, Rc<Cell<Option<String>>>, FlushGuard),
        (Option<IdbTransaction>, JsValue),
    > {
        let db = self.db.try_borrow().map_err(|_| {
            (
                None,
                JsValue::from_str("the IndexedDB connection is being replaced"),
            )
        })?;
        let tx = idb::write_transaction(&db).map_err(|e| (None, e))?;
        let fail = |e: JsValue| (Some(tx.clone()), e);
        let blocks = tx.object_store(idb::BLOCKS).map_err(fail)?;
        let meta = tx.object_store(idb::META).map_err(fail)?;

        // Optimistic concurrency: the stored generation must still be ours.
        let conflict: Rc<Cell<Option<String>>> = Rc::default();
        let check = meta.get(&idb::META_KEY.into()).map_err(fail)?;
        let (check_req, check_tx, flag) = (check.clone(), tx.clone(), conflict.clone());
        let expected = plan.expected_generation;
        let on_check = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
            let stored = check_req.result().unwrap_or(JsValue::UNDEFINED);
            let problem = match idb::parse_meta(&stored) {
                Ok(Some((_, generation))) if generation == expected => None,
                Ok(None) if expected == 0 => None,
                Ok(Some((_, generation))) => Some(format!(
                    "another tab or worker wrote this database (generation {generation}, \
                     expected {expected})"
                )),
                Ok(None) => Some("the database was deleted by another tab or worker".into()),
                Err(why) => Some(format!("the stored meta record is invalid: {why}")),
            };
            if problem.is_some() {
                flag.set(problem);
                let _ = check_tx.abort();
            }
        });
        check.set_onsuccess(Some(on_check.as_ref().unchecked_ref()));
        let guard = FlushGuard {
            _on_check: on_check,
        };

        for (index, block) in &plan.blocks {
            let value = Uint8Array::from(&block[..]);
            blocks
                .put_with_key(&value, &(*index as f64).into())
                .map_err(fail)?;
        }
        if let Some(from) = plan.delete_from {
            let range = IdbKeyRange::lower_bound(&(from as f64).into()).map_err(fail)?;
            blocks.delete(&range).map_err(fail)?;
        }
        let record = idb::meta_value(plan.size, plan.new_generation).map_err(fail)?;
        meta.put_with_key(&record, &idb::META_KEY.into())
            .map_err(fail)?;
        if inject_failure {
            // Test hook: `add` of an existing key fails asynchronously with ConstraintError,
            // which aborts the whole transaction like a quota failure at commit would.
            meta.add_with_key(&record, &idb::META_KEY.into())
                .map_err(fail)?;
        }
        Ok((tx, conflict, guard))
    }

    /// Test hook: makes the next flush's transaction abort (with a `ConstraintError`) after all
    /// its writes were issued, to exercise the undo path.
    #[doc(hidden)]
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub fn fail_next_flush(&self) {
        self.fail_next_flush.set(true);
    }

    /// Forgets the in-memory database and closes the IndexedDB connection and lock. Call after
    /// the SQLite connection on [`Self::file_name`] was closed. Unflushed writes are lost
    /// (exactly what a crash would do); a flush still in flight completes.
    pub fn close(self) {
        drop(self);
    }

    /// Deletes the database `name` from IndexedDB. Fails if it is open in this worker or (when
    /// the Web Locks API exists) in another tab or worker.
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub async fn delete(name: &str) -> Result<(), Error> {
        let _claim = NameClaim::take(name, "delete")?;
        let db_name = Self::idb_name(name);
        let _lock = idb::acquire_lock(&db_name, DEFAULT_LOCK_WAIT_MS).await?;
        idb::delete_database(&db_name).await
    }
}

impl Drop for IdbStore {
    fn drop(&mut self) {
        self.state.detach(&self.file_name, &self.file);
        // Pending transactions (a flush in flight) still complete after close().
        if let Ok(db) = self.db.try_borrow() {
            db.close();
        }
    }
}

/// Replaces `connection` by a new connection to `db_name`, unless the store was closed meanwhile
/// (then nothing holds it any more) or the open fails (then the old one stays).
async fn reconnect(connection: &Rc<RefCell<IdbDatabase>>, db_name: &str) {
    let Ok(fresh) = idb::open_database(db_name).await else {
        return;
    };
    match connection.try_borrow_mut() {
        Ok(mut db) if Rc::strong_count(connection) > 1 => {
            db.close();
            *db = fresh;
        }
        _ => fresh.close(),
    }
}

fn add_undone_note(e: &mut Error) {
    let note = "; the writes since the last successful flush were undone";
    match e {
        Error::Sqlite { message, .. } | Error::StorageUnavailable(message) => {
            message.push_str(note)
        }
        _ => {}
    }
}

/// Keeps the flush's JS callbacks alive until its transaction finished.
struct FlushGuard {
    _on_check: Closure<dyn FnMut(JsValue)>,
}

/// Where a flush task leaves its result.
#[derive(Default)]
struct FlushSlot {
    result: Cell<Option<Result<(), Error>>>,
    waker: Cell<Option<Waker>>,
    done: Cell<bool>,
}

impl FlushSlot {
    fn complete(&self, result: Result<(), Error>) {
        self.result.set(Some(result));
        self.done.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// Resolves when a flush's IndexedDB transaction committed (`Ok`) or failed (`Err`, with the
/// in-memory database already rolled back). The flush completes even if this is dropped.
pub struct FlushFuture {
    slot: Option<Rc<FlushSlot>>,
}

impl FlushFuture {
    fn ready(result: Result<(), Error>) -> Self {
        let slot = FlushSlot::default();
        slot.complete(result);
        FlushFuture {
            slot: Some(Rc::new(slot)),
        }
    }
}

impl Future for FlushFuture {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = self.slot.as_ref() else {
            return Poll::Ready(Err(Error::Internal(
                "flush future polled after completion".into(),
            )));
        };
        if slot.done.get() {
            let result = slot
                .result
                .take()
                .unwrap_or_else(|| Err(Error::Internal("flush result missing".into())));
            self.slot = None;
            return Poll::Ready(result);
        }
        slot.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}
