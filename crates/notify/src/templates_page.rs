//! `/admin/notify/templates/`: what each kind of message says, in Russian and English, with its placeholders;
//! an admin edits a text, previews it with sample values as the chat would show it, keeps it (once Telegram would
//! accept it) or goes back to the built-in one.

use askama::Template as Page;
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{Lang, PageContext, render};
use tillwire_platform::{HttpError, Text};

use crate::html::visible;
use crate::outbox::Outbox;
use crate::templates::{self, Template, Templates, check_body, fill};

const PAGE: &str = "/admin/notify/templates/";

pub fn router() -> Router<Outbox> {
    Router::new()
        .route(PAGE, get(templates_page))
        .route("/admin/notify/templates/{key}/{lang}", post(change))
}

/// One template in one language, as the page shows it.
struct Body {
    lang: &'static str,
    text: String,
    custom: bool,
    /// What the chat would show with the sample values, or why Telegram would refuse it.
    preview: Result<String, String>,
    /// The admin asked for this preview (the text is not kept yet).
    previewing: bool,
}

struct Row {
    template: &'static Template,
    bodies: Vec<Body>,
}

#[derive(Page)]
#[template(path = "admin_notify_templates.html")]
struct TemplatesPage {
    page: PageContext,
    section: &'static str,
    /// The language messages go out in, named in the page's.
    message_language: &'static str,
    rows: Vec<Row>,
}

fn lang_of(code: &str) -> Option<Lang> {
    match code {
        "ru" => Some(Lang::Ru),
        "en" => Some(Lang::En),
        _ => None,
    }
}

fn body(
    template: &Template,
    lang: Lang,
    text: &str,
    custom: bool,
    previewing: bool,
    shown: Lang,
) -> Body {
    Body {
        lang: lang.pick("ru", "en"),
        text: text.to_owned(),
        custom,
        preview: check_body(template, text, lang)
            .map(|()| visible(&fill(text, &template.samples(lang))))
            .map_err(|error| error.get(shown).to_owned()),
        previewing,
    }
}

/// Every template in both languages; `draft` replaces one text with what the admin is trying.
async fn page(
    outbox: &Outbox,
    admin: &Admin,
    draft: Option<(&'static Template, Lang, &str)>,
) -> Result<Response, HttpError> {
    let templates = Templates::load(&outbox.platform.store).await?;
    let context = admin.page("Шаблоны сообщений Telegram", "Telegram message templates");
    let shown = context.lang;
    let rows = templates::ALL
        .iter()
        .map(|template| Row {
            template,
            // The page's language first; the other one folded under it.
            bodies: [shown, shown.pick(Lang::En, Lang::Ru)]
                .into_iter()
                .map(|lang| match draft {
                    Some((t, l, text)) if t.key == template.key && l == lang => {
                        body(template, lang, text, true, true, shown)
                    }
                    _ => {
                        let (text, custom) = templates.body(template, lang);
                        body(template, lang, text, custom, false, shown)
                    }
                })
                .collect(),
        })
        .collect();
    Ok(render(&TemplatesPage {
        message_language: outbox.settings.language.pick(
            shown.pick("русский", "Russian"),
            shown.pick("английский", "English"),
        ),
        page: context,
        section: "/admin/notify/",
        rows,
    }))
}

#[tracing::instrument(skip_all)]
async fn templates_page(State(outbox): State<Outbox>, admin: Admin) -> Result<Response, HttpError> {
    page(&outbox, &admin, None).await
}

#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    body: String,
    /// `preview`, `save` or `reset` (not `action`: a control of that name hides the form's own in the DOM).
    intent: String,
}

/// Previews, keeps or resets one template in one language.
#[tracing::instrument(skip_all, fields(template = %key, lang = %lang))]
async fn change(
    State(outbox): State<Outbox>,
    admin: Admin,
    Path((key, lang)): Path<(String, String)>,
    Form(form): Form<ChangeForm>,
) -> Result<Response, HttpError> {
    let (Some(template), Some(lang)) = (templates::find(&key), lang_of(&lang)) else {
        return Err(HttpError::not_found(Text::new(
            "Такого шаблона нет.",
            "No such template.",
        )));
    };
    let store = &outbox.platform.store;
    match form.intent.as_str() {
        "preview" => page(&outbox, &admin, Some((template, lang, &form.body))).await,
        "save" => {
            templates::save(store, template, lang, &form.body, admin.username()).await?;
            tracing::info!(by = admin.username(), "notify: template changed");
            Ok(axum::response::IntoResponse::into_response(Redirect::to(
                &format!("{PAGE}#{key}"),
            )))
        }
        "reset" => {
            templates::reset(store, template, lang).await?;
            tracing::info!(
                by = admin.username(),
                "notify: template reset to the built-in one"
            );
            Ok(axum::response::IntoResponse::into_response(Redirect::to(
                &format!("{PAGE}#{key}"),
            )))
        }
        _ => Err(HttpError::field(
            "intent",
            Text::new("Неизвестное действие.", "Unknown action."),
        )),
    }
}
