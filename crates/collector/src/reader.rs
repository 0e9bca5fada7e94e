//! Reading one Set Retail 10 register database: ELQ's query (sales only, no returns, no cancelled receipts,
//! normal cash operations; pieces in thousandths, weighted goods by precision; the shift-OPEN date as
//! `check_date`), but after a cursor and in commit order instead of "the last 3 minutes" in no order.
//!
//! Rows come back as `row_to_json` text, so a quantity of any SQL type (numeric, float, integer) arrives as a
//! JSON number, and the built-in and a custom query share one parser.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::config::CashSource;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ELQ used 5 minutes; a batch read by primary-key order needs far less, and a stuck register must not hold
/// its task for long.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// `statement_timeout` is the server's: a register that went silent (a cut cable, a firewall dropping packets)
/// never sends it, and TCP would wait for minutes. Every query also has this client-side deadline, the
/// server's plus a margin for the round trip.
const READ_TIMEOUT: Duration = STATEMENT_TIMEOUT.saturating_add(Duration::from_secs(5));

const SALES: &str = "p.cashoperation = 0 AND p.operationtype = true AND p.checkstatus = 0";

/// The built-in query, one row per position of the sales `chosen` picks (a condition on `p`, with its own
/// `ORDER BY`/`LIMIT`). Positions and shifts are LEFT JOINed so a sale without lines still moves the cursor.
fn sales_sql(chosen: &str) -> String {
    format!(
        "WITH p AS (
            SELECT p.id::bigint AS id, p.id_shift, p.numberfield, p.datecommit::timestamp AS datecommit
            FROM ch_purchase p
            WHERE {SALES} AND {chosen})
         SELECT row_to_json(r)::text FROM (
            SELECT s.cashnum AS cash_id, s.numshift AS shift_id, p.numberfield AS check_id,
                   to_char(s.shiftopen, 'YYYY-MM-DD') AS check_date, pos.item AS ware,
                   CASE WHEN pos.precision < 1 THEN pos.qnty * pos.precision ELSE pos.qnty / 1000.0 END AS ware_count,
                   p.datecommit, p.id AS purchase_id
            FROM p LEFT JOIN ch_shift s ON s.id = p.id_shift
                   LEFT JOIN ch_position pos ON pos.id_purchase = p.id
            ORDER BY p.datecommit, p.id) r"
    )
}

/// The next `$3` sales after the cursor (`$1` commit time, `$2` purchase id).
const AFTER_CURSOR: &str =
    "(p.datecommit::timestamp, p.id::bigint) > ($1::text::timestamp, $2::bigint)
    ORDER BY p.datecommit::timestamp, p.id::bigint LIMIT $3";

/// Where a register has been read up to: a sale's commit time (the register's wall clock) and purchase id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    pub commit: NaiveDateTime,
    pub purchase_id: i64,
}

impl Cursor {
    /// Before every sale committed at or after `commit`.
    pub fn before(commit: NaiveDateTime) -> Self {
        Cursor {
            commit,
            purchase_id: i64::MIN,
        }
    }

    pub fn commit_us(&self) -> i64 {
        self.commit.and_utc().timestamp_micros()
    }

    pub fn from_parts(commit_us: i64, purchase_id: i64) -> Option<Self> {
        Some(Cursor {
            commit: chrono::DateTime::from_timestamp_micros(commit_us)?.naive_utc(),
            purchase_id,
        })
    }

    fn commit_text(&self) -> String {
        self.commit.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} #{}",
            self.commit.format("%Y-%m-%d %H:%M:%S%.3f"),
            self.purchase_id
        )
    }
}

/// One sale, grouped as ELQ grouped it: per (cash, shift, receipt), quantities summed per item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleReceipt {
    pub cash_id: i64,
    pub shift_id: i64,
    pub check_id: i64,
    /// The shift-open date, as ELQ sends it (part of the import's de-duplication key).
    pub check_date: NaiveDate,
    /// `None` when a custom query returns no `datecommit`/`purchase_id`: such receipts carry no cursor.
    pub position: Option<Cursor>,
    pub wares: Vec<(String, f64)>,
}

/// A batch of sales in commit order; `more` says the batch was full, so more may be waiting.
#[derive(Debug)]
pub struct Batch {
    pub receipts: Vec<SaleReceipt>,
    /// Positions of sales with nothing to send (no lines, no shift): the cursor moves past them.
    pub skipped: Vec<Cursor>,
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot connect within {0:?}: {1}")]
    Connect(Duration, String),
    #[error("{0}: no answer within {1:?}")]
    Silent(&'static str, Duration),
    #[error("query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("unexpected row: {0}")]
    Row(String),
}

/// An open connection to one register.
pub struct Register {
    connection: PgConnection,
}

impl Register {
    /// Connects with a connect timeout and a statement timeout; the password never appears in an error.
    pub async fn connect(source: &CashSource) -> Result<Self, ReadError> {
        let options = PgConnectOptions::new()
            .host(&source.host)
            .port(source.port)
            .database(&source.database)
            .username(&source.login)
            .password(source.password.expose())
            .application_name("tillwire-collector")
            .options([(
                "statement_timeout",
                format!("{}ms", STATEMENT_TIMEOUT.as_millis()),
            )]);
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| ReadError::Silent("connecting", CONNECT_TIMEOUT))?
            .map_err(|e| ReadError::Connect(CONNECT_TIMEOUT, e.to_string()))?;
        Ok(Register { connection })
    }

    /// The next `limit` sales after `after`, in commit order.
    pub async fn next_batch(&mut self, after: Cursor, limit: u32) -> Result<Batch, ReadError> {
        let rows: Vec<String> = within(
            "reading sales",
            sqlx::query_scalar(sqlx::AssertSqlSafe(sales_sql(AFTER_CURSOR)))
                .bind(after.commit_text())
                .bind(after.purchase_id)
                .bind(i64::from(limit))
                .fetch_all(&mut self.connection),
        )
        .await?;
        let rows = parse_rows(&rows)?;
        let sales = rows.iter().filter_map(|row| row.position).fold(
            Vec::new(),
            |mut seen: Vec<Cursor>, p| {
                if seen.last() != Some(&p) {
                    seen.push(p);
                }
                seen
            },
        );
        let mut batch = group(rows);
        batch.more = sales.len() >= limit as usize;
        Ok(batch)
    }

    /// A custom query (ELQ's `sql`), run as it is and read as ELQ read it: by position ([`ELQ_COLUMNS`]). When its
    /// rows also carry `datecommit` and `purchase_id` (by name), sales at
    /// or before the cursor are left out and the rest are sent in commit order; otherwise every row is sent each
    /// pass, as ELQ did, and the import's de-duplication absorbs the repeats.
    pub async fn custom_batch(&mut self, sql: &str, after: Cursor) -> Result<Batch, ReadError> {
        let wrapped = format!("SELECT row_to_json(c)::text FROM ({sql}) AS c");
        let rows: Vec<String> = within(
            "running the custom sql",
            sqlx::query_scalar(sqlx::AssertSqlSafe(wrapped)).fetch_all(&mut self.connection),
        )
        .await?;
        let mut rows = parse_rows(&rows)?;
        rows.retain(|row| row.position.is_none_or(|p| p > after));
        rows.sort_by_key(|row| row.position);
        Ok(group(rows))
    }

    /// The sales committed from `from` up to `to` (the overlap window behind the cursor), positions only.
    pub async fn positions_between(
        &mut self,
        from: Cursor,
        to: Cursor,
    ) -> Result<Vec<Cursor>, ReadError> {
        let sql = format!(
            "SELECT p.datecommit::timestamp::text, p.id::bigint FROM ch_purchase p WHERE {SALES}
             AND p.datecommit::timestamp >= $1::text::timestamp
             AND (p.datecommit::timestamp, p.id::bigint) <= ($2::text::timestamp, $3::bigint)"
        );
        let rows: Vec<(String, i64)> = within(
            "reading the overlap window",
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(from.commit_text())
                .bind(to.commit_text())
                .bind(to.purchase_id)
                .fetch_all(&mut self.connection),
        )
        .await?;
        rows.into_iter()
            .map(|(commit, purchase_id)| {
                let commit = parse_timestamp(&commit)
                    .ok_or_else(|| ReadError::Row(format!("no usable datecommit: {commit}")))?;
                Ok(Cursor {
                    commit,
                    purchase_id,
                })
            })
            .collect()
    }

    /// The sales with these purchase ids, in commit order.
    pub async fn purchases(&mut self, ids: &[i64]) -> Result<Batch, ReadError> {
        let rows: Vec<String> = within(
            "reading sales",
            sqlx::query_scalar(sqlx::AssertSqlSafe(sales_sql("p.id::bigint = ANY($1)")))
                .bind(ids)
                .fetch_all(&mut self.connection),
        )
        .await?;
        Ok(group(parse_rows(&rows)?))
    }

    /// How many sales are waiting after `after` (for the backfill progress display).
    pub async fn remaining(&mut self, after: Cursor) -> Result<i64, ReadError> {
        let sql = format!(
            "SELECT count(*) FROM ch_purchase p WHERE {SALES}
             AND (p.datecommit::timestamp, p.id::bigint) > ($1::text::timestamp, $2::bigint)"
        );
        within(
            "counting the backlog",
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(after.commit_text())
                .bind(after.purchase_id)
                .fetch_one(&mut self.connection),
        )
        .await
    }

    /// Says goodbye, unless the register no longer answers at all.
    pub async fn close(self) {
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, self.connection.close()).await;
    }
}

/// A query under [`READ_TIMEOUT`].
async fn within<T>(
    what: &'static str,
    query: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ReadError> {
    Ok(tokio::time::timeout(READ_TIMEOUT, query)
        .await
        .map_err(|_| ReadError::Silent(what, READ_TIMEOUT))??)
}

/// One row of the built-in or a custom query.
#[derive(Debug)]
struct Row {
    key: Option<(i64, i64, i64, NaiveDate)>,
    line: Option<(String, f64)>,
    position: Option<Cursor>,
}

fn parse_rows(rows: &[String]) -> Result<Vec<Row>, ReadError> {
    rows.iter().map(|text| parse_row(text)).collect()
}

/// ELQ read its query's rows by position, whatever the columns are called (its main.sql names the quantity
/// `ware_amount`, tillwire's query `ware_count`): these six come first, in this order.
const ELQ_COLUMNS: [&str; 6] = [
    "cash_id",
    "shift_id",
    "check_id",
    "check_date",
    "ware",
    "quantity",
];

fn parse_row(text: &str) -> Result<Row, ReadError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ReadError::Row(e.to_string()))?;
    let Value::Object(named) = value else {
        return Err(ReadError::Row(format!("not a row: {text}")));
    };
    // `row_to_json` keeps the query's column order and serde_json's `preserve_order` (a workspace feature) keeps it.
    let columns: Vec<(&String, &Value)> = named.iter().collect();
    if columns.len() < ELQ_COLUMNS.len() {
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        return Err(ReadError::Row(format!(
            "the query returned {} column(s) ({}); it must return {} first, in that order, as ELQ read them",
            columns.len(),
            names.join(", "),
            ELQ_COLUMNS.join(", ")
        )));
    }
    let column = |i: usize| Some(columns[i].1).filter(|v| !v.is_null());
    let unusable = |i: usize| {
        ReadError::Row(format!(
            "no usable {} (column {} `{}`) in {text}",
            ELQ_COLUMNS[i],
            i + 1,
            columns[i].0
        ))
    };
    let field = |name: &str| named.get(name).filter(|v| !v.is_null());
    let missing = |name: &str| ReadError::Row(format!("no usable {name} in {text}"));
    let position = match (field("datecommit"), field("purchase_id")) {
        (Some(commit), Some(id)) => Some(Cursor {
            commit: commit
                .as_str()
                .and_then(parse_timestamp)
                .ok_or_else(|| missing("datecommit"))?,
            purchase_id: integer(id).ok_or_else(|| missing("purchase_id"))?,
        }),
        _ => None,
    };
    // A sale without a shift (or lines) has nothing to send, but its position still counts.
    let key = match column(0) {
        None if position.is_some() => None,
        cash => Some((
            cash.and_then(integer).ok_or_else(|| unusable(0))?,
            column(1).and_then(integer).ok_or_else(|| unusable(1))?,
            column(2).and_then(integer).ok_or_else(|| unusable(2))?,
            column(3)
                .and_then(Value::as_str)
                .and_then(|d| d.get(..10))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| unusable(3))?,
        )),
    };
    // No item is a sale without lines; an item without a quantity is a query that cannot be read, never a line
    // to drop quietly.
    let line = match column(4) {
        None => None,
        Some(ware) => {
            let code = match ware {
                Value::String(text) => text.trim().to_owned(),
                other => other.to_string(),
            };
            let count = column(5)
                .and_then(|count| {
                    count
                        .as_f64()
                        .or_else(|| count.as_str().and_then(|t| t.trim().parse().ok()))
                })
                .ok_or_else(|| unusable(5))?;
            // Float products such as 350 × 0.001 carry noise; tills count to the thousandth at most.
            Some((code, (count * 1e6).round() / 1e6))
        }
    };
    Ok(Row {
        key,
        line,
        position,
    })
}

/// An integer of any SQL type: `5`, `5.0` (numeric) or `"5"`.
fn integer(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        })
        .or_else(|| value.as_str().and_then(|t| t.trim().parse().ok()))
}

/// `row_to_json` spells a `timestamp` as `2024-05-01T12:00:00.123456`; a `timestamptz` adds an offset, which
/// is dropped to keep the register's wall-clock time.
fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_local())
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

/// Groups rows per receipt in first-seen order, summing quantities per item (ELQ's grouping).
fn group(rows: Vec<Row>) -> Batch {
    let mut receipts: Vec<SaleReceipt> = Vec::new();
    let mut skipped: Vec<Cursor> = Vec::new();
    for row in rows {
        let Some((cash_id, shift_id, check_id, check_date)) = row.key else {
            if let Some(position) = row.position
                && !skipped.contains(&position)
            {
                skipped.push(position);
            }
            continue;
        };
        let found = receipts.iter().position(|r| {
            (r.cash_id, r.shift_id, r.check_id, r.check_date, r.position)
                == (cash_id, shift_id, check_id, check_date, row.position)
        });
        let receipt = match found {
            Some(index) => &mut receipts[index],
            None => {
                receipts.push(SaleReceipt {
                    cash_id,
                    shift_id,
                    check_id,
                    check_date,
                    position: row.position,
                    wares: Vec::new(),
                });
                receipts.last_mut().expect("just pushed")
            }
        };
        if let Some((code, count)) = row.line {
            match receipt.wares.iter_mut().find(|(c, _)| *c == code) {
                Some((_, sum)) => *sum += count,
                None => receipt.wares.push((code, count)),
            }
        }
    }
    Batch {
        receipts,
        skipped,
        more: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_any_type_and_grouping() {
        let rows = [
            r#"{"cash_id": 1, "shift_id": 7.0, "check_id": "12", "check_date": "2024-05-01", "ware": 48566, "ware_count": 2.000, "datecommit": "2024-05-02T00:10:00.5", "purchase_id": 9}"#,
            r#"{"cash_id": 1, "shift_id": 7, "check_id": 12, "check_date": "2024-05-01", "ware": "48566", "ware_count": 1, "datecommit": "2024-05-02T00:10:00.5", "purchase_id": 9}"#,
            r#"{"cash_id": 1, "shift_id": 7, "check_id": 12, "check_date": "2024-05-01", "ware": "W", "ware_count": 0.35000000000000003, "datecommit": "2024-05-02T00:10:00.5", "purchase_id": 9}"#,
            r#"{"cash_id": null, "shift_id": null, "check_id": 13, "check_date": null, "ware": null, "ware_count": null, "datecommit": "2024-05-02T00:11:00", "purchase_id": 10}"#,
        ];
        let rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        let batch = group(parse_rows(&rows).expect("rows"));
        assert_eq!(batch.receipts.len(), 1);
        let receipt = &batch.receipts[0];
        assert_eq!(
            (
                receipt.shift_id,
                receipt.check_id,
                receipt.check_date.to_string()
            ),
            (7, 12, "2024-05-01".into())
        );
        assert_eq!(
            receipt.wares,
            vec![("48566".to_owned(), 3.0), ("W".to_owned(), 0.35)]
        );
        assert_eq!(
            batch
                .skipped
                .iter()
                .map(|c| c.purchase_id)
                .collect::<Vec<_>>(),
            vec![10],
            "a sale without a shift still moves the cursor"
        );
    }

    #[test]
    fn custom_rows_without_a_position_still_parse() {
        let row = parse_row(
            r#"{"cash_id": 2, "shift_id": 1, "check_id": 3, "check_date": "2024-05-01", "ware": "1", "ware_count": 1.0}"#,
        )
        .expect("row");
        assert!(row.position.is_none());
        assert!(parse_row(r#"{"cash_id": "x"}"#).is_err());
    }

    #[test]
    fn columns_are_read_by_position_as_elq_did() {
        let row = parse_row(
            r#"{"cashnum": 2, "numshift": 1, "numberfield": 3, "shiftopen": "2024-05-01", "item": "48566", "ware_amount": 2.0}"#,
        )
        .expect("ELQ's main.sql shape");
        assert_eq!(row.line, Some(("48566".to_owned(), 2.0)));
        assert_eq!(
            row.key,
            NaiveDate::from_ymd_opt(2024, 5, 1).map(|d| (2, 1, 3, d))
        );
        let error = parse_row(
            r#"{"cash_id": 2, "shift_id": 1, "check_id": 3, "check_date": "2024-05-01", "ware": "48566"}"#,
        )
        .expect_err("no quantity column")
        .to_string();
        assert!(error.contains("quantity"), "{error}");
        let error = parse_row(
            r#"{"cash_id": 2, "shift_id": 1, "check_id": 3, "check_date": "2024-05-01", "ware": "48566", "datecommit": "2024-05-01T10:00:00", "purchase_id": 1}"#,
        )
        .expect_err("the sixth column is no quantity")
        .to_string();
        assert!(error.contains("column 6 `datecommit`"), "{error}");
    }

    #[test]
    fn cursor_round_trips_through_microseconds() {
        let commit = parse_timestamp("2024-05-01T23:59:59.123456").expect("timestamp");
        let cursor = Cursor {
            commit,
            purchase_id: 42,
        };
        assert_eq!(Cursor::from_parts(cursor.commit_us(), 42), Some(cursor));
        assert_eq!(cursor.commit_text(), "2024-05-01 23:59:59.123456");
        assert!(Cursor::before(commit) < cursor);
    }
}
