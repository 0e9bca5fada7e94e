//! Report routes and roles (spec §3.4–3.5): every error branch with its exact message, in the original's order;
//! route pruning on a role change; the supergroup migration.

mod common;

use axum::http::Method;
use common::{Harness, PREFIXES, envelope, json};

async fn post_routes(t: &Harness, p: &str, body: serde_json::Value) -> common::Reply {
    t.call(Method::POST, &format!("{p}/report-routes/"), Some(body))
        .await
}

tillwire_testkit::both_backends!(route_creation_checks_in_order, |db| async move {
    let t = Harness::new(db).await;
    for p in PREFIXES {
        let missing = post_routes(
            &t,
            p,
            json!({"report_type_id": 2, "chat_id": 111, "unit_ids": [1]}),
        )
        .await;
        assert_eq!(
            missing.body,
            json!({"message": "Validation error", "extra": {"fields": {"user_chat_id": ["Обязательное поле."]}}})
        );
        let empty = post_routes(
            &t,
            p,
            json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 111, "unit_ids": []}),
        )
        .await;
        assert_eq!(
            empty.body["extra"]["fields"],
            json!({"unit_ids": {"non_field_errors": ["Этот список не может быть пустым."]}})
        );
        let bad_item = post_routes(
            &t,
            p,
            json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 111, "unit_ids": ["x", 1]}),
        )
        .await;
        assert_eq!(
            bad_item.body["extra"]["fields"],
            json!({"unit_ids": [["Введите правильное число."], {}]})
        );

        let cases = [
            (
                json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 9999, "unit_ids": [1]}),
                404,
                "Chat by chat ID is not found",
            ),
            (
                json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 222, "unit_ids": [1]}),
                403,
                "User has no any role",
            ),
            (
                json!({"report_type_id": 999, "chat_id": 111, "user_chat_id": 111, "unit_ids": [1]}),
                404,
                "Report type by ID is not found",
            ),
            (
                json!({"report_type_id": 7, "chat_id": 111, "user_chat_id": 111, "unit_ids": [1]}),
                403,
                "Permission to report type denied",
            ),
            (
                json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 111, "unit_ids": [99, 1, 4, 99]}),
                403,
                "Permission to units {4, 99} denied",
            ),
            (
                json!({"report_type_id": 2, "chat_id": 777, "user_chat_id": 111, "unit_ids": [1]}),
                404,
                "Chat by chat ID is not found",
            ),
        ];
        for (body, status, message) in cases {
            let reply = post_routes(&t, p, body.clone()).await;
            assert_eq!(
                (reply.status, reply.body),
                (status, envelope(message)),
                "{body}"
            );
        }
    }
    // Created into a group by its member; an inactive type in the role can be routed, as in the original.
    let created = post_routes(
        &t,
        "",
        json!({"report_type_id": 3, "chat_id": -1001, "user_chat_id": 111, "unit_ids": [2, 1, 2]}),
    )
    .await;
    assert_eq!((created.status, created.text.as_str()), (201, ""));
    // All-or-nothing: unit 3 is not created when unit 2 already exists.
    let duplicate = post_routes(
        &t,
        "/api",
        json!({"report_type_id": 3, "chat_id": -1001, "user_chat_id": 111, "unit_ids": [2, 3]}),
    )
    .await;
    assert_eq!(
        (duplicate.status, duplicate.body),
        (409, envelope("Unit route already exists"))
    );
    for p in PREFIXES {
        let units = t
            .get(&format!(
                "{p}/report-routes/units/?chat_id=-1001&report_type_id=3"
            ))
            .await;
        assert_eq!(
            units.body,
            json!({"unit_ids": [1, 2], "is_end_of_list_reached": true})
        );
        let paged = t
            .get(&format!(
                "{p}/report-routes/units/?chat_id=-1001&report_type_id=3&limit=1"
            ))
            .await;
        assert_eq!(
            paged.body,
            json!({"unit_ids": [1], "is_end_of_list_reached": false})
        );
        let chats = t
            .get(&format!(
                "{p}/report-routes/telegram-chats/?unit_id=2&report_type_id=3"
            ))
            .await;
        assert_eq!(
            chats.body,
            json!({"chat_ids": [-1001], "is_end_of_list_reached": true})
        );
        let unknown = t
            .get(&format!(
                "{p}/report-routes/units/?chat_id=5&report_type_id=3"
            ))
            .await;
        assert_eq!(
            unknown.body,
            json!({"unit_ids": [], "is_end_of_list_reached": true})
        );
        let invalid = t
            .get(&format!("{p}/report-routes/units/?report_type_id=0"))
            .await;
        assert_eq!(
            invalid.body["extra"]["fields"],
            json!({"chat_id": ["Обязательное поле."], "report_type_id": ["Убедитесь, что это значение больше либо равно 1."]})
        );
        let invalid = t
            .get(&format!("{p}/report-routes/telegram-chats/?unit_id=x"))
            .await;
        assert_eq!(
            invalid.body["extra"]["fields"],
            json!({"unit_id": ["Введите правильное число."], "report_type_id": ["Обязательное поле."]})
        );
    }
    let audited: (i64,) = tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(
        "SELECT COUNT(*) FROM directory_audit WHERE action = 'routes.create'").fetch_one(db).await)
    .unwrap();
    assert_eq!(audited.0, 1);
});

tillwire_testkit::both_backends!(route_delete_validates, |db| async move {
    let t = Harness::new(db).await;
    post_routes(
        &t,
        "",
        json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 111, "unit_ids": [1, 2, 3]}),
    )
    .await;
    for p in PREFIXES {
        for (query, fields) in [
            (
                "unit_ids=1",
                json!({"chat_id": ["Обязательное поле."], "report_type_id": ["Обязательное поле."]}),
            ),
            (
                "chat_id=x&report_type_id=2&unit_ids=1",
                json!({"chat_id": ["Введите правильное число."]}),
            ),
            (
                "chat_id=111&report_type_id=2",
                json!({"unit_ids": ["Обязательное поле."]}),
            ),
            (
                "chat_id=111&report_type_id=2&unit_ids=1,2",
                json!({"unit_ids": [["Введите правильное число."]]}),
            ),
        ] {
            let reply = t
                .call(Method::DELETE, &format!("{p}/report-routes/?{query}"), None)
                .await;
            assert_eq!(
                (reply.status, reply.body["extra"]["fields"].clone()),
                (400, fields),
                "{query}"
            );
        }
    }
    let deleted = t
        .call(
            Method::DELETE,
            "/report-routes/?chat_id=111&report_type_id=2&unit_ids=1&unit_ids=3&user_chat_id=111",
            None,
        )
        .await;
    assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
    let again = t
        .call(
            Method::DELETE,
            "/api/report-routes/?chat_id=111&report_type_id=2&unit_ids=1",
            None,
        )
        .await;
    assert_eq!(again.status, 204);
    let left = t
        .get("/report-routes/units/?chat_id=111&report_type_id=2")
        .await;
    assert_eq!(left.body["unit_ids"], json!([2]));
});

tillwire_testkit::both_backends!(roles_and_pruning, |db| async move {
    let t = Harness::new(db).await;
    for p in PREFIXES {
        let units = t.get(&format!("{p}/roles/users/111/units/")).await;
        assert_eq!(
            units.text,
            r#"{"units":[{"id":1,"name":"Москва 1-1","uuid":"u-1","region_id":1,"office_manager_account_name":"om1","dodo_is_api_account_name":"api1"},{"id":2,"name":"Москва 1-2","uuid":"u-2","region_id":1,"office_manager_account_name":"","dodo_is_api_account_name":""},{"id":3,"name":"Москва 2-1","uuid":"u-3","region_id":2,"office_manager_account_name":"","dodo_is_api_account_name":""}],"is_end_of_list_reached":true}"#
        );
        let in_region = t
            .get(&format!("{p}/roles/users/111/units/?region_id=2&limit=1"))
            .await;
        assert_eq!(in_region.body["units"][0]["id"], 3);
        assert_eq!(in_region.body["is_end_of_list_reached"], true);
        let regions = t.get(&format!("{p}/roles/users/111/regions/")).await;
        assert_eq!(
            regions.body,
            json!({"regions": [{"id": 1, "name": "Москва 1"}, {"id": 2, "name": "Москва 2"}], "is_end_of_list_reached": true})
        );
        let types = t.get(&format!("{p}/roles/users/111/report-types/")).await;
        let ids: Vec<i64> = types.body["report_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            ids,
            vec![2, 1, 3, 10],
            "priority DESC, then id; inactive included"
        );
        for sub in ["units", "regions", "report-types"] {
            let no_role = t.get(&format!("{p}/roles/users/222/{sub}/")).await;
            assert_eq!(
                (no_role.status, no_role.body),
                (403, envelope("User has no any role"))
            );
            let unknown = t.get(&format!("{p}/roles/users/9999/{sub}/")).await;
            assert_eq!(
                (unknown.status, unknown.body),
                (404, envelope("Chat by chat ID is not found"))
            );
        }
        let blank = t
            .call(
                Method::PATCH,
                &format!("{p}/roles/users/222/"),
                Some(json!({"access_code": ""})),
            )
            .await;
        assert_eq!(
            blank.body["extra"]["fields"],
            json!({"access_code": ["Это поле не может быть пустым."]})
        );
        let unknown_chat = t
            .call(
                Method::PATCH,
                &format!("{p}/roles/users/9999/"),
                Some(json!({"access_code": "secret-one"})),
            )
            .await;
        assert_eq!(
            (unknown_chat.status, unknown_chat.body),
            (404, envelope("Chat by chat ID is not found"))
        );
        let wrong = t
            .call(
                Method::PATCH,
                &format!("{p}/roles/users/222/"),
                Some(json!({"access_code": "SECRET-ONE"})),
            )
            .await;
        assert_eq!(
            (wrong.status, wrong.body),
            (404, envelope("Role is not found"))
        );
    }
    // Chat 111 routes units 1 and 3 for type 2 and unit 1 for STATISTICS, then takes role 2 (unit 4, type 7).
    post_routes(
        &t,
        "",
        json!({"report_type_id": 2, "chat_id": 111, "user_chat_id": 111, "unit_ids": [1, 3]}),
    )
    .await;
    post_routes(
        &t,
        "",
        json!({"report_type_id": 1, "chat_id": 111, "user_chat_id": 111, "unit_ids": [1]}),
    )
    .await;
    let assigned = t
        .call(
            Method::PATCH,
            "/roles/users/111/",
            Some(json!({"access_code": "secret-one"})),
        )
        .await;
    assert_eq!(
        (assigned.status, assigned.text.as_str()),
        (204, ""),
        "re-applying the same code keeps everything"
    );
    assert_eq!(
        t.get("/report-routes/units/?chat_id=111&report_type_id=2")
            .await
            .body["unit_ids"],
        json!([1, 3])
    );
    let switched = t
        .call(
            Method::PATCH,
            "/api/roles/users/111/",
            Some(json!({"access_code": "secret-two"})),
        )
        .await;
    assert_eq!(switched.status, 204);
    assert_eq!(
        t.get("/report-routes/units/?chat_id=111&report_type_id=2")
            .await
            .body["unit_ids"],
        json!([])
    );
    assert_eq!(
        t.get("/report-routes/units/?chat_id=111&report_type_id=1")
            .await
            .body["unit_ids"],
        json!([])
    );
    assert_eq!(
        t.get("/roles/users/111/units/").await.body["units"][0]["id"],
        4
    );
    let stored: Vec<(String,)> = tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(
        "SELECT access_code_hash FROM directory_roles").fetch_all(db).await)
    .unwrap();
    assert!(
        stored.iter().all(|(h,)| !h.contains("secret")),
        "access codes are stored hashed"
    );
});

tillwire_testkit::both_backends!(supergroup_migration_keeps_routes, |db| async move {
    let t = Harness::new(db).await;
    post_routes(
        &t,
        "",
        json!({"report_type_id": 2, "chat_id": -1001, "user_chat_id": 111, "unit_ids": [1, 2]}),
    )
    .await;
    let moved = t
        .call(
            Method::PUT,
            "/telegram-chats/-1001/",
            Some(json!({"title": "Pizza team", "migrate_to_chat_id": -1002000})),
        )
        .await;
    assert_eq!(moved.status, 204, "{}", moved.text);
    assert_eq!(t.get("/telegram-chats/-1001/").await.status, 404);
    assert_eq!(
        t.get("/report-routes/units/?chat_id=-1002000&report_type_id=2")
            .await
            .body["unit_ids"],
        json!([1, 2])
    );
    // A chat that already exists under the new id (of another role, say) is not taken over: refused, and both
    // chats keep their routes.
    t.call(
        Method::POST,
        "/telegram-chats/",
        Some(json!({"chat_id": -1003000, "type": "GROUP", "title": "New"})),
    )
    .await;
    post_routes(
        &t,
        "",
        json!({"report_type_id": 2, "chat_id": -1003000, "user_chat_id": 111, "unit_ids": [3]}),
    )
    .await;
    let refused = t
        .call(
            Method::PUT,
            "/api/telegram-chats/-1002000/",
            Some(json!({"title": "Renamed", "migrate_to_chat_id": -1003000})),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(
        refused.body,
        json!({"message": "Chat with provided chat ID already exists", "extra": {}})
    );
    for (chat, units) in [(-1002000, json!([1, 2])), (-1003000, json!([3]))] {
        assert_eq!(
            t.get(&format!(
                "/report-routes/units/?chat_id={chat}&report_type_id=2"
            ))
            .await
            .body["unit_ids"],
            units
        );
    }
    assert_eq!(
        t.get("/telegram-chats/-1002000/").await.body["title"],
        "Pizza team",
        "nothing of the refused update was kept"
    );
});
