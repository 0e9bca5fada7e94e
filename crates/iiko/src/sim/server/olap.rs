//! The SALES OLAP v2 (spec B.12) over the closed order lines the simulator holds.
//!
//! `POST /resto/api/v2/reports/olap?key=` takes `reportType` (only `SALES`), `groupByRowFields` (and
//! `groupByColFields`, grouped like row fields), `aggregateFields` and `filters`, and answers
//! `{"data":[…],"summary":[]}`: one object a group, first seen first, with the grouped fields and the aggregates
//! (summed; `UniqOrderId.OrdersCount` counts distinct orders). Numbers are JSON numbers, dates `yyyy-MM-dd`,
//! `CloseTime` `yyyy-MM-ddTHH:mm:ss` (a guess). A field that is unknown, or used where `/columns` does not allow it,
//! is a `400` naming it, as are malformed filters.
//!
//! Filters, keyed by field:
//! - `{"filterType":"DateRange","periodType":"CUSTOM","from":…,"to":…,"includeLow":true,"includeHigh":false}`
//!   on `OpenDate.Typed` or `CloseTime`. `from`/`to` are `yyyy-MM-dd` or `yyyy-MM-ddTHH:mm:ss[.SSS]`; the range is
//!   half-open (`includeLow` true, `includeHigh` false) unless said otherwise; booleans may be strings.
//! - `{"filterType":"IncludeValues","values":[…]}` and `{"filterType":"ExcludeValues","values":[…]}`, compared with
//!   the field's text; an ENUM field refuses values it does not have. A missing value (no delivery type) is never
//!   included and never excluded.
//!
//! `GET /resto/api/v2/reports/olap/columns?key=&reportType=SALES` describes the fields below. Their types and
//! allowed uses are those of a copy of a real answer (`xeops/iikoExchangeBundle:
//! src/library/iiko/Reports/Olap/Version52/Sales/FieldsDirectory.php`); the Russian names are ours.

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Inner, SaleLine};

/// A field as `/columns` describes it.
struct Field {
    key: &'static str,
    name: &'static str,
    kind: &'static str,
    aggregation: bool,
    grouping: bool,
    filtering: bool,
    tags: &'static [&'static str],
    /// An ENUM's values.
    values: &'static [&'static str],
}

const fn field(
    key: &'static str,
    name: &'static str,
    kind: &'static str,
    (aggregation, grouping, filtering): (bool, bool, bool),
    tags: &'static [&'static str],
) -> Field {
    Field {
        key,
        name,
        kind,
        aggregation,
        grouping,
        filtering,
        tags,
        values: &[],
    }
}

const fn enumeration(
    key: &'static str,
    name: &'static str,
    tags: &'static [&'static str],
    values: &'static [&'static str],
) -> Field {
    Field {
        values,
        ..field(key, name, "ENUM", (false, true, true), tags)
    }
}

/// Grouped and filtered, not aggregated.
const DIMENSION: (bool, bool, bool) = (false, true, true);
/// Aggregated only.
const MEASURE: (bool, bool, bool) = (true, false, false);

const FIELDS: &[Field] = &[
    field(
        "OpenDate.Typed",
        "Учетный день",
        "DATE",
        DIMENSION,
        &["Time"],
    ),
    field(
        "CloseTime",
        "Время закрытия",
        "DATETIME",
        DIMENSION,
        &["Order", "Time"],
    ),
    field(
        "Department",
        "Торговое предприятие",
        "STRING",
        DIMENSION,
        &["Corporation", "Organization"],
    ),
    field(
        "Department.Id",
        "ID торгового предприятия",
        "ID_STRING",
        DIMENSION,
        &["Corporation", "Organization"],
    ),
    field("UniqOrderId.Id", "ID заказа", "ID", DIMENSION, &["Order"]),
    field(
        "OrderNum",
        "Номер чека",
        "INTEGER",
        (true, true, true),
        &["Order"],
    ),
    field("DishId", "ID блюда", "ID_STRING", DIMENSION, &["Items"]),
    field("DishCode", "Код блюда", "STRING", DIMENSION, &["Items"]),
    field("DishName", "Блюдо", "STRING", DIMENSION, &["Items"]),
    field(
        "DishCategory",
        "Категория блюда",
        "STRING",
        DIMENSION,
        &["Items"],
    ),
    field(
        "DishAmountInt",
        "Количество блюд",
        "AMOUNT",
        (true, true, true),
        &["Order"],
    ),
    field(
        "DishSumInt",
        "Сумма без скидки",
        "MONEY",
        MEASURE,
        &["Payment"],
    ),
    field(
        "DishDiscountSumInt",
        "Сумма со скидкой",
        "MONEY",
        MEASURE,
        &["Payment"],
    ),
    field(
        "UniqOrderId.OrdersCount",
        "Заказов",
        "AMOUNT",
        MEASURE,
        &["Order"],
    ),
    enumeration(
        "OrderDeleted",
        "Заказ удален",
        &["Order"],
        &["NOT_DELETED", "DELETED"],
    ),
    enumeration(
        "DeletedWithWriteoff",
        "Блюдо удалено",
        &["Items"],
        &[
            "NOT_DELETED",
            "DELETED_WITH_WRITEOFF",
            "DELETED_WITHOUT_WRITEOFF",
        ],
    ),
    enumeration("Storned", "Сторнирован", &["Order"], &["FALSE", "TRUE"]),
    enumeration(
        "Delivery.ServiceType",
        "Тип доставки",
        &["Delivery"],
        &["COURIER", "PICKUP"],
    ),
    field(
        "WaiterName",
        "Официант блюда",
        "STRING",
        DIMENSION,
        &["Employees"],
    ),
];

fn known(key: &str) -> Result<&'static Field, String> {
    FIELDS
        .iter()
        .find(|field| field.key == key)
        .ok_or_else(|| format!("Unknown OLAP field: {key}"))
}

/// The `/columns` answer for SALES.
pub(super) fn columns() -> Value {
    let mut columns = Map::new();
    for field in FIELDS {
        columns.insert(
            field.key.to_owned(),
            json!({
                "name": field.name,
                "type": field.kind,
                "aggregationAllowed": field.aggregation,
                "groupingAllowed": field.grouping,
                "filteringAllowed": field.filtering,
                "tags": field.tags,
            }),
        );
    }
    Value::Object(columns)
}

/// A field's value on one line.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number(Decimal),
    Date(NaiveDate),
    Time(NaiveDateTime),
    Missing,
}

impl Cell {
    fn json(&self) -> Value {
        match self {
            Cell::Text(text) => Value::from(text.as_str()),
            Cell::Number(number) => json_number(*number),
            Cell::Date(date) => Value::from(date.format("%Y-%m-%d").to_string()),
            Cell::Time(time) => Value::from(time.format("%Y-%m-%dT%H:%M:%S").to_string()),
            Cell::Missing => Value::Null,
        }
    }

    /// What `IncludeValues`/`ExcludeValues` compare with; none for a missing value.
    fn text(&self) -> Option<String> {
        match self {
            Cell::Text(text) => Some(text.clone()),
            Cell::Number(number) => Some(number.normalize().to_string()),
            Cell::Date(date) => Some(date.format("%Y-%m-%d").to_string()),
            Cell::Time(time) => Some(time.format("%Y-%m-%dT%H:%M:%S").to_string()),
            Cell::Missing => None,
        }
    }

    /// Where a date range puts it: a date is its midnight.
    fn instant(&self) -> Option<NaiveDateTime> {
        match self {
            Cell::Date(date) => Some(date.and_time(NaiveTime::MIN)),
            Cell::Time(time) => Some(*time),
            _ => None,
        }
    }
}

/// Integers as integers, the rest as floats.
fn json_number(number: Decimal) -> Value {
    let number = number.normalize();
    match number.to_i64() {
        Some(integer) if number.scale() == 0 => Value::from(integer),
        _ => Value::from(number.to_f64().unwrap_or_default()),
    }
}

fn amount(text: &str) -> Decimal {
    text.trim().parse().unwrap_or_default()
}

fn flag(set: bool, yes: &str, no: &str) -> Cell {
    Cell::Text(if set { yes } else { no }.to_owned())
}

/// A field's value on a line; `department` is the line's department name.
fn cell(key: &str, line: &SaleLine, department: &str) -> Cell {
    match key {
        "OpenDate.Typed" => Cell::Date(line.open_date),
        "CloseTime" => Cell::Time(line.close_time),
        "Department" => Cell::Text(department.to_owned()),
        "Department.Id" => Cell::Text(line.department.clone()),
        "UniqOrderId.Id" | "UniqOrderId.OrdersCount" => Cell::Text(line.order_id.clone()),
        "OrderNum" => Cell::Number(line.order_num.into()),
        "DishId" => Cell::Text(line.dish_id.clone()),
        "DishCode" => Cell::Text(line.dish_code.clone()),
        "DishName" => Cell::Text(line.dish_name.clone()),
        "DishCategory" => Cell::Text(line.dish_category.clone()),
        "DishAmountInt" => Cell::Number(amount(&line.amount)),
        "DishSumInt" => Cell::Number(amount(&line.sum)),
        "DishDiscountSumInt" => Cell::Number(amount(&line.discount_sum)),
        "OrderDeleted" => flag(line.order_deleted, "DELETED", "NOT_DELETED"),
        "DeletedWithWriteoff" => Cell::Text(
            if line.deleted_with_writeoff {
                "DELETED_WITH_WRITEOFF"
            } else if line.order_deleted {
                "DELETED_WITHOUT_WRITEOFF"
            } else {
                "NOT_DELETED"
            }
            .to_owned(),
        ),
        "Storned" => flag(line.storned, "TRUE", "FALSE"),
        "Delivery.ServiceType" => line.service_type.clone().map_or(Cell::Missing, Cell::Text),
        "WaiterName" => Cell::Text(line.waiter.clone()),
        _ => Cell::Missing,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request {
    report_type: Option<String>,
    #[serde(default)]
    group_by_row_fields: Vec<String>,
    #[serde(default)]
    group_by_col_fields: Vec<String>,
    #[serde(default)]
    aggregate_fields: Vec<String>,
    #[serde(default)]
    filters: Map<String, Value>,
}

/// A filter, checked against its field.
enum Condition {
    Range {
        from: NaiveDateTime,
        to: NaiveDateTime,
        include_low: bool,
        include_high: bool,
    },
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl Condition {
    fn admits(&self, cell: &Cell) -> bool {
        match self {
            Condition::Range {
                from,
                to,
                include_low,
                include_high,
            } => cell.instant().is_some_and(|at| {
                (if *include_low {
                    at >= *from
                } else {
                    at > *from
                }) && (if *include_high { at <= *to } else { at < *to })
            }),
            Condition::Include(values) => cell.text().is_some_and(|text| values.contains(&text)),
            Condition::Exclude(values) => cell.text().is_none_or(|text| !values.contains(&text)),
        }
    }
}

/// `yyyy-MM-dd` (its midnight) or `yyyy-MM-ddTHH:mm:ss[.SSS]`.
fn bound(field: &str, which: &str, value: Option<&Value>) -> Result<NaiveDateTime, String> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter {field}: DateRange needs \"{which}\""))?;
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|date| date.and_time(NaiveTime::MIN)))
        .map_err(|_| format!("Filter {field}: \"{which}\" {text:?} is neither yyyy-MM-dd nor yyyy-MM-ddTHH:mm:ss.SSS"))
}

/// `true`/`false`, as a JSON boolean or a string; `default` when left out.
fn boolean(field: &str, name: &str, value: Option<&Value>, default: bool) -> Result<bool, String> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(format!("Filter {field}: {name} {other} is not a boolean")),
    }
}

fn condition(field: &Field, filter: &Value) -> Result<Condition, String> {
    let key = field.key;
    let kind = filter
        .get("filterType")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter {key}: filterType is missing"))?;
    match kind {
        "DateRange" => {
            if field.kind != "DATE" && field.kind != "DATETIME" {
                return Err(format!("Filter {key}: DateRange needs a date field"));
            }
            if let Some(period) = filter.get("periodType").and_then(Value::as_str)
                && period != "CUSTOM"
            {
                return Err(format!(
                    "Filter {key}: periodType {period} is not simulated, only CUSTOM"
                ));
            }
            Ok(Condition::Range {
                from: bound(key, "from", filter.get("from"))?,
                to: bound(key, "to", filter.get("to"))?,
                include_low: boolean(key, "includeLow", filter.get("includeLow"), true)?,
                include_high: boolean(key, "includeHigh", filter.get("includeHigh"), false)?,
            })
        }
        "IncludeValues" | "ExcludeValues" => {
            let values = filter
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("Filter {key}: {kind} needs a \"values\" list"))?
                .iter()
                .map(|value| match value {
                    Value::String(text) => Ok(text.clone()),
                    Value::Number(number) => Ok(number.to_string()),
                    other => Err(format!("Filter {key}: value {other} is not text")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(stranger) = values
                .iter()
                .find(|value| !field.values.is_empty() && !field.values.contains(&value.as_str()))
            {
                return Err(format!(
                    "Filter {key}: {stranger} is not one of {:?}",
                    field.values
                ));
            }
            Ok(if kind == "IncludeValues" {
                Condition::Include(values)
            } else {
                Condition::Exclude(values)
            })
        }
        other => Err(format!("Filter {key}: filterType {other} is not simulated")),
    }
}

/// A group's aggregate.
enum Total {
    Sum(Decimal),
    Distinct(BTreeSet<String>),
}

impl Total {
    fn new(key: &str) -> Self {
        if key == "UniqOrderId.OrdersCount" {
            Total::Distinct(BTreeSet::new())
        } else {
            Total::Sum(Decimal::ZERO)
        }
    }

    fn add(&mut self, cell: Cell) {
        match (self, cell) {
            (Total::Sum(sum), Cell::Number(number)) => *sum += number,
            (Total::Distinct(seen), cell) => {
                if let Some(text) = cell.text() {
                    seen.insert(text);
                }
            }
            _ => {}
        }
    }

    fn json(&self) -> Value {
        match self {
            Total::Sum(sum) => json_number(*sum),
            Total::Distinct(seen) => Value::from(seen.len()),
        }
    }
}

impl Inner {
    /// The OLAP answer, or the `400` text.
    pub(super) fn olap(&self, request: &Request) -> Result<Value, String> {
        match request.report_type.as_deref() {
            Some("SALES") => {}
            Some(other) => return Err(format!("reportType {other} is not simulated, only SALES")),
            None => return Err("reportType is missing".to_owned()),
        }
        let groups = request
            .group_by_row_fields
            .iter()
            .chain(&request.group_by_col_fields)
            .map(|key| {
                let field = known(key)?;
                if field.grouping {
                    Ok(field.key)
                } else {
                    Err(format!("OLAP field {key} cannot be grouped by"))
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        let aggregates = request
            .aggregate_fields
            .iter()
            .map(|key| {
                let field = known(key)?;
                if field.aggregation {
                    Ok(field.key)
                } else {
                    Err(format!("OLAP field {key} cannot be aggregated"))
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        let conditions = request
            .filters
            .iter()
            .map(|(key, filter)| {
                let field = known(key)?;
                if !field.filtering {
                    return Err(format!("OLAP field {key} cannot be filtered on"));
                }
                Ok((field.key, condition(field, filter)?))
            })
            .collect::<Result<Vec<_>, String>>()?;

        let mut rows: Vec<(Vec<Cell>, Vec<Total>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for line in &self.sales {
            let department = self.department_name(&line.department);
            let admitted = conditions
                .iter()
                .all(|(key, condition)| condition.admits(&cell(key, line, &department)));
            if !admitted {
                continue;
            }
            let cells: Vec<Cell> = groups
                .iter()
                .map(|key| cell(key, line, &department))
                .collect();
            let signature =
                Value::from(cells.iter().map(Cell::json).collect::<Vec<_>>()).to_string();
            let at = *index.entry(signature).or_insert_with(|| {
                rows.push((
                    cells,
                    aggregates.iter().map(|key| Total::new(key)).collect(),
                ));
                rows.len() - 1
            });
            for (total, key) in rows[at].1.iter_mut().zip(&aggregates) {
                total.add(cell(key, line, &department));
            }
        }
        let data: Vec<Value> = rows
            .iter()
            .map(|(cells, totals)| {
                let mut row = Map::new();
                for (key, cell) in groups.iter().zip(cells) {
                    row.insert((*key).to_owned(), cell.json());
                }
                for (key, total) in aggregates.iter().zip(totals) {
                    row.insert((*key).to_owned(), total.json());
                }
                Value::Object(row)
            })
            .collect();
        Ok(json!({ "data": data, "summary": [] }))
    }
}
