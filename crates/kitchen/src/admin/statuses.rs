//! `/admin/statuses/` and `/admin/flows/`: the order statuses and the transitions between them. Both are global,
//! shared by every unit, as in ELQ.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};
use tillwire_platform::{now_ms, write};

use super::{conflict_on_constraint, parse_integer};
use crate::Thing;
use crate::model::Label;
use crate::model::{CssColor, Flow, Name, Status, Workflow};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

const STATUSES: &str = "/admin/statuses/";
const FLOWS: &str = "/admin/flows/";

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route(STATUSES, get(statuses_page).post(create_status))
        .route("/admin/statuses/{id}", post(update_status))
        .route("/admin/statuses/{id}/delete", post(delete_status))
        .route(FLOWS, get(flows_page).post(add_flow))
        .route("/admin/flows/{from}/{to}/delete", post(remove_flow))
}

/// A Bootstrap Icons class list such as `bi bi-bag`. Only lowercase letters, digits, spaces and dashes, so it cannot
/// break out of the `class` attribute the screens put it in.
struct IconClass(String);

impl IconClass {
    fn parse(text: &str) -> Result<Self, KitchenError> {
        let text = text.trim();
        let valid = (1..=64).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == ' ' || c == '-');
        if valid {
            Ok(IconClass(text.to_owned()))
        } else {
            Err(Label::new("icon", "значок", "icon").error(
                "класс Bootstrap Icons, например \"bi bi-bag\" (a-z, 0-9, пробел, -)",
                "a Bootstrap Icons class such as \"bi bi-bag\" (a-z, 0-9, space, -)",
            ))
        }
    }
}

const STATUS_ID: Label = Label::new("id", "номер статуса", "status id");
const ALERT_MINUTES: Label = Label::new("alert_minutes", "время до тревоги", "alert after");

#[derive(Template)]
#[template(path = "admin_statuses.html")]
struct StatusesPage {
    page: PageContext,
    section: &'static str,
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct StatusForm {
    /// Only read when creating: a status keeps its id for life (orders and the log refer to it).
    #[serde(default)]
    id: String,
    name: String,
    /// Checkboxes: present when ticked.
    finished: Option<String>,
    shown: Option<String>,
    cancels: Option<String>,
    /// Empty: no alert.
    #[serde(default)]
    alert_minutes: String,
    color: String,
    icon: String,
}

struct StatusFields {
    name: Name,
    finished: bool,
    shown: bool,
    cancels: bool,
    alert_minutes: Option<i32>,
    color: CssColor,
    icon: IconClass,
}

impl StatusForm {
    fn fields(&self) -> Result<StatusFields, KitchenError> {
        Ok(StatusFields {
            name: Name::parse(
                &self.name,
                64,
                Label::new("name", "название статуса", "status name"),
            )?,
            finished: self.finished.is_some(),
            shown: self.shown.is_some(),
            cancels: self.cancels.is_some(),
            alert_minutes: match self.alert_minutes.trim() {
                "" => None,
                text => match text.parse::<i32>() {
                    Ok(minutes @ 1..=1440) => Some(minutes),
                    _ => {
                        return Err(ALERT_MINUTES.error(
                            "от 1 до 1440 минут, или пусто",
                            "1 to 1440 minutes, or empty",
                        ));
                    }
                },
            },
            color: CssColor::parse(&self.color)?,
            icon: IconClass::parse(&self.icon)?,
        })
    }
}

async fn statuses_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
) -> Result<Response, KitchenError> {
    Ok(render(&StatusesPage {
        page: admin.page("Статусы", "Statuses"),
        section: STATUSES,
        statuses: kitchen.workflow().await?.statuses,
    }))
}

async fn create_status(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Form(form): Form<StatusForm>,
) -> Result<Redirect, KitchenError> {
    let id = parse_integer(&form.id, STATUS_ID)?;
    if id < 1 {
        return Err(STATUS_ID.error("1 или больше", "1 or more"));
    }
    let fields = form.fields()?;
    write!(kitchen.store(), db => sqlx::query(
        "INSERT INTO statuses (id, name, finished, shown, color, icon, created_ms, cancels, alert_minutes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(fields.name.as_str())
    .bind(fields.finished)
    .bind(fields.shown)
    .bind(fields.color.as_str())
    .bind(&fields.icon.0)
    .bind(now_ms())
    .bind(fields.cancels)
    .bind(fields.alert_minutes)
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict_on_constraint(Text::new(
        "Статус с таким номером или названием уже есть.",
        "A status with that id or name already exists.",
    )))?;
    tracing::info!(
        status = id,
        name = fields.name.as_str(),
        by = admin.username(),
        "status created"
    );
    Ok(Redirect::to(STATUSES))
}

async fn update_status(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Redirect, KitchenError> {
    let fields = form.fields()?;
    let updated = write!(kitchen.store(), db => sqlx::query(
        "UPDATE statuses SET name = $2, finished = $3, shown = $4, color = $5, icon = $6, cancels = $7, alert_minutes = $8 WHERE id = $1",
    )
    .bind(id)
    .bind(fields.name.as_str())
    .bind(fields.finished)
    .bind(fields.shown)
    .bind(fields.color.as_str())
    .bind(&fields.icon.0)
    .bind(fields.cancels)
    .bind(fields.alert_minutes)
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict_on_constraint(Text::new(
        "Статус с таким названием уже есть.",
        "A status with that name already exists.",
    )))?;
    if updated == 0 {
        return Err(KitchenError::NotFound(Thing::Status));
    }
    tracing::info!(
        status = id,
        name = fields.name.as_str(),
        finished = fields.finished,
        shown = fields.shown,
        by = admin.username(),
        "status updated"
    );
    Ok(Redirect::to(STATUSES))
}

async fn delete_status(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    // Orders point at their status, so the database refuses while any order is in it; its flows go with it.
    let deleted = write!(kitchen.store(), db => sqlx::query("DELETE FROM statuses WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
    .map_err(conflict_on_constraint(Text::new(
        "В этом статусе есть заказы: его нельзя удалить.",
        "Orders are in this status: it cannot be deleted.",
    )))?;
    if deleted == 0 {
        return Err(KitchenError::NotFound(Thing::Status));
    }
    tracing::info!(status = id, by = admin.username(), "status deleted");
    Ok(Redirect::to(STATUSES))
}

#[derive(Template)]
#[template(path = "admin_flows.html")]
struct FlowsPage {
    page: PageContext,
    section: &'static str,
    workflow: Workflow,
}

impl FlowsPage {
    fn name(&self, id: &i64) -> String {
        self.workflow
            .status(*id)
            .map_or_else(|| format!("#{id}"), |s| s.name.clone())
    }
    fn initial(&self) -> String {
        self.workflow
            .initial()
            .map_or_else(|| "—".into(), |s| s.name.clone())
    }
    fn ready(&self) -> String {
        self.workflow
            .ready()
            .map_or_else(|| "—".into(), |s| s.name.clone())
    }
}

async fn flows_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
) -> Result<Response, KitchenError> {
    Ok(render(&FlowsPage {
        page: admin.page("Смены статусов", "Status flows"),
        section: FLOWS,
        workflow: kitchen.workflow().await?,
    }))
}

async fn add_flow(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Form(flow): Form<Flow>,
) -> Result<Redirect, KitchenError> {
    let (from, to) = (flow.current_status_id, flow.next_status_id);
    let workflow = kitchen.workflow().await?;
    if workflow.status(from).is_none() || workflow.status(to).is_none() {
        return Err(KitchenError::invalid(Text::new(
            "Смена статуса: неизвестный статус.",
            "Flow: unknown status.",
        )));
    }
    if from == to {
        return Err(KitchenError::invalid(Text::new(
            "Смена статуса: статус не может переходить сам в себя.",
            "Flow: a status cannot move to itself.",
        )));
    }
    write!(kitchen.store(), db => sqlx::query(
        "INSERT INTO status_flows (current_status_id, next_status_id) VALUES ($1, $2)",
    )
    .bind(from)
    .bind(to)
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict_on_constraint(Text::new(
        "Такая смена статуса уже есть.",
        "That transition already exists.",
    )))?;
    tracing::info!(from, to, by = admin.username(), "status flow added");
    Ok(Redirect::to(FLOWS))
}

async fn remove_flow(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path((from, to)): Path<(i64, i64)>,
) -> Result<Redirect, KitchenError> {
    let removed = write!(kitchen.store(), db => sqlx::query(
        "DELETE FROM status_flows WHERE current_status_id = $1 AND next_status_id = $2",
    )
    .bind(from)
    .bind(to)
    .execute(db)
    .await
    .map(|r| r.rows_affected()))?;
    if removed == 0 {
        return Err(KitchenError::NotFound(Thing::Flow));
    }
    tracing::info!(from, to, by = admin.username(), "status flow removed");
    Ok(Redirect::to(FLOWS))
}
