//! `serve --demo`: a simulated AD Manager with a few work cards, and a demo workshop's integration pointed at it
//! with the simulator's login and two orders waiting. Its worker starts parked, as oilmat-erp's did: "Start" on
//! `/admin/erp/` sends Chromium to add the lines (so a demo, and every test that runs one, starts no browser until
//! someone asks).

use tillwire_platform::Platform;

use crate::integrations::{ErpUrl, IntegrationSpec, Integrations, Workshop};
use crate::model::{Amount, ErpType, LineOrder, OrderRef};
use crate::orders::{Intake, Orders};
use crate::sim::{DEFAULT_PASSWORD, DEFAULT_USERNAME, ErpSim, Product};

const WORKSHOP: &str = "Demo værksted";

pub async fn start(platform: &Platform) -> anyhow::Result<()> {
    let sim = ErpSim::new(ErpType::AdManager);
    sim.set_cases((550..575).map(|case| case.to_string()));
    sim.set_catalogue([
        Product::new("10", "Motorolie 5W-30", "L", "Olie", "89,00"),
        Product::new("11", "Motorolie 0W-20", "L", "Olie", "99,00"),
    ]);
    // The served router keeps the simulator's state for as long as the process runs.
    let base = sim.serve_on_loopback().await?;
    let integrations =
        Integrations::new(platform.store.clone(), platform.settings.data_dir.clone());
    let mut spec =
        IntegrationSpec::new(Workshop::parse(WORKSHOP).map_err(text)?, ErpType::AdManager);
    spec.base_url = ErpUrl::parse(&base).map_err(text)?;
    spec.username = Some(DEFAULT_USERNAME.to_owned());
    spec.password = Some(DEFAULT_PASSWORD.to_owned());
    let integration = match integrations.by_workshop(WORKSHOP).await {
        Ok(existing) => integrations.update(existing.id, &spec, "demo").await,
        Err(_) => integrations.create(&spec, "demo").await,
    }?;
    let orders = Orders::new(platform.store.clone(), platform.jobs.clone());
    for (n, (case, item, amount)) in [("560", "10", 5), ("571", "11", 4)].into_iter().enumerate() {
        let intake = Intake {
            dealer: WORKSHOP.to_owned(),
            line: LineOrder {
                unique_id: OrderRef::parse(&format!("demo-{}-{n}", tillwire_platform::now_ms()))
                    .map_err(anyhow::Error::msg)?,
                case_nr: OrderRef::parse(case).map_err(anyhow::Error::msg)?,
                product_nr: OrderRef::parse(item).map_err(anyhow::Error::msg)?,
                amount: Amount::new(amount).map_err(anyhow::Error::msg)?,
            },
            sealed_credentials: None,
        };
        orders.receive_all(&[(integration.clone(), intake)]).await?;
    }
    println!(
        "Demo ERP (AD Manager simulator): {base}/sim/ shows the lines the demo workshop's orders add"
    );
    tracing::info!(%base, "demo: simulated AD Manager");
    Ok(())
}

fn text(text: tillwire_platform::Text) -> anyhow::Error {
    anyhow::anyhow!(text.get(tillwire_platform::web::Lang::En).to_owned())
}
