//! The bulk import: idempotent, all or nothing, errors with line and field.

mod common;

use common::{FIXTURE, Harness};
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
        "line 6: units[1].region_id: no region 8 in this file"
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
