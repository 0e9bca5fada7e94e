//! What `tillwire init` seeds (ELQ's `init`) and the demo catalogue (ELQ's `demo`, without random orders).

use tillwire_platform::{Platform, now_ms, read, write_tx};
use tillwire_units::{UnitId, Units};

use crate::KitchenError;
use crate::Thing;

pub const DEFAULT_UNIT_NAME: &str = "Основное подразделение";

/// ELQ's statuses: id, name, shown, finished, cancels, colour, icon.
type SeedStatus = (
    i64,
    &'static str,
    bool,
    bool,
    bool,
    &'static str,
    &'static str,
);
const STATUSES: [SeedStatus; 4] = [
    (1, "Готовится", true, false, false, "#334155", "bi bi-bag"),
    (2, "Готов", true, false, false, "#15803d", "bi bi-bag-plus"),
    (3, "Выдан", false, true, false, "#0c4128", "bi bi-bag-check"),
    (4, "Отменен", false, true, true, "maroon", "bi bi-bag-x"),
];
const FLOWS: [(i64, i64); 4] = [(1, 2), (1, 4), (2, 3), (2, 4)];
const STATIONS: [&str; 4] = ["Салаты", "Шаурма", "Пиццерия", "Вок"];
const PRINTER_NAME: &str = "Принтер этикеток";
/// Code, short name, station.
const DEMO_WARES: [(&str, &str, &str); 5] = [
    ("48566", "Пицца 4 сыра", "Пиццерия"),
    ("43221", "Шаурма св", "Шаурма"),
    ("51356", "Вок остр. пр. соус", "Вок"),
    ("51358", "Вок остр. греча", "Вок"),
    ("12356", "Салат оливье", "Салаты"),
];

/// Seeds each part only where it is empty, so running it again changes nothing. The default unit and its
/// stations, printer and registers appear only in a database that had no unit at all.
pub async fn init(platform: &Platform) -> Result<Option<UnitId>, KitchenError> {
    let store = &platform.store;
    let now = now_ms();
    let seeded: Result<(), KitchenError> = write_tx!(store, tx => {
        let (statuses,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM statuses").fetch_one(&mut **tx).await?;
        if statuses == 0 {
            for (id, name, shown, finished, cancels, color, icon) in STATUSES {
                sqlx::query(
                    "INSERT INTO statuses (id, name, shown, finished, cancels, color, icon, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(name)
                .bind(shown)
                .bind(finished)
                .bind(cancels)
                .bind(color)
                .bind(icon)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
        }
        let (flows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM status_flows").fetch_one(&mut **tx).await?;
        if flows == 0 {
            for (from, to) in FLOWS {
                sqlx::query("INSERT INTO status_flows (current_status_id, next_status_id) VALUES ($1, $2)")
                    .bind(from)
                    .bind(to)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    });
    seeded?;

    let Some(created) = Units(store).ensure_default(DEFAULT_UNIT_NAME).await? else {
        return Ok(None);
    };
    let unit = created.0;
    let equipped: Result<(), KitchenError> = write_tx!(store, tx => {
        for name in STATIONS {
            sqlx::query("INSERT INTO stations (unit_id, name, created_ms) VALUES ($1, $2, $3)")
                .bind(unit)
                .bind(name)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        let (printer,): (i64,) = sqlx::query_as(
            "INSERT INTO printers (unit_id, name, address, created_ms) VALUES ($1, $2, '', $3) RETURNING id",
        )
        .bind(unit)
        .bind(PRINTER_NAME)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        for number in 1..=5_i64 {
            sqlx::query(
                "INSERT INTO cash_registers (unit_id, number, name, printer_id, created_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(unit)
            .bind(number)
            .bind(format!("Касса №{number}"))
            .bind(printer)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    });
    equipped?;
    Ok(Some(created))
}

/// Adds ELQ's five demo wares to the default unit (catch quantity 1), creating missing stations.
/// Existing wares with these codes are left as they are; no orders are made.
pub async fn load_demo(platform: &Platform) -> Result<usize, KitchenError> {
    let store = &platform.store;
    let unit = Units(store)
        .default_unit()
        .await?
        .ok_or(KitchenError::NotFound(Thing::Unit))?
        .id;
    let now = now_ms();
    let added: Result<usize, KitchenError> = write_tx!(store, tx => {
        let mut added = 0;
        for (code, name, station) in DEMO_WARES {
            sqlx::query("INSERT INTO stations (unit_id, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT (unit_id, name) DO NOTHING")
                .bind(unit)
                .bind(station)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            added += sqlx::query(
                "INSERT INTO wares (unit_id, code, full_name, short_name, station_id, catch_quantity, created_ms)
                 SELECT $1, $2, $3, $3, id, 1, $5 FROM stations WHERE unit_id = $1 AND name = $4
                 ON CONFLICT (unit_id, code) DO NOTHING",
            )
            .bind(unit)
            .bind(code)
            .bind(name)
            .bind(station)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected() as usize;
        }
        Ok(added)
    });
    added
}

/// Whether the catalogue is still empty (the front page then points a newcomer at the demo).
pub async fn has_wares(platform: &Platform) -> Result<bool, KitchenError> {
    let (count,): (i64,) = read!(&platform.store, db => sqlx::query_as("SELECT COUNT(*) FROM wares").fetch_one(db).await)?;
    Ok(count > 0)
}
