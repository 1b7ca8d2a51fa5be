//! The sync protocol, sans-IO: frames in, frames out, changes applied in between.
//!
//! A client database and a room database on the server converge by exchanging [`Frame`]s over
//! any ordered, reliable transport (the worker and the server use WebSockets; the tests use
//! queues). This module never touches a socket: [`ClientSession`] and [`ServerSession`] take
//! the bytes of a received frame plus the database [`rusqlite::Connection`], apply what must be
//! applied, and return the encoded frames to send.
//!
//! ```text
//! client                                   server (room database)
//!   Hello {room, site, schema, head, cursors, token, chunk}  ->
//!                          <-  Welcome {server site, incarnation, your cursor, start, total}
//!   Changes {local rows after your cursor} ->          (applied + cursor stored, one tx)
//!                                        <-  Ack {cursor}
//!                                        <-  Changes {rows after my cursor, not yours}
//!   (applied + cursor stored, one tx)
//!   Ack {cursor}                          ->
//!                                        <-  CaughtUp         (join-time state all sent)
//!   ... both directions keep streaming as either side commits ...
//!                                        <-  Error {code, message, retryable}  (then close)
//! ```
//!
//! Rules:
//! - Change rows are cr-sqlite change rows ([`crate::crdt::Change`]); cursors are
//!   `(db_version, seq)` positions in the sender's change stream ([`crate::crdt::Cursor`]).
//! - Every received `Changes` frame is applied in a transaction (alone, or with the frames
//!   queued behind it: [`ClientSession::handle_batch`]) that also stores the
//!   sender's cursor in `crsql_tracked_peers`: a crash at any instant leaves either the whole
//!   chunk with its cursor or neither, and the next `Hello`/`Welcome` resumes right after the
//!   last committed chunk. Merging is idempotent, so a resent chunk changes nothing.
//! - Flow control: at most `window` unacknowledged `Changes` frames per direction, so memory
//!   on both ends is bounded by `window × chunk size`, never by the backlog.
//! - The server counts the rows it will send at join time (`Welcome.total`) so the client can
//!   report exact `{applied, total}` progress, and says `CaughtUp` when it has sent them.
//! - Both ends must hold the same schema ([`SchemaId`]: declarative name + version, or the
//!   last migration applied); a mismatch is a `SCHEMA_MISMATCH` error frame naming both.
//!
//! - Every frame has limits ([`MAX_HELLO_BYTES`], [`MAX_ROWS_PER_FRAME`], [`MAX_NAME_BYTES`],
//!   ...) and versions in change rows must stay within [`MAX_ACCEPTED_VERSION`]; the decoder
//!   allocates in proportion to the bytes it received, never to the numbers a peer declares.
//!
//! Modules: `wire` (varints, bounded reader), `frame` ([`Frame`] encode/decode), `client`,
//! `server`.

mod client;
mod frame;
mod server;
mod wire;

pub use crate::crdt::{MAX_ACCEPTED_VERSION, MAX_VERSION, VERSION_HEADROOM};
pub use client::{ClientConfig, ClientOutput, ClientSession};
pub use frame::{
    encode_changes, Changes, ErrorFrame, Frame, FrameKind, Hello, PeerCursor, SchemaId, Welcome,
    MAGIC, MAX_ERROR_CODE_BYTES, MAX_ERROR_DETAILS, MAX_ERROR_MESSAGE_BYTES, MAX_HELLO_BYTES,
    MAX_HELLO_CURSORS, MAX_NAME_BYTES, MAX_ROWS_PER_FRAME, MAX_TOKEN_BYTES, PROTOCOL_VERSION,
};
pub use server::{
    check_own_rows, schema_rejection, Rejection, ServerOptions, ServerOutput, ServerSession, Upload,
};

use crate::error::Result;
use crate::schema::{migration_timestamp, schema_info};
use rusqlite::Connection;

/// Default change rows per chunk. Measured with the initial-sync bench (50k rows x 5 columns
/// into OPFS): 4096-row chunks are ~20% faster than 1024 (a quarter of the commits and frames);
/// frames stay within [`MAX_FRAME_PAYLOAD`] however large the values.
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;
/// Largest chunk a server sends by default, whatever the client asks.
pub const MAX_CHUNK_SIZE: u32 = 8192;
/// Default number of unacknowledged `Changes` frames in flight per direction.
pub const DEFAULT_WINDOW: usize = 4;
/// Most bytes of values and keys one `Changes` frame carries (rows of large BLOBs make smaller
/// chunks), well under the server's default 16 MiB frame limit.
pub const MAX_FRAME_PAYLOAD: usize = 4 << 20;

/// The schema identity a database presents when it joins a room: the declarative schema's
/// name and version when one was applied, else `migrations` and the timestamp of the newest
/// migration applied, else an empty name and version 0.
pub fn schema_id(conn: &Connection) -> Result<SchemaId> {
    let info = schema_info(conn)?;
    if let (Some(name), Some(version)) = (info.name, info.version) {
        return Ok(SchemaId { name, version });
    }
    let newest = info
        .migrations
        .iter()
        .filter_map(|(file, _)| migration_timestamp(file).ok())
        .max();
    Ok(match newest {
        Some(ts) => SchemaId {
            name: "migrations".into(),
            version: i64::try_from(ts).unwrap_or(i64::MAX),
        },
        None => SchemaId::default(),
    })
}

/// Runs `f` in a transaction (`BEGIN IMMEDIATE` ... `COMMIT`), rolling back on error. The
/// three statements are prepared once per connection.
fn in_transaction<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !conn.is_autocommit() {
        return Err(crate::error::Error::Internal(
            "sync: a transaction is already open on the connection".into(),
        ));
    }
    let run = |sql: &str| -> Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    run("BEGIN IMMEDIATE")?;
    match f() {
        Ok(v) => match run("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = run("ROLLBACK");
                }
                Err(e)
            }
        },
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = run("ROLLBACK");
            }
            Err(e)
        }
    }
}
