//! Orders from a POS that keeps orders of its own (iiko), rather than sending finished receipts.
//!
//! Such an order changes after it is first seen: items are added and deleted, the order is cancelled. Each
//! change arrives as the whole order (what it holds now), and [`Kitchen::sync_external_order`] makes the
//! production order match it: the first time with production wares, it gets a queue number like a receipt
//! (per unit and business day); later its lines are added, changed and removed; a cancelled order, or one left
//! with nothing to make, moves to the cancelling status. The POS's id is unique per unit (`orders.external_ref`),
//! so whichever door the same order comes through, and however often, it is one production order.

use chrono::NaiveDate;
use tillwire_platform::{now_ms, write_tx};
use tillwire_units::UnitId;

use crate::import::merge_lines;
use crate::model::Quantity;
use crate::storage::{ADVANCE_COUNTER, NewLine, Registered};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

/// Which POS order an order is: its source and the POS's id, e.g. `iiko:6f0c…`. At most 200 characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalRef(String);

impl ExternalRef {
    pub fn parse(source: &str, id: &str) -> Option<Self> {
        let value = format!("{source}:{id}");
        let plain = !source.is_empty()
            && !id.is_empty()
            && value.len() <= 200
            && !value.chars().any(char::is_control);
        plain.then_some(ExternalRef(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A POS order as it stands now.
#[derive(Debug, Clone)]
pub struct ExternalOrder {
    pub unit: UnitId,
    pub reference: ExternalRef,
    /// The POS's own number for it, shown beside the queue number.
    pub number: Option<String>,
    /// The business day it was made on; a later change keeps the day it was registered under.
    pub business_day: NaiveDate,
    /// Ware codes and quantities of the items it holds now (deleted items left out). Codes outside the unit's
    /// catalogue, and amounts below a ware's catch quantity, make nothing, as for receipts.
    pub lines: Vec<(String, Quantity)>,
    pub cancelled: bool,
    /// Who changed it, for the audit log (`iiko`).
    pub actor: &'static str,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// New, with a queue number.
    Registered(Registered),
    /// Its lines, stations, status or POS number changed.
    Updated { order_id: i64, number: i64 },
    /// Moved to the cancelling status.
    Cancelled { order_id: i64, number: i64 },
    /// Already as the POS has it.
    Unchanged { order_id: i64, number: i64 },
    /// Nothing to make and never registered: no number taken.
    NothingToRegister,
}

impl Synced {
    /// The production order it concerns, if there is one.
    pub fn order(&self) -> Option<(i64, i64)> {
        match *self {
            Synced::Registered(r) => Some((r.order_id, r.number)),
            Synced::Updated { order_id, number }
            | Synced::Cancelled { order_id, number }
            | Synced::Unchanged { order_id, number } => Some((order_id, number)),
            Synced::NothingToRegister => None,
        }
    }
}

/// The production order of an external reference, as the sync reads it.
#[derive(sqlx::FromRow)]
struct Existing {
    id: i64,
    number: i64,
    status_id: i64,
    finished: bool,
    cancels: bool,
    external_number: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CurrentLine {
    code: String,
    quantity: f64,
}

/// Adds a line to an order (a macro: the transaction is a different type on each backend).
macro_rules! insert_line {
    ($tx:expr, $order_id:expr, $line:expr) => {
        sqlx::query(
            "INSERT INTO order_lines (order_id, ware_id, code, short_name, station_id, quantity)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($order_id)
        .bind($line.ware_id)
        .bind(&$line.code)
        .bind(&$line.short_name)
        .bind($line.station_id)
        .bind($line.quantity)
        .execute(&mut **$tx)
        .await?
    };
}

/// Records a status change in the audit log.
macro_rules! log_status {
    ($tx:expr, $order_id:expr, $from:expr, $to:expr, $actor:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO order_status_log (order_id, from_status_id, to_status_id, actor, at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($order_id)
        .bind($from)
        .bind($to)
        .bind($actor)
        .bind($now)
        .execute(&mut **$tx)
        .await?
    };
}

/// Moves an order to another status, audited.
macro_rules! move_to {
    ($tx:expr, $existing:expr, $to:expr, $actor:expr, $now:expr) => {{
        sqlx::query("UPDATE orders SET status_id = $2, status_changed_ms = $3 WHERE id = $1")
            .bind($existing.id)
            .bind($to)
            .bind($now)
            .execute(&mut **$tx)
            .await?;
        log_status!(
            $tx,
            $existing.id,
            Some($existing.status_id),
            $to,
            $actor,
            $now
        );
    }};
}

impl Kitchen {
    /// Makes the production order of `order` match it (see the module's notes), in one transaction, and tells
    /// the screens.
    pub async fn sync_external_order(&self, order: &ExternalOrder) -> Result<Synced, KitchenError> {
        let codes: Vec<&str> = order.lines.iter().map(|(code, _)| code.as_str()).collect();
        let catalogue = self.wares_by_codes(order.unit, &codes).await?;
        let wanted = merge_lines(&catalogue, &order.lines);
        let synced = match self.sync_once(order, &wanted).await {
            // Another instance registered the same order a moment ago: it is now an update.
            Err(KitchenError::Database(sqlx::Error::Database(error)))
                if error.is_unique_violation() =>
            {
                self.sync_once(order, &wanted).await?
            }
            other => other?,
        };
        if let Some((order_id, _)) = synced.order()
            && !matches!(synced, Synced::Unchanged { .. })
        {
            self.announce(&self.order_view(order_id).await?).await;
        }
        Ok(synced)
    }

    async fn sync_once(
        &self,
        order: &ExternalOrder,
        wanted: &[NewLine],
    ) -> Result<Synced, KitchenError> {
        let now = now_ms();
        let counters = self.counters.clone();
        write_tx!(self.store(), tx => async {
            let existing: Option<Existing> = sqlx::query_as(
                "SELECT o.id, o.number, o.status_id, s.finished, s.cancels, o.external_number
                 FROM orders o JOIN statuses s ON s.id = o.status_id WHERE o.unit_id = $1 AND o.external_ref = $2",
            )
            .bind(order.unit.0)
            .bind(order.reference.as_str())
            .fetch_optional(&mut **tx)
            .await?;
            let Some(existing) = existing else {
                if order.cancelled || wanted.is_empty() {
                    return Ok(Synced::NothingToRegister);
                }
                let initial: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM statuses WHERE shown AND NOT finished ORDER BY id LIMIT 1",
                )
                .fetch_optional(&mut **tx)
                .await?;
                let (initial,) = initial.ok_or_else(|| {
                    KitchenError::Conflict(Text::new(
                        "Не задан начальный статус заказа.",
                        "No initial status is configured.",
                    ))
                })?;
                let day = order.business_day.to_string();
                let number = match &counters {
                    Some(counters) => counters.advance(order.unit.0, &day, 1).await?,
                    None => {
                        let (last,): (i64,) = sqlx::query_as(ADVANCE_COUNTER)
                            .bind(order.unit.0)
                            .bind(&day)
                            .bind(1_i64)
                            .fetch_one(&mut **tx)
                            .await?;
                        last
                    }
                };
                let (order_id,): (i64,) = sqlx::query_as(
                    "INSERT INTO orders (unit_id, business_day, number, status_id, created_ms, status_changed_ms,
                                         external_ref, external_number)
                     VALUES ($1, $2, $3, $4, $5, $5, $6, $7) RETURNING id",
                )
                .bind(order.unit.0)
                .bind(&day)
                .bind(number)
                .bind(initial)
                .bind(now)
                .bind(order.reference.as_str())
                .bind(&order.number)
                .fetch_one(&mut **tx)
                .await?;
                for line in wanted {
                    insert_line!(tx, order_id, line);
                }
                let mut stations: Vec<i64> = wanted.iter().map(|l| l.station_id).collect();
                stations.sort_unstable();
                stations.dedup();
                for station in &stations {
                    sqlx::query("INSERT INTO order_stations (order_id, station_id) VALUES ($1, $2)")
                        .bind(order_id)
                        .bind(station)
                        .execute(&mut **tx)
                        .await?;
                }
                log_status!(tx, order_id, None::<i64>, initial, order.actor, now);
                return Ok(Synced::Registered(Registered {
                    order_id,
                    number,
                    stations: stations.len(),
                    created_ms: now,
                }));
            };

            let (order_id, number) = (existing.id, existing.number);
            if order.cancelled || wanted.is_empty() {
                // Already cancelled, or already given out: nothing left to stop.
                if existing.cancels || existing.finished {
                    return Ok(Synced::Unchanged { order_id, number });
                }
                let cancelling: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM statuses WHERE cancels ORDER BY id LIMIT 1",
                )
                .fetch_optional(&mut **tx)
                .await?;
                let Some((cancelling,)) = cancelling else {
                    return Ok(Synced::Unchanged { order_id, number });
                };
                move_to!(tx, existing, cancelling, order.actor, now);
                return Ok(Synced::Cancelled { order_id, number });
            }

            let current: Vec<CurrentLine> = sqlx::query_as(
                "SELECT code, quantity FROM order_lines WHERE order_id = $1",
            )
            .bind(order_id)
            .fetch_all(&mut **tx)
            .await?;
            let mut changed = false;
            // Stations with more to make than before: not ready any more.
            let mut grown: Vec<i64> = Vec::new();
            for line in wanted {
                match current.iter().find(|c| c.code == line.code) {
                    None => {
                        insert_line!(tx, order_id, line);
                        grown.push(line.station_id);
                        changed = true;
                    }
                    Some(had) if had.quantity != line.quantity => {
                        sqlx::query(
                            "UPDATE order_lines SET quantity = $3,
                                 crossed_ms = CASE WHEN $3 > quantity THEN NULL ELSE crossed_ms END
                             WHERE order_id = $1 AND code = $2",
                        )
                        .bind(order_id)
                        .bind(&line.code)
                        .bind(line.quantity)
                        .execute(&mut **tx)
                        .await?;
                        if line.quantity > had.quantity {
                            grown.push(line.station_id);
                        }
                        changed = true;
                    }
                    Some(_) => {}
                }
            }
            for gone in current.iter().filter(|c| !wanted.iter().any(|w| w.code == c.code)) {
                sqlx::query("DELETE FROM order_lines WHERE order_id = $1 AND code = $2")
                    .bind(order_id)
                    .bind(&gone.code)
                    .execute(&mut **tx)
                    .await?;
                changed = true;
            }
            if changed {
                for station in wanted.iter().map(|l| l.station_id) {
                    sqlx::query(
                        "INSERT INTO order_stations (order_id, station_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(order_id)
                    .bind(station)
                    .execute(&mut **tx)
                    .await?;
                }
                for station in &grown {
                    sqlx::query("UPDATE order_stations SET ready_ms = NULL WHERE order_id = $1 AND station_id = $2")
                        .bind(order_id)
                        .bind(station)
                        .execute(&mut **tx)
                        .await?;
                }
                sqlx::query(
                    "DELETE FROM order_stations WHERE order_id = $1
                         AND station_id NOT IN (SELECT station_id FROM order_lines WHERE order_id = $1)",
                )
                .bind(order_id)
                .execute(&mut **tx)
                .await?;
            }
            if existing.external_number != order.number {
                sqlx::query("UPDATE orders SET external_number = $2 WHERE id = $1")
                    .bind(order_id)
                    .bind(&order.number)
                    .execute(&mut **tx)
                    .await?;
                changed = true;
            }
            // More to make on an order given out or cancelled: it goes back into the queue.
            if !grown.is_empty() && existing.finished {
                let initial: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM statuses WHERE shown AND NOT finished ORDER BY id LIMIT 1",
                )
                .fetch_optional(&mut **tx)
                .await?;
                if let Some((initial,)) = initial {
                    move_to!(tx, existing, initial, order.actor, now);
                }
            }
            Ok(if changed {
                Synced::Updated { order_id, number }
            } else {
                Synced::Unchanged { order_id, number }
            })
        }
        .await)
    }
}
