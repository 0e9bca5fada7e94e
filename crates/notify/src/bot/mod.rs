//! The chain's Telegram bot (replaces the original telegram-bot client): users register their chat, redeem a role's
//! access code and choose which reports of which pizzerias they get, straight against the directory's storage.
//! Updates come by long polling `getUpdates` (one instance at a time holds the `notify/bot` lease) or by a webhook
//! on the main listener. Each update id is claimed once in `notify_bot_updates` before it is handled, so a
//! restart, a second instance or Telegram sending an update again never replies twice. Replies go straight to the
//! Bot API (a person is waiting), not through the outbox.

pub mod dialogue;
mod texts;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tillwire_directory::routing::Routing;
use tillwire_directory::subscriptions::Subscriptions;
use tillwire_directory::{CodeLimiter, DirectoryError};
use tillwire_platform::area::{Assembly, Shutdown};
use tillwire_platform::leases::Leases;
use tillwire_platform::web::Lang;
use tillwire_platform::{Access, Answer, Store, now_ms, read, sha256_hex, write};

use self::dialogue::{Dialogue, Reply, Update};
use crate::config::{BotMode, TelegramSettings};
use crate::telegram::{BotApi, Outgoing, SendError};
use crate::token::BotToken;

/// The lease of the instance that polls.
pub const LEASE: &str = "notify/bot";
/// Where Telegram POSTs updates in webhook mode, on the main listener.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// How long one getUpdates waits for an update.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How long the polling instance's lease lasts unless renewed: how soon another instance takes over.
const LEASE_TTL: Duration = Duration::from_secs(60);
/// Claimed update ids are kept this long (Telegram keeps an unconfirmed update for a day).
const KEEP_CLAIMS_MS: i64 = 7 * 24 * 3600 * 1000;
const PRUNE_EVERY_MS: i64 = 3600 * 1000;

/// Starts the bot as `[telegram] bot` says: a polling task, or the webhook route and a task that sets the webhook.
/// Either waits for a bot token first (one set on the admin page, say); the webhook answers 503 until then.
pub fn build(assembly: &mut Assembly, settings: &TelegramSettings, token: BotToken) {
    let store = assembly.platform.store.clone();
    let (api_url, language) = (settings.api_url.clone(), settings.language);
    let bot_for =
        move |token: &str| Bot::new(store.clone(), BotApi::new(&api_url, token), language);
    match settings.bot.clone() {
        BotMode::Off => {}
        BotMode::Polling => {
            let leases = assembly.platform.leases.clone();
            assembly.task("notify-bot", move |mut shutdown| async move {
                match token.wait(&mut shutdown).await {
                    Some(token) => bot_for(&token).poll(leases, LEASE_TTL, shutdown).await,
                    None => Ok(()),
                }
            });
        }
        BotMode::Webhook(url) => {
            let ready = Arc::new(OnceLock::new());
            assembly.routes(
                Access::Public,
                Answer::Json,
                Router::new()
                    .route(WEBHOOK_PATH, post(webhook))
                    .with_state(ready.clone()),
            );
            assembly.task("notify-bot", move |mut shutdown| async move {
                if let Some(token) = token.wait(&mut shutdown).await {
                    let (bot, secret) = (bot_for(&token), webhook_secret(&token));
                    let _ = ready.set((bot.clone(), Arc::<str>::from(secret.as_str())));
                    bot.set_webhook(&url, &secret, shutdown).await;
                }
                Ok(())
            });
        }
    }
}

/// The bot: the conversation, the Bot API, and the claims of handled updates.
#[derive(Clone)]
pub struct Bot {
    store: Store,
    api: BotApi,
    dialogue: Dialogue,
    polls: Arc<AtomicU64>,
    /// When this instance last pruned old claims (ms).
    pruned_ms: Arc<AtomicI64>,
}

impl Bot {
    /// A bot over the directory in `store`, speaking `language` to users whose Telegram is in neither Russian nor
    /// English.
    pub fn new(store: Store, api: BotApi, language: Lang) -> Self {
        Bot {
            dialogue: Dialogue {
                directory: Subscriptions(store.clone()),
                routing: Routing(store.clone()),
                limiter: CodeLimiter::default(),
                language,
            },
            store,
            api,
            polls: Arc::default(),
            pruned_ms: Arc::default(),
        }
    }

    /// How many getUpdates calls this bot made (tells the polling instance apart).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Handles one update unless it was handled already. When the database fails, the claim is given back, so
    /// the next getUpdates (from the newest claimed update) asks for it again.
    #[tracing::instrument(skip_all)]
    pub async fn handle(&self, update: Value) -> Result<(), DirectoryError> {
        let Some(id) = update["update_id"].as_i64() else {
            return Ok(());
        };
        self.prune_now_and_then().await;
        if !self.claim(id).await? {
            tracing::debug!(update_id = id, "update handled already");
            return Ok(());
        }
        let Ok(update) = serde_json::from_value::<Update>(update) else {
            tracing::debug!(update_id = id, "an update of a shape the bot does not read");
            return Ok(());
        };
        let replies = match self.dialogue.respond(&update).await {
            Ok(replies) => replies,
            Err(error @ DirectoryError::Database(_)) => {
                self.unclaim(id).await?;
                return Err(error);
            }
            // Anything else would fail again: the update is dropped rather than block the ones after it.
            Err(error) => {
                tracing::warn!(update_id = id, %error, "an update the bot could not handle");
                return Ok(());
            }
        };
        for reply in replies {
            self.deliver(reply).await;
        }
        Ok(())
    }

    async fn claim(&self, id: i64) -> Result<bool, sqlx::Error> {
        let claimed = write!(&self.store, db => sqlx::query(
            "INSERT INTO notify_bot_updates (update_id, claimed_ms) VALUES ($1, $2) ON CONFLICT (update_id) DO NOTHING",
        )
        .bind(id)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(claimed == 1)
    }

    async fn unclaim(&self, id: i64) -> Result<(), sqlx::Error> {
        write!(&self.store, db => sqlx::query("DELETE FROM notify_bot_updates WHERE update_id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|_| ()))
    }

    /// The getUpdates offset: after the newest claimed update (0 before any).
    pub async fn next_offset(&self) -> Result<i64, sqlx::Error> {
        let newest: Option<i64> = read!(&self.store, db => sqlx::query_scalar(
            "SELECT MAX(update_id) FROM notify_bot_updates",
        )
        .fetch_one(db)
        .await)?;
        Ok(newest.map_or(0, |id| id + 1))
    }

    /// Forgets old claims at most once an hour, always keeping the newest (it is the offset).
    async fn prune_now_and_then(&self) {
        let now = now_ms();
        let last = self.pruned_ms.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_MS
            || self
                .pruned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pruned = write!(&self.store, db => sqlx::query(
            "DELETE FROM notify_bot_updates WHERE claimed_ms < $1
             AND update_id < (SELECT MAX(update_id) FROM notify_bot_updates)",
        )
        .bind(now - KEEP_CLAIMS_MS)
        .execute(db)
        .await
        .map(|_| ()));
        if let Err(error) = pruned {
            tracing::warn!(%error, "pruning the bot's old updates failed");
        }
    }

    /// Sends one reply; a 429 is waited out once. A reply that fails is logged (without its text) and dropped:
    /// the user can ask again, and an old answer arriving late would only confuse.
    async fn deliver(&self, reply: Reply) {
        let outcome = match &reply {
            Reply::Send {
                chat_id,
                text,
                keyboard,
            } => {
                let message = Outgoing {
                    chat_id: *chat_id,
                    thread_id: None,
                    text: text.clone(),
                    reply_markup: keyboard.clone(),
                };
                once_more(|| async { self.api.send_message(&message).await.map(|_| ()) }).await
            }
            Reply::Edit {
                chat_id,
                message_id,
                text,
                keyboard,
            } => {
                once_more(|| {
                    self.api
                        .edit_message_text(*chat_id, *message_id, text, keyboard.as_ref())
                })
                .await
            }
            Reply::Answer { callback_id, text } => {
                once_more(|| self.api.answer_callback_query(callback_id, text.as_deref())).await
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "a bot reply was not delivered");
        }
    }

    /// Long polling while this instance holds the lease (renewed every third of `lease_ttl`; another instance
    /// takes it over when this one dies). The lease is given up on a clean stop.
    pub async fn poll(
        self,
        leases: Leases,
        lease_ttl: Duration,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = self.take_turns(&leases, lease_ttl) => {}
        }
        if let Err(error) = leases.release(LEASE).await {
            tracing::warn!(%error, "giving up the bot's lease failed");
        }
        Ok(())
    }

    /// Waits for the lease, polls while it is held, and waits again when another instance took it.
    async fn take_turns(&self, leases: &Leases, lease_ttl: Duration) {
        loop {
            match leases.hold(LEASE, lease_ttl).await {
                Ok(true) => {
                    tokio::select! {
                        _ = self.poll_while_held() => {}
                        _ = keep_lease(leases, lease_ttl) => {
                            tracing::warn!("lost the bot's lease; another instance polls now");
                        }
                    }
                }
                Ok(false) => tokio::time::sleep(lease_ttl / 3).await,
                Err(error) => {
                    tracing::warn!(%error, "taking the bot's lease failed");
                    tokio::time::sleep(lease_ttl / 3).await;
                }
            }
        }
    }

    /// getUpdates from the persisted offset, handling each update; runs until cancelled.
    async fn poll_while_held(&self) {
        tracing::info!("the bot polls Telegram for updates");
        // A webhook left from webhook mode would make every getUpdates a 409.
        if let Err(error) = self.api.delete_webhook().await {
            tracing::warn!(%error, "deleting the webhook failed");
        }
        loop {
            let offset = match self.next_offset().await {
                Ok(offset) => offset,
                Err(error) => {
                    tracing::warn!(%error, "reading the bot's offset failed");
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    continue;
                }
            };
            self.polls.fetch_add(1, Ordering::Relaxed);
            let updates = match self.api.get_updates(offset, LONG_POLL).await {
                Ok(updates) => updates,
                Err(SendError::RetryAfter(wait)) => {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "getUpdates failed");
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    continue;
                }
            };
            for update in updates {
                if let Err(error) = self.handle(update).await {
                    // The rest of the batch waits: the next getUpdates starts at this update again.
                    tracing::warn!(%error, "handling an update failed");
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    break;
                }
            }
        }
    }

    /// Points Telegram at `url` (retrying until it agrees, or shutdown).
    pub async fn set_webhook(&self, url: &str, secret: &str, mut shutdown: Shutdown) {
        loop {
            match self.api.set_webhook(url, secret).await {
                Ok(()) => {
                    tracing::info!("Telegram posts the bot's updates to the webhook");
                    return;
                }
                Err(error) => tracing::warn!(%error, "setWebhook failed"),
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
        }
    }
}

/// Calls once more after the wait a 429 asked for.
async fn once_more<F, Fut>(call: F) -> Result<(), SendError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), SendError>>,
{
    match call().await {
        Err(SendError::RetryAfter(wait)) => {
            tokio::time::sleep(wait).await;
            call().await
        }
        outcome => outcome,
    }
}

/// Renews the lease until another instance has it, or the database failed for as long as the lease lasts.
async fn keep_lease(leases: &Leases, ttl: Duration) {
    let renew = ttl / 3;
    let mut failing = Duration::ZERO;
    loop {
        tokio::time::sleep(renew).await;
        match leases.hold(LEASE, ttl).await {
            Ok(true) => failing = Duration::ZERO,
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, "renewing the bot's lease failed");
                failing += renew;
                if failing + renew >= ttl {
                    return;
                }
            }
        }
    }
}

/// The webhook's secret, derived from the token (Telegram allows `A-Za-z0-9_-`, up to 256 characters): nothing
/// more to configure, and it changes with the token.
pub fn webhook_secret(token: &str) -> String {
    sha256_hex(&format!("tillwire telegram webhook {token}"))
}

/// The webhook's bot and secret, once there is a token.
type Ready = Arc<OnceLock<(Bot, Arc<str>)>>;

/// `POST /telegram/webhook`: the secret header is checked in constant time, the update claimed and handled in the
/// background, and Telegram answered at once; 503 while there is no bot token yet.
#[tracing::instrument(skip_all)]
async fn webhook(State(ready): State<Ready>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some((bot, secret)) = ready.get() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let Some(presented) = headers.get(SECRET_HEADER) else {
        return StatusCode::UNAUTHORIZED;
    };
    if !bool::from(presented.as_bytes().ct_eq(secret.as_bytes())) {
        tracing::warn!("a webhook call with a wrong secret");
        return StatusCode::FORBIDDEN;
    }
    let Ok(update) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // Telegram waits for the answer before it sends the next update; the replies need not hold it up.
    let bot = bot.clone();
    tokio::spawn(async move {
        if let Err(error) = bot.handle(update).await {
            tracing::warn!(%error, "handling a webhook update failed");
        }
    });
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_429_is_waited_out_once() {
        let calls = AtomicUsize::new(0);
        let flooded_once = || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(SendError::RetryAfter(Duration::from_millis(20))),
                _ => Ok(()),
            }
        };
        let started = std::time::Instant::now();
        assert_eq!(once_more(flooded_once).await, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_millis(20));

        let always = AtomicUsize::new(0);
        let flooded = || async {
            always.fetch_add(1, Ordering::SeqCst);
            Err(SendError::RetryAfter(Duration::from_millis(1)))
        };
        assert!(matches!(
            once_more(flooded).await,
            Err(SendError::RetryAfter(_))
        ));
        assert_eq!(always.load(Ordering::SeqCst), 2, "only once more");

        let refused = AtomicUsize::new(0);
        let bad = || async {
            refused.fetch_add(1, Ordering::SeqCst);
            Err(SendError::Refused("Bad Request".into()))
        };
        assert!(once_more(bad).await.is_err());
        assert_eq!(
            refused.load(Ordering::SeqCst),
            1,
            "other errors are not retried"
        );
    }
}
