//! The Telegram Bot API client: `sendMessage` in HTML parse mode (with forum topics and inline keyboards), `getMe`,
//! the bot's `getUpdates`, webhook, `editMessageText` and `answerCallbackQuery`, and every answer sorted into what
//! the sender does next. The bot token is part of every URL, so no error that leaves this module
//! carries a URL, and the client's `Debug` shows no token.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// How long one request may take (a long poll of `getUpdates` sets its own).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the Bot API is, and the bot's token.
#[derive(Clone)]
pub struct BotApi {
    client: reqwest::Client,
    api_url: String,
    token: String,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi")
            .field("api_url", &self.api_url)
            .field("token", &"…")
            .finish()
    }
}

/// What a send came to, when it did not deliver.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// 429: wait this long, then send again.
    #[error("Telegram asks to wait {0:?}")]
    RetryAfter(Duration),
    /// 403: the bot was blocked by the user, or removed from the group. The chat stops receiving.
    #[error("the chat does not take messages from the bot: {0}")]
    Blocked(String),
    /// 400 with `migrate_to_chat_id`: the group became a supergroup with this id; send there.
    #[error("the group moved to chat {0}")]
    Migrated(i64),
    /// Any other 4xx: sending the same again cannot help (bad HTML, no such chat, a bad token).
    #[error("Telegram refused the message: {0}")]
    Refused(String),
    /// 5xx, a network error, a timeout, an answer that is not the Bot API's: try again later.
    #[error("Telegram is unavailable: {0}")]
    Unavailable(String),
}

/// The Bot API's answer envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub chat_id: i64,
    /// A forum topic of the chat.
    pub thread_id: Option<i64>,
    /// HTML parse mode text (see [`crate::html`]).
    pub text: String,
    /// An inline keyboard (`{"inline_keyboard": [[…]]}`), for the bot's replies.
    pub reply_markup: Option<Value>,
}

impl BotApi {
    /// A client of the Bot API at `api_url` (`https://api.telegram.org`, or a simulator) for the bot `token`.
    pub fn new(api_url: &str, token: &str) -> Self {
        BotApi {
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a client with only timeouts set builds"),
            api_url: api_url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
        }
    }

    /// Calls `method` with a JSON body; the `result` of a successful answer.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        self.call_within(method, body, REQUEST_TIMEOUT).await
    }

    /// [`BotApi::call`] that may take `timeout` (a long poll waits for updates).
    async fn call_within(
        &self,
        method: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, SendError> {
        let url = format!("{}/bot{}/{method}", self.api_url, self.token);
        let response = self
            .client
            .post(url)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|error| SendError::Unavailable(error.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| SendError::Unavailable(error.without_url().to_string()))?;
        let Ok(envelope) = serde_json::from_str::<Envelope>(&text) else {
            return Err(if status >= 500 || status == 429 {
                SendError::Unavailable(format!("HTTP {status}"))
            } else {
                SendError::Refused(format!("HTTP {status} without the Bot API's answer"))
            });
        };
        if envelope.ok {
            return Ok(envelope.result.unwrap_or(Value::Null));
        }
        Err(classify(status, envelope))
    }

    /// Sends one message in HTML parse mode; the message's id in its chat.
    pub async fn send_message(&self, message: &Outgoing) -> Result<i64, SendError> {
        let mut body = json!({
            "chat_id": message.chat_id,
            "text": message.text,
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        });
        if let Some(thread) = message.thread_id {
            body["message_thread_id"] = json!(thread);
        }
        if let Some(markup) = &message.reply_markup {
            body["reply_markup"] = markup.clone();
        }
        let result = self.call("sendMessage", &body).await?;
        Ok(result["message_id"].as_i64().unwrap_or_default())
    }

    /// Replaces the text (HTML) and inline keyboard of the bot's message `message_id`. A message that would not
    /// change is not an error.
    pub async fn edit_message_text(
        &self,
        chat_id: i64,
        message_id: i64,
        text: &str,
        reply_markup: Option<&Value>,
    ) -> Result<(), SendError> {
        let mut body = json!({
            "chat_id": chat_id,
            "message_id": message_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        });
        if let Some(markup) = reply_markup {
            body["reply_markup"] = markup.clone();
        }
        match self.call("editMessageText", &body).await {
            Err(SendError::Refused(said)) if said.contains("message is not modified") => Ok(()),
            outcome => outcome.map(|_| ()),
        }
    }

    /// Stops the spinner on a pressed inline button, with a short notice when `text` is given.
    pub async fn answer_callback_query(
        &self,
        callback_query_id: &str,
        text: Option<&str>,
    ) -> Result<(), SendError> {
        let mut body = json!({ "callback_query_id": callback_query_id });
        if let Some(text) = text {
            body["text"] = json!(text);
        }
        self.call("answerCallbackQuery", &body).await.map(|_| ())
    }

    /// Updates after `offset` (which confirms every update before it), waiting up to `wait` for one.
    pub async fn get_updates(&self, offset: i64, wait: Duration) -> Result<Vec<Value>, SendError> {
        let body = json!({
            "offset": offset,
            "timeout": wait.as_secs(),
            "allowed_updates": ["message", "callback_query"],
        });
        let result = self
            .call_within("getUpdates", &body, wait + REQUEST_TIMEOUT)
            .await?;
        match result {
            Value::Array(updates) => Ok(updates),
            _ => Err(SendError::Unavailable("getUpdates answered no list".into())),
        }
    }

    /// Has Telegram POST updates to `url`, with `secret` in `X-Telegram-Bot-Api-Secret-Token`.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), SendError> {
        let body = json!({
            "url": url,
            "secret_token": secret,
            "allowed_updates": ["message", "callback_query"],
        });
        self.call("setWebhook", &body).await.map(|_| ())
    }

    /// Back to `getUpdates` (a webhook and polling exclude each other); pending updates are kept.
    pub async fn delete_webhook(&self) -> Result<(), SendError> {
        self.call("deleteWebhook", &json!({})).await.map(|_| ())
    }

    /// The bot's own user name (checks the token).
    pub async fn get_me(&self) -> Result<String, SendError> {
        let result = self.call("getMe", &json!({})).await?;
        Ok(result["username"].as_str().unwrap_or_default().to_owned())
    }
}

fn classify(status: u16, envelope: Envelope) -> SendError {
    let description = envelope
        .description
        .unwrap_or_else(|| format!("HTTP {status}"));
    let code = envelope.error_code.unwrap_or(status);
    let parameters = envelope.parameters;
    if let Some(to) = parameters.as_ref().and_then(|p| p.migrate_to_chat_id) {
        return SendError::Migrated(to);
    }
    match code {
        429 => SendError::RetryAfter(Duration::from_secs(
            parameters.and_then(|p| p.retry_after).unwrap_or(1).max(1),
        )),
        403 => SendError::Blocked(description),
        500.. => SendError::Unavailable(description),
        _ => SendError::Refused(description),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(text: &str) -> Envelope {
        serde_json::from_str(text).expect("envelope")
    }

    #[test]
    fn answers_are_sorted_into_what_to_do_next() {
        assert_eq!(
            classify(
                429,
                envelope(
                    r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#
                )
            ),
            SendError::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            classify(
                400,
                envelope(
                    r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#
                )
            ),
            SendError::Migrated(-1001234)
        );
        assert!(matches!(
            classify(403, envelope(r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#)),
            SendError::Blocked(text) if text.contains("blocked")
        ));
        assert!(matches!(
            classify(
                400,
                envelope(
                    r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities"}"#
                )
            ),
            SendError::Refused(_)
        ));
        assert!(matches!(
            classify(
                502,
                envelope(r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#)
            ),
            SendError::Unavailable(_)
        ));
    }

    #[test]
    fn the_token_never_shows() {
        let api = BotApi::new("https://api.telegram.org/", "123:SECRET");
        assert!(!format!("{api:?}").contains("SECRET"));
    }

    #[tokio::test]
    async fn a_network_error_names_no_url() {
        // Nothing listens on port 9 of loopback.
        let api = BotApi::new("http://127.0.0.1:9", "123:SECRET");
        let error = api.get_me().await.expect_err("refused");
        assert!(matches!(&error, SendError::Unavailable(_)));
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }
}
