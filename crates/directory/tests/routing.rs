//! What delivery asks of the directory (`Routing`), on both backends: the chats routed for a unit and an active
//! report type (with forum topics), chats Telegram refused left out of every fan-out until resumed, a supergroup
//! migration keeping the routes (also onto a chat that exists already), labels in both languages, all audited.

mod common;

use axum::http::Method;
use common::Harness;
use tillwire_directory::routing::{Recipient, Routing};
use tillwire_platform::read;
use tillwire_platform::web::Lang;

/// Routes a chat (by Telegram id) to a unit for a report type (by name), with an optional topic.
async fn route(t: &Harness, chat_id: i64, unit: i64, report_type: &str, thread: Option<i64>) {
    tillwire_platform::write!(&t.platform.store, db => sqlx::query(
        "INSERT INTO directory_routes (report_type_id, unit_id, chat_id, thread_id)
         SELECT t.id, $2, c.id, $4 FROM directory_report_types t, directory_chats c
         WHERE t.name = $3 AND c.chat_id = $1",
    )
    .bind(chat_id)
    .bind(unit)
    .bind(report_type)
    .bind(thread)
    .execute(db)
    .await
    .map(|_| ()))
    .expect("route");
}

fn recipient(chat_id: i64, thread_id: Option<i64>) -> Recipient {
    Recipient { chat_id, thread_id }
}

async fn audit_actions(t: &Harness) -> Vec<String> {
    read!(&t.platform.store, db => sqlx::query_scalar(
        "SELECT action FROM directory_audit WHERE action LIKE 'chat.%' ORDER BY id",
    )
    .fetch_all(db)
    .await)
    .expect("audit")
}

tillwire_testkit::both_backends!(delivery_routes_refusals_and_migrations, |db| async move {
    let t = Harness::new(db).await;
    let routing = Routing(t.platform.store.clone());
    route(&t, 111, 1, "REGISTER_INCIDENTS", None).await;
    route(&t, -1001, 1, "REGISTER_INCIDENTS", Some(7)).await;
    route(&t, 222, 2, "REGISTER_INCIDENTS", None).await;
    // An inactive report type routes nowhere.
    route(&t, 111, 1, "STREET_STOP_SALES", None).await;
    assert_eq!(
        routing.recipients(1, "REGISTER_INCIDENTS").await.unwrap(),
        vec![recipient(-1001, Some(7)), recipient(111, None)]
    );
    assert!(
        routing
            .recipients(1, "STREET_STOP_SALES")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(recipient(-1001, None).is_group() && !recipient(111, None).is_group());

    // The user blocked the bot: out of this fan-out and the legacy one, until resumed.
    assert!(
        routing
            .deactivate(111, "Forbidden: bot was blocked by the user")
            .await
            .unwrap()
    );
    assert!(
        !routing.deactivate(111, "again").await.unwrap(),
        "marked once"
    );
    assert_eq!(
        routing.recipients(1, "REGISTER_INCIDENTS").await.unwrap(),
        vec![recipient(-1001, Some(7))]
    );
    let report_type: i64 = read!(&t.platform.store, db => sqlx::query_scalar(
        "SELECT id FROM directory_report_types WHERE name = 'REGISTER_INCIDENTS'",
    )
    .fetch_one(db)
    .await)
    .unwrap();
    let legacy = t
        .call(
            Method::GET,
            &format!("/report-routes/telegram-chats/?unit_id=1&report_type_id={report_type}"),
            None,
        )
        .await;
    assert_eq!(
        legacy.body["chat_ids"],
        serde_json::json!([-1001]),
        "{}",
        legacy.text
    );
    assert!(routing.reactivate(111, "admin").await.unwrap());
    assert_eq!(
        routing
            .recipients(1, "REGISTER_INCIDENTS")
            .await
            .unwrap()
            .len(),
        2
    );

    // The group became a supergroup: same routes, same topic, new id.
    routing.migrate(-1001, -100_555).await.unwrap();
    assert_eq!(
        routing.recipients(1, "REGISTER_INCIDENTS").await.unwrap(),
        vec![recipient(-100_555, Some(7)), recipient(111, None)]
    );
    // Onto a chat registered already: the routes join it and the old chat goes.
    tillwire_platform::write!(&t.platform.store, db => sqlx::query(
        "INSERT INTO directory_chats (chat_id, username, title, chat_type, created_ms)
         VALUES (-100777, NULL, 'Pizza team (new)', 'GROUP', 0)",
    )
    .execute(db)
    .await
    .map(|_| ()))
    .unwrap();
    route(&t, -100_777, 2, "REGISTER_INCIDENTS", None).await;
    routing.migrate(-100_555, -100_777).await.unwrap();
    assert_eq!(
        routing.recipients(1, "REGISTER_INCIDENTS").await.unwrap(),
        vec![recipient(-100_777, Some(7)), recipient(111, None)]
    );
    assert_eq!(
        routing.recipients(2, "REGISTER_INCIDENTS").await.unwrap(),
        vec![recipient(-100_777, None), recipient(222, None)]
    );
    let gone: Option<i64> = read!(&t.platform.store, db => sqlx::query_scalar(
        "SELECT id FROM directory_chats WHERE chat_id IN (-1001, -100555)",
    )
    .fetch_optional(db)
    .await)
    .unwrap();
    assert_eq!(gone, None);

    assert_eq!(
        routing.label("REGISTER_INCIDENTS", Lang::En).await.unwrap(),
        "Register incidents"
    );
    assert_eq!(
        routing.label("REGISTER_INCIDENTS", Lang::Ru).await.unwrap(),
        "Инциденты на кассах"
    );
    assert_eq!(
        audit_actions(&t).await,
        [
            "chat.deactivate",
            "chat.reactivate",
            "chat.migrate",
            "chat.migrate"
        ]
    );
});
