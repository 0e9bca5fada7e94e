//! A small area that exists only here plugs into the platform the way every real area does: its migration, its
//! routes with their access (a session page guarded by CSRF, a credential route that is not), its navigation
//! entries on the platform's own pages, a typed job, its settings section, its seed step and a background task.
//! Nothing of the platform is edited for it.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tillwire_platform::area::{self, SettingsSection};
use tillwire_platform::auth::{NewPassword, SESSION_COOKIE, Sessions, Username, Users};
use tillwire_platform::config::{ConfigError, EnvVar, Overrides, Sources};
use tillwire_platform::jobs::{Attempt, BackgroundJob, JobFailure};
use tillwire_platform::web::NavLink;
use tillwire_platform::{
    Access, Answer, Area, CurrentUser, Migration, Platform, Role, Settings, Store,
};
use tillwire_platform::{read, write};
use tillwire_testkit::TestDatabase;
use tillwire_testkit::reqwest::{self, StatusCode};

const PATIENCE: Duration = Duration::from_secs(60);

/// A note written by the area's job.
#[derive(Debug, Serialize, Deserialize)]
struct WriteNote {
    text: String,
}

impl BackgroundJob for WriteNote {
    const QUEUE: &'static str = "probe.note";
    const MAX_ATTEMPTS: i64 = 3;

    fn key(&self) -> String {
        "probe".into()
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ProbeSettings {
    greeting: String,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            greeting: "hello".into(),
        }
    }
}

fn probe_settings(settings: &Settings) -> Result<ProbeSettings, ConfigError> {
    let probe: ProbeSettings = settings.section("probe")?;
    if probe.greeting.trim().is_empty() {
        return Err(settings.invalid("probe.greeting", "must not be empty"));
    }
    Ok(probe)
}

async fn insert_note(store: &Store, text: &str) -> Result<(), sqlx::Error> {
    write!(store, db => sqlx::query("INSERT INTO probe_notes (text) VALUES ($1)")
        .bind(text)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

async fn notes(store: &Store) -> Vec<String> {
    let rows: Vec<(String,)> =
        read!(store, db => sqlx::query_as("SELECT text FROM probe_notes ORDER BY id")
        .fetch_all(db)
        .await)
        .expect("read notes");
    rows.into_iter().map(|(text,)| text).collect()
}

async fn boom() -> &'static str {
    panic!("the probe exploded")
}

static PROBE: Area = Area {
    name: "probe",
    migrations: &[Migration {
        area: "probe",
        version: 1,
        sqlite: "CREATE TABLE probe_notes (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL);",
        postgres: "CREATE TABLE probe_notes (id BIGSERIAL PRIMARY KEY, text TEXT NOT NULL);",
    }],
    main_nav: &[NavLink::to("/probe/", "Проба", "Probe")],
    admin_nav: &[NavLink::to(
        "/admin/probe/",
        "Пробная область",
        "Probe area",
    )],
    settings: Some(SettingsSection {
        name: "probe",
        env: &[EnvVar::text("probe.greeting", &["TILLWIRE_PROBE_GREETING"])],
        check: |settings| probe_settings(settings).map(|_| ()),
    }),
    seed: Some(|platform| {
        Box::pin(async move {
            if notes(&platform.store).await.is_empty() {
                insert_note(&platform.store, "seeded").await?;
            }
            Ok(())
        })
    }),
    build: |assembly| {
        let platform = assembly.platform.clone();
        let greeting = probe_settings(&platform.settings)?.greeting;
        // A signed-in page that changes something: CSRF applies.
        assembly.routes(
            Access::Session,
            Answer::Page,
            Router::new()
                .route(
                    "/probe/",
                    get(move |_: CurrentUser| async move { greeting }),
                )
                .route("/probe/touch", post(|_: CurrentUser| async { "touched" }))
                .route("/probe/boom", get(boom))
                .with_state(platform.clone()),
        );
        // A device route: no session, no CSRF; it enqueues a job.
        assembly.routes(
            Access::Credential,
            Answer::Json,
            Router::new()
                .route(
                    "/probe/notes",
                    post(
                        |State(platform): State<Platform>, text: String| async move {
                            match platform.jobs.enqueue(&WriteNote { text }.to_job()).await {
                                Ok(_) => StatusCode::ACCEPTED,
                                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                            }
                        },
                    ),
                )
                .route("/probe/api/boom", get(boom))
                .with_state(platform.clone()),
        );
        let store = platform.store.clone();
        assembly
            .jobs()
            .register(move |note: WriteNote, _: Attempt| {
                let store = store.clone();
                async move {
                    insert_note(&store, &note.text)
                        .await
                        .map_err(|e| JobFailure::Retry(e.to_string()))
                }
            });
        let store = platform.store.clone();
        assembly.task("probe heartbeat", |mut shutdown| async move {
            insert_note(&store, "heartbeat").await?;
            shutdown.wait().await;
            Ok(())
        });
        Ok(())
    },
    ..Area::NONE
};

const AREAS: &[&Area] = &[&tillwire_platform::AREA, &PROBE];

fn settings_with(db: &TestDatabase, greeting: &str) -> Settings {
    let mut settings = Settings::for_database(db.url());
    settings.set("probe.greeting", greeting);
    settings
}

tillwire_testkit::both_backends!(a_test_only_area_plugs_in, |db| async move {
    let mut settings = settings_with(&db, "привет");
    // The first admin's password is written there.
    let data = tempfile::tempdir().expect("a data directory");
    settings.data_dir = data.path().to_owned();
    area::check_settings(AREAS, &settings).expect("the probe's settings are fine");
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&area::migrations(AREAS))
        .await
        .expect("migrations of the platform and the probe");
    let platform = Platform::new(store, settings);
    area::seed(AREAS, &platform, false).await.expect("seed");
    assert_eq!(
        notes(&platform.store).await,
        ["seeded"],
        "the seed step ran"
    );

    let app = area::assemble(AREAS, &platform).expect("assemble");
    let (base, server) = tillwire_testkit::serve_router(app.router).await;
    let (stop, shutdown) = area::Shutdown::channel();
    let runner = tokio::spawn(platform.jobs.clone().run(app.jobs, 2, {
        let mut shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    }));
    let tasks: Vec<_> = app
        .tasks
        .into_iter()
        .map(|(_, task)| tokio::spawn(task(shutdown.clone())))
        .collect();
    let client = reqwest::Client::new();

    // The navigation of the platform's own pages lists the probe's entries.
    let login = client
        .get(format!("{base}/users/login/"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    assert!(
        login.contains(r#"href="/probe/""#) && login.contains("Проба"),
        "{login}"
    );

    // A signed-in admin sees the probe's page and the probe's admin entry.
    let password = NewPassword::parse("correct horse battery").expect("password");
    let user = Users(&platform.store)
        .create(
            &Username::parse("probe-admin").expect("name"),
            &password,
            Role::Admin,
        )
        .await
        .expect("user");
    let token = Sessions(&platform.store)
        .start(user, std::time::Duration::from_secs(3600))
        .await
        .expect("session");
    let cookie = format!("{SESSION_COOKIE}={token}");
    let page = client
        .get(format!("{base}/probe/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("probe page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.text().await.expect("body"),
        "привет",
        "its settings section reached it"
    );
    let admin = client
        .get(format!("{base}/admin/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("admin index")
        .text()
        .await
        .expect("body");
    assert!(
        admin.contains(r#"href="/admin/probe/""#) && admin.contains("Пробная область"),
        "{admin}"
    );

    // Session routes are guarded by CSRF; credential routes ignore the session cookie and need no token.
    let touch = client
        .post(format!("{base}/probe/touch"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("touch");
    assert_eq!(
        touch.status(),
        StatusCode::FORBIDDEN,
        "no CSRF token, refused"
    );
    let posted = client
        .post(format!("{base}/probe/notes"))
        .header("cookie", &cookie)
        .body("from a device")
        .send()
        .await
        .expect("post a note");
    assert_eq!(posted.status(), StatusCode::ACCEPTED);

    // The probe's job ran through the platform's runner, and its background task left its trace.
    tokio::time::timeout(PATIENCE, async {
        while notes(&platform.store).await.len() < 3 {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the note job and the task ran");
    let mut written = notes(&platform.store).await;
    assert!(
        written.contains(&"heartbeat".to_owned()),
        "the background task ran: {written:?}"
    );
    written.retain(|note| note != "heartbeat");
    assert_eq!(written, ["seeded", "from a device"]);

    // A panicking handler answers 500 as its route answers errors, and the server goes on.
    let page = client
        .get(format!("{base}/probe/boom"))
        .header("cookie", "lang=ru")
        .send()
        .await
        .expect("boom page");
    assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = page
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    let html = page.text().await.expect("body");
    assert!(
        html.contains("<html") && html.contains("Внутренняя ошибка") && html.contains(&id),
        "an error page in Russian naming the request: {html}"
    );
    assert!(
        !html.contains("the probe exploded"),
        "the panic stays in the log"
    );
    let api = client
        .get(format!("{base}/probe/api/boom"))
        .send()
        .await
        .expect("boom api");
    assert_eq!(api.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = api
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    assert_eq!(
        api.json::<serde_json::Value>().await.expect("JSON"),
        serde_json::json!({
            "error": format!("Внутренняя ошибка. Номер запроса: {id}"),
            "code": "internal",
            "fields": {}
        })
    );

    // Its unknown paths get the platform's 404 page, in the reader's language.
    let missing = client
        .get(format!("{base}/probe/nothing-here"))
        .header("cookie", "lang=en")
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let html = missing.text().await.expect("body");
    assert!(html.contains("There is no such page."), "{html}");

    let _ = stop.send(true);
    runner.await.expect("runner stops");
    for task in tasks {
        task.await.expect("task").expect("task ends well");
    }
    server.abort();
});

#[test]
fn the_areas_settings_come_through_every_layer_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tillwire.toml");
    let load = |toml: &str, environment: &[(&str, &str)]| {
        std::fs::write(&file, toml).expect("write tillwire.toml");
        Settings::load(Sources {
            flags: Overrides {
                config_file: Some(file.clone()),
                ..Overrides::default()
            },
            environment: environment
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv: None,
            variables: area::variables(AREAS),
        })
        .expect("loads")
    };
    // The file's section, then the area's own variable above it.
    let settings = load("[probe]\ngreeting = \"из файла\"\n", &[]);
    area::check_settings(AREAS, &settings).expect("fine");
    assert_eq!(
        probe_settings(&settings).expect("probe").greeting,
        "из файла"
    );
    let settings = load(
        "[probe]\ngreeting = \"из файла\"\n",
        &[("TILLWIRE_PROBE_GREETING", "из окружения")],
    );
    assert_eq!(
        probe_settings(&settings).expect("probe").greeting,
        "из окружения"
    );

    // A value the area refuses: the message names the setting and where it came from.
    let settings = load("[probe]\ngreeting = \"  \"\n", &[]);
    let error = area::check_settings(AREAS, &settings)
        .expect_err("refused")
        .to_string();
    assert!(
        error.starts_with("setting probe.greeting (") && error.contains("tillwire.toml"),
        "{error}"
    );
    assert!(error.ends_with("must not be empty"), "{error}");
    // A value of the wrong type: figment's message names the key and the variable.
    let settings = load("", &[("TILLWIRE_PROBE_GREETING", "")]);
    area::check_settings(AREAS, &settings).expect("an empty variable is unset");
    let settings = load("[probe]\ngreeting = 5\n", &[]);
    let error = area::check_settings(AREAS, &settings)
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("probe.greeting") && error.contains("tillwire.toml"),
        "{error}"
    );

    // A table no area reads is a typo, refused.
    let settings = load("[prbe]\ngreeting = \"hi\"\n", &[]);
    let error = area::check_settings(AREAS, &settings)
        .expect_err("refused")
        .to_string();
    assert!(error.contains("\"prbe\""), "{error}");
}
