//! Binding caller-supplied parameters to prepared statements.
//!
//! Two shapes, as in the JS API:
//! - positional: an array whose n-th value binds parameter index n+1. `?`, `?NNN` and even named
//!   parameters bind by index (so `?2` takes the second value). Across several statements in one
//!   SQL string, each statement consumes as many values as it has parameters.
//! - named: an object whose keys are parameter names with or without their prefix
//!   (`{ id: 1 }` or `{ ':id': 1 }` both bind `:id`; `@id` and `$id` likewise).
//!
//! Missing values, surplus positional values and positional placeholders given an object are
//! `BAD_PARAMS` errors, never a silent NULL.

use crate::error::{Error, Result};
use rusqlite::types::Value;
use rusqlite::Statement;

/// Parameters for one SQL string.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Params {
    /// No parameters.
    #[default]
    None,
    /// Values bound by index.
    Positional(Vec<Value>),
    /// Values bound by name; keys may carry the `:`/`@`/`$` prefix or not.
    Named(Vec<(String, Value)>),
}

impl Params {
    fn find<'v>(named: &'v [(String, Value)], name: &str) -> Option<&'v Value> {
        let bare = name.get(1..).unwrap_or("");
        named
            .iter()
            .find(|(k, _)| k == bare || k == name)
            .map(|(_, v)| v)
    }
}

/// Tracks how much of a [`Params`] value the statements of one SQL string have consumed.
#[derive(Debug)]
pub(crate) struct Binder<'p> {
    params: &'p Params,
    used: usize,
}

impl<'p> Binder<'p> {
    pub(crate) fn new(params: &'p Params) -> Self {
        Binder { params, used: 0 }
    }

    /// Binds this statement's parameters (all of them, or fails with `BAD_PARAMS`). `only` says
    /// the SQL has this one statement, so positional values must match its count exactly; that is
    /// checked before anything runs.
    pub(crate) fn bind(&mut self, stmt: &mut Statement<'_>, only: bool) -> Result<()> {
        let count = stmt.parameter_count();
        match self.params {
            Params::None => {
                if count > 0 {
                    return Err(Error::BadParams(format!(
                        "the statement expects {count} parameter(s) but none were given"
                    )));
                }
            }
            Params::Positional(values) => {
                let available = values.len().saturating_sub(self.used);
                if only && count != values.len() {
                    return Err(Error::BadParams(format!(
                        "the statement expects {count} parameter(s), got {}",
                        values.len()
                    )));
                }
                if count > available {
                    return Err(Error::BadParams(format!(
                        "the statement expects {count} parameter(s), only {available} value(s) left of {}",
                        values.len()
                    )));
                }
                for i in 1..=count {
                    stmt.raw_bind_parameter(i, &values[self.used + i - 1])?;
                }
                self.used += count;
            }
            Params::Named(values) => {
                for i in 1..=count {
                    let name = match stmt.parameter_name(i) {
                        Some(n) if !n.starts_with('?') => n.to_owned(),
                        _ => {
                            return Err(Error::BadParams(format!(
                                "parameter {i} is positional (?); pass an array of values, not an object"
                            )))
                        }
                    };
                    let value = Params::find(values, &name).ok_or_else(|| {
                        Error::BadParams(format!("missing value for parameter {name}"))
                    })?;
                    stmt.raw_bind_parameter(i, value)?;
                }
            }
        }
        Ok(())
    }

    /// Fails when positional values were left over after the last statement.
    pub(crate) fn finish(self) -> Result<()> {
        if let Params::Positional(values) = self.params {
            if self.used != values.len() {
                return Err(Error::BadParams(format!(
                    "{} value(s) given but the SQL uses {}",
                    values.len(),
                    self.used
                )));
            }
        }
        Ok(())
    }
}
