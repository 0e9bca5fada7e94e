//! `init` seeds the report types with the production ids (clients and HEAD code use ids 1 and 10–20) and the
//! right labels (the original stored `['verbose_name']` for every statistics type).

use tillwire_platform::{Backend, Platform, write_tx};

use crate::DirectoryError;

/// (id, name, label, parent id). Statistics sub-types have parent 1, `STATISTICS`.
pub const REPORT_TYPES: &[(i64, &str, &str, Option<i64>)] = &[
    (1, "STATISTICS", "Отчёты по статистике", None),
    (
        2,
        "INGREDIENTS_STOP_SALES",
        "Стопы (тесто, сыр, пицца-соус)",
        None,
    ),
    (3, "STREET_STOP_SALES", "Стопы (Улица)", None),
    (4, "SECTOR_STOP_SALES", "Стопы (Сектор)", None),
    (5, "PIZZERIA_STOP_SALES", "Стопы (Пиццерия)", None),
    (
        6,
        "STOPS_AND_RESUMES",
        "Стопы (Остальные ингредиенты)",
        None,
    ),
    (7, "CANCELED_ORDERS", "Отмены заказов", None),
    (8, "CHEATED_PHONE_NUMBERS", "Мошенничество с номерами", None),
    (9, "WRITE_OFFS", "Списания ингредиентов", None),
    (10, "COOKING_TIME", "Время приготовления (общее)", Some(1)),
    (
        11,
        "RESTAURANT_COOKING_TIME",
        "Время приготовления (ресторан)",
        Some(1),
    ),
    (
        12,
        "KITCHEN_PERFORMANCE",
        "Производительность кухни",
        Some(1),
    ),
    (
        13,
        "DELIVERY_AWAITING_TIME",
        "Время на полке / 1в1",
        Some(1),
    ),
    (14, "DELIVERY_SPEED", "Скорость доставки", Some(1)),
    (
        15,
        "DELIVERY_PERFORMANCE",
        "Производительность доставки",
        Some(1),
    ),
    (
        16,
        "BEING_LATE_CERTIFICATES",
        "Сертификаты за опоздание",
        Some(1),
    ),
    (17, "DAILY_REVENUE", "Выручка за сегодня", Some(1)),
    (18, "AWAITING_ORDERS", "Остывает на полке", Some(1)),
    (19, "BONUS_SYSTEM", "Бонусная система", Some(1)),
    (20, "PRODUCTIVITY_BALANCE", "Баланс эффективности", Some(1)),
    (
        21,
        "LATE_DELIVERY_VOUCHERS",
        "Сертификаты за опоздание",
        None,
    ),
];

/// tillwire's own alerts and reports (name, Russian label, English label): seeded active, with ids after the
/// original's.
pub const TILLWIRE_REPORT_TYPES: &[(&str, &str, &str)] = &[
    (
        "REGISTER_INCIDENTS",
        "Инциденты на кассах",
        "Register incidents",
    ),
    (
        "PRINTER_ALERTS",
        "Принтеры чеков очереди",
        "Queue ticket printers",
    ),
    (
        "COLLECTOR_ALERTS",
        "Сбор чеков с касс",
        "Receipt collection",
    ),
    ("ERP_ALERTS", "Заказ-наряды в ERP", "ERP order lines"),
    ("DAILY_SUMMARY", "Итоги дня", "Daily summary"),
];

/// Inserts the report types missing by id or name (idempotent). They start inactive, as in production: an
/// admin activates the ones the chain uses on the report types page. Returns how many were added.
pub async fn init(platform: &Platform) -> Result<u64, DirectoryError> {
    let is_postgres = platform.store.backend() == Backend::Postgres;
    let added: Result<u64, DirectoryError> = write_tx!(&platform.store, tx => {
        let mut added = 0;
        for (id, name, label, parent) in REPORT_TYPES {
            added += sqlx::query(
                "INSERT INTO directory_report_types (id, name, verbose_name, parent_id, priority, is_active)
                 SELECT $1, $2, $3, $4, 0, FALSE
                 WHERE NOT EXISTS (SELECT 1 FROM directory_report_types WHERE id = $1 OR name = $2)",
            )
            .bind(id)
            .bind(name)
            .bind(label)
            .bind(parent)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
        if is_postgres {
            // Explicit ids do not move the sequence; later types must not collide with them.
            sqlx::query("SELECT setval(pg_get_serial_sequence('directory_report_types', 'id'),
                         (SELECT COALESCE(MAX(id), 1) FROM directory_report_types))")
                .execute(&mut **tx)
                .await?;
        }
        for (name, label, english) in TILLWIRE_REPORT_TYPES {
            added += sqlx::query(
                "INSERT INTO directory_report_types (name, verbose_name, verbose_name_en, priority, is_active)
                 SELECT $1, $2, $3, 0, TRUE
                 WHERE NOT EXISTS (SELECT 1 FROM directory_report_types WHERE name = $1)",
            )
            .bind(name)
            .bind(label)
            .bind(english)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
        Ok(added)
    });
    added
}
