//! Conversions between JS values and SQLite values.
//!
//! JS -> SQLite: `null`/`undefined` -> NULL; a number that is an integer within i64 -> INTEGER,
//! any other number -> REAL; `bigint` -> INTEGER (must fit i64); `boolean` -> 0/1; `string` ->
//! TEXT; `Uint8Array`/`ArrayBuffer` -> BLOB. Anything else is `BAD_PARAMS`.
//! SQLite -> JS: INTEGER -> number when |v| <= 2^53-1, else `bigint`; REAL -> number; TEXT ->
//! string; BLOB -> a fresh `Uint8Array`.

use js_sys::{Array, ArrayBuffer, BigInt, Object, Uint8Array};
use synqlite_core::rusqlite::types::{Value, ValueRef};
use synqlite_core::{Error, Params, Result};
use wasm_bindgen::{JsCast, JsValue};

const MAX_SAFE: i64 = (1 << 53) - 1;
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// Parameters from a JS array (positional), plain object (named) or nothing.
pub fn params_from_js(p: &JsValue) -> Result<Params> {
    if p.is_undefined() || p.is_null() {
        return Ok(Params::None);
    }
    if let Some(arr) = p.dyn_ref::<Array>() {
        let mut out = Vec::with_capacity(arr.length() as usize);
        for (i, v) in arr.iter().enumerate() {
            out.push(value_from_js(&v).map_err(|e| e.context(&format!("parameter {}", i + 1)))?);
        }
        return Ok(Params::Positional(out));
    }
    if p.is_object() && !p.is_instance_of::<Uint8Array>() && !p.is_instance_of::<ArrayBuffer>() {
        let obj: &Object = p.unchecked_ref();
        let entries = Object::entries(obj);
        let mut out = Vec::with_capacity(entries.length() as usize);
        for entry in entries.iter() {
            let pair: Array = entry.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            let value =
                value_from_js(&pair.get(1)).map_err(|e| e.context(&format!("parameter {key}")))?;
            out.push((key, value));
        }
        return Ok(Params::Named(out));
    }
    Err(Error::BadParams(
        "parameters must be an array (positional) or a plain object (named)".into(),
    ))
}

/// One JS value as a SQLite value.
pub fn value_from_js(v: &JsValue) -> Result<Value> {
    if let Some(n) = v.as_f64() {
        return Ok(number(n));
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Text(s));
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Integer(i64::from(b)));
    }
    if v.is_bigint() {
        let big: &BigInt = v.unchecked_ref();
        return i64::try_from(big.clone())
            .map(Value::Integer)
            .map_err(|_| Error::BadParams("bigint out of the 64-bit signed range".into()));
    }
    if let Some(bytes) = v.dyn_ref::<Uint8Array>() {
        return Ok(Value::Blob(bytes.to_vec()));
    }
    if let Some(buf) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Value::Blob(Uint8Array::new(buf).to_vec()));
    }
    let kind = v.js_typeof().as_string().unwrap_or_default();
    Err(Error::BadParams(format!(
        "unsupported value of type {kind}: use null, number, bigint, boolean, string or Uint8Array"
    )))
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && (-TWO_63..TWO_63).contains(&n) {
        // Integral and inside i64: the cast is exact.
        Value::Integer(n as i64)
    } else {
        Value::Real(n)
    }
}

/// One SQLite cell as a JS value.
pub fn cell_to_js(cell: ValueRef<'_>) -> JsValue {
    match cell {
        ValueRef::Null => JsValue::NULL,
        ValueRef::Integer(i) => integer_to_js(i),
        ValueRef::Real(f) => JsValue::from_f64(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => JsValue::from_str(s),
            Err(_) => JsValue::from_str(&String::from_utf8_lossy(t)),
        },
        ValueRef::Blob(b) => Uint8Array::from(b).into(),
    }
}

/// An owned SQLite value as a JS value.
#[allow(dead_code)]
pub fn value_to_js(v: &Value) -> JsValue {
    cell_to_js(ValueRef::from(v))
}

/// Whether `i` is exact as a JS number (within ±(2^53 - 1)).
pub fn is_safe_integer(i: i64) -> bool {
    (-MAX_SAFE..=MAX_SAFE).contains(&i)
}

/// An INTEGER as a number when exact, else a bigint.
pub fn integer_to_js(i: i64) -> JsValue {
    if is_safe_integer(i) {
        JsValue::from_f64(i as f64)
    } else {
        BigInt::from(i).into()
    }
}
