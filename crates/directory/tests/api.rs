//! Contract tests of the read endpoints and the chat endpoints (spec §3.1–3.3), on both backends, unprefixed
//! and under `/api/`.

mod common;

use axum::http::Method;
use common::{Harness, PREFIXES, envelope, json};

tillwire_testkit::both_backends!(units_regions_departments, |db| async move {
    let t = Harness::new(db).await;
    for p in PREFIXES {
        let all = t.get(&format!("{p}/units/")).await;
        assert_eq!(all.status, 200, "{}", all.text);
        assert!(all.text.starts_with(r#"{"units":[{"id":1,"name":"Москва 1-1","uuid":"u-1","office_manager_account_name":"om1","dodo_is_api_account_name":"api1","region":"Москва 1"}"#), "{}", all.text);
        assert_eq!(all.body["units"].as_array().unwrap().len(), 4);
        assert_eq!(all.body["is_end_of_list_reached"], true);

        let first = t.get(&format!("{p}/units/?limit=2")).await;
        let ids: Vec<i64> = first.body["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            (ids, first.body["is_end_of_list_reached"].clone()),
            (vec![1, 2], json!(false))
        );
        let last = t.get(&format!("{p}/units/?limit=2&offset=2")).await;
        assert_eq!(last.body["units"][0]["id"], 3);
        assert_eq!(last.body["is_end_of_list_reached"], true);
        let past = t.get(&format!("{p}/units/?offset=50")).await;
        assert_eq!(
            past.body,
            json!({"units": [], "is_end_of_list_reached": true})
        );

        let bad = t.get(&format!("{p}/units/?limit=101&offset=-1")).await;
        assert_eq!(bad.status, 400);
        assert_eq!(
            bad.body,
            json!({"message": "Validation error", "extra": {"fields": {
            "limit": ["Убедитесь, что это значение меньше либо равно 100."],
            "offset": ["Убедитесь, что это значение больше либо равно 0."]}}})
        );
        let not_int = t.get(&format!("{p}/units/?limit=abc")).await;
        assert_eq!(
            not_int.body["extra"]["fields"]["limit"],
            json!(["Введите правильное число."])
        );

        let one = t.get(&format!("{p}/units/name/Москва%201-2/")).await;
        assert_eq!(one.status, 200);
        assert_eq!(
            one.body,
            json!({"id": 2, "name": "Москва 1-2", "uuid": "u-2", "office_manager_account_name": null, "dodo_is_api_account_name": null, "region": "Москва 1"})
        );
        let missing = t.get(&format!("{p}/units/name/nope/")).await;
        assert_eq!(
            (missing.status, missing.body),
            (404, envelope("Unit by name is not found"))
        );

        let regions = t.get(&format!("{p}/units/regions/?limit=1")).await;
        assert_eq!(
            regions.body,
            json!({"regions": [{"id": 1, "name": "Москва 1"}], "is_end_of_list_reached": false})
        );
        let departments = t.get(&format!("{p}/units/departments/")).await;
        assert_eq!(
            departments.body,
            json!({"departments": [{"id": 4, "name": "Подольск", "uuid": "dep-4"}], "is_end_of_list_reached": true})
        );
    }
});

tillwire_testkit::both_backends!(report_types, |db| async move {
    let t = Harness::new(db).await;
    for p in PREFIXES {
        // Active, not statistics children, by priority DESC; tillwire's own alerts are seeded active.
        let list = t.get(&format!("{p}/report-types/")).await;
        assert_eq!(
            list.body,
            json!({"report_types": [
            {"id": 7, "name": "CANCELED_ORDERS", "verbose_name": "Отмены заказов"},
            {"id": 2, "name": "INGREDIENTS_STOP_SALES", "verbose_name": "Стопы (тесто, сыр, пицца-соус)"},
            {"id": 1, "name": "STATISTICS", "verbose_name": "Отчёты по статистике"},
            {"id": 22, "name": "REGISTER_INCIDENTS", "verbose_name": "Инциденты на кассах"},
            {"id": 23, "name": "PRINTER_ALERTS", "verbose_name": "Принтеры чеков очереди"},
            {"id": 24, "name": "COLLECTOR_ALERTS", "verbose_name": "Сбор чеков с касс"},
            {"id": 25, "name": "ERP_ALERTS", "verbose_name": "Заказ-наряды в ERP"},
            {"id": 26, "name": "DAILY_SUMMARY", "verbose_name": "Итоги дня"}],
            "is_end_of_list_reached": true})
        );
        let paged = t.get(&format!("{p}/report-types/?limit=1&offset=1")).await;
        assert_eq!(paged.body["report_types"][0]["id"], 2);
        assert_eq!(paged.body["is_end_of_list_reached"], false);
        let statistics = t.get(&format!("{p}/report-types/statistics/")).await;
        assert_eq!(
            statistics.body,
            json!({"report_types": [{"id": 10, "name": "COOKING_TIME", "verbose_name": "Время приготовления (общее)"}], "is_end_of_list_reached": true})
        );
        let children = t.get(&format!("{p}/report-types/?parent_id=1")).await;
        assert_eq!(
            children.body,
            json!([{"id": 10, "name": "COOKING_TIME", "verbose_name": "Время приготовления (общее)"}])
        );
        let bad_parent = t.get(&format!("{p}/report-types/?parent_id=abc")).await;
        assert_eq!(bad_parent.status, 400);

        let by_name = t.get(&format!("{p}/report-types/names/STATISTICS/")).await;
        assert_eq!(
            by_name.body,
            json!({"id": 1, "name": "STATISTICS", "verbose_name": "Отчёты по статистике"})
        );
        for name in ["STREET_STOP_SALES", "statistics", "NOPE"] {
            let missing = t.get(&format!("{p}/report-types/names/{name}/")).await;
            assert_eq!(
                (missing.status, missing.body),
                (404, envelope("Report type is not found")),
                "{name}"
            );
        }
    }
});

tillwire_testkit::both_backends!(seeded_report_types_have_production_ids, |db| async move {
    let t = Harness::new(db).await;
    let rows: Vec<(i64, String, String, Option<i64>)> = tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(
        "SELECT id, name, verbose_name, parent_id FROM directory_report_types WHERE id IN (1, 13, 20, 21) ORDER BY id")
        .fetch_all(db).await).unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "STATISTICS".into(), "Отчёты по статистике".into(), None),
            (
                13,
                "DELIVERY_AWAITING_TIME".into(),
                "Время на полке / 1в1".into(),
                Some(1)
            ),
            (
                20,
                "PRODUCTIVITY_BALANCE".into(),
                "Баланс эффективности".into(),
                Some(1)
            ),
            (
                21,
                "LATE_DELIVERY_VOUCHERS".into(),
                "Сертификаты за опоздание".into(),
                None
            ),
        ]
    );
    // Seeding again adds nothing.
    assert_eq!(
        tillwire_directory::seed::init(&t.platform).await.unwrap(),
        0
    );
});

tillwire_testkit::both_backends!(telegram_chats, |db| async move {
    let t = Harness::new(db).await;
    for (n, p) in PREFIXES.iter().enumerate() {
        let id = 500 + n as i64;
        let created = t
            .call(
                Method::POST,
                &format!("{p}/telegram-chats/"),
                Some(json!({"chat_id": id, "type": "PRIVATE", "title": "Новый", "username": ""})),
            )
            .await;
        assert_eq!((created.status, created.text.as_str()), (201, ""));
        let again = t
            .call(
                Method::POST,
                &format!("{p}/telegram-chats/"),
                Some(json!({"chat_id": id, "type": "GROUP", "title": "x"})),
            )
            .await;
        assert_eq!(
            (again.status, again.body),
            (409, envelope("Chat with provided chat ID already exists"))
        );
        let invalid = t
            .call(
                Method::POST,
                &format!("{p}/telegram-chats/"),
                Some(json!({"chat_id": 9, "type": "private", "title": ""})),
            )
            .await;
        assert_eq!(invalid.status, 400);
        assert_eq!(
            invalid.body["extra"]["fields"],
            json!({"type": ["Значения private нет среди допустимых вариантов."], "title": ["Это поле не может быть пустым."]})
        );
        let long_title = "Т".repeat(200);
        let group = t
            .call(
                Method::POST,
                &format!("{p}/telegram-chats/"),
                Some(json!({"chat_id": -id, "type": "GROUP", "title": long_title})),
            )
            .await;
        assert_eq!(
            group.status, 201,
            "titles up to Telegram's length: {}",
            group.text
        );
        let too_long = t.call(Method::POST, &format!("{p}/telegram-chats/"), Some(json!({"chat_id": 7, "type": "GROUP", "title": "x", "username": "u".repeat(65)}))).await;
        assert_eq!(
            too_long.body["extra"]["fields"]["username"],
            json!(["Убедитесь, что это значение содержит не более 64 символов."])
        );
        let malformed = t
            .call(Method::POST, &format!("{p}/telegram-chats/"), None)
            .await;
        assert_eq!(
            malformed.body["extra"]["fields"]["chat_id"],
            json!(["Обязательное поле."])
        );

        let detail = t.get(&format!("{p}/telegram-chats/{id}/")).await;
        assert_eq!(
            detail.text,
            format!(
                r#"{{"chat_id":{id},"username":null,"title":"Новый","type":"Личный","type_name":"PRIVATE"}}"#
            )
        );
        let unknown = t.get(&format!("{p}/telegram-chats/999999/")).await;
        assert_eq!(
            (unknown.status, unknown.body),
            (404, envelope("Chat by chat ID is not found"))
        );

        // Title only (telegram-chats-manager): the username is kept.
        t.call(
            Method::PUT,
            &format!("{p}/telegram-chats/111/"),
            Some(json!({"title": "Eldos", "username": "eldos"})),
        )
        .await;
        let put = t
            .call(
                Method::PUT,
                &format!("{p}/telegram-chats/111/"),
                Some(json!({"title": "Eldos K"})),
            )
            .await;
        assert_eq!((put.status, put.text.as_str()), (204, ""));
        let after = t.get(&format!("{p}/telegram-chats/111/")).await;
        assert_eq!(
            (after.body["title"].clone(), after.body["username"].clone()),
            (json!("Eldos K"), json!("eldos"))
        );
        let cleared = t
            .call(
                Method::PUT,
                &format!("{p}/telegram-chats/111/"),
                Some(json!({"title": "Eldos", "username": null})),
            )
            .await;
        assert_eq!(cleared.status, 204);
        assert_eq!(
            t.get(&format!("{p}/telegram-chats/111/")).await.body["username"],
            json!(null)
        );
        let put_unknown = t
            .call(
                Method::PUT,
                &format!("{p}/telegram-chats/999999/"),
                Some(json!({"title": "x"})),
            )
            .await;
        assert_eq!(
            (put_unknown.status, put_unknown.body),
            (404, envelope("Chat by chat ID is not found"))
        );

        let types = t.get(&format!("{p}/telegram-chats/chat-types/")).await;
        assert_eq!(types.body, json!(["PRIVATE", "GROUP"]));
        let list = t.get(&format!("{p}/telegram-chats/?limit=1")).await;
        assert_eq!(
            list.body,
            json!({"telegram_chats": [{"title": "Eldos", "chat_id": 111}], "is_end_of_list_reached": false})
        );
    }
});

tillwire_testkit::both_backends!(errors_are_json_envelopes, |db| async move {
    let t = Harness::new(db).await;
    for p in PREFIXES {
        let wrong_method = t
            .call(Method::POST, &format!("{p}/units/"), Some(json!({})))
            .await;
        assert_eq!(
            (wrong_method.status, wrong_method.body),
            (405, envelope("Метод \"POST\" не разрешен."))
        );
        let no_get = t.get(&format!("{p}/report-routes/")).await;
        assert_eq!(
            (no_get.status, no_get.body),
            (405, envelope("Метод \"GET\" не разрешен."))
        );
        let patch_chat = t
            .call(
                Method::PATCH,
                &format!("{p}/telegram-chats/111/"),
                Some(json!({})),
            )
            .await;
        assert_eq!(patch_chat.status, 405);
        for path in [
            "/telegram-chats/abc/",
            "/units/nope/deeper/",
            "/roles/users/x/units/",
            "/report-routes/zzz/",
        ] {
            let unknown = t.get(&format!("{p}{path}")).await;
            assert_eq!(
                (unknown.status, unknown.body),
                (404, envelope("Страница не найдена.")),
                "{path}"
            );
        }
        let malformed = t
            .call_raw(&format!("{p}/telegram-chats/"), "{chat_id: 1}")
            .await;
        assert_eq!(malformed.status, 400);
        assert!(
            malformed.body["message"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error - "),
            "{}",
            malformed.text
        );
    }
});

tillwire_testkit::both_backends!(unit_pages_follow_every_change, |db| async move {
    let t = Harness::new(db).await;
    let count = |reply: common::Reply| reply.body["units"].as_array().map_or(0, Vec::len);
    assert_eq!(count(t.get("/units/").await), 4);
    // A unit made by the kitchen's side (this process) shows at once.
    tillwire_units::Units(&t.platform.store)
        .create(&tillwire_units::UnitName::parse("Кухня").unwrap())
        .await
        .unwrap();
    assert_eq!(count(t.get("/units/").await), 5);
    // A write this process did not make (another instance, the import command) shows within seconds.
    tillwire_platform::write!(&t.platform.store, db => sqlx::query(
        "UPDATE directory_regions SET name = 'Москва Север' WHERE id = 1").execute(db).await.map(|_| ()))
    .unwrap();
    until_answers(&t, "/units/", "/units/0/region", json!("Москва Север")).await;
    // The fan-out follows the route API at once, and a route written by another process within seconds.
    let fan_out = "/report-routes/telegram-chats/?unit_id=1&report_type_id=2";
    assert_eq!(t.get(fan_out).await.body["chat_ids"], json!([]));
    let body = json!({"report_type_id": 2, "chat_id": -1001, "user_chat_id": 111, "unit_ids": [1]});
    assert_eq!(
        t.call(Method::POST, "/report-routes/", Some(body))
            .await
            .status,
        201
    );
    assert_eq!(t.get(fan_out).await.body["chat_ids"], json!([-1001]));
    tillwire_platform::write!(&t.platform.store, db => sqlx::query(
        "DELETE FROM directory_routes").execute(db).await.map(|_| ()))
    .unwrap();
    until_answers(&t, fan_out, "/chat_ids", json!([])).await;
});

/// Waits until `path` answers `expected` at `pointer`: a write made outside this process reaches the read caches
/// within their TTL (seconds), so a generous bound only stops a broken server.
async fn until_answers(t: &Harness, path: &str, pointer: &str, expected: serde_json::Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = t.get(path).await;
        if page.body.pointer(pointer) == Some(&expected) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never showed {expected} at {pointer}: {}",
            page.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

tillwire_testkit::both_backends!(remaining_error_branches, |db| async move {
    let t = Harness::new(db).await;
    let fields = |reply: &common::Reply| (reply.status, reply.body["extra"]["fields"].clone());
    for p in PREFIXES {
        let chat = format!("{p}/telegram-chats/111/");
        let no_title = t
            .call(Method::PUT, &chat, Some(json!({"username": "x"})))
            .await;
        assert_eq!(
            fields(&no_title),
            (400, json!({"title": ["Обязательное поле."]}))
        );
        let long = "я".repeat(256);
        let too_long = t
            .call(Method::PUT, &chat, Some(json!({"title": long})))
            .await;
        assert_eq!(too_long.status, 400, "{}", too_long.text);
        assert!(
            too_long.body["extra"]["fields"]["title"].is_array(),
            "{}",
            too_long.text
        );
        // Telegram's longest titles fit (the original's 64 did not).
        let longest = t
            .call(Method::PUT, &chat, Some(json!({"title": "я".repeat(255)})))
            .await;
        assert_eq!(longest.status, 204, "{}", longest.text);

        let role = format!("{p}/roles/users/222/");
        let missing = t.call(Method::PATCH, &role, Some(json!({}))).await;
        assert_eq!(
            fields(&missing),
            (400, json!({"access_code": ["Обязательное поле."]}))
        );
        let long_code = t
            .call(
                Method::PATCH,
                &role,
                Some(json!({"access_code": "x".repeat(65)})),
            )
            .await;
        assert_eq!(
            fields(&long_code),
            (
                400,
                json!({"access_code": ["Убедитесь, что это значение содержит не более 64 символов."]})
            )
        );

        let bad_region = t
            .get(&format!("{p}/roles/users/111/units/?region_id=0"))
            .await;
        assert_eq!(
            fields(&bad_region),
            (
                400,
                json!({"region_id": ["Убедитесь, что это значение больше либо равно 1."]})
            )
        );
        let bad_parent = t.get(&format!("{p}/report-types/?parent_id=abc")).await;
        assert_eq!(
            fields(&bad_parent),
            (400, json!({"parent_id": ["Введите правильное число."]}))
        );

        let not_object = t.call_raw(&format!("{p}/telegram-chats/"), "[1, 2]").await;
        assert_eq!(
            fields(&not_object),
            (
                400,
                json!({"non_field_errors": ["Недопустимые данные. Ожидался dictionary, но был получен list."]})
            )
        );
        let broken = t
            .call_raw(&format!("{p}/telegram-chats/"), "{\"chat_id\": ")
            .await;
        assert_eq!(broken.status, 400);
        assert!(
            broken.body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("JSON parse error - ")),
            "{}",
            broken.text
        );
    }
    // The bot's form-encoded bodies are read like JSON ones.
    let form = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/telegram-chats/")
        .header("content-type", "application/x-www-form-urlencoded")
        .extension(axum::extract::ConnectInfo(
            "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
        ))
        .body(axum::body::Body::from(
            "chat_id=555&type=GROUP&title=Form%20group",
        ))
        .unwrap();
    let created = tower::ServiceExt::oneshot(t.router(), form).await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        t.get("/telegram-chats/555/").await.body["title"],
        "Form group"
    );
});

tillwire_testkit::both_backends!(bodies_and_queries_as_drf_reads_them, |db| async move {
    let t = Harness::new(db).await;
    for (n, p) in PREFIXES.iter().enumerate() {
        // An empty `limit` or `offset` means the default, as in the original's forms.
        let default = t.get(&format!("{p}/units/")).await;
        let blank = t.get(&format!("{p}/units/?limit=&offset=")).await;
        assert_eq!((blank.status, &blank.body), (200, &default.body), "{p}");
        // A body of a type DRF cannot parse: 415 with DRF's words.
        let plain = t
            .call_with(
                Method::POST,
                &format!("{p}/telegram-chats/"),
                &[("content-type", "text/plain")],
                "chat_id=1",
            )
            .await;
        assert_eq!(
            (plain.status, plain.body),
            (
                415,
                envelope("Неподдерживаемый тип данных \"text/plain\" в запросе.")
            )
        );
        // JSON that is not an object: DRF's text, naming what came.
        for (body, kind) in [("[1, 2]", "list"), ("\"chat\"", "str"), ("7", "int")] {
            let reply = t.call_raw(&format!("{p}/telegram-chats/"), body).await;
            assert_eq!(reply.status, 400, "{body}");
            assert_eq!(
                reply.body["extra"]["fields"]["non_field_errors"],
                json!([format!(
                    "Недопустимые данные. Ожидался dictionary, но был получен {kind}."
                )]),
                "{body}"
            );
        }
        // A multipart form, as DRF's parsers accept.
        let id = 700 + n as i64;
        let multipart = format!(
            "--XB\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n{id}\r\n\
             --XB\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nPRIVATE\r\n\
             --XB\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nИз формы\r\n--XB--\r\n"
        );
        let created = t
            .call_with(
                Method::POST,
                &format!("{p}/telegram-chats/"),
                &[("content-type", "multipart/form-data; boundary=XB")],
                &multipart,
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(
            t.get(&format!("{p}/telegram-chats/{id}/")).await.body["title"],
            "Из формы"
        );
    }
});

tillwire_testkit::both_backends!(cross_site_browser_writes_are_refused, |db| async move {
    let t = Harness::new(db).await;
    let body = r#"{"chat_id": 801, "type": "PRIVATE", "title": "x"}"#;
    for headers in [
        [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        [
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8000"),
        ],
    ] {
        let mut all = vec![("content-type", "application/json")];
        all.extend(headers);
        let refused = t
            .call_with(Method::POST, "/telegram-chats/", &all, body)
            .await;
        assert_eq!(refused.status, 403, "{headers:?}: {}", refused.text);
    }
    assert_eq!(
        t.get("/telegram-chats/801/").await.status,
        404,
        "nothing written"
    );
    // Reads from anywhere, and writes from the same site or from programs (no such headers), still work.
    let read = t
        .call_with(
            Method::GET,
            "/units/",
            &[("sec-fetch-site", "cross-site")],
            "",
        )
        .await;
    assert_eq!(read.status, 200);
    let same_site = t
        .call_with(
            Method::POST,
            "/telegram-chats/",
            &[
                ("content-type", "application/json"),
                ("sec-fetch-site", "same-origin"),
            ],
            body,
        )
        .await;
    assert_eq!(same_site.status, 201, "{}", same_site.text);
});

tillwire_testkit::both_backends!(a_missing_trailing_slash_is_redirected, |db| async move {
    let t = Harness::new(db).await;
    for p in PREFIXES {
        for (method, path, status, location) in [
            (Method::GET, "/units?limit=1", 301, "/units/?limit=1"),
            (Method::HEAD, "/units/regions", 301, "/units/regions/"),
            (
                Method::GET,
                "/telegram-chats/111",
                301,
                "/telegram-chats/111/",
            ),
            (Method::POST, "/telegram-chats", 308, "/telegram-chats/"),
            (Method::PATCH, "/roles/users/222", 308, "/roles/users/222/"),
        ] {
            let reply = t
                .call_with(method.clone(), &format!("{p}{path}"), &[], "")
                .await;
            assert_eq!(reply.status, status, "{method} {p}{path}");
            assert_eq!(
                reply.location.as_deref(),
                Some(format!("{p}{location}").as_str()),
                "{method} {p}{path}"
            );
        }
        // A path that is not the directory's, slash or not, is still the 404 envelope.
        let unknown = t.get(&format!("{p}/units/nope")).await;
        assert_eq!(
            (unknown.status, unknown.body),
            (404, envelope("Страница не найдена."))
        );
    }
});
