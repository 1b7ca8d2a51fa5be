//! The `migrate` subcommands: create and check ordered migration files in a folder.
//!
//! A migration is a file `<unix-ts>_<name>.sql` (10-digit unix seconds, then a lowercase
//! name). Files run once each, in timestamp order (`synqlite_core::schema::apply_migrations`),
//! so they should be idempotent anyway (`IF NOT EXISTS`, `INSERT OR IGNORE`): `check` runs each
//! one twice on a fresh in-memory database.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use synqlite_core::schema::{check_migrations, migration_timestamp, CheckProblem, Migration};

/// What can go wrong in the `migrate` subcommands (besides problems in the files, which
/// [`check_dir`] returns as data).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The migration name given to `new` is not usable in a file name.
    #[error(
        "bad migration name {0:?}: use lowercase letters, digits and '_' (e.g. add_playlists)"
    )]
    BadName(String),
    /// Reading or writing the folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file is not UTF-8 text.
    #[error("{0}: not UTF-8 text")]
    NotText(PathBuf),
    /// The core failed (opening the in-memory database).
    #[error(transparent)]
    Core(#[from] synqlite_core::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MigrateError + '_ {
    move |source| MigrateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `<dir>/<unix-ts>_<name>.sql` (creating `dir` if needed) and returns its path.
///
/// The timestamp is `now` (unix seconds), raised past the newest existing migration so the new
/// file always runs last, even when two are created in the same second.
pub fn new_migration(dir: &Path, name: &str, now: u64) -> Result<PathBuf, MigrateError> {
    let name = name.strip_suffix(".sql").unwrap_or(name);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(MigrateError::BadName(name.to_owned()));
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let newest = sql_files(dir)?
        .iter()
        .filter_map(|p| file_name(p).and_then(|n| migration_timestamp(&n).ok()))
        .max();
    let ts = newest.map_or(now, |n| now.max(n + 1));
    let path = dir.join(format!("{ts}_{name}.sql"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let template = format!(
        "-- {name}\n\
         -- Runs once, in its own transaction, after the migrations before it. Keep it idempotent\n\
         -- (CREATE ... IF NOT EXISTS, INSERT OR IGNORE): `synqlite-server migrate check` runs it twice.\n\
         -- Replicated tables: primary key NOT NULL, no other UNIQUE, no foreign keys, NOT NULL\n\
         -- columns with a DEFAULT; then SELECT crsql_as_crr('table');\n\n"
    );
    file.write_all(template.as_bytes()).map_err(io_err(&path))?;
    Ok(path)
}

/// The unix time now, in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `.sql` files of `dir` (not recursive), sorted by name.
fn sql_files(dir: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_owned)
}

/// Reads the migrations of `dir`: every `.sql` file, by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    let mut out = Vec::new();
    for path in sql_files(dir)? {
        let name = file_name(&path).ok_or_else(|| MigrateError::NotText(path.clone()))?;
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let sql = String::from_utf8(bytes).map_err(|_| MigrateError::NotText(path.clone()))?;
        out.push(Migration { name, sql });
    }
    Ok(out)
}

/// What `check` found in a folder.
#[derive(Debug)]
pub struct CheckReport {
    /// Number of `.sql` files checked.
    pub files: usize,
    /// Problems; empty when all is well.
    pub problems: Vec<CheckProblem>,
}

/// Checks every `.sql` file of `dir`: names, order, and that each runs twice in order on a
/// fresh in-memory database (see `synqlite_core::schema::check_migrations`).
pub fn check_dir(dir: &Path) -> Result<CheckReport, MigrateError> {
    let migrations = load_dir(dir)?;
    let problems = check_migrations(&migrations)?;
    Ok(CheckReport {
        files: migrations.len(),
        problems,
    })
}
