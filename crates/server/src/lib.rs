//! synqlite-server: the native side of synqlite.
//!
//! - The sync server ([`serve`]): clients join rooms over WebSocket (`/sync`) and exchange
//!   cr-sqlite change rows with the room's database through the core's sans-IO protocol
//!   (`synqlite_core::sync`). Modules: [`rooms`] (one SQLite file per room, opened lazily,
//!   migrations applied), [`connection`] (one WebSocket: hello, auth, relay, backpressure),
//!   [`auth`] (the [`Authenticator`] hook, HMAC room tokens), [`http`] (routes, graceful
//!   shutdown), [`dev`] (seed/rows/stats endpoints behind `--dev`), [`error`] (stable codes).
//! - The `migrate` tooling over a folder of ordered migration files ([`migrate`]).

pub mod auth;
pub mod connection;
pub mod dev;
pub mod error;
pub mod http;
pub mod migrate;
pub mod rooms;

pub use auth::{AllowAll, Authenticator, HmacTokens};
pub use error::ServerError;
pub use http::{serve, Config};
pub use rooms::Synchronous;
