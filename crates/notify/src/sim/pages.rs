//! Inspection for people and scripts: `GET /sim/` (a page of chats and what each received), `GET /sim/messages`
//! (JSON, `?chat_id=`), `GET /sim/violations`, `POST /sim/chats/{chat_id}` (a behaviour), `POST /sim/updates` (a
//! user's message or button press), `GET|POST /sim/limits`.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Behaviour, Limits, TelegramSim, chat_type};
use crate::html::escape;

pub(super) async fn index(State(sim): State<TelegramSim>) -> Html<String> {
    let mut chats: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for message in sim.all_messages() {
        chats.entry(message.chat_id).or_default().push(message);
    }
    let behaviours: Vec<(i64, Behaviour)> = sim.with(|inner| {
        inner
            .chats
            .iter()
            .map(|(id, chat)| (*id, chat.behaviour.clone()))
            .collect()
    });
    for (id, _) in &behaviours {
        chats.entry(*id).or_default();
    }
    let violations = sim.rate_violations();
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Telegram simulator</title><style>\
         body{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}\
         .m{border:1px solid #ccc;border-radius:.4rem;padding:.4rem .6rem;margin:.4rem 0}\
         .t{white-space:pre-wrap}.meta{color:#666;font-size:.8rem}</style></head><body>\
         <h1>Telegram Bot API simulator</h1>",
    );
    let _ = write!(
        page,
        "<p>{} message(s) in {} chat(s); {} lost repl(ies); {} rate violation(s).</p>",
        sim.all_messages().len(),
        chats.len(),
        sim.lost_replies(),
        violations.len()
    );
    for (chat_id, messages) in chats.iter().rev() {
        let behaviour = behaviours
            .iter()
            .find(|(id, _)| id == chat_id)
            .map(|(_, b)| format!("{b:?}"))
            .unwrap_or_else(|| "Normal".into());
        let _ = write!(
            page,
            "<section><h2>Chat {chat_id} ({}) — {}</h2>",
            chat_type(*chat_id),
            escape(&behaviour)
        );
        if messages.is_empty() {
            page.push_str("<p>Nothing received.</p>");
        }
        for message in messages.iter().rev() {
            let _ = write!(
                page,
                "<div class=\"m\"><div class=\"meta\">#{} at {}{}{}{}</div><div class=\"t\">{}</div>\
                 <details><summary>as sent</summary><pre>{}</pre></details></div>",
                message.message_id,
                message.delivered_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
                message
                    .parse_mode
                    .as_deref()
                    .map(|mode| format!(", {}", escape(mode)))
                    .unwrap_or_default(),
                message
                    .message_thread_id
                    .map(|thread| format!(", thread {thread}"))
                    .unwrap_or_default(),
                if message.reply_lost {
                    ", reply lost"
                } else {
                    ""
                },
                escape(&message.visible_text),
                escape(&message.text),
            );
        }
        page.push_str("</section>");
    }
    page.push_str("</body></html>");
    Html(page)
}

#[derive(Deserialize)]
pub(super) struct ChatFilter {
    chat_id: Option<i64>,
}

pub(super) async fn messages(
    State(sim): State<TelegramSim>,
    Query(filter): Query<ChatFilter>,
) -> Response {
    let messages = match filter.chat_id {
        Some(chat_id) => sim.messages(chat_id),
        None => sim.all_messages(),
    };
    Json(messages).into_response()
}

pub(super) async fn violations(State(sim): State<TelegramSim>) -> Response {
    Json(json!({
        "rate_violations": sim.rate_violations(),
        "lost_replies": sim.lost_replies(),
    }))
    .into_response()
}

/// `{"behaviour":"blocked"}`, `{"behaviour":"migrated","to":-100…}`, `{"behaviour":"server_error","count":2}`,
/// `{"behaviour":"lose_reply","count":1}` or `{"behaviour":"normal"}`.
pub(super) async fn set_chat(
    State(sim): State<TelegramSim>,
    Path(chat_id): Path<i64>,
    Json(behaviour): Json<Behaviour>,
) -> Response {
    sim.set_chat(chat_id, behaviour.clone());
    Json(json!({"chat_id": chat_id, "behaviour": behaviour})).into_response()
}

/// `{"chat_id":…,"from":…,"text":"…"}` (a message) or `{"chat_id":…,"from":…,"message_id":…,"data":"…"}` (a
/// press on an inline button under the bot's message).
#[derive(Deserialize)]
pub(super) struct Injected {
    chat_id: i64,
    from: Option<i64>,
    text: Option<String>,
    message_id: Option<i64>,
    data: Option<String>,
}

pub(super) async fn push_update(
    State(sim): State<TelegramSim>,
    Json(injected): Json<Injected>,
) -> Response {
    let from = injected.from.unwrap_or(injected.chat_id.abs());
    let update_id = match (injected.text, injected.message_id, injected.data) {
        (Some(text), None, None) => sim.push_message(injected.chat_id, from, &text),
        (None, Some(message_id), Some(data)) => {
            sim.push_callback(injected.chat_id, from, message_id, &data)
        }
        _ => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                "either text, or message_id and data",
            )
                .into_response();
        }
    };
    Json(json!({"update_id": update_id})).into_response()
}

pub(super) async fn limits(State(sim): State<TelegramSim>) -> Response {
    Json(sim.limits()).into_response()
}

pub(super) async fn set_limits(
    State(sim): State<TelegramSim>,
    Json(limits): Json<Limits>,
) -> Response {
    sim.set_limits(limits);
    Json(limits).into_response()
}
