//! What other areas ask of the directory when they deliver: who gets a report type for a unit, and what Telegram
//! said about a chat (it blocked or removed the bot; a group became a supergroup). Writes here invalidate the
//! directory's cached pages like any other directory write.

use tillwire_platform::web::Lang;
use tillwire_platform::{Store, now_ms, read, write_tx};

use crate::DirectoryError;
use crate::storage::audit;

/// A chat a report goes to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Recipient {
    pub chat_id: i64,
    /// The forum topic the route names.
    pub thread_id: Option<i64>,
}

impl Recipient {
    /// Groups and supergroups have negative ids (and slower limits).
    pub fn is_group(&self) -> bool {
        self.chat_id < 0
    }
}

#[derive(Clone)]
pub struct Routing(pub Store);

impl Routing {
    /// The chats routed for (`unit_id`, `report_type`), when the type is active; chats that blocked or removed the
    /// bot are left out.
    pub async fn recipients(
        &self,
        unit_id: i64,
        report_type: &str,
    ) -> Result<Vec<Recipient>, DirectoryError> {
        Ok(read!(&self.0, db => sqlx::query_as(
            "SELECT c.chat_id, r.thread_id FROM directory_routes r
             JOIN directory_chats c ON c.id = r.chat_id
             JOIN directory_report_types t ON t.id = r.report_type_id
             WHERE r.unit_id = $1 AND t.name = $2 AND t.is_active AND c.inactive_ms IS NULL
             ORDER BY c.chat_id, r.thread_id",
        )
        .bind(unit_id)
        .bind(report_type)
        .fetch_all(db)
        .await)?)
    }

    /// A report type's label in `lang` (its name when unknown).
    pub async fn label(&self, report_type: &str, lang: Lang) -> Result<String, DirectoryError> {
        let row: Option<(String, Option<String>)> = read!(&self.0, db => sqlx::query_as(
            "SELECT verbose_name, verbose_name_en FROM directory_report_types WHERE name = $1",
        )
        .bind(report_type)
        .fetch_optional(db)
        .await)?;
        Ok(match (row, lang) {
            (Some((_, Some(english))), Lang::En) => english,
            (Some((russian, _)), _) => russian,
            (None, _) => report_type.to_owned(),
        })
    }

    /// The title of the chat `chat_id`, if the directory knows it.
    pub async fn title(&self, chat_id: i64) -> Result<Option<String>, DirectoryError> {
        let row: Option<(String,)> = read!(&self.0, db => sqlx::query_as(
            "SELECT title FROM directory_chats WHERE chat_id = $1",
        )
        .bind(chat_id)
        .fetch_optional(db)
        .await)?;
        Ok(row.map(|(title,)| title))
    }

    /// Marks a chat as no longer taking the bot's messages (`reason`, as Telegram put it). False when there is no
    /// such chat or it was marked already.
    pub async fn deactivate(&self, chat_id: i64, reason: &str) -> Result<bool, DirectoryError> {
        self.set_inactive(chat_id, Some(reason), "telegram").await
    }

    /// Takes a chat back into the fan-out (the bot was unblocked or added again), on `actor`'s word.
    pub async fn reactivate(&self, chat_id: i64, actor: &str) -> Result<bool, DirectoryError> {
        self.set_inactive(chat_id, None, actor).await
    }

    async fn set_inactive(
        &self,
        chat_id: i64,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<bool, DirectoryError> {
        let changed: Result<u64, DirectoryError> = write_tx!(&self.0, tx => {
            let changed = sqlx::query(
                "UPDATE directory_chats SET inactive_ms = CASE WHEN $2 THEN $3 ELSE NULL END, inactive_reason = $4
                 WHERE chat_id = $1 AND (inactive_ms IS NULL) = $2",
            )
            .bind(chat_id)
            .bind(reason.is_some())
            .bind(now_ms())
            .bind(reason)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if changed > 0 {
                let action = if reason.is_some() { "chat.deactivate" } else { "chat.reactivate" };
                audit!(tx, actor, action, serde_json::json!({ "chat_id": chat_id, "reason": reason }));
            }
            Ok(changed)
        });
        crate::cache::changed();
        Ok(changed? > 0)
    }

    /// A group became a supergroup: the chat takes its new id and keeps its routes. When the new id is a chat
    /// already (someone registered the supergroup), the old chat's routes join it and the old chat goes.
    pub async fn migrate(&self, from: i64, to: i64) -> Result<(), DirectoryError> {
        if from == to {
            return Ok(());
        }
        let moved: Result<(), DirectoryError> = write_tx!(&self.0, tx => {
            let old: Option<(i64,)> = sqlx::query_as("SELECT id FROM directory_chats WHERE chat_id = $1")
                .bind(from)
                .fetch_optional(&mut **tx)
                .await?;
            let new: Option<(i64,)> = sqlx::query_as("SELECT id FROM directory_chats WHERE chat_id = $1")
                .bind(to)
                .fetch_optional(&mut **tx)
                .await?;
            match (old, new) {
                (None, _) => {}
                (Some((old,)), None) => {
                    sqlx::query("UPDATE directory_chats SET chat_id = $2 WHERE id = $1")
                        .bind(old)
                        .bind(to)
                        .execute(&mut **tx)
                        .await?;
                }
                (Some((old,)), Some((new,))) => {
                    sqlx::query(
                        "INSERT INTO directory_routes (report_type_id, unit_id, chat_id, thread_id)
                         SELECT report_type_id, unit_id, $2, thread_id FROM directory_routes WHERE chat_id = $1
                         ON CONFLICT (report_type_id, unit_id, chat_id) DO NOTHING",
                    )
                    .bind(old)
                    .bind(new)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query("DELETE FROM directory_chats WHERE id = $1")
                        .bind(old)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            audit!(tx, "telegram", "chat.migrate", serde_json::json!({ "chat_id": from, "migrate_to": to }));
            Ok(())
        });
        moved?;
        crate::cache::changed();
        Ok(())
    }

    /// Registers a chat if it is new and routes it to `unit_id` for each report type named: what an operator's
    /// setup (the demo, say) does in one call. Idempotent.
    pub async fn subscribe(
        &self,
        chat_id: i64,
        kind: crate::ChatType,
        title: &str,
        unit_id: i64,
        report_types: &[&str],
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let catalog = crate::storage::Catalog(&self.0);
        let chat = crate::storage::NewChat {
            chat_id,
            kind,
            title: title.to_owned(),
            username: None,
        };
        match catalog.create_chat(&chat, actor).await {
            Ok(()) | Err(DirectoryError::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
        for name in report_types {
            let report_type = catalog.report_type_by_name(name).await?;
            crate::manage::Manage(&self.0)
                .add_route(chat_id, unit_id, report_type.id, actor)
                .await?;
        }
        crate::cache::changed();
        Ok(())
    }
}
