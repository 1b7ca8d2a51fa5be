//! Decoding a hostile frame allocates in proportion to the frame's own bytes, never to the
//! counts and lengths it declares nor to the number of rows times the size of a name.
//!
//! A counting global allocator records the bytes requested on this thread (current and peak);
//! every case decodes one frame and checks the peak during `Frame::decode` (and
//! `decode_hello`, `peek_kind`) against `24 × frame length + 64 KiB`. The decoder's worst case
//! is about 20× (a dictionary of one-byte names: a 16-byte `Arc<str>` slot plus a 24-byte
//! allocation per 2 encoded bytes; a row of 9 bytes costs one `Change`, ~15×); 64 KiB covers
//! the fixed costs (error messages, small vectors). Before the dictionaries were shared, a row
//! cloned its table name: a frame of 9-byte rows naming a 1 KiB table allocated ~115× its size.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use synqlite_core::sync::{
    Frame, MAGIC, MAX_HELLO_BYTES, MAX_HELLO_CURSORS, MAX_NAME_BYTES, MAX_ROWS_PER_FRAME,
    MAX_TOKEN_BYTES, PROTOCOL_VERSION,
};

struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: allocations while the thread's locals are torn down are not counted.
    let _ = CURRENT.try_with(|c| {
        let v = c.get() + n;
        c.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping neither allocates nor panics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated (above what was allocated before) while `f` runs, with its result
/// dropped inside the measurement.
fn peak_during<T>(f: impl FnOnce() -> T) -> usize {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    drop(f());
    (PEAK.with(Cell::get) - base).max(0) as usize
}

fn uvar(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn bytes(b: &mut Vec<u8>, s: &[u8]) {
    uvar(b, s.len() as u64);
    b.extend_from_slice(s);
}

fn header(kind: u8) -> Vec<u8> {
    vec![MAGIC, PROTOCOL_VERSION, kind]
}

const CHANGES: u8 = 3;
const HELLO: u8 = 1;
const ERROR: u8 = 6;

/// A `Changes` frame: cursor (0, 0), the dictionaries, `rows` rows given as raw bytes.
fn changes<T: AsRef<[u8]>, U: AsRef<[u8]>>(
    tables: &[T],
    cids: &[U],
    sites: usize,
    rows: u64,
    row: &[u8],
) -> Vec<u8> {
    let mut b = header(CHANGES);
    b.extend([0, 0]);
    uvar(&mut b, tables.len() as u64);
    for s in tables {
        bytes(&mut b, s.as_ref());
    }
    uvar(&mut b, cids.len() as u64);
    for s in cids {
        bytes(&mut b, s.as_ref());
    }
    uvar(&mut b, sites as u64);
    for i in 0..sites {
        let mut site = [0u8; 16];
        site[..8].copy_from_slice(&(i as u64).to_le_bytes());
        bytes(&mut b, &site);
    }
    uvar(&mut b, rows);
    for _ in 0..rows {
        b.extend_from_slice(row);
    }
    b
}

/// The smallest row: table 0, empty pk, column 0, NULL, versions 0, site 0.
const ROW9: [u8; 9] = [0, 0, 0, 0, 0, 0, 0, 0, 0];

/// As many 9-byte rows as make the frame about `size` bytes.
fn rows_for(size: usize) -> u64 {
    (size / ROW9.len()) as u64
}

fn check(name: &str, frame: &[u8], results: &mut Vec<(String, usize, usize)>) {
    let peak = peak_during(|| Frame::decode(frame));
    let peak = peak.max(peak_during(|| Frame::decode_hello(frame)));
    let peak = peak.max(peak_during(|| Frame::peek_kind(frame)));
    results.push((name.to_owned(), frame.len(), peak));
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn hostile_frames_allocate_a_small_multiple_of_their_size() {
    let mut results = Vec::new();
    let kib = vec![b't'; 1 << 10];
    let kib8 = vec![b't'; 8 << 10];
    let max_name = vec![b'n'; MAX_NAME_BYTES];
    let too_long = vec![b'n'; MAX_NAME_BYTES + 1];

    // Long table names repeated by many tiny rows (the old decoder copied the name per row).
    for (label, name) in [("1 KiB table", &kib), ("8 KiB table", &kib8)] {
        for size in [64 << 10, 1 << 20] {
            let f = changes(&[name], &[b"c"], 1, rows_for(size), &ROW9);
            check(
                &format!("{label}, {size} B of 9-byte rows"),
                &f,
                &mut results,
            );
        }
    }
    // Longest names allowed, most rows allowed: decoded in full.
    let f = changes(
        &[&max_name],
        &[&max_name],
        1,
        MAX_ROWS_PER_FRAME as u64,
        &ROW9,
    );
    assert!(
        matches!(Frame::decode(&f), Ok(Frame::Changes(c)) if c.rows.len() == MAX_ROWS_PER_FRAME)
    );
    check("max names, max rows", &f, &mut results);
    let f = changes(&[&too_long], &[b"c"], 1, 10, &ROW9);
    assert_eq!(Frame::decode(&f).unwrap_err().code(), "PROTOCOL_ERROR");
    check("name over the limit", &f, &mut results);
    // One row more than allowed.
    let f = changes(&[b"t"], &[b"c"], 1, MAX_ROWS_PER_FRAME as u64 + 1, &ROW9);
    assert_eq!(Frame::decode(&f).unwrap_err().code(), "PROTOCOL_ERROR");
    check("rows over the limit", &f, &mut results);

    // Huge declared counts and lengths with nothing behind them.
    for claim in [u64::MAX >> 1, 1 << 40, 1 << 24, MAX_ROWS_PER_FRAME as u64] {
        let mut f = header(CHANGES);
        f.extend([0, 0]);
        uvar(&mut f, claim); // tables
        check(&format!("{claim} tables claimed"), &f, &mut results);
        let mut f = changes(&[b"t"], &[b"c"], 1, 0, &[]);
        f.pop();
        uvar(&mut f, claim); // rows
        f.extend(ROW9);
        check(&format!("{claim} rows claimed"), &f, &mut results);
        let mut f = changes(&[b"t"], &[b"c"], 1, 0, &[]);
        f.pop();
        f.extend([1, 0]);
        uvar(&mut f, claim); // pk length
        check(&format!("{claim}-byte pk claimed"), &f, &mut results);
        let mut f = header(HELLO);
        uvar(&mut f, claim); // room length
        check(&format!("{claim}-byte room claimed"), &f, &mut results);
        let mut f = header(ERROR);
        uvar(&mut f, claim); // code length
        check(
            &format!("{claim}-byte error code claimed"),
            &f,
            &mut results,
        );
    }

    // Deep dictionaries: as many one-byte (and empty) names and site ids as allowed, used by
    // rows pointing at the last entries.
    let one: Vec<[u8; 1]> = (0..MAX_ROWS_PER_FRAME)
        .map(|i| [b'a' + (i % 26) as u8])
        .collect();
    let one: Vec<&[u8]> = one.iter().map(|s| &s[..]).collect();
    let empty: Vec<&[u8]> = vec![b""; MAX_ROWS_PER_FRAME];
    let last = (MAX_ROWS_PER_FRAME - 1) as u64;
    let mut row = Vec::new();
    uvar(&mut row, last);
    row.push(0);
    uvar(&mut row, last);
    row.extend([0, 0, 0]);
    uvar(&mut row, last);
    row.extend([0, 0]);
    for (label, dict) in [("one-byte", &one), ("empty", &empty)] {
        let f = changes(dict, dict, MAX_ROWS_PER_FRAME, 1000, &row);
        assert!(Frame::decode(&f).is_ok(), "{label}");
        check(
            &format!("deep dictionaries of {label} names"),
            &f,
            &mut results,
        );
        let f = changes(dict, dict, MAX_ROWS_PER_FRAME, 0, &[]);
        check(
            &format!("deep dictionaries of {label} names, no rows"),
            &f,
            &mut results,
        );
    }
    // The worst case: names only (no site ids, no rows).
    let f = changes(&one, &one, 0, 0, &[]);
    assert!(Frame::decode(&f).is_ok());
    check("deep dictionaries of one-byte names only", &f, &mut results);
    let more: Vec<&[u8]> = vec![b"x"; MAX_ROWS_PER_FRAME + 1];
    let f = changes(&more, &[b"c"], 1, 0, &[]);
    assert_eq!(Frame::decode(&f).unwrap_err().code(), "PROTOCOL_ERROR");
    check("dictionary over the limit", &f, &mut results);

    // Hellos: the largest allowed, one byte over, and a huge one.
    let mut hello = header(HELLO);
    bytes(&mut hello, &max_name);
    hello.extend([1; 16]);
    bytes(&mut hello, &max_name);
    hello.extend([0, 0]); // schema version, head
    uvar(&mut hello, MAX_HELLO_CURSORS as u64);
    for _ in 0..MAX_HELLO_CURSORS {
        hello.extend([2; 32]);
        hello.extend([0, 0]);
    }
    hello.push(1);
    bytes(&mut hello, &vec![b'k'; MAX_TOKEN_BYTES]);
    hello.push(0); // chunk size
    assert!(Frame::decode_hello(&hello).is_ok());
    check("largest hello", &hello, &mut results);
    let mut big = hello.clone();
    big.resize(MAX_HELLO_BYTES + 1, 0);
    assert_eq!(Frame::decode(&big).unwrap_err().code(), "PROTOCOL_ERROR");
    check("hello over the limit", &big, &mut results);
    big.resize(15 << 20, 0);
    check("15 MiB hello", &big, &mut results);

    // 15 MiB frames: rows of large blobs (decoded), tiny rows naming a 1 KiB table, and tiny
    // rows past the row limit (both refused).
    let blob = 15 * (1 << 20) / MAX_ROWS_PER_FRAME - 16;
    let mut big_row = vec![0, 0, 0, 4];
    bytes(&mut big_row, &vec![7u8; blob]);
    big_row.extend([0, 0, 0, 0, 0]);
    let f = changes(&[b"t"], &[b"c"], 1, MAX_ROWS_PER_FRAME as u64, &big_row);
    assert!(Frame::decode(&f).is_ok());
    check("15 MiB of blob rows", &f, &mut results);
    let f = changes(&[&kib], &[b"c"], 1, rows_for(15 << 20), &ROW9);
    check("15 MiB of 9-byte rows, 1 KiB table", &f, &mut results);
    let f = changes(&[b"t"], &[b"c"], 1, rows_for(15 << 20), &ROW9);
    check("15 MiB of 9-byte rows", &f, &mut results);

    let mut failed = Vec::new();
    for (name, len, peak) in &results {
        let bound = 24 * len + (64 << 10);
        println!(
            "{name}: {len} B frame, peak {peak} B ({:.1}x)",
            *peak as f64 / *len as f64
        );
        if *peak > bound {
            failed.push(format!("{name}: {peak} B > {bound} B"));
        }
    }
    assert!(failed.is_empty(), "over the bound: {failed:#?}");
}
