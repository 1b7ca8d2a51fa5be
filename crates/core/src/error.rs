//! The error type of synqlite and its stable codes.
//!
//! Every failure that reaches a caller carries a code string that never changes between releases
//! (`SQLITE_CONSTRAINT`, `BAD_PARAMS`, `CLOSED`, ...). The JS boundary copies it to `error.code`;
//! the sync server sends it in error frames, with whether trying again later may succeed
//! ([`Error::is_retryable`], [`code_is_retryable`]).

use crate::result_codes;

/// Every message of [`Error::VersionExhausted`] starts with this, so the error keeps its code
/// when it crosses SQLite (a trigger or SQL function failing with it comes back as a SQLite
/// error carrying this message).
pub const VERSION_EXHAUSTED_PREFIX: &str = "versions exhausted: ";

/// Whether an error with stable code `code` may go away by itself, so a client should reconnect
/// (with backoff) instead of giving up: a busy or shutting-down server, a rate limit, a site id
/// still attached to another connection, a transient database or internal failure. Protocol,
/// authorization, schema and invalid-change errors are permanent (`false`), as is every code
/// this function does not know.
pub fn code_is_retryable(code: &str) -> bool {
    matches!(
        code,
        "SERVER_BUSY"
            | "SHUTTING_DOWN"
            | "RATE_LIMITED"
            | "SITE_IN_USE"
            | "INTERNAL"
            | "SQLITE_BUSY"
            | "SQLITE_LOCKED"
    )
}

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
    /// The database holds another version of the declarative schema and automigration was
    /// not asked for; the message names the stored and the wanted version.
    #[error("{0}")]
    SchemaMismatch(String),
    /// The database holds a declarative schema of another name (reset was not asked for).
    #[error("{0}")]
    SchemaNameMismatch(String),
    /// A schema or migration fails when run a second time; the message says to use
    /// `IF NOT EXISTS`.
    #[error("{0}")]
    SchemaNotIdempotent(String),
    /// Automigration cannot make this change (e.g. a changed primary key).
    #[error("{0}")]
    AutomigrateUnsupported(String),
    /// A migration file name does not start with `<unix-timestamp>_`, or is given twice.
    #[error("{0}")]
    MigrationName(String),
    /// An already-applied migration's text changed (checksum differs).
    #[error("{0}")]
    MigrationChanged(String),
    /// A migration file failed and was rolled back; the files before it stay applied.
    #[error("{message}")]
    MigrationFailed {
        /// The migration's file name.
        file: String,
        /// SQLite's extended result code of the failure.
        extended_code: i32,
        /// Message naming the file, with SQLite's message.
        message: String,
    },
    /// A sync frame is malformed, truncated, of an unknown kind, or arrives when the protocol
    /// does not expect it.
    #[error("{0}")]
    Protocol(String),
    /// The peer speaks another version of the sync protocol.
    #[error("{0}")]
    ProtocolVersion(String),
    /// The sync server refused the token for this room.
    #[error("{0}")]
    Unauthorized(String),
    /// A version counter of the database would pass
    /// [`MAX_ACCEPTED_VERSION`](crate::crdt::MAX_ACCEPTED_VERSION): its `db_version`, or the
    /// `col_version` / causal length of one row. The write is refused; the message (which
    /// starts with [`VERSION_EXHAUSTED_PREFIX`]) says which counter.
    #[error("{0}")]
    VersionExhausted(String),
    /// An error the sync peer reported in an error frame, with the peer's code.
    #[error("{message}")]
    Remote {
        /// The peer's stable error code.
        code: String,
        /// The peer's message.
        message: String,
        /// Whether the peer said a retry may succeed.
        retryable: bool,
    },
}

impl Error {
    /// Prefixes the message with where the error happened, keeping the code.
    pub fn context(self, at: &str) -> Error {
        match self {
            Error::Sqlite {
                extended_code,
                message,
            } => Error::Sqlite {
                extended_code,
                message: format!("{at}: {message}"),
            },
            Error::BadParams(m) => Error::BadParams(format!("{at}: {m}")),
            Error::StorageUnavailable(m) => Error::StorageUnavailable(format!("{at}: {m}")),
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{at}: {m}")),
            Error::Internal(m) => Error::Internal(format!("{at}: {m}")),
            Error::CrrUnsupported(m) => Error::CrrUnsupported(format!("{at}: {m}")),
            Error::InvalidChange(m) => Error::InvalidChange(format!("{at}: {m}")),
            Error::SchemaMismatch(m) => Error::SchemaMismatch(format!("{at}: {m}")),
            Error::SchemaNameMismatch(m) => Error::SchemaNameMismatch(format!("{at}: {m}")),
            Error::SchemaNotIdempotent(m) => Error::SchemaNotIdempotent(format!("{at}: {m}")),
            Error::AutomigrateUnsupported(m) => Error::AutomigrateUnsupported(format!("{at}: {m}")),
            Error::MigrationName(m) => Error::MigrationName(format!("{at}: {m}")),
            Error::MigrationChanged(m) => Error::MigrationChanged(format!("{at}: {m}")),
            Error::MigrationFailed {
                file,
                extended_code,
                message,
            } => Error::MigrationFailed {
                file,
                extended_code,
                message: format!("{at}: {message}"),
            },
            Error::Protocol(m) => Error::Protocol(format!("{at}: {m}")),
            Error::ProtocolVersion(m) => Error::ProtocolVersion(format!("{at}: {m}")),
            Error::Unauthorized(m) => Error::Unauthorized(format!("{at}: {m}")),
            // The message keeps its prefix (it identifies the error across SQLite).
            Error::VersionExhausted(m) => Error::VersionExhausted(format!("{m} ({at})")),
            Error::Remote {
                code,
                message,
                retryable,
            } => Error::Remote {
                code,
                message: format!("{at}: {message}"),
                retryable,
            },
            Error::Closed => Error::Closed,
        }
    }

    /// Stable code for this error, e.g. `SQLITE_CONSTRAINT` or `BAD_PARAMS`.
    pub fn code(&self) -> &str {
        match self {
            Error::Sqlite { extended_code, .. } => result_codes::primary_name(*extended_code),
            Error::BadParams(_) => "BAD_PARAMS",
            Error::StorageUnavailable(_) => "STORAGE_UNAVAILABLE",
            Error::Closed => "CLOSED",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Internal(_) => "INTERNAL",
            Error::CrrUnsupported(_) => "CRR_UNSUPPORTED",
            Error::InvalidChange(_) => "INVALID_CHANGE",
            Error::SchemaMismatch(_) => "SCHEMA_MISMATCH",
            Error::SchemaNameMismatch(_) => "SCHEMA_NAME_MISMATCH",
            Error::SchemaNotIdempotent(_) => "SCHEMA_NOT_IDEMPOTENT",
            Error::AutomigrateUnsupported(_) => "AUTOMIGRATE_UNSUPPORTED",
            Error::MigrationName(_) => "MIGRATION_NAME",
            Error::MigrationChanged(_) => "MIGRATION_CHANGED",
            Error::MigrationFailed { .. } => "MIGRATION_FAILED",
            Error::Protocol(_) => "PROTOCOL_ERROR",
            Error::ProtocolVersion(_) => "PROTOCOL_VERSION",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::VersionExhausted(_) => "VERSION_EXHAUSTED",
            Error::Remote { code, .. } => code,
        }
    }

    /// Whether trying again later may succeed ([`code_is_retryable`] of [`Error::code`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote { retryable, .. } => *retryable,
            other => code_is_retryable(other.code()),
        }
    }

    /// A [`Error::VersionExhausted`] whose message is [`VERSION_EXHAUSTED_PREFIX`] + `detail`.
    pub fn version_exhausted(detail: impl std::fmt::Display) -> Self {
        Error::VersionExhausted(format!("{VERSION_EXHAUSTED_PREFIX}{detail}"))
    }

    /// The extended SQLite code name (`SQLITE_CONSTRAINT_UNIQUE`) for SQLite errors and failed
    /// migrations.
    pub fn extended_code(&self) -> Option<&'static str> {
        match self {
            Error::Sqlite { extended_code, .. } | Error::MigrationFailed { extended_code, .. } => {
                Some(result_codes::extended_name(*extended_code))
            }
            _ => None,
        }
    }

    /// `SQLITE_FULL` caused by the origin's storage quota; `detail` says what failed.
    pub fn quota_exceeded(detail: &str) -> Self {
        Error::sqlite(13, quota_exceeded_message(detail))
    }

    /// A SQLite error with the given extended code and message.
    pub fn sqlite(extended_code: i32, message: impl Into<String>) -> Self {
        Error::Sqlite {
            extended_code,
            message: message.into(),
        }
    }
}

/// The message of a `SQLITE_FULL` caused by the origin's storage quota: `detail` says what
/// failed. One wording for every store that can hit the quota (the browser's IndexedDB and OPFS).
pub fn quota_exceeded_message(detail: &str) -> String {
    format!(
        "storage quota exceeded: {detail}; free some space or request persistent storage with \
         storage.persist()"
    )
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match err {
            E::SqliteFailure(e, msg) => {
                let message = msg.unwrap_or_else(|| e.to_string());
                if message.starts_with(VERSION_EXHAUSTED_PREFIX) {
                    // Raised by a local-write trigger or `crsql_next_db_version()`.
                    return Error::VersionExhausted(message);
                }
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
        assert_eq!(Error::SchemaMismatch("x".into()).code(), "SCHEMA_MISMATCH");
        assert_eq!(
            Error::SchemaNameMismatch("x".into()).code(),
            "SCHEMA_NAME_MISMATCH"
        );
        assert_eq!(
            Error::SchemaNotIdempotent("x".into()).code(),
            "SCHEMA_NOT_IDEMPOTENT"
        );
        assert_eq!(
            Error::AutomigrateUnsupported("x".into()).code(),
            "AUTOMIGRATE_UNSUPPORTED"
        );
        assert_eq!(Error::MigrationName("x".into()).code(), "MIGRATION_NAME");
        assert_eq!(
            Error::MigrationChanged("x".into()).code(),
            "MIGRATION_CHANGED"
        );
        let failed = Error::MigrationFailed {
            file: "1_a.sql".into(),
            extended_code: 2067,
            message: "m".into(),
        };
        assert_eq!(failed.code(), "MIGRATION_FAILED");
        assert_eq!(failed.extended_code(), Some("SQLITE_CONSTRAINT_UNIQUE"));
        let exhausted = Error::version_exhausted("db_version");
        assert_eq!(exhausted.code(), "VERSION_EXHAUSTED");
        assert!(!exhausted.is_retryable());
        // Crossing SQLite (a trigger's RAISE, a SQL function's error) keeps the code.
        let through = Error::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER),
            Some(exhausted.to_string()),
        ));
        assert_eq!(through.code(), "VERSION_EXHAUSTED");
        assert_eq!(through.to_string(), exhausted.to_string());
    }

    #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_family = "wasm"), test)]
    fn retryable_codes() {
        for code in [
            "SERVER_BUSY",
            "SHUTTING_DOWN",
            "RATE_LIMITED",
            "SITE_IN_USE",
            "INTERNAL",
        ] {
            assert!(code_is_retryable(code), "{code}");
        }
        for code in [
            "PROTOCOL_ERROR",
            "PROTOCOL_VERSION",
            "UNAUTHORIZED",
            "SCHEMA_MISMATCH",
            "INVALID_CHANGE",
            "VERSION_EXHAUSTED",
            "SQLITE_CONSTRAINT",
            "",
        ] {
            assert!(!code_is_retryable(code), "{code}");
        }
        assert!(Error::sqlite(rusqlite::ffi::SQLITE_BUSY, "busy").is_retryable());
        assert!(Error::sqlite(517, "busy snapshot").is_retryable());
        assert!(Error::Internal("x".into()).is_retryable());
        assert!(!Error::Protocol("x".into()).is_retryable());
        assert!(!Error::InvalidChange("x".into()).is_retryable());
        // A peer's own verdict decides, whatever its code.
        let remote = |code: &str, retryable| Error::Remote {
            code: code.into(),
            message: "m".into(),
            retryable,
        };
        assert!(remote("SERVER_BUSY", true).is_retryable());
        assert!(remote("PROTOCOL_ERROR", true).is_retryable());
        assert!(!remote("SERVER_BUSY", false).is_retryable());
    }
}
