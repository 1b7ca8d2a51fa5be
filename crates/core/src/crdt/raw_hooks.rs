//! The commit and rollback hooks of [`init`](super::init) through SQLite's C API.
//!
//! rusqlite keeps the closures of `Connection::commit_hook` / `rollback_hook` in
//! `sqlite3_set_clientdata`, which SQLite has only since 3.44 (an extension runs in whatever
//! SQLite its host has: Debian 12's Python links 3.40) and which SQLite frees *before* the
//! rollback it runs when a connection closes inside a transaction, so that rollback hook would
//! read freed memory (`tests/close_in_tx.rs`). Here the hooks' state lives on the heap
//! and is owned by a hidden SQL function, `crsql_internal_tx_hooks()`, whose destructor SQLite
//! runs when the connection closes (after its last commit or rollback) or when the function is
//! registered again by the next install (which then points the hooks at its own state). Like
//! cr-sqlite's, these hooks replace any the host installed before.

use super::state::Shared;
use super::{CommitHook, RollbackHook};
use crate::error::Result;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Null;
use rusqlite::{ffi, Connection};
use std::ffi::c_void;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// What the hooks run: the CRDT bookkeeping, then the caller's callbacks.
struct Hooks {
    shared: Arc<Shared>,
    on_commit: Mutex<Option<CommitHook>>,
    on_rollback: Mutex<Option<RollbackHook>>,
}

/// Owns the [`Hooks`] the installed hooks point to; frees them when dropped.
struct Owner(*mut Hooks);

// SAFETY: `Hooks` is `Send + Sync` (an `Arc` and mutexes of `Send` closures); the pointer is
// only dereferenced by the hooks and freed once, by the last owner.
unsafe impl Send for Owner {}

impl Drop for Owner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::into_raw` in `install` and is freed only here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

unsafe extern "C" fn commit(p: *mut c_void) -> c_int {
    // SAFETY: `p` is the `Hooks` of the last `install`, alive until its owner is dropped,
    // which happens only after the hooks stopped pointing to it.
    let hooks = unsafe { &*p.cast::<Hooks>() };
    let veto = catch_unwind(AssertUnwindSafe(|| {
        let mut f = hooks.on_commit.lock().unwrap_or_else(|e| e.into_inner());
        f.as_mut().is_some_and(|f| f())
    }))
    .unwrap_or(false);
    if veto {
        hooks.shared.on_rollback();
    } else {
        hooks.shared.on_commit();
    }
    c_int::from(veto)
}

unsafe extern "C" fn rollback(p: *mut c_void) {
    // SAFETY: as in `commit`.
    let hooks = unsafe { &*p.cast::<Hooks>() };
    hooks.shared.on_rollback();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut f = hooks.on_rollback.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = f.as_mut() {
            f();
        }
    }));
}

/// Installs the hooks on `conn` (replacing the previous ones and their callbacks).
pub(super) fn install(
    conn: &mut Connection,
    shared: &Arc<Shared>,
    on_commit: Option<CommitHook>,
    on_rollback: Option<RollbackHook>,
) -> Result<()> {
    let hooks = Box::into_raw(Box::new(Hooks {
        shared: shared.clone(),
        on_commit: Mutex::new(on_commit),
        on_rollback: Mutex::new(on_rollback),
    }));
    let owner = Owner(hooks);
    // The function owns the new state from here on. Replacing an earlier registration drops
    // the state the current hooks point to, so they are switched right after, before any SQL
    // runs (registering a function runs none). If registering fails nothing changed.
    conn.create_scalar_function(
        "crsql_internal_tx_hooks",
        0,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
        move |_| {
            let _owned = &owner;
            Ok(Null)
        },
    )?;
    // SAFETY: `conn` is open and `hooks` lives as long as the function just registered.
    unsafe {
        let db = conn.handle();
        ffi::sqlite3_commit_hook(db, Some(commit), hooks.cast());
        ffi::sqlite3_rollback_hook(db, Some(rollback), hooks.cast());
    }
    Ok(())
}
