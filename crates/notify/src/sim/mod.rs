//! A Telegram Bot API simulator (https://core.telegram.org/bots/api), built from the Bot API's documentation, not
//! from tillwire's client: methods answer under `/bot{token}/{method}` with the API's envelopes and error texts,
//! the flood limits are enforced with real 429s, chats can be made to block the bot, migrate to a supergroup,
//! fail or lose replies, and HTML is checked the way the server checks it. A test (or a person, under `/sim/`)
//! can read back what every chat received and which rate rules the client broke.

mod api;
pub mod html;
mod pages;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{any, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a chat does with the next messages sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "behaviour", rename_all = "snake_case")]
pub enum Behaviour {
    #[default]
    Normal,
    /// 403: `bot was blocked by the user` (private) or `bot was kicked from the group chat` (groups).
    Blocked,
    /// 400 `group chat was upgraded to a supergroup chat` with `parameters.migrate_to_chat_id = to`.
    Migrated { to: i64 },
    /// The next `count` sends answer 500 (JSON) and 502 (an HTML page from the proxy), alternately.
    ServerError { count: u32 },
    /// The next `count` messages are delivered but the connection is cut before the answer.
    LoseReply { count: u32 },
}

/// The flood limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// At most one message per chat in this interval (1 s).
    #[serde(with = "millis")]
    pub per_chat_interval: Duration,
    /// At most this many messages to one group chat (`chat_id < 0`) …
    pub group_max: u32,
    /// … within this window (20 a minute).
    #[serde(with = "millis")]
    pub group_window: Duration,
    /// At most this many messages in total …
    pub global_max: u32,
    /// … within this window (30 a second).
    #[serde(with = "millis")]
    pub global_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_chat_interval: Duration::from_secs(1),
            group_max: 20,
            group_window: Duration::from_secs(60),
            global_max: 30,
            global_window: Duration::from_secs(1),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}

/// A message the bot delivered to a chat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivered {
    pub chat_id: i64,
    pub message_id: i64,
    /// The text as sent (with tags and entities when `parse_mode` is HTML).
    pub text: String,
    /// What the chat sees: entities decoded, tags removed.
    pub visible_text: String,
    pub parse_mode: Option<String>,
    pub message_thread_id: Option<i64>,
    pub reply_markup: Option<Value>,
    pub disable_notification: bool,
    /// Unix seconds, as in the `Message`.
    pub date: i64,
    pub delivered_at: DateTime<Utc>,
    pub edited: bool,
    /// Delivered, but the answer was never sent (the client saw a network error).
    pub reply_lost: bool,
    /// Monotonic delivery time, for rate assertions.
    #[serde(skip)]
    pub at: Instant,
}

/// A send to a chat before the `retry_after` the simulator had given for it elapsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateViolation {
    pub chat_id: i64,
    pub at: DateTime<Utc>,
    /// How much earlier than allowed the request came.
    #[serde(with = "millis")]
    pub early_by: Duration,
}

/// A callback query answered with `answerCallbackQuery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnsweredCallback {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
}

#[derive(Default)]
struct ChatState {
    behaviour: Behaviour,
    next_message_id: i64,
    /// Delivery times within the group window (or the last one, for private chats).
    recent: VecDeque<Instant>,
    /// The end of the last `retry_after` given to this chat.
    retry_until: Option<Instant>,
    /// Sends that answered 500/502, to alternate them.
    server_errors: u32,
}

struct Webhook {
    url: String,
    secret: Option<String>,
    last_error: Option<(i64, String)>,
}

struct Inner {
    limits: Limits,
    strict_ampersand: bool,
    chats: HashMap<i64, ChatState>,
    messages: Vec<Delivered>,
    global_recent: VecDeque<Instant>,
    violations: Vec<RateViolation>,
    lost_replies: usize,
    /// Updates not yet confirmed (getUpdates offset) or delivered (webhook).
    updates: VecDeque<Value>,
    next_update_id: i64,
    webhook: Option<Webhook>,
    webhook_retry: Duration,
    webhook_attempts: usize,
    /// Each getUpdates call takes a number; a waiting one that sees a newer one answers 409.
    poll_generation: u64,
    open_callbacks: HashMap<String, i64>,
    answered: Vec<AnsweredCallback>,
    next_callback: u64,
    /// Users' `language_code` other than the default `ru` (`None`: the user's client sends none).
    languages: HashMap<i64, Option<String>>,
}

struct Shared {
    token: String,
    bot_id: i64,
    inner: Mutex<Inner>,
    arrived: tokio::sync::Notify,
    webhook_running: AtomicBool,
    http: reqwest::Client,
}

/// The simulated Bot API of one bot, shared by the HTTP side and the test driving it.
#[derive(Clone)]
pub struct TelegramSim(Arc<Shared>);

/// The default token of `tillwire sim telegram`.
pub const DEFAULT_TOKEN: &str = "123456:SIMULATED";

impl TelegramSim {
    /// A bot with this token (its id is the number before `:`, as in real tokens).
    pub fn new(token: &str) -> Self {
        let bot_id = token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(123_456);
        TelegramSim(Arc::new(Shared {
            token: token.to_owned(),
            bot_id,
            inner: Mutex::new(Inner {
                limits: Limits::default(),
                strict_ampersand: true,
                chats: HashMap::new(),
                messages: Vec::new(),
                global_recent: VecDeque::new(),
                violations: Vec::new(),
                lost_replies: 0,
                updates: VecDeque::new(),
                next_update_id: 100_000_001,
                webhook: None,
                webhook_retry: Duration::from_millis(500),
                webhook_attempts: 0,
                poll_generation: 0,
                open_callbacks: HashMap::new(),
                answered: Vec::new(),
                next_callback: 1,
                languages: HashMap::new(),
            }),
            arrived: tokio::sync::Notify::new(),
            webhook_running: AtomicBool::new(false),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }))
    }

    fn with<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .0
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut inner)
    }

    pub fn token(&self) -> &str {
        &self.0.token
    }

    /// Sets what `chat_id` does with the next messages.
    pub fn set_chat(&self, chat_id: i64, behaviour: Behaviour) {
        self.with(|inner| inner.chats.entry(chat_id).or_default().behaviour = behaviour);
    }

    pub fn behaviour(&self, chat_id: i64) -> Behaviour {
        self.with(|inner| {
            inner
                .chats
                .get(&chat_id)
                .map(|chat| chat.behaviour.clone())
                .unwrap_or_default()
        })
    }

    pub fn set_limits(&self, limits: Limits) {
        self.with(|inner| inner.limits = limits);
    }

    pub fn limits(&self) -> Limits {
        self.with(|inner| inner.limits)
    }

    /// Whether a `&` that starts no supported entity is refused (the default, as the documentation says it
    /// "must be replaced"; the real server has been seen to keep it as text).
    pub fn set_strict_ampersand(&self, strict: bool) {
        self.with(|inner| inner.strict_ampersand = strict);
    }

    /// How long the webhook sender waits before retrying an update the webhook did not answer with 2xx.
    pub fn set_webhook_retry(&self, delay: Duration) {
        self.with(|inner| inner.webhook_retry = delay);
    }

    /// What `chat_id` received, oldest first.
    pub fn messages(&self, chat_id: i64) -> Vec<Delivered> {
        self.with(|inner| {
            inner
                .messages
                .iter()
                .filter(|m| m.chat_id == chat_id)
                .cloned()
                .collect()
        })
    }

    /// Every delivered message, in delivery order.
    pub fn all_messages(&self) -> Vec<Delivered> {
        self.with(|inner| inner.messages.clone())
    }

    /// The shortest gap between two messages delivered to `chat_id` (None with fewer than two).
    pub fn shortest_gap(&self, chat_id: i64) -> Option<Duration> {
        let times: Vec<Instant> = self.messages(chat_id).iter().map(|m| m.at).collect();
        times.windows(2).map(|pair| pair[1] - pair[0]).min()
    }

    /// Sends the client made to a chat before the `retry_after` it had been given elapsed.
    pub fn rate_violations(&self) -> Vec<RateViolation> {
        self.with(|inner| inner.violations.clone())
    }

    /// How many messages were delivered without the client getting the answer.
    pub fn lost_replies(&self) -> usize {
        self.with(|inner| inner.lost_replies)
    }

    pub fn answered_callbacks(&self) -> Vec<AnsweredCallback> {
        self.with(|inner| inner.answered.clone())
    }

    /// Updates not yet confirmed by getUpdates or accepted by the webhook.
    pub fn pending_updates(&self) -> usize {
        self.with(|inner| inner.updates.len())
    }

    /// POSTs made to the webhook, answered or not.
    pub fn webhook_attempts(&self) -> usize {
        self.with(|inner| inner.webhook_attempts)
    }

    /// The `language_code` a user's updates carry from now on (`None`: none at all); `ru` until set.
    pub fn set_user_language(&self, user_id: i64, language_code: Option<&str>) {
        self.with(|inner| {
            inner
                .languages
                .insert(user_id, language_code.map(str::to_owned))
        });
    }

    /// A user writes `text` in `chat_id`; returns the update's id.
    pub fn push_message(&self, chat_id: i64, from_user_id: i64, text: &str) -> i64 {
        let id = self.with(|inner| {
            let message_id = next_message_id(inner, chat_id);
            let message = json!({
                "message_id": message_id,
                "from": user(inner, from_user_id),
                "chat": chat(chat_id),
                "date": Utc::now().timestamp(),
                "text": text,
            });
            push_update(inner, "message", message)
        });
        self.updated();
        id
    }

    /// A user presses an inline button carrying `data` under the bot's message `message_id`; returns the
    /// update's id (the callback query's id is in the update).
    pub fn push_callback(
        &self,
        chat_id: i64,
        from_user_id: i64,
        message_id: i64,
        data: &str,
    ) -> i64 {
        let id = self.with(|inner| {
            let message = inner
                .messages
                .iter()
                .find(|m| m.chat_id == chat_id && m.message_id == message_id)
                .map(|m| api::message_json(self.0.bot_id, m))
                .unwrap_or_else(|| {
                    json!({"message_id": message_id, "chat": chat(chat_id), "date": Utc::now().timestamp()})
                });
            let query_id = format!("{}{:06}", self.0.bot_id, inner.next_callback);
            inner.next_callback += 1;
            inner.open_callbacks.insert(query_id.clone(), chat_id);
            let query = json!({
                "id": query_id,
                "from": user(inner, from_user_id),
                "message": message,
                "chat_instance": format!("{}", chat_id.unsigned_abs() * 7919),
                "data": data,
            });
            push_update(inner, "callback_query", query)
        });
        self.updated();
        id
    }

    fn updated(&self) {
        self.0.arrived.notify_waiters();
    }

    /// Serves the Bot API on a free loopback port until the process ends; the base URL (`http://…`), to which
    /// a client appends `/bot{token}/{method}`.
    pub async fn serve_on_loopback(&self) -> std::io::Result<String> {
        tillwire_platform::server::serve_on_loopback(self.router()).await
    }

    /// The HTTP side: the Bot API under `/bot{token}/{method}`, the inspection pages and JSON under `/sim/`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/sim/", get(pages::index))
            .route("/sim", get(pages::index))
            .route("/sim/messages", get(pages::messages))
            .route("/sim/violations", get(pages::violations))
            .route("/sim/chats/{chat_id}", post(pages::set_chat))
            .route("/sim/updates", post(pages::push_update))
            .route("/sim/limits", get(pages::limits).post(pages::set_limits))
            .route("/{bot}/{method}", any(api::call))
            .fallback(api::not_found)
            .with_state(self.clone())
    }

    /// Starts the webhook sender unless it runs: it POSTs pending updates, oldest first, to the webhook with
    /// the secret header, and retries an update until the webhook answers 2xx; it stops when the webhook is
    /// deleted.
    fn start_webhook_sender(&self) {
        if self.0.webhook_running.swap(true, Ordering::SeqCst) {
            return;
        }
        let sim = self.clone();
        tokio::spawn(async move {
            loop {
                let notified = sim.0.arrived.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let next = sim.with(|inner| {
                    let webhook = inner.webhook.as_ref()?;
                    Some((
                        webhook.url.clone(),
                        webhook.secret.clone(),
                        inner.updates.front().cloned(),
                        inner.webhook_retry,
                    ))
                });
                let Some((url, secret, update, retry)) = next else {
                    sim.0.webhook_running.store(false, Ordering::SeqCst);
                    // A webhook set between the check and the store would find the flag still up.
                    if sim.with(|inner| inner.webhook.is_some())
                        && !sim.0.webhook_running.swap(true, Ordering::SeqCst)
                    {
                        continue;
                    }
                    return;
                };
                let Some(update) = update else {
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                    continue;
                };
                let mut request = sim.0.http.post(&url).json(&update);
                if let Some(secret) = &secret {
                    request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
                }
                sim.with(|inner| inner.webhook_attempts += 1);
                let outcome = match request.send().await {
                    Ok(response) if response.status().is_success() => Ok(()),
                    Ok(response) => Err(format!(
                        "Wrong response from the webhook: {}",
                        response.status()
                    )),
                    Err(error) => Err(format!("Connection failed: {error}")),
                };
                let id = update["update_id"].as_i64();
                sim.with(|inner| match &outcome {
                    Ok(()) => {
                        if inner.updates.front().and_then(|u| u["update_id"].as_i64()) == id {
                            inner.updates.pop_front();
                        }
                    }
                    Err(message) => {
                        if let Some(webhook) = inner.webhook.as_mut() {
                            webhook.last_error = Some((Utc::now().timestamp(), message.clone()));
                        }
                    }
                });
                if outcome.is_err() {
                    tokio::time::sleep(retry).await;
                }
            }
        });
    }
}

fn push_update(inner: &mut Inner, kind: &str, payload: Value) -> i64 {
    let id = inner.next_update_id;
    inner.next_update_id += 1;
    let mut update = serde_json::Map::new();
    update.insert("update_id".into(), json!(id));
    update.insert(kind.into(), payload);
    inner.updates.push_back(Value::Object(update));
    id
}

fn next_message_id(inner: &mut Inner, chat_id: i64) -> i64 {
    let chat = inner.chats.entry(chat_id).or_default();
    chat.next_message_id += 1;
    chat.next_message_id
}

/// A chat's type as its id tells it: users are positive, basic groups negative, supergroups and channels
/// `-100…`.
pub fn chat_type(chat_id: i64) -> &'static str {
    if chat_id > 0 {
        "private"
    } else if chat_id <= -1_000_000_000_000 {
        "supergroup"
    } else {
        "group"
    }
}

fn chat(chat_id: i64) -> Value {
    match chat_type(chat_id) {
        "private" => {
            json!({"id": chat_id, "type": "private", "first_name": format!("User {chat_id}")})
        }
        kind => json!({"id": chat_id, "type": kind, "title": format!("Chat {chat_id}")}),
    }
}

fn user(inner: &Inner, user_id: i64) -> Value {
    let mut user = json!({"id": user_id, "is_bot": false, "first_name": format!("User {user_id}")});
    match inner.languages.get(&user_id) {
        None => user["language_code"] = json!("ru"),
        Some(Some(code)) => user["language_code"] = json!(code),
        Some(None) => {}
    }
    user
}
