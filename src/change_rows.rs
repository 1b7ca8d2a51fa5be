//! Change rows between JS and the core: `{ table, pk, cid, val, col_version, db_version, site_id,
//! cl, seq }` objects (cr-sqlite's `crsql_changes` columns) or the same nine values as an array
//! (the tuples vlcn's ws-client sends).
//!
//! `val` keeps INTEGER and REAL apart, because merge tie-breaks rank them differently.
//! - Going in, a `number` binds as crsqlite-wasm (wa-sqlite) binds it: as an INTEGER when it is an
//!   int32 (`v === (v | 0)`, so also -0), else as a REAL. crsqlite-wasm peers read INTEGERs and
//!   REALs alike as numbers, and this is how every crsqlite-wasm peer lands them, so a mixed
//!   network holds the same SQL types everywhere. A `bigint` is an INTEGER; a one-element
//!   `Float64Array` is a REAL whatever its value.
//! - Coming out, rows are exact under that rule: an INTEGER is a `bigint`, a REAL a `number`,
//!   except a REAL that a number would turn into an INTEGER (an int32 such as 2.0), which comes out
//!   as a one-element `Float64Array`.
//!
//! Versions come out as numbers (bigints beyond 2^53).

use crate::values::integer_to_js;
use js_sys::{Array, BigInt, Float64Array, Object, Reflect, Uint8Array};
use std::sync::Arc;
use synqlite_core::crdt::Change;
use synqlite_core::rusqlite::types::Value;
use synqlite_core::{Error, Result};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

const FIELDS: [&str; 9] = [
    "table",
    "pk",
    "cid",
    "val",
    "col_version",
    "db_version",
    "site_id",
    "cl",
    "seq",
];

/// Change rows as an array of JS objects.
pub fn to_js(changes: &[Change]) -> Array {
    let keys: Vec<JsValue> = FIELDS.iter().map(|f| JsValue::from_str(f)).collect();
    changes
        .iter()
        .map(|c| {
            let o: JsValue = Object::new().into();
            let values = [
                JsValue::from_str(&c.table),
                Uint8Array::from(&c.pk[..]).into(),
                JsValue::from_str(&c.cid),
                val_to_js(&c.val),
                integer_to_js(c.col_version),
                integer_to_js(c.db_version),
                Uint8Array::from(&c.site_id[..]).into(),
                integer_to_js(c.cl),
                integer_to_js(c.seq),
            ];
            for (k, v) in keys.iter().zip(values.iter()) {
                // Plain object we just made: cannot fail.
                let _ = Reflect::set(&o, k, v);
            }
            o
        })
        .collect()
}

fn val_to_js(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Integer(i) => BigInt::from(*i).into(),
        Value::Real(f) if binds_as_integer(*f) => Float64Array::from(&[*f][..]).into(),
        Value::Real(f) => JsValue::from_f64(*f),
        Value::Text(t) => JsValue::from_str(t),
        Value::Blob(b) => Uint8Array::from(&b[..]).into(),
    }
}

/// wa-sqlite's test for binding a number as INTEGER (`v === (v | 0)`): an integral value in
/// the int32 range, -0 included; NaN and the infinities are not.
fn binds_as_integer(n: f64) -> bool {
    n.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&n)
}

#[wasm_bindgen(module = "/src/change_rows.js")]
extern "C" {
    /// `[bytes, strings]` (layout in `change_rows.js`), or `undefined` when a row is not one
    /// [`read_js`] accepts.
    #[wasm_bindgen(js_name = encodeChangeRows)]
    fn encode_change_rows(rows: &JsValue) -> JsValue;
}

/// Change rows from an array of objects or 9-tuples: encoded into one buffer by
/// `change_rows.js` and decoded here; rows it does not take (which [`read_js`] then refuses
/// with the reason) are read field by field.
pub fn from_js(rows: &JsValue) -> Result<Vec<Change>> {
    let encoded = encode_change_rows(rows);
    if let Some(pair) = encoded.dyn_ref::<Array>() {
        if let (Some(bytes), strings) = (pair.get(0).dyn_ref::<Uint8Array>(), pair.get(1)) {
            let strings: Vec<Arc<str>> = Array::from(&strings)
                .iter()
                .map(|s| s.as_string().map(Arc::from))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("change row encoder returned a non-string name"))?;
            return decode(&bytes.to_vec(), &strings);
        }
    }
    read_js(rows)
}

/// Change rows from the buffer `change_rows.js` wrote; names index `strings`.
fn decode(buf: &[u8], strings: &[Arc<str>]) -> Result<Vec<Change>> {
    let mut r = Reader { buf, at: 0 };
    let mut out = Vec::new();
    let mut site: Arc<[u8]> = Arc::from(&[][..]);
    while r.at < buf.len() {
        let table = r.name(strings)?;
        let cid = r.name(strings)?;
        let pk = r.bytes()?.to_vec();
        if r.u8()? == 1 {
            site = Arc::from(r.bytes()?);
        }
        let val = match r.u8()? {
            0 => Value::Null,
            1 => Value::Integer(r.f64()? as i64),
            2 => Value::Integer(r.i64()?),
            3 => Value::Real(r.f64()?),
            4 => Value::Text(
                String::from_utf8(r.bytes()?.to_vec())
                    .map_err(|_| invalid("change row encoder wrote invalid UTF-8"))?,
            ),
            5 => Value::Blob(r.bytes()?.to_vec()),
            _ => return Err(invalid("change row encoder wrote an unknown value tag")),
        };
        out.push(Change {
            table,
            pk,
            cid,
            val,
            col_version: r.int()?,
            db_version: r.int()?,
            site_id: site.clone(),
            cl: r.int()?,
            seq: r.int()?,
        });
    }
    Ok(out)
}

/// A cursor over the encoder's buffer; reading past its end is an error, not a panic.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| invalid("change row encoder wrote a truncated row"))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?
            .try_into()
            .map_err(|_| invalid("change row encoder wrote a truncated row"))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
    fn name(&mut self, strings: &[Arc<str>]) -> Result<Arc<str>> {
        let i = self.u32()?;
        strings
            .get(i)
            .cloned()
            .ok_or_else(|| invalid("change row encoder wrote an unknown name"))
    }
    /// A version field: a safe-integer number (exact as an f64) or a bigint.
    fn int(&mut self) -> Result<i64> {
        match self.u8()? {
            0 => Ok(self.f64()? as i64),
            1 => self.i64(),
            _ => Err(invalid("change row encoder wrote an unknown integer tag")),
        }
    }
}

/// Change rows from an array of objects or 9-tuples, read field by field; the errors of
/// [`from_js`] come from here.
fn read_js(rows: &JsValue) -> Result<Vec<Change>> {
    let rows = rows
        .dyn_ref::<Array>()
        .ok_or_else(|| invalid("applyChanges expects an array of change rows"))?;
    let keys: Vec<JsValue> = FIELDS.iter().map(|f| JsValue::from_str(f)).collect();
    let mut out = Vec::with_capacity(rows.length() as usize);
    for (i, row) in rows.iter().enumerate() {
        let field = |n: usize| -> Result<JsValue> {
            if let Some(tuple) = row.dyn_ref::<Array>() {
                Ok(tuple.get(n as u32))
            } else if row.is_object() {
                Reflect::get(&row, &keys[n]).map_err(|_| invalid("unreadable change row"))
            } else {
                Err(invalid(
                    "a change row must be an object or an array of 9 values",
                ))
            }
        };
        let change = (|| {
            Ok(Change {
                table: string(&field(0)?, "table")?.into(),
                pk: bytes(&field(1)?, "pk")?,
                cid: string(&field(2)?, "cid")?.into(),
                val: val_from_js(&field(3)?)?,
                col_version: int(&field(4)?, "col_version")?,
                db_version: int(&field(5)?, "db_version")?,
                site_id: bytes(&field(6)?, "site_id")?.into(),
                cl: int(&field(7)?, "cl")?,
                seq: int(&field(8)?, "seq")?,
            })
        })()
        .map_err(|e: Error| e.context(&format!("change row {i}")))?;
        out.push(change);
    }
    Ok(out)
}

fn invalid(msg: &str) -> Error {
    Error::InvalidChange(msg.into())
}

fn string(v: &JsValue, name: &str) -> Result<String> {
    v.as_string()
        .ok_or_else(|| invalid(&format!("{name} must be a string")))
}

fn bytes(v: &JsValue, name: &str) -> Result<Vec<u8>> {
    v.dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| invalid(&format!("{name} must be a Uint8Array")))
}

fn int(v: &JsValue, name: &str) -> Result<i64> {
    if v.is_bigint() {
        let big: &BigInt = v.unchecked_ref();
        return i64::try_from(big.clone()).map_err(|_| invalid(&format!("{name} is out of range")));
    }
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 => Ok(n as i64),
        _ => Err(invalid(&format!("{name} must be an integer"))),
    }
}

fn val_from_js(v: &JsValue) -> Result<Value> {
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if v.is_bigint() {
        return Ok(Value::Integer(int(v, "val")?));
    }
    if let Some(n) = v.as_f64() {
        return Ok(if binds_as_integer(n) {
            // In range and integral: the cast is exact (-0 becomes 0, as in wa-sqlite).
            Value::Integer(n as i64)
        } else {
            Value::Real(n)
        });
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Text(s));
    }
    if let Some(b) = v.dyn_ref::<Uint8Array>() {
        return Ok(Value::Blob(b.to_vec()));
    }
    if let Some(f) = v.dyn_ref::<Float64Array>() {
        if f.length() != 1 {
            return Err(invalid(&format!(
                "a Float64Array val (a REAL) must hold exactly one number, not {}",
                f.length()
            )));
        }
        return Ok(Value::Real(f.get_index(0)));
    }
    Err(invalid(
        "val must be null, a bigint (INTEGER), a number (INTEGER when an int32, else REAL), \
         a one-element Float64Array (REAL), a string or a Uint8Array",
    ))
}
