//! Column definitions cut out of `CREATE TABLE` text.
//!
//! Automigration adds a column with `ALTER TABLE t ADD COLUMN <definition>`, and the definition
//! should be the one the schema wrote (type, `DEFAULT`, `CHECK`, `COLLATE`, ...), not a
//! reconstruction from `pragma_table_info` that loses constraints. This is a small tokenizer
//! that knows SQLite's quoting (`'..'`, `".."`, `` `..` ``, `[..]`) and comments, finds the
//! parenthesized column list and splits it at top-level commas.

/// `(column name, definition)` for each column of a `CREATE TABLE` statement, in order; table
/// constraints (`PRIMARY KEY (..)`, `UNIQUE`, `CHECK`, `FOREIGN KEY`, `CONSTRAINT`) are left
/// out. Empty when the text has no column list (`CREATE TABLE .. AS SELECT`).
pub(crate) fn column_defs(create_sql: &str) -> Vec<(String, String)> {
    let Some(pieces) = split_body(create_sql) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for piece in pieces {
        let start = skip_space_and_comments(piece);
        let def = piece[start..].trim_end();
        let Some((name, quoted)) = first_word(def) else {
            continue;
        };
        let constraint = !quoted
            && ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]
                .iter()
                .any(|k| name.eq_ignore_ascii_case(k));
        if !constraint {
            out.push((name, def.to_owned()));
        }
    }
    out
}

/// The text between the first top-level `(` and its `)`, split at top-level commas.
fn split_body(sql: &str) -> Option<Vec<&str>> {
    let bytes = sql.as_bytes();
    let mut depth = 0usize;
    let mut start = None;
    let mut piece_start = 0;
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' | b'`' => i = skip_quoted(bytes, i, bytes[i]),
            b'[' => i = skip_quoted(bytes, i, b']'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'(' => {
                depth += 1;
                if depth == 1 && start.is_none() {
                    start = Some(i + 1);
                    piece_start = i + 1;
                }
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && start.is_some() {
                    pieces.push(&sql[piece_start..i]);
                    return Some(pieces);
                }
                i += 1;
            }
            b',' if depth == 1 => {
                pieces.push(&sql[piece_start..i]);
                piece_start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Index just past the quoted token opening at `open` and closing with `close` (a doubled
/// closing quote inside is read as two adjacent tokens, which skips it the same way).
fn skip_quoted(bytes: &[u8], open: usize, close: u8) -> usize {
    bytes[open + 1..]
        .iter()
        .position(|&b| b == close)
        .map_or(bytes.len(), |n| open + 1 + n + 1)
}

/// Length of the leading whitespace and comments of `s`.
fn skip_space_and_comments(s: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &s[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            i += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            i += after.find("*/").map_or(trimmed.len(), |n| n + 4);
        } else {
            return i;
        }
    }
}

/// The first identifier of `s` (unquoted), and whether it was quoted.
fn first_word(s: &str) -> Option<(String, bool)> {
    let first = s.chars().next()?;
    let close = match first {
        '"' => Some('"'),
        '`' => Some('`'),
        '[' => Some(']'),
        '\'' => Some('\''),
        _ => None,
    };
    match close {
        Some(close) => {
            let mut name = String::new();
            let mut chars = s[first.len_utf8()..].chars().peekable();
            while let Some(c) = chars.next() {
                if c == close {
                    if close != ']' && chars.peek() == Some(&close) {
                        chars.next();
                        name.push(c);
                        continue;
                    }
                    return Some((name, true));
                }
                name.push(c);
            }
            None
        }
        None => {
            let name: String = s
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$' || !c.is_ascii())
                .collect();
            (!name.is_empty()).then_some((name, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::column_defs;

    #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_family = "wasm"), test)]
    fn cuts_column_definitions() {
        let sql = "CREATE TABLE \"my (t)\" ( -- songs\n  id TEXT PRIMARY KEY NOT NULL,\n  \
                   /* c */ \"ti,tle\" TEXT NOT NULL DEFAULT 'a,(b' CHECK (length(\"ti,tle\") > 0),\n  \
                   [n x] INT, -- trailing\n  CONSTRAINT c CHECK (id <> ''),\n  \
                   PRIMARY KEY (id)\n)";
        let defs = column_defs(sql);
        let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "ti,tle", "n x"]);
        assert_eq!(
            defs[1].1,
            "\"ti,tle\" TEXT NOT NULL DEFAULT 'a,(b' CHECK (length(\"ti,tle\") > 0)"
        );
        assert_eq!(
            defs[2].1,
            "[n x] INT, -- trailing".replace(", -- trailing", "")
        );
        assert!(column_defs("CREATE TABLE t AS SELECT 1").is_empty());
    }
}
