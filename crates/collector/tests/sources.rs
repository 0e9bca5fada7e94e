//! Registers added, changed and removed on `/admin/collector/sources/` while the in-process collector runs: the
//! page behind the session and CSRF, pickup without a restart (only the affected task restarts, keeping its
//! cursor), and a password that is sealed at rest and never sent back.

mod common;

use tillwire_kitchen::Kitchen;
use tillwire_platform::auth::{NewPassword, Username, Users};
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{Platform, Role, area, read};
use tillwire_testkit::reqwest::{Client, StatusCode};
use tillwire_testkit::{Purchase, SetRetailDatabase, TestDatabase, eventually, http_client, login};

const PIZZA: &str = "48566";
const ADMIN: &str = "boss";
const ADMIN_PASSWORD: &str = "correct horse battery";
const SECRET: &str = "register-password-6d1f9";
const NEW_SECRET: &str = "changed-password-0c44e";
const SOURCES: &str = "/admin/collector/sources/";

struct App {
    base: String,
    client: Client,
    csrf: String,
    platform: Platform,
    /// Every response body the test saw, to check none carries the password.
    seen: std::sync::Mutex<String>,
    _data_dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

/// The app, with `collector` as tillwire.toml's `[collector]` table.
async fn app(db: &TestDatabase, collector: &str) -> (App, Kitchen) {
    let data_dir = tempfile::tempdir().expect("data dir");
    let platform = common::demo_platform(db, |settings| {
        settings.data_dir = data_dir.path().to_owned();
        settings.set(
            "collector",
            toml::from_str::<toml::Table>(collector).expect("[collector]"),
        );
    })
    .await;
    Users(&platform.store)
        .create(
            &Username::parse(ADMIN).expect("username"),
            &NewPassword::parse(ADMIN_PASSWORD).expect("password"),
            Role::Admin,
        )
        .await
        .expect("admin");
    // The kitchen's pages too: the login helper lands on its operator screen. The collector's own task is not
    // started: each test starts what it needs.
    let built = area::assemble(
        &[
            &tillwire_platform::AREA,
            &tillwire_units::AREA,
            &tillwire_kitchen::AREA,
            &tillwire_collector::AREA,
        ],
        &platform,
    )
    .expect("assemble the areas");
    let kitchen: Kitchen = built.service().expect("the kitchen");
    let router = built.router;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    let client = http_client();
    let csrf = login(&client, &base, ADMIN, ADMIN_PASSWORD).await;
    let app = App {
        base,
        client,
        csrf,
        platform: platform.clone(),
        seen: Default::default(),
        _data_dir: data_dir,
        _server: server,
    };
    (app, kitchen)
}

impl App {
    async fn get(&self, path: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let body = response.text().await.expect("body");
        self.seen.lock().expect("seen").push_str(&body);
        body
    }

    /// Posts a form (with the session's CSRF token unless `csrf` is false) and returns the status.
    async fn post(&self, path: &str, fields: &[(&'static str, String)], csrf: bool) -> StatusCode {
        let mut form = fields.to_vec();
        if csrf {
            form.push(("csrf", self.csrf.clone()));
        }
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        let body = response.text().await.expect("body");
        self.seen.lock().expect("seen").push_str(&body);
        status
    }

    async fn sources(&self) -> Vec<(i64, String, String, String)> {
        read!(&self.platform.store, db => sqlx::query_as(
            "SELECT id, database_name, password_sealed, COALESCE(custom_sql, '') FROM collector_sources ORDER BY id",
        )
        .fetch_all(db)
        .await)
        .expect("sources")
    }

    async fn pizzas(&self) -> Vec<(i64, f64)> {
        read!(&self.platform.store, db => sqlx::query_as(
            "SELECT r.number, l.quantity FROM orders o JOIN cash_registers r ON r.id = o.cash_register_id
             JOIN order_lines l ON l.order_id = o.id AND l.code = $1 ORDER BY o.id",
        )
        .bind(PIZZA)
        .fetch_all(db)
        .await)
        .expect("orders")
    }

    async fn cursor_updated(&self, database: &str) -> Option<i64> {
        let rows: Vec<(String, i64)> = read!(&self.platform.store, db => sqlx::query_as(
            "SELECT source, updated_ms FROM collector_cursors").fetch_all(db).await)
        .expect("cursors");
        rows.into_iter()
            .find(|(source, _)| source.ends_with(&format!("/{database}")))
            .map(|(_, updated)| updated)
    }
}

/// The collector's open connections to `register` (their backend pids).
async fn collector_connections(register: &SetRetailDatabase) -> Vec<i32> {
    let mut connection = register.connect().await;
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tillwire-collector'",
    )
    .bind(register.database())
    .fetch_all(&mut connection)
    .await
    .expect("pg_stat_activity")
}

/// A sale committed now (a register added on the page starts at the start of the current day).
fn sale_now(id: i64, pizzas: i64) -> Purchase {
    let commit = chrono::Utc::now().naive_utc() + chrono::TimeDelta::milliseconds(id);
    Purchase::sale(
        id,
        1,
        id,
        &commit.to_string(),
        &[(PIZZA, pizzas * 1000, 1.0)],
    )
}

/// The page's form for `register`.
fn form(
    register: &SetRetailDatabase,
    password: &'static str,
    timer: &'static str,
) -> Vec<(&'static str, String)> {
    vec![
        ("sql_server", register.server()),
        ("sql_database", register.database()),
        ("sql_login", register.login()),
        ("sql_password", password.to_owned()),
        ("sql", String::new()),
        ("timer", timer.to_owned()),
    ]
}

fn state_of(register: &SetRetailDatabase) -> Option<tillwire_collector::status::RegisterState> {
    tillwire_collector::status::snapshot()
        .into_iter()
        .find(|s| s.source.ends_with(&format!("/{}", register.database())))
}

tillwire_testkit::both_backends!(sources_are_managed_on_the_admin_pages, |db| async move {
    let (app, kitchen) = app(&db, "").await;
    let collectors = tillwire_collector::start_in_process(&kitchen)
        .await
        .expect("start");
    let (a, b) = (
        SetRetailDatabase::new().await,
        SetRetailDatabase::new().await,
    );
    a.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
    b.open_shift(1, 2, 1, "2024-05-01 08:00:00").await;
    a.insert(&[sale_now(1, 1)]).await;
    b.insert(&[sale_now(1, 2)]).await;
    let page = app.get(SOURCES).await;
    assert!(
        page.contains(r#"action="/admin/collector/sources/""#),
        "{page}"
    );

    // Behind the session's CSRF token; checked like main.json.
    assert_eq!(
        app.post(SOURCES, &form(&a, SECRET, "0.2"), false).await,
        StatusCode::FORBIDDEN
    );
    let mut bad = form(&a, SECRET, "0.2");
    bad[0].1 = "127.0.0.1:x".into();
    assert_eq!(
        app.post(SOURCES, &bad, true).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(app.sources().await.is_empty());

    // Added: collected at once, no restart.
    assert_eq!(
        app.post(SOURCES, &form(&a, SECRET, "0.2"), true).await,
        StatusCode::SEE_OTHER
    );
    eventually("register a's sale", || async {
        app.pizzas().await == vec![(1, 1.0)]
    })
    .await;
    assert_eq!(
        app.post(SOURCES, &form(&b, SECRET, "0.2"), true).await,
        StatusCode::SEE_OTHER
    );
    eventually("register b's sale", || async {
        app.pizzas().await.len() == 2
    })
    .await;
    assert_eq!(
        app.post(SOURCES, &form(&b, SECRET, "0.2"), true).await,
        StatusCode::CONFLICT,
        "one unit, one register database, once"
    );

    // Sealed at rest.
    let secret_box = SecretBox::load(&app.platform.settings.data_dir).expect("the key");
    let stored = app.sources().await;
    assert_eq!(stored.len(), 2);
    for (_, _, sealed, _) in &stored {
        assert!(!sealed.contains(SECRET));
        assert_eq!(secret_box.open(sealed).expect("opens").expose(), SECRET);
    }
    let (b_id, b_sealed) = (stored[1].0, stored[1].2.clone());

    // Changed (timer, password left empty = kept): only b's task restarts, from its cursor.
    let (a_pids, b_pids) = (
        collector_connections(&a).await,
        collector_connections(&b).await,
    );
    assert_eq!((a_pids.len(), b_pids.len()), (1, 1), "one connection each");
    let b_cursor = app.cursor_updated(&b.database()).await.expect("b's cursor");
    assert_eq!(
        app.post(&format!("{SOURCES}{b_id}"), &form(&b, "", "0.3"), true)
            .await,
        StatusCode::SEE_OTHER
    );
    eventually("b's task to reconnect", || async {
        let now = collector_connections(&b).await;
        now.len() == 1 && now != b_pids
    })
    .await;
    let reconnected = tillwire_platform::now_ms();
    eventually("an idle pass of b's new task", || async {
        state_of(&b).is_some_and(|s| s.last_success_ms.is_some_and(|ms| ms > reconnected))
    })
    .await;
    assert_eq!(
        collector_connections(&a).await,
        a_pids,
        "a's task was left alone"
    );
    assert_eq!(
        app.cursor_updated(&b.database()).await,
        Some(b_cursor),
        "b's task started from its cursor: nothing re-sent"
    );
    assert_eq!(app.sources().await[1].2, b_sealed, "the password was kept");
    b.insert(&[sale_now(2, 3)]).await;
    eventually("b's next sale", || async { app.pizzas().await.len() == 3 }).await;

    // A new password is sealed anew.
    assert_eq!(
        app.post(
            &format!("{SOURCES}{b_id}"),
            &form(&b, NEW_SECRET, "0.3"),
            true
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let sealed = app.sources().await[1].2.clone();
    assert_ne!(sealed, b_sealed);
    assert_eq!(
        secret_box.open(&sealed).expect("opens").expose(),
        NEW_SECRET
    );

    // Removed: its task stops and its row leaves the state page.
    let a_id = stored[0].0;
    assert!(app.get("/admin/collector/").await.contains(&a.database()));
    assert_eq!(
        app.post(&format!("{SOURCES}{a_id}/delete"), &[], true)
            .await,
        StatusCode::SEE_OTHER
    );
    eventually("a's task to stop", || async {
        collector_connections(&a).await.is_empty()
    })
    .await;
    // The task forgets its row on the state page as it ends, a moment after its connections close.
    eventually("a's row to leave the state page", || async {
        !app.get("/admin/collector/").await.contains(&a.database())
    })
    .await;
    assert_eq!(
        app.post(&format!("{SOURCES}{a_id}/delete"), &[], true)
            .await,
        StatusCode::NOT_FOUND
    );

    // The password is never sent back, nor stored in plain text anywhere in the table.
    let page = app.get(SOURCES).await;
    assert!(
        page.contains(&b.database()) && !page.contains(&a.database()),
        "{page}"
    );
    let seen = app.seen.lock().expect("seen").clone();
    assert!(!seen.contains(SECRET) && !seen.contains(NEW_SECRET));
    let dump: Vec<(String,)> = read!(&app.platform.store, db => sqlx::query_as(
        "SELECT host || port || database_name || login || password_sealed || COALESCE(custom_sql, '') FROM collector_sources")
        .fetch_all(db).await)
    .expect("dump");
    assert!(
        dump.iter()
            .all(|(row,)| !row.contains(SECRET) && !row.contains(NEW_SECRET))
    );
    collectors.stop().await;
    assert_eq!(app.pizzas().await.len(), 3, "nothing twice");
});

tillwire_testkit::both_backends!(
    a_register_tillwire_toml_lists_is_not_collected_twice,
    |db| async move {
        let (a, b) = (
            SetRetailDatabase::new().await,
            SetRetailDatabase::new().await,
        );
        a.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        b.open_shift(1, 2, 1, "2024-05-01 08:00:00").await;
        a.insert(&[sale_now(1, 1)]).await;
        b.insert(&[sale_now(1, 2)]).await;
        let toml = format!(
            "[[setretail]]\ntimer = 0.2\ncashes = [{{ sql_server = \"{}\", sql_database = \"{}\", sql_login = \"{}\" }}]",
            a.server(),
            a.database(),
            a.login()
        );
        let (app, kitchen) = app(&db, &toml).await;
        let collectors = tillwire_collector::start_in_process(&kitchen)
            .await
            .expect("start");
        eventually("tillwire.toml's register", || async {
            app.pizzas().await == vec![(1, 1.0)]
        })
        .await;
        assert_eq!(
            app.post(SOURCES, &form(&a, SECRET, "0.2"), true).await,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            app.post(SOURCES, &form(&b, SECRET, "0.2"), true).await,
            StatusCode::SEE_OTHER
        );
        // b's task starts from a reload that also saw a's row, so a's fate is decided by then.
        eventually("the page's register", || async {
            app.pizzas().await.len() == 2
        })
        .await;
        assert_eq!(
            collector_connections(&a).await.len(),
            1,
            "one task for a: tillwire.toml's"
        );
        a.insert(&[sale_now(2, 3)]).await;
        eventually("a's next sale", || async { app.pizzas().await.len() == 3 }).await;
        collectors.stop().await;
        assert_eq!(
            app.pizzas().await,
            vec![(1, 1.0), (2, 2.0), (1, 3.0)],
            "nothing twice"
        );
    }
);

/// `(id, reason, retry requested, parked at)` of every parked receipt.
async fn parked(app: &App) -> Vec<(i64, String, bool, i64)> {
    tillwire_collector::Parked(app.platform.store.clone())
        .list()
        .await
        .expect("parked")
        .into_iter()
        .map(|row| (row.id, row.reason, row.retry_requested, row.parked_ms))
        .collect()
}

tillwire_testkit::both_backends!(
    a_receipt_refused_for_good_is_parked_then_retried_or_skipped,
    |db| async move {
        let (app, kitchen) = app(&db, "").await;
        let collectors = tillwire_collector::start_in_process(&kitchen)
            .await
            .expect("start");
        let register = SetRetailDatabase::new().await;
        // Register 9 is not set up in the unit: its receipts are refused whatever the collector does.
        register.open_shift(1, 9, 1, "2024-05-01 08:00:00").await;
        register.open_shift(2, 1, 1, "2024-05-01 08:00:00").await;
        let mut unknown = sale_now(1, 1);
        unknown.shift = 1;
        let mut also_unknown = sale_now(2, 2);
        also_unknown.shift = 1;
        let mut known = sale_now(3, 3);
        known.shift = 2;
        register.insert(&[unknown, also_unknown, known]).await;
        assert_eq!(
            app.post(SOURCES, &form(&register, SECRET, "0.2"), true)
                .await,
            StatusCode::SEE_OTHER
        );
        // The register moves on: the sale after the refused ones arrives.
        eventually("the known register's sale", || async {
            app.pizzas().await == vec![(1, 3.0)]
        })
        .await;
        let found = parked(&app).await;
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].1.contains("register 9 is not set up"), "{found:?}");
        let page = app.get("/admin/collector/").await;
        assert!(page.contains("register 9 is not set up"), "{page}");
        assert!(page.contains(&format!("/admin/collector/parked/{}/retry", found[0].0)));
        assert!(page.contains("data-confirm"), "skipping asks first");

        // Retried before the cause is fixed: refused again, parked again, waiting for the next retry.
        let (first, second) = (found[0].0, found[1].0);
        let retry = format!("/admin/collector/parked/{first}/retry");
        assert_eq!(app.post(&retry, &[], false).await, StatusCode::FORBIDDEN);
        assert_eq!(app.post(&retry, &[], true).await, StatusCode::SEE_OTHER);
        let parked_at = found[0].3;
        eventually("the retry to be refused again", || async {
            parked(&app)
                .await
                .iter()
                .any(|(id, _, asked, at)| *id == first && !asked && *at > parked_at)
        })
        .await;
        assert_eq!(app.pizzas().await.len(), 1);

        // The cause fixed (register 9 set up), the retry delivers it; the other one is skipped.
        let unit = tillwire_units::Units(&app.platform.store)
            .default_unit()
            .await
            .expect("units")
            .expect("default unit");
        tillwire_platform::write!(&app.platform.store, db => sqlx::query(
            "INSERT INTO cash_registers (unit_id, number, name, created_ms) VALUES ($1, 9, 'Касса 9', 0)")
            .bind(unit.id).execute(db).await.map(|_| ()))
        .expect("register 9");
        assert_eq!(app.post(&retry, &[], true).await, StatusCode::SEE_OTHER);
        eventually("the retried receipt's order", || async {
            app.pizzas().await.contains(&(9, 1.0))
        })
        .await;
        let skip = format!("/admin/collector/parked/{second}/skip");
        assert_eq!(app.post(&skip, &[], true).await, StatusCode::SEE_OTHER);
        assert!(parked(&app).await.is_empty());
        assert_eq!(
            app.post(&skip, &[], true).await,
            StatusCode::NOT_FOUND,
            "skipped once"
        );
        // Nothing comes back on later passes: the skipped sale was delivered as far as the register goes.
        let before = tillwire_platform::now_ms();
        eventually("an idle pass", || async {
            state_of(&register).is_some_and(|s| s.last_success_ms.is_some_and(|ms| ms > before))
        })
        .await;
        let mut found = app.pizzas().await;
        found.sort_by(|a, b| a.1.total_cmp(&b.1));
        assert_eq!(found, vec![(9, 1.0), (1, 3.0)]);
        assert!(parked(&app).await.is_empty());
        collectors.stop().await;
    }
);
