//! Sales back from iiko: each iikoServer's closed orders of a calendar day (OLAP `SALES`, by the day orders were
//! opened on the server's clock) as the unit's revenue, orders and dishes. The poll fetches today's figures every
//! so often and yesterday's once more after the day ended (orders opened late are paid after midnight), and keeps
//! them, so pages, the JSON API and the daily summary read a row instead of holding a licence slot.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tillwire_platform::web::Lang;
use tillwire_platform::{HttpError, Store, now_ms, read, write};
use tillwire_units::UnitId;

use crate::server::{ServerClient, ServerError};

/// How many dishes a day keeps (the page's plot and the summary's top show the first few).
const DISHES_KEPT: usize = 50;

/// A dish's day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DishSales {
    pub name: String,
    /// Portions sold (decimal text).
    pub amount: String,
    /// Revenue after discounts (decimal text).
    pub revenue: String,
}

/// A unit's closed iiko sales of one day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DaySales {
    pub unit_id: i64,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Revenue after discounts (decimal text).
    pub revenue: String,
    pub orders: i64,
    /// By revenue, highest first.
    pub dishes: Vec<DishSales>,
    /// Fetched after the day ended: these are its figures for good.
    pub complete: bool,
    pub fetched_ms: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    unit_id: i64,
    day: String,
    revenue: String,
    orders: i64,
    dishes: String,
    final_: bool,
    fetched_ms: i64,
}

impl From<Row> for DaySales {
    fn from(row: Row) -> Self {
        DaySales {
            unit_id: row.unit_id,
            day: row.day,
            revenue: row.revenue,
            orders: row.orders,
            dishes: serde_json::from_str(&row.dishes).unwrap_or_default(),
            complete: row.final_,
            fetched_ms: row.fetched_ms,
        }
    }
}

const COLUMNS: &str = "unit_id, day, revenue, orders, dishes, final AS final_, fetched_ms";

/// Reads and keeps the figures.
#[derive(Clone)]
pub struct Reports {
    store: Store,
}

impl Reports {
    pub fn new(store: Store) -> Self {
        Reports { store }
    }

    /// Asks iikoServer for `day`'s figures and keeps them for `unit`; `complete` when the day is over.
    pub async fn fetch(
        &self,
        client: &ServerClient,
        unit: UnitId,
        day: NaiveDate,
        complete: bool,
    ) -> Result<DaySales, ServerError> {
        let (rows, orders) = client.day_figures(day).await?;
        let number = |row: &serde_json::Map<String, Value>, field: &str| {
            row.get(field)
                .and_then(|v| match v {
                    Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                    Value::String(s) => Decimal::from_str(s.trim()).ok(),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let mut dishes: Vec<(String, Decimal, Decimal)> = rows
            .iter()
            .map(|row| {
                (
                    row.get("DishName")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                    number(row, "DishAmountInt"),
                    number(row, "DishDiscountSumInt"),
                )
            })
            .collect();
        let revenue: Decimal = dishes.iter().map(|(_, _, sum)| *sum).sum();
        dishes.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        let dishes: Vec<DishSales> = dishes
            .into_iter()
            .take(DISHES_KEPT)
            .map(|(name, amount, revenue)| DishSales {
                name,
                amount: amount.normalize().to_string(),
                revenue: revenue.normalize().to_string(),
            })
            .collect();
        let sales = DaySales {
            unit_id: unit.0,
            day: day.to_string(),
            revenue: revenue.normalize().to_string(),
            orders,
            dishes,
            complete,
            fetched_ms: now_ms(),
        };
        let dishes = serde_json::to_string(&sales.dishes).unwrap_or_else(|_| "[]".into());
        write!(&self.store, db => sqlx::query(
            "INSERT INTO iiko_daily_sales (unit_id, day, revenue, orders, dishes, final, fetched_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (unit_id, day) DO UPDATE SET revenue = excluded.revenue, orders = excluded.orders,
                 dishes = excluded.dishes, final = excluded.final, fetched_ms = excluded.fetched_ms",
        )
        .bind(unit.0)
        .bind(&sales.day)
        .bind(&sales.revenue)
        .bind(sales.orders)
        .bind(&dishes)
        .bind(complete)
        .bind(sales.fetched_ms)
        .execute(db)
        .await
        .map(|_| ()))
        .map_err(|e| ServerError::Unexpected(e.to_string()))?;
        Ok(sales)
    }

    /// The kept figures of `unit` on `day`, if there are any.
    pub async fn day(&self, unit: UnitId, day: NaiveDate) -> Result<Option<DaySales>, HttpError> {
        let row: Option<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM iiko_daily_sales WHERE unit_id = $1 AND day = $2"
        )))
        .bind(unit.0)
        .bind(day.to_string())
        .fetch_optional(db)
        .await)?;
        Ok(row.map(DaySales::from))
    }

    /// The kept days of `unit` from `from` to `to` (both included), oldest first.
    pub async fn days(
        &self,
        unit: UnitId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DaySales>, HttpError> {
        let rows: Vec<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM iiko_daily_sales WHERE unit_id = $1 AND day >= $2 AND day <= $3 ORDER BY day"
        )))
        .bind(unit.0)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().map(DaySales::from).collect())
    }

    /// Whether `unit`'s `day` is kept for good already.
    pub async fn is_complete(&self, unit: UnitId, day: NaiveDate) -> Result<bool, HttpError> {
        Ok(self.day(unit, day).await?.is_some_and(|d| d.complete))
    }
}

/// An amount as people write it: thousands apart, two decimals, a decimal comma in Russian.
pub fn money(amount: &str, lang: Lang) -> String {
    let value: f64 = amount.parse().unwrap_or(0.0);
    let text = format!("{:.2}", value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    let (group, point) = match lang {
        Lang::Ru => ('\u{a0}', ','),
        Lang::En => (',', '.'),
    };
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 { "−" } else { "" };
    format!("{sign}{grouped}{point}{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(money("48250.5", Lang::Ru), "48\u{a0}250,50");
        assert_eq!(money("48250.5", Lang::En), "48,250.50");
        assert_eq!(money("999", Lang::En), "999.00");
        assert_eq!(money("1234567.891", Lang::En), "1,234,567.89");
        assert_eq!(money("0", Lang::Ru), "0,00");
    }
}
