//! The `[telegram]` section of `tillwire.toml`: where the Bot API is, the bot's token, the language of
//! tillwire's messages, and how the chain's bot gets its updates.
//!
//! ```toml
//! [telegram]
//! api_url = "https://api.telegram.org"   # or a simulator: tillwire sim telegram
//! bot_token = "123456:ABC…"              # better: TILLWIRE_TELEGRAM_BOT_TOKEN
//! language = "ru"                        # or "en"
//! messages_per_second = 30               # the bot's limit in all (Telegram's; raised only for a benchmark)
//! daily_summary_hour = 9                 # local hour of the daily summary of the day before
//! bot = "off"                            # the chain's bot: "off", "polling" or "webhook"
//! webhook_url = "https://tills.example.com/telegram/webhook"   # webhook mode: this install's public URL
//! ```

use serde::Deserialize;
use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, EnvVar};
use tillwire_platform::web::Lang;

pub const ENV: &[EnvVar] = &[
    EnvVar::text("telegram.api_url", &["TILLWIRE_TELEGRAM_API_URL"]),
    EnvVar::text("telegram.bot_token", &["TILLWIRE_TELEGRAM_BOT_TOKEN"]),
    EnvVar::text("telegram.language", &["TILLWIRE_TELEGRAM_LANGUAGE"]),
    EnvVar::typed(
        "telegram.messages_per_second",
        &["TILLWIRE_TELEGRAM_MESSAGES_PER_SECOND"],
    ),
    EnvVar::typed(
        "telegram.daily_summary_hour",
        &["TILLWIRE_TELEGRAM_DAILY_SUMMARY_HOUR"],
    ),
    EnvVar::text("telegram.bot", &["TILLWIRE_TELEGRAM_BOT"]),
    EnvVar::text("telegram.webhook_url", &["TILLWIRE_TELEGRAM_WEBHOOK_URL"]),
];

pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    api_url: Option<String>,
    bot_token: Option<String>,
    language: Option<String>,
    messages_per_second: Option<u32>,
    daily_summary_hour: Option<u32>,
    bot: Option<String>,
    webhook_url: Option<String>,
}

/// How the chain's bot gets its updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotMode {
    Off,
    /// `getUpdates`, by one instance at a time.
    Polling,
    /// Telegram POSTs to this URL (ending in `/telegram/webhook`).
    Webhook(String),
}

/// The checked section. Without a token nothing is sent.
#[derive(Clone)]
pub struct TelegramSettings {
    pub api_url: String,
    pub bot_token: Option<String>,
    pub language: Lang,
    /// The bot's limit in all.
    pub messages_per_second: u32,
    /// The local hour the daily summaries go at.
    pub daily_summary_hour: u32,
    pub bot: BotMode,
}

impl std::fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("api_url", &self.api_url)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "…"))
            .field("language", &self.language)
            .field("messages_per_second", &self.messages_per_second)
            .field("daily_summary_hour", &self.daily_summary_hour)
            .field("bot", &self.bot)
            .finish()
    }
}

/// `123456:ABC…`: what @BotFather gives (it goes into URLs, so no spaces or slashes).
pub fn looks_like_token(token: &str) -> bool {
    token.contains(':') && !token.contains(char::is_whitespace) && !token.contains('/')
}

pub fn parse(settings: &Settings) -> Result<TelegramSettings, ConfigError> {
    let raw: RawSection = settings.section("telegram")?;
    let api_url = raw
        .api_url
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(ConfigError::Layer(format!(
            "telegram.api_url {api_url:?}: an http:// or https:// URL"
        )));
    }
    let bot_token = raw
        .bot_token
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty());
    if let Some(token) = &bot_token
        && !looks_like_token(token)
    {
        return Err(ConfigError::Layer(
            "telegram.bot_token: a bot token looks like 123456:ABC… (from @BotFather)".into(),
        ));
    }
    let language = match raw.language.as_deref().map(str::trim) {
        None | Some("") | Some("ru") => Lang::Ru,
        Some("en") => Lang::En,
        Some(other) => {
            return Err(ConfigError::Layer(format!(
                "telegram.language {other:?}: \"ru\" or \"en\""
            )));
        }
    };
    let messages_per_second = match raw.messages_per_second {
        None => 30,
        Some(rate @ 1..=10_000) => rate,
        Some(other) => {
            return Err(ConfigError::Layer(format!(
                "telegram.messages_per_second = {other}: from 1 to 10000 (Telegram allows 30)"
            )));
        }
    };
    let daily_summary_hour = match raw.daily_summary_hour {
        None => 9,
        Some(hour @ 0..=23) => hour,
        Some(other) => {
            return Err(ConfigError::Layer(format!(
                "telegram.daily_summary_hour = {other}: an hour from 0 to 23"
            )));
        }
    };
    let webhook_url = raw
        .webhook_url
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty());
    let bot = match (raw.bot.as_deref().map(str::trim), webhook_url) {
        (None | Some("") | Some("off"), _) => BotMode::Off,
        (Some("polling"), _) => BotMode::Polling,
        (Some("webhook"), Some(url))
            if url.starts_with("https://") || url.starts_with("http://") =>
        {
            if !url.ends_with(crate::bot::WEBHOOK_PATH) {
                return Err(ConfigError::Layer(format!(
                    "telegram.webhook_url {url:?}: this install's public URL ending in {}",
                    crate::bot::WEBHOOK_PATH
                )));
            }
            BotMode::Webhook(url)
        }
        (Some("webhook"), _) => {
            return Err(ConfigError::Layer(
                "telegram.bot = \"webhook\" needs telegram.webhook_url, an https:// URL ending in /telegram/webhook"
                    .into(),
            ));
        }
        (Some(other), _) => {
            return Err(ConfigError::Layer(format!(
                "telegram.bot {other:?}: \"off\", \"polling\" or \"webhook\""
            )));
        }
    };
    Ok(TelegramSettings {
        api_url,
        bot_token,
        language,
        messages_per_second,
        daily_summary_hour,
        bot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(section: serde_json::Value) -> Result<BotMode, ConfigError> {
        let mut settings = Settings::for_database("sqlite::memory:");
        settings.set("telegram", section);
        parse(&settings).map(|parsed| parsed.bot)
    }

    #[test]
    fn the_bot_is_off_unless_told_how_it_gets_updates() {
        assert_eq!(bot(serde_json::json!({})).expect("default"), BotMode::Off);
        assert_eq!(
            bot(serde_json::json!({"bot": "polling"})).expect("polling"),
            BotMode::Polling
        );
        let url = "https://tills.example.com/telegram/webhook";
        assert_eq!(
            bot(serde_json::json!({"bot": "webhook", "webhook_url": url})).expect("webhook"),
            BotMode::Webhook(url.into())
        );
        for wrong in [
            serde_json::json!({"bot": "webhook"}),
            serde_json::json!({"bot": "webhook", "webhook_url": "https://tills.example.com/"}),
            serde_json::json!({"bot": "webhook", "webhook_url": "ftp://x/telegram/webhook"}),
            serde_json::json!({"bot": "sometimes"}),
        ] {
            assert!(bot(wrong.clone()).is_err(), "{wrong}");
        }
    }
}
