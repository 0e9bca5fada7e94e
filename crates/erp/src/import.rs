//! `tillwire erp import-oilmat DIR`: carries oilmat-erp's order history over (spec §4.2). DIR is its
//! `workshop_logs/` (one `<workshop>/order_status.db` each) or one workshop's directory. Each row becomes an order
//! of that workshop's integration with its status; the raw request OilMat kept as `reason` is read for the line and
//! then dropped, since it holds the ERP password. Orders still waiting in OilMat's (pickled) queues are not moved:
//! they are imported `failed` with the reason `not_migrated`, to be sent again. Importing twice adds nothing.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::integrations::{IntegrationSpec, Integrations, Workshop};
use crate::model::{ErpType, OrderStatus, Reason};
use crate::orders::{Imported, Orders};

/// What one workshop's import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkshopReport {
    pub workshop: String,
    pub added: usize,
    pub already_there: usize,
    /// Rows whose status was not one OilMat writes; imported as `failed`.
    pub unknown_status: usize,
    /// Whether the integration was created by the import.
    pub created: bool,
}

/// The status databases under `dir`: `dir/order_status.db` (one workshop, named after `dir`) or
/// `dir/<workshop>/order_status.db`.
pub fn databases(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let name_of = |path: &Path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let own = dir.join("order_status.db");
    if own.is_file() {
        return Ok(vec![(name_of(&dir.canonicalize()?), own)]);
    }
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("order_status.db").is_file())
        .map(|path| (name_of(&path), path.join("order_status.db")))
        .collect();
    found.sort();
    if found.is_empty() {
        anyhow::bail!(
            "{} holds no order_status.db, neither itself nor in a workshop directory (OilMat keeps them in \
             workshop_logs/<workshop>/)",
            dir.display()
        );
    }
    Ok(found)
}

/// Reads one OilMat status row into an order, the login left out.
pub fn read_row(unique_id: &str, status: Option<&str>, reason: Option<&str>) -> (Imported, bool) {
    let request: Option<serde_json::Map<String, Value>> = reason
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        });
    let field = |key: &str, alias: &str| {
        request
            .as_ref()
            .and_then(|map| map.get(key).or_else(|| map.get(alias)))
            .map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let amount = field("product_amount", "product_amount")
        .trim()
        .parse::<i64>()
        .ok();
    let parsed = status.and_then(OrderStatus::parse);
    let (status, reason_code, message) = match parsed {
        // Waiting in OilMat's queues, which are not read.
        Some(OrderStatus::Received | OrderStatus::Processing) => (
            OrderStatus::Failed,
            Some(Reason::NotMigrated),
            Some(format!("was {} in OilMat", status.unwrap_or_default())),
        ),
        // OilMat's failure reason is a constant text, never a request; a request there is not kept.
        Some(OrderStatus::Failed) => (
            OrderStatus::Failed,
            None,
            reason.filter(|_| request.is_none()).map(str::to_owned),
        ),
        Some(other) => (other, None, None),
        None => (
            OrderStatus::Failed,
            None,
            Some(format!(
                "unknown OilMat status {:?}",
                status.unwrap_or_default()
            )),
        ),
    };
    (
        Imported {
            unique_id: unique_id.to_owned(),
            dealer: field("dealer", "workshop"),
            case_nr: field("case_nr", "case_id"),
            product_nr: field("product_nr", "product_nr"),
            amount,
            status,
            reason: reason_code,
            message,
        },
        parsed.is_none(),
    )
}

/// Imports every workshop found under `dir`. A workshop without an integration gets one of `erp_type` (parked,
/// no login), or is refused when no type was given.
pub async fn import_oilmat(
    integrations: &Integrations,
    orders: &Orders,
    dir: &Path,
    erp_type: Option<ErpType>,
    mut progress: impl FnMut(&str, usize, usize),
) -> anyhow::Result<Vec<WorkshopReport>> {
    let mut reports = Vec::new();
    for (name, path) in databases(dir)? {
        let workshop = Workshop::parse(&name).map_err(|text| {
            anyhow::anyhow!("{name:?}: {}", text.get(tillwire_platform::web::Lang::En))
        })?;
        let (integration, created) = match integrations.by_workshop(workshop.as_str()).await {
            Ok(integration) => (integration, false),
            Err(_) => {
                let Some(erp_type) = erp_type else {
                    anyhow::bail!(
                        "workshop {name:?} has no integration yet: add it on /admin/erp/ first, or pass --type \
                         admanager|au2office to create it"
                    );
                };
                let spec = IntegrationSpec::new(workshop.clone(), erp_type);
                (integrations.create(&spec, "import-oilmat").await?, true)
            }
        };
        let options = SqliteConnectOptions::new().filename(&path).read_only(true);
        let mut db = options
            .connect()
            .await
            .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", path.display()))?;
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT CAST(unique_id AS TEXT), status, reason FROM order_status ORDER BY rowid",
        )
        .fetch_all(&mut db)
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        db.close().await?;
        let mut report = WorkshopReport {
            workshop: name.clone(),
            added: 0,
            already_there: 0,
            unknown_status: 0,
            created,
        };
        let total = rows.len();
        for (done, (unique_id, status, reason)) in rows.into_iter().enumerate() {
            let (order, unknown) = read_row(&unique_id, status.as_deref(), reason.as_deref());
            report.unknown_status += usize::from(unknown);
            if orders.import(integration.id, &order).await? {
                report.added += 1;
            } else {
                report.already_there += 1;
            }
            progress(&name, done + 1, total);
        }
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_in_oilmats_reason_is_never_kept() {
        let raw = r#"{"unique_id": "0001", "dealer": "Gygag", "case_nr": "560", "product_nr": "10",
                      "product_amount": "5", "username": "u@example.com", "password": "s3cret"}"#;
        let (order, unknown) = read_row("0001", Some("compleated"), Some(raw));
        assert!(!unknown);
        assert_eq!(order.status, OrderStatus::Completed);
        assert_eq!(
            (
                order.case_nr.as_str(),
                order.product_nr.as_str(),
                order.amount
            ),
            ("560", "10", Some(5))
        );
        assert_eq!(order.message, None);
        assert!(!format!("{order:?}").contains("s3cret"));
    }

    #[test]
    fn waiting_orders_are_not_moved_and_say_so() {
        let (order, _) = read_row("7", Some("processing"), Some("{\"password\": \"x\"}"));
        assert_eq!(order.status, OrderStatus::Failed);
        assert_eq!(order.reason, Some(Reason::NotMigrated));
        let (order, _) = read_row("8", Some("failed"), Some("handle varenummer"));
        assert_eq!(order.message.as_deref(), Some("handle varenummer"));
        let (order, unknown) = read_row("9", Some("weird"), None);
        assert!(unknown);
        assert_eq!(order.status, OrderStatus::Failed);
    }
}
