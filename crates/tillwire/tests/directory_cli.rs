//! `tillwire migrate`, then `tillwire directory import`, then `tillwire serve`: the directory lists exactly the
//! imported units (no default unit is created next to them), and the kitchen sees the same units. Unknown
//! directory paths answer the JSON envelope.

mod common;

use std::process::Stdio;

use tillwire_testkit::{ServerProcess, http_client};

const BIN: &str = env!("CARGO_BIN_EXE_tillwire");

const FILE: &str = r#"{
  "regions": [{"id": 1, "name": "Москва 1"}],
  "departments": [{"id": 4, "name": "Подольск", "uuid": "d4"}],
  "units": [
    {"id": 1398, "name": "Подольск-3", "uuid": "220ece1a-f30a-9f46-11ed-4958027557a6", "region_id": 1, "department_id": 4},
    {"id": 1400, "name": "Москва 4-9", "uuid": "u-1400", "region_id": 1, "department_id": 4}
  ]
}"#;

/// `tillwire args…` against `database_url`, its data directory `data`.
async fn run(database_url: &str, data: &std::path::Path, args: &[&str]) -> String {
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
    assert!(output.status.success(), "tillwire {args:?}: {text}");
    text
}

tillwire_testkit::both_backends!(imported_units_leave_no_default_unit, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("directory.json");
    std::fs::write(&file, FILE).unwrap();
    run(db.url(), dir.path(), &["migrate"]).await;
    let imported = run(
        db.url(),
        dir.path(),
        &["directory", "import", file.to_str().unwrap()],
    )
    .await;
    assert!(
        imported.contains("Imported 1 regions, 1 departments, 2 units"),
        "{imported}"
    );
    run(
        db.url(),
        dir.path(),
        &["directory", "import", file.to_str().unwrap()],
    )
    .await;
    let data = dir.path().to_str().expect("UTF-8 path");
    let server = ServerProcess::start(
        BIN,
        &[],
        &[
            ("TILLWIRE_DATABASE_URL", db.url()),
            ("TILLWIRE_DATA_DIR", data),
        ],
    )
    .await;
    let units: serde_json::Value = http_client()
        .get(format!("{}/api/units/", server.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = units["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Подольск-3", "Москва 4-9"]);
    let statistics = http_client()
        .get(format!(
            "{}/report-types/names/STATISTICS/",
            server.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        statistics.status(),
        404,
        "seeded report types start inactive"
    );

    // The kitchen's unit admin lists the same units.
    // (The operator screen at `/` asks which unit when there are several, so sign in without visiting it.)
    let admin = http_client();
    let signed_in = admin
        .post(format!("{}/users/login/", server.base_url()))
        .form(&[
            ("username", common::admin_username(&server.output())),
            ("password", common::admin_password(&server)),
            ("next", "/admin/units/".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let kitchen_units = admin
        .get(format!("{}/admin/units/", server.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["Подольск-3", "Москва 4-9"] {
        assert!(kitchen_units.contains(name), "{name} not on /admin/units/");
    }

    // The screens of a chain ask which unit, with a search; a picked unit's screen opens.
    let base = server.base_url();
    let page = |client: tillwire_testkit::reqwest::Client, path: String| async move {
        let reply = client.get(path).send().await.unwrap();
        (reply.status().as_u16(), reply.text().await.unwrap())
    };
    for path in ["/", "/kitchen/", "/dashboard/"] {
        let (status, picker) = page(admin.clone(), format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}: {picker}");
        assert!(
            picker.contains("Выберите подразделение"),
            "{path}: {picker}"
        );
        for (id, name) in [(1398, "Подольск-3"), (1400, "Москва 4-9")] {
            assert!(
                picker.contains(&format!(r#"href="{path}?unit={id}">{name}</a>"#)),
                "{path} does not offer {name}: {picker}"
            );
        }
        let (_, found) = page(admin.clone(), format!("{base}{path}?q=моск")).await;
        assert!(
            found.contains("Москва 4-9") && !found.contains("Подольск-3"),
            "{found}"
        );
        let (status, screen) = page(admin.clone(), format!("{base}{path}?unit=1400")).await;
        assert_eq!(status, 200, "{path}?unit=1400: {screen}");
        assert!(!screen.contains("Выберите подразделение"), "{screen}");
    }
    // The board is public: its picker is too.
    let (status, picker) = page(http_client(), format!("{base}/dashboard/")).await;
    assert_eq!(status, 200);
    assert!(picker.contains("Москва 4-9"), "{picker}");

    // Unknown paths of the directory's sections answer its JSON envelope, as its clients expect.
    for path in [
        "/units/nope/",
        "/roles/",
        "/api/nothing/",
        "/telegram-chats/111/x/y",
    ] {
        let reply = http_client()
            .get(format!("{}{path}", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 404, "{path}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "Страница не найдена.", "extra": {}}),
            "{path}"
        );
    }
    let elsewhere = http_client()
        .get(format!("{}/no-such-page", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
});
