//! `/admin/registers/` and `/admin/printers/`: a unit's cash registers (the till's number → a ticket printer) and
//! its printers.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};
use tillwire_platform::{now_ms, read, write};

use super::{Owned, UnitPicker, UnitQuery, back_to, conflict_on_constraint, parse_integer};
use crate::Thing;
use crate::model::Label;
use crate::model::{Name, PrinterAddress};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

const REGISTERS: &str = "/admin/registers/";
const PRINTERS: &str = "/admin/printers/";

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route(REGISTERS, get(registers_page).post(create_register))
        .route("/admin/registers/{id}", post(update_register))
        .route("/admin/registers/{id}/delete", post(delete_register))
        .route(PRINTERS, get(printers_page).post(create_printer))
        .route("/admin/printers/{id}", post(update_printer))
        .route("/admin/printers/{id}/delete", post(delete_printer))
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct PrinterRow {
    id: i64,
    name: String,
    address: String,
    registers: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct RegisterRow {
    id: i64,
    number: i64,
    name: String,
    printer_id: Option<i64>,
}

async fn unit_printers(kitchen: &Kitchen, unit: i64) -> Result<Vec<PrinterRow>, KitchenError> {
    Ok(read!(kitchen.store(), db => sqlx::query_as(
        "SELECT p.id, p.name, p.address, (SELECT COUNT(*) FROM cash_registers r WHERE r.printer_id = p.id) AS registers
         FROM printers p WHERE p.unit_id = $1 ORDER BY p.name",
    )
    .bind(unit)
    .fetch_all(db)
    .await)?)
}

#[derive(Template)]
#[template(path = "admin_registers.html")]
struct RegistersPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    registers: Vec<RegisterRow>,
    printers: Vec<PrinterRow>,
}

impl RegistersPage {
    fn prints_to(&self, register: &RegisterRow, printer: &i64) -> bool {
        register.printer_id == Some(*printer)
    }
}

#[derive(Deserialize)]
struct RegisterForm {
    number: String,
    name: String,
    /// A printer id, or empty for none.
    #[serde(default)]
    printer: String,
}

struct RegisterFields {
    number: i64,
    name: Name,
    printer: Option<i64>,
}

const REGISTER_NUMBER: Label = Label::new("number", "номер кассы", "register number");

impl RegisterForm {
    /// Checks the fields; the printer must be one of the register's own unit.
    async fn fields(&self, kitchen: &Kitchen, unit: i64) -> Result<RegisterFields, KitchenError> {
        let number = parse_integer(&self.number, REGISTER_NUMBER)?;
        if number < 1 {
            return Err(REGISTER_NUMBER.error("1 или больше", "1 or more"));
        }
        let name = Name::parse(
            &self.name,
            128,
            Label::new("name", "название кассы", "register name"),
        )?;
        let printer = match self.printer.trim() {
            "" => None,
            id => Some(parse_integer(id, Owned::Printer.label())?),
        };
        if let Some(printer) = printer {
            Owned::Printer
                .require_in_unit(kitchen, printer, unit)
                .await?;
        }
        Ok(RegisterFields {
            number,
            name,
            printer,
        })
    }
}

fn number_taken() -> Text {
    Text::new(
        "В этом подразделении уже есть касса с таким номером.",
        "This unit already has a register with that number.",
    )
}

async fn registers_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    let registers: Vec<RegisterRow> = read!(kitchen.store(), db => sqlx::query_as(
        "SELECT id, number, name, printer_id FROM cash_registers WHERE unit_id = $1 ORDER BY number",
    )
    .bind(picker.id())
    .fetch_all(db)
    .await)?;
    Ok(render(&RegistersPage {
        page: admin.page("Кассы", "Cash registers"),
        section: REGISTERS,
        printers: unit_printers(&kitchen, picker.id()).await?,
        picker,
        registers,
    }))
}

async fn create_register(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
    Form(form): Form<RegisterForm>,
) -> Result<Redirect, KitchenError> {
    let unit = UnitPicker::load(&kitchen, query.unit).await?.id();
    let register = form.fields(&kitchen, unit).await?;
    let (id,): (i64,) = write!(kitchen.store(), db => sqlx::query_as(
        "INSERT INTO cash_registers (unit_id, number, name, printer_id, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(unit)
    .bind(register.number)
    .bind(register.name.as_str())
    .bind(register.printer)
    .bind(now_ms())
    .fetch_one(db)
    .await)
    .map_err(conflict_on_constraint(number_taken()))?;
    tracing::info!(
        register = id,
        unit,
        number = register.number,
        printer = register.printer,
        by = admin.username(),
        "cash register created"
    );
    Ok(back_to(REGISTERS, unit))
}

async fn update_register(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<RegisterForm>,
) -> Result<Redirect, KitchenError> {
    let unit = Owned::Register.unit_of(&kitchen, id).await?;
    let register = form.fields(&kitchen, unit).await?;
    let updated = write!(kitchen.store(), db => sqlx::query(
        "UPDATE cash_registers SET number = $2, name = $3, printer_id = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(register.number)
    .bind(register.name.as_str())
    .bind(register.printer)
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict_on_constraint(number_taken()))?;
    if updated == 0 {
        return Err(KitchenError::NotFound(Thing::CashRegister));
    }
    tracing::info!(
        register = id,
        unit,
        number = register.number,
        printer = register.printer,
        by = admin.username(),
        "cash register updated"
    );
    Ok(back_to(REGISTERS, unit))
}

async fn delete_register(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    // Orders keep their number and lines; they only lose the link to the register.
    let unit = Owned::Register
        .delete(
            &kitchen,
            id,
            Text::new(
                "На кассу ещё есть ссылки.",
                "The cash register is still referenced.",
            ),
        )
        .await?;
    tracing::info!(
        register = id,
        unit,
        by = admin.username(),
        "cash register deleted"
    );
    Ok(back_to(REGISTERS, unit))
}

#[derive(Template)]
#[template(path = "admin_printers.html")]
struct PrintersPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    printers: Vec<PrinterRow>,
}

#[derive(Deserialize)]
struct PrinterForm {
    name: String,
    #[serde(default)]
    address: String,
}

struct PrinterFields {
    name: Name,
    /// The parsed address in its normal form, or empty (not set up: nothing prints).
    address: String,
}

impl PrinterForm {
    /// The name is a label (or the CUPS queue name); the address is `tcp://HOST[:PORT]`,
    /// `ipp://HOST[:PORT]/printers/NAME` or empty.
    fn fields(&self) -> Result<PrinterFields, KitchenError> {
        if self.address.chars().count() > 256 {
            return Err(Label::new("address", "адрес принтера", "printer address")
                .error("не длиннее 256 символов", "at most 256 characters"));
        }
        Ok(PrinterFields {
            name: Name::parse(
                &self.name,
                128,
                Label::new("name", "название принтера", "printer name"),
            )?,
            address: PrinterAddress::parse(&self.address)?
                .map(|a| a.to_string())
                .unwrap_or_default(),
        })
    }
}

fn printer_taken() -> Text {
    Text::new(
        "В этом подразделении уже есть принтер с таким названием.",
        "This unit already has a printer with that name.",
    )
}

async fn printers_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    Ok(render(&PrintersPage {
        page: admin.page("Принтеры", "Printers"),
        section: PRINTERS,
        printers: unit_printers(&kitchen, picker.id()).await?,
        picker,
    }))
}

async fn create_printer(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
    Form(form): Form<PrinterForm>,
) -> Result<Redirect, KitchenError> {
    let unit = UnitPicker::load(&kitchen, query.unit).await?.id();
    let printer = form.fields()?;
    let (id,): (i64,) = write!(kitchen.store(), db => sqlx::query_as(
        "INSERT INTO printers (unit_id, name, address, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(unit)
    .bind(printer.name.as_str())
    .bind(&printer.address)
    .bind(now_ms())
    .fetch_one(db)
    .await)
    .map_err(conflict_on_constraint(printer_taken()))?;
    tracing::info!(
        printer = id,
        unit,
        name = printer.name.as_str(),
        by = admin.username(),
        "printer created"
    );
    Ok(back_to(PRINTERS, unit))
}

async fn update_printer(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<PrinterForm>,
) -> Result<Redirect, KitchenError> {
    let printer = form.fields()?;
    let updated: Option<(i64,)> = write!(kitchen.store(), db => sqlx::query_as(
        "UPDATE printers SET name = $2, address = $3 WHERE id = $1 RETURNING unit_id",
    )
    .bind(id)
    .bind(printer.name.as_str())
    .bind(&printer.address)
    .fetch_optional(db)
    .await)
    .map_err(conflict_on_constraint(printer_taken()))?;
    let (unit,) = updated.ok_or(KitchenError::NotFound(Thing::Printer))?;
    tracing::info!(
        printer = id,
        unit,
        name = printer.name.as_str(),
        by = admin.username(),
        "printer updated"
    );
    Ok(back_to(PRINTERS, unit))
}

async fn delete_printer(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    // Registers printing here are detached (ON DELETE SET NULL), not deleted as in ELQ.
    let unit = Owned::Printer
        .delete(
            &kitchen,
            id,
            Text::new(
                "На принтер ещё есть ссылки.",
                "The printer is still referenced.",
            ),
        )
        .await?;
    tracing::info!(printer = id, unit, by = admin.username(), "printer deleted");
    Ok(back_to(PRINTERS, unit))
}
