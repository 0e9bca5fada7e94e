//! The directory's queries. Every list has a defined order (ids, or priority then id), so pages never drift.
//! Every write runs in one transaction with its audit row.

use serde::Serialize;
use tillwire_platform::{Store, now_ms, read, write_tx};

use crate::DirectoryError;
use crate::access::AccessCode;
use crate::error::messages;
use crate::input::Page;

/// Appends an audit row inside the caller's transaction.
macro_rules! audit {
    ($tx:expr, $actor:expr, $action:expr, $detail:expr) => {
        sqlx::query(
            "INSERT INTO directory_audit (at_ms, actor, action, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(tillwire_platform::now_ms())
        .bind($actor)
        .bind($action)
        .bind($detail.to_string())
        .execute(&mut **$tx)
        .await?
    };
}
pub(crate) use audit;

/// Deletes the routes of the selected chats that their role no longer permits (unit **or** report type), and
/// all routes of selected chats without a role.
macro_rules! prune_sql {
    ($chats:literal) => {
        concat!(
            "DELETE FROM directory_routes WHERE chat_id IN (SELECT id FROM directory_chats WHERE ",
            $chats,
            ") AND NOT EXISTS (SELECT 1 FROM directory_chats c
                JOIN directory_role_units ru ON ru.role_id = c.role_id
                JOIN directory_role_report_types rt ON rt.role_id = c.role_id
                WHERE c.id = directory_routes.chat_id AND ru.unit_id = directory_routes.unit_id
                  AND rt.report_type_id = directory_routes.report_type_id)"
        )
    };
}
pub(crate) const PRUNE_CHAT: &str = prune_sql!("id = $1");
pub(crate) const PRUNE_ROLE: &str = prune_sql!("role_id = $1");

/// A Telegram chat's kind, as the API takes and lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChatType {
    Private,
    Group,
}

impl ChatType {
    pub const ALL: [ChatType; 2] = [ChatType::Private, ChatType::Group];

    pub fn as_str(self) -> &'static str {
        match self {
            ChatType::Private => "PRIVATE",
            ChatType::Group => "GROUP",
        }
    }

    /// The original's Russian display label.
    pub fn label(self) -> &'static str {
        match self {
            ChatType::Private => "Личный",
            ChatType::Group => "Групповой",
        }
    }

    pub fn parse(text: &str) -> Option<ChatType> {
        ChatType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// `/units/` item: key order and the region's name as in the original.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UnitItem {
    pub id: i64,
    pub name: String,
    pub uuid: Option<String>,
    pub office_manager_account_name: Option<String>,
    pub dodo_is_api_account_name: Option<String>,
    pub region: Option<String>,
}

/// Role unit item: `region_id` instead of the name, account names never null (the bot's model wants strings).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RoleUnitItem {
    pub id: i64,
    pub name: String,
    pub uuid: Option<String>,
    pub region_id: Option<i64>,
    pub office_manager_account_name: String,
    pub dodo_is_api_account_name: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Region {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReportTypeItem {
    pub id: i64,
    pub name: String,
    pub verbose_name: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chat {
    pub chat_id: i64,
    pub username: Option<String>,
    pub title: String,
    pub chat_type: String,
    pub role_id: Option<i64>,
}

impl Chat {
    pub fn kind(&self) -> ChatType {
        ChatType::parse(&self.chat_type).unwrap_or(ChatType::Group)
    }
}

/// A new chat, checked.
pub struct NewChat {
    pub chat_id: i64,
    pub kind: ChatType,
    pub title: String,
    pub username: Option<String>,
}

/// A chat update: `username: None` keeps the stored one; `migrate_to` is the supergroup's new chat id.
pub struct ChatUpdate {
    pub title: String,
    pub username: Option<Option<String>>,
    pub migrate_to: Option<i64>,
}

/// A route request, checked: who asks, for which chat, type and units.
pub struct RouteRequest {
    pub report_type_id: i64,
    pub chat_id: i64,
    pub user_chat_id: i64,
    pub unit_ids: Vec<i64>,
}

const UNIT_FIELDS: &str = "u.id, u.name, i.uuid, i.office_manager_account_name, i.dodo_is_api_account_name, r.name AS region";
const UNIT_JOINS: &str = "LEFT JOIN directory_unit_info i ON i.unit_id = u.id LEFT JOIN directory_regions r ON r.id = i.region_id";
const ACTIVE_TOP_LEVEL: &str = "is_active AND (parent_id IS NULL OR parent_id NOT IN
     (SELECT id FROM directory_report_types WHERE name = 'STATISTICS'))";
const STATISTICS_CHILDREN: &str =
    "is_active AND parent_id IN (SELECT id FROM directory_report_types WHERE name = 'STATISTICS')";

/// How a route request treats what the original did not check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    /// All-or-nothing, 409 on a route that exists, inactive types accepted (the compatible API).
    Original,
    /// Routes that exist count as done; inactive types are refused (the bot's buttons).
    Ensure,
}

/// The directory's tables.
pub struct Catalog<'a>(pub &'a Store);

impl Catalog<'_> {
    pub async fn units(&self, page: Page) -> Result<Vec<UnitItem>, DirectoryError> {
        // Page the bare units first, then join only that page: joining every unit before LIMIT/OFFSET made
        // each page cost the whole table.
        let sql = format!(
            "SELECT {UNIT_FIELDS} FROM (SELECT id, name FROM units ORDER BY id LIMIT $1 OFFSET $2) u {UNIT_JOINS}
             ORDER BY u.id"
        );
        Ok(read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(page.fetch())
            .bind(page.offset)
            .fetch_all(db)
            .await)?)
    }

    pub async fn unit_by_name(&self, name: &str) -> Result<UnitItem, DirectoryError> {
        let sql = format!("SELECT {UNIT_FIELDS} FROM units u {UNIT_JOINS} WHERE u.name = $1");
        let found: Option<UnitItem> = read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(db)
            .await)?;
        found.ok_or(DirectoryError::NotFound(messages::UNIT_BY_NAME_NOT_FOUND))
    }

    pub async fn regions(&self, page: Page) -> Result<Vec<Region>, DirectoryError> {
        Ok(
            read!(self.0, db => sqlx::query_as("SELECT id, name FROM directory_regions ORDER BY id LIMIT $1 OFFSET $2")
            .bind(page.fetch())
            .bind(page.offset)
            .fetch_all(db)
            .await)?,
        )
    }

    pub async fn departments(&self, page: Page) -> Result<Vec<Department>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT id, name, uuid FROM directory_departments ORDER BY id LIMIT $1 OFFSET $2",
        )
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?)
    }

    /// The classic list: active types except the statistics sub-types (or the statistics sub-types only).
    pub async fn report_types(
        &self,
        page: Page,
        statistics: bool,
    ) -> Result<Vec<ReportTypeItem>, DirectoryError> {
        let filter = if statistics {
            STATISTICS_CHILDREN
        } else {
            ACTIVE_TOP_LEVEL
        };
        let sql = format!(
            "SELECT id, name, verbose_name FROM directory_report_types WHERE {filter}
             ORDER BY priority DESC, id LIMIT $1 OFFSET $2"
        );
        Ok(read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(page.fetch())
            .bind(page.offset)
            .fetch_all(db)
            .await)?)
    }

    /// HEAD's unpaginated list: active children of `parent_id`.
    pub async fn report_type_children(
        &self,
        parent_id: i64,
    ) -> Result<Vec<ReportTypeItem>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT id, name, verbose_name FROM directory_report_types WHERE is_active AND parent_id = $1
             ORDER BY priority DESC, id",
        )
        .bind(parent_id)
        .fetch_all(db)
        .await)?)
    }

    pub async fn report_type_by_name(&self, name: &str) -> Result<ReportTypeItem, DirectoryError> {
        let found: Option<ReportTypeItem> = read!(self.0, db => sqlx::query_as(
            "SELECT id, name, verbose_name FROM directory_report_types WHERE name = $1 AND is_active",
        )
        .bind(name)
        .fetch_optional(db)
        .await)?;
        found.ok_or(DirectoryError::NotFound(messages::REPORT_TYPE_NOT_FOUND))
    }

    pub async fn chat(&self, chat_id: i64) -> Result<Chat, DirectoryError> {
        let found: Option<Chat> = read!(self.0, db => sqlx::query_as(
            "SELECT chat_id, username, title, chat_type, role_id FROM directory_chats WHERE chat_id = $1",
        )
        .bind(chat_id)
        .fetch_optional(db)
        .await)?;
        found.ok_or(DirectoryError::NotFound(messages::CHAT_NOT_FOUND))
    }

    pub async fn chats(&self, page: Page) -> Result<Vec<(String, i64)>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT title, chat_id FROM directory_chats ORDER BY id LIMIT $1 OFFSET $2",
        )
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?)
    }

    /// Unit ids routed to a Telegram chat for a report type.
    pub async fn routed_units(
        &self,
        chat_id: i64,
        report_type_id: i64,
        page: Page,
    ) -> Result<Vec<i64>, DirectoryError> {
        let rows: Vec<(i64,)> = read!(self.0, db => sqlx::query_as(
            "SELECT r.unit_id FROM directory_routes r JOIN directory_chats c ON c.id = r.chat_id
             WHERE c.chat_id = $1 AND r.report_type_id = $2 ORDER BY r.unit_id LIMIT $3 OFFSET $4",
        )
        .bind(chat_id)
        .bind(report_type_id)
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Telegram chat ids that get a report type for a unit: the notification fan-out (chats that blocked or
    /// removed the bot are left out).
    pub async fn routed_chats(
        &self,
        unit_id: i64,
        report_type_id: i64,
        page: Page,
    ) -> Result<Vec<i64>, DirectoryError> {
        let rows: Vec<(i64,)> = read!(self.0, db => sqlx::query_as(
            "SELECT c.chat_id FROM directory_routes r JOIN directory_chats c ON c.id = r.chat_id
             WHERE r.unit_id = $1 AND r.report_type_id = $2 AND c.inactive_ms IS NULL
             ORDER BY r.chat_id LIMIT $3 OFFSET $4",
        )
        .bind(unit_id)
        .bind(report_type_id)
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The role of a Telegram user: 404 for an unknown chat, 403 for a chat without a role.
    pub async fn role_of(&self, chat_id: i64) -> Result<i64, DirectoryError> {
        self.chat(chat_id)
            .await?
            .role_id
            .ok_or_else(|| DirectoryError::Forbidden(messages::NO_ROLE.into()))
    }

    pub async fn role_units(
        &self,
        role_id: i64,
        region_id: Option<i64>,
        page: Page,
    ) -> Result<Vec<RoleUnitItem>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT u.id, u.name, i.uuid, i.region_id,
                    COALESCE(i.office_manager_account_name, '') AS office_manager_account_name,
                    COALESCE(i.dodo_is_api_account_name, '') AS dodo_is_api_account_name
             FROM directory_role_units ru JOIN units u ON u.id = ru.unit_id
             LEFT JOIN directory_unit_info i ON i.unit_id = u.id
             WHERE ru.role_id = $1 AND ($2 IS NULL OR i.region_id = $2)
             ORDER BY u.id LIMIT $3 OFFSET $4",
        )
        .bind(role_id)
        .bind(region_id)
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?)
    }

    pub async fn role_regions(
        &self,
        role_id: i64,
        page: Page,
    ) -> Result<Vec<Region>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT r.id, r.name FROM directory_regions r WHERE r.id IN (
                SELECT i.region_id FROM directory_role_units ru JOIN directory_unit_info i ON i.unit_id = ru.unit_id
                WHERE ru.role_id = $1)
             ORDER BY r.id LIMIT $2 OFFSET $3",
        )
        .bind(role_id)
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?)
    }

    /// A role's report types, inactive ones included (as in the original).
    pub async fn role_report_types(
        &self,
        role_id: i64,
        page: Page,
    ) -> Result<Vec<ReportTypeItem>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT t.id, t.name, t.verbose_name FROM directory_role_report_types rt
             JOIN directory_report_types t ON t.id = rt.report_type_id
             WHERE rt.role_id = $1 ORDER BY t.priority DESC, t.id LIMIT $2 OFFSET $3",
        )
        .bind(role_id)
        .bind(page.fetch())
        .bind(page.offset)
        .fetch_all(db)
        .await)?)
    }

    pub async fn create_chat(&self, chat: &NewChat, actor: &str) -> Result<(), DirectoryError> {
        let created: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            let inserted = sqlx::query(
                "INSERT INTO directory_chats (chat_id, username, title, chat_type, role_id, created_ms)
                 VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (chat_id) DO NOTHING",
            )
            .bind(chat.chat_id)
            .bind(chat.username.as_deref())
            .bind(&chat.title)
            .bind(chat.kind.as_str())
            .bind(now_ms())
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(DirectoryError::Conflict(messages::CHAT_EXISTS));
            }
            audit!(tx, actor, "chat.create", serde_json::json!({"chat_id": chat.chat_id, "type": chat.kind.as_str()}));
            Ok(())
        });
        created
    }

    /// Updates title and username; with `migrate_to` (a group became a supergroup) the chat takes its new id
    /// and keeps its routes. A new id that another chat already has is refused (409).
    pub async fn update_chat(
        &self,
        chat_id: i64,
        update: &ChatUpdate,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let updated: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM directory_chats WHERE chat_id = $1")
                .bind(chat_id)
                .fetch_optional(&mut **tx)
                .await?;
            let (id,) = found.ok_or(DirectoryError::NotFound(messages::CHAT_NOT_FOUND))?;
            sqlx::query(
                "UPDATE directory_chats SET title = $2, username = CASE WHEN $3 THEN $4 ELSE username END WHERE id = $1",
            )
            .bind(id)
            .bind(&update.title)
            .bind(update.username.is_some())
            .bind(update.username.clone().flatten())
            .execute(&mut **tx)
            .await?;
            if let Some(new_chat_id) = update.migrate_to.filter(|n| *n != chat_id) {
                let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM directory_chats WHERE chat_id = $1")
                    .bind(new_chat_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                // Moving onto a chat that already exists would hand this chat's routes to a chat of another
                // role (and delete this one): refused, nothing changes.
                if existing.is_some() {
                    return Err(DirectoryError::Conflict(messages::CHAT_EXISTS));
                }
                sqlx::query("UPDATE directory_chats SET chat_id = $2 WHERE id = $1")
                    .bind(id)
                    .bind(new_chat_id)
                    .execute(&mut **tx)
                    .await?;
            }
            audit!(tx, actor, "chat.update", serde_json::json!({"chat_id": chat_id, "migrate_to": update.migrate_to}));
            Ok(())
        });
        updated
    }

    /// Route creation with the original's checks in the original order (spec §3.4), all-or-nothing.
    pub async fn create_routes(
        &self,
        request: &RouteRequest,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        self.insert_routes(request, actor, Creation::Original)
            .await
            .map(|_| ())
    }

    /// Idempotent route creation ("ensure", spec §10): the same checks, routes that exist are kept, and an inactive
    /// report type is refused. How many routes were added.
    pub async fn ensure_routes(
        &self,
        request: &RouteRequest,
        actor: &str,
    ) -> Result<u64, DirectoryError> {
        self.insert_routes(request, actor, Creation::Ensure).await
    }

    async fn insert_routes(
        &self,
        request: &RouteRequest,
        actor: &str,
        creation: Creation,
    ) -> Result<u64, DirectoryError> {
        let created: Result<u64, DirectoryError> = write_tx!(self.0, tx => {
            let user: Option<(Option<i64>,)> = sqlx::query_as("SELECT role_id FROM directory_chats WHERE chat_id = $1")
                .bind(request.user_chat_id)
                .fetch_optional(&mut **tx)
                .await?;
            let (role,) = user.ok_or(DirectoryError::NotFound(messages::CHAT_NOT_FOUND))?;
            let role = role.ok_or_else(|| DirectoryError::Forbidden(messages::NO_ROLE.into()))?;
            let report_type: Option<(bool,)> = sqlx::query_as("SELECT is_active FROM directory_report_types WHERE id = $1")
                .bind(request.report_type_id)
                .fetch_optional(&mut **tx)
                .await?;
            let (active,) = report_type.ok_or(DirectoryError::NotFound(messages::REPORT_TYPE_BY_ID_NOT_FOUND))?;
            if creation == Creation::Ensure && !active {
                return Err(DirectoryError::Forbidden(messages::REPORT_TYPE_INACTIVE.into()));
            }
            let permitted: Option<(i64,)> = sqlx::query_as(
                "SELECT report_type_id FROM directory_role_report_types WHERE role_id = $1 AND report_type_id = $2",
            )
            .bind(role)
            .bind(request.report_type_id)
            .fetch_optional(&mut **tx)
            .await?;
            permitted.ok_or_else(|| DirectoryError::Forbidden(messages::REPORT_TYPE_DENIED.into()))?;
            let role_units: Vec<(i64,)> = sqlx::query_as("SELECT unit_id FROM directory_role_units WHERE role_id = $1")
                .bind(role)
                .fetch_all(&mut **tx)
                .await?;
            let denied: Vec<String> = request
                .unit_ids
                .iter()
                .filter(|id| !role_units.iter().any(|(u,)| u == *id))
                .map(i64::to_string)
                .collect();
            if !denied.is_empty() {
                // The original's text embeds a Python set literal; clients may show it, so it is kept.
                return Err(DirectoryError::Forbidden(format!("Permission to units {{{}}} denied", denied.join(", "))));
            }
            let target: Option<(i64,)> = sqlx::query_as("SELECT id FROM directory_chats WHERE chat_id = $1")
                .bind(request.chat_id)
                .fetch_optional(&mut **tx)
                .await?;
            let (target,) = target.ok_or(DirectoryError::NotFound(messages::CHAT_NOT_FOUND))?;
            let mut added = 0;
            for unit_id in &request.unit_ids {
                let inserted = sqlx::query(
                    "INSERT INTO directory_routes (report_type_id, unit_id, chat_id) VALUES ($1, $2, $3)
                     ON CONFLICT (report_type_id, unit_id, chat_id) DO NOTHING",
                )
                .bind(request.report_type_id)
                .bind(unit_id)
                .bind(target)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if inserted == 0 && creation == Creation::Original {
                    // Returning the error drops the transaction: nothing of this request is kept.
                    return Err(DirectoryError::Conflict(messages::ROUTE_EXISTS));
                }
                added += inserted;
            }
            audit!(tx, actor, "routes.create", serde_json::json!({
                "chat_id": request.chat_id, "user_chat_id": request.user_chat_id,
                "report_type_id": request.report_type_id, "unit_ids": request.unit_ids, "added": added,
            }));
            Ok(added)
        });
        created
    }

    /// Deletes the routes of (Telegram chat, type, units); nothing matching is not an error.
    pub async fn delete_routes(
        &self,
        chat_id: i64,
        report_type_id: i64,
        unit_ids: &[i64],
        actor: &str,
    ) -> Result<u64, DirectoryError> {
        let deleted: Result<u64, DirectoryError> = write_tx!(self.0, tx => {
            let mut deleted = 0;
            for unit_id in unit_ids {
                deleted += sqlx::query(
                    "DELETE FROM directory_routes WHERE report_type_id = $2 AND unit_id = $3
                     AND chat_id IN (SELECT id FROM directory_chats WHERE chat_id = $1)",
                )
                .bind(chat_id)
                .bind(report_type_id)
                .bind(unit_id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            }
            audit!(tx, actor, "routes.delete", serde_json::json!({
                "chat_id": chat_id, "report_type_id": report_type_id, "unit_ids": unit_ids, "deleted": deleted,
            }));
            Ok(deleted)
        });
        deleted
    }

    /// Gives a chat the role whose access code this is, and prunes the routes the role does not permit.
    pub async fn assign_role(
        &self,
        chat_id: i64,
        code: &AccessCode,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let assigned: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            let chat: Option<(i64,)> = sqlx::query_as("SELECT id FROM directory_chats WHERE chat_id = $1")
                .bind(chat_id)
                .fetch_optional(&mut **tx)
                .await?;
            let (id,) = chat.ok_or(DirectoryError::NotFound(messages::CHAT_NOT_FOUND))?;
            let roles: Vec<(i64, String)> = sqlx::query_as("SELECT id, access_code_hash FROM directory_roles ORDER BY id")
                .fetch_all(&mut **tx)
                .await?;
            let role = roles
                .iter()
                .find(|(_, hash)| code.matches(hash))
                .map(|(role, _)| *role)
                .ok_or(DirectoryError::NotFound(messages::ROLE_NOT_FOUND))?;
            sqlx::query("UPDATE directory_chats SET role_id = $2 WHERE id = $1")
                .bind(id)
                .bind(role)
                .execute(&mut **tx)
                .await?;
            let pruned = sqlx::query(PRUNE_CHAT).bind(id).execute(&mut **tx).await?.rows_affected();
            audit!(tx, actor, "chat.role", serde_json::json!({"chat_id": chat_id, "role_id": role, "pruned_routes": pruned}));
            Ok(())
        });
        assigned
    }
}
