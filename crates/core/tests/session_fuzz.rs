//! Fuzzing the server session: after a client joined, any bytes it sends (random, or mutations
//! of its real `Changes` and `Ack` frames, or well-formed `Changes` frames with arbitrary
//! versions, keys and site ids) never panic `ServerSession::handle`, fail only with the codes
//! a client's fault has, write nothing when they fail, and never push the room's versions
//! into the headroom; the room stays consistent and keeps syncing.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use synqlite_core::crdt::{self, Change, Cursor, MAX_ACCEPTED_VERSION, MAX_VERSION};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;
use synqlite_core::schema::{apply_schema, SchemaMode};
use synqlite_core::sync::{
    Changes, ClientConfig, ClientSession, Frame, ServerOptions, ServerSession,
};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL DEFAULT 0, note);
    SELECT crsql_as_crr('items');";

#[cfg(not(target_family = "wasm"))]
const CASES: u32 = 20_000;
#[cfg(target_family = "wasm")]
const CASES: u32 = 200;

fn db() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    apply_schema(&c, "test", SCHEMA, SchemaMode::Strict).unwrap();
    c
}

/// A room with one joined client; returns the room, the client's database and its session on
/// the server, plus the client's real frames (a `Changes` frame and an `Ack`).
fn joined() -> (Connection, Connection, ServerSession, Vec<Vec<u8>>) {
    let room = db();
    let client = db();
    client
        .execute_batch(
            "INSERT INTO items (id, n, note) VALUES ('a', 1, 'x'), ('b', 2, x'00ff'), ('c', 3, 1.5);
             UPDATE items SET n = 7 WHERE id = 'a'; DELETE FROM items WHERE id = 'b';",
        )
        .unwrap();
    let mut session = ClientSession::new(ClientConfig::new("room"));
    let Frame::Hello(hello) = Frame::decode(&session.hello(&client).unwrap()).unwrap() else {
        unreachable!()
    };
    let (server, frames) = ServerSession::accept(&room, &hello, ServerOptions::default()).unwrap();
    let mut ups = Vec::new();
    for f in frames {
        ups.extend(session.handle(&client, &f).unwrap().send);
    }
    ups.push(Frame::Ack(Cursor::START).encode());
    (room, client, server, ups)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

fn room_state(room: &Connection) -> (i64, i64) {
    let n: i64 = room
        .query_row("SELECT count(*) FROM items__crsql_clock", [], |r| r.get(0))
        .unwrap();
    (n, crdt::db_version(room).unwrap())
}

/// What must hold after any input.
fn check_room(room: &Connection) -> Result<(), TestCaseError> {
    let ok: String = room
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    prop_assert_eq!(ok, "ok");
    let max: i64 = room
        .query_row(
            "SELECT coalesce(max(max(db_version, col_version)), 0) FROM items__crsql_clock",
            [],
            |r| r.get(0),
        )
        .unwrap();
    prop_assert!(max <= MAX_ACCEPTED_VERSION, "version {max} in the headroom");
    prop_assert!(room.is_autocommit(), "a transaction was left open");
    Ok(())
}

fn handle_one(
    room: &Connection,
    server: &mut ServerSession,
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    let before = room_state(room);
    match server.handle(room, bytes) {
        Ok(_) => {}
        Err(e) => {
            let code = e.code().to_owned();
            // SQLITE_CONSTRAINT: rows that break the room's own constraints (a NULL into a
            // NOT NULL column on a resurrected row), refused whole, as cr-sqlite refuses them.
            prop_assert!(
                matches!(
                    code.as_str(),
                    "PROTOCOL_ERROR" | "PROTOCOL_VERSION" | "INVALID_CHANGE" | "SQLITE_CONSTRAINT"
                ) || matches!(e, synqlite_core::Error::Remote { .. }),
                "unexpected {code}: {e}"
            );
            prop_assert_eq!(room_state(room), before, "a refused frame wrote something");
        }
    }
    check_room(room)
}

#[test]
fn mutated_frames_never_break_the_room() {
    let (room, client, server, frames) = joined();
    let server = std::cell::RefCell::new(server);
    let mut runner = runner();
    let strategy = (
        0..frames.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(which, flips, cut, junk, random)| {
            let bytes = if random {
                junk
            } else {
                let mut b = frames[which].clone();
                for (i, v) in flips {
                    let i = i.index(b.len());
                    b[i] ^= v;
                }
                if let Some(c) = cut {
                    b.truncate(c.index(b.len() + 1));
                }
                b
            };
            handle_one(&room, &mut server.borrow_mut(), &bytes)
        })
        .unwrap();
    // The client's real upload still goes through afterwards.
    let mut fresh = ServerSession::accept(
        &room,
        &{
            let mut s = ClientSession::new(ClientConfig::new("room"));
            let Frame::Hello(h) = Frame::decode(&s.hello(&client).unwrap()).unwrap() else {
                unreachable!()
            };
            h
        },
        ServerOptions::default(),
    )
    .unwrap()
    .0;
    let out = fresh.handle(&room, &frames[0]);
    assert!(out.is_ok(), "{out:?}");
}

fn version() -> impl Strategy<Value = i64> {
    prop_oneof![
        0i64..10,
        Just(MAX_ACCEPTED_VERSION),
        Just(MAX_ACCEPTED_VERSION + 1),
        Just(MAX_VERSION),
        -5i64..0,
        any::<i64>(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        ".{0,8}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Blob),
    ]
}

#[test]
fn arbitrary_rows_never_break_the_room() {
    let (room, client, server, _) = joined();
    let server = std::cell::RefCell::new(server);
    let site = crdt::site_id(&client).unwrap();
    let mut runner = runner();
    let row = (
        prop_oneof![Just("items".to_owned()), ".{0,6}"],
        prop_oneof![
            Just(crdt::pack::pack(&[Value::Text("k".into())]).unwrap()),
            prop::collection::vec(any::<u8>(), 0..6)
        ],
        prop_oneof![
            Just("n".to_owned()),
            Just("note".to_owned()),
            Just("-1".to_owned()),
            ".{0,4}"
        ],
        value(),
        (version(), version(), version(), version()),
        any::<bool>(),
    );
    runner
        .run(&prop::collection::vec(row, 0..6), |rows| {
            let rows: Vec<Change> = rows
                .into_iter()
                .map(|(table, pk, cid, val, (cv, dv, cl, seq), own)| Change {
                    table: table.into(),
                    pk,
                    cid: cid.into(),
                    val,
                    col_version: cv,
                    db_version: dv,
                    site_id: if own {
                        site.to_vec().into()
                    } else {
                        vec![7u8; 16].into()
                    },
                    cl,
                    seq,
                })
                .collect();
            let last = Cursor {
                db_version: MAX_VERSION,
                seq: 0,
            };
            let bytes = Frame::Changes(Changes { rows, last }).encode();
            handle_one(&room, &mut server.borrow_mut(), &bytes)?;
            // The stored cursor never comes from the frame's claim.
            let stored = crdt::peer_cursor(&room, &site).unwrap();
            prop_assert!(stored.is_none_or(|c| c.db_version <= MAX_ACCEPTED_VERSION));
            Ok(())
        })
        .unwrap();
}
