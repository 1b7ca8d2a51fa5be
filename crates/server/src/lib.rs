//! synqlite-server: the native side of synqlite.
//!
//! - The sync server ([`serve`]): clients join rooms over WebSocket (`GET /sync`, binary
//!   frames of the core's sans-IO protocol, `synqlite_core::sync`) and exchange cr-sqlite
//!   change rows with the room's database, which relays them to the room's other clients.
//!   `GET /healthz` answers a JSON status; with `--dev`, `POST /rooms/{room}/seed?rows=N[&table=T]`,
//!   `GET /rooms/{room}/rows/{table}` and `GET /rooms/{room}/stats` serve tests and demos.
//! - Modules: [`rooms`] (one SQLite file per room served by its own thread: group commit,
//!   fan-out from memory, idle rooms closed), [`connection`] (one WebSocket: hello, auth, join,
//!   relay, rate limits, liveness), [`listener`] (accept loop, connection caps, byte metering,
//!   header timeout), [`penalty`] (bans of addresses that keep failing), [`limits`] (every cap
//!   and its default), [`auth`] (the [`Authenticator`]
//!   hook and its [`Grant`]s, HMAC room tokens, JWTs with a shared secret or a JWKS, the
//!   [`ChangeFilter`] hook), [`http`] (routes, origin checks,
//!   [`Config`], graceful shutdown), [`dev`] (seed/rows/stats), [`error`] (stable codes), and
//!   [`migrate`] (the `migrate new|check` tooling over a folder of ordered migrations).
//!
//! ```no_run
//! # async fn run() -> Result<(), synqlite_server::ServerError> {
//! let config = synqlite_server::Config::new("data", "schema");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.map_err(|source| {
//!     synqlite_server::ServerError::Io { path: "127.0.0.1:8080".into(), source }
//! })?;
//! synqlite_server::serve(config, listener, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

pub mod auth;
pub mod connection;
pub mod dev;
pub mod error;
pub mod http;
pub mod limits;
pub mod listener;
pub mod migrate;
pub mod penalty;
pub mod rooms;

pub use auth::{
    AllowAll, AllowAllChanges, AnyOf, AuthError, Authenticator, ChangeFilter, Grant, HmacTokens,
    JwtAuth, JwtConfig, Scope,
};
pub use error::ServerError;
pub use http::{serve, Config};
pub use limits::Limits;
pub use rooms::Synchronous;
