//! synqlite's CRDT layer (`synqlite_core::crdt`) as a loadable SQLite extension, a stand-in for
//! cr-sqlite 0.16's `crsqlite` extension:
//!
//! ```sh
//! so=$(scripts/build-ext)      # target/ext/ext/libcrsqlite.so
//! sqlite3 db.sqlite ".load ${so%.so}" "SELECT crsql_as_crr('t')"
//! python3 -c "import sqlite3; c = sqlite3.connect('db.sqlite'); c.enable_load_extension(True);
//!             c.load_extension('${so%.so}')"
//! ```
//!
//! Loading it into a connection registers what [`crdt::init`](synqlite_core::crdt::init) does:
//! the metadata tables (on first use), the `crsql_*` SQL functions (`crsql_finalize()` is a
//! no-op), the `crsql_changes` virtual table and the commit/rollback hooks that keep
//! db_versions. Entry points: `sqlite3_crsqlite_init` (what SQLite derives from the file name)
//! and `sqlite3_extension_init`. The library stays loaded once loaded
//! (`SQLITE_OK_LOAD_PERMANENTLY`): connections that loaded it keep pointers into it.
//!
//! The extension calls the host's SQLite through the extension API (rusqlite's
//! `loadable_extension`), so it works with the SQLite of the program that loads it, from 3.37
//! (STRICT tables) on. rusqlite's bindings describe SQLite 3.45's API table and refuse older
//! hosts; for those the entry point hands rusqlite a copy of the host's table holding only the
//! functions that host has (the rest absent) and reporting the bindings' version. Nothing in
//! synqlite uses the newer functions (its hooks are installed without
//! `sqlite3_set_clientdata`, see the core's `raw_hooks`).
//!
//! Built only with the `extension` feature (see `Cargo.toml`); without it the library is empty.

#[cfg(feature = "extension")]
mod entry;
