//! `serve --demo`: when no bot token is set, a Bot API simulator on loopback stands in for Telegram, and two demo
//! chats (a manager's private chat and a support group) take the default unit's alerts and reports, so a
//! newcomer sees messages flow on the simulator's page as the demo registers come and go.

use std::sync::OnceLock;

use tillwire_directory::ChatType;
use tillwire_directory::routing::Routing;
use tillwire_platform::Platform;
use tillwire_units::Units;

use crate::sim::TelegramSim;
use crate::templates::{COLLECTOR_ALERTS, DAILY_SUMMARY, PRINTER_ALERTS, REGISTER_INCIDENTS};
use crate::token::{BotToken, TokenSource};

const TOKEN: &str = "123456:DEMO";
const MANAGER: i64 = 700_001;
const SUPPORT: i64 = -100_700_002;

/// The simulator's address and token, once the demo started one.
static BOT: OnceLock<(String, String)> = OnceLock::new();

/// The demo's Bot API (address, token), when `serve --demo` started one.
pub fn bot() -> Option<(String, String)> {
    BOT.get().cloned()
}

pub async fn start(platform: &Platform) -> anyhow::Result<()> {
    let settings = crate::config::parse(&platform.settings)?;
    let token = BotToken::new(
        platform.store.clone(),
        &settings,
        platform.settings.data_dir.clone(),
    );
    if token.source().await? != TokenSource::Missing || BOT.get().is_some() {
        return Ok(());
    }
    let Some(unit) = Units(&platform.store).default_unit().await? else {
        return Ok(());
    };
    let sim = TelegramSim::new(TOKEN);
    let base = sim.serve_on_loopback().await?;
    let _ = BOT.set((base.clone(), TOKEN.to_owned()));
    let routing = Routing(platform.store.clone());
    let lang = settings.language;
    routing
        .subscribe(
            MANAGER,
            ChatType::Private,
            lang.pick("Демо: управляющий", "Demo: manager"),
            unit.id,
            &[
                REGISTER_INCIDENTS,
                PRINTER_ALERTS,
                COLLECTOR_ALERTS,
                DAILY_SUMMARY,
            ],
            "demo",
        )
        .await?;
    routing
        .subscribe(
            SUPPORT,
            ChatType::Group,
            lang.pick("Демо: техподдержка", "Demo: support"),
            unit.id,
            &[REGISTER_INCIDENTS, PRINTER_ALERTS],
            "demo",
        )
        .await?;
    println!("Demo Telegram: what the demo chats receive is at {base}/sim/");
    tracing::info!(%base, "demo: simulated Telegram Bot API");
    Ok(())
}
