//! Primary-key packing, byte-compatible with cr-sqlite 0.16 (`crsql_pack_columns`).
//!
//! A change row names its row by the packed values of the table's primary-key columns:
//!
//! ```text
//! u8 ncols, then per column:
//!   type byte = (nbytes << 3) | type      INTEGER=1 FLOAT=2 TEXT=3 BLOB=4 NULL=5
//!   INTEGER: nbytes big-endian bytes of the value (0 -> no bytes, 1..255 -> 1 byte,
//!            negatives -> 8 bytes); decoded zero-extended, as cr-sqlite (bytes 1.5) does
//!   FLOAT:   type byte 0x02 (nbytes unused), 8 bytes big-endian IEEE-754
//!   TEXT/BLOB: length in nbytes big-endian bytes, then the bytes
//!   NULL:    type byte only
//! ```
//!
//! Vectors: integer 1 -> `x'010901'`, text 'a' -> `x'010b0161'`, 12 | 'str' | x'010203' ->
//! `x'03090c0b037374720c03010203'` (cr-sqlite's own test).
//!
//! The integer width is cr-sqlite's: the smallest number of low-order bytes holding every set
//! bit, so 128 is one byte `0x80` (not two's complement), and the decoder zero-extends. A
//! packed key is therefore canonical for its values: [`pack`] of [`unpack`] gives the same
//! bytes for anything cr-sqlite produces. The CRDT layer uses the packed bytes directly as the
//! clock-table key, so it always re-packs incoming keys before using them.

use crate::error::{Error, Result};
use rusqlite::types::{Value, ValueRef};

/// Type tag of an INTEGER column in a packed key.
pub const TYPE_INTEGER: u8 = 1;
/// Type tag of a FLOAT (REAL) column.
pub const TYPE_FLOAT: u8 = 2;
/// Type tag of a TEXT column.
pub const TYPE_TEXT: u8 = 3;
/// Type tag of a BLOB column.
pub const TYPE_BLOB: u8 = 4;
/// Type tag of a NULL column.
pub const TYPE_NULL: u8 = 5;

/// Bytes cr-sqlite uses for a 32-bit quantity (lengths, low half of integers).
fn nbytes_u32(v: u32) -> u8 {
    if v & 0xFF00_0000 != 0 {
        4
    } else if v & 0x00FF_0000 != 0 {
        3
    } else if v & 0x0000_FF00 != 0 {
        2
    } else if v != 0 {
        1
    } else {
        0
    }
}

/// Bytes cr-sqlite uses for an integer: highest non-zero byte of its two's-complement bits.
fn nbytes_i64(v: i64) -> u8 {
    let u = v as u64;
    if u & 0xFF00_0000_0000_0000 != 0 {
        8
    } else if u & 0x00FF_0000_0000_0000 != 0 {
        7
    } else if u & 0x0000_FF00_0000_0000 != 0 {
        6
    } else if u & 0x0000_00FF_0000_0000 != 0 {
        5
    } else {
        nbytes_u32(u as u32)
    }
}

fn put_uint(out: &mut Vec<u8>, v: u64, n: u8) {
    let bytes = v.to_be_bytes();
    out.extend_from_slice(&bytes[8 - n as usize..]);
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, data: &[u8]) -> Result<()> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|l| *l <= i32::MAX as u32)
        .ok_or_else(|| Error::InvalidArgument("primary key value is too large to pack".into()))?;
    let n = nbytes_u32(len);
    out.push((n << 3) | tag);
    put_uint(out, u64::from(len), n);
    out.extend_from_slice(data);
    Ok(())
}

/// Appends one value to a packed key being built (after the column count byte).
pub(crate) fn pack_one(out: &mut Vec<u8>, v: ValueRef<'_>) -> Result<()> {
    match v {
        ValueRef::Null => out.push(TYPE_NULL),
        ValueRef::Integer(i) => {
            let n = nbytes_i64(i);
            out.push((n << 3) | TYPE_INTEGER);
            put_uint(out, i as u64, n);
        }
        ValueRef::Real(f) => {
            out.push(TYPE_FLOAT);
            out.extend_from_slice(&f.to_be_bytes());
        }
        ValueRef::Text(t) => put_bytes(out, TYPE_TEXT, t)?,
        ValueRef::Blob(b) => put_bytes(out, TYPE_BLOB, b)?,
    }
    Ok(())
}

/// Packs values (the primary-key columns of a row, in primary-key order) the way cr-sqlite's
/// `crsql_pack_columns` does.
pub fn pack_refs<'a, I>(values: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = ValueRef<'a>>,
    I::IntoIter: ExactSizeIterator,
{
    let it = values.into_iter();
    let n = u8::try_from(it.len())
        .map_err(|_| Error::InvalidArgument("cannot pack more than 255 columns".into()))?;
    let mut out = Vec::with_capacity(1 + 10 * n as usize);
    out.push(n);
    for v in it {
        pack_one(&mut out, v)?;
    }
    Ok(out)
}

/// Packs owned values; see [`pack_refs`].
pub fn pack(values: &[Value]) -> Result<Vec<u8>> {
    pack_refs(values.iter().map(ValueRef::from))
}

fn malformed(what: &str) -> Error {
    Error::InvalidChange(format!(
        "malformed packed primary key: {what}; pk must be a blob made by crsql_pack_columns"
    ))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(malformed(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn uint(&mut self, n: usize, what: &str) -> Result<u64> {
        if n > 8 {
            return Err(malformed("integer or length wider than 8 bytes"));
        }
        let mut out = [0u8; 8];
        out[8 - n..].copy_from_slice(self.take(n, what)?);
        Ok(u64::from_be_bytes(out))
    }
}

/// Unpacks a packed primary key into its values. Fails with `INVALID_CHANGE` on anything
/// cr-sqlite could not have produced: empty input, truncated data, unknown type tags, widths
/// over 8 bytes, TEXT that is not UTF-8. Bytes after the last column are ignored (as in
/// cr-sqlite).
pub fn unpack(packed: &[u8]) -> Result<Vec<Value>> {
    let (&n, rest) = packed
        .split_first()
        .ok_or_else(|| malformed("empty blob"))?;
    let mut r = Reader { buf: rest };
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let tag = r.take(1, "missing column type byte")?[0];
        let width = usize::from(tag >> 3);
        match tag & 0x07 {
            TYPE_INTEGER => out.push(Value::Integer(r.uint(width, "truncated integer")? as i64)),
            TYPE_FLOAT => {
                let b = r.take(8, "truncated float")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                out.push(Value::Real(f64::from_be_bytes(a)));
            }
            t @ (TYPE_TEXT | TYPE_BLOB) => {
                let len = r.uint(width, "truncated length")?;
                let len = usize::try_from(len).map_err(|_| malformed("length out of range"))?;
                let data = r.take(len, "truncated text or blob")?;
                if t == TYPE_TEXT {
                    let s =
                        std::str::from_utf8(data).map_err(|_| malformed("text is not UTF-8"))?;
                    out.push(Value::Text(s.to_owned()));
                } else {
                    out.push(Value::Blob(data.to_vec()));
                }
            }
            TYPE_NULL => out.push(Value::Null),
            _ => return Err(malformed("unknown column type")),
        }
    }
    Ok(out)
}

/// The value of column `index` of a packed key, without allocating the others (used by the
/// `crsql_internal_unpack` SQL function in joins).
pub(crate) fn unpack_nth(packed: &[u8], index: usize) -> Result<Value> {
    let mut values = unpack(packed)?;
    if index < values.len() {
        Ok(values.swap_remove(index))
    } else {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_family = "wasm"), test)]
    fn widths_follow_cr_sqlite() {
        assert_eq!(nbytes_i64(0), 0);
        assert_eq!(nbytes_i64(1), 1);
        assert_eq!(nbytes_i64(255), 1);
        assert_eq!(nbytes_i64(256), 2);
        assert_eq!(nbytes_i64(1 << 31), 4);
        assert_eq!(nbytes_i64(1 << 32), 5);
        assert_eq!(nbytes_i64(-1), 8);
        assert_eq!(nbytes_i64(i64::MAX), 8);
    }
}
