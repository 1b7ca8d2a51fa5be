//! synqlite-core: everything of synqlite that does not need a browser.
//!
//! The wasm bindings (`src/` of the workspace root) and the sync server both run SQL through this
//! crate, so caller input is validated and executed the same way everywhere:
//!
//! - [`exec`]: runs SQL with caller-supplied parameters on a [`rusqlite::Connection`]:
//!   single or multiple statements, cached prepared statements, atomic batches.
//! - [`params`]: positional (`?`, `?NNN`) and named (`:a`, `@a`, `$a`) parameter binding.
//! - [`crdt`]: cr-sqlite 0.16-compatible change tracking and merging on a connection:
//!   replicated tables, change rows, `crsql_*` SQL functions.
//! - [`schema`]: schema versioning: declarative schemas hashed with `cryb64` (automigrate,
//!   reset), ordered `<unix-ts>_<name>.sql` migrations, `schema_info`.
//! - [`sync`]: the sans-IO sync protocol: binary frames, the client and server sessions that
//!   apply inbound chunks with their cursor in one transaction.
//! - [`change_feed`]: the rows each committed transaction changed (reactivity).
//! - [`read_set`]: the tables a query reads (live queries).
//! - [`error`]: the one error type, each variant with a stable string code that the JS boundary
//!   exposes as `error.code`.
//! - [`result_codes`]: SQLite's primary and extended result codes by name.
//!
//! The crate depends on rusqlite only; on `wasm32` rusqlite links sqlite-wasm-rs, natively the
//! bundled SQLite. It must stay free of `wasm-bindgen`, `js-sys` and `web-sys`.

pub mod change_feed;
pub mod crdt;
pub mod error;
pub mod exec;
pub mod params;
pub mod read_set;
pub mod result_codes;
pub mod schema;
pub mod sync;

pub use crdt::{apply_changes, changes_since, ApplyStats, Change};
pub use error::{Error, Result};
pub use exec::{batch, exec, query, ExecResult, QueryResult, RowSink};
pub use params::Params;
pub use rusqlite;

#[cfg(all(test, target_family = "wasm"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);
