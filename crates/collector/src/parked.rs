//! Receipts the receiving side refused for a reason retrying cannot fix (an unknown register, a body it cannot
//! read): parked, so the register moves on instead of retrying one receipt for ever. The collector page lists
//! them with the reason; "retry" asks the register's task to send one again on its next pass (whichever
//! instance owns the register), "skip" drops it.

use tillwire_platform::{Store, now_ms, read, write};

use crate::reader::{Cursor, SaleReceipt};

#[derive(Clone)]
pub struct Parked(pub Store);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParkedRow {
    pub id: i64,
    pub source: String,
    pub purchase_id: i64,
    pub receipt: String,
    pub reason: String,
    pub parked_ms: i64,
    pub retry_requested: bool,
}

impl ParkedRow {
    pub fn sale(&self) -> Result<SaleReceipt, serde_json::Error> {
        serde_json::from_str(&self.receipt)
    }
}

const COLUMNS: &str = "id, source, purchase_id, receipt, reason, parked_ms, retry_requested";

impl Parked {
    /// Sets `sale` aside with `reason`; parked again, it keeps one row with the latest reason.
    pub async fn park(
        &self,
        source: &str,
        sale: &SaleReceipt,
        position: Cursor,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let receipt = serde_json::to_string(sale).map_err(|e| sqlx::Error::Encode(e.into()))?;
        write!(&self.0, db => sqlx::query(
            "INSERT INTO collector_parked (source, purchase_id, commit_us, receipt, reason, parked_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (source, purchase_id) DO UPDATE SET reason = excluded.reason,
                 parked_ms = excluded.parked_ms, retry_requested = FALSE",
        )
        .bind(source)
        .bind(position.purchase_id)
        .bind(position.commit_us())
        .bind(receipt)
        .bind(reason)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))
    }

    /// Every parked receipt, oldest first.
    pub async fn list(&self) -> Result<Vec<ParkedRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM collector_parked ORDER BY commit_us, id");
        read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await)
    }

    /// The receipts of `source` someone asked to send again.
    pub async fn to_retry(&self, source: &str) -> Result<Vec<ParkedRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM collector_parked WHERE source = $1 AND retry_requested ORDER BY commit_us, id"
        );
        read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(source).fetch_all(db).await)
    }

    /// False when there is no such parked receipt.
    pub async fn request_retry(&self, id: i64) -> Result<bool, sqlx::Error> {
        write!(&self.0, db => sqlx::query("UPDATE collector_parked SET retry_requested = TRUE WHERE id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|r| r.rows_affected() > 0))
    }

    /// Drops a parked receipt (delivered on retry, or skipped from the page); the dropped row, if there was one.
    pub async fn remove(&self, id: i64) -> Result<Option<ParkedRow>, sqlx::Error> {
        let sql = format!("DELETE FROM collector_parked WHERE id = $1 RETURNING {COLUMNS}");
        write!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db).await)
    }

    /// How many receipts of `source` are parked (for the CLI's state lines).
    pub async fn count(&self, source: &str) -> Result<i64, sqlx::Error> {
        read!(&self.0, db => sqlx::query_scalar("SELECT COUNT(*) FROM collector_parked WHERE source = $1")
            .bind(source)
            .fetch_one(db)
            .await)
    }
}
