//! `tillwire erp import-oilmat`: an oilmat-erp `workshop_logs/` directory, with status databases shaped as spec §4.2
//! describes them (the raw request with its password as `reason`, the typo `compleated`, integer ids), carried over
//! on both backends: statuses kept, waiting orders marked `not_migrated`, no password kept, and a second import
//! adding nothing.

use sqlx::Connection;
use tillwire_erp::{ErpType, Integrations, OrderStatus, Orders, Reason, import};
use tillwire_platform::{Store, area, read};

const PASSWORD: &str = "hunter2-oilmat";

/// Writes `dir/<workshop>/order_status.db` with OilMat's schema and `rows`.
async fn oilmat_db(dir: &std::path::Path, workshop: &str, rows: &[(&str, &str, &str)]) {
    let path = dir.join(workshop);
    std::fs::create_dir_all(&path).unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        path.join("order_status.db").display()
    );
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS order_status (unique_id TEXT PRIMARY KEY, status TEXT, reason TEXT)")
        .execute(&mut db)
        .await
        .unwrap();
    for (id, status, reason) in rows {
        sqlx::query("INSERT OR REPLACE INTO order_status VALUES (?, ?, ?)")
            .bind(id)
            .bind(status)
            .bind(reason)
            .execute(&mut db)
            .await
            .unwrap();
    }
    db.close().await.unwrap();
}

fn request(id: &str, case: &str, item: &str, amount: &str) -> String {
    format!(
        r#"{{"unique_id": "{id}", "dealer": "Gygag", "case_nr": "{case}", "product_nr": "{item}", "product_amount": "{amount}", "username": "u@example.com", "password": "{PASSWORD}"}}"#
    )
}

tillwire_testkit::both_backends!(
    oilmat_history_is_carried_over_without_its_passwords,
    |db| async move {
        let store = Store::connect(db.url()).await.unwrap();
        store
            .migrate(&area::migrations(&[
                &tillwire_platform::AREA,
                &tillwire_units::AREA,
                &tillwire_erp::AREA,
            ]))
            .await
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        oilmat_db(
            logs.path(),
            "hosses",
            &[
                ("0001", "compleated", &request("0001", "560", "10", "5")),
                ("0002", "completed", &request("0002", "561", "11", "2")),
                ("0003", "failed", "handle varenummer"),
                ("0004", "received", &request("0004", "562", "10", "1")),
                ("0005", "processing", &request("0005", "563", "10", "1")),
                (
                    "0006",
                    "bad request",
                    &format!("{{\"unique_id\": \"0006\", \"password\": \"{PASSWORD}\"}}"),
                ),
                ("0007", "lost", ""),
            ],
        )
        .await;
        oilmat_db(
            logs.path(),
            "carlsen",
            &[("9", "completed", &request("9", "1", "2", "3"))],
        )
        .await;
        let integrations = Integrations::new(store.clone(), data.path().to_owned());
        let orders = Orders::new(
            store.clone(),
            tillwire_platform::jobs::JobQueue::new(store.clone()),
        );

        // Without an integration and without a type, nothing is guessed.
        let refused =
            import::import_oilmat(&integrations, &orders, logs.path(), None, |_, _, _| {}).await;
        assert!(refused.unwrap_err().to_string().contains("--type"));

        let mut progress = Vec::new();
        let reports = import::import_oilmat(
            &integrations,
            &orders,
            logs.path(),
            Some(ErpType::AdManager),
            |w, done, total| progress.push((w.to_owned(), done, total)),
        )
        .await
        .unwrap();
        assert_eq!(reports.len(), 2);
        let hosses = reports.iter().find(|r| r.workshop == "hosses").unwrap();
        assert_eq!(
            (
                hosses.added,
                hosses.already_there,
                hosses.unknown_status,
                hosses.created
            ),
            (7, 0, 1, true)
        );
        // Workshops in name order, each row counted.
        assert_eq!(progress.first(), Some(&("carlsen".to_owned(), 1, 1)));
        assert_eq!(progress.last(), Some(&("hosses".to_owned(), 7, 7)));

        let integration = integrations.by_workshop("hosses").await.unwrap();
        assert!(
            !integration.worker_running,
            "an imported workshop's integration starts parked"
        );
        let get = |id: &'static str| {
            let orders = orders.clone();
            async move { orders.get(integration.id, id).await.unwrap().unwrap() }
        };
        let first = get("0001").await;
        assert_eq!(
            (
                first.status,
                first.case_nr.as_str(),
                first.product_nr.as_str(),
                first.amount
            ),
            (OrderStatus::Completed, "560", "10", Some(5))
        );
        assert!(first.imported);
        assert_eq!(
            get("0003").await.message.as_deref(),
            Some("handle varenummer")
        );
        for waiting in ["0004", "0005"] {
            let order = get(waiting).await;
            assert_eq!(
                (order.status, order.reason),
                (OrderStatus::Failed, Some(Reason::NotMigrated))
            );
        }
        assert_eq!(get("0006").await.status, OrderStatus::BadRequest);
        assert_eq!(get("0007").await.status, OrderStatus::Failed);

        let stored: Vec<(String,)> = read!(&store, db => sqlx::query_as(
        "SELECT unique_id || dealer || case_nr || product_nr || COALESCE(message, '') || COALESCE(credentials_sealed, '')
         FROM erp_orders",
    )
    .fetch_all(db)
    .await)
    .unwrap();
        assert_eq!(stored.len(), 8);
        assert!(
            stored.iter().all(|(row,)| !row.contains(PASSWORD)),
            "{stored:?}"
        );

        let again = import::import_oilmat(&integrations, &orders, logs.path(), None, |_, _, _| {})
            .await
            .unwrap();
        assert!(
            again.iter().all(|r| r.added == 0 && !r.created),
            "{again:?}"
        );
        assert_eq!(again.iter().map(|r| r.already_there).sum::<usize>(), 8);
    }
);
