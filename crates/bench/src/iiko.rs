//! The iiko intake against the release binary: iikoCloud's webhooks posted by concurrent clients (each a new table
//! order with a production ware), how many a second are accepted and turned into queue numbers, and how long from
//! a webhook's arrival to its order's number (the inbox's received and processed times), under the burst and one
//! at a time. Then the cost of a reconciliation poll of one organization with many orders, in process against the
//! iikoCloud simulator: all new, then nothing changed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tillwire_iiko::sim::cloud::{CloudSim, DEFAULT_API_LOGIN, WebhookBehaviour};
use tillwire_platform::{Store, read};

use crate::server::{Server, Target};
use crate::{Backend, hammer, summarize};

const ORGANIZATION: &str = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9";
const TERMINAL: &str = "4fab19a5-203c-4bf5-94eb-f572aa8b117b";
const TABLE: &str = "0e5d3a4c-1b2f-4c6d-8e9f-a0b1c2d3e4f5";
const PIZZA: &str = "11111111-1111-4111-8111-111111111111";
const TOKEN: &str = "bench-webhook-token-0123456789";

/// A webhook with one new table order (`n` makes its id) holding a pizza.
fn webhook(n: usize) -> String {
    let id = format!("00000000-0000-4000-8000-{n:012}");
    json!([{
        "eventType": "TableOrderUpdate",
        "eventTime": "2026-12-06 12:00:00.000",
        "organizationId": ORGANIZATION,
        "correlationId": id,
        "eventInfo": {
            "id": id, "posId": null, "organizationId": ORGANIZATION, "timestamp": 1_000 + n,
            "creationStatus": "Success", "errorInfo": null,
            "order": {"tableIds": [TABLE], "status": "New", "whenCreated": "2026-12-06 15:00:00.000",
                      "number": n, "sum": 590.5, "terminalGroupId": TERMINAL,
                      "items": [{"type": "Product", "product": {"id": PIZZA, "name": "Пицца"}, "amount": 1,
                                 "price": 590.5, "positionId": format!("p{n}"), "deleted": null, "status": "Added"}]}
        }
    }])
    .to_string()
}

pub async fn run(
    target: &Target,
    backend: Backend,
    clients: usize,
    webhooks: usize,
) -> anyhow::Result<()> {
    let (sim, sim_url) = CloudSim::start().await;
    sim.add_organization(ORGANIZATION, "Bench");
    sim.add_terminal_group(ORGANIZATION, TERMINAL, "Main", "Russian Standard Time");
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("tillwire.toml");
    std::fs::write(
        &config,
        format!(
            "[[iiko.cloud]]\napi_url = \"{sim_url}\"\napi_login = \"{DEFAULT_API_LOGIN}\"\norganization_id = \"{ORGANIZATION}\"\n\
             webhook_token = \"{TOKEN}\"\nproducts = {{ \"{PIZZA}\" = \"48566\" }}\n"
        ),
    )?;
    let (server, _) = Server::start_with(
        target,
        backend,
        &["--config", config.to_str().unwrap_or("")],
    )
    .await?;
    let store = Store::connect(&server.database_url).await?;
    let url = format!("{}/iiko/webhook/{ORGANIZATION}", server.base);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let post = {
        let url = url.clone();
        move |client: &reqwest::Client, n: usize| {
            client
                .post(&url)
                .header(reqwest::header::AUTHORIZATION, TOKEN)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(webhook(n))
        }
    };
    // Warm up (the terminal group is fetched once, connections open).
    hammer(&client, clients, 200, {
        let post = post.clone();
        move |client: &reqwest::Client, n: usize| post(client, 1_000_000 + n)
    })
    .await?;
    settled(&store).await?;

    let started = Instant::now();
    let (latencies, errors) = hammer(&client, clients, webhooks, post.clone()).await?;
    let accepted = started.elapsed();
    settled(&store).await?;
    let applied = started.elapsed();
    let summary = summarize(latencies);
    println!(
        "iiko {backend:?} webhooks: {clients} clients, {webhooks} orders: accepted {:.0}/s (p50 {:.2} ms, p99 {:.2} ms, {errors} errors); \
         turned into queue numbers {:.0}/s",
        webhooks as f64 / accepted.as_secs_f64(),
        summary.p50,
        summary.p99,
        webhooks as f64 / applied.as_secs_f64()
    );
    let burst = delays(&store, 0..webhooks).await?;
    println!(
        "iiko {backend:?} webhook → queue number under the burst: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        burst.p50, burst.p99, burst.max
    );
    // One at a time, as a restaurant's webhooks come.
    for n in 0..200 {
        post(&client, 2_000_000 + n)
            .send()
            .await?
            .error_for_status()?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settled(&store).await?;
    let calm = delays(&store, 2_000_000..2_000_200).await?;
    println!(
        "iiko {backend:?} webhook → queue number one at a time: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        calm.p50, calm.p99, calm.max
    );
    let orders: i64 = read!(&store, db => sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE external_ref IS NOT NULL")
        .fetch_one(db)
        .await)?;
    anyhow::ensure!(
        orders as usize == webhooks + 400,
        "{orders} orders for {} webhooks",
        webhooks + 400
    );
    store.close().await;
    server.stop().await;
    drop(sim);
    poll_cost(target, backend).await
}

/// Waits until no inbox row is waiting.
async fn settled(store: &Store) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let open: i64 = read!(store, db => sqlx::query_scalar("SELECT COUNT(*) FROM iiko_inbox WHERE state = 'received'")
            .fetch_one(db)
            .await)?;
        if open == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{open} webhooks still waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Received → processed of the inbox rows of the orders numbered within `numbers`.
async fn delays(store: &Store, numbers: std::ops::Range<usize>) -> anyhow::Result<crate::Summary> {
    let rows: Vec<(String, i64)> = read!(store, db => sqlx::query_as(
        "SELECT body, processed_ms - received_ms FROM iiko_inbox WHERE state = 'processed'",
    )
    .fetch_all(db)
    .await)?;
    let samples = rows
        .into_iter()
        .filter(|(body, _)| {
            let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let number = value["eventInfo"]["order"]["number"]
                .as_u64()
                .unwrap_or(u64::MAX);
            numbers.contains(&(number as usize))
        })
        .map(|(_, ms)| Duration::from_millis(ms.max(0) as u64))
        .collect();
    Ok(summarize(samples))
}

/// A reconciliation poll of one organization with `orders` deliveries and as many table orders: all new, then
/// unchanged. In process: the poll's cost is its two requests and the reading of their answers.
async fn poll_cost(target: &Target, backend: Backend) -> anyhow::Result<()> {
    let (sim, sim_url) = CloudSim::start().await;
    sim.set_webhooks(WebhookBehaviour {
        enabled: false,
        ..WebhookBehaviour::default()
    });
    sim.add_organization(ORGANIZATION, "Bench");
    sim.add_terminal_group(ORGANIZATION, TERMINAL, "Main", "Russian Standard Time");
    sim.add_table(ORGANIZATION, TABLE, 1);
    sim.add_product(ORGANIZATION, PIZZA, "P", "Пицца", "590.50");
    let orders = 500;
    for n in 0..orders {
        let table = format!("00000000-0000-4000-8000-{n:012}");
        let delivery = format!("00000000-0000-4000-9000-{n:012}");
        sim.open_table_order(ORGANIZATION, TERMINAL, TABLE, &table, n as i64);
        sim.add_item(&table, "p1", PIZZA, "1");
        sim.create_delivery(ORGANIZATION, TERMINAL, &delivery, 10_000 + n as i64);
        sim.add_item(&delivery, "p1", PIZZA, "2");
    }
    let rig = Rig::start(target, backend, &sim_url).await?;
    for round in ["all new", "unchanged"] {
        let before = sim.requests("/api/1/order/by_table")
            + sim.requests("/api/1/deliveries/by_revision")
            + sim.requests("/api/1/deliveries/by_delivery_date_and_status");
        let started = Instant::now();
        let polled = rig.poll().await?;
        let took = started.elapsed();
        let after = sim.requests("/api/1/order/by_table")
            + sim.requests("/api/1/deliveries/by_revision")
            + sim.requests("/api/1/deliveries/by_delivery_date_and_status");
        println!(
            "iiko {backend:?} poll of one organization, {} orders ({round}): {} requests, {:.0} ms, {} sent to the inbox",
            polled.seen,
            after - before,
            took.as_secs_f64() * 1000.0,
            polled.queued
        );
    }
    rig.stop().await;
    Ok(())
}

/// tillwire's iiko area in this process on a fresh database, its jobs running, connected to the simulator.
struct Rig {
    iiko: tillwire_iiko::Iiko,
    connection: tillwire_iiko::Connection,
    client: tillwire_iiko::cloud::CloudClient,
    database: crate::server::FreshDatabase,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Rig {
    async fn start(target: &Target, backend: Backend, sim_url: &str) -> anyhow::Result<Rig> {
        use tillwire_platform::{Platform, Settings, area};
        let areas = [
            &tillwire_platform::AREA,
            &tillwire_units::AREA,
            &tillwire_kitchen::AREA,
            &tillwire_iiko::AREA,
        ];
        let database = crate::server::FreshDatabase::create(target, backend).await?;
        let store = Store::connect(&database.url).await?;
        store.migrate(&area::migrations(&areas)).await?;
        let mut settings = Settings::for_database(&database.url);
        settings.data_dir = database.dir.path().to_owned();
        settings.set(
            "iiko",
            json!({"cloud": [{"api_url": sim_url, "api_login": DEFAULT_API_LOGIN, "organization_id": ORGANIZATION,
                              "tables": [TABLE], "products": {PIZZA: "48566"}}]}),
        );
        let platform = Platform::new(store, settings);
        tillwire_kitchen::seed::init(&platform).await?;
        tillwire_kitchen::seed::load_demo(&platform).await?;
        let built = area::assemble(&areas, &platform)?;
        let iiko: tillwire_iiko::Iiko = built
            .service()
            .ok_or_else(|| anyhow::anyhow!("the iiko area"))?;
        iiko.load_config()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (stop, stopped) = tillwire_platform::area::Shutdown::channel();
        let runner = platform.jobs.clone();
        let registry = built.jobs;
        tokio::spawn(async move {
            let mut stopped = stopped;
            runner
                .run(registry, 64, async move { stopped.wait().await })
                .await;
        });
        let connection = iiko
            .connections
            .list()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .remove(0);
        let client = tillwire_iiko::cloud::CloudClient::new(sim_url, connection.credentials.auth());
        Ok(Rig {
            iiko,
            connection,
            client,
            database,
            _stop: stop,
        })
    }

    /// One poll, then waits until what it sent to the inbox is applied.
    async fn poll(&self) -> anyhow::Result<tillwire_iiko::poll::Polled> {
        let polled = tillwire_iiko::poll::poll(&self.iiko, &self.connection, &self.client)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        settled(&self.iiko.platform.store).await?;
        Ok(polled)
    }

    async fn stop(self) {
        self.iiko.platform.store.close().await;
        self.database.drop_database().await;
    }
}
