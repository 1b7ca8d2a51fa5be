//! synqlite-server: the native side of synqlite.
//!
//! For now the `migrate` tooling over a folder of ordered migration files (`schema/` by
//! default), replacing seed 000's `make new`:
//! - [`migrate::new_migration`] (`synqlite-server migrate new <name>`) creates
//!   `<dir>/<unix-ts>_<name>.sql`;
//! - [`migrate::check_dir`] (`synqlite-server migrate check`) checks names, order and
//!   idempotence with `synqlite_core::schema::check_migrations`, on an in-memory database.
//!
//! The WebSocket sync server will join this crate as another subcommand of the same binary.

pub mod migrate;
