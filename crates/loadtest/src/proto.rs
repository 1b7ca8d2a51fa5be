//! Every construction and reading of sync protocol frames the load generator does, in one place
//! (the rest of the crate sees bytes, [`Incoming`] and plain numbers), so a protocol change is
//! adapted here alone.
//!
//! The workload writes one column of the demo schema's `songs` table (`schema/*.sql`): a row is
//! created by a single column change (every other column is nullable or has a default that
//! satisfies its CHECK), its primary key is one TEXT id, and `album` takes any text.
//!
//! Protocol v2 (planned): `Hello` gains `head` and per-peer cursors (a client that never synced
//! sends `head: 0` and no cursors), `Welcome` an incarnation and a start cursor, error frames
//! `retryable`; only [`hello`] and [`decode`] need to follow. `Change.table`/`cid` become
//! `Arc<str>` and `site_id` `Arc<[u8]>`: the conversions below are written to compile with both.

use std::path::Path;
use synqlite_core::crdt::{self, Change, Cursor};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;
use synqlite_core::schema::{apply_migrations, Migration};
use synqlite_core::sync::{self, Changes, Frame, Hello, SchemaId};

/// A site id (16 random bytes per simulated client).
pub type Site = [u8; 16];

/// The table and column every write of the load generator goes to.
pub const TABLE: &str = "songs";
/// See [`TABLE`].
pub const COLUMN: &str = "album";

/// The schema identity the server's rooms hold, as a client presents it in `Hello`.
#[derive(Debug, Clone)]
pub struct Schema(SchemaId);

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Computes the schema id of `dir`'s migrations exactly as the server does: applies every `.sql`
/// file, by name, to an in-memory replicated database and asks the core for its identity.
pub fn schema_of_dir(dir: &Path) -> Result<Schema, String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
            files.push(path);
        }
    }
    files.sort();
    let mut migrations = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: bad file name", path.display()))?
            .to_owned();
        let sql = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        migrations.push(Migration::new(name, sql));
    }
    let mut conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    crdt::init(&mut conn).map_err(|e| e.to_string())?;
    apply_migrations(&conn, &migrations).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(Schema(sync::schema_id(&conn).map_err(|e| e.to_string())?))
}

/// The first frame of a client that has never synced (no cursors).
pub fn hello(room: &str, site: Site, schema: &Schema, token: Option<&str>) -> Vec<u8> {
    Frame::Hello(Hello {
        room: room.to_owned(),
        site_id: site,
        schema: schema.0.clone(),
        // Nothing written before joining (every run draws a new site id).
        head: 0,
        cursors: Vec::new(),
        token: token.map(str::to_owned),
        chunk_size: sync::DEFAULT_CHUNK_SIZE,
    })
    .encode()
}

fn pk(id: &str) -> Vec<u8> {
    crdt::pack::pack(&[Value::Text(id.to_owned())]).expect("a short text key packs")
}

fn change(
    site: Site,
    pk: Vec<u8>,
    value: String,
    col_version: i64,
    db_version: i64,
    seq: i64,
) -> Change {
    Change {
        table: TABLE.into(),
        pk,
        cid: COLUMN.into(),
        val: Value::Text(value),
        col_version,
        db_version,
        // `Vec<u8>` today, `Arc<[u8]>` in protocol v2: `From<&[u8]>` exists for both.
        site_id: site.as_slice().into(),
        cl: 1,
        seq,
    }
}

/// A `Changes` frame with one write: row `row_id`'s [`COLUMN`] set to `value`, the client's
/// `version`-th write (`col_version` = `db_version` = `version`, from 1).
pub fn write(site: Site, row_id: &str, value: String, version: i64) -> Vec<u8> {
    Frame::Changes(Changes {
        rows: vec![change(site, pk(row_id), value, version, version, 0)],
        last: Cursor {
            db_version: version,
            seq: 0,
        },
    })
    .encode()
}

/// One chunk of a large transaction at `db_version`: rows `<prefix><i>` for `i` in `seqs`, each
/// with value `values(i)`, `seq` = `i`.
pub fn transaction_chunk(
    site: Site,
    db_version: i64,
    prefix: &str,
    seqs: std::ops::Range<u32>,
    values: impl Fn(u32) -> String,
) -> Vec<u8> {
    let last = i64::from(seqs.end.saturating_sub(1));
    let rows = seqs
        .map(|i| {
            change(
                site,
                pk(&format!("{prefix}{i}")),
                values(i),
                1,
                db_version,
                i64::from(i),
            )
        })
        .collect();
    Frame::Changes(Changes {
        rows,
        last: Cursor {
            db_version,
            seq: last,
        },
    })
    .encode()
}

/// A `Changes` frame without rows (valid, but pointless: hostile spam).
pub fn empty_changes(db_version: i64) -> Vec<u8> {
    Frame::Changes(Changes {
        rows: Vec::new(),
        last: Cursor { db_version, seq: 0 },
    })
    .encode()
}

/// An `Ack` of nothing in particular (hostile spam).
pub fn stray_ack(db_version: i64) -> Vec<u8> {
    Frame::Ack(Cursor { db_version, seq: 0 }).encode()
}

/// A `Hello` cut short after its kind byte and part of the room name.
pub fn truncated_hello() -> Vec<u8> {
    let mut h = hello("load-x", [7; 16], &Schema(SchemaId::default()), None);
    h.truncate(6);
    h
}

/// A `Hello` whose schema matches no room (refused with `SCHEMA_MISMATCH`).
pub fn wrong_schema_hello(room: &str, site: Site) -> Vec<u8> {
    let schema = Schema(SchemaId {
        name: "loadtest-wrong".into(),
        version: 1,
    });
    hello(room, site, &schema, None)
}

/// A `Changes` frame received: the reply it needs and the writes of other clients it carries.
#[derive(Debug)]
pub struct Received {
    /// The encoded `Ack` to send back (the chunk's `last` cursor).
    pub ack: Vec<u8>,
    /// Change rows in the frame (all tables and columns).
    pub rows: usize,
    /// TEXT values of [`TABLE`].[`COLUMN`] changes, in frame order.
    pub values: Vec<String>,
}

/// A decoded frame, reduced to what the load generator looks at.
#[derive(Debug)]
pub enum Incoming {
    /// The join was accepted; `backlog` change rows follow.
    Welcome {
        /// `Welcome.total`.
        backlog: u64,
    },
    /// Change rows from the room.
    Changes(Received),
    /// The server stored one of our `Changes` frames.
    Ack,
    /// The join-time backlog was sent.
    CaughtUp,
    /// The server refuses something and closes.
    Error {
        /// Stable error code.
        code: String,
        /// Message.
        message: String,
    },
    /// A frame a server never sends to a client.
    Unexpected(&'static str),
}

/// Decodes a binary message from the server.
pub fn decode(bytes: &[u8]) -> Result<Incoming, String> {
    Ok(
        match Frame::decode(bytes).map_err(|e| format!("{}: {e}", e.code()))? {
            Frame::Welcome(w) => Incoming::Welcome { backlog: w.total },
            Frame::Changes(c) => {
                let values = c
                    .rows
                    .iter()
                    .filter(|r| &*r.table == TABLE && &*r.cid == COLUMN)
                    .filter_map(|r| match &r.val {
                        Value::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                Incoming::Changes(Received {
                    ack: Frame::Ack(c.last).encode(),
                    rows: c.rows.len(),
                    values,
                })
            }
            Frame::Ack(_) => Incoming::Ack,
            Frame::CaughtUp => Incoming::CaughtUp,
            Frame::Error(e) => Incoming::Error {
                code: e.code,
                message: e.message,
            },
            f => Incoming::Unexpected(f.kind()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_core() {
        let site = [1; 16];
        let w = write(site, "row", "c1:1:5".into(), 1);
        match Frame::decode(&w).unwrap() {
            Frame::Changes(c) => {
                assert_eq!(c.rows.len(), 1);
                assert_eq!(
                    c.last,
                    Cursor {
                        db_version: 1,
                        seq: 0
                    }
                );
            }
            f => panic!("{f:?}"),
        }
        match decode(&w).unwrap() {
            Incoming::Changes(r) => {
                assert_eq!(r.values, vec!["c1:1:5".to_owned()]);
                assert!(matches!(decode(&r.ack).unwrap(), Incoming::Ack));
            }
            f => panic!("{f:?}"),
        }
        let chunk = transaction_chunk(site, 1, "b", 1024..2048, |i| format!("b:{i}"));
        match decode(&chunk).unwrap() {
            Incoming::Changes(r) => {
                assert_eq!(r.rows, 1024);
                assert_eq!(r.values[0], "b:1024");
            }
            f => panic!("{f:?}"),
        }
        assert!(decode(&truncated_hello()).is_err());
        assert!(decode(&empty_changes(3)).is_ok());
        assert!(decode(&stray_ack(3)).is_ok());
    }

    #[test]
    fn schema_of_the_repository_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
        let s = schema_of_dir(&dir).unwrap();
        assert!(s.to_string().starts_with("migrations@"), "{s}");
    }
}
