//! The bot's token: from the settings (`telegram.bot_token` or `TILLWIRE_TELEGRAM_BOT_TOKEN`), which win, or set
//! on the admin page, sealed in `notify_settings` with the installation's secret box and never shown back. Every
//! instance reads the stored one again within a few seconds, so a token set on the page turns delivery on
//! everywhere without a restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tillwire_platform::area::Shutdown;
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write};

use crate::config::{TelegramSettings, looks_like_token};
use crate::telegram::BotApi;

/// How often a task without a token looks for one.
const TOKEN_WAIT: Duration = Duration::from_secs(2);
/// How long a token read from the database is trusted before it is read again.
const REREAD_EVERY: Duration = Duration::from_secs(5);
const NAME: &str = "bot_token";

/// Where the token in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Settings,
    Page,
    Missing,
}

/// The token in force, and a Bot API client for it.
#[derive(Clone)]
pub struct BotToken {
    store: Store,
    api_url: String,
    configured: Option<String>,
    data_dir: PathBuf,
    cached: Arc<Mutex<Option<Cached>>>,
}

#[derive(Clone)]
struct Cached {
    read: Instant,
    token: Option<String>,
    api: Option<BotApi>,
}

impl BotToken {
    pub fn new(store: Store, settings: &TelegramSettings, data_dir: PathBuf) -> Self {
        BotToken {
            store,
            api_url: settings.api_url.clone(),
            configured: settings.bot_token.clone(),
            data_dir,
            cached: Arc::default(),
        }
    }

    /// A client for the token in force; `None` without one.
    pub async fn api(&self) -> anyhow::Result<Option<BotApi>> {
        if let Some(token) = &self.configured {
            return Ok(self.client_for(Some(token.clone())));
        }
        if let Some(cached) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && cached.read.elapsed() < REREAD_EVERY
        {
            return Ok(cached.api.clone());
        }
        let stored = self.stored().await?;
        Ok(self.client_for(stored))
    }

    /// The client for `token`, kept while the token stays the same (one connection pool, not one per message).
    fn client_for(&self, token: Option<String>) -> Option<BotApi> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let api = match cached.as_ref() {
            Some(c) if c.token == token && c.api.is_some() => c.api.clone(),
            _ => token.as_deref().map(|t| BotApi::new(&self.api_url, t)),
        };
        *cached = Some(Cached {
            read: Instant::now(),
            token,
            api: api.clone(),
        });
        api
    }

    /// The token in force, read now.
    pub async fn current(&self) -> anyhow::Result<Option<String>> {
        match &self.configured {
            Some(token) => Ok(Some(token.clone())),
            None => self.stored().await,
        }
    }

    /// Waits until there is a token (one is set on the page, say); `None` when asked to stop first.
    pub async fn wait(&self, shutdown: &mut Shutdown) -> Option<String> {
        loop {
            if let Ok(Some(token)) = self.current().await {
                return Some(token);
            }
            tokio::select! {
                _ = shutdown.wait() => return None,
                _ = tokio::time::sleep(TOKEN_WAIT) => {}
            }
        }
    }

    /// Where the token in force comes from.
    pub async fn source(&self) -> anyhow::Result<TokenSource> {
        if self.configured.is_some() {
            return Ok(TokenSource::Settings);
        }
        Ok(if self.stored().await?.is_some() {
            TokenSource::Page
        } else {
            TokenSource::Missing
        })
    }

    async fn stored(&self) -> anyhow::Result<Option<String>> {
        let sealed: Option<(String,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT value FROM notify_settings WHERE name = $1",
        )
        .bind(NAME)
        .fetch_optional(db)
        .await)?;
        let Some((sealed,)) = sealed else {
            return Ok(None);
        };
        let opened = self.secret_box()?.open(&sealed)?;
        Ok(Some(opened.expose().to_owned()))
    }

    fn secret_box(&self) -> anyhow::Result<SecretBox> {
        Ok(SecretBox::load(&self.data_dir)?)
    }

    /// Keeps `token`, sealed, as the bot's token (the settings' one still wins).
    pub async fn set(&self, token: &str, by: &str) -> Result<(), HttpError> {
        let token = token.trim();
        if !looks_like_token(token) {
            return Err(HttpError::field(
                "token",
                Text::new(
                    "Токен бота выглядит как 123456:ABC… (его выдаёт @BotFather).",
                    "A bot token looks like 123456:ABC… (from @BotFather).",
                ),
            ));
        }
        let sealed = self.secret_box().map_err(HttpError::internal)?.seal(token);
        write!(&self.store, db => sqlx::query(
            "INSERT INTO notify_settings (name, value, updated_ms, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms,
                 updated_by = excluded.updated_by",
        )
        .bind(NAME)
        .bind(sealed)
        .bind(now_ms())
        .bind(by)
        .execute(db)
        .await
        .map(|_| ()))?;
        self.forget();
        Ok(())
    }

    /// Forgets the token set on the page.
    pub async fn clear(&self) -> Result<(), sqlx::Error> {
        write!(&self.store, db => sqlx::query("DELETE FROM notify_settings WHERE name = $1")
            .bind(NAME)
            .execute(db)
            .await
            .map(|_| ()))?;
        self.forget();
        Ok(())
    }

    fn forget(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
