//! `tillwire monitor import FILE.csv` as an operator runs it: a good file adds its registers and says how many,
//! the same file again changes nothing, a changed line updates one; a bad file reports every problem by line and
//! field, exits non-zero and writes nothing.

mod common;

use std::process::Stdio;

use tillwire_testkit::TestDatabase;
use tillwire_units::{UnitName, Units};

const BIN: &str = env!("CARGO_BIN_EXE_tillwire");

/// `tillwire args…` against the test database: whether it succeeded, and what it printed.
async fn run(database_url: &str, data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .env("TILLWIRE_DATABASE_URL", database_url)
        .env("TILLWIRE_DATA_DIR", data)
        .env_remove("TILLWIRE_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run tillwire");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn registers(db: &TestDatabase) -> Vec<(i64, i64)> {
    common::query_pairs(db, "SELECT id, unit_id FROM monitor_registers ORDER BY id").await
}

const GOOD: &str = "unit,name,url,timezone\n\
                    ,Касса 1,http://10.1.16.11:8080,\n\
                    ,Касса 2,http://10.1.16.12:8080/,Asia/Yekaterinburg\n\
                    Москва 1-1,Касса 1,https://k1.local/ukm,Europe/Moscow\n";

const BAD: &str = "unit,name,url,timezone\n\
                   ,Касса 3,http://10.1.16.13:8080,\n\
                   Нигде,Касса 4,http://k/,\n\
                   ,Касса 5,10.1.16.15,Mars/Base\n\
                   ,,http://k/,\n\
                   ,Касса 3,http://k/,\n";

tillwire_testkit::both_backends!(registers_import_from_csv, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output) = run(db.url(), dir.path(), &["init"]).await;
    assert!(ok, "{output}");
    // A second unit for the file to name.
    let store = tillwire_platform::Store::connect(db.url()).await.unwrap();
    Units(&store)
        .create(&UnitName::parse("Москва 1-1").unwrap())
        .await
        .unwrap();
    store.close().await;

    let good = dir.path().join("registers.csv");
    std::fs::write(&good, GOOD).unwrap();
    let good = good.to_str().unwrap();
    let (ok, output) = run(db.url(), dir.path(), &["monitor", "import", good]).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("3 added, 0 updated, 0 unchanged"),
        "{output}"
    );
    let first = registers(&db).await;
    assert_eq!(first.len(), 3);

    // Idempotent: the same file again changes nothing.
    let (ok, output) = run(db.url(), dir.path(), &["monitor", "import", good]).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("0 added, 0 updated, 3 unchanged"),
        "{output}"
    );
    assert_eq!(registers(&db).await, first);

    // One line changed (the region column too): one update, the same rows.
    let changed = dir.path().join("changed.csv");
    std::fs::write(
        &changed,
        "unit,name,url,timezone,region\n\
         ,Касса 1,http://10.1.16.11:8080,,\n\
         ,Касса 2,http://10.1.16.12:8080/,Asia/Yekaterinburg,\n\
         Москва 1-1,Касса 1,https://k1.local/ukm,Europe/Moscow,Москва\n",
    )
    .unwrap();
    let (ok, output) = run(
        db.url(),
        dir.path(),
        &["monitor", "import", changed.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{output}");
    assert!(
        output.contains("0 added, 1 updated, 2 unchanged"),
        "{output}"
    );
    assert_eq!(registers(&db).await, first);

    // A bad file: every problem reported, non-zero exit, nothing written (not even its good first line).
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, BAD).unwrap();
    let (ok, output) = run(
        db.url(),
        dir.path(),
        &["monitor", "import", bad.to_str().unwrap()],
    )
    .await;
    assert!(!ok, "{output}");
    for expected in [
        "line 3, unit: no unit named \"Нигде\"",
        "line 4, url: ",
        "line 4, timezone: Unknown time zone \"Mars/Base\"",
        "line 5, name: Name the register.",
        "line 6, name: \"Касса 3\" is listed for unit",
        "5 problem(s); nothing was imported",
    ] {
        assert!(output.contains(expected), "{expected:?} in:\n{output}");
    }
    assert!(!output.contains("line 2,"), "{output}");
    assert_eq!(registers(&db).await, first);
});
