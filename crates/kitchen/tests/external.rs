//! Orders from a POS that keeps its own orders (iiko): one production order per POS order, numbered like a
//! receipt, its lines following the POS's items, cancelled when the POS cancels it, on both backends.

mod common;

use common::*;
use tillwire_kitchen::external::{ExternalOrder, ExternalRef, Synced};
use tillwire_kitchen::model::Quantity;

fn order(
    app_unit: tillwire_units::UnitId,
    day: chrono::NaiveDate,
    id: &str,
    lines: &[(&str, f64)],
) -> ExternalOrder {
    ExternalOrder {
        unit: app_unit,
        reference: ExternalRef::parse("iiko", id).unwrap(),
        number: Some("42".into()),
        business_day: day,
        lines: lines
            .iter()
            .map(|(code, amount)| ((*code).to_owned(), Quantity::parse(*amount).unwrap()))
            .collect(),
        cancelled: false,
        actor: "iiko",
    }
}

fn lines_of(view: &tillwire_kitchen::model::OrderView) -> Vec<(String, f64)> {
    let mut lines: Vec<(String, f64)> = view
        .lines
        .iter()
        .map(|l| (l.code.clone(), l.quantity))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

tillwire_testkit::both_backends!(
    a_pos_order_is_one_production_order_that_follows_it,
    |db| async move {
        let app = start(&db).await;
        let unit = app.unit().await;
        let day = app.kitchen.today();
        // Only production wares count: a drink that is not in the catalogue makes nothing.
        let nothing = app
            .kitchen
            .sync_external_order(&order(unit, day, "a", &[("LEMONADE", 1.0)]))
            .await
            .unwrap();
        assert_eq!(nothing, Synced::NothingToRegister);
        assert_eq!(
            app.count("orders").await,
            0,
            "no number is taken for nothing to make"
        );

        let first = app
            .kitchen
            .sync_external_order(&order(unit, day, "a", &[(PIZZA, 1.0), ("LEMONADE", 1.0)]))
            .await
            .unwrap();
        let Synced::Registered(registered) = first else {
            panic!("expected a new order, got {first:?}");
        };
        // The numbering is the receipts': a receipt now takes the next number.
        let receipt_number = app
            .import(&receipt(1, 1, &day.to_string(), &[(SALAD, 1.0)]))
            .await;
        assert_eq!(receipt_number, registered.number + 1);
        let view = app.kitchen.order_view(registered.order_id).await.unwrap();
        assert_eq!(view.external_number.as_deref(), Some("42"));
        assert_eq!(lines_of(&view), vec![(PIZZA.to_owned(), 1.0)]);

        // The same version again changes nothing.
        let again = app
            .kitchen
            .sync_external_order(&order(unit, day, "a", &[(PIZZA, 1.0), ("LEMONADE", 1.0)]))
            .await
            .unwrap();
        assert!(
            matches!(again, Synced::Unchanged { order_id, .. } if order_id == registered.order_id)
        );

        // Items added and one removed: the lines and stations follow, with no second order.
        let pizza_station = app.station_id("Пиццерия").await;
        let salad_station = app.station_id("Салаты").await;
        let wok_station = app.station_id("Вок").await;
        let changed = app
            .kitchen
            .sync_external_order(&order(
                unit,
                day,
                "a",
                &[(PIZZA, 2.0), (WOK_SAUCE, 1.0), (SALAD, 1.5)],
            ))
            .await
            .unwrap();
        assert!(
            matches!(changed, Synced::Updated { order_id, .. } if order_id == registered.order_id)
        );
        let view = app.kitchen.order_view(registered.order_id).await.unwrap();
        assert_eq!(
            lines_of(&view),
            vec![
                (SALAD.to_owned(), 1.5),
                (PIZZA.to_owned(), 2.0),
                (WOK_SAUCE.to_owned(), 1.0)
            ]
        );
        let mut stations: Vec<i64> = view.stations.iter().map(|s| s.station_id).collect();
        stations.sort_unstable();
        let mut expected = vec![pizza_station, salad_station, wok_station];
        expected.sort_unstable();
        assert_eq!(stations, expected);

        app.kitchen
            .sync_external_order(&order(unit, day, "a", &[(PIZZA, 2.0)]))
            .await
            .unwrap();
        let view = app.kitchen.order_view(registered.order_id).await.unwrap();
        assert_eq!(lines_of(&view), vec![(PIZZA.to_owned(), 2.0)]);
        assert_eq!(
            view.stations.len(),
            1,
            "stations with nothing left to make are dropped"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM orders WHERE external_ref IS NOT NULL")
                .await,
            1
        );

        // Cancelled in the POS: the order moves to the cancelling status, audited, once.
        let mut cancelled = order(unit, day, "a", &[(PIZZA, 2.0)]);
        cancelled.cancelled = true;
        let outcome = app.kitchen.sync_external_order(&cancelled).await.unwrap();
        assert!(matches!(outcome, Synced::Cancelled { .. }));
        let workflow = app.kitchen.workflow().await.unwrap();
        let view = app.kitchen.order_view(registered.order_id).await.unwrap();
        let status = workflow
            .statuses
            .iter()
            .find(|s| s.id == view.status_id)
            .unwrap();
        assert!(
            status.cancels,
            "in the cancelling status, not {:?}",
            status.name
        );
        let again = app.kitchen.sync_external_order(&cancelled).await.unwrap();
        assert!(matches!(again, Synced::Unchanged { .. }));
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM order_status_log WHERE order_id = {} AND actor = 'iiko'",
                registered.order_id
            ))
            .await,
            2,
            "registered and cancelled, each logged once"
        );
    }
);

tillwire_testkit::both_backends!(
    all_items_deleted_cancels_and_new_items_reopen_a_given_out_order,
    |db| async move {
        let app = start(&db).await;
        let unit = app.unit().await;
        let day = app.kitchen.today();
        let Synced::Registered(first) = app
            .kitchen
            .sync_external_order(&order(unit, day, "b", &[(SHAWARMA, 1.0)]))
            .await
            .unwrap()
        else {
            panic!("expected a new order");
        };
        // Given out: the last, finished status.
        let workflow = app.kitchen.workflow().await.unwrap();
        let finished = workflow
            .statuses
            .iter()
            .find(|s| s.finished && !s.cancels)
            .expect("a finished status");
        app.exec(&format!(
            "UPDATE orders SET status_id = {} WHERE id = {}",
            finished.id, first.order_id
        ))
        .await;
        // A dessert added afterwards: back in the queue, at the start.
        let outcome = app
            .kitchen
            .sync_external_order(&order(unit, day, "b", &[(SHAWARMA, 1.0), (SALAD, 1.0)]))
            .await
            .unwrap();
        assert!(matches!(outcome, Synced::Updated { .. }));
        let view = app.kitchen.order_view(first.order_id).await.unwrap();
        let status = workflow
            .statuses
            .iter()
            .find(|s| s.id == view.status_id)
            .unwrap();
        assert!(
            !status.finished && status.shown,
            "back in the queue, not {:?}",
            status.name
        );
        // Every item deleted: nothing left to make, so it is cancelled.
        let outcome = app
            .kitchen
            .sync_external_order(&order(unit, day, "b", &[]))
            .await
            .unwrap();
        assert!(matches!(outcome, Synced::Cancelled { .. }));
    }
);

tillwire_testkit::both_backends!(
    concurrent_syncs_of_one_new_order_make_one_order,
    |db| async move {
        let app = start(&db).await;
        let unit = app.unit().await;
        let day = app.kitchen.today();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let kitchen = app.kitchen.clone();
            let order = order(unit, day, "c", &[(PIZZA, 1.0)]);
            tasks.push(tokio::spawn(async move {
                kitchen.sync_external_order(&order).await
            }));
        }
        let mut registered = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Synced::Registered(_) => registered += 1,
                Synced::Unchanged { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(registered, 1);
        assert_eq!(app.count("orders").await, 1);
    }
);

#[test]
fn references_are_plain_and_bounded() {
    assert_eq!(
        ExternalRef::parse("iiko", "abc").unwrap().as_str(),
        "iiko:abc"
    );
    assert!(ExternalRef::parse("iiko", "").is_none());
    assert!(ExternalRef::parse("", "abc").is_none());
    assert!(ExternalRef::parse("iiko", "a\nb").is_none());
    assert!(ExternalRef::parse("iiko", &"x".repeat(200)).is_none());
}
