//! Figures, the human-readable summary and the JSON files.

use serde_json::{json, Map, Value};
use std::path::Path;

/// The result of one scenario run.
pub struct Outcome {
    /// Workload name, e.g. `relay 1000 clients / 100 rooms, 1 write/2 s`.
    pub name: String,
    /// Every figure (`group`, `name`, `scenario`, parameters, ...): the detail record.
    pub record: Map<String, Value>,
    /// Headline figures for `latest.json`: (metric, unit, value).
    pub rows: Vec<(String, &'static str, Option<f64>)>,
    /// Lines of the summary.
    pub summary: Vec<String>,
}

impl Outcome {
    /// An outcome named `name` for `scenario`.
    pub fn new(name: String, scenario: &str) -> Outcome {
        let mut record = Map::new();
        record.insert("group".into(), json!("server"));
        record.insert("name".into(), json!(name));
        record.insert("scenario".into(), json!(scenario));
        record.insert("date".into(), json!(iso_now()));
        Outcome {
            name,
            record,
            rows: Vec::new(),
            summary: Vec::new(),
        }
    }

    /// Sets a figure of the record.
    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.record.insert(key.into(), v.into());
    }

    /// Adds a headline row.
    pub fn row(&mut self, metric: &str, unit: &'static str, v: Option<f64>) {
        self.rows.push((metric.to_owned(), unit, v));
    }

    /// Adds a summary line.
    pub fn line(&mut self, s: impl Into<String>) {
        self.summary.push(s.into());
    }

    /// The `latest.json` rows: `{ workload, unit, synqlite, anchor, anchor_value, ratio }`.
    pub fn flat_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|(metric, unit, v)| {
                json!({
                    "workload": format!("server: {}: {metric}", self.name),
                    "unit": unit,
                    "synqlite": v.map(|x| round(x, 3)),
                    "anchor": null,
                    "anchor_value": null,
                    "ratio": null,
                })
            })
            .collect()
    }
}

/// `x` rounded to `d` decimals.
pub fn round(x: f64, d: i32) -> f64 {
    let f = 10f64.powi(d);
    (x * f).round() / f
}

/// `Some(x)` rounded, `None` (JSON null) for NaN.
pub fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(round(x, 3))
    } else {
        Value::Null
    }
}

/// Optional figure.
pub fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// Nearest-rank percentile of sorted values (`None` when empty).
pub fn pct<T: Copy + Into<f64>>(sorted: &[T], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1].into())
}

/// `12.3` / `-` for a missing figure.
pub fn f(x: Option<f64>, d: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.d$}"))
}

/// A period for names: `500 ms`, `2 s`.
pub fn period_name(ms: u64) -> String {
    if ms >= 1000 && ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn iso_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Merges `items` into the JSON array in `path` (created if missing): an existing item with
/// the same `key` value is replaced, others are appended.
pub fn merge_into(path: &Path, key: &str, items: &[Value]) -> Result<(), String> {
    let mut all: Vec<Value> = match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => serde_json::from_str(&s)
            .map_err(|e| format!("{}: not a JSON array: {e}", path.display()))?,
        _ => Vec::new(),
    };
    for item in items {
        let k = item.get(key);
        match all.iter_mut().find(|x| x.get(key) == k) {
            Some(slot) => *slot = item.clone(),
            None => all.push(item.clone()),
        }
    }
    std::fs::write(path, pretty_array(&all)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Keys written first, in this order (the rest follow alphabetically): the `latest.json` row
/// fields, then the record's identity.
const FIRST_KEYS: [&str; 9] = [
    "workload",
    "unit",
    "synqlite",
    "anchor",
    "anchor_value",
    "ratio",
    "group",
    "name",
    "scenario",
];

/// A JSON array, two-space indented, each object's keys in [`FIRST_KEYS`] order first.
fn pretty_array(items: &[Value]) -> String {
    let indent = |s: String, pad: &str| s.replace('\n', &format!("\n{pad}"));
    let mut out = String::from("[\n");
    for (i, item) in items.iter().enumerate() {
        let text = match item {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by_key(|k| {
                    let pos = FIRST_KEYS.iter().position(|f| f == k);
                    (pos.unwrap_or(FIRST_KEYS.len()), (*k).clone())
                });
                let fields: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let v = serde_json::to_string_pretty(&m[*k]).unwrap_or_default();
                        format!("    {}: {}", Value::String((*k).clone()), indent(v, "    "))
                    })
                    .collect();
                format!("  {{\n{}\n  }}", fields.join(",\n"))
            }
            v => format!(
                "  {}",
                indent(serde_json::to_string_pretty(v).unwrap_or_default(), "  ")
            ),
        };
        out.push_str(&text);
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_names() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(pct(&v, 50.0), Some(50.0));
        assert_eq!(pct(&v, 99.0), Some(99.0));
        assert_eq!(pct(&v, 100.0), Some(100.0));
        assert_eq!(pct::<u32>(&[], 50.0), None);
        assert_eq!(period_name(2000), "2 s");
        assert_eq!(period_name(500), "500 ms");
        assert_eq!(iso_now().len(), 20);
    }

    #[test]
    fn merge_replaces_by_key() {
        let dir = std::env::temp_dir().join(format!("lt-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.json");
        merge_into(&p, "workload", &[json!({"workload": "a", "v": 1})]).unwrap();
        merge_into(
            &p,
            "workload",
            &[
                json!({"workload": "b", "v": 2}),
                json!({"workload": "a", "v": 3}),
            ],
        )
        .unwrap();
        let all: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(
            all,
            vec![
                json!({"workload": "a", "v": 3}),
                json!({"workload": "b", "v": 2})
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
