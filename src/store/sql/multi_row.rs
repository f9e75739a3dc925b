//! Many rows in one statement. PostgreSQL takes a batch's rows as one array per column,
//! unnested: one statement and one round trip whatever the count, the same prepared text each
//! time, and no per-value parameter to bind and plan (the group commit's events INSERT was 32
//! statements of 64 rows x 21 parameters per 2,048 events). SQLite runs in the process, where a
//! statement costs no round trip: multi-row `VALUES` of a few prepared sizes.

use super::{Conn, Dialect, Row, Value};
use crate::store::StoreResult;

/// A column's SQL type, which PostgreSQL needs to read its array. The schema keeps to these two
/// (integers and flags are BIGINT, times are RFC 3339 text: migrations/postgres/0001_init.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Int,
    Text,
}

/// Row counts a SQLite multi-row statement is prepared for. Any count is written as a sum of
/// these, one statement per size at most below 128, so a few texts per table stay prepared.
const ROW_CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// One INSERT of many rows (`head`, the rows, then `tail`), built once, run by
/// [`MultiRow::execute`] on either engine.
pub struct MultiRow {
    width: usize,
    /// PostgreSQL: `head SELECT * FROM unnest(CAST(?1 AS BIGINT[]), …) tail`.
    unnest: String,
    /// SQLite: `head VALUES (?1, …), (…) tail` for each size of [`ROW_CHUNKS`].
    values: Vec<String>,
}

impl MultiRow {
    /// `head` ends before the rows (`INSERT INTO t (a, b)`); `tail` (an `ON CONFLICT` clause, or
    /// empty) follows them; `columns` are the types of the rows' values, in order.
    pub fn new(head: &str, columns: &[Column], tail: &str) -> MultiRow {
        let width = columns.len();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let ty = match column {
                    Column::Int => "BIGINT",
                    Column::Text => "TEXT",
                };
                format!("CAST(?{} AS {ty}[])", i + 1)
            })
            .collect();
        let values = ROW_CHUNKS
            .iter()
            .map(|&rows| {
                let values: Vec<String> = (0..rows)
                    .map(|r| {
                        let params: Vec<String> =
                            (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                        format!("({})", params.join(", "))
                    })
                    .collect();
                format!("{head} VALUES {} {tail}", values.join(", "))
            })
            .collect();
        MultiRow {
            width,
            unnest: format!(
                "{head} SELECT * FROM unnest({}) AS r {tail}",
                arrays.join(", ")
            ),
            values,
        }
    }

    /// Writes `rows` (each `width` values), in order.
    pub fn execute(&self, c: &mut dyn Conn, rows: Vec<Vec<Value>>) -> StoreResult<()> {
        self.run(c, rows, false).map(drop)
    }

    /// [`MultiRow::execute`] of a statement whose tail returns rows (`RETURNING …`): those rows,
    /// in no particular order.
    pub fn query(&self, c: &mut dyn Conn, rows: Vec<Vec<Value>>) -> StoreResult<Vec<Row>> {
        self.run(c, rows, true)
    }

    fn run(
        &self,
        c: &mut dyn Conn,
        rows: Vec<Vec<Value>>,
        returning: bool,
    ) -> StoreResult<Vec<Row>> {
        debug_assert!(rows.iter().all(|r| r.len() == self.width));
        let mut out = Vec::new();
        if rows.is_empty() {
            return Ok(out);
        }
        let mut run = |c: &mut dyn Conn, sql: &str, values: &[Value]| -> StoreResult<()> {
            if returning {
                out.extend(c.query(sql, values)?);
            } else {
                c.execute(sql, values)?;
            }
            Ok(())
        };
        match c.dialect() {
            Dialect::Postgres => {
                let mut columns: Vec<Vec<Value>> = (0..self.width)
                    .map(|_| Vec::with_capacity(rows.len()))
                    .collect();
                for row in rows {
                    for (column, value) in columns.iter_mut().zip(row) {
                        column.push(value);
                    }
                }
                let lists: Vec<Value> = columns.into_iter().map(Value::List).collect();
                run(c, &self.unnest, &lists)?;
            }
            Dialect::Sqlite => {
                let mut rows = rows.into_iter();
                for (size, statement) in ROW_CHUNKS.iter().zip(&self.values) {
                    while rows.len() >= *size {
                        let values: Vec<Value> = rows.by_ref().take(*size).flatten().collect();
                        run(c, statement, &values)?;
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queries::Engine;
    use crate::store::sql::params;

    /// Writes `n` rows of every column type, NULLs included, and reads them back in order.
    fn round_trip(c: &mut dyn Conn, n: i64) -> Vec<(i64, Option<String>, Option<i64>)> {
        c.execute_batch("CREATE TABLE multi (a BIGINT NOT NULL, b TEXT, c BIGINT)")
            .unwrap();
        let insert = MultiRow::new(
            "INSERT INTO multi (a, b, c)",
            &[Column::Int, Column::Text, Column::Int],
            "",
        );
        let rows = (0..n)
            .map(|i| {
                let text = (i % 3 != 0).then(|| format!("'{i}', \"quoted\" {{}}"));
                vec![i.into(), text.into(), (i % 2 == 0).then_some(i * 10).into()]
            })
            .collect();
        insert.execute(c, rows).unwrap();
        c.query("SELECT a, b, c FROM multi ORDER BY a", params![])
            .unwrap()
            .iter()
            .map(|r| (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap()))
            .collect()
    }

    fn postgres_store() -> crate::store::postgres::PostgresStore {
        let url = crate::store::postgres::test_schema("unit").unwrap_or_else(|e| panic!("{e}"));
        crate::store::postgres::PostgresStore::open(&url).unwrap().0
    }

    fn expected(n: i64) -> Vec<(i64, Option<String>, Option<i64>)> {
        (0..n)
            .map(|i| {
                let text = (i % 3 != 0).then(|| format!("'{i}', \"quoted\" {{}}"));
                (i, text, (i % 2 == 0).then_some(i * 10))
            })
            .collect()
    }

    #[test]
    fn rows_of_every_type_arrive_in_order_on_both_engines() {
        for n in [0, 1, 2_000] {
            let dir = tempfile::tempdir().unwrap();
            let (sqlite, _) =
                crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"), false).unwrap();
            let got = sqlite.engine.write_here(|c| Ok(round_trip(c, n))).unwrap();
            assert_eq!(got, expected(n), "SQLite, {n} rows");
            let postgres = postgres_store();
            let got = postgres
                .engine
                .write_here(|c| Ok(round_trip(c, n)))
                .unwrap();
            assert_eq!(got, expected(n), "PostgreSQL, {n} rows");
        }
    }

    #[test]
    fn a_list_bound_where_no_array_is_expected_is_an_error() {
        let postgres = postgres_store();
        let err = postgres
            .engine
            .write_here(|c| c.query("SELECT CAST(?1 AS BIGINT)", &[Value::List(vec![])]))
            .unwrap_err();
        assert!(err.to_string().contains("not an array"), "{err}");
    }
}
