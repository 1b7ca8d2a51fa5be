//! Byte-level encoding of frames: LEB128 varints, zigzag signed integers, length-prefixed bytes.
//!
//! The [`Reader`] never trusts a length: every count and size is checked against the bytes that
//! are actually left (and against the caller's limit, `count_max` / `bytes_max` / `str_max`)
//! before anything is allocated, so a hostile or truncated frame fails with a `PROTOCOL_ERROR`
//! and never makes its reader allocate in proportion to a number it declares.

use crate::error::{Error, Result};

/// Appends encoded values to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn uvar(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn ivar(&mut self, v: i64) {
        self.uvar(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn len(&mut self, n: usize) {
        self.uvar(n as u64);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// Reads encoded values from a frame, failing on anything malformed.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub(crate) fn malformed(what: &str) -> Error {
    Error::Protocol(format!("malformed frame: {what}"))
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| malformed(&format!("truncated at {what}")))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn uvar(&mut self, what: &str) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(malformed(&format!("varint overflow at {what}")));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed(&format!("varint too long at {what}")))
    }

    pub fn ivar(&mut self, what: &str) -> Result<i64> {
        let u = self.uvar(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A count of items each at least `min_item` bytes long, checked against what is left.
    pub fn count(&mut self, what: &str, min_item: usize) -> Result<usize> {
        let n = self.uvar(what)?;
        let n = usize::try_from(n).map_err(|_| malformed(&format!("{what} count too large")))?;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(malformed(&format!(
                "{what} count {n} exceeds the frame's remaining {} bytes",
                self.remaining()
            )));
        }
        Ok(n)
    }

    /// [`Self::count`], also refusing more than `max` items (before anything is allocated).
    pub fn count_max(&mut self, what: &str, min_item: usize, max: usize) -> Result<usize> {
        let n = self.count(what, min_item)?;
        if n > max {
            return Err(malformed(&format!(
                "{what} count {n} exceeds the limit of {max}"
            )));
        }
        Ok(n)
    }

    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.uvar(what)?;
        let n = usize::try_from(n).map_err(|_| malformed(&format!("{what} too long")))?;
        self.take(n, what)
    }

    /// [`Self::bytes`], refusing more than `max` bytes.
    pub fn bytes_max(&mut self, what: &str, max: usize) -> Result<&'a [u8]> {
        let n = self.uvar(what)?;
        if n > max as u64 {
            return Err(malformed(&format!(
                "{what} of {n} bytes exceeds the limit of {max} bytes"
            )));
        }
        // `n <= max`, a usize.
        self.take(n as usize, what)
    }

    /// [`Self::str`], refusing more than `max` bytes.
    pub fn str_max(&mut self, what: &str, max: usize) -> Result<&'a str> {
        std::str::from_utf8(self.bytes_max(what, max)?)
            .map_err(|_| malformed(&format!("{what} is not UTF-8")))
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(malformed(&format!("truncated at {what}")));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn str(&mut self, what: &str) -> Result<&'a str> {
        std::str::from_utf8(self.bytes(what)?)
            .map_err(|_| malformed(&format!("{what} is not UTF-8")))
    }

    pub fn f64(&mut self, what: &str) -> Result<f64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    pub fn site(&mut self, what: &str) -> Result<[u8; 16]> {
        let b = self.take(16, what)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(malformed(&format!(
                "{} unexpected trailing bytes",
                self.remaining()
            )));
        }
        Ok(())
    }
}
