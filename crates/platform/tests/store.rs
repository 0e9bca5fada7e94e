//! Migrations apply whole or not at all: a failing one leaves the schema as it was, named in the error.

use tillwire_platform::{Migration, Store, read};

const BROKEN: &[Migration] = &[
    Migration {
        area: "probe",
        version: 1,
        sqlite: "CREATE TABLE probe_first (id BIGINT);",
        postgres: "CREATE TABLE probe_first (id BIGINT);",
    },
    Migration {
        area: "probe",
        version: 2,
        sqlite: "CREATE TABLE probe_second (id BIGINT REFERENCES nowhere_at_all (id)); SELECT * FROM nowhere_at_all;",
        postgres: "CREATE TABLE probe_second (id BIGINT REFERENCES nowhere_at_all (id));",
    },
];

tillwire_testkit::both_backends!(an_upgrade_applies_whole_or_not_at_all, |db| async move {
    let store = Store::connect(db.url()).await.expect("connect");
    let fresh = store
        .migrate(&[tillwire_platform::MIGRATIONS])
        .await
        .expect("the platform's schema");
    assert_eq!(fresh, tillwire_platform::MIGRATIONS.len());
    let error = store
        .migrate(&[tillwire_platform::MIGRATIONS, BROKEN])
        .await
        .expect_err("the second migration fails")
        .to_string();
    assert!(error.contains("probe") && error.contains('2'), "{error}");
    let probe: Vec<(i64,)> = read!(&store, db => sqlx::query_as(
        "SELECT version FROM schema_migrations WHERE area = 'probe'",
    )
    .fetch_all(db)
    .await)
    .expect("ledger");
    assert!(
        probe.is_empty(),
        "nothing of the failed upgrade is recorded"
    );
    let first: Result<Vec<(i64,)>, sqlx::Error> =
        read!(&store, db => sqlx::query_as("SELECT id FROM probe_first").fetch_all(db).await);
    assert!(
        first.is_err(),
        "the first migration of the failed upgrade was rolled back"
    );
    // Applied again without the broken one: only what is missing runs.
    assert_eq!(
        store
            .migrate(&[tillwire_platform::MIGRATIONS, &BROKEN[..1]])
            .await
            .expect("the good part"),
        1
    );
});
