//! The entry points and the API table handed to rusqlite.

use std::ffi::{c_char, c_int};
use std::mem::{offset_of, size_of};
use synqlite_core::crdt;
use synqlite_core::rusqlite::ffi::{self, sqlite3, sqlite3_api_routines};
use synqlite_core::rusqlite::{self, Connection};

/// The entry point SQLite looks for in `libcrsqlite` (as cr-sqlite's).
///
/// # Safety
/// Called by SQLite's extension loader with a connection handle and its API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_crsqlite_init(
    db: *mut sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut sqlite3_api_routines,
) -> c_int {
    // SAFETY: as the caller guarantees.
    unsafe { init(db, pz_err_msg, p_api) }
}

/// The generic entry point, same as [`sqlite3_crsqlite_init`].
///
/// # Safety
/// Called by SQLite's extension loader with a connection handle and its API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_extension_init(
    db: *mut sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut sqlite3_api_routines,
) -> c_int {
    // SAFETY: as the caller guarantees.
    unsafe { init(db, pz_err_msg, p_api) }
}

unsafe fn init(
    db: *mut sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut sqlite3_api_routines,
) -> c_int {
    if p_api.is_null() || db.is_null() {
        return ffi::SQLITE_ERROR;
    }
    // SAFETY: SQLite passes its API table, valid for the process.
    let mut api = match unsafe { host_api(p_api) } {
        Ok(api) => api,
        Err(msg) => {
            // SAFETY: as above; `pz_err_msg` is SQLite's out parameter.
            unsafe { report(p_api, pz_err_msg, &msg) };
            return ffi::SQLITE_ERROR;
        }
    };
    // SAFETY: `api` holds the host's function pointers (rusqlite copies them out before
    // returning); `db` is the connection being loaded into.
    unsafe { Connection::extension_init2(db, pz_err_msg, &mut api, register) }
}

/// Sets up the connection as `crdt::init` does.
fn register(mut conn: Connection) -> rusqlite::Result<bool> {
    crdt::init(&mut conn).map_err(|e| {
        rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(format!("crsqlite: {e}")),
        )
    })?;
    // Keep the library loaded: the connection's functions, table and hooks point into it.
    Ok(true)
}

/// What an older host reports as its version to rusqlite: the bindings' (see the crate docs).
extern "C" fn bindings_version() -> c_int {
    ffi::SQLITE_VERSION_NUMBER
}

/// A copy of the host's API table with the entries the host has; the later ones absent.
///
/// # Safety
/// `p_api` must be SQLite's API table.
unsafe fn host_api(p_api: *const sqlite3_api_routines) -> Result<sqlite3_api_routines, String> {
    // SAFETY: the table is valid; its first entries exist in every SQLite version.
    let version = match unsafe { (*p_api).libversion_number } {
        // SAFETY: SQLite's own function.
        Some(f) => unsafe { f() },
        None => return Err("the host SQLite has no sqlite3_libversion_number".into()),
    };
    // The first entry each version range lacks (sqlite3ext.h appends entries per release).
    let present = match version {
        v if v < 3_037_000 => {
            return Err(format!(
                "SQLite {v} is too old for crsqlite: version 3.37 or newer is needed"
            ))
        }
        v if v < 3_038_000 => offset_of!(sqlite3_api_routines, error_offset),
        v if v < 3_039_000 => offset_of!(sqlite3_api_routines, deserialize),
        v if v < 3_040_000 => offset_of!(sqlite3_api_routines, value_encoding),
        v if v < 3_041_000 => offset_of!(sqlite3_api_routines, is_interrupted),
        v if v < 3_043_000 => offset_of!(sqlite3_api_routines, stmt_explain),
        v if v < 3_044_000 => offset_of!(sqlite3_api_routines, get_clientdata),
        _ => size_of::<sqlite3_api_routines>(),
    };
    // SAFETY: every entry is an `Option` of a function pointer, for which all-zero is `None`.
    let mut api: sqlite3_api_routines = unsafe { std::mem::zeroed() };
    // SAFETY: the host's table holds at least `present` bytes of entries (its version has
    // them), and `api` is a distinct table at least that large.
    unsafe {
        std::ptr::copy_nonoverlapping(
            p_api.cast::<u8>(),
            std::ptr::from_mut(&mut api).cast::<u8>(),
            present,
        );
    }
    if version < ffi::SQLITE_VERSION_NUMBER {
        api.libversion_number = Some(bindings_version);
    }
    Ok(api)
}

/// Reports `msg` through `pz_err_msg` before rusqlite is set up (with the host's allocator).
///
/// # Safety
/// `p_api` must be SQLite's API table; `pz_err_msg` SQLite's out parameter (or null).
unsafe fn report(p_api: *const sqlite3_api_routines, pz_err_msg: *mut *mut c_char, msg: &str) {
    // SAFETY: as the caller guarantees.
    let Some(malloc) = (unsafe { (*p_api).malloc }) else {
        return;
    };
    if pz_err_msg.is_null() {
        return;
    }
    let Ok(len) = c_int::try_from(msg.len() + 1) else {
        return;
    };
    // SAFETY: SQLite's allocator; the copy stays within the `len` bytes allocated.
    unsafe {
        let p = malloc(len).cast::<u8>();
        if p.is_null() {
            return;
        }
        std::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len());
        *p.add(msg.len()) = 0;
        *pz_err_msg = p.cast();
    }
}
