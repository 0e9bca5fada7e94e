//! `serve --demo`: a simulated iikoCloud with the demo pizzeria (its pizzas and dessert mapped to the demo
//! catalogue, the lemonade left for the mapping page) whose webhooks point at this tillwire, and a simulated
//! iikoServer with three days of sales. The table orders wait in the iikoCloud simulator's script box until someone
//! presses Run, so the demo, and every test that runs one, gets no orders it did not ask for.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};
use tillwire_platform::Platform;
use tillwire_platform::config::Secret;
use tillwire_units::Units;

use crate::cloud::{Auth, CloudClient};
use crate::config::{CloudConfig, Credentials, ServerConfig};
use crate::connections::Connections;
use crate::model::IikoId;
use crate::servers::Servers;
use crate::sim::cloud::{CloudSim, DEFAULT_API_LOGIN};
use crate::sim::server::ServerSim;

/// The demo world's ids (`sim::cloud::demo_script`).
const ORGANIZATION: &str = "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d01";
const TERMINAL: &str = "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d02";
const TABLES: [&str; 2] = [
    "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d11",
    "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d12",
];
const MARGHERITA: &str = "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d21";
const PEPPERONI: &str = "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d22";
const LEMONADE: &str = "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d23";
const TIRAMISU: &str = "0b9d5a3e-4c1f-4e8a-9d2b-7a6c5e4f3d24";
/// The demo catalogue's wares (`tillwire_kitchen::seed`): the pizza, and the salads' station for the dessert.
const PIZZA_WARE: &str = "48566";
const DESSERT_WARE: &str = "12356";

pub async fn start(platform: &Platform) -> anyhow::Result<()> {
    let unit = Units(&platform.store)
        .default_unit()
        .await?
        .map(|u| u.unit_id());
    let connections = Connections::new(platform.store.clone(), platform.settings.data_dir.clone());

    let (cloud, cloud_url) = CloudSim::start().await;
    cloud
        .run_script(crate::sim::cloud::demo_script())
        .map_err(|e| anyhow::anyhow!("the demo world: {e}"))?;
    let webhook_token = tillwire_platform::random_token(32);
    let organization =
        IikoId::parse(ORGANIZATION).ok_or_else(|| anyhow::anyhow!("the demo organization"))?;
    let products: BTreeMap<String, String> = [
        (MARGHERITA, PIZZA_WARE),
        (PEPPERONI, PIZZA_WARE),
        (TIRAMISU, DESSERT_WARE),
    ]
    .into_iter()
    .map(|(product, ware)| (product.to_owned(), ware.to_owned()))
    .collect();
    connections
        .upsert_from_config(
            &CloudConfig {
                name: "Демо-пиццерия (iikoCloud)".into(),
                unit: None,
                api_url: cloud_url.clone(),
                credentials: Credentials::ApiLogin {
                    api_login: DEFAULT_API_LOGIN.into(),
                },
                organization: organization.clone(),
                webhook_token: Some(Secret::new(webhook_token.clone())),
                tables: TABLES.iter().filter_map(|t| IikoId::parse(t)).collect(),
                products,
            },
            unit,
        )
        .await
        .map_err(|e| anyhow::anyhow!("the demo connection: {e}"))?;
    // iiko's webhook settings, as `tillwire iiko webhooks setup` makes them, to this process's own address.
    let listen = platform.settings.listen;
    let host = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let address = std::net::SocketAddr::new(host, listen.port());
    let client = CloudClient::new(&cloud_url, Auth::ApiLogin(Secret::new(DEFAULT_API_LOGIN)));
    let _: Value = client
        .call(
            "/api/1/webhooks/update_settings",
            &json!({
                "organizationId": ORGANIZATION,
                "webHooksUri": format!("http://{address}/iiko/webhook/{ORGANIZATION}"),
                "authToken": webhook_token,
                "webHooksFilter": {"tableOrderFilter": {"orderStatuses": ["New", "Bill", "Closed", "Deleted"]}},
            }),
        )
        .await?;
    cloud.suggest_script(&orders_script());

    let password = tillwire_platform::random_token(16);
    let (server, server_url) = ServerSim::start("tillwire-demo", &password).await;
    // The previous demo's server listened elsewhere: only this one is kept.
    tillwire_platform::write!(&platform.store, db => sqlx::query("DELETE FROM iiko_servers WHERE organization_id = $1")
        .bind(ORGANIZATION)
        .execute(db)
        .await
        .map(|_| ()))?;
    server
        .run_script(&crate::sim::server::demo_script())
        .map_err(|e| anyhow::anyhow!("the demo sales: {e}"))?;
    Servers::new(platform.store.clone(), connections)
        .upsert_from_config(
            &ServerConfig {
                unit: None,
                url: server_url.clone(),
                login: "tillwire-demo".into(),
                password: Secret::new(password),
                organization: organization.clone(),
                time_zone: Some(chrono_tz::Europe::Moscow),
            },
            unit,
        )
        .await
        .map_err(|e| anyhow::anyhow!("the demo iikoServer: {e}"))?;
    // Written like the settings file's entries, but they are the demo's: the pages must not say otherwise.
    for table in ["iiko_connections", "iiko_servers"] {
        let sql = format!("UPDATE {table} SET from_config = FALSE WHERE organization_id = $1");
        tillwire_platform::write!(&platform.store, db => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(ORGANIZATION)
            .execute(db)
            .await
            .map(|_| ()))?;
    }
    println!(
        "Demo iiko: {cloud_url}/sim/ has table orders ready in its script box (press Run; they reach the board through \
         webhooks); {server_url}sim/ has three days of sales (see /admin/iiko/sales/)"
    );
    tracing::info!(%cloud_url, %server_url, "demo: simulated iikoCloud and iikoServer");
    Ok(())
}

/// A few minutes of a dining room: two tables order, one adds a dessert, one takes a drink off and is then
/// cancelled. Fresh order ids each time the demo starts.
fn orders_script() -> String {
    let (first, second) = (crate::sim::uuid(), crate::sim::uuid());
    let [one, two] = TABLES;
    format!(
        "# The demo's table orders: press Run.\n\
         open {first} org={ORGANIZATION} terminal={TERMINAL} table={one} number=101\n\
         add {first} p1 {MARGHERITA} amount=2\n\
         add {first} p2 {LEMONADE} amount=2\n\
         wait 5s\n\
         open {second} org={ORGANIZATION} terminal={TERMINAL} table={two} number=102\n\
         add {second} p1 {PEPPERONI} amount=1\n\
         add {second} p2 {TIRAMISU} amount=1\n\
         wait 5s\n\
         add {first} p3 {TIRAMISU} amount=1\n\
         wait 5s\n\
         delete {second} p2\n\
         wait 5s\n\
         status {second} Deleted\n"
    )
}
