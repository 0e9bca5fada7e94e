//! The iikoServer client against the simulator, on both backends: the licence slot is given back after every
//! path (success, an OLAP error, a column the report lacks, a refused login, a key left by a killed process),
//! requests never overlap, another instance waits its turn, and OLAP's filters give the day's figures.

use std::time::Duration;

use chrono::NaiveDate;
use tillwire_iiko::server::{ServerClient, ServerError};
use tillwire_iiko::sim::server::{SaleLine, ServerSim};
use tillwire_platform::config::Secret;
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{Area, Platform, Settings, Store, area};
use tillwire_testkit::TestDatabase;

const AREAS: [&Area; 4] = [
    &tillwire_platform::AREA,
    &tillwire_units::AREA,
    &tillwire_kitchen::AREA,
    &tillwire_iiko::AREA,
];

const LOGIN: &str = "tillwire";
const PASSWORD: &str = "сложный пароль 42";

async fn platform(db: &TestDatabase) -> (Platform, SecretBox, tempfile::TempDir) {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&area::migrations(&AREAS))
        .await
        .expect("migrate");
    let data = tempfile::tempdir().expect("data dir");
    let mut settings = Settings::for_database(db.url());
    settings.data_dir = data.path().to_owned();
    let secrets = SecretBox::load(data.path()).expect("secret box");
    (Platform::new(store, settings), secrets, data)
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn sale(date: &str, order: &str, dish: &str, amount: &str, sum: &str) -> SaleLine {
    SaleLine {
        open_date: day(date),
        department: "Кафе 1".into(),
        order_id: order.into(),
        order_num: 1,
        dish_id: format!("dish-{dish}"),
        dish_code: dish.into(),
        dish_name: format!("Блюдо {dish}"),
        dish_category: "Горячее".into(),
        amount: amount.into(),
        sum: sum.into(),
        discount_sum: sum.into(),
        order_deleted: false,
        deleted_with_writeoff: false,
        storned: false,
        service_type: None,
        waiter: "Анна".into(),
        close_time: day(date).and_hms_opt(20, 0, 0).unwrap(),
    }
}

/// 1 May's closed sales by dish, with their revenue.
async fn may_day(
    client: &ServerClient,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ServerError> {
    client
        .sales(
            day("2024-05-01"),
            day("2024-05-02"),
            &["DishName"],
            &["DishSumInt"],
        )
        .await
}

fn total(rows: &[serde_json::Map<String, serde_json::Value>], dish: &str, field: &str) -> f64 {
    rows.iter()
        .filter(|row| row.get("DishName").and_then(|v| v.as_str()) == Some(dish))
        .filter_map(|row| row.get(field).and_then(|v| v.as_f64()))
        .sum()
}

tillwire_testkit::both_backends!(
    olap_gives_the_days_closed_sales_and_the_slot_is_given_back,
    |db| async move {
        let (platform, secrets, _data) = platform(&db).await;
        let (sim, url) = ServerSim::start(LOGIN, PASSWORD).await;
        sim.add_sale(sale("2024-05-01", "o1", "1", "2", "560"));
        sim.add_sale(sale("2024-05-01", "o2", "1", "1", "280"));
        sim.add_sale(sale("2024-05-01", "o2", "2", "1", "150.5"));
        sim.add_sale(sale("2024-04-30", "o0", "1", "5", "1400"));
        sim.add_sale(sale("2024-05-02", "o3", "1", "7", "1960"));
        let mut deleted = sale("2024-05-01", "o4", "1", "9", "2520");
        deleted.order_deleted = true;
        sim.add_sale(deleted);
        let mut storned = sale("2024-05-01", "o5", "2", "3", "450");
        storned.storned = true;
        sim.add_sale(storned);

        let client = ServerClient::new(
            platform.clone(),
            secrets.clone(),
            &url,
            LOGIN,
            &Secret::new(PASSWORD),
        );
        let rows = client
            .sales(
                day("2024-05-01"),
                day("2024-05-02"),
                &["DishName"],
                &["DishAmountInt", "DishSumInt"],
            )
            .await
            .unwrap();
        assert_eq!(total(&rows, "Блюдо 1", "DishAmountInt"), 3.0, "{rows:?}");
        assert_eq!(total(&rows, "Блюдо 1", "DishSumInt"), 840.0);
        assert_eq!(
            total(&rows, "Блюдо 2", "DishSumInt"),
            150.5,
            "the storned line left out"
        );
        assert_eq!(sim.slots_in_use(), 0, "logged out after the report");

        // A column the report lacks is found before the report is asked for, and the slot still goes back.
        let missing = client
            .sales(
                day("2024-05-01"),
                day("2024-05-02"),
                &["NoSuchColumn"],
                &["DishSumInt"],
            )
            .await;
        assert_eq!(
            missing.unwrap_err(),
            ServerError::NoColumn("NoSuchColumn".into())
        );
        assert_eq!(sim.slots_in_use(), 0);

        // The server failing the report: the error is told, the slot given back.
        sim.fail_next("/resto/api/v2/reports/olap", 500, 1);
        let failed = may_day(&client).await;
        assert!(
            matches!(failed, Err(ServerError::Refused { status: 500, .. })),
            "{failed:?}"
        );
        assert_eq!(sim.slots_in_use(), 0);

        // A wrong password holds nothing.
        let wrong = ServerClient::new(
            platform.clone(),
            secrets.clone(),
            &url,
            LOGIN,
            &Secret::new("wrong"),
        );
        let refused = may_day(&wrong).await;
        assert!(matches!(refused, Err(ServerError::Login(_))), "{refused:?}");
        assert_eq!(sim.slots_in_use(), 0);
        assert_eq!(
            sim.auth_count(),
            sim.logout_count(),
            "every key that was given out was logged out"
        );
        assert_eq!(sim.overlaps(), 0);
    }
);

tillwire_testkit::both_backends!(
    requests_never_overlap_and_another_instance_waits_its_turn,
    |db| async move {
        let (platform, secrets, _data) = platform(&db).await;
        let (sim, url) = ServerSim::start(LOGIN, PASSWORD).await;
        sim.add_sale(sale("2024-05-01", "o1", "1", "2", "560"));
        // Every request takes a while, so any overlap would be seen.
        sim.set_request_delay(Duration::from_millis(30));
        let client = ServerClient::new(
            platform.clone(),
            secrets.clone(),
            &url,
            LOGIN,
            &Secret::new(PASSWORD),
        );
        let calls = (0..4).map(|_| {
            let client = client.clone();
            async move { may_day(&client).await }
        });
        for answer in futures::future::join_all(calls).await {
            assert_eq!(total(&answer.unwrap(), "Блюдо 1", "DishSumInt"), 560.0);
        }
        assert_eq!(sim.overlaps(), 0, "one request at a time");
        assert_eq!(sim.slots_in_use(), 0);

        // Another instance on the same database is told the server is busy while a session is on.
        let mut settings = Settings::for_database(db.url());
        settings.data_dir = _data.path().to_owned();
        let instance = Platform::new(platform.store.clone(), settings);
        let other = ServerClient::new(
            instance,
            secrets.clone(),
            &url,
            LOGIN,
            &Secret::new(PASSWORD),
        );
        sim.set_request_delay(Duration::from_millis(300));
        let first = tokio::spawn({
            let client = client.clone();
            async move { may_day(&client).await }
        });
        let mut busy = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            if sim.slots_in_use() == 1 {
                let answer = may_day(&other).await;
                busy = answer == Err(ServerError::Busy);
                break;
            }
        }
        assert!(
            busy,
            "the second instance waits rather than taking the slot"
        );
        first.await.unwrap().unwrap();
        assert_eq!(sim.overlaps(), 0);
        assert_eq!(sim.slots_in_use(), 0);
    }
);

tillwire_testkit::both_backends!(
    a_key_left_by_a_killed_process_is_logged_out_first,
    |db| async move {
        let (platform, secrets, _data) = platform(&db).await;
        let (sim, url) = ServerSim::start(LOGIN, PASSWORD).await;
        sim.add_sale(sale("2024-05-01", "o1", "1", "2", "560"));
        // A process signed in, wrote its key down and was killed before its logout: the only slot is held.
        let sha1 = {
            use sha1::Digest;
            hex::encode(sha1::Sha1::digest(PASSWORD.as_bytes()))
        };
        let key = reqwest::get(format!("{url}api/auth?login={LOGIN}&pass={sha1}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(sim.slots_in_use(), 1);
        let server = format!("{}/", url.trim_end_matches('/'));
        let sealed = secrets.seal(key.trim());
        tillwire_platform::write!(&platform.store, db => sqlx::query("INSERT INTO iiko_server_keys (server, key_sealed, taken_ms) VALUES ($1, $2, 0)")
        .bind(&server)
        .bind(&sealed)
        .execute(db)
        .await
        .map(|_| ()))
    .unwrap();

        let client = ServerClient::new(
            platform.clone(),
            secrets.clone(),
            &url,
            LOGIN,
            &Secret::new(PASSWORD),
        );
        let rows = may_day(&client)
            .await
            .expect("the leftover key is logged out, so the slot is free");
        assert_eq!(total(&rows, "Блюдо 1", "DishSumInt"), 560.0);
        assert_eq!(sim.slots_in_use(), 0);
    }
);
