//! The persistent cursor of each source, in tillwire's database (in-process mode) or a small SQLite file under
//! the data dir (CLI mode). It only moves after the receipt it points at was acknowledged.

use tillwire_platform::{Store, read, write};

use crate::reader::Cursor;

#[derive(Clone)]
pub struct Cursors(pub Store);

impl Cursors {
    pub async fn load(&self, source: &str) -> Result<Option<Cursor>, sqlx::Error> {
        let row: Option<(i64, i64)> = read!(&self.0, db => sqlx::query_as(
            "SELECT commit_us, purchase_id FROM collector_cursors WHERE source = $1",
        )
        .bind(source)
        .fetch_optional(db)
        .await)?;
        Ok(row.and_then(|(commit_us, id)| Cursor::from_parts(commit_us, id)))
    }

    pub async fn save(&self, source: &str, cursor: Cursor) -> Result<(), sqlx::Error> {
        write!(&self.0, db => sqlx::query(
            "INSERT INTO collector_cursors (source, commit_us, purchase_id, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source) DO UPDATE SET commit_us = excluded.commit_us,
                 purchase_id = excluded.purchase_id, updated_ms = excluded.updated_ms",
        )
        .bind(source)
        .bind(cursor.commit_us())
        .bind(cursor.purchase_id)
        .bind(tillwire_platform::now_ms())
        .execute(db)
        .await
        .map(|_| ()))
    }
}
