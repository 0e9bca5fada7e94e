//! `tillwire collect setretail --config main.json` (ELQ's format) against a real `tillwire serve` and a real Set
//! Retail register database: sales arrive once, in commit order, across a restart of the collector.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{
    BIN, DEVICE_KEY, data_dir, eventually, query_pairs, serve, serve_on_port, serve_with_config,
};
use tillwire_testkit::{Purchase, SetRetailDatabase, TestDatabase};

const PIZZA: &str = "48566";
const LIMIT: Duration = Duration::from_secs(90);
const PASSWORD: &str = "register-password-never-shown";

fn sale(id: i64, commit: &str, pizzas: i64) -> Purchase {
    Purchase::sale(id, 1, id, commit, &[(PIZZA, pizzas * 1000, 1.0)])
}

/// Starts the collector in the background, with `extra` arguments; its output goes to `log`.
fn collect(main_json: &Path, state: &Path, log: &Path, extra: &[&str]) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("collector log");
    tokio::process::Command::new(BIN)
        .args(["collect", "setretail", "--config"])
        .arg(main_json)
        .arg("--data-dir")
        .arg(state)
        .args(["--lookback-hours", "87600", "--batch", "2"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("TILLWIRE_CONFIG")
        .env_remove("TILLWIRE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tillwire collect")
}

/// ELQ's main.json in `dir`: one register, posting to `server`'s import endpoint.
fn write_main_json(
    dir: &Path,
    server: &tillwire_testkit::ServerProcess,
    register: &SetRetailDatabase,
) -> std::path::PathBuf {
    let main_json = dir.join("main.json");
    std::fs::write(
        &main_json,
        serde_json::json!({
            "api": format!("{}/devices/import_receipt/", server.base_url()),
            "api_key": DEVICE_KEY,
            "timer": 0.2,
            "cashes": [{"sql_server": register.server(), "sql_database": register.database(),
                        "sql_login": register.login(), "sql_password": PASSWORD, "sql": ""}],
        })
        .to_string(),
    )
    .expect("write main.json");
    main_json
}

async fn pizzas(db: &TestDatabase) -> Vec<(i64, i64)> {
    query_pairs(
        db,
        "SELECT o.id, CAST(l.quantity AS BIGINT) FROM orders o JOIN order_lines l ON l.order_id = o.id
         WHERE l.code = '48566' ORDER BY o.id",
    )
    .await
}

async fn wait_for(db: &TestDatabase, count: usize) {
    eventually(&format!("{count} orders"), LIMIT, || async {
        let found = pizzas(db).await;
        if found.len() >= count {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    })
    .await;
}

tillwire_testkit::both_backends!(collects_from_elq_main_json_over_http, |db| async move {
    let register = SetRetailDatabase::new().await;
    register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
    let mut returned = sale(3, "2024-05-01 10:00:03", 9);
    returned.operationtype = false;
    register
        .insert(&[
            sale(2, "2024-05-01 10:00:02", 2),
            returned,
            sale(1, "2024-05-01 10:00:05", 1),
        ])
        .await;
    let dir = data_dir();
    let server = serve(&db, dir.path(), &[("API_KEY", DEVICE_KEY)]).await;
    let main_json = write_main_json(dir.path(), &server, &register);
    let state = dir.path().join("collector");
    let log = dir.path().join("collector.log");

    let metrics_listen = format!("127.0.0.1:{}", tillwire_testkit::free_port());
    let mut collector = collect(
        &main_json,
        &state,
        &log,
        &["--metrics-listen", &metrics_listen],
    );
    wait_for(&db, 2).await;
    // Its state on SIGUSR1, and Prometheus metrics on the side listener.
    let source = format!("{}/{}", register.server(), register.database());
    let pid = collector.id().expect("running").to_string();
    eventually("the state line", LIMIT, || async {
        std::process::Command::new("kill")
            .args(["-USR1", &pid])
            .status()
            .expect("kill -USR1");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let wanted = format!("register {source}: delivered 2, lag ");
        match output.lines().find(|line| line.starts_with(&wanted)) {
            Some(line) if line.contains("backlog 0, parked 0, last success") => Ok(()),
            _ => Err(output),
        }
    })
    .await;
    let metrics = tillwire_testkit::http_client()
        .get(format!("http://{metrics_listen}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics");
    assert_eq!(
        sample(&metrics, "tillwire_collector_receipts_total", &source),
        Some(2.0),
        "{metrics}"
    );
    collector.kill().await.expect("stop the collector");

    // Sold while the collector was down.
    register
        .insert(&[
            sale(4, "2024-05-01 10:00:06", 3),
            sale(5, "2024-05-01 10:00:07", 4),
        ])
        .await;
    let mut collector = collect(&main_json, &state, &log, &[]);
    wait_for(&db, 4).await;
    collector.kill().await.expect("stop the collector");

    let counts: Vec<i64> = pizzas(&db).await.iter().map(|(_, q)| *q).collect();
    assert_eq!(
        counts,
        vec![2, 1, 3, 4],
        "commit order, returns left out, nothing twice"
    );
    let output = std::fs::read_to_string(&log).expect("collector log");
    assert!(!output.contains(PASSWORD), "the password leaked: {output}");
    drop(server);
});

tillwire_testkit::both_backends!(
    serve_down_for_a_while_loses_nothing_and_repeats_nothing,
    |db| async move {
        let register = SetRetailDatabase::new().await;
        register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        register.insert(&[sale(1, "2024-05-01 10:00:00", 1)]).await;
        let dir = data_dir();
        let mut server = serve(&db, dir.path(), &[("API_KEY", DEVICE_KEY)]).await;
        let main_json = write_main_json(dir.path(), &server, &register);
        let log = dir.path().join("collector.log");
        let mut collector = collect(&main_json, &dir.path().join("collector"), &log, &[]);
        wait_for(&db, 1).await;

        // tillwire crashes; the registers keep selling, the collector keeps running.
        server.kill9();
        register.insert(&[sale(3, "2024-05-01 10:01:00", 2)]).await;
        eventually("the collector to notice", LIMIT, || async {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            if output.contains("receipt not accepted") {
                Ok(())
            } else {
                Err(output)
            }
        })
        .await;
        // Committed while tillwire is down, ids out of commit order.
        register
            .insert(&[
                sale(2, "2024-05-01 10:02:00", 3),
                sale(5, "2024-05-01 10:03:00", 4),
                sale(4, "2024-05-01 10:03:30", 5),
            ])
            .await;
        register.insert(&[sale(6, "2024-05-01 10:04:00", 6)]).await;

        // Back on the same database and port.
        let server =
            serve_on_port(&db, dir.path(), server.port(), &[("API_KEY", DEVICE_KEY)]).await;
        wait_for(&db, 6).await;
        // Delivery is in commit order: once a later sale is in, every retry before it is over.
        register.insert(&[sale(7, "2024-05-01 10:05:00", 7)]).await;
        wait_for(&db, 7).await;
        collector.kill().await.expect("stop the collector");
        let counts: Vec<i64> = pizzas(&db).await.iter().map(|(_, q)| *q).collect();
        assert_eq!(
            counts,
            vec![1, 2, 3, 4, 5, 6, 7],
            "every sale once, in commit order"
        );
        drop(server);
    }
);

#[tokio::test]
async fn an_unknown_main_json_key_is_named() {
    let dir = data_dir();
    let main_json = dir.path().join("main.json");
    std::fs::write(
        &main_json,
        r#"{"api": "http://127.0.0.1:9/devices/import_receipt/", "cashes": [{"sql_server": "10.1.16.11", "sql_port": 5433}]}"#,
    )
    .expect("write main.json");
    let output = tokio::time::timeout(
        LIMIT,
        tokio::process::Command::new(BIN)
            .args(["collect", "setretail", "--config"])
            .arg(&main_json)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("TILLWIRE_CONFIG")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits")
    .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `sql_port`"), "{stderr}");
    assert!(stderr.contains("main.json"), "{stderr}");
}

/// The `<tr>` of the admin page's table that shows `source`.
fn row_of<'a>(page: &'a str, source: &str) -> &'a str {
    let cell = format!("<td>{source}</td>");
    let start = page
        .find(&cell)
        .unwrap_or_else(|| panic!("no row for {source}: {page}"));
    let end = page[start..]
        .find("</tr>")
        .map_or(page.len(), |e| start + e);
    &page[start..end]
}

/// The value of the Prometheus sample `name{register="source"}`.
fn sample(metrics: &str, name: &str, source: &str) -> Option<f64> {
    let prefix = format!("{name}{{register=\"{source}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

tillwire_testkit::both_backends!(
    serve_collects_in_process_and_shows_each_register,
    |db| async move {
        let (register, down) = (
            SetRetailDatabase::new().await,
            SetRetailDatabase::new().await,
        );
        down.take_down().await;
        // The shift opened the day before; the sale after midnight belongs to the new business day.
        register.open_shift(1, 1, 1, "2024-05-01 20:00:00").await;
        register
            .insert(&[
                sale(1, "2024-05-01 23:59:00", 1),
                sale(2, "2024-05-02 00:01:00", 2),
            ])
            .await;
        let dir = data_dir();
        let settings = dir.path().join("tillwire.toml");
        let cash = |r: &SetRetailDatabase| {
            format!(
                "{{ sql_server = \"{}\", sql_database = \"{}\", sql_login = \"{}\", sql_password = \"{PASSWORD}\" }}",
                r.server(),
                r.database(),
                r.login()
            )
        };
        std::fs::write(
            &settings,
            format!(
                "[[collector.setretail]]\nlookback_hours = 87600\ntimer = 0.2\ncashes = [{}, {}]\n",
                cash(&register),
                cash(&down)
            ),
        )
        .expect("write tillwire.toml");
        let server = serve_with_config(
            db.url(),
            dir.path(),
            &settings,
            true,
            &[
                ("TILLWIRE_DAY_ROLLOVER_HOUR", "0"),
                ("TILLWIRE_TIMEZONE", "UTC"),
                ("API_KEY", ""),
            ],
        )
        .await;
        wait_for(&db, 2).await;
        let days = query_pairs(
        &db,
        "SELECT CAST(l.quantity AS BIGINT), CAST(REPLACE(o.business_day, '-', '') AS BIGINT) FROM orders o
         JOIN order_lines l ON l.order_id = o.id ORDER BY o.id",
    )
    .await;
        assert_eq!(
            days,
            vec![(1, 20240501), (2, 20240502)],
            "filed under the day of the sale"
        );

        let client = tillwire_testkit::http_client();
        let username = common::admin_username(&server.output());
        tillwire_testkit::login(
            &client,
            &server.base_url(),
            &username,
            &common::admin_password(&server),
        )
        .await;
        let (up_name, down_name) = (
            format!("{}/{}", register.server(), register.database()),
            format!("{}/{}", down.server(), down.database()),
        );
        let (page, metrics) = eventually("both registers' state", LIMIT, || async {
            let get = |path: &str| {
                let request = client.get(format!("{}{path}", server.base_url()));
                async move {
                    request
                        .send()
                        .await
                        .expect("GET")
                        .text()
                        .await
                        .expect("text")
                }
            };
            let (page, metrics) = (get("/admin/collector/").await, get("/metrics").await);
            let down_seen = sample(&metrics, "tillwire_collector_up", &down_name) == Some(0.0);
            if down_seen && row_of(&page, &down_name).contains("pill danger") {
                Ok((page, metrics))
            } else {
                Err(page)
            }
        })
        .await;
        let up_row = row_of(&page, &up_name);
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert!(
            up_row.contains(&format!("<td>{today} ")),
            "last success: {up_row}"
        );
        assert!(up_row.contains(" s</td>"), "lag: {up_row}");
        assert!(!up_row.contains("pill danger"), "no error: {up_row}");
        let down_row = row_of(&page, &down_name);
        assert!(
            down_row.contains("cannot connect"),
            "last error: {down_row}"
        );
        assert!(
            down_row.contains("<td>—</td>"),
            "never succeeded: {down_row}"
        );
        assert!(!page.contains(PASSWORD));

        assert_eq!(
            sample(&metrics, "tillwire_collector_up", &up_name),
            Some(1.0)
        );
        assert_eq!(
            sample(&metrics, "tillwire_collector_receipts_total", &up_name),
            Some(2.0)
        );
        assert_eq!(
            sample(&metrics, "tillwire_collector_backlog", &up_name),
            Some(0.0)
        );
        let last_success = sample(
            &metrics,
            "tillwire_collector_last_success_seconds",
            &up_name,
        )
        .expect("last success");
        assert!(last_success > 1.7e9, "a Unix time: {last_success}");
        let lag = sample(&metrics, "tillwire_collector_lag_seconds", &up_name).expect("lag");
        assert!(lag > 0.0, "the 2024 sales are old: {lag}");
        assert!(
            sample(&metrics, "tillwire_collector_errors_total", &down_name)
                .is_some_and(|n| n >= 1.0)
        );
        assert_eq!(
            sample(
                &metrics,
                "tillwire_collector_last_success_seconds",
                &down_name
            ),
            None
        );
        assert!(!server.output().contains(PASSWORD));
    }
);

/// Two `tillwire serve` instances on one PostgreSQL, both configured with the same register: one reads it, the
/// other stands by; the reader is killed with SIGKILL and the other takes the register over (within its lease,
/// about 25 s), delivering what was sold meanwhile, every sale once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_register_and_one_takes_over_when_the_other_dies() {
    let db = TestDatabase::new(tillwire_testkit::Backend::Postgres).await;
    let register = SetRetailDatabase::new().await;
    register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
    register
        .insert(&[
            sale(1, "2024-05-01 10:00:01", 1),
            sale(2, "2024-05-01 10:00:02", 2),
        ])
        .await;
    let dir = data_dir();
    let settings = dir.path().join("tillwire.toml");
    std::fs::write(
        &settings,
        format!(
            "[[collector.setretail]]\nlookback_hours = 87600\ntimer = 0.2\ncashes = [{{ sql_server = \"{}\", sql_database = \"{}\", sql_login = \"{}\" }}]\n",
            register.server(),
            register.database(),
            register.login()
        ),
    )
    .expect("write tillwire.toml");
    let start = |name: &str| {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let (settings, url) = (settings.clone(), db.url().to_owned());
        async move { serve_with_config(&url, &data, &settings, true, &[("RUST_LOG", "info")]).await }
    };
    let mut first = start("first").await;
    wait_for(&db, 2).await;
    let second = start("second").await;
    let source = format!("{}/{}", register.server(), register.database());
    let owned = |server: &tillwire_testkit::ServerProcess| {
        let url = format!("{}/metrics", server.base_url());
        let source = source.clone();
        async move {
            let metrics = tillwire_testkit::http_client()
                .get(url)
                .send()
                .await
                .expect("GET /metrics")
                .text()
                .await
                .expect("metrics");
            sample(&metrics, "tillwire_collector_owned", &source)
        }
    };
    eventually("the second instance to stand by", LIMIT, || async {
        let owned = owned(&second).await;
        if owned == Some(0.0) {
            Ok(())
        } else {
            Err(format!("{owned:?}"))
        }
    })
    .await;
    assert_eq!(owned(&first).await, Some(1.0), "the first one reads it");
    register.insert(&[sale(3, "2024-05-01 10:00:03", 3)]).await;
    wait_for(&db, 3).await;

    first.kill9();
    let killed = std::time::Instant::now();
    register
        .insert(&[
            sale(4, "2024-05-01 10:00:04", 4),
            sale(5, "2024-05-01 10:00:05", 5),
        ])
        .await;
    wait_for(&db, 5).await;
    println!(
        "the second instance took the register over {:.1} s after the first was killed",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(owned(&second).await, Some(1.0));
    register.insert(&[sale(6, "2024-05-01 10:00:06", 6)]).await;
    wait_for(&db, 6).await;
    let counts: Vec<i64> = pizzas(&db).await.iter().map(|(_, q)| *q).collect();
    assert_eq!(counts, vec![1, 2, 3, 4, 5, 6], "every sale once, in order");
    assert!(
        second.output().contains("reading the register"),
        "{}",
        second.output()
    );
}
