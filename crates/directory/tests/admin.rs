//! The admin pages: a signed-in admin manages roles (the generated code is shown once), report types, chats,
//! regions and routes; every change that narrows a role prunes the routes it no longer permits.

mod common;

use axum::http::Method;
use common::{Harness, json};
use tillwire_platform::Role;
use tillwire_platform::auth::{NewPassword, Sessions, Username, Users};
use tower::ServiceExt;

async fn admin_cookie(t: &Harness) -> String {
    let users = Users(&t.platform.store);
    let id = users
        .create(
            &Username::parse("boss").unwrap(),
            &NewPassword::parse("long enough pw").unwrap(),
            Role::Admin,
        )
        .await
        .unwrap();
    let token = Sessions(&t.platform.store)
        .start(id, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    format!("tw_session={token}")
}

async fn page(t: &Harness, cookie: &str, method: Method, path: &str, form: &str) -> (u16, String) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(form.to_owned()))
        .unwrap();
    let response = t.router().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page"))
        + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

tillwire_testkit::both_backends!(admin_pages_manage_the_directory, |db| async move {
    let t = Harness::new(db).await;
    let cookie = admin_cookie(&t).await;
    for tab in [
        "units/",
        "regions/",
        "departments/",
        "report-types/",
        "roles/",
        "chats/",
        "routes/",
        "tokens/",
        "import",
    ] {
        let (status, html) = page(
            &t,
            &cookie,
            Method::GET,
            &format!("/admin/directory/{tab}"),
            "",
        )
        .await;
        assert_eq!(status, 200, "{tab}: {html}");
    }
    let (_, found) = page(
        &t,
        &cookie,
        Method::GET,
        "/admin/directory/units/?q=2-1",
        "",
    )
    .await;
    assert!(
        found.contains("Москва 2-1") && !found.contains("Подольск-3"),
        "search"
    );
    let (status, _) = page(&t, &cookie, Method::GET, "/admin/directory/units/", "").await;
    assert_eq!(status, 200);
    let (anonymous, _) = page(&t, "", Method::GET, "/admin/directory/units/", "").await;
    assert_eq!(anonymous, 303, "visitors go to the login form");

    // A new role: its code is shown once, then works for the bot.
    let (status, html) = page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/roles/",
        "name=Area",
    )
    .await;
    assert_eq!(status, 200);
    let code = between(&html, "<code>", "</code>").to_owned();
    let (_, later) = page(&t, &cookie, Method::GET, "/admin/directory/roles/", "").await;
    assert!(!later.contains(&code), "the code is shown only once");
    let (status, _) = page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/roles/3",
        "name=Area&unit_ids=1%2C+2&report_type_ids=2",
    )
    .await;
    assert_eq!(status, 303);
    let assigned = t
        .call(
            Method::PATCH,
            "/roles/users/222/",
            Some(json!({"access_code": code})),
        )
        .await;
    assert_eq!(assigned.status, 204);
    t.call(
        Method::POST,
        "/report-routes/",
        Some(json!({"report_type_id": 2, "chat_id": 222, "user_chat_id": 222, "unit_ids": [1, 2]})),
    )
    .await;
    // Narrowing the role prunes the routes it no longer permits.
    page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/roles/3",
        "name=Area&unit_ids=2&report_type_ids=2",
    )
    .await;
    assert_eq!(
        t.get("/report-routes/units/?chat_id=222&report_type_id=2")
            .await
            .body["unit_ids"],
        json!([2])
    );
    // Taking the chat's role away removes its routes.
    page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/chats/222/role",
        "role_id=",
    )
    .await;
    assert_eq!(
        t.get("/report-routes/units/?chat_id=222&report_type_id=2")
            .await
            .body["unit_ids"],
        json!([])
    );
    // Saving a group's form again (still without a role) keeps the routes its members gave it.
    let body = json!({"report_type_id": 2, "chat_id": -1001, "user_chat_id": 111, "unit_ids": [1]});
    let routed = t.call(Method::POST, "/report-routes/", Some(body)).await;
    assert_eq!(routed.status, 201, "{}", routed.text);
    page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/chats/-1001/role",
        "role_id=",
    )
    .await;
    assert_eq!(
        t.get("/report-routes/units/?chat_id=-1001&report_type_id=2")
            .await
            .body["unit_ids"],
        json!([1])
    );

    // Activate a seeded type with a priority.
    let (status, _) = page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/report-types/3",
        "verbose_name=Улица&parent_id=&priority=20&active=on",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        t.get("/report-types/").await.body["report_types"][0]["name"],
        "STREET_STOP_SALES"
    );

    // A region with units cannot be deleted (the original cascaded to units and routes); the refusal is a page
    // in the reader's language.
    let (status, html) = page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/regions/1/delete",
        "",
    )
    .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("В нём ещё есть подразделения"), "{html}");
    let (_, html) = page(
        &t,
        &format!("{cookie}; lang=en"),
        Method::POST,
        "/admin/directory/regions/1/delete",
        "",
    )
    .await;
    assert!(html.contains("Units still belong to it"), "{html}");
    assert_eq!(
        t.get("/units/").await.body["units"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Operator routes and their removal.
    let (status, _) = page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/routes/",
        "chat_id=-1001&unit_id=4&report_type_id=7",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        t.get("/report-routes/telegram-chats/?unit_id=4&report_type_id=7")
            .await
            .body["chat_ids"],
        json!([-1001])
    );
    let (_, routes) = page(
        &t,
        &cookie,
        Method::GET,
        "/admin/directory/routes/?q=CANCELED",
        "",
    )
    .await;
    let id = between(
        &routes,
        "<td><form method=\"post\" action=\"/admin/directory/routes/",
        "/delete",
    )
    .to_owned();
    page(
        &t,
        &cookie,
        Method::POST,
        &format!("/admin/directory/routes/{id}/delete"),
        "",
    )
    .await;
    assert_eq!(
        t.get("/report-routes/telegram-chats/?unit_id=4&report_type_id=7")
            .await
            .body["chat_ids"],
        json!([])
    );

    // A service token: shown once, then usable from outside the allow-list.
    let (_, html) = page(
        &t,
        &cookie,
        Method::POST,
        "/admin/directory/tokens/",
        "name=router",
    )
    .await;
    let token = between(&html, "<code>", "</code>").to_owned();
    assert!(token.starts_with("tw_") && token.len() == 43, "{token}");
    let (_, later) = page(&t, &cookie, Method::GET, "/admin/directory/tokens/", "").await;
    assert!(!later.contains(&token));
    let with_token = t
        .call_as(
            Method::GET,
            "/units/",
            None,
            "203.0.113.9:1",
            Some(&format!("Bearer {token}")),
        )
        .await;
    assert_eq!(with_token.status, 200);
});

tillwire_testkit::both_backends!(import_upload, |db| async move {
    let t = Harness::new(db).await;
    let cookie = admin_cookie(&t).await;
    let file = r#"{"regions": [{"id": 7, "name": "Казань"}]}"#;
    let body = format!(
        "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.json\"\r\nContent-Type: application/json\r\n\r\n{file}\r\n--XX--\r\n"
    );
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/admin/directory/import")
        .header("cookie", &cookie)
        .header("content-type", "multipart/form-data; boundary=XX")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = t.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let html = String::from_utf8_lossy(
        &axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .into_owned();
    assert!(html.contains("1 regions, 0 departments"), "{html}");
    assert_eq!(
        t.get("/units/regions/").await.body["regions"][2],
        json!({"id": 7, "name": "Казань"})
    );
});
