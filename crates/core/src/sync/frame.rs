//! The frames of the sync protocol and their binary encoding.
//!
//! Every frame is one WebSocket binary message:
//!
//! ```text
//! magic 0xD5 | protocol version (1) | kind | body
//! ```
//!
//! Integers are LEB128 varints (signed ones zigzag-encoded), strings and blobs are
//! length-prefixed, site ids are 16 raw bytes, REALs 8 bytes little-endian. A `Changes` body
//! starts with three dictionaries (tables, columns, site ids) that its rows index into, so a
//! chunk of 1024 rows of one table carries the table name once.
//!
//! Decoding checks everything: magic, version (`PROTOCOL_VERSION` error on a mismatch, so the
//! peer can say which versions meet), kind, every length and index, UTF-8, value tags, version
//! ranges, trailing bytes. Any failure is a `PROTOCOL_ERROR`; nothing is allocated beyond the
//! frame's own size.

use super::wire::{malformed, Reader, Writer};
use crate::crdt::{Change, Cursor};
use crate::error::{Error, Result};
use rusqlite::types::Value;
use std::collections::HashMap;

/// First byte of every frame.
pub const MAGIC: u8 = 0xD5;
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Versions (`db_version`, `col_version`, `cl`, `seq`) a change row may carry: JS-safe integers.
pub const MAX_VERSION: i64 = (1 << 53) - 1;

const KIND_HELLO: u8 = 1;
const KIND_WELCOME: u8 = 2;
const KIND_CHANGES: u8 = 3;
const KIND_ACK: u8 = 4;
const KIND_CAUGHT_UP: u8 = 5;
const KIND_ERROR: u8 = 6;

const VAL_NULL: u8 = 0;
const VAL_INTEGER: u8 = 1;
const VAL_REAL: u8 = 2;
const VAL_TEXT: u8 = 3;
const VAL_BLOB: u8 = 4;

/// Name and version of the schema a database holds; both ends of a sync must hold the same.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaId {
    /// Schema name (`schema_name`, or `migrations` for ordered migration files).
    pub name: String,
    /// Schema version (`schema_version`, or the timestamp of the last migration applied).
    pub version: i64,
}

impl std::fmt::Display for SchemaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Client -> server, first frame: who joins which room, from where.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// The room to join.
    pub room: String,
    /// The client database's site id.
    pub site_id: [u8; 16],
    /// The client's schema.
    pub schema: SchemaId,
    /// What the client has received so far, per peer (server) site id.
    pub cursors: Vec<([u8; 16], Cursor)>,
    /// Credentials for the `Authenticator`.
    pub token: Option<String>,
    /// Change rows per chunk the client wants (the server caps it).
    pub chunk_size: u32,
}

/// Server -> client, answer to `Hello`.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// The room database's site id.
    pub server_site: [u8; 16],
    /// What the server has received from this client: upload resumes after it.
    pub your_cursor: Cursor,
    /// Change rows the server is about to send (for `{applied, total}` progress).
    pub total: u64,
    /// The chunk size the server uses.
    pub chunk_size: u32,
}

/// A chunk of change rows, either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The rows, in the sender's `(db_version, seq)` order.
    pub rows: Vec<Change>,
    /// The sender's cursor after this chunk (the receiver stores it with the rows).
    pub last: Cursor,
}

/// An error, sent before closing the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorFrame {
    /// Stable error code (`SCHEMA_MISMATCH`, `UNAUTHORIZED`, `PROTOCOL_ERROR`, ...).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Extra facts, e.g. `server_schema` / `client_schema` for a schema mismatch.
    pub details: Vec<(String, String)>,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Client -> server, first frame.
    Hello(Hello),
    /// Server -> client, answer to `Hello`.
    Welcome(Welcome),
    /// Change rows, either way.
    Changes(Changes),
    /// The receiver of a `Changes` frame stored everything up to this cursor.
    Ack(Cursor),
    /// Server -> client: everything the server held at join time was sent.
    CaughtUp,
    /// The sender closes the connection because of this error.
    Error(ErrorFrame),
}

impl Frame {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Welcome(_) => "welcome",
            Frame::Changes(_) => "changes",
            Frame::Ack(_) => "ack",
            Frame::CaughtUp => "caught-up",
            Frame::Error(_) => "error",
        }
    }

    /// An error frame for `err`, with its stable code.
    pub fn error(err: &Error) -> Frame {
        Frame::Error(ErrorFrame {
            code: err.code().to_owned(),
            message: err.to_string(),
            details: Vec::new(),
        })
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(MAGIC);
        w.u8(PROTOCOL_VERSION);
        match self {
            Frame::Hello(h) => {
                w.u8(KIND_HELLO);
                w.str(&h.room);
                w.raw(&h.site_id);
                w.str(&h.schema.name);
                w.ivar(h.schema.version);
                w.len(h.cursors.len());
                for (site, c) in &h.cursors {
                    w.raw(site);
                    cursor(&mut w, *c);
                }
                match &h.token {
                    Some(t) => {
                        w.u8(1);
                        w.str(t);
                    }
                    None => w.u8(0),
                }
                w.uvar(u64::from(h.chunk_size));
            }
            Frame::Welcome(m) => {
                w.u8(KIND_WELCOME);
                w.raw(&m.server_site);
                cursor(&mut w, m.your_cursor);
                w.uvar(m.total);
                w.uvar(u64::from(m.chunk_size));
            }
            Frame::Changes(c) => {
                w.u8(KIND_CHANGES);
                cursor(&mut w, c.last);
                encode_rows(&mut w, &c.rows);
            }
            Frame::Ack(c) => {
                w.u8(KIND_ACK);
                cursor(&mut w, *c);
            }
            Frame::CaughtUp => w.u8(KIND_CAUGHT_UP),
            Frame::Error(e) => {
                w.u8(KIND_ERROR);
                w.str(&e.code);
                w.str(&e.message);
                w.len(e.details.len());
                for (k, v) in &e.details {
                    w.str(k);
                    w.str(v);
                }
            }
        }
        w.buf
    }

    /// Decodes one frame; any malformed input is a `PROTOCOL_ERROR` (`PROTOCOL_VERSION` for a
    /// frame of another protocol version).
    pub fn decode(bytes: &[u8]) -> Result<Frame> {
        let mut r = Reader::new(bytes);
        if r.u8("magic")? != MAGIC {
            return Err(malformed("not a synqlite sync frame (bad magic byte)"));
        }
        let version = r.u8("protocol version")?;
        if version != PROTOCOL_VERSION {
            return Err(Error::ProtocolVersion(format!(
                "the peer speaks sync protocol version {version}, this end speaks version \
                 {PROTOCOL_VERSION}"
            )));
        }
        let frame = match r.u8("kind")? {
            KIND_HELLO => {
                let room = r.str("room")?.to_owned();
                let site_id = r.site("site id")?;
                let name = r.str("schema name")?.to_owned();
                let version = r.ivar("schema version")?;
                let n = r.count("cursors", 18)?;
                let mut cursors = Vec::with_capacity(n);
                for _ in 0..n {
                    cursors.push((r.site("cursor site")?, read_cursor(&mut r)?));
                }
                let token = match r.u8("token flag")? {
                    0 => None,
                    1 => Some(r.str("token")?.to_owned()),
                    _ => return Err(malformed("bad token flag")),
                };
                let chunk_size = u32::try_from(r.uvar("chunk size")?)
                    .map_err(|_| malformed("chunk size out of range"))?;
                Frame::Hello(Hello {
                    room,
                    site_id,
                    schema: SchemaId { name, version },
                    cursors,
                    token,
                    chunk_size,
                })
            }
            KIND_WELCOME => Frame::Welcome(Welcome {
                server_site: r.site("server site")?,
                your_cursor: read_cursor(&mut r)?,
                total: r.uvar("total")?,
                chunk_size: u32::try_from(r.uvar("chunk size")?)
                    .map_err(|_| malformed("chunk size out of range"))?,
            }),
            KIND_CHANGES => {
                let last = read_cursor(&mut r)?;
                let rows = decode_rows(&mut r)?;
                Frame::Changes(Changes { rows, last })
            }
            KIND_ACK => Frame::Ack(read_cursor(&mut r)?),
            KIND_CAUGHT_UP => Frame::CaughtUp,
            KIND_ERROR => {
                let code = r.str("error code")?.to_owned();
                let message = r.str("error message")?.to_owned();
                let n = r.count("error details", 2)?;
                let mut details = Vec::with_capacity(n);
                for _ in 0..n {
                    details.push((
                        r.str("detail key")?.to_owned(),
                        r.str("detail value")?.to_owned(),
                    ));
                }
                Frame::Error(ErrorFrame {
                    code,
                    message,
                    details,
                })
            }
            k => return Err(malformed(&format!("unknown message kind {k}"))),
        };
        r.finish()?;
        Ok(frame)
    }
}

fn cursor(w: &mut Writer, c: Cursor) {
    w.ivar(c.db_version);
    w.ivar(c.seq);
}

fn read_cursor(r: &mut Reader<'_>) -> Result<Cursor> {
    let db_version = r.ivar("cursor db_version")?;
    let seq = r.ivar("cursor seq")?;
    if !(0..=MAX_VERSION).contains(&db_version) {
        return Err(malformed("cursor db_version out of range"));
    }
    Ok(Cursor { db_version, seq })
}

/// Index of `key` in a frame dictionary, adding it on first use.
fn intern<'a>(
    map: &mut HashMap<&'a [u8], usize>,
    list: &mut Vec<&'a [u8]>,
    key: &'a [u8],
) -> usize {
    *map.entry(key).or_insert_with(|| {
        list.push(key);
        list.len() - 1
    })
}

fn encode_rows(w: &mut Writer, rows: &[Change]) {
    let (mut tm, mut cm, mut sm) = (HashMap::new(), HashMap::new(), HashMap::new());
    let (mut tables, mut cids, mut sites) = (Vec::new(), Vec::new(), Vec::new());
    let idx: Vec<(usize, usize, usize)> = rows
        .iter()
        .map(|c| {
            (
                intern(&mut tm, &mut tables, c.table.as_bytes()),
                intern(&mut cm, &mut cids, c.cid.as_bytes()),
                intern(&mut sm, &mut sites, &c.site_id),
            )
        })
        .collect();
    for dict in [&tables, &cids, &sites] {
        w.len(dict.len());
        for s in dict.iter() {
            w.bytes(s);
        }
    }
    w.len(rows.len());
    for (c, (t, k, s)) in rows.iter().zip(idx) {
        w.len(t);
        w.bytes(&c.pk);
        w.len(k);
        match &c.val {
            Value::Null => w.u8(VAL_NULL),
            Value::Integer(i) => {
                w.u8(VAL_INTEGER);
                w.ivar(*i);
            }
            Value::Real(f) => {
                w.u8(VAL_REAL);
                w.f64(*f);
            }
            Value::Text(t) => {
                w.u8(VAL_TEXT);
                w.str(t);
            }
            Value::Blob(b) => {
                w.u8(VAL_BLOB);
                w.bytes(b);
            }
        }
        w.ivar(c.col_version);
        w.ivar(c.db_version);
        w.len(s);
        w.ivar(c.cl);
        w.ivar(c.seq);
    }
}

fn version(r: &mut Reader<'_>, what: &str) -> Result<i64> {
    let v = r.ivar(what)?;
    if !(0..=MAX_VERSION).contains(&v) {
        return Err(malformed(&format!("{what} {v} out of range")));
    }
    Ok(v)
}

fn index<'a, T>(r: &mut Reader<'_>, dict: &'a [T], what: &str) -> Result<&'a T> {
    let i = r.uvar(what)?;
    usize::try_from(i)
        .ok()
        .and_then(|i| dict.get(i))
        .ok_or_else(|| malformed(&format!("{what} index {i} out of range")))
}

fn decode_rows(r: &mut Reader<'_>) -> Result<Vec<Change>> {
    let strings = |what: &str, r: &mut Reader<'_>| -> Result<Vec<String>> {
        let n = r.count(what, 1)?;
        (0..n).map(|_| Ok(r.str(what)?.to_owned())).collect()
    };
    let tables = strings("table names", r)?;
    let cids = strings("column names", r)?;
    let n = r.count("site ids", 17)?;
    let mut sites = Vec::with_capacity(n);
    for _ in 0..n {
        let b = r.bytes("site id")?;
        if b.len() != 16 {
            return Err(malformed("a site id is not 16 bytes"));
        }
        sites.push(b.to_vec());
    }
    // A row is at least 9 bytes (one per field).
    let n = r.count("rows", 9)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let table = index(r, &tables, "table")?.clone();
        let pk = r.bytes("pk")?.to_vec();
        let cid = index(r, &cids, "column")?.clone();
        let val = match r.u8("value tag")? {
            VAL_NULL => Value::Null,
            VAL_INTEGER => Value::Integer(r.ivar("integer value")?),
            VAL_REAL => Value::Real(r.f64("real value")?),
            VAL_TEXT => Value::Text(r.str("text value")?.to_owned()),
            VAL_BLOB => Value::Blob(r.bytes("blob value")?.to_vec()),
            t => return Err(malformed(&format!("unknown value tag {t}"))),
        };
        let col_version = version(r, "col_version")?;
        let db_version = version(r, "db_version")?;
        let site_id = index(r, &sites, "site")?.clone();
        let cl = version(r, "cl")?;
        let seq = version(r, "seq")?;
        rows.push(Change {
            table,
            pk,
            cid,
            val,
            col_version,
            db_version,
            site_id,
            cl,
            seq,
        });
    }
    Ok(rows)
}
