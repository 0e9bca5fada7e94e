//! The kitchen's queries. Each is written once in SQL both engines accept and expanded per backend by the
//! platform's `read!`/`write_tx!` macros.

use chrono::NaiveDate;
use serde::Serialize;
use tillwire_platform::jobs::{EnqueueJob, NewJob};
use tillwire_platform::{Store, now_ms, read, write, write_tx};
use tillwire_units::UnitId;

use crate::Thing;
use crate::model::{Flow, OrderLine, OrderRow, OrderStation, OrderView, Status, Workflow};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

/// The identity of an imported receipt: exact de-duplication happens on this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptKey {
    pub unit: UnitId,
    pub cash_number: i64,
    pub shift_id: i64,
    pub check_date: NaiveDate,
    pub check_id: i64,
}

/// What an import needs to know before writing, fetched in one round trip: the register, whether this receipt
/// was already registered, and the status new orders start in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceiptContext {
    pub register_id: i64,
    /// The register's ticket printer, when it has one with an address.
    pub printer_id: Option<i64>,
    pub seen: bool,
    pub initial_status_id: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WareMatch {
    pub id: i64,
    pub code: String,
    pub short_name: String,
    pub station_id: i64,
    pub catch_quantity: f64,
}

/// A merged order line ready to store.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub ware_id: i64,
    pub code: String,
    pub short_name: String,
    pub station_id: i64,
    pub quantity: f64,
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub receipt: ReceiptKey,
    pub business_day: NaiveDate,
    pub register_id: i64,
    /// Where its ticket prints; `None` prints nothing.
    pub printer_id: Option<i64>,
    pub initial_status_id: i64,
    pub lines: Vec<NewLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Registered {
    pub order_id: i64,
    pub number: i64,
    pub stations: usize,
    pub created_ms: i64,
}

impl ReceiptKey {
    fn matches(&self, claimed: &(i64, i64, i64, String, i64)) -> bool {
        let (unit, cash, shift, date, check) = claimed;
        self.unit.0 == *unit
            && self.cash_number == *cash
            && self.shift_id == *shift
            && self.check_id == *check
            && self.check_date.to_string() == *date
    }
}

impl NewOrder {
    /// The stations this order involves, ascending.
    pub fn stations(&self) -> Vec<i64> {
        let mut stations: Vec<i64> = self.lines.iter().map(|l| l.station_id).collect();
        stations.sort_unstable();
        stations.dedup();
        stations
    }

    /// The stored order as screens see it, built from what was written (no read-back on the hot path).
    pub fn view(&self, registered: &Registered) -> OrderView {
        let order_id = registered.order_id;
        OrderView {
            id: order_id,
            unit_id: self.receipt.unit.0,
            business_day: self.business_day.to_string(),
            number: registered.number,
            status_id: self.initial_status_id,
            created_ms: registered.created_ms,
            status_changed_ms: registered.created_ms,
            print_failed: false,
            external_number: None,
            lines: self
                .lines
                .iter()
                .map(|l| OrderLine {
                    order_id,
                    code: l.code.clone(),
                    short_name: l.short_name.clone(),
                    station_id: l.station_id,
                    quantity: l.quantity,
                    crossed_ms: None,
                })
                .collect(),
            stations: self
                .stations()
                .into_iter()
                .map(|station_id| OrderStation {
                    order_id,
                    station_id,
                    ready_ms: None,
                })
                .collect(),
        }
    }
}

/// Who changed an order, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StatusChange {
    pub order_id: i64,
    pub from_status_id: Option<i64>,
    pub to_status_id: i64,
    pub user_id: Option<i64>,
    pub actor: String,
    pub at_ms: i64,
}

/// Which moves are allowed: along the flows (screens, the API), or to any status (the order admin, a recall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Flows,
    Any,
}

fn too_late_to_recall() -> KitchenError {
    KitchenError::Conflict(Text::new(
        "Вернуть уже нельзя: заказ изменился или прошло слишком много времени.",
        "This can no longer be undone: the order changed or too much time has passed.",
    ))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    pub orders: u64,
    pub receipts: u64,
}

const ORDER_COLUMNS: &str = "o.id, o.unit_id, o.business_day, o.number, o.status_id, o.created_ms, o.status_changed_ms, o.print_failed, o.external_number";

impl Kitchen {
    pub fn store(&self) -> &Store {
        &self.platform.store
    }

    pub async fn workflow(&self) -> Result<Workflow, KitchenError> {
        let statuses: Vec<Status> = read!(self.store(), db => sqlx::query_as(
            "SELECT id, name, finished, shown, color, icon, cancels, alert_minutes FROM statuses ORDER BY id",
        )
        .fetch_all(db)
        .await)?;
        let flows: Vec<Flow> = read!(self.store(), db => sqlx::query_as(
            "SELECT current_status_id, next_status_id FROM status_flows ORDER BY current_status_id, next_status_id",
        )
        .fetch_all(db)
        .await)?;
        Ok(Workflow { statuses, flows })
    }

    /// `None` when the unit has no register with this number. `seen` is false when no receipt key is given.
    pub async fn receipt_context(
        &self,
        unit: UnitId,
        cash_number: i64,
        receipt: Option<&ReceiptKey>,
    ) -> Result<Option<ReceiptContext>, KitchenError> {
        Ok(read!(self.store(), db => sqlx::query_as(
            "SELECT r.id AS register_id,
                    (SELECT p.id FROM printers p WHERE p.id = r.printer_id AND p.address <> '') AS printer_id,
                    EXISTS (SELECT 1 FROM imported_receipts i WHERE i.unit_id = r.unit_id AND i.cash_number = r.number
                            AND i.shift_id = $3 AND i.check_date = $4 AND i.check_id = $5) AS seen,
                    (SELECT s.id FROM statuses s WHERE s.shown AND NOT s.finished ORDER BY s.id LIMIT 1) AS initial_status_id
             FROM cash_registers r WHERE r.unit_id = $1 AND r.number = $2",
        )
        .bind(unit.0)
        .bind(cash_number)
        .bind(receipt.map(|k| k.shift_id))
        .bind(receipt.map(|k| k.check_date.to_string()))
        .bind(receipt.map(|k| k.check_id))
        .fetch_optional(db)
        .await)?)
    }

    pub async fn register_numbers(&self, unit: UnitId) -> Result<Vec<i64>, KitchenError> {
        let rows: Vec<(i64,)> = read!(self.store(), db => sqlx::query_as(
            "SELECT number FROM cash_registers WHERE unit_id = $1 ORDER BY number",
        )
        .bind(unit.0)
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// The catalogue entries among `codes` (a receipt has a handful of lines, so one `IN` list is fine).
    pub async fn wares_by_codes(
        &self,
        unit: UnitId,
        codes: &[&str],
    ) -> Result<Vec<WareMatch>, KitchenError> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..codes.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT id, code, short_name, station_id, catch_quantity FROM wares WHERE unit_id = $1 AND code IN ({})",
            placeholders.join(", ")
        );
        read!(self.store(), db => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(unit.0);
            for code in codes {
                query = query.bind(*code);
            }
            query.fetch_all(db).await.map_err(KitchenError::from)
        })
    }

    /// Stores a batch of orders in one transaction: for each, the receipt claim, the number, the order, its lines,
    /// its stations, the first audit entry and the job printing its ticket. Each statement covers the whole
    /// batch, so a busy shop pays a handful of round trips per batch instead of per receipt. `None` in the result means that receipt was
    /// already registered (earlier, or by a twin in the same batch).
    pub async fn register_orders(
        &self,
        orders: &[NewOrder],
    ) -> Result<Vec<Option<Registered>>, KitchenError> {
        let now = now_ms();
        // A receipt twice in one batch: only its first copy may claim.
        let firsts: Vec<bool> = orders
            .iter()
            .enumerate()
            .map(|(i, o)| !orders[..i].iter().any(|p| p.receipt == o.receipt))
            .collect();
        let counters = self.counters.clone();
        let printing: bool;
        let registered: Result<Vec<Option<Registered>>, KitchenError> = write_tx!(self.store(), tx => {
            let mut claims = sqlx::QueryBuilder::new(
                "INSERT INTO imported_receipts (unit_id, cash_number, shift_id, check_date, check_id, imported_ms) ",
            );
            claims.push_values(orders.iter().zip(&firsts).filter(|(_, first)| **first), |mut row, (order, _)| {
                let key = &order.receipt;
                row.push_bind(key.unit.0)
                    .push_bind(key.cash_number)
                    .push_bind(key.shift_id)
                    .push_bind(key.check_date.to_string())
                    .push_bind(key.check_id)
                    .push_bind(now);
            });
            claims.push(" ON CONFLICT DO NOTHING RETURNING unit_id, cash_number, shift_id, check_date, check_id");
            let claimed: Vec<(i64, i64, i64, String, i64)> = claims.build_query_as().fetch_all(&mut **tx).await?;
            let claimed: Vec<&NewOrder> = orders
                .iter()
                .zip(&firsts)
                .filter(|(order, first)| **first && claimed.iter().any(|c| order.receipt.matches(c)))
                .map(|(order, _)| order)
                .collect();
            if claimed.is_empty() {
                return Ok(vec![None; orders.len()]);
            }

            // Numbers: one counter bump per (unit, business day) in the batch, handed out in batch order.
            let mut numbers: Vec<i64> = Vec::with_capacity(claimed.len());
            let mut groups: Vec<(i64, String, i64)> = Vec::new();
            for order in &claimed {
                let day = order.business_day.to_string();
                match groups.iter_mut().find(|(unit, d, _)| *unit == order.receipt.unit.0 && *d == day) {
                    Some(group) => group.2 += 1,
                    None => groups.push((order.receipt.unit.0, day, 1)),
                }
            }
            let mut last_of_group: Vec<i64> = Vec::with_capacity(groups.len());
            for (unit, day, count) in &groups {
                let last = match &counters {
                    Some(counters) => counters.advance(*unit, day, *count).await?,
                    None => {
                        let (last,): (i64,) =
                            sqlx::query_as(ADVANCE_COUNTER).bind(unit).bind(day).bind(count).fetch_one(&mut **tx).await?;
                        last
                    }
                };
                last_of_group.push(last);
            }
            let mut handed: Vec<i64> = vec![0; groups.len()];
            for order in &claimed {
                let day = order.business_day.to_string();
                let group = groups.iter().position(|(unit, d, _)| *unit == order.receipt.unit.0 && *d == day).unwrap_or(0);
                handed[group] += 1;
                numbers.push(last_of_group[group] - groups[group].2 + handed[group]);
            }

            let mut rows = sqlx::QueryBuilder::new(
                "INSERT INTO orders (unit_id, business_day, number, status_id, cash_register_id, created_ms, status_changed_ms) ",
            );
            rows.push_values(claimed.iter().zip(&numbers), |mut row, (order, number)| {
                row.push_bind(order.receipt.unit.0)
                    .push_bind(order.business_day.to_string())
                    .push_bind(*number)
                    .push_bind(order.initial_status_id)
                    .push_bind(order.register_id)
                    .push_bind(now)
                    .push_bind(now);
            });
            rows.push(" RETURNING id, unit_id, business_day, number");
            let inserted: Vec<(i64, i64, String, i64)> = rows.build_query_as().fetch_all(&mut **tx).await?;
            // RETURNING order is not promised, so match rows back by their unique (unit, day, number).
            let ids: Vec<i64> = claimed
                .iter()
                .zip(&numbers)
                .map(|(order, number)| {
                    let day = order.business_day.to_string();
                    inserted.iter().find(|r| r.1 == order.receipt.unit.0 && r.2 == day && r.3 == *number).map_or(0, |r| r.0)
                })
                .collect();

            let mut lines = sqlx::QueryBuilder::new(
                "INSERT INTO order_lines (order_id, ware_id, code, short_name, station_id, quantity) ",
            );
            let all_lines = claimed.iter().zip(&ids).flat_map(|(order, id)| order.lines.iter().map(move |line| (*id, line)));
            lines.push_values(all_lines, |mut row, (order_id, line)| {
                row.push_bind(order_id)
                    .push_bind(line.ware_id)
                    .push_bind(&line.code)
                    .push_bind(&line.short_name)
                    .push_bind(line.station_id)
                    .push_bind(line.quantity);
            });
            lines.build().execute(&mut **tx).await?;

            let mut parts = sqlx::QueryBuilder::new("INSERT INTO order_stations (order_id, station_id) ");
            let all_parts = claimed.iter().zip(&ids).flat_map(|(order, id)| order.stations().into_iter().map(move |s| (*id, s)));
            parts.push_values(all_parts, |mut row, (order_id, station)| {
                row.push_bind(order_id).push_bind(station);
            });
            parts.build().execute(&mut **tx).await?;

            let mut audit = sqlx::QueryBuilder::new(
                "INSERT INTO order_status_log (order_id, from_status_id, to_status_id, actor, at_ms) ",
            );
            audit.push_values(claimed.iter().zip(&ids), |mut row, (order, id)| {
                row.push_bind(*id).push_bind(None::<i64>).push_bind(order.initial_status_id).push_bind("import").push_bind(now);
            });
            audit.build().execute(&mut **tx).await?;

            // Tickets are jobs of the same transaction: an order is never committed without its ticket.
            let tickets: Vec<NewJob> = claimed
                .iter()
                .zip(&ids)
                .filter_map(|(order, id)| Some(self.ticket_job(*id, order.printer_id?)))
                .collect();
            (**tx).enqueue_jobs(&tickets).await?;
            printing = !tickets.is_empty();

            Ok(orders
                .iter()
                .zip(&firsts)
                .map(|(order, first)| {
                    let position = claimed.iter().position(|c| std::ptr::eq(*c, order)).filter(|_| *first)?;
                    Some(Registered {
                        order_id: ids[position],
                        number: numbers[position],
                        stations: order.stations().len(),
                        created_ms: now,
                    })
                })
                .collect())
        });
        if printing {
            self.platform.jobs.notify();
        }
        registered
    }

    /// Orders of one unit and business day; `active_only` keeps those in shown, unfinished statuses.
    pub async fn order_views(
        &self,
        unit: UnitId,
        day: NaiveDate,
        active_only: bool,
    ) -> Result<Vec<OrderView>, KitchenError> {
        let filter = if active_only {
            "AND o.status_id IN (SELECT id FROM statuses WHERE shown AND NOT finished)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders o WHERE o.unit_id = $1 AND o.business_day = $2 {filter} ORDER BY o.created_ms, o.id"
        );
        let rows: Vec<OrderRow> = read!(self.store(), db => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(unit.0)
            .bind(day.to_string())
            .fetch_all(db)
            .await)?;
        self.with_details(rows).await
    }

    pub async fn order_view(&self, id: i64) -> Result<OrderView, KitchenError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.id = $1");
        let rows: Vec<OrderRow> = read!(self.store(), db => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id)
            .fetch_all(db)
            .await)?;
        self.with_details(rows)
            .await?
            .pop()
            .ok_or(KitchenError::NotFound(Thing::Order))
    }

    async fn with_details(&self, rows: Vec<OrderRow>) -> Result<Vec<OrderView>, KitchenError> {
        let (Some(first), Some(last)) = (
            rows.iter().map(|r| r.id).min(),
            rows.iter().map(|r| r.id).max(),
        ) else {
            return Ok(Vec::new());
        };
        // One range query per table instead of one per order; rows outside the set are dropped in `assemble`.
        let lines: Vec<OrderLine> = read!(self.store(), db => sqlx::query_as(
            "SELECT order_id, code, short_name, station_id, quantity, crossed_ms FROM order_lines WHERE order_id BETWEEN $1 AND $2 ORDER BY id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(db)
        .await)?;
        let stations: Vec<OrderStation> = read!(self.store(), db => sqlx::query_as(
            "SELECT order_id, station_id, ready_ms FROM order_stations WHERE order_id BETWEEN $1 AND $2 ORDER BY station_id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(db)
        .await)?;
        Ok(OrderView::assemble(rows, lines, stations))
    }

    /// Moves an order to `to` if the flow table allows it from its current status; audited.
    pub async fn change_status(
        &self,
        order_id: i64,
        to: i64,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        self.change_status_from(order_id, None, to, actor).await
    }

    /// Moves an order from the status its screen or client showed (`seen`): if it has moved since (another
    /// screen, or this one's earlier tap), nothing changes and the answer is a conflict, so a second tap never
    /// skips a status.
    pub async fn change_status_from(
        &self,
        order_id: i64,
        seen: Option<i64>,
        to: i64,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        self.move_order(order_id, seen, to, actor, Rule::Flows)
            .await
    }

    /// Moves an order to any status, whatever the flows say (the order admin page); audited like any move.
    pub async fn move_to_any_status(
        &self,
        order_id: i64,
        to: i64,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        let workflow = self.workflow().await?;
        if !workflow.statuses.iter().any(|status| status.id == to) {
            return Err(KitchenError::NotFound(Thing::Status));
        }
        self.move_order(order_id, None, to, actor, Rule::Any).await
    }

    /// Undoes an order's last move, back to the status it came from, if that move is at most `recall_minutes`
    /// old and the order still shows its result (`seen`); audited as a move of its own.
    pub async fn recall(
        &self,
        order_id: i64,
        seen: i64,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        let last = self.last_move(order_id).await?;
        let back = last
            .filter(|last| last.to_status_id == seen && self.recallable(last.at_ms))
            .and_then(|last| last.from_status_id)
            .ok_or_else(too_late_to_recall)?;
        self.move_order(order_id, Some(seen), back, actor, Rule::Any)
            .await
    }

    /// Undoes a station's "ready" (a cook's tap or its last line crossed off) within the recall window; if that
    /// made the order ready on its own, the order goes back too.
    pub async fn recall_station_ready(
        &self,
        order_id: i64,
        station_id: i64,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        let since = now_ms() - self.recall_window_ms();
        let cleared = write!(self.store(), db => sqlx::query(
            "UPDATE order_stations SET ready_ms = NULL WHERE order_id = $1 AND station_id = $2 AND ready_ms >= $3",
        )
        .bind(order_id)
        .bind(station_id)
        .bind(since)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if cleared == 0 {
            return Err(too_late_to_recall());
        }
        tracing::info!(order = order_id, station = station_id, by = %actor.name, "station ready recalled");
        let workflow = self.workflow().await?;
        let mut view = self.order_view(order_id).await?;
        if let (Some(initial), Some(ready)) = (workflow.initial(), workflow.ready())
            && view.status_id == ready.id
            && self.settings.station_readiness
            && let Some(last) = self.last_move(order_id).await?
            && last.from_status_id == Some(initial.id)
            && last.to_status_id == ready.id
            && last.at_ms >= since
        {
            match self
                .move_order(order_id, Some(ready.id), initial.id, actor, Rule::Any)
                .await
            {
                // Someone moved it meanwhile: their change stands.
                Err(KitchenError::Conflict(_)) => view = self.order_view(order_id).await?,
                other => return other,
            }
        }
        self.announce(&view).await;
        Ok(view)
    }

    /// Crosses one line of an order off on a kitchen screen (or back on). When the last line of its station is
    /// crossed off, the station is ready.
    pub async fn cross_line(
        &self,
        order_id: i64,
        code: &str,
        crossed: bool,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        let updated = write!(self.store(), db => sqlx::query(
            "UPDATE order_lines SET crossed_ms = CASE WHEN $3 THEN COALESCE(crossed_ms, $4) ELSE NULL END
             WHERE order_id = $1 AND code = $2",
        )
        .bind(order_id)
        .bind(code)
        .bind(crossed)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(KitchenError::NotFound(Thing::Line));
        }
        let view = self.order_view(order_id).await?;
        let station = view
            .lines
            .iter()
            .find(|line| line.code == code)
            .map(|line| line.station_id);
        let station_done = |station_id: i64| {
            view.lines
                .iter()
                .filter(|line| line.station_id == station_id)
                .all(|line| line.crossed_ms.is_some())
                && view
                    .stations
                    .iter()
                    .any(|s| s.station_id == station_id && s.ready_ms.is_none())
        };
        match station {
            Some(station_id) if crossed && station_done(station_id) => {
                self.mark_station_ready(order_id, station_id, actor).await
            }
            _ => {
                self.announce(&view).await;
                Ok(view)
            }
        }
    }

    fn recall_window_ms(&self) -> i64 {
        i64::from(self.settings.recall_minutes) * 60_000
    }

    fn recallable(&self, at_ms: i64) -> bool {
        now_ms() - at_ms <= self.recall_window_ms()
    }

    async fn last_move(&self, order_id: i64) -> Result<Option<StatusChange>, KitchenError> {
        Ok(read!(self.store(), db => sqlx::query_as(
            "SELECT order_id, from_status_id, to_status_id, user_id, actor, at_ms FROM order_status_log
             WHERE order_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(order_id)
        .fetch_optional(db)
        .await)?)
    }

    async fn move_order(
        &self,
        order_id: i64,
        seen: Option<i64>,
        to: i64,
        actor: &Actor,
        rule: Rule,
    ) -> Result<OrderView, KitchenError> {
        let current = self.order_view(order_id).await?;
        if seen.is_some_and(|seen| seen != current.status_id) {
            return Err(KitchenError::Conflict(Text::new(
                "Заказ уже перешёл в другой статус.",
                "The order has already moved on.",
            )));
        }
        if rule == Rule::Flows && !self.workflow().await?.allows(current.status_id, to) {
            return Err(KitchenError::TransitionNotAllowed {
                from: current.status_id,
                to,
            });
        }
        let now = now_ms();
        let changed: Result<bool, KitchenError> = write_tx!(self.store(), tx => {
            // Compare-and-set on the status read above, so two operators cannot both move the same order.
            let updated = sqlx::query("UPDATE orders SET status_id = $2, status_changed_ms = $4 WHERE id = $1 AND status_id = $3")
                .bind(order_id)
                .bind(to)
                .bind(current.status_id)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if updated == 1 {
                sqlx::query(
                    "INSERT INTO order_status_log (order_id, from_status_id, to_status_id, user_id, actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(order_id)
                .bind(current.status_id)
                .bind(to)
                .bind(actor.user_id)
                .bind(&actor.name)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            Ok(updated == 1)
        });
        if !changed? {
            return Err(KitchenError::Conflict(Text::new(
                "Заказ тем временем изменился; обновите страницу.",
                "The order changed meanwhile; reload.",
            )));
        }
        let view = self.order_view(order_id).await?;
        self.announce(&view).await;
        Ok(view)
    }

    /// Marks one station's part of an order ready. When every station is ready and station readiness is on,
    /// the order moves from the initial status to the ready status.
    pub async fn mark_station_ready(
        &self,
        order_id: i64,
        station_id: i64,
        actor: &Actor,
    ) -> Result<OrderView, KitchenError> {
        let now = now_ms();
        let updated = write!(self.store(), db => sqlx::query(
            "UPDATE order_stations SET ready_ms = COALESCE(ready_ms, $3) WHERE order_id = $1 AND station_id = $2",
        )
        .bind(order_id)
        .bind(station_id)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(KitchenError::NotFound(Thing::Station));
        }
        let view = self.order_view(order_id).await?;
        let all_ready = view.stations.iter().all(|s| s.ready_ms.is_some());
        if all_ready && self.settings.station_readiness {
            let workflow = self.workflow().await?;
            if let (Some(initial), Some(ready)) = (workflow.initial(), workflow.ready())
                && view.status_id == initial.id
            {
                return match self.change_status(order_id, ready.id, actor).await {
                    // Someone moved it meanwhile: their change stands.
                    Err(KitchenError::Conflict(_)) => self.order_view(order_id).await,
                    other => other,
                };
            }
        }
        self.announce(&view).await;
        Ok(view)
    }

    pub async fn status_log(&self, order_id: i64) -> Result<Vec<StatusChange>, KitchenError> {
        Ok(read!(self.store(), db => sqlx::query_as(
            "SELECT order_id, from_status_id, to_status_id, user_id, actor, at_ms FROM order_status_log WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(db)
        .await)?)
    }

    /// Deletes finished orders of business days before `before` and receipts imported before then.
    /// Day counters stay, so numbers never repeat within a day.
    pub async fn purge_finished(&self, before: NaiveDate) -> Result<PurgeReport, KitchenError> {
        let before_text = before.to_string();
        let before_ms = before
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis());
        let report: Result<PurgeReport, KitchenError> = write_tx!(self.store(), tx => {
            let orders = sqlx::query(
                "DELETE FROM orders WHERE business_day < $1 AND status_id IN (SELECT id FROM statuses WHERE finished)",
            )
            .bind(&before_text)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            let receipts = sqlx::query("DELETE FROM imported_receipts WHERE imported_ms < $1")
                .bind(before_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            Ok(PurgeReport { orders, receipts })
        });
        report
    }

    /// Tells live screens about an order's new state.
    pub async fn announce(&self, view: &OrderView) {
        let payload = serde_json::to_value(view).unwrap_or_default();
        self.platform
            .events
            .publish(tillwire_platform::Event {
                topic: crate::ORDER_CHANGED.into(),
                unit_id: view.unit_id,
                payload,
            })
            .await;
    }
}

/// Takes `$3` numbers at once and returns the last of them.
pub(crate) const ADVANCE_COUNTER: &str = "INSERT INTO day_counters (unit_id, business_day, last_number) VALUES ($1, $2, $3)
     ON CONFLICT (unit_id, business_day) DO UPDATE SET last_number = day_counters.last_number + $3 RETURNING last_number";

/// PostgreSQL numbering outside the order's transaction.
///
/// The counter row is a hot spot: inside the order transaction its lock would be held through the commit's WAL
/// flush, serialising every import of a unit behind one fsync each. Here the increment commits on its own with
/// `synchronous_commit = off`, which is still crash-safe for numbering: WAL is flushed in order, so when the
/// order's (synchronous) commit is durable, the increment before it is too; if both are lost, no client saw the
/// number. The price is a gap in the sequence when an order transaction fails after taking its number.
#[derive(Clone, Debug)]
pub struct PgCounters {
    pool: sqlx::PgPool,
}

impl PgCounters {
    pub fn new(main: &sqlx::PgPool) -> Self {
        let options = (*main.connect_options())
            .clone()
            .options([("synchronous_commit", "off")]);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options);
        PgCounters { pool }
    }

    pub(crate) async fn advance(
        &self,
        unit: i64,
        day: &str,
        count: i64,
    ) -> Result<i64, sqlx::Error> {
        let (last,): (i64,) = sqlx::query_as(ADVANCE_COUNTER)
            .bind(unit)
            .bind(day)
            .bind(count)
            .fetch_one(&self.pool)
            .await?;
        Ok(last)
    }
}
