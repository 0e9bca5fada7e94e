//! The bulk import: idempotent, all or nothing, errors with line and field.

mod common;

use axum::http::Method;
use common::{FIXTURE, Harness, json};
use tillwire_directory::import::import;

async fn snapshot(t: &Harness) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in [
        "units",
        "directory_regions",
        "directory_departments",
        "directory_unit_info",
        "directory_report_types",
        "directory_roles",
        "directory_role_units",
        "directory_role_report_types",
        "directory_chats",
        "directory_routes",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(db).await).unwrap();
        counts.push((table.to_owned(), n));
    }
    let hashes: Vec<(String,)> = tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(
        "SELECT access_code_hash FROM directory_roles ORDER BY id").fetch_all(db).await)
    .unwrap();
    counts.extend(hashes.into_iter().map(|(h,)| (h, 0)));
    counts
}

tillwire_testkit::both_backends!(import_is_idempotent, |db| async move {
    let t = Harness::new(db).await;
    let before = snapshot(&t).await;
    let report = import(&t.platform.store, FIXTURE, "test").await.unwrap();
    assert_eq!(
        report.to_string(),
        "2 regions, 1 departments, 4 units, 5 report types, 2 roles, 3 Telegram chats"
    );
    assert_eq!(snapshot(&t).await, before);
    // Imported ids are explicit; a unit made later (e.g. by the kitchen) gets a fresh one.
    let id = tillwire_units::Units(&t.platform.store)
        .create(&tillwire_units::UnitName::parse("Новая").unwrap())
        .await
        .unwrap();
    assert!(id.0 > 4);
    assert_eq!(
        t.get("/units/").await.body["units"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "one unit table"
    );
});

tillwire_testkit::both_backends!(import_is_all_or_nothing, |db| async move {
    let t = Harness::new(db).await;
    let before = snapshot(&t).await;
    let bad_reference = "{\n  \"regions\": [{\"id\": 9, \"name\": \"Новый\"}],\n  \"departments\": [{\"id\": 9, \"name\": \"Д\"}],\n  \"units\": [\n    {\"id\": 50, \"name\": \"A\", \"uuid\": \"a\", \"region_id\": 9, \"department_id\": 9},\n    {\"id\": 51, \"name\": \"B\", \"uuid\": \"b\", \"region_id\": 8, \"department_id\": 9}\n  ]\n}";
    let error = import(&t.platform.store, bad_reference, "test")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "line 6: units[1].region_id: no region 8 in this file or the directory"
    );
    // A clash with the database is found mid-write; what came before is rolled back.
    let clash = "{\"regions\": [{\"id\": 9, \"name\": \"Новый\"}], \"departments\": [{\"id\": 9, \"name\": \"Д\"}],\n\"units\": [{\"id\": 50, \"name\": \"A\", \"uuid\": \"a\", \"region_id\": 9, \"department_id\": 9},\n {\"id\": 51, \"name\": \"Москва 1-1\", \"uuid\": \"b\", \"region_id\": 9, \"department_id\": 9}]}";
    let error = import(&t.platform.store, clash, "test")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(error, "line 3: units[1].name: already used by another unit");
    let typo = "{\"regions\": [{\"id\": 1, \"nmae\": \"x\"}]}";
    let error = import(&t.platform.store, typo, "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("line 1: unknown field `nmae`"), "{error}");
    let bad_chat = "{\"telegram_chats\": [\n{\"chat_id\": 1, \"type\": \"private\", \"title\": \"x\", \"username\": null, \"role_id\": null}]}";
    let error = import(&t.platform.store, bad_chat, "test")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(error, "line 2: telegram_chats[0].type: PRIVATE or GROUP");
    assert_eq!(snapshot(&t).await, before);
});

tillwire_testkit::both_backends!(reimport_keeps_the_routes_members_made, |db| async move {
    let t = Harness::new(db).await;
    // Eldos (role 1) routes stop-sales of two of his units to the group, and to himself.
    for chat_id in [-1001, 111] {
        let body = json!({"report_type_id": 2, "chat_id": chat_id, "user_chat_id": 111, "unit_ids": [1, 2]});
        let created = t.call(Method::POST, "/report-routes/", Some(body)).await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let before = snapshot(&t).await;
    import(&t.platform.store, FIXTURE, "test").await.unwrap();
    assert_eq!(snapshot(&t).await, before, "a re-import changes nothing");
    let group = t
        .get("/report-routes/units/?chat_id=-1001&report_type_id=2")
        .await;
    assert_eq!(group.body["unit_ids"], json!([1, 2]), "{}", group.text);

    // A role change in the file prunes that chat's own routes, as the API's PATCH does: role 2 grants unit 4 only.
    let moved = FIXTURE.replace(
        r#""title": "Eldos", "username": "eldos", "role_id": 1"#,
        r#""title": "Eldos", "username": "eldos", "role_id": 2"#,
    );
    assert_ne!(moved, FIXTURE);
    import(&t.platform.store, &moved, "test").await.unwrap();
    let own = t
        .get("/report-routes/units/?chat_id=111&report_type_id=2")
        .await;
    assert_eq!(own.body["unit_ids"], json!([]), "{}", own.text);
    let group = t
        .get("/report-routes/units/?chat_id=-1001&report_type_id=2")
        .await;
    assert_eq!(
        group.body["unit_ids"],
        json!([1, 2]),
        "the group keeps its routes"
    );
});

tillwire_testkit::both_backends!(
    import_may_refer_to_what_the_directory_has,
    |db| async move {
        let t = Harness::new(db).await;
        // New units of region 1 and department 4 (both imported earlier), a role over an old and a new unit, and a
        // chat with an existing role.
        let growth = r#"{
  "units": [{"id": 60, "name": "Москва 1-9", "uuid": "u-60", "region_id": 1, "department_id": 4}],
  "roles": [{"id": 3, "name": "Growth", "access_code": "secret-three", "unit_ids": [1, 60], "report_type_ids": [7]}],
  "telegram_chats": [{"chat_id": 333, "type": "PRIVATE", "title": "New", "username": null, "role_id": 2}]
}"#;
        let report = import(&t.platform.store, growth, "test").await.unwrap();
        assert_eq!(
            report.to_string(),
            "0 regions, 0 departments, 1 units, 0 report types, 1 roles, 1 Telegram chats"
        );
        let unit = t.get("/units/name/Москва%201-9/").await;
        assert_eq!(unit.body["region"], "Москва 1", "{}", unit.text);
        let missing = r#"{"units": [{"id": 61, "name": "X", "uuid": "u-61", "region_id": 77, "department_id": 4}]}"#;
        let error = import(&t.platform.store, missing, "test")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 1: units[0].region_id: no region 77 in this file or the directory"
        );
    }
);

tillwire_testkit::both_backends!(an_access_code_opens_one_role, |db| async move {
    let t = Harness::new(db).await;
    let before = snapshot(&t).await;
    let twice = "{\"roles\": [\n{\"id\": 5, \"name\": \"A\", \"access_code\": \"same\"},\n{\"id\": 6, \"name\": \"B\", \"access_code\": \"same\"}]}";
    let error = import(&t.platform.store, twice, "test")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "line 3: roles[1].access_code: the same code as role 5"
    );
    // "secret-one" is role 1's code (stored hashed).
    let taken = r#"{"roles": [{"id": 5, "name": "A", "access_code": "secret-one"}]}"#;
    let error = import(&t.platform.store, taken, "test")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "line 1: roles[0].access_code: already the code of role 1"
    );
    assert_eq!(snapshot(&t).await, before);
    // Role 1 may keep its own code when the file lists it again, and another role may take a code role 1 gives up.
    let swap = r#"{"roles": [{"id": 1, "name": "Manager", "access_code": "fresh", "unit_ids": [1, 2, 3], "report_type_ids": [1, 2, 3, 10]},
        {"id": 5, "name": "A", "access_code": "secret-one"}]}"#;
    import(&t.platform.store, swap, "test").await.unwrap();
});
