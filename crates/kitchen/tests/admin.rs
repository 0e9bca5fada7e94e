//! The admin pages end to end, on SQLite and PostgreSQL: forms posted like a browser posts them, CSV export and
//! import, refusals with their status codes, and who may see what.

mod common;
mod common_admin;

use common::{PIZZA, SALAD};
use common_admin::{ADMIN, API_KEY, AdminApp};
use tillwire_platform::Role;
use tillwire_platform::jobs::{JobFailure, NewJob};
use tillwire_testkit::both_backends;
use tillwire_testkit::reqwest::StatusCode;

const CSV_HEADER: &str = "code,full_name,short_name,station,catch_quantity";

both_backends!(creating_and_editing_a_ware, |db| async move {
    let app = AdminApp::start(&db).await;
    let pizzeria = app.station("Пиццерия").await.expect("seeded station");
    let wok = app.station("Вок").await.expect("seeded station");
    let created = app
        .post(
            &format!("/admin/wares/?unit={}", app.unit),
            &[
                ("code", "777"),
                ("full_name", "Пицца Маргарита большая"),
                ("short_name", "Маргарита"),
                ("station", &pizzeria.to_string()),
                ("catch_quantity", "0,5"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{created:?}");
    assert_eq!(created.location, format!("/admin/wares/?unit={}", app.unit));
    let (id, full_name, _, station, catch) = app.ware("777").await.expect("the ware is stored");
    assert_eq!(
        (full_name.as_str(), station, catch),
        ("Пицца Маргарита большая", pizzeria, 0.5)
    );

    // The search folds Cyrillic case on both engines.
    let found = app
        .get(&format!("/admin/wares/?unit={}&q=маргарита", app.unit))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.body.contains("Пицца Маргарита большая"),
        "{}",
        found.body
    );
    assert!(!found.body.contains("Шаурма св"), "the search must filter");

    let form = app.get(&format!("/admin/wares/{id}")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"0.5\""), "{}", form.body);
    let edited = app
        .post(
            &format!("/admin/wares/{id}"),
            &[
                ("code", "778"),
                ("full_name", "Пицца Маргарита"),
                ("short_name", "Марг."),
                ("station", &wok.to_string()),
                ("catch_quantity", "2"),
            ],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{edited:?}");
    assert!(app.ware("777").await.is_none());
    let (same_id, full_name, short_name, station, catch) =
        app.ware("778").await.expect("renamed code");
    assert_eq!(same_id, id);
    assert_eq!(
        (full_name.as_str(), short_name.as_str(), station, catch),
        ("Пицца Маргарита", "Марг.", wok, 2.0)
    );

    // Refusals: a taken code is a conflict, bad fields are unprocessable; neither writes anything.
    let wares_before = app.count("SELECT COUNT(*) FROM wares").await;
    let taken = app
        .post(
            &format!("/admin/wares/?unit={}", app.unit),
            &[
                ("code", "48566"),
                ("full_name", "Дубль"),
                ("short_name", "Дубль"),
                ("station", &wok.to_string()),
                ("catch_quantity", "1"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{taken:?}");
    assert!(
        taken.content_type.starts_with("text/html"),
        "refusals are pages: {taken:?}"
    );
    let invalid = app
        .post(
            &format!("/admin/wares/{id}"),
            &[
                ("code", "778"),
                ("full_name", "Пицца"),
                ("short_name", &"Ы".repeat(81)),
                ("station", &wok.to_string()),
                ("catch_quantity", "-1"),
            ],
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{invalid:?}"
    );
    // The Russian UI names both bad fields in Russian, and nothing in English.
    assert!(
        invalid
            .body
            .contains("краткое название: от 1 до 80 печатных символов")
            && invalid.body.contains("количество в заказе: число больше 0"),
        "{}",
        invalid.body
    );
    assert!(!invalid.body.contains("short name"), "{}", invalid.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM wares").await, wares_before);
    assert_eq!(app.ware("778").await.expect("unchanged").2, "Марг.");

    let deleted = app.post(&format!("/admin/wares/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{deleted:?}");
    assert!(app.ware("778").await.is_none());
});

both_backends!(csv_export_and_import_round_trip, |db| async move {
    let app = AdminApp::start(&db).await;
    let salads = app.station("Салаты").await.expect("seeded station");
    app.post(
        &format!("/admin/wares/?unit={}", app.unit),
        &[
            ("code", "900"),
            ("full_name", "Салат \"Цезарь\", с курицей"),
            ("short_name", "Цезарь"),
            ("station", &salads.to_string()),
            ("catch_quantity", "0.333"),
        ],
    )
    .await;
    let exported = app.export_csv().await;
    assert_eq!(exported.lines().next(), Some(CSV_HEADER));
    assert!(
        exported.contains("900,\"Салат \"\"Цезарь\"\", с курицей\",Цезарь,Салаты,0.333"),
        "{exported}"
    );
    assert_eq!(exported.lines().count(), 1 + 6);

    // Change one ware and delete another, then import the export: everything is back as it was.
    let (pizza, ..) = app.ware("48566").await.expect("demo ware");
    let shawarma_station = app.station("Шаурма").await.expect("seeded station");
    app.post(
        &format!("/admin/wares/{pizza}"),
        &[
            ("code", "48566"),
            ("full_name", "Другое"),
            ("short_name", "Другое"),
            ("station", &shawarma_station.to_string()),
            ("catch_quantity", "3"),
        ],
    )
    .await;
    let (salad, ..) = app.ware("12356").await.expect("demo ware");
    app.post(&format!("/admin/wares/{salad}/delete"), &[]).await;

    // The CSRF token travels in the body: one in the query string (kept by logs and Referers) is refused.
    let in_query = app
        .upload_csv_with(
            &format!("/admin/wares/import?unit={}&csrf={}", app.unit, app.csrf),
            &exported,
            "",
        )
        .await;
    assert_eq!(in_query.status, StatusCode::FORBIDDEN, "{in_query:?}");
    let imported = app
        .upload_csv(&format!("/admin/wares/import?unit={}", app.unit), &exported)
        .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{imported:?}");
    assert_eq!(
        imported.location,
        format!("/admin/wares/?unit={}&added=1&updated=5", app.unit)
    );
    let notice = app.get(&imported.location).await;
    assert!(
        notice.body.contains("добавлено 1, обновлено 5"),
        "{}",
        notice.body
    );
    assert_eq!(app.export_csv().await, exported);

    // Pasted text (urlencoded, as a script would post it) with a station that does not exist yet.
    let pasted = format!("{CSV_HEADER}\n901,Гриль-курица,Курица,Гриль,1\n");
    let imported = app
        .post(
            &format!("/admin/wares/import?unit={}", app.unit),
            &[("text", &pasted)],
        )
        .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{imported:?}");
    let grill = app
        .station("Гриль")
        .await
        .expect("the import creates missing stations");
    assert_eq!(app.ware("901").await.expect("imported").3, grill);
});

both_backends!(csv_import_with_a_bad_row_writes_nothing, |db| async move {
    let app = AdminApp::start(&db).await;
    let before = app.export_csv().await;
    let stations_before = app.count("SELECT COUNT(*) FROM stations").await;
    let csv = format!(
        "{CSV_HEADER}\n\
         902,Новая пицца,Новая,Новая станция,1\n\
         903,Плохое количество,Плохое,Вок,много\n\
         48566,Пицца 4 сыра (новая),Пицца 4 сыра,Пиццерия,1\n\
         ,Без кода,Без кода,Вок,1\n"
    );
    let path = format!("/admin/wares/import?unit={}", app.unit);

    let refused = app.upload_csv(&path, &csv).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    assert!(
        refused.body.contains("строка 3, поле catch_quantity"),
        "{}",
        refused.body
    );

    app.use_english().await;
    let refused = app.upload_csv(&path, &csv).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    assert!(
        refused.body.contains("line 3, field catch_quantity:"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("line 5, field code:"),
        "{}",
        refused.body
    );
    assert!(
        !refused.body.contains("line 2,") && !refused.body.contains("line 4,"),
        "{}",
        refused.body
    );

    assert_eq!(app.export_csv().await, before, "no ware may change");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM stations").await,
        stations_before,
        "no station may appear"
    );
});

both_backends!(deleting_a_station_in_use_is_a_conflict, |db| async move {
    let app = AdminApp::start(&db).await;
    let wok = app.station("Вок").await.expect("seeded station");
    let refused = app
        .post(&format!("/admin/stations/{wok}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
    assert!(
        refused.body.contains("Станция используется"),
        "{}",
        refused.body
    );
    assert!(app.station("Вок").await.is_some());
    assert!(app.ware("51356").await.is_some());

    let created = app
        .post(
            &format!("/admin/stations/?unit={}", app.unit),
            &[("name", "Десерты")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{created:?}");
    let desserts = app.station("Десерты").await.expect("created");
    let duplicate = app
        .post(
            &format!("/admin/stations/{desserts}/rename"),
            &[("name", "Вок")],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{duplicate:?}");
    let deleted = app
        .post(&format!("/admin/stations/{desserts}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{deleted:?}");
    assert!(app.station("Десерты").await.is_none());
});

both_backends!(
    a_form_post_without_the_csrf_token_is_refused,
    |db| async move {
        let app = AdminApp::start(&db).await;
        let stations = app.count("SELECT COUNT(*) FROM stations").await;
        let refused = app
            .post_raw(
                &app.client,
                &format!("/admin/stations/?unit={}", app.unit),
                &[("name", "Без токена")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
        let forged = app
            .post_raw(
                &app.client,
                &format!("/admin/stations/?unit={}", app.unit),
                &[("name", "Чужой токен"), ("csrf", "not-the-token")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{forged:?}");
        let upload = app
            .upload_csv_with(
                &format!("/admin/wares/import?unit={}", app.unit),
                &format!("{CSV_HEADER}\n1,A,A,B,1\n"),
                "not-the-token",
            )
            .await;
        assert_eq!(upload.status, StatusCode::FORBIDDEN, "{upload:?}");
        assert_eq!(app.count("SELECT COUNT(*) FROM stations").await, stations);
    }
);

both_backends!(only_admins_reach_the_admin_pages, |db| async move {
    let app = AdminApp::start(&db).await;
    let (operator, csrf) = app.sign_in_as("cook", Role::Operator).await;
    let pages = [
        "/admin/".to_owned(),
        "/admin/users/".to_owned(),
        "/admin/jobs/".to_owned(),
        "/admin/stations/".to_owned(),
        "/admin/wares/".to_owned(),
        format!("/admin/wares/export.csv?unit={}", app.unit),
        "/admin/statuses/".to_owned(),
        "/admin/flows/".to_owned(),
        "/admin/registers/".to_owned(),
        "/admin/printers/".to_owned(),
        "/admin/orders/".to_owned(),
        "/admin/stats/".to_owned(),
    ];
    for path in &pages {
        let page = app.get_as(&operator, path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {page:?}");
    }
    let stations = app.count("SELECT COUNT(*) FROM stations").await;
    let refused = app
        .post_raw(
            &operator,
            &format!("/admin/stations/?unit={}", app.unit),
            &[("name", "Оператор"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM stations").await, stations);

    // Without a session the pages send the browser to the login form.
    let anonymous = tillwire_testkit::http_client();
    let page = app.get_as(&anonymous, "/admin/wares/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{page:?}");
    assert!(page.location.starts_with("/users/login/"), "{page:?}");

    for path in &pages {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {page:?}");
    }
});

both_backends!(
    the_users_page_never_shows_password_hashes,
    |db| async move {
        let app = AdminApp::start(&db).await;
        let page = app.get("/admin/users/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(ADMIN));
        assert!(!page.body.contains("$argon2"), "{}", page.body);

        let created = app
            .post(
                "/admin/users/",
                &[
                    ("username", "cashier"),
                    ("role", "viewer"),
                    ("password", "a long enough secret"),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{created:?}");
        let short = app
            .post(
                "/admin/users/",
                &[
                    ("username", "shorty"),
                    ("role", "viewer"),
                    ("password", "short"),
                ],
            )
            .await;
        assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY, "{short:?}");
        let taken = app
            .post(
                "/admin/users/",
                &[
                    ("username", "cashier"),
                    ("role", "viewer"),
                    ("password", "a long enough secret"),
                ],
            )
            .await;
        assert_eq!(taken.status, StatusCode::CONFLICT, "{taken:?}");
        let page = app.get("/admin/users/").await;
        assert!(page.body.contains("cashier"));
        assert!(
            !page.body.contains("$argon2") && !page.body.contains("a long enough secret"),
            "{}",
            page.body
        );

        // The last active admin can be neither demoted nor deactivated.
        let (admin_id,): (i64,) =
            tillwire_platform::read!(&app.platform.store, db => sqlx::query_as(
        "SELECT id FROM users WHERE username = $1",
    )
    .bind(ADMIN)
    .fetch_one(db)
    .await)
            .expect("the admin");
        let demoted = app
            .post(
                &format!("/admin/users/{admin_id}"),
                &[("role", "operator"), ("active", "on")],
            )
            .await;
        assert_eq!(demoted.status, StatusCode::CONFLICT, "{demoted:?}");
        let deactivated = app
            .post(&format!("/admin/users/{admin_id}"), &[("role", "admin")])
            .await;
        assert_eq!(deactivated.status, StatusCode::CONFLICT, "{deactivated:?}");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM users WHERE role = 'admin' AND active")
                .await,
            1
        );
    }
);

both_backends!(statuses_flows_devices_orders_and_jobs, |db| async move {
    let app = AdminApp::start(&db).await;

    // Statuses and flows.
    let created = app
        .post(
            "/admin/statuses/",
            &[
                ("id", "5"),
                ("name", "Доставка"),
                ("shown", "on"),
                ("color", "#123abc"),
                ("icon", "bi bi-truck"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{created:?}");
    let bad_icon = app
        .post(
            "/admin/statuses/",
            &[
                ("id", "6"),
                ("name", "Плохой"),
                ("color", "red"),
                ("icon", "bi\" onclick=\"x"),
            ],
        )
        .await;
    assert_eq!(
        bad_icon.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{bad_icon:?}"
    );
    let added = app
        .post(
            "/admin/flows/",
            &[("current_status_id", "2"), ("next_status_id", "5")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{added:?}");
    let again = app
        .post(
            "/admin/flows/",
            &[("current_status_id", "2"), ("next_status_id", "5")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    let flows = app.get("/admin/flows/").await;
    assert!(flows.body.contains("Доставка"), "{}", flows.body);
    let removed = app.post("/admin/flows/2/5/delete", &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{removed:?}");
    let renamed = app
        .post(
            "/admin/statuses/5",
            &[
                ("name", "В пути"),
                ("color", "navy"),
                ("icon", "bi bi-truck"),
            ],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{renamed:?}");
    assert!(app.get("/admin/statuses/").await.body.contains("В пути"));
    // An alert time and the cancelling flag; an alert time out of range names its field.
    let alerting = app
        .post(
            "/admin/statuses/5",
            &[
                ("name", "В пути"),
                ("color", "navy"),
                ("icon", "bi bi-truck"),
                ("alert_minutes", "20"),
                ("cancels", "on"),
            ],
        )
        .await;
    assert_eq!(alerting.status, StatusCode::SEE_OTHER, "{alerting:?}");
    let workflow = app.kitchen.workflow().await.expect("workflow");
    let status = workflow
        .statuses
        .iter()
        .find(|status| status.id == 5)
        .expect("status 5");
    assert_eq!((status.alert_minutes, status.cancels), (Some(20), true));
    let zero = app
        .post(
            "/admin/statuses/5",
            &[
                ("name", "В пути"),
                ("color", "navy"),
                ("icon", "bi bi-truck"),
                ("alert_minutes", "0"),
            ],
        )
        .await;
    assert_eq!(zero.status, StatusCode::UNPROCESSABLE_ENTITY, "{zero:?}");
    assert!(
        zero.body.contains("alert_minutes") || zero.body.contains("время до тревоги"),
        "{}",
        zero.body
    );
    // ELQ's "Отменен" cancels from the start.
    assert!(workflow.statuses.iter().any(|s| s.id == 4 && s.cancels));

    // Printers and registers: deleting a printer detaches its registers.
    let printer = app
        .post(
            &format!("/admin/printers/?unit={}", app.unit),
            &[("name", "Кухня"), ("address", "tcp://10.0.0.5:9100")],
        )
        .await;
    assert_eq!(printer.status, StatusCode::SEE_OTHER, "{printer:?}");
    let (printer_id,): (i64,) = tillwire_platform::read!(&app.platform.store, db => sqlx::query_as(
        "SELECT id FROM printers WHERE name = 'Кухня'",
    )
    .fetch_one(db)
    .await)
    .expect("the printer");
    let register = app
        .post(
            &format!("/admin/registers/?unit={}", app.unit),
            &[
                ("number", "7"),
                ("name", "Касса 7"),
                ("printer", &printer_id.to_string()),
            ],
        )
        .await;
    assert_eq!(register.status, StatusCode::SEE_OTHER, "{register:?}");
    let duplicate = app
        .post(
            &format!("/admin/registers/?unit={}", app.unit),
            &[("number", "7"), ("name", "Ещё 7"), ("printer", "")],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{duplicate:?}");
    let page = app.get("/admin/registers/").await;
    assert!(page.body.contains("Касса 7"), "{}", page.body);
    let deleted = app
        .post(&format!("/admin/printers/{printer_id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{deleted:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM cash_registers WHERE number = 7 AND printer_id IS NULL")
            .await,
        1
    );

    // A dead job is put back in line once.
    let job = NewJob {
        queue: "test.admin",
        key: "k".into(),
        payload: serde_json::json!({}),
        max_attempts: 1,
    };
    let job_id = app.platform.jobs.enqueue(&job).await.expect("enqueue");
    let claimed = app.platform.jobs.claim(10).await.expect("claim");
    let claimed = claimed
        .iter()
        .find(|j| j.id == job_id)
        .expect("our job is claimed");
    app.platform
        .jobs
        .fail(claimed, &JobFailure::Fatal("printer on fire".into()))
        .await
        .expect("fail the job");
    let dead = app.get("/admin/jobs/?state=dead").await;
    assert!(dead.body.contains("printer on fire"), "{}", dead.body);
    let retried = app.post(&format!("/admin/jobs/{job_id}/retry"), &[]).await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{retried:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM jobs WHERE queue = 'test.admin' AND state = 'pending'")
            .await,
        1
    );
    let twice = app.post(&format!("/admin/jobs/{job_id}/retry"), &[]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{twice:?}");
    assert!(app.get("/admin/").await.body.contains("pending"));

    // An order from a till, moved on by the admin: the day's list and the audit log show it.
    let receipt = serde_json::json!({
        "cash_id": 1, "shift_id": 1, "check_id": 1,
        "check_date": app.kitchen.today().to_string(),
        "wares": [{"ware_code": "48566", "ware_count": 2}],
    });
    let reply: serde_json::Value = app
        .client
        .post(app.url("/devices/import_receipt/"))
        .header("key", API_KEY)
        .json(&receipt)
        .send()
        .await
        .expect("POST a receipt")
        .json()
        .await
        .expect("a JSON reply");
    assert_eq!(reply["doc_number"], 1, "{reply}");
    let (order_id,): (i64,) =
        tillwire_platform::read!(&app.platform.store, db => sqlx::query_as("SELECT id FROM orders")
        .fetch_one(db)
        .await)
        .expect("the order");
    let moved = app
        .client
        .post(app.url(&format!("/orders/{order_id}/status")))
        .header("x-csrf-token", &app.csrf)
        .form(&[("next_status", "2")])
        .send()
        .await
        .expect("change the status");
    assert_eq!(moved.status(), StatusCode::OK);
    let orders = app.get("/admin/orders/").await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(
        orders.body.contains("Пицца 4 сыра × 2") && orders.body.contains("Пиццерия"),
        "{}",
        orders.body
    );
    let detail = app.get(&format!("/admin/orders/{order_id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    let log = &detail.body[detail.body.find("status-log").expect("the log table")..];
    assert!(
        log.contains(ADMIN) && log.contains("Готовится") && log.contains("Готов"),
        "{log}"
    );
    let bad_day = app.get("/admin/orders/?day=yesterday").await;
    assert_eq!(bad_day.status, StatusCode::UNPROCESSABLE_ENTITY);
    let in_use = app.post("/admin/statuses/2/delete", &[]).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{in_use:?}");

    assert!(app.get("/admin/").await.body.contains("pending"));
});

both_backends!(unit_scoped_pages_stay_in_their_unit, |db| async move {
    let app = AdminApp::start(&db).await;
    let second = tillwire_units::Units(&app.platform.store)
        .create(&tillwire_units::UnitName::parse("Второе кафе").expect("a valid name"))
        .await
        .expect("create a unit")
        .0;
    let page = app.get(&format!("/admin/stations/?unit={second}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Второе кафе") && !page.body.contains("value=\"Вок\""),
        "{}",
        page.body
    );
    assert_eq!(
        app.get("/admin/stations/?unit=999999").await.status,
        StatusCode::NOT_FOUND
    );

    // The same station name may exist in another unit, but a ware cannot use another unit's station.
    let created = app
        .post(
            &format!("/admin/stations/?unit={second}"),
            &[("name", "Вок")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{created:?}");
    assert_eq!(created.location, format!("/admin/stations/?unit={second}"));
    let first_units_wok = app.station("Вок").await.expect("seeded station");
    let foreign = app
        .post(
            &format!("/admin/wares/?unit={second}"),
            &[
                ("code", "1"),
                ("full_name", "Чужая станция"),
                ("short_name", "Чужая"),
                ("station", &first_units_wok.to_string()),
                ("catch_quantity", "1"),
            ],
        )
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{foreign:?}"
    );

    // An import into the second unit leaves the first one's catalogue alone, even for the same code.
    let first_before = app.export_csv().await;
    let imported = app
        .upload_csv(
            &format!("/admin/wares/import?unit={second}"),
            &format!("{CSV_HEADER}\n48566,Пицца другая,Пицца,Вок,1\n"),
        )
        .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{imported:?}");
    assert_eq!(app.export_csv().await, first_before);
    let second_export = app
        .get(&format!("/admin/wares/export.csv?unit={second}"))
        .await;
    assert_eq!(
        second_export.body,
        format!("{CSV_HEADER}\n48566,Пицца другая,Пицца,Вок,1\n")
    );
});

both_backends!(prep_times_page, |db| async move {
    let app = AdminApp::start(&db).await;
    let today = app.kitchen.today();
    let placed = tillwire_platform::now_ms() - 3 * 3_600_000;
    let k = &app.kitchen;
    // To ready: 5 and 10 minutes; the third is cancelled.
    common::place_timed_order(k, today, 1, placed, &[PIZZA], &[("Пиццерия", 4)], &[(2, 5)]).await;
    common::place_timed_order(k, today, 2, placed, &[PIZZA], &[], &[(2, 10)]).await;
    common::place_timed_order(k, today, 3, placed, &[SALAD], &[], &[(4, 1)]).await;

    let page = app.get("/admin/stats/").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    let summary = &page.body[page.body.find("id=\"summary\"").expect("the summary")..];
    let figures: Vec<&str> = summary
        .split("<strong style=\"font-size: 2rem\">")
        .skip(1)
        .take(5)
        .map(|rest| rest.split('<').next().unwrap_or_default())
        .collect();
    assert_eq!(figures, ["3", "2", "1", "7.5", "10.0"], "{summary}");
    assert!(
        page.body
            .contains("href=\"/admin/stats/\" class=\"current\">Время приготовления"),
        "the nav link, current: {}",
        page.body
    );
    let chart = &page.body[page.body.find("<svg id=\"by-hour\"").expect("the chart")..];
    let chart = &chart[..chart.find("</svg>").expect("the chart's end")];
    assert_eq!(chart.matches("<rect class=\"bar\"").count(), 1, "{chart}");
    assert!(
        chart.contains("заказов: 3") && chart.contains("p90: 10.0 мин"),
        "{chart}"
    );
    let stations = &page.body[page.body.find("id=\"stations\"").expect("the stations")..];
    assert!(
        stations.contains("<td>Пиццерия</td><td>2</td><td>4.0</td><td>4.0</td>"),
        "{stations}"
    );

    // The same page in English: the words change, the data stays.
    app.use_english().await;
    let page = app
        .get(&format!("/admin/stats/?unit={}&day={today}", app.unit))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for words in [
        "Prep times",
        "By hour",
        "By station",
        "Average, min",
        "orders: 3",
        "hour of order",
    ] {
        assert!(page.body.contains(words), "{words}: {}", page.body);
    }
    assert!(page.body.contains("<svg id=\"by-hour\""));
    let main = &page.body[page.body.find("<main>").expect("main")..];
    let mut words = main.to_owned();
    for data in [
        tillwire_kitchen::seed::DEFAULT_UNIT_NAME,
        "Салаты",
        "Шаурма",
        "Пиццерия",
        "Вок",
    ] {
        words = words.replace(data, "");
    }
    assert!(
        !words.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)),
        "Cyrillic outside the data on the English page: {words}"
    );

    // A day without orders says so instead of drawing; a bad day or unit is refused.
    let empty = app.get("/admin/stats/?day=2020-01-01").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.body.contains("No orders on this day") && !empty.body.contains("<svg"),
        "{}",
        empty.body
    );
    assert_eq!(
        app.get("/admin/stats/?day=yesterday").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/admin/stats/?unit=999999").await.status,
        StatusCode::NOT_FOUND
    );
});
