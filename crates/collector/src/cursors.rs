//! The persistent progress of each source, in tillwire's database (in-process mode) or a small SQLite file under
//! the data dir (CLI mode): the sales delivered (a row each, written once acknowledged; those older than the
//! overlap window behind the cursor are pruned) and the cursor, stored after each batch and never moved back. The
//! cursor is the newer of the stored one and the newest delivery, so a crash mid-batch resumes after the last
//! acknowledged sale.

use std::collections::HashSet;

use tillwire_platform::{Store, read, write};

use crate::reader::Cursor;

#[derive(Clone)]
pub struct Cursors(pub Store);

impl Cursors {
    /// Where `source` has been read up to: the stored cursor, or the newest sale delivered after it was last
    /// stored (it is written once per batch; the deliveries, one per sale).
    pub async fn load(&self, source: &str) -> Result<Option<Cursor>, sqlx::Error> {
        let stored: Option<(i64, i64)> = read!(&self.0, db => sqlx::query_as(
            "SELECT commit_us, purchase_id FROM collector_cursors WHERE source = $1",
        )
        .bind(source)
        .fetch_optional(db)
        .await)?;
        let newest: Option<(i64, i64)> = read!(&self.0, db => sqlx::query_as(
            "SELECT commit_us, purchase_id FROM collector_delivered WHERE source = $1
             ORDER BY commit_us DESC, purchase_id DESC LIMIT 1",
        )
        .bind(source)
        .fetch_optional(db)
        .await)?;
        Ok(stored
            .max(newest)
            .and_then(|(commit_us, id)| Cursor::from_parts(commit_us, id)))
    }

    /// Records `sale` as delivered: one row per sale, the only write on the delivery path.
    pub async fn delivered(&self, source: &str, sale: Cursor) -> Result<(), sqlx::Error> {
        write!(&self.0, db => sqlx::query(
            "INSERT INTO collector_delivered (source, purchase_id, commit_us) VALUES ($1, $2, $3)
             ON CONFLICT (source, purchase_id) DO NOTHING",
        )
        .bind(source)
        .bind(sale.purchase_id)
        .bind(sale.commit_us())
        .execute(db)
        .await
        .map(|_| ()))
    }

    /// Stores the cursor (after each batch), unless the stored one is already past it: it never moves back.
    pub async fn advance(&self, source: &str, cursor: Cursor) -> Result<(), sqlx::Error> {
        write!(&self.0, db => sqlx::query(
            "INSERT INTO collector_cursors (source, commit_us, purchase_id, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source) DO UPDATE SET commit_us = excluded.commit_us,
                 purchase_id = excluded.purchase_id, updated_ms = excluded.updated_ms
             WHERE (collector_cursors.commit_us, collector_cursors.purchase_id)
                 < (excluded.commit_us, excluded.purchase_id)",
        )
        .bind(source)
        .bind(cursor.commit_us())
        .bind(cursor.purchase_id)
        .bind(tillwire_platform::now_ms())
        .execute(db)
        .await
        .map(|_| ()))
    }

    /// The purchase ids delivered from `from` on (the overlap window behind the cursor).
    pub async fn delivered_since(
        &self,
        source: &str,
        from: Cursor,
    ) -> Result<HashSet<i64>, sqlx::Error> {
        let ids: Vec<i64> = read!(&self.0, db => sqlx::query_scalar(
            "SELECT purchase_id FROM collector_delivered WHERE source = $1 AND commit_us >= $2",
        )
        .bind(source)
        .bind(from.commit_us())
        .fetch_all(db)
        .await)?;
        Ok(ids.into_iter().collect())
    }

    /// Forgets deliveries older than the window: no pass reads that far back again. The cursor must be stored
    /// first ([`Cursors::advance`]), since the newest delivery may stand for it.
    pub async fn prune(&self, source: &str, before: Cursor) -> Result<(), sqlx::Error> {
        write!(&self.0, db => sqlx::query(
            "DELETE FROM collector_delivered WHERE source = $1 AND commit_us < $2",
        )
        .bind(source)
        .bind(before.commit_us())
        .execute(db)
        .await
        .map(|_| ()))
    }
}
