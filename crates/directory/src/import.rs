//! Bulk import of the directory's master data from one JSON file (`tillwire directory import FILE`, or an upload
//! on the admin page). Top-level keys: `regions`, `departments`, `units`, `report_types`, `roles`,
//! `telegram_chats`, each a list of rows with the fields of spec §2. Rows are matched by id (chats by `chat_id`),
//! so importing the same file twice changes nothing. The whole file is one transaction: a row that does not fit
//! is reported with its line and field, and nothing is written.

use std::collections::HashSet;

use serde::Deserialize;
use tillwire_platform::error::{Constraint, ResultExt};
use tillwire_platform::web::Lang;
use tillwire_platform::{Backend, Store, Text, read, write_tx};

use crate::DirectoryError;
use crate::access::AccessCode;
use crate::storage::{ChatType, PRUNE_CHAT, PRUNE_ROLE, audit};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFile {
    #[serde(default)]
    regions: Vec<RegionRow>,
    #[serde(default)]
    departments: Vec<DepartmentRow>,
    #[serde(default)]
    units: Vec<UnitRow>,
    #[serde(default)]
    report_types: Vec<ReportTypeRow>,
    #[serde(default)]
    roles: Vec<RoleRow>,
    #[serde(default)]
    telegram_chats: Vec<ChatRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionRow {
    id: i64,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentRow {
    id: i64,
    name: String,
    uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitRow {
    id: i64,
    name: String,
    uuid: String,
    region_id: i64,
    department_id: i64,
    office_manager_account_name: Option<String>,
    dodo_is_api_account_name: Option<String>,
    shift_manager_account_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportTypeRow {
    id: i64,
    name: String,
    verbose_name: String,
    parent_id: Option<i64>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    is_active: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRow {
    id: i64,
    name: String,
    access_code: String,
    #[serde(default)]
    unit_ids: Vec<i64>,
    #[serde(default)]
    report_type_ids: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRow {
    chat_id: i64,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    username: Option<String>,
    role_id: Option<i64>,
}

/// How many rows each section held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub regions: usize,
    pub departments: usize,
    pub units: usize,
    pub report_types: usize,
    pub roles: usize,
    pub telegram_chats: usize,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} regions, {} departments, {} units, {} report types, {} roles, {} Telegram chats",
            self.regions,
            self.departments,
            self.units,
            self.report_types,
            self.roles,
            self.telegram_chats
        )
    }
}

/// Where a row starts in the file: the line of the `{` of the `index`-th element of the top-level `section`.
fn row_line(text: &str, section: &str, index: usize) -> usize {
    let (mut depth, mut line, mut in_string, mut escaped) = (0usize, 1usize, false, false);
    let (mut last_string, mut current_key, mut string_start) = (String::new(), String::new(), 0);
    let mut seen = 0;
    for (offset, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    last_string = text[string_start..offset].to_owned();
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                string_start = offset + 1;
            }
            ':' if depth == 1 => {
                current_key = last_string.clone();
                seen = 0;
            }
            '{' | '[' => {
                if c == '{' && depth == 2 && current_key == section {
                    if seen == index {
                        return line;
                    }
                    seen += 1;
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    0
}

/// Parses and imports; errors name the line and field.
pub async fn import(
    store: &Store,
    text: &str,
    actor: &str,
) -> Result<ImportReport, DirectoryError> {
    let file: ImportFile = serde_json::from_str(text).map_err(|e| {
        in_file(Text::new(
            format!("строка {}: {e}", e.line()),
            format!("line {}: {e}", e.line()),
        ))
    })?;
    let at = |section: &str, index: usize, field: &str, message: Text| {
        let line = row_line(text, section, index);
        let place = format!("{section}[{index}].{field}");
        in_file(Text::new(
            format!("строка {line}: {place}: {}", message.get(Lang::Ru)),
            format!("line {line}: {place}: {}", message.get(Lang::En)),
        ))
    };
    let existing = Existing::load(store).await?;
    check_rows(&file, &existing, &at)?;
    let is_postgres = store.backend() == Backend::Postgres;
    let report: Result<ImportReport, DirectoryError> = write_tx!(store, tx => {
        for (i, row) in file.regions.iter().enumerate() {
            sqlx::query("INSERT INTO directory_regions (id, name) VALUES ($1, $2)
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name")
                .bind(row.id).bind(&row.name).execute(&mut **tx).await
                .on_constraint(Constraint::Unique, || at("regions", i, "name", Text::new("уже у другого региона", "already used by another region")))?;
        }
        for (i, row) in file.departments.iter().enumerate() {
            sqlx::query("INSERT INTO directory_departments (id, name, uuid) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name, uuid = excluded.uuid")
                .bind(row.id).bind(&row.name).bind(&row.uuid).execute(&mut **tx).await
                .on_constraint(Constraint::Unique, || at("departments", i, "name", Text::new("название или uuid уже у другого департамента", "name or uuid already used by another department")))?;
        }
        for (i, row) in file.units.iter().enumerate() {
            sqlx::query("INSERT INTO units (id, name, is_default, created_ms) VALUES ($1, $2, FALSE, $3)
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name")
                .bind(row.id).bind(&row.name).bind(tillwire_platform::now_ms()).execute(&mut **tx).await
                .on_constraint(Constraint::Unique, || at("units", i, "name", taken_by_unit()))?;
            sqlx::query(
                "INSERT INTO directory_unit_info (unit_id, uuid, region_id, department_id, office_manager_account_name,
                    dodo_is_api_account_name, shift_manager_account_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (unit_id) DO UPDATE SET uuid = excluded.uuid, region_id = excluded.region_id,
                    department_id = excluded.department_id,
                    office_manager_account_name = excluded.office_manager_account_name,
                    dodo_is_api_account_name = excluded.dodo_is_api_account_name,
                    shift_manager_account_name = excluded.shift_manager_account_name",
            )
            .bind(row.id).bind(&row.uuid).bind(row.region_id).bind(row.department_id)
            .bind(&row.office_manager_account_name).bind(&row.dodo_is_api_account_name)
            .bind(&row.shift_manager_account_name)
            .execute(&mut **tx).await
            .on_constraint(Constraint::Unique, || at("units", i, "uuid", taken_by_unit()))?;
        }
        for (i, row) in file.report_types.iter().enumerate() {
            sqlx::query(
                "INSERT INTO directory_report_types (id, name, verbose_name, parent_id, priority, is_active)
                 VALUES ($1, $2, $3, NULL, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, verbose_name = excluded.verbose_name,
                    priority = excluded.priority, is_active = excluded.is_active",
            )
            .bind(row.id).bind(&row.name).bind(&row.verbose_name).bind(row.priority).bind(row.is_active)
            .execute(&mut **tx).await
            .on_constraint(Constraint::Unique, || at("report_types", i, "name", Text::new("уже у другого типа отчёта", "already used by another report type")))?;
        }
        // Parents after every type exists, so a file may list children before their parent.
        for row in &file.report_types {
            sqlx::query("UPDATE directory_report_types SET parent_id = $2 WHERE id = $1")
                .bind(row.id).bind(row.parent_id).execute(&mut **tx).await?;
        }
        for row in &file.roles {
            let stored: Option<(String,)> = sqlx::query_as("SELECT access_code_hash FROM directory_roles WHERE id = $1")
                .bind(row.id).fetch_optional(&mut **tx).await?;
            let code = AccessCode::parse(&row.access_code)?;
            // Re-hashing an unchanged code would change the row (a new salt), so a re-import keeps it.
            let hash = match stored {
                Some((hash,)) if code.matches(&hash) => hash,
                _ => code.hash(),
            };
            sqlx::query("INSERT INTO directory_roles (id, name, access_code_hash, created_ms) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name, access_code_hash = excluded.access_code_hash")
                .bind(row.id).bind(&row.name).bind(&hash).bind(tillwire_platform::now_ms())
                .execute(&mut **tx).await?;
            sqlx::query("DELETE FROM directory_role_units WHERE role_id = $1").bind(row.id).execute(&mut **tx).await?;
            sqlx::query("DELETE FROM directory_role_report_types WHERE role_id = $1").bind(row.id).execute(&mut **tx).await?;
            for unit in &row.unit_ids {
                sqlx::query("INSERT INTO directory_role_units (role_id, unit_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(row.id).bind(unit).execute(&mut **tx).await?;
            }
            for report_type in &row.report_type_ids {
                sqlx::query("INSERT INTO directory_role_report_types (role_id, report_type_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(row.id).bind(report_type).execute(&mut **tx).await?;
            }
            sqlx::query(PRUNE_ROLE).bind(row.id).execute(&mut **tx).await?;
        }
        for row in &file.telegram_chats {
            let username = row.username.as_deref().filter(|u| !u.is_empty());
            let stored: Option<(Option<i64>,)> = sqlx::query_as("SELECT role_id FROM directory_chats WHERE chat_id = $1")
                .bind(row.chat_id).fetch_optional(&mut **tx).await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO directory_chats (chat_id, username, title, chat_type, role_id, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (chat_id) DO UPDATE SET username = excluded.username, title = excluded.title,
                    chat_type = excluded.chat_type, role_id = excluded.role_id
                 RETURNING id",
            )
            .bind(row.chat_id).bind(username).bind(&row.title).bind(&row.kind).bind(row.role_id)
            .bind(tillwire_platform::now_ms())
            .fetch_one(&mut **tx).await?;
            // Only a role change prunes a chat's routes (as the API's PATCH does): a group without a role keeps
            // the routes its members gave it, so re-importing a file changes nothing.
            if matches!(stored, Some((old,)) if old != row.role_id) {
                sqlx::query(PRUNE_CHAT).bind(id).execute(&mut **tx).await?;
            }
        }
        if is_postgres {
            // Explicit ids do not move the sequences; rows created later must not collide with imported ones.
            for table in ["units", "directory_regions", "directory_report_types", "directory_roles"] {
                let sql = format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))");
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **tx).await?;
            }
        }
        let report = ImportReport {
            regions: file.regions.len(),
            departments: file.departments.len(),
            units: file.units.len(),
            report_types: file.report_types.len(),
            roles: file.roles.len(),
            telegram_chats: file.telegram_chats.len(),
        };
        audit!(tx, actor, "import", format!("{report:?}"));
        Ok(report)
    });
    crate::cache::changed();
    report
}

/// An error in the file (the admin page's upload field is `file`).
fn in_file(message: Text) -> DirectoryError {
    DirectoryError::invalid("file", message)
}

fn taken_by_unit() -> Text {
    Text::new(
        "уже у другого подразделения",
        "already used by another unit",
    )
}

/// A reference to a row neither the file nor the directory has.
fn unknown(ru: &str, en: &str, id: i64) -> Text {
    Text::new(
        format!("нет {ru} {id} ни в файле, ни в справочнике"),
        format!("no {en} {id} in this file or the directory"),
    )
}

/// Ids already in the directory, which a file may refer to without listing them again (e.g. new units of an
/// existing region).
struct Existing {
    regions: HashSet<i64>,
    departments: HashSet<i64>,
    units: HashSet<i64>,
    report_types: HashSet<i64>,
    roles: HashSet<i64>,
    /// (role id, access code hash): a code must open exactly one role.
    codes: Vec<(i64, String)>,
}

impl Existing {
    async fn load(store: &Store) -> Result<Self, DirectoryError> {
        let ids = |table: &'static str| async move {
            let sql = format!("SELECT id FROM {table}");
            let rows: Vec<(i64,)> =
                read!(store, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await)?;
            Ok::<_, DirectoryError>(rows.into_iter().map(|(id,)| id).collect::<HashSet<i64>>())
        };
        Ok(Existing {
            regions: ids("directory_regions").await?,
            departments: ids("directory_departments").await?,
            units: ids("units").await?,
            report_types: ids("directory_report_types").await?,
            roles: ids("directory_roles").await?,
            codes: read!(store, db => sqlx::query_as("SELECT id, access_code_hash FROM directory_roles")
                .fetch_all(db).await)?,
        })
    }
}

/// The checks a row needs before any write, each named with its line: what the file itself must get right, and
/// references, which must point at a row of the file or of the directory.
fn check_rows(
    file: &ImportFile,
    existing: &Existing,
    at: &impl Fn(&str, usize, &str, Text) -> DirectoryError,
) -> Result<(), DirectoryError> {
    let name_ok = |name: &str| (1..=64).contains(&name.trim().chars().count());
    let up_to_64 = || Text::new("от 1 до 64 символов", "1–64 characters");
    for (i, row) in file.regions.iter().enumerate() {
        if !name_ok(&row.name) {
            return Err(at("regions", i, "name", up_to_64()));
        }
    }
    for (i, row) in file.departments.iter().enumerate() {
        if !name_ok(&row.name) {
            return Err(at("departments", i, "name", up_to_64()));
        }
    }
    for (i, row) in file.units.iter().enumerate() {
        if row.id < 1 {
            return Err(at(
                "units",
                i,
                "id",
                Text::new("целое число больше нуля", "a positive integer"),
            ));
        }
        if !name_ok(&row.name) {
            return Err(at("units", i, "name", up_to_64()));
        }
        if row.uuid.trim().is_empty() {
            return Err(at(
                "units",
                i,
                "uuid",
                Text::new("обязательное поле", "required"),
            ));
        }
        if !(file.regions.iter().any(|r| r.id == row.region_id)
            || existing.regions.contains(&row.region_id))
        {
            let message = unknown("региона", "region", row.region_id);
            return Err(at("units", i, "region_id", message));
        }
        if !(file.departments.iter().any(|d| d.id == row.department_id)
            || existing.departments.contains(&row.department_id))
        {
            let message = unknown("департамента", "department", row.department_id);
            return Err(at("units", i, "department_id", message));
        }
    }
    for (i, row) in file.report_types.iter().enumerate() {
        if !name_ok(&row.name) {
            return Err(at("report_types", i, "name", up_to_64()));
        }
        if row.priority < 0 {
            return Err(at(
                "report_types",
                i,
                "priority",
                Text::new("0 или больше", "0 or more"),
            ));
        }
    }
    for (i, row) in file.roles.iter().enumerate() {
        if !(1..=64).contains(&row.access_code.chars().count()) {
            return Err(at("roles", i, "access_code", up_to_64()));
        }
        if let Some(other) = file.roles[..i]
            .iter()
            .find(|other| other.access_code == row.access_code)
        {
            let message = Text::new(
                format!("тот же код, что у роли {}", other.id),
                format!("the same code as role {}", other.id),
            );
            return Err(at("roles", i, "access_code", message));
        }
        let code = AccessCode::parse(&row.access_code)?;
        let replaced = |id: &i64| file.roles.iter().any(|r| r.id == *id);
        if let Some((other, _)) = existing
            .codes
            .iter()
            .find(|(id, hash)| !replaced(id) && code.matches(hash))
        {
            let message = Text::new(
                format!("это уже код роли {other}"),
                format!("already the code of role {other}"),
            );
            return Err(at("roles", i, "access_code", message));
        }
        let known_unit =
            |u: &i64| file.units.iter().any(|f| f.id == *u) || existing.units.contains(u);
        if let Some(unit) = row.unit_ids.iter().find(|u| !known_unit(u)) {
            let message = unknown("подразделения", "unit", *unit);
            return Err(at("roles", i, "unit_ids", message));
        }
        let known_type = |t: &i64| {
            file.report_types.iter().any(|f| f.id == *t) || existing.report_types.contains(t)
        };
        if let Some(t) = row.report_type_ids.iter().find(|t| !known_type(t)) {
            let message = unknown("типа отчёта", "report type", *t);
            return Err(at("roles", i, "report_type_ids", message));
        }
    }
    for (i, row) in file.telegram_chats.iter().enumerate() {
        if ChatType::parse(&row.kind).is_none() {
            return Err(at(
                "telegram_chats",
                i,
                "type",
                Text::new("PRIVATE или GROUP", "PRIVATE or GROUP"),
            ));
        }
        if !(1..=255).contains(&row.title.trim().chars().count()) {
            return Err(at(
                "telegram_chats",
                i,
                "title",
                Text::new("от 1 до 255 символов", "1–255 characters"),
            ));
        }
        if let Some(role) = row
            .role_id
            .filter(|r| !(file.roles.iter().any(|f| f.id == *r) || existing.roles.contains(r)))
        {
            let message = unknown("роли", "role", role);
            return Err(at("telegram_chats", i, "role_id", message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::row_line;

    #[test]
    fn finds_the_line_of_a_row() {
        let text = "{\n \"regions\": [\n  {\"id\": 1, \"name\": \"a\"},\n  {\"id\": 2,\n \"name\": \"b{\"}\n ],\n \"units\": [\n  {}\n ]\n}";
        assert_eq!(row_line(text, "regions", 0), 3);
        assert_eq!(row_line(text, "regions", 1), 4);
        assert_eq!(row_line(text, "units", 0), 8);
    }
}
