//! synqlite's wasm bindings: the worker-side database object the npm package's worker drives.
//!
//! Everything here is thin: SQL execution, parameter binding and error codes live in
//! `synqlite-core`; this crate converts JS values, installs the storage (OPFS SAH-pool, the
//! durable IndexedDB VFS, or memory) and maps errors to JS `Error` objects with a `code`.
#![cfg(target_family = "wasm")]

mod change_rows;
mod database;
mod errors;
mod idb_vfs;
mod mem;
mod panic;
mod storage;
mod sync;
mod values;

pub use database::Database;
pub use errors::quota_exceeded_message;
pub use panic::last_panic;
pub use sync::SyncSession;
