//! The outbox's JSON API under `/api/v1/notify/`: messages by state or chat, one message, sending one again,
//! discarding one, a test message to a chat, and the count per state. Callers present a platform service token
//! of scope `notify` or `admin`; every error is the platform's one JSON shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tillwire_platform::error::ErrorBody;
use tillwire_platform::tokens::{ScopedCaller, TokenScope};
use tillwire_platform::web::Lang;
use tillwire_platform::{HttpError, Platform, Text};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::messages::{Changed, MessageFilter, MessageRow, Messages, STATES, Said};

#[derive(OpenApi)]
#[openapi(
    info(title = "tillwire notify API", version = "1", description = "The Telegram outbox: messages, their delivery, test messages. Authenticate with `Authorization: Bearer <service token>` of scope `notify` or `admin`."),
    paths(list_messages, get_message, retry_message, discard_message, send_test, counts),
    components(schemas(NotifyMessage, NotifyState, NotifyTest, NotifyQueued, NotifyCounts, ErrorBody)),
    modifiers(&TokenAuth)
)]
pub struct NotifyApi;

struct TokenAuth;

impl utoipa::Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("A service token of scope `notify` or `admin`.".into());
        components.add_security_scheme("notify_token", SecurityScheme::Http(scheme));
    }
}

pub struct NotifyScope;

impl TokenScope for NotifyScope {
    const SCOPE: &'static str = crate::AREA.name;
    const NAME_RU: &'static str = "уведомлениям Telegram";
    const NAME_EN: &'static str = "Telegram notifications";
}

type Caller = ScopedCaller<NotifyScope>;

/// What the API needs: the platform, and the language of standard texts.
#[derive(Clone)]
pub struct ApiState {
    pub platform: Platform,
    pub lang: Lang,
}

impl axum::extract::FromRef<ApiState> for Platform {
    fn from_ref(state: &ApiState) -> Platform {
        state.platform.clone()
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/api/v1/notify/messages",
            get(list_messages).post(send_test),
        )
        .route("/api/v1/notify/messages/{id}", get(get_message))
        .route("/api/v1/notify/messages/{id}/retry", post(retry_message))
        .route(
            "/api/v1/notify/messages/{id}/discard",
            post(discard_message),
        )
        .route("/api/v1/notify/counts", get(counts))
        .with_state(state)
}

/// Where a message is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyState {
    Pending,
    Sent,
    Failed,
    Discarded,
}

impl NotifyState {
    fn as_str(self) -> &'static str {
        match self {
            NotifyState::Pending => STATES[0],
            NotifyState::Sent => STATES[1],
            NotifyState::Failed => STATES[2],
            NotifyState::Discarded => STATES[3],
        }
    }

    fn parse(text: &str) -> NotifyState {
        match text {
            "sent" => NotifyState::Sent,
            "failed" => NotifyState::Failed,
            "discarded" => NotifyState::Discarded,
            _ => NotifyState::Pending,
        }
    }
}

/// One message: one part of a text for one chat.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyMessage {
    pub id: i64,
    /// The domain event it tells of; none for test messages and reports.
    pub event_id: Option<i64>,
    pub chat_id: i64,
    /// The forum topic; none outside forums.
    pub thread_id: Option<i64>,
    /// Its part of a long text, from 0.
    pub part: i64,
    pub report_type: String,
    /// As sent: Telegram HTML.
    pub html: String,
    /// What the chat shows.
    pub text: String,
    pub state: NotifyState,
    pub attempts: i64,
    /// What Telegram (or the way there) said last, when it did not take the message, in English.
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
}

impl From<MessageRow> for NotifyMessage {
    fn from(row: MessageRow) -> Self {
        NotifyMessage {
            text: crate::html::visible(&row.text),
            id: row.id,
            event_id: row.event_id,
            chat_id: row.chat_id,
            thread_id: (row.thread_id != 0).then_some(row.thread_id),
            part: row.part,
            report_type: row.report_type,
            html: row.text,
            state: NotifyState::parse(&row.state),
            attempts: row.attempts,
            last_error: row
                .last_error
                .as_deref()
                .map(|stored| Said::describe(stored, Lang::En)),
            created_ms: row.created_ms,
            sent_ms: row.sent_ms,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages in this state.
    state: Option<NotifyState>,
    /// Only messages to this chat.
    chat_id: Option<i64>,
    /// Only messages older than this id (the next page: the last id of this one).
    before: Option<i64>,
    /// At most this many, newest first (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

fn no_message() -> HttpError {
    HttpError::not_found(Text::new("Такого сообщения нет.", "No such message."))
}

/// Messages, newest first.
#[utoipa::path(get, path = "/api/v1/notify/messages", tag = "notify", params(MessagesQuery),
    security(("notify_token" = [])),
    responses((status = 200, body = Vec<NotifyMessage>), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn list_messages(
    State(state): State<ApiState>,
    _caller: Caller,
    Query(query): Query<MessagesQuery>,
) -> Result<Json<Vec<NotifyMessage>>, HttpError> {
    let limit = match query.limit {
        None => 100,
        Some(limit @ 1..=1000) => limit,
        Some(_) => {
            return Err(HttpError::field(
                "limit",
                Text::new("limit — от 1 до 1000.", "limit is from 1 to 1000."),
            ));
        }
    };
    let rows = Messages(state.platform.store.clone())
        .list(&MessageFilter {
            state: query.state.map(NotifyState::as_str),
            chat_id: query.chat_id,
            before: query.before,
            limit,
        })
        .await?;
    Ok(Json(rows.into_iter().map(NotifyMessage::from).collect()))
}

/// One message.
#[utoipa::path(get, path = "/api/v1/notify/messages/{id}", tag = "notify",
    params(("id" = i64, Path, description = "The message")),
    security(("notify_token" = [])),
    responses((status = 200, body = NotifyMessage), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(message = id))]
async fn get_message(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<NotifyMessage>, HttpError> {
    let row = Messages(state.platform.store.clone())
        .get(id)
        .await?
        .ok_or_else(no_message)?;
    Ok(Json(row.into()))
}

fn changed(outcome: Changed, conflict: Text) -> Result<Json<NotifyMessage>, HttpError> {
    match outcome {
        Changed::Done(row) => Ok(Json((*row).into())),
        Changed::NotApplicable(_) => Err(HttpError::conflict(conflict)),
        Changed::Missing => Err(no_message()),
    }
}

/// Sends a failed or discarded message again.
#[utoipa::path(post, path = "/api/v1/notify/messages/{id}/retry", tag = "notify",
    params(("id" = i64, Path, description = "The message")),
    security(("notify_token" = [])),
    responses((status = 200, description = "Waiting to go again", body = NotifyMessage),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Not failed or discarded", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(message = id))]
async fn retry_message(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<NotifyMessage>, HttpError> {
    let outcome = Messages(state.platform.store.clone()).retry(id).await?;
    if matches!(outcome, Changed::Done(_)) {
        state.platform.jobs.notify();
        tracing::info!(token = caller.0.id, "notify: message sent again");
    }
    changed(
        outcome,
        Text::new(
            "Снова отправить можно только неотправленное или отменённое сообщение.",
            "Only a failed or discarded message can be sent again.",
        ),
    )
}

/// Discards a message that has not gone yet, or failed.
#[utoipa::path(post, path = "/api/v1/notify/messages/{id}/discard", tag = "notify",
    params(("id" = i64, Path, description = "The message")),
    security(("notify_token" = [])),
    responses((status = 200, description = "It will not be sent", body = NotifyMessage),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Sent or discarded already", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(message = id))]
async fn discard_message(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<NotifyMessage>, HttpError> {
    let outcome = Messages(state.platform.store.clone()).discard(id).await?;
    if matches!(outcome, Changed::Done(_)) {
        tracing::info!(token = caller.0.id, "notify: message discarded");
    }
    changed(
        outcome,
        Text::new(
            "Отменить можно только ждущее или неотправленное сообщение.",
            "Only a waiting or failed message can be discarded.",
        ),
    )
}

/// A test message to a chat.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyTest {
    /// The chat (negative for groups).
    pub chat_id: i64,
    /// A forum topic.
    #[serde(default)]
    pub thread_id: Option<i64>,
    /// Plain text (escaped for Telegram); empty or absent: a standard test text.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyQueued {
    /// The messages queued (one per part of the text).
    pub ids: Vec<i64>,
}

/// Queues a test message to a chat.
#[utoipa::path(post, path = "/api/v1/notify/messages", tag = "notify", request_body = NotifyTest,
    security(("notify_token" = [])),
    responses((status = 202, description = "Queued", body = NotifyQueued), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn send_test(
    State(state): State<ApiState>,
    caller: Caller,
    body: Result<Json<NotifyTest>, JsonRejection>,
) -> Result<(StatusCode, Json<NotifyQueued>), HttpError> {
    let Json(test) = body.map_err(HttpError::unreadable_body)?;
    let text = test.text.unwrap_or_default();
    if text.chars().count() > 4000 {
        return Err(HttpError::field(
            "text",
            Text::new(
                "Текст длиннее 4000 знаков.",
                "The text is longer than 4000 characters.",
            ),
        ));
    }
    let thread_id = match test.thread_id {
        None | Some(0) => 0,
        Some(thread @ 1..) => thread,
        Some(_) => {
            return Err(HttpError::field(
                "thread_id",
                Text::new(
                    "Номер темы — положительное число.",
                    "A topic is a positive number.",
                ),
            ));
        }
    };
    if test.chat_id == 0 {
        return Err(HttpError::field(
            "chat_id",
            Text::new("Чата 0 не бывает.", "There is no chat 0."),
        ));
    }
    let ids =
        crate::router::enqueue_test(&state.platform, state.lang, test.chat_id, thread_id, &text)
            .await?;
    tracing::info!(
        token = caller.0.id,
        chat = test.chat_id,
        "notify: test message queued"
    );
    Ok((StatusCode::ACCEPTED, Json(NotifyQueued { ids })))
}

/// How many messages are in each state.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyCounts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    pub discarded: i64,
}

/// Messages per state.
#[utoipa::path(get, path = "/api/v1/notify/counts", tag = "notify",
    security(("notify_token" = [])),
    responses((status = 200, body = NotifyCounts), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn counts(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Json<NotifyCounts>, HttpError> {
    let counts = Messages(state.platform.store.clone()).counts().await?;
    let of = |name: &str| {
        counts
            .iter()
            .find(|(state, _)| state == name)
            .map_or(0, |(_, count)| *count)
    };
    Ok(Json(NotifyCounts {
        pending: of("pending"),
        sent: of("sent"),
        failed: of("failed"),
        discarded: of("discarded"),
    }))
}
