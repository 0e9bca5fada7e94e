//! `/admin/notify/`: the messages tillwire sends to Telegram (pending, sent, failed, discarded) with chat, report
//! type, attempts and Telegram's last words; failed ones sent again, waiting ones discarded (after a question),
//! and a test message to any chat. Whether delivery is on, and where to, without ever showing the token.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_directory::routing::Routing;
use tillwire_platform::admin::{Admin, local_time};
use tillwire_platform::web::{NavLink, PageContext, render};
use tillwire_platform::{HttpError, Platform, Text};

use crate::config::TelegramSettings;
use crate::messages::{Changed, MessageFilter, MessageRow, Messages, STATES, Said};
use crate::token::{BotToken, TokenSource};

pub const ADMIN_NAV: &[NavLink] = &[NavLink::to(
    "/admin/notify/",
    "Уведомления Telegram",
    "Telegram notifications",
)];
const PAGE: &str = "/admin/notify/";
const ROWS: i64 = 100;

#[derive(Clone)]
pub struct Outbox {
    pub platform: Platform,
    pub settings: TelegramSettings,
    pub token: BotToken,
}

impl axum::extract::FromRef<Outbox> for Platform {
    fn from_ref(outbox: &Outbox) -> Platform {
        outbox.platform.clone()
    }
}

pub fn router(outbox: Outbox) -> Router {
    Router::new()
        .route(PAGE, get(outbox_page))
        .route("/admin/notify/messages/{id}/retry", post(retry))
        .route("/admin/notify/messages/{id}/discard", post(discard))
        .route("/admin/notify/test", post(send_test))
        .route("/admin/notify/token", post(set_token))
        .route("/admin/notify/token/clear", post(clear_token))
        .merge(crate::templates_page::router())
        .with_state(outbox)
}

struct Row {
    message: MessageRow,
    /// The report type's label in the page's language.
    report_type: String,
    /// The chat's title in the directory (empty: unknown there).
    chat: String,
    /// Why it has not gone, in the page's language.
    said: String,
    /// What the chat shows (the stored text is HTML).
    text: String,
    created: String,
    sent: String,
}

#[derive(Template)]
#[template(path = "admin_notify.html")]
struct OutboxPage {
    page: PageContext,
    section: &'static str,
    api_url: String,
    /// `settings`, `page` or `missing`.
    token: &'static str,
    counts: Vec<(String, i64)>,
    state: String,
    rows: Vec<Row>,
}

impl OutboxPage {
    fn is_current(&self, state: &str) -> bool {
        self.state == state
    }

    fn state_label(&self, state: &str) -> &'static str {
        let lang = self.page.lang;
        match state {
            "pending" => lang.pick("ждёт отправки", "waiting"),
            "sent" => lang.pick("отправлено", "sent"),
            "failed" => lang.pick("не отправлено", "failed"),
            "discarded" => lang.pick("отменено", "discarded"),
            _ => lang.pick("все", "all"),
        }
    }
}

#[derive(Deserialize)]
struct StateQuery {
    #[serde(default)]
    state: String,
}

#[tracing::instrument(skip_all)]
async fn outbox_page(
    State(outbox): State<Outbox>,
    admin: Admin,
    Query(query): Query<StateQuery>,
) -> Result<Response, HttpError> {
    let state = STATES
        .into_iter()
        .find(|state| *state == query.state.as_str());
    let messages = Messages(outbox.platform.store.clone());
    let rows = messages
        .list(&MessageFilter {
            state,
            limit: ROWS,
            ..MessageFilter::default()
        })
        .await?;
    let counts = messages.counts().await?;
    let settings = &outbox.platform.settings;
    let at = |ms: i64| local_time(settings, ms, "%d.%m %H:%M:%S");
    let page = admin.page("Уведомления Telegram", "Telegram notifications");
    let lang = page.lang;
    // Chats by title and report types by label, as the directory names them (a page shows at most 100 rows).
    let routing = Routing(outbox.platform.store.clone());
    let mut names: HashMap<String, String> = HashMap::new();
    let mut titles: HashMap<i64, String> = HashMap::new();
    for row in &rows {
        if !names.contains_key(&row.report_type) {
            let label = match row.report_type.as_str() {
                crate::router::TEST => lang.pick("Проверка", "Test").to_owned(),
                other => routing.label(other, lang).await?,
            };
            names.insert(row.report_type.clone(), label);
        }
        if let std::collections::hash_map::Entry::Vacant(entry) = titles.entry(row.chat_id)
            && let Some(title) = routing.title(row.chat_id).await?
        {
            entry.insert(title);
        }
    }
    Ok(render(&OutboxPage {
        page,
        section: PAGE,
        api_url: outbox.settings.api_url.clone(),
        token: match outbox.token.source().await.map_err(HttpError::internal)? {
            TokenSource::Settings => "settings",
            TokenSource::Page => "page",
            TokenSource::Missing => "missing",
        },
        counts,
        state: state.unwrap_or_default().to_owned(),
        rows: rows
            .into_iter()
            .map(|message| Row {
                report_type: names.get(&message.report_type).cloned().unwrap_or_default(),
                chat: titles.get(&message.chat_id).cloned().unwrap_or_default(),
                text: crate::html::visible(&message.text),
                said: message
                    .last_error
                    .as_deref()
                    .map(|stored| Said::describe(stored, lang))
                    .unwrap_or_default(),
                created: at(message.created_ms),
                sent: message.sent_ms.map(at).unwrap_or_default(),
                message,
            })
            .collect(),
    }))
}

fn no_message() -> HttpError {
    HttpError::not_found(Text::new("Такого сообщения нет.", "No such message."))
}

/// Sends a failed (or discarded) message again.
#[tracing::instrument(skip_all, fields(message = id))]
async fn retry(
    State(outbox): State<Outbox>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    match Messages(outbox.platform.store.clone()).retry(id).await? {
        Changed::Done(_) => {
            outbox.platform.jobs.notify();
            tracing::info!(by = admin.username(), "notify: message sent again");
            Ok(Redirect::to(PAGE))
        }
        _ => Err(no_message()),
    }
}

/// Gives up a message that has not gone yet (or failed).
#[tracing::instrument(skip_all, fields(message = id))]
async fn discard(
    State(outbox): State<Outbox>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    match Messages(outbox.platform.store.clone()).discard(id).await? {
        Changed::Done(_) => {
            tracing::info!(by = admin.username(), "notify: message discarded");
            Ok(Redirect::to(PAGE))
        }
        _ => Err(no_message()),
    }
}

#[derive(Deserialize)]
struct TestForm {
    chat_id: String,
    #[serde(default)]
    thread_id: String,
    #[serde(default)]
    text: String,
}

/// Queues a test message to any chat, through the same path as every other message.
#[tracing::instrument(skip_all)]
async fn send_test(
    State(outbox): State<Outbox>,
    admin: Admin,
    Form(form): Form<TestForm>,
) -> Result<Redirect, HttpError> {
    let chat_id: i64 = form.chat_id.trim().parse().map_err(|_| {
        HttpError::field(
            "chat_id",
            Text::new(
                "chat_id — целое число (у групп отрицательное).",
                "chat_id is a whole number (negative for groups).",
            ),
        )
    })?;
    let thread_id: i64 = match form.thread_id.trim() {
        "" => 0,
        text => text.parse().map_err(|_| {
            HttpError::field(
                "thread_id",
                Text::new("Номер темы — целое число.", "The topic is a whole number."),
            )
        })?,
    };
    crate::router::enqueue_test(
        &outbox.platform,
        outbox.settings.language,
        chat_id,
        thread_id,
        &form.text,
    )
    .await?;
    tracing::info!(
        by = admin.username(),
        chat = chat_id,
        "notify: test message queued"
    );
    Ok(Redirect::to(PAGE))
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

/// Keeps the bot token given on the page, sealed; never shown back.
#[tracing::instrument(skip_all)]
async fn set_token(
    State(outbox): State<Outbox>,
    admin: Admin,
    Form(form): Form<TokenForm>,
) -> Result<Redirect, HttpError> {
    outbox.token.set(&form.token, admin.username()).await?;
    tracing::info!(by = admin.username(), "notify: bot token set on the page");
    Ok(Redirect::to(PAGE))
}

/// Forgets the bot token set on the page (one from the settings stays).
#[tracing::instrument(skip_all)]
async fn clear_token(State(outbox): State<Outbox>, admin: Admin) -> Result<Redirect, HttpError> {
    outbox.token.clear().await?;
    tracing::info!(
        by = admin.username(),
        "notify: bot token removed on the page"
    );
    Ok(Redirect::to(PAGE))
}
