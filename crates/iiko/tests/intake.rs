//! iiko orders into the production queue, against the iikoCloud simulator, on both backends: webhooks twice and
//! out of order, items added and deleted, cancellation, webhooks lost and caught up by the poll, the webhook's
//! token, and terminal-local times across a DST change.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tillwire_iiko::cloud::CloudClient;
use tillwire_iiko::sim::cloud::WebhookBehaviour;

const ORDER: &str = "497f6eca-6276-4993-bfeb-53cbbbba6f08";
const DELIVERY: &str = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

tillwire_testkit::both_backends!(
    a_webhook_twice_and_out_of_order_makes_one_order_with_the_latest_content,
    |db| async move {
        let app = App::start(&db).await;
        app.sim.set_webhooks(WebhookBehaviour {
            auto: false,
            duplicate: true,
            reorder: true,
            batch: 20,
            ..WebhookBehaviour::default()
        });
        app.sim.open_table_order(ORG, TERMINAL, TABLE, ORDER, 42);
        app.sim.add_item(ORDER, "p1", PIZZA, "1");
        app.sim.add_item(ORDER, "p2", SALAD, "2");
        app.sim.add_item(ORDER, "p3", LEMONADE, "1");
        app.sim.flush_webhooks().await;
        app.settled().await;

        let orders = app.iiko_orders().await;
        assert_eq!(orders.len(), 1, "one production order for one iiko order");
        assert_eq!(
            lines(&orders[0]),
            vec![(SALAD_WARE.to_owned(), 2.0), (PIZZA_WARE.to_owned(), 1.0)],
            "the newest version's items, the drink left out"
        );
        assert_eq!(orders[0].external_number.as_deref(), Some("42"));
        // The newest version arrived first (reordered), so every other copy was old news.
        let states = app.inbox_states().await;
        assert_eq!(states.len(), 8, "four versions, each twice: {states:?}");
        assert_eq!(
            states.iter().filter(|(s, _)| s == "processed").count(),
            1,
            "{states:?}"
        );
        assert_eq!(
            states.iter().filter(|(s, _)| s == "skipped").count(),
            7,
            "{states:?}"
        );
    }
);

tillwire_testkit::both_backends!(
    items_added_and_deleted_and_the_order_cancelled_follow_iiko,
    |db| async move {
        let app = App::start(&db).await;
        app.sim.open_table_order(ORG, TERMINAL, TABLE, ORDER, 7);
        app.sim.add_item(ORDER, "p1", PIZZA, "1");
        eventually("the order with its pizza", || async {
            app.iiko_orders()
                .await
                .first()
                .is_some_and(|o| lines(o) == vec![(PIZZA_WARE.to_owned(), 1.0)])
        })
        .await;
        let number = app.iiko_orders().await[0].number;

        app.sim.add_item(ORDER, "p2", SALAD, "1.5");
        eventually("the salad added", || async {
            app.iiko_orders()
                .await
                .first()
                .is_some_and(|o| o.lines.len() == 2)
        })
        .await;
        app.sim.delete_item(ORDER, "p1");
        eventually("the pizza deleted", || async {
            app.iiko_orders()
                .await
                .first()
                .is_some_and(|o| lines(o) == vec![(SALAD_WARE.to_owned(), 1.5)])
        })
        .await;
        let order = &app.iiko_orders().await[0];
        assert_eq!(order.number, number, "still the same queue number");

        app.sim.set_table_order_status(ORDER, "Deleted");
        eventually("the order cancelled", || async {
            let order = &app.iiko_orders().await[0];
            let workflow = app.kitchen.workflow().await.unwrap();
            workflow
                .statuses
                .iter()
                .any(|s| s.id == order.status_id && s.cancels)
        })
        .await;
        app.settled().await;
        assert_eq!(app.iiko_orders().await.len(), 1);
        assert!(
            app.inbox_states()
                .await
                .iter()
                .all(|(state, _)| state != "failed")
        );
    }
);

tillwire_testkit::both_backends!(
    webhooks_lost_for_an_hour_are_caught_up_by_the_poll,
    |db| async move {
        let app = App::start(&db).await;
        app.sim.set_webhooks(WebhookBehaviour {
            enabled: false,
            ..WebhookBehaviour::default()
        });
        app.sim.open_table_order(ORG, TERMINAL, TABLE, ORDER, 11);
        app.sim.add_item(ORDER, "p1", PIZZA, "2");
        app.sim.create_delivery(ORG, TERMINAL, DELIVERY, 1234);
        app.sim.add_item(DELIVERY, "d1", SALAD, "1");
        app.sim.set_delivery_status(DELIVERY, "CookingStarted");
        app.sim.advance(Duration::from_secs(3600));

        let connection = app.iiko.connections.list().await.unwrap().remove(0);
        let client = CloudClient::new(&app.sim_url, connection.credentials.auth());
        let polled = tillwire_iiko::poll::poll(&app.iiko, &connection, &client)
            .await
            .unwrap();
        assert_eq!((polled.seen, polled.queued), (2, 2));
        app.settled().await;
        let orders = app.iiko_orders().await;
        assert_eq!(orders.len(), 2);
        let numbers: Vec<Option<&str>> = orders
            .iter()
            .map(|o| o.external_number.as_deref())
            .collect();
        assert!(
            numbers.contains(&Some("11")) && numbers.contains(&Some("1234")),
            "{numbers:?}"
        );

        // Nothing new: the next poll queues nothing, and continues from the deliveries' revision.
        let by_revision = app.sim.requests("/api/1/deliveries/by_revision");
        let polled = tillwire_iiko::poll::poll(&app.iiko, &connection, &client)
            .await
            .unwrap();
        assert_eq!(polled.queued, 0);
        assert_eq!(
            app.sim.requests("/api/1/deliveries/by_revision"),
            by_revision + 1
        );
        let state = app.iiko.connections.state(connection.id).await.unwrap();
        assert!(
            state.delivery_revision.is_some()
                && state.last_poll_ms.is_some()
                && state.last_error.is_none()
        );

        // A change to the delivery is found by revision.
        app.sim.add_item(DELIVERY, "d2", PIZZA, "1");
        let polled = tillwire_iiko::poll::poll(&app.iiko, &connection, &client)
            .await
            .unwrap();
        assert_eq!(polled.queued, 1);
        app.settled().await;
        let delivery = app
            .iiko_orders()
            .await
            .into_iter()
            .find(|o| o.external_number.as_deref() == Some("1234"))
            .unwrap();
        assert_eq!(
            lines(&delivery),
            vec![(SALAD_WARE.to_owned(), 1.0), (PIZZA_WARE.to_owned(), 1.0)]
        );
    }
);

tillwire_testkit::both_backends!(
    the_webhook_takes_only_its_token_and_arrays_of_events,
    |db| async move {
        let app = App::start(&db).await;
        let event = json!([{"eventType": "PersonalShift", "eventTime": "2024-05-01 09:00:01.234", "organizationId": ORG,
                        "correlationId": "c", "eventInfo": {"id": "e", "opened": true}}]);
        let post = |token: Option<&str>, url: String, body: String| {
            let mut request = app
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            request.send()
        };
        let status = |token, url, body: &serde_json::Value| {
            let body = body.to_string();
            async move { post(token, url, body).await.unwrap().status().as_u16() }
        };
        assert_eq!(status(None, app.webhook_url(), &event).await, 401);
        assert_eq!(status(Some("wrong"), app.webhook_url(), &event).await, 401);
        assert_eq!(
            status(Some("webhook-secret-012345678"), app.webhook_url(), &event).await,
            401
        );
        let unknown = format!(
            "{}/iiko/webhook/00000000-0000-0000-0000-000000000000",
            app.base_url
        );
        assert_eq!(status(Some(WEBHOOK_TOKEN), unknown, &event).await, 404);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM iiko_inbox").await,
            0,
            "nothing written for a refusal"
        );
        assert_eq!(
            status(Some(WEBHOOK_TOKEN), app.webhook_url(), &json!("text")).await,
            400
        );
        // Bare, as iiko sends it, or as a bearer token; an unknown event type is kept and skipped.
        assert_eq!(
            status(Some(WEBHOOK_TOKEN), app.webhook_url(), &event).await,
            200
        );
        assert_eq!(
            status(
                Some(&format!("Bearer {WEBHOOK_TOKEN}")),
                app.webhook_url(),
                &event
            )
            .await,
            200
        );
        let states = app.inbox_states().await;
        assert_eq!(states.len(), 2);
        assert!(states.iter().all(|(state, _)| state == "skipped"));
        let connection = app.iiko.connections.list().await.unwrap().remove(0);
        assert!(
            app.iiko
                .connections
                .state(connection.id)
                .await
                .unwrap()
                .last_webhook_ms
                .is_some()
        );
    }
);

tillwire_testkit::both_backends!(
    terminal_local_times_become_business_days_across_a_dst_change,
    |db| async move {
        let app = App::start_with(&db, "W. Europe Standard Time", |settings| {
            settings.timezone = Some(chrono_tz::Europe::Berlin);
        })
        .await;
        let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        // 01:30 UTC on 31 March 2024 is 03:30 in Berlin, just after the clocks went forward: before the 04:00
        // rollover, so the 30th's business day. An hour later it is the 31st's.
        app.sim.set_now(at("2024-03-31T01:30:00Z"));
        app.sim.open_table_order(ORG, TERMINAL, TABLE, ORDER, 1);
        app.sim.add_item(ORDER, "p1", PIZZA, "1");
        app.sim.set_now(at("2024-03-31T02:30:00Z"));
        app.sim.open_table_order(ORG, TERMINAL, TABLE, DELIVERY, 2);
        app.sim.add_item(DELIVERY, "p1", PIZZA, "1");
        eventually("both orders", || async {
            app.iiko_orders().await.len() == 2
        })
        .await;
        let days: Vec<(Option<String>, String)> = app
            .iiko_orders()
            .await
            .into_iter()
            .map(|o| (o.external_number, o.business_day))
            .collect();
        assert!(
            days.contains(&(Some("1".into()), "2024-03-30".into())),
            "{days:?}"
        );
        assert!(
            days.contains(&(Some("2".into()), "2024-03-31".into())),
            "{days:?}"
        );
    }
);

tillwire_testkit::both_backends!(
    a_product_whose_menu_code_is_a_ware_is_made_without_a_mapping,
    |db| async move {
        let app = App::start(&db).await;
        // The menu's code of this soup is the salads' ware code; nothing maps it.
        const SOUP: &str = "44444444-4444-4444-8444-444444444444";
        app.sim
            .add_product(ORG, SOUP, SALAD_WARE, "Суп дня", "199.90");
        let connection = app.iiko.connections.list().await.unwrap().remove(0);
        let client = CloudClient::new(&app.sim_url, connection.credentials.auth());
        let read = tillwire_iiko::poll::refresh_menu(&app.iiko, &connection, &client)
            .await
            .unwrap();
        assert_eq!(read, 4, "the menu's four products");
        app.sim.open_table_order(ORG, TERMINAL, TABLE, ORDER, 5);
        app.sim.add_item(ORDER, "p1", SOUP, "2");
        eventually("the soup made as the salads' ware", || async {
            app.iiko_orders()
                .await
                .first()
                .is_some_and(|o| lines(o) == vec![(SALAD_WARE.to_owned(), 2.0)])
        })
        .await;
        // Its count and name are kept beside the code.
        let (name, seen): (String, i64) = tillwire_platform::read!(&app.platform.store, db => sqlx::query_as(
        "SELECT name, seen FROM iiko_products WHERE product_id = '44444444-4444-4444-8444-444444444444'"
    ).fetch_one(db).await).unwrap();
        assert_eq!(name, "Суп дня");
        assert!(seen >= 1);
    }
);
