//! The Bot API methods: parameters from the query string, a JSON body or a form body, answers in the API's
//! envelope (`{"ok":true,"result":…}` or `{"ok":false,"error_code":…,"description":…}` with the same HTTP
//! status).

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{
    AnsweredCallback, Behaviour, Delivered, Inner, RateViolation, TelegramSim, Webhook, chat,
    chat_type, html,
};

/// A failed call: the HTTP status is the error code.
pub(super) struct ApiError {
    code: u16,
    description: String,
    parameters: Option<Value>,
}

fn error(code: u16, description: impl Into<String>) -> ApiError {
    ApiError {
        code,
        description: description.into(),
        parameters: None,
    }
}

fn bad_request(description: &str) -> ApiError {
    error(400, format!("Bad Request: {description}"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body =
            json!({"ok": false, "error_code": self.code, "description": self.description});
        if let Some(parameters) = self.parameters {
            body["parameters"] = parameters;
        }
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(body)).into_response()
    }
}

/// What a method answers: a result, an error, a 502 page from the proxy in front, or a reply that is lost.
enum Answer {
    Ok(Value),
    /// `{"ok":true,"result":…,"description":…}` (setWebhook and deleteWebhook say what they did).
    OkSaying(Value, &'static str),
    Err(ApiError),
    BadGateway,
    Lost,
}

impl From<ApiError> for Answer {
    fn from(error: ApiError) -> Self {
        Answer::Err(error)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Ok(result) => axum::Json(json!({"ok": true, "result": result})).into_response(),
            Answer::OkSaying(result, description) => {
                axum::Json(json!({"ok": true, "result": result, "description": description}))
                    .into_response()
            }
            Answer::Err(error) => error.into_response(),
            Answer::BadGateway => (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n",
            )
                .into_response(),
            // A body that fails at once: the connection is cut before an answer is read.
            Answer::Lost => Response::new(Body::from_stream(futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("simulated lost reply"))
            }))),
        }
    }
}

pub(super) async fn not_found() -> Response {
    error(404, "Not Found").into_response()
}

pub(super) async fn call(
    State(sim): State<TelegramSim>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return not_found().await;
    };
    if token != sim.0.token {
        return error(401, "Unauthorized").into_response();
    }
    let params = match params(query.as_deref(), &headers, &body) {
        Ok(params) => Params(params),
        Err(error) => return error.into_response(),
    };
    // Method names are case-insensitive.
    let answer = match method.to_ascii_lowercase().as_str() {
        "getme" => Answer::Ok(json!({
            "id": sim.0.bot_id,
            "is_bot": true,
            "first_name": "Tillwire (simulated)",
            "username": "tillwire_sim_bot",
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })),
        "sendmessage" => send_message(&sim, &params),
        "editmessagetext" => edit_message_text(&sim, &params),
        "getupdates" => get_updates(&sim, &params).await,
        "setwebhook" => set_webhook(&sim, &params),
        "deletewebhook" => delete_webhook(&sim, &params),
        "getwebhookinfo" => webhook_info(&sim),
        "answercallbackquery" => answer_callback(&sim, &params),
        _ => Answer::Err(error(404, "Not Found")),
    };
    answer.into_response()
}

/// The parameters of a call: the query string's, then the body's (JSON or form) over them.
fn params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    let mut params = Map::new();
    for (name, value) in form_pairs(query.unwrap_or_default()) {
        params.insert(name, Value::String(value));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if body.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            Ok(_) => {}
            Err(_) => return Err(bad_request("can't parse JSON object")),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(body);
        for (name, value) in form_pairs(&text) {
            params.insert(name, Value::String(value));
        }
    }
    Ok(params)
}

/// `a=1&b=x+y%21` as pairs, percent-decoded, `+` as a space (a bad escape is kept as it is).
fn form_pairs(text: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(text).unwrap_or_default()
}

/// Typed access to parameters that are JSON values or, from a form or query, strings.
struct Params(Map<String, Value>);

impl Params {
    fn string(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad_request(&format!("invalid {name} specified"))),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad_request(&format!("invalid {name} specified"))),
            Some(_) => Err(bad_request(&format!("invalid {name} specified"))),
        }
    }

    fn bool(&self, name: &str) -> bool {
        match self.0.get(name) {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => matches!(text.as_str(), "true" | "True" | "1"),
            Some(Value::Number(number)) => number.as_i64() == Some(1),
            _ => false,
        }
    }

    /// A JSON-serialized object (form and query bodies) or the object itself (JSON bodies).
    fn object(&self, name: &str) -> Result<Option<Value>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => serde_json::from_str(text)
                .map(Some)
                .map_err(|_| bad_request(&format!("can't parse {name} JSON object"))),
            Some(value) => Ok(Some(value.clone())),
        }
    }

    fn chat_id(&self) -> Result<i64, ApiError> {
        match self.0.get("chat_id") {
            None | Some(Value::Null) => Err(bad_request("chat_id is empty")),
            Some(Value::String(text)) if text.trim().is_empty() => {
                Err(bad_request("chat_id is empty"))
            }
            // `@channelusername` or anything else that is not a number: no such chat is simulated.
            Some(Value::String(text)) => text
                .trim()
                .parse()
                .map_err(|_| bad_request("chat not found")),
            Some(Value::Number(number)) => {
                number.as_i64().ok_or_else(|| bad_request("chat not found"))
            }
            Some(_) => Err(bad_request("chat not found")),
        }
    }
}

/// The text and what the chat sees of it, checked as the server checks `sendMessage`'s and
/// `editMessageText`'s `text` with its `parse_mode`.
fn checked_text(
    sim: &TelegramSim,
    params: &Params,
) -> Result<(String, String, Option<String>), ApiError> {
    let text = params.string("text").unwrap_or_default();
    let parse_mode = params.string("parse_mode").filter(|mode| !mode.is_empty());
    let visible = match parse_mode
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => text.clone(),
        Some("html") => {
            let strict = sim.with(|inner| inner.strict_ampersand);
            html::visible_text(&text, strict)
                .map_err(|why| bad_request(&format!("can't parse entities: {why}")))?
        }
        // MarkdownV2 and Markdown exist in the real API; the simulator does not check them, so it refuses them
        // rather than accept text it cannot judge.
        Some(_) => return Err(bad_request("unsupported parse_mode")),
    };
    if visible.trim().is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if visible.encode_utf16().count() > 4096 {
        return Err(bad_request("message is too long"));
    }
    Ok((text, visible, parse_mode))
}

/// `reply_markup`: an inline keyboard is an array of rows of buttons, each with a text and one action;
/// `callback_data` is 1–64 bytes.
fn checked_markup(params: &Params) -> Result<Option<Value>, ApiError> {
    let Some(markup) = params.object("reply_markup")? else {
        return Ok(None);
    };
    if let Some(keyboard) = markup.get("inline_keyboard") {
        let rows = keyboard
            .as_array()
            .ok_or_else(|| bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays"))?;
        for row in rows {
            let buttons = row.as_array().ok_or_else(|| {
                bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays")
            })?;
            for button in buttons {
                if button.get("text").and_then(Value::as_str).is_none() {
                    return Err(bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                    ));
                }
                if let Some(data) = button.get("callback_data") {
                    let length = data.as_str().map_or(0, str::len);
                    if !(1..=64).contains(&length) {
                        return Err(bad_request("BUTTON_DATA_INVALID"));
                    }
                } else if button.get("url").is_none() {
                    return Err(bad_request(
                        "can't parse inline keyboard button: InlineKeyboardButton must have exactly one optional field",
                    ));
                }
            }
        }
    }
    Ok(Some(markup))
}

/// The `Message` object of a delivered message.
pub(super) fn message_json(bot_id: i64, message: &Delivered) -> Value {
    let mut value = json!({
        "message_id": message.message_id,
        "from": {"id": bot_id, "is_bot": true, "first_name": "Tillwire (simulated)", "username": "tillwire_sim_bot"},
        "chat": chat(message.chat_id),
        "date": message.date,
        "text": message.visible_text,
    });
    if let Some(thread) = message.message_thread_id {
        value["message_thread_id"] = json!(thread);
        if chat_type(message.chat_id) == "supergroup" {
            value["is_topic_message"] = json!(true);
        }
    }
    if message.edited {
        value["edit_date"] = json!(Utc::now().timestamp());
    }
    if let Some(markup) = &message.reply_markup {
        value["reply_markup"] = markup.clone();
    }
    value
}

fn retry_after(wait: Duration) -> u64 {
    (wait.as_millis().div_ceil(1000) as u64).max(1)
}

/// What a blocked or migrated chat answers, or a server error it was told to give.
fn chat_refusal(inner: &mut Inner, chat_id: i64) -> Option<Answer> {
    let chat = inner.chats.entry(chat_id).or_default();
    match &mut chat.behaviour {
        Behaviour::Blocked => Some(Answer::Err(error(
            403,
            match chat_type(chat_id) {
                "private" => "Forbidden: bot was blocked by the user",
                "group" => "Forbidden: bot was kicked from the group chat",
                _ => "Forbidden: bot was kicked from the supergroup chat",
            },
        ))),
        Behaviour::Migrated { to } => Some(Answer::Err(ApiError {
            code: 400,
            description: "Bad Request: group chat was upgraded to a supergroup chat".into(),
            parameters: Some(json!({"migrate_to_chat_id": *to})),
        })),
        Behaviour::ServerError { count } => {
            *count = count.saturating_sub(1);
            if *count == 0 {
                chat.behaviour = Behaviour::Normal;
            }
            chat.server_errors += 1;
            Some(if chat.server_errors % 2 == 1 {
                Answer::Err(error(500, "Internal Server Error"))
            } else {
                Answer::BadGateway
            })
        }
        _ => None,
    }
}

/// The wait before `chat_id` may get another message under the limits, if it must wait.
fn flood_wait(inner: &mut Inner, chat_id: i64, now: Instant) -> Option<Duration> {
    let limits = inner.limits;
    let mut wait = Duration::ZERO;
    while inner
        .global_recent
        .front()
        .is_some_and(|at| now - *at >= limits.global_window)
    {
        inner.global_recent.pop_front();
    }
    if inner.global_recent.len() >= limits.global_max as usize
        && let Some(oldest) = inner.global_recent.front()
    {
        wait = wait.max(limits.global_window - (now - *oldest));
    }
    let chat = inner.chats.entry(chat_id).or_default();
    let window = if chat_id < 0 {
        limits.group_window.max(limits.per_chat_interval)
    } else {
        limits.per_chat_interval
    };
    while chat.recent.front().is_some_and(|at| now - *at >= window) {
        chat.recent.pop_front();
    }
    if let Some(last) = chat.recent.back()
        && now - *last < limits.per_chat_interval
    {
        wait = wait.max(limits.per_chat_interval - (now - *last));
    }
    if chat_id < 0 {
        let in_window = chat
            .recent
            .iter()
            .filter(|at| now - **at < limits.group_window)
            .count();
        if in_window >= limits.group_max as usize {
            let index = in_window - limits.group_max as usize;
            if let Some(at) = chat
                .recent
                .iter()
                .filter(|at| now - **at < limits.group_window)
                .nth(index)
            {
                wait = wait.max(limits.group_window - (now - *at));
            }
        }
    }
    (!wait.is_zero()).then_some(wait)
}

fn send_message(sim: &TelegramSim, params: &Params) -> Answer {
    let attempt = || -> Result<Answer, ApiError> {
        let chat_id = params.chat_id()?;
        let (text, visible_text, parse_mode) = checked_text(sim, params)?;
        let reply_markup = checked_markup(params)?;
        let message_thread_id = params.int("message_thread_id")?;
        let disable_notification = params.bool("disable_notification");
        Ok(sim.with(|inner| {
            let now = Instant::now();
            let chat = inner.chats.entry(chat_id).or_default();
            if let Some(until) = chat.retry_until.filter(|until| *until > now) {
                inner.violations.push(RateViolation {
                    chat_id,
                    at: Utc::now(),
                    early_by: until - now,
                });
            }
            if let Some(refusal) = chat_refusal(inner, chat_id) {
                return refusal;
            }
            if let Some(wait) = flood_wait(inner, chat_id, now) {
                let seconds = retry_after(wait);
                inner.chats.entry(chat_id).or_default().retry_until =
                    Some(now + Duration::from_secs(seconds));
                return Answer::Err(ApiError {
                    code: 429,
                    description: format!("Too Many Requests: retry after {seconds}"),
                    parameters: Some(json!({"retry_after": seconds})),
                });
            }
            let chat = inner.chats.entry(chat_id).or_default();
            chat.recent.push_back(now);
            chat.next_message_id += 1;
            let message_id = chat.next_message_id;
            let lose = match &mut chat.behaviour {
                Behaviour::LoseReply { count } => {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        chat.behaviour = Behaviour::Normal;
                    }
                    true
                }
                _ => false,
            };
            inner.global_recent.push_back(now);
            let delivered = Delivered {
                chat_id,
                message_id,
                text,
                visible_text,
                parse_mode,
                message_thread_id,
                reply_markup,
                disable_notification,
                date: Utc::now().timestamp(),
                delivered_at: Utc::now(),
                edited: false,
                reply_lost: lose,
                at: now,
            };
            let answer = if lose {
                inner.lost_replies += 1;
                Answer::Lost
            } else {
                Answer::Ok(message_json(sim.0.bot_id, &delivered))
            };
            inner.messages.push(delivered);
            answer
        }))
    };
    attempt().unwrap_or_else(Answer::Err)
}

fn edit_message_text(sim: &TelegramSim, params: &Params) -> Answer {
    let attempt = || -> Result<Answer, ApiError> {
        let chat_id = params.chat_id()?;
        let message_id = params
            .int("message_id")?
            .ok_or_else(|| bad_request("message identifier is not specified"))?;
        let (text, visible_text, parse_mode) = checked_text(sim, params)?;
        let reply_markup = checked_markup(params)?;
        sim.with(|inner| {
            if let Some(refusal @ Answer::Err(ApiError { code: 403 | 400, .. })) =
                chat_refusal_without_errors(inner, chat_id)
            {
                return Ok(refusal);
            }
            let message = inner
                .messages
                .iter_mut()
                .find(|m| m.chat_id == chat_id && m.message_id == message_id)
                .ok_or_else(|| bad_request("message to edit not found"))?;
            if message.visible_text == visible_text && message.reply_markup == reply_markup {
                return Err(bad_request(
                    "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                ));
            }
            message.text = text;
            message.visible_text = visible_text;
            message.parse_mode = parse_mode;
            message.reply_markup = reply_markup;
            message.edited = true;
            Ok(Answer::Ok(message_json(sim.0.bot_id, message)))
        })
    };
    attempt().unwrap_or_else(Answer::Err)
}

/// A blocked or migrated chat's refusal, leaving a pending server-error count alone.
fn chat_refusal_without_errors(inner: &mut Inner, chat_id: i64) -> Option<Answer> {
    match inner.chats.get(&chat_id).map(|chat| &chat.behaviour) {
        Some(Behaviour::Blocked | Behaviour::Migrated { .. }) => chat_refusal(inner, chat_id),
        _ => None,
    }
}

const CONFLICT_WEBHOOK: &str = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
const CONFLICT_POLL: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

async fn get_updates(sim: &TelegramSim, params: &Params) -> Answer {
    let (offset, limit, timeout) = match (
        params.int("offset"),
        params.int("limit"),
        params.int("timeout"),
    ) {
        (Ok(offset), Ok(limit), Ok(timeout)) => (
            offset.unwrap_or(0),
            limit.unwrap_or(100).clamp(1, 100) as usize,
            timeout.unwrap_or(0).clamp(0, 50) as u64,
        ),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => return Answer::Err(error),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let generation = sim.with(|inner| {
        inner.poll_generation += 1;
        inner.poll_generation
    });
    // A getUpdates that is waiting learns it has been replaced.
    sim.updated();
    loop {
        let notified = sim.0.arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let found = sim.with(|inner| {
            if inner.webhook.is_some() {
                return Err(error(409, CONFLICT_WEBHOOK));
            }
            if inner.poll_generation != generation {
                return Err(error(409, CONFLICT_POLL));
            }
            // A positive offset confirms every update below it; a negative one asks for the last ones.
            if offset > 0 {
                inner
                    .updates
                    .retain(|u| u["update_id"].as_i64().is_some_and(|id| id >= offset));
            }
            let skip = if offset < 0 {
                inner
                    .updates
                    .len()
                    .saturating_sub(offset.unsigned_abs() as usize)
            } else {
                0
            };
            Ok(inner
                .updates
                .iter()
                .skip(skip)
                .take(limit)
                .cloned()
                .collect::<Vec<_>>())
        });
        match found {
            Err(error) => return Answer::Err(error),
            Ok(updates) if !updates.is_empty() || tokio::time::Instant::now() >= deadline => {
                return Answer::Ok(Value::Array(updates));
            }
            Ok(_) => {
                // Woken by a new update, another getUpdates or a webhook, or the deadline.
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    continue;
                }
            }
        }
    }
}

fn set_webhook(sim: &TelegramSim, params: &Params) -> Answer {
    let url = params.string("url").unwrap_or_default();
    if url.is_empty() {
        return delete_webhook(sim, params);
    }
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default())
        .unwrap_or_default();
    let loopback = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == *name || host.starts_with(&format!("{name}:")));
    // The real API wants https; plain http is let through for loopback receivers in tests.
    if !(url.starts_with("https://") || (url.starts_with("http://") && loopback)) {
        return bad_request("bad webhook: An HTTPS URL must be provided for webhook").into();
    }
    let secret = params.string("secret_token").filter(|s| !s.is_empty());
    if let Some(secret) = &secret
        && (secret.len() > 256
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return bad_request("secret token contains unallowed characters").into();
    }
    let drop_pending = params.bool("drop_pending_updates");
    sim.with(|inner| {
        if drop_pending {
            inner.updates.clear();
        }
        inner.webhook = Some(Webhook {
            url,
            secret,
            last_error: None,
        });
    });
    sim.updated();
    sim.start_webhook_sender();
    Answer::OkSaying(json!(true), "Webhook was set")
}

fn delete_webhook(sim: &TelegramSim, params: &Params) -> Answer {
    let drop_pending = params.bool("drop_pending_updates");
    let had = sim.with(|inner| {
        if drop_pending {
            inner.updates.clear();
        }
        inner.webhook.take().is_some()
    });
    sim.updated();
    Answer::OkSaying(
        json!(true),
        if had {
            "Webhook was deleted"
        } else {
            "Webhook is already deleted"
        },
    )
}

fn webhook_info(sim: &TelegramSim) -> Answer {
    Answer::Ok(sim.with(|inner| {
        let mut info = json!({
            "url": inner.webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
            "has_custom_certificate": false,
            "pending_update_count": inner.updates.len(),
        });
        if let Some(webhook) = &inner.webhook {
            info["max_connections"] = json!(40);
            if let Some((date, message)) = &webhook.last_error {
                info["last_error_date"] = json!(date);
                info["last_error_message"] = json!(message);
            }
        }
        info
    }))
}

fn answer_callback(sim: &TelegramSim, params: &Params) -> Answer {
    let Some(id) = params
        .string("callback_query_id")
        .filter(|id| !id.is_empty())
    else {
        return bad_request("query is too old and response timeout expired or query ID is invalid")
            .into();
    };
    let text = params.string("text");
    let show_alert = params.bool("show_alert");
    sim.with(|inner| {
        if inner.open_callbacks.remove(&id).is_none() {
            return bad_request(
                "query is too old and response timeout expired or query ID is invalid",
            )
            .into();
        }
        inner.answered.push(AnsweredCallback {
            callback_query_id: id,
            text,
            show_alert,
        });
        Answer::Ok(json!(true))
    })
}
