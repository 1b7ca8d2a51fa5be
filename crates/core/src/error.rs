//! The error type of synqlite and its stable codes.
//!
//! Every failure that reaches a caller carries a code string that never changes between releases
//! (`SQLITE_CONSTRAINT`, `BAD_PARAMS`, `CLOSED`, ...). The JS boundary copies it to `error.code`;
//! the sync server sends it in error frames.

use crate::result_codes;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in synqlite, with the information a caller needs to react.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite rejected the statement or failed to run it.
    #[error("{message}")]
    Sqlite {
        /// Extended result code (`SQLITE_CONSTRAINT_UNIQUE` is 2067).
        extended_code: i32,
        /// SQLite's own message (`UNIQUE constraint failed: songs.id`).
        message: String,
    },
    /// Parameters do not fit the statement (count, names, unsupported value types).
    #[error("{0}")]
    BadParams(String),
    /// The database, or the storage it lives on, cannot be used.
    #[error("{0}")]
    StorageUnavailable(String),
    /// The database was closed.
    #[error("the database is closed; open it again with openDatabase()")]
    Closed,
    /// An argument other than SQL parameters is invalid (a database name, an option).
    #[error("{0}")]
    InvalidArgument(String),
    /// Failure inside synqlite itself.
    #[error("{0}")]
    Internal(String),
    /// A table cannot be made a replicated table (crr): the message names the table and the
    /// rule it breaks (no primary key, nullable primary key, AUTOINCREMENT, UNIQUE index besides
    /// the primary key, foreign key, NOT NULL column without DEFAULT, ...).
    #[error("{0}")]
    CrrUnsupported(String),
    /// A change row handed to `apply_changes` cannot be applied: unknown table or column,
    /// malformed packed primary key, bad site id. Nothing of the batch was applied.
    #[error("{0}")]
    InvalidChange(String),
}

impl Error {
    /// Stable code for this error, e.g. `SQLITE_CONSTRAINT` or `BAD_PARAMS`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Sqlite { extended_code, .. } => result_codes::primary_name(*extended_code),
            Error::BadParams(_) => "BAD_PARAMS",
            Error::StorageUnavailable(_) => "STORAGE_UNAVAILABLE",
            Error::Closed => "CLOSED",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Internal(_) => "INTERNAL",
            Error::CrrUnsupported(_) => "CRR_UNSUPPORTED",
            Error::InvalidChange(_) => "INVALID_CHANGE",
        }
    }

    /// The extended SQLite code name (`SQLITE_CONSTRAINT_UNIQUE`) for SQLite errors.
    pub fn extended_code(&self) -> Option<&'static str> {
        match self {
            Error::Sqlite { extended_code, .. } => {
                Some(result_codes::extended_name(*extended_code))
            }
            _ => None,
        }
    }

    /// A SQLite error with the given extended code and message.
    pub fn sqlite(extended_code: i32, message: impl Into<String>) -> Self {
        Error::Sqlite {
            extended_code,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match err {
            E::SqliteFailure(e, msg) => {
                let message = msg.unwrap_or_else(|| e.to_string());
                Error::sqlite(e.extended_code, message)
            }
            E::SqlInputError {
                error,
                msg,
                sql,
                offset,
            } => Error::sqlite(
                error.extended_code,
                format!("{msg} (at offset {offset} of: {sql})"),
            ),
            E::InvalidParameterCount(got, expected) => Error::BadParams(format!(
                "the statement expects {expected} parameter(s), got {got}"
            )),
            E::InvalidParameterName(name) => {
                Error::BadParams(format!("the statement has no parameter named {name}"))
            }
            E::ToSqlConversionFailure(e) => Error::BadParams(e.to_string()),
            E::MultipleStatement => {
                Error::BadParams("multiple statements given where one was expected".into())
            }
            E::InvalidPath(p) => Error::InvalidArgument(format!("invalid path: {}", p.display())),
            E::ExecuteReturnedResults => Error::Internal("statement returned rows".into()),
            other => Error::sqlite(rusqlite::ffi::SQLITE_ERROR, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_family = "wasm"), test)]
    fn codes_are_stable() {
        assert_eq!(Error::sqlite(2067, "x").code(), "SQLITE_CONSTRAINT");
        assert_eq!(
            Error::sqlite(2067, "x").extended_code(),
            Some("SQLITE_CONSTRAINT_UNIQUE")
        );
        assert_eq!(Error::BadParams("x".into()).code(), "BAD_PARAMS");
        assert_eq!(Error::Closed.code(), "CLOSED");
        assert_eq!(
            Error::StorageUnavailable("x".into()).code(),
            "STORAGE_UNAVAILABLE"
        );
        assert_eq!(Error::Closed.extended_code(), None);
    }
}
