// Change rows from JS into one byte buffer, for `applyChanges` (src/change_rows.rs decodes it).
//
// Reading the nine fields of 250k row objects one `Reflect.get` at a time from wasm crosses the
// boundary 2.25M times and took about as long as merging the rows; the same loop in JS runs in
// the JIT and hands wasm one buffer. This accepts exactly the rows `change_rows::from_js`
// accepts, with the same values; on the first row it cannot take it returns `undefined` and the
// Rust path reads the rows instead, so errors (their codes, messages and row index) come from
// one place.
//
// Layout, little-endian, per row:
//   u32 table (index into the string list), u32 cid (index), u32 pk length + pk bytes,
//   u8 site: 0 = the previous row's site id, 1 = u32 length + bytes follow,
//   u8 val tag + payload: 0 NULL; 1 INTEGER from an int32 number (f64); 2 INTEGER from a bigint
//   (i64); 3 REAL (f64); 4 TEXT (u32 length + UTF-8); 5 BLOB (u32 length + bytes),
//   then col_version, db_version, cl, seq, each u8 tag + payload: 0 a safe-integer number (f64),
//   1 a bigint (i64).
// The result is `[bytes, strings]`.

const FIELDS = ['table', 'pk', 'cid', 'val', 'col_version', 'db_version', 'site_id', 'cl', 'seq'];
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const utf8 = new TextEncoder();

export function encodeChangeRows(rows) {
  if (!Array.isArray(rows)) return undefined;
  let buf = new Uint8Array(Math.max(1024, rows.length * 96));
  let view = new DataView(buf.buffer);
  let at = 0;
  const strings = [];
  const index = new Map();
  const intern = (s) => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  const room = (n) => {
    if (at + n <= buf.length) return;
    let size = buf.length * 2;
    while (size < at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(buf.subarray(0, at));
    buf = next;
    view = new DataView(buf.buffer);
  };
  const bytes = (b) => {
    room(4 + b.length);
    view.setUint32(at, b.length, true);
    buf.set(b, at + 4);
    at += 4 + b.length;
  };
  // A version field: false when `from_js` would refuse it.
  const int = (v) => {
    room(9);
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) return false;
      buf[at] = 0;
      view.setFloat64(at + 1, v, true);
    } else if (typeof v === 'bigint') {
      if (v < I64_MIN || v > I64_MAX) return false;
      buf[at] = 1;
      view.setBigInt64(at + 1, v, true);
    } else {
      return false;
    }
    at += 9;
    return true;
  };
  let lastSite = null;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    let f;
    if (Array.isArray(row)) f = row;
    else if (typeof row === 'object' && row !== null) f = FIELDS.map((k) => row[k]);
    else return undefined;
    const [table, pk, cid, val, colVersion, dbVersion, site, cl, seq] = f;
    if (typeof table !== 'string' || typeof cid !== 'string') return undefined;
    if (!(pk instanceof Uint8Array) || !(site instanceof Uint8Array)) return undefined;
    room(8);
    view.setUint32(at, intern(table), true);
    view.setUint32(at + 4, intern(cid), true);
    at += 8;
    bytes(pk);
    room(1);
    if (lastSite !== null && (site === lastSite || sameBytes(site, lastSite))) {
      buf[at++] = 0;
    } else {
      buf[at++] = 1;
      bytes(site);
      lastSite = site;
    }
    if (!value(val)) return undefined;
    if (!int(colVersion) || !int(dbVersion) || !int(cl) || !int(seq)) return undefined;
  }
  return [buf.subarray(0, at), strings];

  // The row's value, in `val_from_js`'s order of tests; false when it would refuse it.
  function value(v) {
    room(9);
    if (v === null || v === undefined) {
      buf[at++] = 0;
    } else if (typeof v === 'bigint') {
      if (v < I64_MIN || v > I64_MAX) return false;
      buf[at] = 2;
      view.setBigInt64(at + 1, v, true);
      at += 9;
    } else if (typeof v === 'number') {
      // wa-sqlite's rule: an int32 (also -0) binds as INTEGER, anything else as REAL.
      buf[at] = v === (v | 0) ? 1 : 3;
      view.setFloat64(at + 1, v, true);
      at += 9;
    } else if (typeof v === 'string') {
      room(5 + v.length * 3);
      buf[at] = 4;
      const { written } = utf8.encodeInto(v, buf.subarray(at + 5));
      view.setUint32(at + 1, written, true);
      at += 5 + written;
    } else if (v instanceof Uint8Array) {
      room(1);
      buf[at++] = 5;
      bytes(v);
    } else if (v instanceof Float64Array && v.length === 1) {
      buf[at] = 3;
      view.setFloat64(at + 1, v[0], true);
      at += 9;
    } else {
      return false;
    }
    return true;
  }
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
