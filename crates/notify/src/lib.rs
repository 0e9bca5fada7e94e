//! Telegram notifications: tillwire's own events become messages (`render`, in the words of `templates`) for the
//! chats the directory routes them to (`router`), each a durable job sent within Telegram's limits across
//! instances (`delivery`, `pace`) through the Bot API client (`telegram`) in HTML (`html`); the daily summary
//! (`summary`); the outbox page and API (`outbox`, `api`); the chain's bot (`bot`). `sim` is a Bot API simulator
//! for the tests, the demo and the benchmark.

pub mod api;
pub mod bot;
pub mod config;
pub mod delivery;
mod demo;
pub mod html;
pub mod messages;
mod outbox;
pub mod pace;
pub mod render;
pub mod router;
pub mod sim;
pub mod summary;
pub mod telegram;
pub mod templates;
mod templates_page;
pub mod token;

use std::time::Duration;

use tillwire_platform::area::SettingsSection;
use tillwire_platform::{Access, Answer, Area, Migration};

use crate::delivery::{SendMessage, Sender};
use crate::pace::Pace;
use crate::summary::Summaries;
use crate::token::BotToken;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "notify",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_notify.sql"),
        postgres: include_str!("../migrations/postgres/0001_notify.sql"),
    },
    Migration {
        area: "notify",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_templates_and_reports.sql"),
        postgres: include_str!("../migrations/postgres/0002_templates_and_reports.sql"),
    },
    Migration {
        area: "notify",
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_bot.sql"),
        postgres: include_str!("../migrations/postgres/0003_bot.sql"),
    },
];

pub const AREA: Area = Area {
    name: "notify",
    migrations: MIGRATIONS,
    admin_nav: outbox::ADMIN_NAV,
    settings: Some(SettingsSection {
        name: "telegram",
        env: config::ENV,
        check: |settings| config::parse(settings).map(|_| ()),
    }),
    build: |assembly| {
        let platform = assembly.platform.clone();
        let mut settings = config::parse(&platform.settings)?;
        if let (None, Some((api_url, token))) = (&settings.bot_token, demo::bot()) {
            settings.api_url = api_url;
            settings.bot_token = Some(token);
        }
        let token = BotToken::new(
            platform.store.clone(),
            &settings,
            platform.settings.data_dir.clone(),
        );
        assembly.routes(
            Access::Session,
            Answer::Page,
            outbox::router(outbox::Outbox {
                platform: platform.clone(),
                settings: settings.clone(),
                token: token.clone(),
            }),
        );
        assembly.routes(
            Access::Credential,
            Answer::Json,
            api::router(api::ApiState {
                platform: platform.clone(),
                lang: settings.language,
            }),
        );
        // The chain's bot: off unless `[telegram] bot` says how it gets updates.
        bot::build(assembly, &settings, token.clone());
        let sender = Sender {
            store: platform.store.clone(),
            token: token.clone(),
            pace: Pace::new(platform.store.clone()).with_global_spacing(Duration::from_micros(
                1_000_000 / u64::from(settings.messages_per_second),
            )),
        };
        assembly.jobs().register(move |job: SendMessage, attempt| {
            let sender = sender.clone();
            async move { sender.send(job, attempt).await }
        });
        // The daily summary needs the kitchen's statistics; an assembly without the kitchen has none.
        let summaries = assembly
            .service::<tillwire_kitchen::Kitchen>()
            .ok()
            .map(|kitchen| Summaries {
                kitchen,
                hour: settings.daily_summary_hour,
                lang: settings.language,
            });
        let language = settings.language;
        assembly.task("notify", move |shutdown| async move {
            let chores = tokio::spawn(chores(platform.clone(), token.clone(), summaries));
            let outcome = router::run(platform, language, token, shutdown).await;
            chores.abort();
            outcome
        });
        Ok(())
    },
    demo: Some(|platform| Box::pin(demo::start(platform))),
    openapi: Some(<api::NotifyApi as utoipa::OpenApi>::openapi),
    ..Area::NONE
};

/// What runs beside the consumer: the queue-depth gauge, and the daily summaries once a bot token is there.
async fn chores(
    platform: tillwire_platform::Platform,
    token: BotToken,
    summaries: Option<Summaries>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_summary = None;
    loop {
        tick.tick().await;
        if let Ok(pending) = router::pending(&platform).await {
            metrics::gauge!("tillwire_notify_queue_depth").set(pending as f64);
        }
        let Some(summaries) = &summaries else {
            continue;
        };
        let minute = chrono::Utc::now().timestamp() / 60;
        if last_summary == Some(minute) || !matches!(token.api().await, Ok(Some(_))) {
            continue;
        }
        last_summary = Some(minute);
        if let Err(error) = summaries.write_due(chrono::Utc::now()).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "notify: could not write the daily summaries"
            );
        }
    }
}
