//! Delivery against the Bot API simulator over real HTTP, on SQLite and PostgreSQL: tillwire's events reach exactly
//! the chats the directory routes them to (with their forum topics, names escaped); a 429's `retry_after` is
//! honoured with nothing lost; 5xx are retried; a chat that blocked the bot leaves the fan-out; a group that
//! became a supergroup is followed; a long text arrives in parts within the limit, in order.

use std::time::Duration;

use serde_json::json;
use tillwire_directory::routing::{Recipient, Routing};
use tillwire_notify::sim::{Behaviour, Limits, TelegramSim};
use tillwire_platform::outbox::NewEvent;
use tillwire_platform::{Platform, Settings, Store, area, read};
use tillwire_testkit::{TestDatabase, eventually, http_client, serve_router};
use tillwire_units::{UnitName, Units};

const TOKEN: &str = "123456:TEST-TOKEN";
const PIZZERIA: i64 = 1;

struct Rig {
    /// Where the area's routes are served.
    base: String,
    platform: Platform,
    sim: TelegramSim,
    north: i64,
    stop: tokio::sync::watch::Sender<bool>,
    _db: TestDatabase,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.platform.begin_shutdown();
    }
}

/// Registers a chat and routes it to `unit` for `report_type` (with a topic).
async fn route(
    platform: &Platform,
    chat_id: i64,
    unit: i64,
    report_type: &str,
    thread: Option<i64>,
) {
    tillwire_platform::write!(&platform.store, db => sqlx::query(
        "INSERT INTO directory_chats (chat_id, username, title, chat_type, created_ms)
         SELECT $1, NULL, 'chat', CASE WHEN $1 < 0 THEN 'GROUP' ELSE 'PRIVATE' END, 0
         WHERE NOT EXISTS (SELECT 1 FROM directory_chats WHERE chat_id = $1)",
    )
    .bind(chat_id)
    .execute(db)
    .await
    .map(|_| ()))
    .expect("chat");
    tillwire_platform::write!(&platform.store, db => sqlx::query(
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

async fn rig(db: TestDatabase) -> Rig {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&[
            tillwire_platform::MIGRATIONS,
            tillwire_units::MIGRATIONS,
            tillwire_directory::MIGRATIONS,
            tillwire_kitchen::MIGRATIONS,
            tillwire_monitor::MIGRATIONS,
            tillwire_notify::MIGRATIONS,
            tillwire_iiko::MIGRATIONS,
        ])
        .await
        .expect("migrate");
    let sim = TelegramSim::new(TOKEN);
    let base = sim.serve_on_loopback().await.expect("simulator");
    let mut settings = Settings::for_database(db.url());
    settings.timezone = Some(chrono_tz::UTC);
    settings.set("telegram", json!({ "api_url": base, "bot_token": TOKEN }));
    settings.set("kitchen.day_rollover_hour", 0);
    let platform = Platform::new(store, settings);
    let units = Units(&platform.store);
    units.ensure_default("Пиццерия").await.expect("unit");
    let north = units
        .create(&UnitName::parse("Север").expect("name"))
        .await
        .expect("unit")
        .0;
    tillwire_directory::seed::init(&platform)
        .await
        .expect("report types");
    tillwire_kitchen::seed::init(&platform)
        .await
        .expect("statuses");
    tillwire_kitchen::seed::load_demo(&platform)
        .await
        .expect("demo wares");
    let app = area::assemble(&[&tillwire_notify::AREA], &platform).expect("assemble");
    let (base, _server) = serve_router(app.router).await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(platform.jobs.clone().run(app.jobs, 8, {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
        }
    }));
    for (_, task) in app.tasks {
        tokio::spawn(task(platform.stopping()));
    }
    // The consumer starts at the newest event: wait until it is there before recording any.
    eventually("the consumer started", || async {
        let started: Option<i64> = read!(&platform.store, db => sqlx::query_scalar(
            "SELECT last_id FROM event_cursors WHERE consumer = 'notify'",
        )
        .fetch_optional(db)
        .await)
        .expect("cursor");
        started.is_some()
    })
    .await;
    Rig {
        base,
        platform,
        sim,
        north,
        stop,
        _db: db,
    }
}

async fn incident(rig: &Rig, unit: i64, register: &str, kind: &str) {
    rig.platform
        .outbox
        .record(&NewEvent {
            kind: "monitor.incident_opened",
            unit_id: Some(unit),
            payload: json!({ "register_name": register, "kind": kind, "detail": "" }),
        })
        .await
        .expect("event");
}

async fn states(platform: &Platform) -> Vec<(i64, String)> {
    read!(&platform.store, db => sqlx::query_as(
        "SELECT chat_id, state FROM notify_messages ORDER BY id",
    )
    .fetch_all(db)
    .await)
    .expect("messages")
}

async fn each_event_reaches_exactly_its_routed_chats(db: TestDatabase) {
    let rig = rig(db).await;
    route(&rig.platform, 111, PIZZERIA, "REGISTER_INCIDENTS", None).await;
    route(
        &rig.platform,
        -1001,
        PIZZERIA,
        "REGISTER_INCIDENTS",
        Some(7),
    )
    .await;
    route(&rig.platform, 222, rig.north, "REGISTER_INCIDENTS", None).await;
    route(&rig.platform, 333, PIZZERIA, "PRINTER_ALERTS", None).await;
    incident(&rig, PIZZERIA, r#"Касса <1> & "2""#, "no_paper").await;
    rig.platform
        .outbox
        .record(&NewEvent {
            kind: "printing.printer_failing",
            unit_id: Some(PIZZERIA),
            payload: json!({ "printer": "Кухня", "error": "connection refused" }),
        })
        .await
        .expect("event");
    incident(&rig, rig.north, "Касса 9", "offline").await;
    route(&rig.platform, 777, PIZZERIA, "COLLECTOR_ALERTS", None).await;
    route(&rig.platform, 888, rig.north, "ERP_ALERTS", None).await;
    for (kind, unit, payload) in [
        (
            tillwire_collector::REGISTER_BEHIND,
            PIZZERIA,
            json!({"register": "10.0.0.5:5432/cash", "since_ms": 0, "error": "refused"}),
        ),
        // Nobody takes the north's collector alerts.
        (
            tillwire_collector::REGISTER_BEHIND,
            rig.north,
            json!({"register": "10.0.9.9:5432/cash", "since_ms": 0, "error": "refused"}),
        ),
        (
            tillwire_notify::render::ERP_LINE_FAILED,
            rig.north,
            json!({"workshop": "Север", "order": "A-17", "line": "Масло", "error": "login refused"}),
        ),
        (
            "monitor.incident_reminded",
            PIZZERIA,
            json!({"register_name": "Касса 3", "kind": "offline", "opened_ms": 0}),
        ),
    ] {
        rig.platform
            .outbox
            .record(&NewEvent {
                kind,
                unit_id: Some(unit),
                payload,
            })
            .await
            .expect("event");
    }
    eventually("every routed chat served", || async {
        [111, -1001, 333, 222, 777, 888]
            .iter()
            .all(|chat| !rig.sim.messages(*chat).is_empty())
    })
    .await;
    // Nothing more is on its way: every message row is sent.
    eventually("all sent", || async {
        states(&rig.platform).await.iter().all(|(_, s)| s == "sent")
    })
    .await;
    let private = rig.sim.messages(111);
    assert_eq!(private.len(), 2, "the incident and the reminder");
    assert!(
        private[1].visible_text.contains("Касса 3")
            && private[1].visible_text.contains("не исправлено"),
        "{:?}",
        private[1].visible_text
    );
    assert!(
        private[0].visible_text.contains(r#"Касса <1> & "2""#)
            && private[0].visible_text.contains("Нет бумаги"),
        "{:?}",
        private[0].visible_text
    );
    let group = rig.sim.messages(-1001);
    assert_eq!(
        (group.len(), group[0].message_thread_id),
        (2, Some(7)),
        "the route's topic"
    );
    let printer = rig.sim.messages(333);
    assert_eq!(printer.len(), 1);
    assert!(printer[0].visible_text.contains("Кухня"));
    let north = rig.sim.messages(222);
    assert_eq!(north.len(), 1);
    assert!(north[0].visible_text.contains("Касса 9") && north[0].visible_text.contains("Север"));
    let collector = rig.sim.messages(777);
    assert_eq!(collector.len(), 1);
    assert!(collector[0].visible_text.contains("10.0.0.5:5432/cash"));
    let erp = rig.sim.messages(888);
    assert_eq!(erp.len(), 1);
    assert!(
        erp[0].visible_text.contains("A-17"),
        "{:?}",
        erp[0].visible_text
    );
    assert_eq!(rig.sim.all_messages().len(), 8, "no chat got anything else");
}

tillwire_testkit::both_backends!(
    each_event_reaches_exactly_its_routed_chats,
    each_event_reaches_exactly_its_routed_chats
);

async fn limits_refusals_and_migrations(db: TestDatabase) {
    let rig = rig(db).await;
    // Telegram is stricter than tillwire's pacing for this chat: its 429s must be waited out, not fought.
    rig.sim.set_limits(Limits {
        per_chat_interval: Duration::from_millis(2_500),
        ..Limits::default()
    });
    route(&rig.platform, 111, PIZZERIA, "REGISTER_INCIDENTS", None).await;
    route(&rig.platform, 444, PIZZERIA, "PRINTER_ALERTS", None).await;
    route(&rig.platform, 555, rig.north, "REGISTER_INCIDENTS", None).await;
    route(&rig.platform, -1001, rig.north, "PRINTER_ALERTS", Some(3)).await;
    route(&rig.platform, 666, PIZZERIA, "PRINTER_ALERTS", None).await;
    rig.sim.set_chat(444, Behaviour::ServerError { count: 2 });
    // Delivered, but the answer never comes back: the retry is the one way a message can arrive twice.
    rig.sim.set_chat(666, Behaviour::LoseReply { count: 1 });
    rig.sim.set_chat(555, Behaviour::Blocked);
    rig.sim
        .set_chat(-1001, Behaviour::Migrated { to: -100_777 });
    for n in 0..4 {
        incident(&rig, PIZZERIA, &format!("Касса {n}"), "offline").await;
    }
    rig.platform
        .outbox
        .record(&NewEvent {
            kind: "printing.printer_recovered",
            unit_id: Some(PIZZERIA),
            payload: json!({ "printer": "Бар" }),
        })
        .await
        .expect("event");
    incident(&rig, rig.north, "Касса 5", "offline").await;
    rig.platform
        .outbox
        .record(&NewEvent {
            kind: "printing.printer_failing",
            unit_id: Some(rig.north),
            payload: json!({ "printer": "Касса-принтер", "error": "paper jam" }),
        })
        .await
        .expect("event");
    eventually(
        "the four incidents, the recovered printer and the migrated group",
        || async {
            rig.sim.messages(111).len() == 4
                && rig.sim.messages(444).len() == 1
                && rig.sim.messages(-100_777).len() == 1
                && rig.sim.messages(666).len() == 2
        },
    )
    .await;
    assert_eq!(rig.sim.lost_replies(), 1);
    // The four went in order, never closer than Telegram allowed, and never before a retry_after ran out.
    let private = rig.sim.messages(111);
    let names: Vec<bool> = (0..4)
        .map(|n| private[n].visible_text.contains(&format!("Касса {n}")))
        .collect();
    assert_eq!(names, vec![true; 4], "in order");
    assert!(
        rig.sim
            .shortest_gap(111)
            .is_some_and(|gap| gap >= Duration::from_millis(2_400))
    );
    assert!(
        rig.sim.rate_violations().is_empty(),
        "{:?}",
        rig.sim.rate_violations()
    );
    // The supergroup kept its topic and its route.
    assert_eq!(rig.sim.messages(-100_777)[0].message_thread_id, Some(3));
    let routing = Routing(rig.platform.store.clone());
    assert_eq!(
        routing
            .recipients(rig.north, "PRINTER_ALERTS")
            .await
            .unwrap(),
        vec![Recipient {
            chat_id: -100_777,
            thread_id: Some(3)
        }]
    );
    // The chat that blocked the bot is out of the fan-out, and its message failed with Telegram's words.
    eventually("the blocked chat marked", || async {
        routing
            .recipients(rig.north, "REGISTER_INCIDENTS")
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let failed: Vec<(i64, Option<String>)> = read!(&rig.platform.store, db => sqlx::query_as(
        "SELECT chat_id, last_error FROM notify_messages WHERE state = 'failed'",
    )
    .fetch_all(db)
    .await)
    .expect("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 555);
    assert!(
        failed[0]
            .1
            .as_deref()
            .unwrap_or_default()
            .contains("blocked")
    );
    assert!(rig.sim.messages(555).is_empty());
    println!(
        "replies lost: {}, so messages delivered twice: {}",
        rig.sim.lost_replies(),
        rig.sim.messages(666).len() - 1
    );
}

tillwire_testkit::both_backends!(
    limits_refusals_and_migrations,
    limits_refusals_and_migrations
);

tillwire_testkit::both_backends!(
    a_long_text_arrives_in_parts_within_the_limit_in_order,
    a_long_text_arrives_in_parts_within_the_limit_in_order
);

async fn a_long_text_arrives_in_parts_within_the_limit_in_order(db: TestDatabase) {
    let rig = rig(db).await;
    let lines: Vec<String> = (0..300)
        .map(|n| {
            format!("<b>Пиццерия {n}</b>: заказов 12, среднее 7 мин, p90 11 мин &amp; 2 инцидента")
        })
        .collect();
    let html = lines.join("\n");
    assert!(tillwire_notify::html::visible_len(&html) > 10_000);
    tillwire_notify::router::enqueue_text(&rig.platform, 111, 0, "DAILY_SUMMARY", &html)
        .await
        .expect("queued");
    let parts = tillwire_notify::html::split(&html, tillwire_notify::html::MESSAGE_LIMIT).len();
    eventually("every part", || async {
        rig.sim.messages(111).len() == parts
    })
    .await;
    let received = rig.sim.messages(111);
    let visible: Vec<String> = received.iter().map(|m| m.visible_text.clone()).collect();
    for part in &visible {
        assert!(part.encode_utf16().count() <= 4096);
    }
    let expected: Vec<String> = (0..300)
        .map(|n| format!("Пиццерия {n}: заказов 12, среднее 7 мин, p90 11 мин & 2 инцидента"))
        .collect();
    assert_eq!(
        visible.join("\n"),
        expected.join("\n"),
        "every line once, in order"
    );
}

/// Inserts an incident of `register` open from `opened_ms` to `closed_ms` (none: still open), as if it had been.
async fn past_incident(platform: &Platform, register: i64, opened_ms: i64, closed_ms: Option<i64>) {
    tillwire_platform::write!(&platform.store, db => sqlx::query(
        "INSERT INTO monitor_incidents (register_id, unit_id, kind, detail, opened_ms, closed_ms)
         VALUES ($1, $2, 'offline', '', $3, $4)",
    )
    .bind(register)
    .bind(PIZZERIA)
    .bind(opened_ms)
    .bind(closed_ms)
    .execute(db)
    .await
    .map(|_| ()))
    .expect("incident");
}

async fn the_daily_summary_goes_once_in_the_admins_words(db: TestDatabase) {
    use tillwire_kitchen::import::Receipt;
    use tillwire_kitchen::model::Quantity;
    use tillwire_kitchen::{Kitchen, ReceiptKey};
    use tillwire_monitor::model::{BaseUrl, RegisterName};
    use tillwire_monitor::storage::{NewRegister, Registers};
    use tillwire_notify::summary::Summaries;
    use tillwire_notify::templates::{self, DAILY};
    use tillwire_platform::web::Lang;
    use tillwire_units::UnitId;

    let rig = rig(db).await;
    route(&rig.platform, 999, PIZZERIA, "DAILY_SUMMARY", None).await;
    let kitchen = Kitchen::new(rig.platform.clone()).expect("kitchen");
    let now = chrono::Utc::now();
    let yesterday = kitchen.business_day(now) - chrono::TimeDelta::days(1);
    // The unit existed before the kitchen's seed, which therefore gave it no register: one, as an admin would add.
    tillwire_platform::write!(&rig.platform.store, db => sqlx::query(
        "INSERT INTO cash_registers (unit_id, number, name, created_ms) VALUES ($1, 1, 'Касса №1', 0)",
    )
    .bind(PIZZERIA)
    .execute(db)
    .await
    .map(|_| ()))
    .expect("cash register");
    for check_id in 1..=3 {
        let key = ReceiptKey {
            unit: UnitId(PIZZERIA),
            cash_number: 1,
            shift_id: 1,
            check_date: yesterday,
            check_id,
        };
        let context = kitchen
            .receipt_context(UnitId(PIZZERIA), 1, Some(&key))
            .await
            .expect("context")
            .expect("register 1");
        let receipt = Receipt {
            key,
            business_day: yesterday,
            lines: vec![("48566".into(), Quantity::parse(1.0).expect("one"))],
        };
        kitchen
            .import_receipt(&receipt, &context)
            .await
            .expect("import");
    }
    let (from, to) = kitchen.business_day_bounds(yesterday);
    assert_eq!(to - from, 24 * 3_600_000, "a UTC day");
    let register = Registers(rig.platform.store.clone())
        .create(&NewRegister {
            unit_id: PIZZERIA,
            name: RegisterName::parse("Касса 1").expect("name"),
            url: BaseUrl::parse("http://127.0.0.1:9/").expect("url"),
            zone: None,
            region: String::new(),
            enabled: true,
            overrides: Default::default(),
        })
        .await
        .expect("register");
    // Half an hour at ten, and one open since the night before: its 20 minutes after the day began count.
    past_incident(
        &rig.platform,
        register.0,
        from + 10 * 3_600_000,
        Some(from + 10 * 3_600_000 + 1_800_000),
    )
    .await;
    past_incident(
        &rig.platform,
        register.0,
        from - 600_000,
        Some(from + 1_200_000),
    )
    .await;
    // Today's incident is not yesterday's.
    past_incident(&rig.platform, register.0, to + 60_000, None).await;
    tillwire_platform::write!(&rig.platform.store, db => sqlx::query(
        "INSERT INTO domain_events (unit_id, kind, payload, created_ms) VALUES ($1, 'printing.printer_failing', '{}', $2),
         ($1, 'collector.register_behind', '{}', $2), ($1, 'printing.printer_failing', '{}', $3)",
    )
    .bind(PIZZERIA)
    .bind(from + 3_600_000)
    .bind(to + 1)
    .execute(db)
    .await
    .map(|_| ()))
    .expect("events");

    // The admin's own Russian words; a template Telegram would refuse is not kept.
    let refused =
        templates::save(&rig.platform.store, &DAILY, Lang::Ru, "<b>{unit}", "admin").await;
    assert!(refused.is_err(), "an unclosed tag is refused");
    templates::save(
        &rig.platform.store,
        &DAILY,
        Lang::Ru,
        "Итоги «{unit}» за {date}: заказов {orders}, инцидентов {incidents} ({incident_time}), принтеры {printer_trouble}, сбор {collector_trouble}",
        "admin",
    )
    .await
    .expect("a good template is kept");

    let summaries = Summaries {
        kitchen: kitchen.clone(),
        hour: 0,
        lang: Lang::Ru,
    };
    assert_eq!(summaries.due_day(now), Some(yesterday));
    // Two instances at once: one summary.
    let (first, second) = tokio::join!(summaries.write_due(now), summaries.write_due(now));
    assert_eq!(first.expect("summary") + second.expect("summary"), 1);
    assert_eq!(
        summaries.write_due(now).await.expect("again"),
        0,
        "once a day"
    );
    eventually("the summary delivered", || async {
        !rig.sim.messages(999).is_empty()
    })
    .await;
    let sent = rig.sim.messages(999);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].visible_text,
        format!(
            "Итоги «Пиццерия» за {}: заказов 3, инцидентов 2 (50 мин), принтеры 1, сбор 1",
            yesterday.format("%d.%m.%Y")
        )
    );
    assert!(rig.sim.messages(111).is_empty(), "only the routed chat");

    // Not due before the hour: with summaries at 23:59 nothing is due at midnight.
    let late = Summaries {
        hour: 23,
        ..summaries
    };
    let midnight = kitchen.business_day_bounds(kitchen.business_day(now)).0;
    let just_after = chrono::DateTime::from_timestamp_millis(midnight + 60_000).expect("instant");
    assert_eq!(late.due_day(just_after), None);
}

tillwire_testkit::both_backends!(
    the_daily_summary_goes_once_in_the_admins_words,
    the_daily_summary_goes_once_in_the_admins_words
);

async fn the_daily_summary_tells_iikos_figures_for_a_unit_with_them(db: TestDatabase) {
    use tillwire_kitchen::Kitchen;
    use tillwire_notify::summary::Summaries;
    use tillwire_notify::templates::{DAILY, Templates};
    use tillwire_platform::web::Lang;
    use tillwire_units::Units;

    let rig = rig(db).await;
    let kitchen = Kitchen::new(rig.platform.clone()).expect("kitchen");
    let day = kitchen.business_day(chrono::Utc::now()) - chrono::TimeDelta::days(1);
    // What the iiko area keeps from iikoServer's OLAP for the pizzeria.
    tillwire_platform::write!(&rig.platform.store, db => sqlx::query(
        "INSERT INTO iiko_daily_sales (unit_id, day, revenue, orders, dishes, final, fetched_ms) VALUES ($1, $2, '48250.5', 131, $3, TRUE, 0)",
    )
    .bind(PIZZERIA)
    .bind(day.to_string())
    .bind(r#"[{"name":"Маргарита","amount":"42","revenue":"24780"},{"name":"Цезарь","amount":"17","revenue":"8000"},{"name":"Морс","amount":"30","revenue":"4500"},{"name":"Хлеб","amount":"9","revenue":"90"}]"#)
    .execute(db)
    .await
    .map(|_| ()))
    .expect("iiko's figures");
    let summaries = Summaries {
        kitchen,
        hour: 0,
        lang: Lang::Ru,
    };
    let templates = Templates::load(&rig.platform.store)
        .await
        .expect("templates");
    let units = Units(&rig.platform.store).list().await.expect("units");
    let text = |unit_id: i64| {
        let unit = units
            .iter()
            .find(|u| u.id == unit_id)
            .expect("unit")
            .clone();
        let summaries = &summaries;
        let templates = &templates;
        async move {
            let values = summaries.values(&unit, day).await.expect("values");
            templates.render(&DAILY, Lang::Ru, &values)
        }
    };
    let pizzeria = text(PIZZERIA).await;
    assert!(
        pizzeria.contains("iiko: выручка 48\u{a0}250,50, заказов 131; чаще всего — Маргарита ×42, Цезарь ×17, Морс ×30"),
        "{pizzeria}"
    );
    let north = units
        .iter()
        .find(|u| u.id != PIZZERIA)
        .expect("another unit")
        .id;
    let without = text(north).await;
    assert!(
        !without.contains("iiko"),
        "a unit without iiko has no iiko line: {without}"
    );
}

tillwire_testkit::both_backends!(
    the_daily_summary_tells_iikos_figures_for_a_unit_with_them,
    the_daily_summary_tells_iikos_figures_for_a_unit_with_them
);

async fn the_outbox_api_answers_notify_tokens_only(db: TestDatabase) {
    use tillwire_platform::tokens::{Scope, TokenName, Tokens};
    let rig = rig(db).await;
    let token = |name: &'static str, scope: Scope| {
        let store = rig.platform.store.clone();
        async move {
            Tokens(&store)
                .issue(&TokenName::parse(name).expect("name"), &scope, None, "test")
                .await
                .expect("token")
                .plain
        }
    };
    let notify = token("alerts", Scope::area("notify")).await;
    let other = token("noc", Scope::area("monitor")).await;
    let client = http_client();
    let call = |method: &'static str,
                path: String,
                token: Option<String>,
                body: Option<serde_json::Value>| {
        let client = client.clone();
        let url = format!("{}{path}", rig.base);
        async move {
            let mut request = client.request(method.parse().expect("method"), url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body)
        }
    };
    let messages = "/api/v1/notify/messages".to_owned();
    assert_eq!(call("GET", messages.clone(), None, None).await.0, 401);
    let (status, refused) = call("GET", messages.clone(), Some(other), None).await;
    assert_eq!(status, 403, "{refused}");

    rig.sim.set_chat(222, Behaviour::Blocked);
    let (status, queued) = call(
        "POST",
        messages.clone(),
        Some(notify.clone()),
        Some(json!({"chat_id": 111, "text": "API <check> & co"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let first = queued["ids"][0].as_i64().expect("an id");
    let (status, _) = call(
        "POST",
        messages.clone(),
        Some(notify.clone()),
        Some(json!({"chat_id": 222})),
    )
    .await;
    assert_eq!(status, 202);
    let (status, bad) = call(
        "POST",
        messages.clone(),
        Some(notify.clone()),
        Some(json!({"chat_id": "one"})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    eventually("both settled", || async {
        let states = states(&rig.platform).await;
        states.len() == 2
            && states
                .iter()
                .all(|(_, state)| state == "sent" || state == "failed")
    })
    .await;
    let (status, one) = call(
        "GET",
        format!("{messages}/{first}"),
        Some(notify.clone()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["state"], "sent");
    assert_eq!(one["text"], "🔔 API <check> & co");
    assert_eq!(one["html"], "🔔 API &lt;check&gt; &amp; co");
    let (_, failed) = call(
        "GET",
        format!("{messages}?state=failed"),
        Some(notify.clone()),
        None,
    )
    .await;
    let failed = failed.as_array().expect("a list").clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["chat_id"], 222);
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("blocked")
    );
    let id = failed[0]["id"].as_i64().expect("id");
    // A sent message cannot be sent again or discarded; a failed one can; an unknown one is 404.
    assert_eq!(
        call(
            "POST",
            format!("{messages}/{first}/retry"),
            Some(notify.clone()),
            None
        )
        .await
        .0,
        409
    );
    assert_eq!(
        call(
            "POST",
            format!("{messages}/{first}/discard"),
            Some(notify.clone()),
            None
        )
        .await
        .0,
        409
    );
    assert_eq!(
        call(
            "POST",
            format!("{messages}/999999/retry"),
            Some(notify.clone()),
            None
        )
        .await
        .0,
        404
    );
    let (status, discarded) = call(
        "POST",
        format!("{messages}/{id}/discard"),
        Some(notify.clone()),
        None,
    )
    .await;
    assert_eq!(
        (status, discarded["state"].as_str()),
        (200, Some("discarded"))
    );
    let (status, again) = call(
        "POST",
        format!("{messages}/{id}/retry"),
        Some(notify.clone()),
        None,
    )
    .await;
    assert_eq!((status, again["state"].as_str()), (200, Some("pending")));
    let (_, counts) = call("GET", "/api/v1/notify/counts".into(), Some(notify), None).await;
    assert_eq!(counts["sent"], 1, "{counts}");
    assert_eq!(
        counts["pending"].as_i64().unwrap_or_default()
            + counts["failed"].as_i64().unwrap_or_default(),
        1
    );
}

tillwire_testkit::both_backends!(
    the_outbox_api_answers_notify_tokens_only,
    the_outbox_api_answers_notify_tokens_only
);
