//! Table orders made by hand in iikoFront, which iikoCloud never sees, reach the queue through iikoServer's events
//! journal, on both backends: opened, items added and deleted, the order deleted; the licence slot given back and
//! no request overlapping another.

mod common;

use common::*;
use serde_json::json;
use tillwire_iiko::sim::server::{Dish, ServerSim};

const DEPARTMENT: &str = "5f2d7c1e-3a4b-4c6d-8e9f-0a1b2c3d4e5f";
const ORDER: &str = "6b1f2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";

tillwire_testkit::both_backends!(
    a_manual_table_order_is_seen_only_through_the_events_journal,
    |db| async move {
        let (server, server_url) = ServerSim::start("tillwire", "пароль сервера").await;
        server.add_department(DEPARTMENT, "Кафе 1");
        let app = App::start_with(&db, "Russian Standard Time", |settings| {
            settings.set(
                "iiko.server",
                json!([{"url": server_url, "login": "tillwire", "password": "пароль сервера",
                    "time_zone": "Russian Standard Time"}]),
            );
        })
        .await;
        let poll = || async {
            let server = app.iiko.servers.list().await.unwrap().remove(0);
            let client = app.iiko.server_client(&server).unwrap();
            tillwire_iiko::poll::poll_journal(&app.iiko, &server, &client)
                .await
                .unwrap()
        };
        // Nothing yet: the first read starts from today's journal.
        assert_eq!(poll().await, 0);

        // A waiter opens table 4 and adds a pizza (its code is a ware's) and a drink (not a production ware).
        server.open_order(DEPARTMENT, ORDER, 175, 4, "Анна");
        server.add_items(
            ORDER,
            &[
                Dish::new("p1", PIZZA, PIZZA_WARE, "Пицца 4 сыра", "2", "590"),
                Dish::new("p2", LEMONADE, "L-1", "Лимонад", "1", "150"),
            ],
        );
        assert_eq!(poll().await, 1);
        let orders = app.iiko_orders().await;
        assert_eq!(orders.len(), 1);
        assert_eq!(lines(&orders[0]), vec![(PIZZA_WARE.to_owned(), 2.0)]);
        assert_eq!(orders[0].external_number.as_deref(), Some("175"));
        assert!(
            app.sim.order_json(ORDER).is_none(),
            "iikoCloud never saw it"
        );

        // The pizza is taken off before it was printed, a salad added: one order, its lines follow.
        server.delete_new_items(ORDER, &["p1"]);
        server.add_items(
            ORDER,
            &[Dish::new("p3", SALAD, SALAD_WARE, "Оливье", "1", "280")],
        );
        assert_eq!(poll().await, 1);
        let orders = app.iiko_orders().await;
        assert_eq!(orders.len(), 1);
        assert_eq!(lines(&orders[0]), vec![(SALAD_WARE.to_owned(), 1.0)]);
        // Read again with nothing new: nothing changes.
        assert_eq!(poll().await, 0);

        server.delete_order(ORDER);
        assert_eq!(poll().await, 1);
        let order = &app.iiko_orders().await[0];
        let workflow = app.kitchen.workflow().await.unwrap();
        assert!(
            workflow
                .statuses
                .iter()
                .any(|s| s.id == order.status_id && s.cancels)
        );

        assert_eq!(server.slots_in_use(), 0, "every read logged out");
        assert_eq!(server.overlaps(), 0);
        assert_eq!(server.auth_count(), server.logout_count());
        let state = app.iiko.servers.list().await.unwrap().remove(0).state;
        assert!(state.revision.is_some() && state.last_error.is_none());
    }
);

tillwire_testkit::both_backends!(
    a_days_closed_sales_are_fetched_from_olap_and_kept,
    |db| async move {
        use tillwire_iiko::sim::server::SaleLine;
        let (server, server_url) = ServerSim::start("tillwire", "пароль").await;
        let app = App::start_with(&db, "Russian Standard Time", |settings| {
        settings.set(
            "iiko.server",
            json!([{"url": server_url, "login": "tillwire", "password": "пароль", "time_zone": "Europe/Moscow"}]),
        );
    })
    .await;
        let day: chrono::NaiveDate = "2024-05-01".parse().unwrap();
        let sale = |order: &str, dish: &str, amount: &str, sum: &str| SaleLine {
            open_date: day,
            department: "Кафе 1".into(),
            order_id: order.into(),
            order_num: 1,
            dish_id: format!("id-{dish}"),
            dish_code: dish.into(),
            dish_name: dish.into(),
            dish_category: "Пицца".into(),
            amount: amount.into(),
            sum: sum.into(),
            discount_sum: sum.into(),
            close_time: day.and_hms_opt(21, 0, 0).unwrap(),
            ..SaleLine::default()
        };
        server.add_sale(sale("o1", "Маргарита", "2", "1180.50"));
        server.add_sale(sale("o2", "Маргарита", "1", "590.25"));
        server.add_sale(sale("o2", "Морс", "3", "450"));
        let mut storned = sale("o3", "Пепперони", "5", "3000");
        storned.storned = true;
        server.add_sale(storned);

        let listed = app.iiko.servers.list().await.unwrap().remove(0);
        let client = app.iiko.server_client(&listed).unwrap();
        let unit = tillwire_units::Units(&app.platform.store)
            .default_unit()
            .await
            .unwrap()
            .unwrap()
            .unit_id();
        let sales = app
            .iiko
            .reports
            .fetch(&client, unit, day, true)
            .await
            .unwrap();
        assert_eq!(sales.revenue, "2220.75");
        assert_eq!(sales.orders, 2, "the storned order's line is not a sale");
        let dishes: Vec<(&str, &str, &str)> = sales
            .dishes
            .iter()
            .map(|d| (d.name.as_str(), d.amount.as_str(), d.revenue.as_str()))
            .collect();
        assert_eq!(
            dishes,
            vec![("Маргарита", "3", "1770.75"), ("Морс", "3", "450")]
        );
        assert_eq!(
            app.iiko.reports.day(unit, day).await.unwrap(),
            Some(sales.clone())
        );
        assert!(app.iiko.reports.is_complete(unit, day).await.unwrap());
        assert_eq!(server.slots_in_use(), 0);

        // The poll's own schedule: today's running figures once, not again within the quarter of an hour.
        let before = server.requests().len();
        tillwire_iiko::poll::fetch_sales(&app.iiko, &listed, &client)
            .await
            .unwrap();
        let today = chrono::Utc::now()
            .with_timezone(&chrono_tz::Europe::Moscow)
            .date_naive();
        let kept = app
            .iiko
            .reports
            .day(unit, today)
            .await
            .unwrap()
            .expect("today's figures");
        assert!(!kept.complete);
        let after = server.requests().len();
        assert!(after > before);
        tillwire_iiko::poll::fetch_sales(&app.iiko, &listed, &client)
            .await
            .unwrap();
        assert_eq!(server.requests().len(), after, "not fetched again so soon");
        assert_eq!(server.overlaps(), 0);
    }
);
