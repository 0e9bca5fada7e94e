//! What the admin pages change: master data the original left to SQL or DEBUG mode. Every change is audited, and
//! every change to what a role permits prunes the routes it no longer permits.

use serde::Serialize;
use tillwire_platform::error::{Constraint, ResultExt, violates};
use tillwire_platform::{Store, Text, read, write_tx};

use crate::DirectoryError;
use crate::access::AccessCode;
use crate::storage::{PRUNE_CHAT, PRUNE_ROLE, audit};

/// Rows per admin page.
pub const PAGE_ROWS: i64 = 50;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AdminUnit {
    pub id: i64,
    pub name: String,
    pub uuid: Option<String>,
    pub region_id: Option<i64>,
    pub department_id: Option<i64>,
    pub office_manager_account_name: Option<String>,
    pub dodo_is_api_account_name: Option<String>,
    pub shift_manager_account_name: Option<String>,
}

/// A unit's directory facts, checked.
pub struct UnitInfo {
    pub uuid: String,
    pub region_id: i64,
    pub department_id: i64,
    pub office_manager_account_name: Option<String>,
    pub dodo_is_api_account_name: Option<String>,
    pub shift_manager_account_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AdminReportType {
    pub id: i64,
    pub name: String,
    pub verbose_name: String,
    pub parent_id: Option<i64>,
    pub priority: i64,
    pub is_active: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminRole {
    pub id: i64,
    pub name: String,
    pub unit_ids: Option<String>,
    pub report_type_ids: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminChat {
    pub chat_id: i64,
    pub title: String,
    pub username: Option<String>,
    pub chat_type: String,
    pub role_id: Option<i64>,
    /// What Telegram said when the chat stopped taking the bot's messages (none while it takes them).
    pub inactive_reason: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminRoute {
    pub id: i64,
    pub chat_id: i64,
    pub chat_title: String,
    pub unit_id: i64,
    pub unit_name: String,
    pub report_type: String,
}

/// A page of a list: `LIKE` search text and an offset.
pub struct Search {
    pub like: String,
    pub offset: i64,
}

impl Search {
    pub fn new(q: &str, page: i64) -> Self {
        Search {
            like: format!("%{}%", q.trim()),
            offset: (page.max(1) - 1) * PAGE_ROWS,
        }
    }
}

/// `group_concat` is spelled differently by the two engines.
fn id_list(store: &Store, column: &str) -> String {
    match store.backend() {
        tillwire_platform::Backend::Sqlite => format!("group_concat({column}, ',')"),
        tillwire_platform::Backend::Postgres => {
            format!("string_agg({column}::text, ',' ORDER BY {column})")
        }
    }
}

pub struct Manage<'a>(pub &'a Store);

impl Manage<'_> {
    pub async fn units(&self, search: &Search) -> Result<Vec<AdminUnit>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT u.id, u.name, i.uuid, i.region_id, i.department_id, i.office_manager_account_name,
                    i.dodo_is_api_account_name, i.shift_manager_account_name
             FROM units u LEFT JOIN directory_unit_info i ON i.unit_id = u.id
             WHERE u.name LIKE $1 OR CAST(u.id AS TEXT) = $2 OR i.uuid = $2
             ORDER BY u.id LIMIT $3 OFFSET $4",
        )
        .bind(&search.like)
        .bind(search.like.trim_matches('%'))
        .bind(PAGE_ROWS)
        .bind(search.offset)
        .fetch_all(db)
        .await)?)
    }

    pub async fn set_unit_info(
        &self,
        unit_id: i64,
        info: &UnitInfo,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query(
                "INSERT INTO directory_unit_info (unit_id, uuid, region_id, department_id, office_manager_account_name,
                    dodo_is_api_account_name, shift_manager_account_name) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (unit_id) DO UPDATE SET uuid = excluded.uuid, region_id = excluded.region_id,
                    department_id = excluded.department_id,
                    office_manager_account_name = excluded.office_manager_account_name,
                    dodo_is_api_account_name = excluded.dodo_is_api_account_name,
                    shift_manager_account_name = excluded.shift_manager_account_name",
            )
            .bind(unit_id).bind(&info.uuid).bind(info.region_id).bind(info.department_id)
            .bind(&info.office_manager_account_name).bind(&info.dodo_is_api_account_name)
            .bind(&info.shift_manager_account_name)
            .execute(&mut **tx)
            .await
            .map_err(|error| {
                if violates(&error, Constraint::Unique) {
                    let message = Text::new("Этот UUID уже у другого подразделения.", "This UUID belongs to another unit.");
                    DirectoryError::invalid("uuid", message)
                } else if violates(&error, Constraint::ForeignKey) {
                    let message = Text::new(
                        "Нет такого подразделения, региона или департамента.",
                        "Unknown unit, region or department.",
                    );
                    DirectoryError::Invalid { field: None, message }
                } else {
                    error.into()
                }
            })?;
            audit!(tx, actor, "unit.info", serde_json::json!({"unit_id": unit_id}));
            Ok(())
        });
        done
    }

    pub async fn regions(&self) -> Result<Vec<(i64, String)>, DirectoryError> {
        Ok(
            read!(self.0, db => sqlx::query_as("SELECT id, name FROM directory_regions ORDER BY name, id")
            .fetch_all(db).await)?,
        )
    }

    pub async fn departments(&self) -> Result<Vec<(i64, String, Option<String>)>, DirectoryError> {
        Ok(
            read!(self.0, db => sqlx::query_as("SELECT id, name, uuid FROM directory_departments ORDER BY name, id")
            .fetch_all(db).await)?,
        )
    }

    /// Creates (`id` None) or renames a region.
    pub async fn save_region(
        &self,
        id: Option<i64>,
        name: &str,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            let query = match id {
                None => sqlx::query("INSERT INTO directory_regions (name) VALUES ($1)").bind(name),
                Some(id) => sqlx::query("UPDATE directory_regions SET name = $1 WHERE id = $2").bind(name).bind(id),
            };
            query.execute(&mut **tx).await.on_constraint(Constraint::Unique, || {
                let message = Text::new("Регион с таким названием уже есть.", "A region with this name exists.");
                DirectoryError::invalid("name", message)
            })?;
            audit!(tx, actor, "region.save", serde_json::json!({"id": id, "name": name}));
            Ok(())
        });
        done
    }

    pub async fn save_department(
        &self,
        id: i64,
        name: &str,
        uuid: Option<&str>,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("INSERT INTO directory_departments (id, name, uuid) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name, uuid = excluded.uuid")
                .bind(id).bind(name).bind(uuid)
                .execute(&mut **tx).await
                .on_constraint(Constraint::Unique, || {
                    let message = Text::new(
                        "Департамент с таким названием или UUID уже есть.",
                        "A department with this name or UUID exists.",
                    );
                    DirectoryError::Invalid { field: None, message }
                })?;
            audit!(tx, actor, "department.save", serde_json::json!({"id": id, "name": name}));
            Ok(())
        });
        done
    }

    /// Deletes a region or department that no unit belongs to (the original cascaded to units and routes).
    pub async fn delete_group(
        &self,
        table: Group,
        id: i64,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let sql = match table {
            Group::Region => "DELETE FROM directory_regions WHERE id = $1",
            Group::Department => "DELETE FROM directory_departments WHERE id = $1",
        };
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query(sql).bind(id).execute(&mut **tx).await
                .on_constraint(Constraint::ForeignKey, || DirectoryError::InUse(Text::new(
                    "В нём ещё есть подразделения: сначала перенесите их.",
                    "Units still belong to it; move them first.",
                )))?;
            audit!(tx, actor, "group.delete", serde_json::json!({"group": format!("{table:?}"), "id": id}));
            Ok(())
        });
        done
    }

    pub async fn report_types(&self) -> Result<Vec<AdminReportType>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT id, name, verbose_name, parent_id, priority, is_active FROM directory_report_types ORDER BY id")
            .fetch_all(db).await)?)
    }

    pub async fn update_report_type(
        &self,
        t: &AdminReportType,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        if t.priority < 0 {
            return Err(DirectoryError::invalid(
                "priority",
                Text::new("0 или больше.", "0 or more."),
            ));
        }
        if t.parent_id == Some(t.id) {
            return Err(DirectoryError::invalid(
                "parent_id",
                Text::new(
                    "Тип не может быть родителем самому себе.",
                    "A type cannot be its own parent.",
                ),
            ));
        }
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("UPDATE directory_report_types SET verbose_name = $2, parent_id = $3, priority = $4, is_active = $5 WHERE id = $1")
                .bind(t.id).bind(&t.verbose_name).bind(t.parent_id).bind(t.priority).bind(t.is_active)
                .execute(&mut **tx).await
                .on_constraint(Constraint::ForeignKey, || DirectoryError::invalid(
                    "parent_id",
                    Text::new("Нет такого типа отчёта.", "No such report type."),
                ))?;
            audit!(tx, actor, "report_type.update", serde_json::json!({"id": t.id, "active": t.is_active, "priority": t.priority, "parent_id": t.parent_id}));
            Ok(())
        });
        done
    }

    pub async fn roles(&self) -> Result<Vec<AdminRole>, DirectoryError> {
        let sql = format!(
            "SELECT r.id, r.name,
                (SELECT {} FROM directory_role_units ru WHERE ru.role_id = r.id) AS unit_ids,
                (SELECT {} FROM directory_role_report_types rt WHERE rt.role_id = r.id) AS report_type_ids
             FROM directory_roles r ORDER BY r.id",
            id_list(self.0, "ru.unit_id"),
            id_list(self.0, "rt.report_type_id"),
        );
        Ok(read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await)?)
    }

    /// A new role with a generated access code, returned here only.
    pub async fn create_role(&self, name: &str, actor: &str) -> Result<AccessCode, DirectoryError> {
        let code = AccessCode::generate();
        let hash = code.hash();
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("INSERT INTO directory_roles (name, access_code_hash, created_ms) VALUES ($1, $2, $3)")
                .bind(name).bind(&hash).bind(tillwire_platform::now_ms())
                .execute(&mut **tx).await?;
            audit!(tx, actor, "role.create", serde_json::json!({"name": name}));
            Ok(())
        });
        done.map(|()| code)
    }

    /// Replaces a role's access code with a generated one, returned here only.
    pub async fn new_code(&self, id: i64, actor: &str) -> Result<AccessCode, DirectoryError> {
        let code = AccessCode::generate();
        let hash = code.hash();
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("UPDATE directory_roles SET access_code_hash = $2 WHERE id = $1")
                .bind(id).bind(&hash).execute(&mut **tx).await?;
            audit!(tx, actor, "role.code", serde_json::json!({"id": id}));
            Ok(())
        });
        done.map(|()| code)
    }

    /// Sets what a role permits and prunes its chats' routes to it.
    pub async fn set_role(
        &self,
        id: i64,
        name: &str,
        units: &[i64],
        types: &[i64],
        actor: &str,
    ) -> Result<u64, DirectoryError> {
        let pruned: Result<u64, DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("UPDATE directory_roles SET name = $2 WHERE id = $1").bind(id).bind(name).execute(&mut **tx).await?;
            sqlx::query("DELETE FROM directory_role_units WHERE role_id = $1").bind(id).execute(&mut **tx).await?;
            sqlx::query("DELETE FROM directory_role_report_types WHERE role_id = $1").bind(id).execute(&mut **tx).await?;
            for unit in units {
                sqlx::query("INSERT INTO directory_role_units (role_id, unit_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id).bind(unit).execute(&mut **tx).await
                    .on_constraint(Constraint::ForeignKey, || DirectoryError::invalid(
                        "unit_ids",
                        Text::new(format!("Нет подразделения {unit}."), format!("No unit {unit}.")),
                    ))?;
            }
            for report_type in types {
                sqlx::query("INSERT INTO directory_role_report_types (role_id, report_type_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id).bind(report_type).execute(&mut **tx).await
                    .on_constraint(Constraint::ForeignKey, || DirectoryError::invalid(
                        "report_type_ids",
                        Text::new(format!("Нет типа отчёта {report_type}."), format!("No report type {report_type}.")),
                    ))?;
            }
            let pruned = sqlx::query(PRUNE_ROLE).bind(id).execute(&mut **tx).await?.rows_affected();
            audit!(tx, actor, "role.update", serde_json::json!({"id": id, "units": units, "report_types": types, "pruned_routes": pruned}));
            Ok(pruned)
        });
        pruned
    }

    /// Deletes a role; its chats lose it and, with it, their routes (the original left them orphaned).
    pub async fn delete_role(&self, id: i64, actor: &str) -> Result<(), DirectoryError> {
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("DELETE FROM directory_role_units WHERE role_id = $1").bind(id).execute(&mut **tx).await?;
            let pruned = sqlx::query(PRUNE_ROLE).bind(id).execute(&mut **tx).await?.rows_affected();
            sqlx::query("DELETE FROM directory_roles WHERE id = $1").bind(id).execute(&mut **tx).await?;
            audit!(tx, actor, "role.delete", serde_json::json!({"id": id, "pruned_routes": pruned}));
            Ok(())
        });
        done
    }

    pub async fn chats(&self, search: &Search) -> Result<Vec<AdminChat>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT chat_id, title, username, chat_type, role_id, inactive_reason FROM directory_chats
             WHERE title LIKE $1 OR username LIKE $1 OR CAST(chat_id AS TEXT) = $2
             ORDER BY id LIMIT $3 OFFSET $4",
        )
        .bind(&search.like).bind(search.like.trim_matches('%')).bind(PAGE_ROWS).bind(search.offset)
        .fetch_all(db).await)?)
    }

    /// Sets a chat's role and prunes its routes, as the original's admin did (no role: no routes).
    pub async fn set_chat_role(
        &self,
        chat_id: i64,
        role: Option<i64>,
        actor: &str,
    ) -> Result<u64, DirectoryError> {
        let pruned: Result<u64, DirectoryError> = write_tx!(self.0, tx => {
            let found: Option<(i64, Option<i64>)> = sqlx::query_as("SELECT id, role_id FROM directory_chats WHERE chat_id = $1")
                .bind(chat_id).fetch_optional(&mut **tx).await?;
            let (id, old_role) = found.ok_or_else(|| DirectoryError::Missing(Text::new("Чат не найден.", "Chat not found.")))?;
            sqlx::query("UPDATE directory_chats SET role_id = $2 WHERE id = $1")
                .bind(id).bind(role).execute(&mut **tx).await
                .on_constraint(Constraint::ForeignKey, || DirectoryError::invalid(
                    "role_id",
                    Text::new("Нет такой роли.", "No such role."),
                ))?;
            // Saving a group's form again without a role must not drop the routes its members gave it.
            let pruned = if old_role == role {
                0
            } else {
                sqlx::query(PRUNE_CHAT).bind(id).execute(&mut **tx).await?.rows_affected()
            };
            audit!(tx, actor, "chat.role", serde_json::json!({"chat_id": chat_id, "role_id": role, "pruned_routes": pruned}));
            Ok(pruned)
        });
        pruned
    }

    pub async fn routes(&self, search: &Search) -> Result<Vec<AdminRoute>, DirectoryError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT r.id, c.chat_id, c.title AS chat_title, u.id AS unit_id, u.name AS unit_name, t.name AS report_type
             FROM directory_routes r JOIN directory_chats c ON c.id = r.chat_id JOIN units u ON u.id = r.unit_id
             JOIN directory_report_types t ON t.id = r.report_type_id
             WHERE c.title LIKE $1 OR u.name LIKE $1 OR t.name LIKE $1 OR CAST(c.chat_id AS TEXT) = $2
             ORDER BY r.id LIMIT $3 OFFSET $4",
        )
        .bind(&search.like).bind(search.like.trim_matches('%')).bind(PAGE_ROWS).bind(search.offset)
        .fetch_all(db).await)?)
    }

    /// An operator's route: no role check (as in the original's admin), but idempotent.
    pub async fn add_route(
        &self,
        chat_id: i64,
        unit_id: i64,
        report_type_id: i64,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            let added = sqlx::query(
                "INSERT INTO directory_routes (report_type_id, unit_id, chat_id)
                 SELECT $3, $2, id FROM directory_chats WHERE chat_id = $1
                 ON CONFLICT (report_type_id, unit_id, chat_id) DO NOTHING",
            )
            .bind(chat_id).bind(unit_id).bind(report_type_id)
            .execute(&mut **tx).await
            .on_constraint(Constraint::ForeignKey, || {
                let message = Text::new("Нет такого подразделения или типа отчёта.", "No such unit or report type.");
                DirectoryError::Invalid { field: None, message }
            })?
            .rows_affected();
            audit!(tx, actor, "route.add", serde_json::json!({"chat_id": chat_id, "unit_id": unit_id, "report_type_id": report_type_id, "added": added}));
            Ok(())
        });
        done
    }

    pub async fn delete_route(&self, id: i64, actor: &str) -> Result<(), DirectoryError> {
        let done: Result<(), DirectoryError> = write_tx!(self.0, tx => {
            sqlx::query("DELETE FROM directory_routes WHERE id = $1").bind(id).execute(&mut **tx).await?;
            audit!(tx, actor, "route.delete", serde_json::json!({"id": id}));
            Ok(())
        });
        done
    }
}

/// The two groupings of units.
#[derive(Debug, Clone, Copy)]
pub enum Group {
    Region,
    Department,
}
