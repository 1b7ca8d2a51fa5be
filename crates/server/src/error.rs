//! The server's error type and the stable codes it sends in error frames.

use synqlite_core::Error as CoreError;

/// Everything the sync server can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The room name is not a plain name (empty, too long, path characters).
    #[error("invalid room name {0:?}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")]
    InvalidRoom(String),
    /// The token does not grant the room.
    #[error("{0}")]
    Unauthorized(String),
    /// A frame is larger than `--max-frame-bytes`.
    #[error("frame too large: {0}")]
    FrameTooLarge(String),
    /// The server is shutting down; reconnect later.
    #[error("the server is shutting down; reconnect later")]
    ShuttingDown,
    /// The client did not send its Hello in time.
    #[error("no Hello frame within {0} s")]
    HelloTimeout(u64),
    /// A message took longer than the message timeout to arrive.
    #[error("a message took more than {0} s to arrive")]
    MessageTimeout(u64),
    /// A cap was reached (connections, rooms); retry later.
    #[error("the server is busy: {0}")]
    ServerBusy(String),
    /// Another live connection of the room already speaks for this site id.
    #[error("another connection of this room uses the same site id; retry when it has closed")]
    SiteInUse,
    /// The client may not do this (a read-only token uploading, a change the app refuses).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The core (protocol, database) failed or refused the input.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A file or folder could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Loading the migrations folder failed.
    #[error(transparent)]
    Migrations(#[from] crate::migrate::MigrateError),
    /// A blocking database task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::auth::AuthError> for ServerError {
    fn from(e: crate::auth::AuthError) -> Self {
        ServerError::Unauthorized(e.message)
    }
}

impl ServerError {
    /// Whether the client should retry later (with backoff) rather than give up.
    pub fn retryable(&self) -> bool {
        match self {
            ServerError::ShuttingDown
            | ServerError::ServerBusy(_)
            | ServerError::SiteInUse
            | ServerError::HelloTimeout(_)
            | ServerError::MessageTimeout(_)
            | ServerError::Io { .. }
            | ServerError::Internal(_) => true,
            ServerError::Core(e) => e.code() == "INTERNAL" || e.code() == "SQLITE_BUSY",
            _ => false,
        }
    }

    /// The stable code sent in error frames.
    pub fn code(&self) -> &str {
        match self {
            ServerError::InvalidRoom(_) => "INVALID_ROOM",
            ServerError::Unauthorized(_) => "UNAUTHORIZED",
            ServerError::FrameTooLarge(_) => "FRAME_TOO_LARGE",
            ServerError::ShuttingDown => "SHUTTING_DOWN",
            ServerError::HelloTimeout(_) | ServerError::MessageTimeout(_) => "PROTOCOL_ERROR",
            ServerError::ServerBusy(_) => "SERVER_BUSY",
            ServerError::SiteInUse => "SITE_IN_USE",
            ServerError::Forbidden(_) => "FORBIDDEN",
            ServerError::Core(e) => e.code(),
            ServerError::Io { .. } | ServerError::Migrations(_) | ServerError::Internal(_) => {
                "INTERNAL"
            }
        }
    }
}
