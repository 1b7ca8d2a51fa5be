//! Query plans of the `crsql_changes` virtual table: which `WHERE` constraints and which
//! `ORDER BY` it handles itself (`xBestIndex`), and the SQL a plan runs (`xFilter`).
//!
//! A scan reads every replicated table's clock table with `changes::table_select` (the query
//! behind [`changes_since`](super::changes_since)), one arm per table, joined with `UNION ALL`.
//! Constraints the plan takes over:
//!
//! | column | operators | done by | index |
//! |---|---|---|---|
//! | `db_version`, `seq` | comparisons | SQL on the clock column | `(db_version, seq)` |
//! | `pk` | comparisons | SQL on the clock's `key` | `(key, col_name)` |
//! | `col_version` | comparisons | SQL on the clock column | none |
//! | `site_id` | comparisons, `IS [NOT] NULL` | SQL on the reported site id | none |
//! | `"table"` | `=`, `IS` (binary collation) | choosing the tables read | skips tables |
//!
//! (comparisons: `=` `>` `>=` `<` `<=` `!=` `IS` `IS NOT`)
//!
//! Each SQL term compares what the virtual table reports with the same affinity SQLite would
//! use on the virtual column (the clock columns are INTEGER or BLOB like the declared
//! columns; the site id is a BLOB expression, the declared column a BLOB without affinity), so
//! it is exact and SQLite is told to skip its own check (`omit`). The `"table"` test is left
//! for SQLite to repeat: a non-text value there compares after TEXT affinity, which the plan
//! does not reproduce (it then reads every table). Constraints on `cid`, `val` and `cl` (no
//! index helps) are left to SQLite.
//!
//! Rows come in `(db_version, seq, "table", pk, cid)` order, ascending unless the query asks
//! for that order (or a prefix of it) descending; without an `ORDER BY` this is cr-sqlite's
//! default order. SQLite merges the per-table arms, each read in order from the clock's
//! `(db_version, seq)` index, so ordered reads stay cheap and a `LIMIT` stops early. Any other
//! `ORDER BY` is left to SQLite and the arms are read in any order.

use super::changes::table_select;
use super::tables::TableInfo;
use crate::error::{Error, Result};
use rusqlite::vtab::{IndexConstraintOp, IndexInfo};
use std::fmt::Write as _;
use std::os::raw::c_int;

/// Columns of `crsql_changes`, in cr-sqlite 0.16's order.
pub(super) const COL_TABLE: c_int = 0;
pub(super) const COL_PK: c_int = 1;
pub(super) const COL_CID: c_int = 2;
pub(super) const COL_VAL: c_int = 3;
pub(super) const COL_COL_VERSION: c_int = 4;
pub(super) const COL_DB_VERSION: c_int = 5;
pub(super) const COL_SITE_ID: c_int = 6;
pub(super) const COL_CL: c_int = 7;
pub(super) const COL_SEQ: c_int = 8;

/// The declaration SQLite gets (`sqlite3_declare_vtab`), as cr-sqlite's.
pub(super) const SCHEMA: &std::ffi::CStr =
    c"CREATE TABLE x([table] TEXT NOT NULL, [pk] BLOB NOT NULL, \
    [cid] TEXT NOT NULL, [val] ANY, [col_version] INTEGER NOT NULL, [db_version] INTEGER NOT NULL, \
    [site_id] BLOB NOT NULL, [cl] INTEGER NOT NULL, [seq] INTEGER NOT NULL)";

/// SQL parameter number of the first constraint value (`?3` is this database's site id).
pub(super) const FIRST_ARG_PARAM: usize = 10;

/// The order a scan produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// Whatever order the arms come in (SQLite sorts).
    Any,
    /// `(db_version, seq, "table", pk, cid)` ascending.
    Asc,
    /// The same, descending.
    Desc,
}

/// A comparison the plan takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
    Ne,
    Is,
    IsNot,
    IsNull,
    IsNotNull,
}

impl Op {
    /// The operators the plan handles (`LIKE`, `GLOB`, functions, `LIMIT`, ... are left).
    fn from_index(op: IndexConstraintOp) -> Option<Op> {
        use IndexConstraintOp as I;
        Some(match op {
            I::SQLITE_INDEX_CONSTRAINT_EQ => Op::Eq,
            I::SQLITE_INDEX_CONSTRAINT_GT => Op::Gt,
            I::SQLITE_INDEX_CONSTRAINT_GE => Op::Ge,
            I::SQLITE_INDEX_CONSTRAINT_LT => Op::Lt,
            I::SQLITE_INDEX_CONSTRAINT_LE => Op::Le,
            I::SQLITE_INDEX_CONSTRAINT_NE => Op::Ne,
            I::SQLITE_INDEX_CONSTRAINT_IS => Op::Is,
            I::SQLITE_INDEX_CONSTRAINT_ISNOT => Op::IsNot,
            I::SQLITE_INDEX_CONSTRAINT_ISNULL => Op::IsNull,
            I::SQLITE_INDEX_CONSTRAINT_ISNOTNULL => Op::IsNotNull,
            _ => return None,
        })
    }

    const ALL: [(Op, char, &'static str); 10] = [
        (Op::Eq, '=', "="),
        (Op::Gt, '>', ">"),
        (Op::Ge, 'g', ">="),
        (Op::Lt, '<', "<"),
        (Op::Le, 'l', "<="),
        (Op::Ne, '!', "!="),
        (Op::Is, 'i', "IS"),
        (Op::IsNot, 'n', "IS NOT"),
        (Op::IsNull, 'N', "IS NULL"),
        (Op::IsNotNull, 'Y', "IS NOT NULL"),
    ];

    fn code(self) -> char {
        Op::ALL
            .iter()
            .find(|(o, _, _)| *o == self)
            .map_or('?', |x| x.1)
    }

    fn from_code(c: char) -> Option<Op> {
        Op::ALL.iter().find(|(_, k, _)| *k == c).map(|x| x.0)
    }

    fn sql(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(o, _, _)| *o == self)
            .map_or("", |x| x.2)
    }

    /// Whether the comparison has a right-hand value (passed to `xFilter`).
    fn takes_arg(self) -> bool {
        !matches!(self, Op::IsNull | Op::IsNotNull)
    }
}

/// One constraint of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Term {
    /// Column of `crsql_changes`.
    pub(super) col: c_int,
    pub(super) op: Op,
    /// Index of its value among `xFilter`'s arguments.
    pub(super) arg: Option<usize>,
}

impl Term {
    /// The clock-side SQL expression for a column the SQL handles, `None` for `"table"`.
    fn expr(&self) -> Option<&'static str> {
        Some(match self.col {
            COL_DB_VERSION => "c.db_version",
            COL_SEQ => "c.seq",
            COL_COL_VERSION => "c.col_version",
            COL_PK => "c.key",
            // What `table_select` reports as `site_id` (`?3`: this database's site id).
            COL_SITE_ID => "coalesce(s.site_id, ?3)",
            _ => return None,
        })
    }
}

/// What `xBestIndex` chose, passed to `xFilter` as its `idxStr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) order: Order,
    pub(super) terms: Vec<Term>,
}

/// Rows a scan without constraints is assumed to read (the planner only compares plans).
const FULL_SCAN_ROWS: f64 = 1e6;

/// The fraction of rows a constraint keeps, for the cost estimate.
fn selectivity(col: c_int, op: Op) -> f64 {
    let eq = matches!(op, Op::Eq | Op::Is);
    let range = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    match col {
        COL_PK if eq => 1e-5,
        COL_DB_VERSION if eq => 1e-4,
        COL_DB_VERSION | COL_PK if range => 0.25,
        COL_SEQ if eq => 0.05,
        COL_COL_VERSION | COL_SITE_ID if eq => 0.3,
        COL_SITE_ID if op == Op::IsNull => 1e-6,
        COL_TABLE => 0.2,
        _ if range => 0.5,
        _ => 0.9,
    }
}

/// Columns of the scan order, in order.
const ORDER_COLS: [c_int; 5] = [COL_DB_VERSION, COL_SEQ, COL_TABLE, COL_PK, COL_CID];

impl Plan {
    /// `xBestIndex`: picks the constraints and order the scan handles, marks them in `info`,
    /// and sets the cost and `idxStr`.
    pub(super) fn choose(info: &mut IndexInfo) -> rusqlite::Result<Plan> {
        let found: Vec<(usize, c_int, Option<Op>)> = info
            .constraints()
            .enumerate()
            .filter(|(_, c)| c.is_usable())
            .map(|(i, c)| (i, c.column(), Op::from_index(c.operator())))
            .collect();
        let mut terms = Vec::new();
        let mut rows = FULL_SCAN_ROWS;
        let mut next_arg = 0usize;
        for (i, col, op) in found {
            let Some(op) = op else { continue };
            let in_sql = match col {
                COL_DB_VERSION | COL_SEQ | COL_COL_VERSION | COL_PK | COL_SITE_ID => true,
                COL_TABLE
                    if matches!(op, Op::Eq | Op::Is)
                        && info.collation(i)?.eq_ignore_ascii_case("BINARY") =>
                {
                    false
                }
                _ => continue,
            };
            let arg = op.takes_arg().then(|| {
                next_arg += 1;
                next_arg - 1
            });
            let mut usage = info.constraint_usage(i);
            if let Some(a) = arg {
                usage.set_argv_index(c_int::try_from(a + 1).unwrap_or(c_int::MAX));
            }
            usage.set_omit(in_sql);
            rows *= selectivity(col, op);
            terms.push(Term { col, op, arg });
        }
        let wanted: Vec<(c_int, bool)> = info
            .order_bys()
            .map(|o| (o.column(), o.is_order_by_desc()))
            .collect();
        let order = match wanted.first() {
            None => Order::Asc,
            Some(&(_, desc))
                if wanted.len() <= ORDER_COLS.len()
                    && wanted
                        .iter()
                        .zip(ORDER_COLS)
                        .all(|(&(c, d), want)| c == want && d == desc) =>
            {
                if desc {
                    Order::Desc
                } else {
                    Order::Asc
                }
            }
            Some(_) => Order::Any,
        };
        info.set_order_by_consumed(!wanted.is_empty() && order != Order::Any);
        let rows = rows.max(1.0);
        info.set_estimated_rows(rows as i64);
        info.set_estimated_cost(rows);
        let plan = Plan { order, terms };
        info.set_idx_str(&plan.encode());
        Ok(plan)
    }

    /// The `idxStr` form: the order (`u`, `a`, `d`), then a column digit and an operator code
    /// per term, in `argv` order.
    pub(super) fn encode(&self) -> String {
        let mut s = String::with_capacity(1 + 2 * self.terms.len());
        s.push(match self.order {
            Order::Any => 'u',
            Order::Asc => 'a',
            Order::Desc => 'd',
        });
        for t in &self.terms {
            let _ = write!(s, "{}{}", t.col, t.op.code());
        }
        s
    }

    /// Reads back [`Plan::encode`].
    pub(super) fn decode(s: &str) -> Result<Plan> {
        let bad = || Error::Internal(format!("crsql_changes: malformed query plan {s:?}"));
        let mut chars = s.chars();
        let order = match chars.next() {
            Some('u') => Order::Any,
            Some('a') => Order::Asc,
            Some('d') => Order::Desc,
            _ => return Err(bad()),
        };
        let mut terms = Vec::new();
        let mut next_arg = 0usize;
        while let Some(c) = chars.next() {
            let col = c
                .to_digit(10)
                .and_then(|d| c_int::try_from(d).ok())
                .filter(|&d| d <= COL_SEQ)
                .ok_or_else(bad)?;
            let op = chars.next().and_then(Op::from_code).ok_or_else(bad)?;
            let arg = op.takes_arg().then(|| {
                next_arg += 1;
                next_arg - 1
            });
            terms.push(Term { col, op, arg });
        }
        Ok(Plan { order, terms })
    }

    /// The `"table"` terms (applied when choosing the tables to read).
    pub(super) fn table_terms(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| t.col == COL_TABLE)
    }

    /// The terms the SQL applies, with their parameter numbers.
    pub(super) fn sql_terms(&self) -> impl Iterator<Item = (&Term, usize)> {
        self.terms
            .iter()
            .filter(|t| t.expr().is_some())
            .filter_map(|t| t.arg.map(|a| (t, FIRST_ARG_PARAM + a)))
    }

    /// The scan of `tables` (one `UNION ALL` arm each); empty when there is none. Parameters:
    /// `?3` this database's site id, `?10`, `?11`, ... the constraint values in `argv` order.
    pub(super) fn sql(&self, tables: &[&TableInfo]) -> String {
        if tables.is_empty() {
            return String::new();
        }
        let mut cond = String::new();
        for t in &self.terms {
            let Some(expr) = t.expr() else { continue };
            if !cond.is_empty() {
                cond.push_str(" AND ");
            }
            let _ = match t.arg {
                Some(a) => write!(cond, "{expr} {} ?{}", t.op.sql(), FIRST_ARG_PARAM + a),
                None => write!(cond, "{expr} {}", t.op.sql()),
            };
        }
        if cond.is_empty() {
            cond.push('1');
        }
        let arms: Vec<String> = tables.iter().map(|t| table_select(t, &cond)).collect();
        let order = match self.order {
            Order::Any => "",
            Order::Asc => " ORDER BY db_version, seq, tbl, pk, cid",
            Order::Desc => " ORDER BY db_version DESC, seq DESC, tbl DESC, pk DESC, cid DESC",
        };
        format!("{}{order}", arms.join(" UNION ALL "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_round_trip() {
        let plan = Plan {
            order: Order::Desc,
            terms: vec![
                Term {
                    col: COL_DB_VERSION,
                    op: Op::Gt,
                    arg: Some(0),
                },
                Term {
                    col: COL_SITE_ID,
                    op: Op::IsNull,
                    arg: None,
                },
                Term {
                    col: COL_TABLE,
                    op: Op::Eq,
                    arg: Some(1),
                },
                Term {
                    col: COL_SEQ,
                    op: Op::IsNot,
                    arg: Some(2),
                },
            ],
        };
        assert_eq!(plan.encode(), "d5>6N0=8n");
        assert_eq!(Plan::decode(&plan.encode()).unwrap(), plan);
        for bad in ["", "x", "a5", "a9=", "a5?", "aX="] {
            assert!(Plan::decode(bad).is_err(), "{bad}");
        }
    }
}
