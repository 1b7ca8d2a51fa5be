//! Fuzzing the frame decoder: `Frame::decode`, `Frame::peek_kind` and `Frame::decode_hello`
//! never panic on arbitrary bytes or on mutations of valid frames, fail only with
//! `PROTOCOL_ERROR` / `PROTOCOL_VERSION`, agree with each other, and every valid frame (and
//! everything they accept) round-trips.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use synqlite_core::crdt::{Change, Cursor, MAX_VERSION};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::sync::{
    encode_changes, Changes, ErrorFrame, Frame, FrameKind, Hello, PeerCursor, SchemaId, Welcome,
    MAGIC, MAX_HELLO_BYTES, PROTOCOL_VERSION,
};

#[cfg(not(target_family = "wasm"))]
const CASES: u32 = 20_000;
#[cfg(target_family = "wasm")]
const CASES: u32 = 1_000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Checks everything the three entry points promise about `bytes`.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let decoded = Frame::decode(bytes);
    let peeked = Frame::peek_kind(bytes);
    let hello = Frame::decode_hello(bytes);
    for e in [
        decoded.as_ref().err(),
        peeked.as_ref().err(),
        hello.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(
            ["PROTOCOL_ERROR", "PROTOCOL_VERSION"].contains(&e.code()),
            "{}: {e}",
            e.code()
        );
    }
    if let Ok(f) = &decoded {
        prop_assert_eq!(peeked.as_ref().ok(), Some(&f.frame_kind()));
        // What was accepted encodes to a frame that decodes to the same thing (compared as
        // bytes: a REAL may be NaN).
        let again = f.encode();
        let back = Frame::decode(&again);
        prop_assert!(back.is_ok(), "{:?}", back);
        prop_assert_eq!(back.map(|b| b.encode()).ok(), Some(again));
    }
    match (&decoded, &hello) {
        (Ok(Frame::Hello(h)), Ok(h2)) => prop_assert_eq!(h, h2),
        (_, Ok(h)) => prop_assert!(false, "decode_hello accepted {:?}", h),
        _ => {}
    }
    if bytes.len() > MAX_HELLO_BYTES {
        prop_assert!(!matches!(decoded, Ok(Frame::Hello(_))));
    }
    Ok(())
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("songs".to_owned()),
        Just("-1".to_owned()),
        Just("é😀\"'".to_owned()),
        "[a-z]{1,12}",
        Just("n".repeat(512)),
    ]
}

fn version() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(MAX_VERSION), 0..=MAX_VERSION, 0i64..1000]
}

fn cursor() -> impl Strategy<Value = Cursor> {
    (version(), any::<i64>()).prop_map(|(db_version, seq)| Cursor { db_version, seq })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        ".{0,20}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Blob),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    (
        (name(), prop::collection::vec(any::<u8>(), 0..24), name()),
        value(),
        (version(), version(), version(), version()),
        prop_oneof![Just([7u8; 16]), any::<[u8; 16]>()],
    )
        .prop_map(
            |((table, pk, cid), val, (col_version, db_version, cl, seq), site)| Change {
                table: table.into(),
                pk,
                cid: cid.into(),
                val,
                col_version,
                db_version,
                site_id: site.to_vec().into(),
                cl,
                seq,
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    let hello = (
        (name(), any::<[u8; 16]>(), name(), any::<i64>(), version()),
        prop::collection::vec((any::<[u8; 16]>(), any::<[u8; 16]>(), cursor()), 0..5),
        prop::option::of(".{0,40}"),
        any::<u32>(),
    )
        .prop_map(
            |((room, site_id, schema, version, head), cursors, token, chunk_size)| {
                Frame::Hello(Hello {
                    room,
                    site_id,
                    schema: SchemaId {
                        name: schema,
                        version,
                    },
                    head,
                    cursors: cursors
                        .into_iter()
                        .map(|(site, incarnation, cursor)| PeerCursor {
                            site,
                            incarnation,
                            cursor,
                        })
                        .collect(),
                    token,
                    chunk_size,
                })
            },
        );
    let welcome = (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        cursor(),
        cursor(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(
            |(server_site, incarnation, your_cursor, start, total, chunk_size)| {
                Frame::Welcome(Welcome {
                    server_site,
                    incarnation,
                    your_cursor,
                    start,
                    total,
                    chunk_size,
                })
            },
        );
    let changes = (prop::collection::vec(change(), 0..12), cursor())
        .prop_map(|(rows, last)| Frame::Changes(Changes { rows, last }));
    let error = (
        "[A-Z_]{0,64}",
        ".{0,100}",
        any::<bool>(),
        prop::collection::vec(("[a-z_]{0,20}", ".{0,30}"), 0..4),
    )
        .prop_map(|(code, message, retryable, details)| {
            Frame::Error(ErrorFrame {
                code,
                message,
                retryable,
                details,
            })
        });
    prop_oneof![
        hello,
        welcome,
        changes,
        cursor().prop_map(Frame::Ack),
        Just(Frame::CaughtUp),
        error,
    ]
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn arbitrary_bytes_never_panic() {
    let strategy = (0u8..4, 1u8..=6, prop::collection::vec(any::<u8>(), 0..256));
    runner()
        .run(&strategy, |(prefix, kind, tail)| {
            let mut b = match prefix {
                0 => Vec::new(),
                1 => vec![MAGIC, PROTOCOL_VERSION],
                _ => vec![MAGIC, PROTOCOL_VERSION, kind],
            };
            b.extend(tail);
            check(&b)
        })
        .unwrap();
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn valid_frames_round_trip() {
    runner()
        .run(&frame(), |f| {
            let bytes = f.encode();
            prop_assert_eq!(Frame::peek_kind(&bytes).ok(), Some(f.frame_kind()));
            let back = Frame::decode(&bytes);
            prop_assert!(back.is_ok(), "{:?}: {:?}", f, back);
            // Compared as bytes (NaN), and as values when there is no REAL.
            let back = back.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.encode(), bytes.clone());
            if !format!("{f:?}").contains("Real") {
                prop_assert_eq!(&back, &f);
            }
            if let Frame::Changes(c) = &f {
                prop_assert_eq!(encode_changes(&c.rows, c.last), bytes.clone());
                // A borrowed subset encodes like the same rows owned.
                let odd: Vec<Change> = c.rows.iter().skip(1).step_by(2).cloned().collect();
                prop_assert_eq!(
                    encode_changes(c.rows.iter().skip(1).step_by(2), c.last),
                    Frame::Changes(Changes {
                        rows: odd,
                        last: c.last
                    })
                    .encode()
                );
            }
            match &f {
                Frame::Hello(h) => {
                    let decoded = Frame::decode_hello(&bytes).ok();
                    prop_assert_eq!(decoded.as_ref(), Some(h));
                }
                _ => prop_assert!(Frame::decode_hello(&bytes).is_err()),
            }
            check(&bytes)
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn mutated_frames_never_panic() {
    let strategy = (frame(), prop::collection::vec(mutation(), 1..6));
    runner()
        .run(&strategy, |(f, mutations)| {
            let mut b = f.encode();
            for m in mutations {
                if b.is_empty() {
                    break;
                }
                match m {
                    Mutation::Set(i, v) => {
                        let at = i.index(b.len());
                        b[at] = v;
                    }
                    Mutation::Insert(i, v) => b.insert(i.index(b.len() + 1), v),
                    Mutation::Remove(i) => {
                        b.remove(i.index(b.len()));
                    }
                    Mutation::Truncate(i) => b.truncate(i.index(b.len())),
                }
            }
            check(&b)
        })
        .unwrap();
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn peek_kind_reads_only_the_header() {
    for (kind, byte) in [
        (FrameKind::Hello, 1),
        (FrameKind::Welcome, 2),
        (FrameKind::Changes, 3),
        (FrameKind::Ack, 4),
        (FrameKind::CaughtUp, 5),
        (FrameKind::Error, 6),
    ] {
        // A body the decoder would refuse does not matter.
        let b = [MAGIC, PROTOCOL_VERSION, byte, 0xff, 0xff];
        assert_eq!(Frame::peek_kind(&b).unwrap(), kind);
        assert_eq!(kind.to_string(), kind.name());
    }
    assert_eq!(
        Frame::peek_kind(&[MAGIC, PROTOCOL_VERSION, 7])
            .unwrap_err()
            .code(),
        "PROTOCOL_ERROR"
    );
    assert_eq!(
        Frame::peek_kind(&[MAGIC, PROTOCOL_VERSION])
            .unwrap_err()
            .code(),
        "PROTOCOL_ERROR"
    );
    assert_eq!(
        Frame::peek_kind(&[0, PROTOCOL_VERSION, 1])
            .unwrap_err()
            .code(),
        "PROTOCOL_ERROR"
    );
    assert_eq!(
        Frame::peek_kind(&[MAGIC, 1, 1]).unwrap_err().code(),
        "PROTOCOL_VERSION"
    );
    // decode_hello refuses other kinds and oversized hellos before decoding.
    let e = Frame::decode_hello(&Frame::CaughtUp.encode()).unwrap_err();
    assert_eq!(e.code(), "PROTOCOL_ERROR");
    assert!(e.to_string().contains("caught-up"), "{e}");
    let mut big = vec![MAGIC, PROTOCOL_VERSION, 1];
    big.resize(MAX_HELLO_BYTES + 1, 0);
    let e = Frame::decode_hello(&big).unwrap_err();
    assert!(e.to_string().contains("exceeds"), "{e}");
}
