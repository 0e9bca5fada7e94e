//! The monitor's pages in the real binary, as a signed-in person uses them: registers managed on the admin page
//! (field errors, duplicates, registers declared in tillwire.toml kept as declared), a chain of 2,000 registers
//! filtered and paged on the server, and on a register's page: weighing on demand, a maintenance window, and
//! acknowledging an incident; in both languages.

mod common;

use std::time::Duration;

use common::eventually;
use tillwire_monitor::health::Health;
use tillwire_monitor::sim::{Fault, Simulator};
use tillwire_monitor::storage::{NewRegister, Registers, States};
use tillwire_monitor::{BaseUrl, Kind, RegisterName};
use tillwire_platform::Store;
use tillwire_testkit::reqwest::{Client, StatusCode};
use tillwire_testkit::{Backend, ServerProcess, TestDatabase, http_client, login};

const LIMIT: Duration = Duration::from_secs(60);
/// Tiles on one page of the live page.
const TILES_PER_PAGE: usize = 48;

struct Session {
    server: ServerProcess,
    client: Client,
    csrf: String,
    store: Store,
    _dir: tempfile::TempDir,
}

impl Session {
    async fn start(db: &TestDatabase, settings: &str) -> Session {
        let dir = common::data_dir();
        let config = dir.path().join("tillwire.toml");
        std::fs::write(&config, settings).expect("tillwire.toml");
        let data = dir.path().join("data");
        let server = common::serve_with_config(db.url(), &data, &config, false, &[]).await;
        let client = http_client();
        let username = common::admin_username(&server.output());
        let csrf = login(
            &client,
            &server.base_url(),
            &username,
            &common::admin_password(&server),
        )
        .await;
        let store = Store::connect(db.url()).await.expect("connect");
        Session {
            server,
            client,
            csrf,
            store,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.server.base_url()))
            .send()
            .await
            .expect("GET");
        (response.status(), response.text().await.expect("body"))
    }

    async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Posts a form the way the page's script does (asking for JSON errors); the status and body.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        let response = self
            .client
            .post(format!("{}{path}", self.server.base_url()))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .expect("POST");
        (response.status(), response.text().await.expect("body"))
    }
}

fn field_error(body: &str, field: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error: {body}"));
    json["fields"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no error for {field}: {body}"))
        .to_owned()
}

async fn registers_are_managed_on_the_admin_page(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let session = Session::start(
        &db,
        "[[monitor.register]]\nname = \"Касса из файла\"\nurl = \"http://10.9.9.9:8080/\"\n",
    )
    .await;
    let unit = tillwire_units::Units(&session.store)
        .default_unit()
        .await
        .expect("units")
        .expect("default unit")
        .id
        .to_string();
    let (status, _) = session
        .post(
            "/admin/monitor/",
            &[
                ("unit", &unit),
                ("name", "Касса 1"),
                ("url", "http://10.1.16.11:8080"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = session
        .post(
            "/admin/monitor/",
            &[
                ("unit", &unit),
                ("name", "Касса 2"),
                ("url", "10.1.16.12"),
                ("timezone", "Mars/Base"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(field_error(&body, "url").contains("URL"), "{body}");
    assert!(
        field_error(&body, "timezone").contains("Mars/Base"),
        "{body}"
    );
    let (status, body) = session
        .post(
            "/admin/monitor/",
            &[
                ("unit", &unit),
                ("name", "Касса 1"),
                ("url", "http://10.1.16.13/"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("Касса 1"), "{body}");

    let registers = Registers(session.store.clone())
        .list()
        .await
        .expect("registers");
    let added = registers
        .iter()
        .find(|r| r.name == "Касса 1")
        .expect("added");
    assert_eq!(added.url, "http://10.1.16.11:8080/");
    let declared = registers
        .iter()
        .find(|r| r.name == "Касса из файла")
        .expect("declared");
    assert!(declared.declared);
    let page = session.page("/admin/monitor/").await;
    assert!(page.contains("Касса из файла") && page.contains("http://10.1.16.11:8080/"));

    // Its own thresholds, a zone and a region; an out-of-range threshold is refused with its field.
    let path = format!("/admin/monitor/registers/{}", added.id);
    let (status, body) = session
        .post(
            &path,
            &[
                ("unit", &unit),
                ("name", "Касса 1"),
                ("url", "http://10.1.16.11:8080/"),
                ("ofd_backlog", "0"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!field_error(&body, "ofd_backlog").is_empty());
    let (status, _) = session
        .post(
            &path,
            &[
                ("unit", &unit),
                ("name", "Касса 1"),
                ("url", "http://10.1.16.11:8080/"),
                ("timezone", "Asia/Yekaterinburg"),
                ("region", "Урал"),
                ("ofd_backlog", "50"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let changed = Registers(session.store.clone())
        .get(added.register_id())
        .await
        .expect("register");
    assert_eq!(
        (
            changed.timezone.as_deref(),
            changed.region.as_str(),
            changed.overrides().ofd_backlog
        ),
        (Some("Asia/Yekaterinburg"), "Урал", Some(50))
    );
    // The register page shows what applies: 50 from the register, the rest the chain's.
    let page = session
        .page(&format!("/monitor/registers/{}", added.id))
        .await;
    assert!(
        page.contains("<td>50</td>") && page.contains("Asia/Yekaterinburg"),
        "{page}"
    );

    // The declared one cannot be moved or deleted from the page.
    let declared_path = format!("/admin/monitor/registers/{}", declared.id);
    let (status, body) = session
        .post(
            &declared_path,
            &[
                ("unit", &unit),
                ("name", "Касса из файла"),
                ("url", "http://10.9.9.10/"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Its thresholds and whether it is polled are the page's to change.
    let (status, body) = session
        .post(
            &declared_path,
            &[
                ("unit", &unit),
                ("name", "Касса из файла"),
                ("url", "http://10.9.9.9:8080/"),
                ("no_paper_polls", "4"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let changed = Registers(session.store.clone())
        .get(declared.register_id())
        .await
        .expect("declared");
    assert_eq!(
        (changed.enabled, changed.overrides().no_paper_polls),
        (false, Some(4))
    );
    let (status, _) = session.post(&format!("{declared_path}/delete"), &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = session.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let names: Vec<String> = Registers(session.store.clone())
        .list()
        .await
        .expect("registers")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["Касса из файла".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_are_managed_on_the_admin_page_sqlite() {
    registers_are_managed_on_the_admin_page(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_are_managed_on_the_admin_page_postgres() {
    registers_are_managed_on_the_admin_page(Backend::Postgres).await;
}

async fn a_chain_of_2000_registers_is_filtered_and_paged(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    // Polling off for this test: the registers' addresses lead nowhere.
    let session = Session::start(&db, "").await;
    let unit = tillwire_units::Units(&session.store)
        .default_unit()
        .await
        .expect("units")
        .expect("default unit")
        .id;
    let registers = Registers(session.store.clone());
    let mut down = Vec::new();
    for n in 0..2000 {
        let id = registers
            .create(&NewRegister {
                unit_id: unit,
                name: RegisterName::parse(&format!("К{n:04}")).expect("name"),
                url: BaseUrl::parse(&format!("http://192.0.2.1:8080/{n}/")).expect("url"),
                zone: None,
                region: if n % 2 == 0 { "Север" } else { "Юг" }.into(),
                // Disabled, so the poller leaves them alone and the stored states stay as set here.
                enabled: false,
                overrides: Default::default(),
            })
            .await
            .expect("register");
        if n % 200 == 7 {
            down.push(id);
        }
    }
    let offline = Health {
        up: Some(false),
        open: [Kind::Offline].into(),
        ..Health::default()
    };
    let states: Vec<_> = down.iter().map(|id| (*id, offline.clone())).collect();
    States(session.store.clone())
        .save(&states, &[])
        .await
        .expect("states");

    let tiles = |page: &str| page.matches("class=\"tile ").count();
    let page = session.page("/monitor/").await;
    assert_eq!(tiles(&page), TILES_PER_PAGE);
    assert!(page.contains("Показано касс: 2000"), "the count");
    assert_eq!(
        page.matches("<a href=\"/monitor/?page=").count(),
        2000_usize.div_ceil(TILES_PER_PAGE) - 1
    );
    // Problems come first: the ten unreachable registers open the first page (shown as not polled, since they are
    // disabled, but sorted by their stored state).
    let first_ten: Vec<String> = page
        .match_indices("id=\"register-")
        .take(10)
        .map(|(i, _)| {
            page[i + 13..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = down.iter().map(|id| id.to_string()).collect();
    assert_eq!(first_ten, expected);
    let only_down = session.page("/monitor/?only=down").await;
    assert_eq!(tiles(&only_down), 10);
    let north = session
        .page("/monitor/?region=%D0%A1%D0%B5%D0%B2%D0%B5%D1%80&page=21")
        .await;
    assert!(north.contains("Показано касс: 1000"));
    assert_eq!(tiles(&north), 1000 - 20 * TILES_PER_PAGE);
    let kind = session.page("/monitor/?kind=offline&only=problems").await;
    assert_eq!(tiles(&kind), 10);
    // A stale bookmark still opens the page.
    let stale = session
        .page("/monitor/?unit=abc&kind=nonsense&page=-3")
        .await;
    assert_eq!(tiles(&stale), TILES_PER_PAGE);
    // In English too.
    session.get("/lang/en").await;
    let english = session.page("/monitor/?only=down").await;
    assert!(
        english.contains("Registers shown: 10") && english.contains("Unreachable"),
        "English page"
    );
    assert!(
        !english.contains("Нет связи"),
        "no Russian left on the English page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_2000_registers_is_filtered_and_paged_sqlite() {
    a_chain_of_2000_registers_is_filtered_and_paged(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_2000_registers_is_filtered_and_paged_postgres() {
    a_chain_of_2000_registers_is_filtered_and_paged(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_page_weighs_on_demand_keeps_maintenance_and_acknowledges() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sim = Simulator::new(1, chrono_tz::UTC);
    let base = sim.serve_on_loopback().await.expect("serve the simulator");
    let session = Session::start(
        &db,
        &format!(
            "[monitor]\nstatus_every_secs = 1\ndetails_every_secs = 2\n[[monitor.register]]\nname = \"Касса 1\"\nurl = \"{base}/r/1/\"\n"
        ),
    )
    .await;
    let id = Registers(session.store.clone())
        .list()
        .await
        .expect("registers")[0]
        .id;
    let page_path = format!("/monitor/registers/{id}");
    sim.update(1, |state, _| state.weight = 1.25);
    eventually("the register polled", LIMIT, || async {
        if sim.requests(1) > 0 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let (status, _) = session.post(&format!("{page_path}/weigh"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually("the weight shown", LIMIT, || async {
        let page = session.page(&page_path).await;
        if page.contains("1.250 кг") {
            Ok(())
        } else {
            Err("no weight yet".to_owned())
        }
    })
    .await;

    // A maintenance window: listed, and nothing opens while it lasts.
    let (status, _) = session
        .post(
            &format!("{page_path}/maintenance"),
            &[("minutes", "30"), ("reason", "замена принтера")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = session
        .post(&format!("{page_path}/maintenance"), &[("minutes", "0")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!field_error(&body, "minutes").is_empty());
    let page = session.page(&page_path).await;
    assert!(page.contains("замена принтера"));
    sim.set_fault(1, Fault::Drop);
    let asked = sim.requests(1);
    eventually("five polls in maintenance", LIMIT, || async {
        if sim.requests(1) >= asked + 5 {
            Ok(())
        } else {
            Err("polling".to_owned())
        }
    })
    .await;
    let opened: Vec<(i64,)> = tillwire_platform::read!(&session.store, db => sqlx::query_as(
        "SELECT id FROM monitor_incidents",
    )
    .fetch_all(db)
    .await)
    .expect("incidents");
    assert!(
        opened.is_empty(),
        "nothing opens in maintenance: {opened:?}"
    );
    let window = page
        .split("/monitor/maintenance/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the window's end form")
        .to_owned();
    let (status, _) = session
        .post(
            &format!("/monitor/maintenance/{window}/end"),
            &[("back", &page_path)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The window ended: the register is still down, so the incident opens; acknowledge it from the page.
    let incident = eventually("the incident opened", LIMIT, || async {
        let page = session.page(&page_path).await;
        page.split("/monitor/incidents/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
            .ok_or_else(|| "no incident yet".to_owned())
    })
    .await;
    let (status, _) = session
        .post(
            &format!("/monitor/incidents/{incident}/acknowledge"),
            &[("back", &page_path)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = session.page(&page_path).await;
    assert!(page.contains("admin, "), "acknowledged by the admin");
    session.get("/lang/en").await;
    let english = session.page(&page_path).await;
    assert!(
        english.contains("Offline") && english.contains("Acknowledged"),
        "English register page"
    );
    assert!(english.contains("<svg class=\"history\""));
}
