//! What the iiko area's tests share: tillwire with the kitchen and the iiko area on a real database and a
//! loopback socket, its job runner working, and an iikoCloud simulator it is connected to.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;
use tillwire_iiko::Iiko;
use tillwire_iiko::sim::cloud::CloudSim;
use tillwire_kitchen::Kitchen;
use tillwire_kitchen::model::OrderView;
use tillwire_platform::area::Shutdown;
use tillwire_platform::{Area, Platform, Settings, Store, area, read};
use tillwire_testkit::TestDatabase;

pub const AREAS: [&Area; 4] = [
    &tillwire_platform::AREA,
    &tillwire_units::AREA,
    &tillwire_kitchen::AREA,
    &tillwire_iiko::AREA,
];

pub const ORG: &str = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9";
pub const TERMINAL: &str = "4fab19a5-203c-4bf5-94eb-f572aa8b117b";
pub const TABLE: &str = "0e5d3a4c-1b2f-4c6d-8e9f-a0b1c2d3e4f5";
pub const WEBHOOK_TOKEN: &str = "webhook-secret-0123456789";
pub const API_LOGIN: &str = "tillwire-test-login";

/// iiko products and the demo wares they are mapped to by the settings file.
pub const PIZZA: &str = "11111111-1111-4111-8111-111111111111"; // → 48566, Пиццерия
pub const SALAD: &str = "22222222-2222-4222-8222-222222222222"; // → 12356, Салаты
pub const LEMONADE: &str = "33333333-3333-4333-8333-333333333333"; // not a production ware
pub const PIZZA_WARE: &str = "48566";
pub const SALAD_WARE: &str = "12356";

pub struct App {
    pub base_url: String,
    pub platform: Platform,
    pub kitchen: Kitchen,
    pub iiko: Iiko,
    pub sim: CloudSim,
    pub sim_url: String,
    pub client: reqwest::Client,
    _stop: tokio::sync::watch::Sender<bool>,
    _data: tempfile::TempDir,
    _server: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A simulated organization with one terminal group in `zone`, a table and three products.
pub async fn simulator(zone: &str) -> (CloudSim, String) {
    let (sim, url) = CloudSim::start().await;
    sim.add_api_login(API_LOGIN);
    sim.add_organization(ORG, "Кафе 1");
    sim.add_terminal_group(ORG, TERMINAL, "Основная группа", zone);
    sim.add_table(ORG, TABLE, 5);
    sim.add_product(ORG, PIZZA, "P-1", "Пицца 4 сыра", "590.50");
    sim.add_product(ORG, SALAD, "S-1", "Оливье", "280.10");
    sim.add_product(ORG, LEMONADE, "L-1", "Лимонад", "150");
    (sim, url)
}

impl App {
    pub async fn start(db: &TestDatabase) -> App {
        Self::start_with(db, "Russian Standard Time", |_| {}).await
    }

    pub async fn start_with(
        db: &TestDatabase,
        zone: &str,
        configure: impl FnOnce(&mut Settings),
    ) -> App {
        let (sim, sim_url) = simulator(zone).await;
        let store = Store::connect(db.url()).await.expect("connect");
        store
            .migrate(&area::migrations(&AREAS))
            .await
            .expect("migrate");
        let data = tempfile::tempdir().expect("data dir");
        let mut settings = Settings::for_database(db.url());
        settings.data_dir = data.path().to_owned();
        settings.set(
            "iiko",
            json!({
                "cloud": [{
                    "api_url": sim_url,
                    "api_login": API_LOGIN,
                    "organization_id": ORG,
                    "webhook_token": WEBHOOK_TOKEN,
                    "tables": [TABLE],
                    "products": {PIZZA: PIZZA_WARE, SALAD: SALAD_WARE},
                }]
            }),
        );
        configure(&mut settings);
        let platform = Platform::new(store, settings);
        tillwire_kitchen::seed::init(&platform).await.expect("seed");
        tillwire_kitchen::seed::load_demo(&platform)
            .await
            .expect("demo wares");
        let built = area::assemble(&AREAS, &platform).expect("assemble");
        let kitchen: Kitchen = built.service().expect("kitchen");
        let iiko: Iiko = built.service().expect("iiko");
        iiko.load_config().await.expect("the settings' connections");
        let (stop, stopped) = Shutdown::channel();
        let runner = platform.jobs.clone();
        let registry = built.jobs;
        tokio::spawn(async move {
            let mut stopped = stopped;
            runner
                .run(registry, 8, async move { stopped.wait().await })
                .await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let router = built.router;
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        let webhook_url = format!("http://{address}/iiko/webhook/{ORG}");
        // iiko's webhook settings for the organization, as `tillwire iiko webhooks setup` would make them.
        let client = tillwire_testkit::http_client();
        let token = client
            .post(format!("{sim_url}/api/1/access_token"))
            .json(&json!({"apiLogin": API_LOGIN}))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let answer = client
            .post(format!("{sim_url}/api/1/webhooks/update_settings"))
            .bearer_auth(token)
            .json(&json!({"organizationId": ORG, "webHooksUri": webhook_url, "authToken": WEBHOOK_TOKEN,
                           "webHooksFilter": {"tableOrderFilter": {"orderStatuses": ["New", "Bill", "Closed", "Deleted"]}}}))
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "webhook settings: {}",
            answer.status()
        );
        App {
            base_url: format!("http://{address}"),
            platform,
            kitchen,
            iiko,
            sim,
            sim_url,
            client,
            _stop: stop,
            _data: data,
            _server: AbortOnDrop(server),
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/iiko/webhook/{ORG}", self.base_url)
    }

    /// Waits until every inbox row is settled (processed, skipped or failed).
    pub async fn settled(&self) {
        eventually("the inbox to settle", || async {
            let open: (i64,) = read!(&self.platform.store, db => sqlx::query_as(
                "SELECT COUNT(*) FROM iiko_inbox WHERE state = 'received'"
            ).fetch_one(db).await)
            .unwrap();
            open.0 == 0
        })
        .await;
    }

    pub async fn inbox_states(&self) -> Vec<(String, String)> {
        read!(&self.platform.store, db => sqlx::query_as(
            "SELECT state, COALESCE(outcome, '') FROM iiko_inbox ORDER BY id"
        ).fetch_all(db).await)
        .unwrap()
    }

    /// The production orders made from iiko orders.
    pub async fn iiko_orders(&self) -> Vec<OrderView> {
        let ids: Vec<(i64,)> = read!(&self.platform.store, db => sqlx::query_as(
            "SELECT id FROM orders WHERE external_ref IS NOT NULL ORDER BY id"
        ).fetch_all(db).await)
        .unwrap();
        let mut views = Vec::new();
        for (id,) in ids {
            views.push(self.kitchen.order_view(id).await.unwrap());
        }
        views
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        let (value,): (i64,) =
            read!(&self.platform.store, db => sqlx::query_as(sql).fetch_one(db).await).unwrap();
        value
    }
}

/// The lines of an order as (ware code, quantity), sorted.
pub fn lines(view: &OrderView) -> Vec<(String, f64)> {
    let mut lines: Vec<(String, f64)> = view
        .lines
        .iter()
        .map(|l| (l.code.clone(), l.quantity))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

/// Polls `check` until it holds, failing the test after 15 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
