//! Names of SQLite result codes (`SQLITE_CONSTRAINT`, `SQLITE_CONSTRAINT_UNIQUE`, ...).
//!
//! The JS API reports errors by these names, so they must match SQLite's own spelling.

/// Name of a primary result code (the low byte of an extended code), e.g. `SQLITE_BUSY`.
pub fn primary_name(code: i32) -> &'static str {
    match code & 0xff {
        0 => "SQLITE_OK",
        1 => "SQLITE_ERROR",
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        12 => "SQLITE_NOTFOUND",
        13 => "SQLITE_FULL",
        14 => "SQLITE_CANTOPEN",
        15 => "SQLITE_PROTOCOL",
        16 => "SQLITE_EMPTY",
        17 => "SQLITE_SCHEMA",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        22 => "SQLITE_NOLFS",
        23 => "SQLITE_AUTH",
        24 => "SQLITE_FORMAT",
        25 => "SQLITE_RANGE",
        26 => "SQLITE_NOTADB",
        27 => "SQLITE_NOTICE",
        28 => "SQLITE_WARNING",
        100 => "SQLITE_ROW",
        101 => "SQLITE_DONE",
        _ => "SQLITE_ERROR",
    }
}

/// Name of an extended result code, e.g. `SQLITE_CONSTRAINT_PRIMARYKEY`; falls back to the
/// primary name when the code carries no extended information or is not listed.
pub fn extended_name(code: i32) -> &'static str {
    match code {
        275 => "SQLITE_CONSTRAINT_CHECK",
        531 => "SQLITE_CONSTRAINT_COMMITHOOK",
        787 => "SQLITE_CONSTRAINT_FOREIGNKEY",
        1043 => "SQLITE_CONSTRAINT_FUNCTION",
        1299 => "SQLITE_CONSTRAINT_NOTNULL",
        1555 => "SQLITE_CONSTRAINT_PRIMARYKEY",
        1811 => "SQLITE_CONSTRAINT_TRIGGER",
        2067 => "SQLITE_CONSTRAINT_UNIQUE",
        2323 => "SQLITE_CONSTRAINT_VTAB",
        2579 => "SQLITE_CONSTRAINT_ROWID",
        2835 => "SQLITE_CONSTRAINT_PINNED",
        3091 => "SQLITE_CONSTRAINT_DATATYPE",
        261 => "SQLITE_BUSY_RECOVERY",
        517 => "SQLITE_BUSY_SNAPSHOT",
        773 => "SQLITE_BUSY_TIMEOUT",
        262 => "SQLITE_LOCKED_SHAREDCACHE",
        264 => "SQLITE_READONLY_RECOVERY",
        520 => "SQLITE_READONLY_CANTLOCK",
        776 => "SQLITE_READONLY_ROLLBACK",
        1032 => "SQLITE_READONLY_DBMOVED",
        266 => "SQLITE_IOERR_READ",
        522 => "SQLITE_IOERR_SHORT_READ",
        778 => "SQLITE_IOERR_WRITE",
        1034 => "SQLITE_IOERR_FSYNC",
        1546 => "SQLITE_IOERR_TRUNCATE",
        1802 => "SQLITE_IOERR_FSTAT",
        2570 => "SQLITE_IOERR_DELETE",
        3338 => "SQLITE_IOERR_NOMEM",
        267 => "SQLITE_CORRUPT_VTAB",
        523 => "SQLITE_CORRUPT_SEQUENCE",
        779 => "SQLITE_CORRUPT_INDEX",
        513 => "SQLITE_ERROR_RETRY",
        257 => "SQLITE_ERROR_MISSING_COLLSEQ",
        769 => "SQLITE_ERROR_SNAPSHOT",
        516 => "SQLITE_ABORT_ROLLBACK",
        other => primary_name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_family = "wasm"), test)]
    fn names_match_sqlite_constants() {
        use rusqlite::ffi;
        assert_eq!(primary_name(ffi::SQLITE_CONSTRAINT), "SQLITE_CONSTRAINT");
        assert_eq!(
            primary_name(ffi::SQLITE_CONSTRAINT_UNIQUE),
            "SQLITE_CONSTRAINT"
        );
        assert_eq!(
            extended_name(ffi::SQLITE_CONSTRAINT_UNIQUE),
            "SQLITE_CONSTRAINT_UNIQUE"
        );
        assert_eq!(
            extended_name(ffi::SQLITE_CONSTRAINT_PRIMARYKEY),
            "SQLITE_CONSTRAINT_PRIMARYKEY"
        );
        assert_eq!(
            extended_name(ffi::SQLITE_CONSTRAINT_NOTNULL),
            "SQLITE_CONSTRAINT_NOTNULL"
        );
        assert_eq!(
            extended_name(ffi::SQLITE_CONSTRAINT_CHECK),
            "SQLITE_CONSTRAINT_CHECK"
        );
        assert_eq!(
            extended_name(ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            "SQLITE_CONSTRAINT_FOREIGNKEY"
        );
        assert_eq!(extended_name(ffi::SQLITE_IOERR_FSYNC), "SQLITE_IOERR_FSYNC");
        assert_eq!(
            extended_name(ffi::SQLITE_ABORT_ROLLBACK),
            "SQLITE_ABORT_ROLLBACK"
        );
        assert_eq!(primary_name(ffi::SQLITE_FULL), "SQLITE_FULL");
        assert_eq!(extended_name(ffi::SQLITE_BUSY), "SQLITE_BUSY");
    }
}
