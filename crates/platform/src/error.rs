//! One error vocabulary. Every refusal or failure an area answers is an [`HttpError`]: a status, a stable code
//! clients can match, a message in both languages and, for bad input, the fields it concerns. Areas keep their
//! own domain errors and map them into it (`From<KitchenError> for HttpError`, …).
//!
//! How an error is shown is decided by the route group, not by its handler: [`Answer`] says whether the group
//! answers pages (an error page in the reader's language, with a way back; JSON to the platform's form script, which
//! puts field errors next to their fields), JSON (`{"error", "code", "fields"}`), or a legacy contract's own shape.
//! An error response carries its [`ErrorReply`] as an extension, and the group's [`render`] layer turns it into
//! the body, so nothing re-reads a response body.

use std::borrow::Cow;
use std::fmt;

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::web::{Lang, PageContext, render as render_page};

/// A text a person may read, in Russian and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    ru: Cow<'static, str>,
    en: Cow<'static, str>,
}

impl Text {
    pub fn new(ru: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        Text {
            ru: ru.into(),
            en: en.into(),
        }
    }

    /// A text that reads the same in both languages: a name, a number, a legacy contract's exact words.
    pub fn same(text: impl Into<Cow<'static, str>>) -> Self {
        let text = text.into();
        Text {
            ru: text.clone(),
            en: text,
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        lang.pick(&self.ru, &self.en)
    }
}

/// Logs and `to_string()` read English.
impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.en)
    }
}

/// An input field's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: Text,
}

/// A request refused or failed. The message is shown to people; the source (for failures) is only logged.
#[derive(Debug)]
pub struct HttpError {
    reply: ErrorReply,
    source: Option<anyhow::Error>,
}

/// What an error response says, carried in its extensions until the route group's [`render`] layer shapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    pub status: StatusCode,
    /// Stable and machine-readable: `invalid`, `not_found`, `conflict`, `login_required`, … or an area's own.
    pub code: &'static str,
    pub message: Text,
    pub fields: Vec<FieldError>,
}

impl ErrorReply {
    /// `{"error": …, "code": …, "fields": {"name": "…"}}` in the reader's language.
    pub fn to_json(&self, lang: Lang) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|field| {
                (
                    field.field.to_string(),
                    Value::from(field.message.get(lang)),
                )
            })
            .collect();
        json!({ "error": self.message.get(lang), "code": self.code, "fields": fields })
    }
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: Text) -> Self {
        HttpError {
            reply: ErrorReply {
                status,
                code,
                message,
                fields: Vec::new(),
            },
            source: None,
        }
    }

    /// A JSON body that cannot be read (not JSON, not the shape asked for, the wrong content type), with serde's
    /// words for integrators, at the status axum gives it.
    pub fn unreadable_body(rejection: axum::extract::rejection::JsonRejection) -> Self {
        let detail = rejection.body_text();
        HttpError::new(
            rejection.status(),
            "invalid",
            Text::new(
                format!("Тело запроса не читается: {detail}"),
                format!("The request body cannot be read: {detail}"),
            ),
        )
    }

    /// 422: the input does not fit, as the message says.
    pub fn invalid(message: Text) -> Self {
        HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 422 about one field; more with [`HttpError::with_field`].
    pub fn field(field: impl Into<Cow<'static, str>>, message: Text) -> Self {
        HttpError::invalid(Text::new(
            "Проверьте отмеченные поля.",
            "Check the marked fields.",
        ))
        .with_field(field, message)
    }

    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>, message: Text) -> Self {
        self.reply.fields.push(FieldError {
            field: field.into(),
            message,
        });
        self
    }

    pub fn not_found(message: Text) -> Self {
        HttpError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: Text) -> Self {
        HttpError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn login_required() -> Self {
        HttpError::new(
            StatusCode::UNAUTHORIZED,
            "login_required",
            Text::new("Нужно войти.", "Sign in first."),
        )
    }

    pub fn forbidden() -> Self {
        HttpError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Text::new("Не разрешено для вашей роли.", "Not allowed for your role."),
        )
    }

    pub fn rate_limited() -> Self {
        HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Text::new(
                "Слишком много попыток; подождите минуту.",
                "Too many attempts; wait a minute.",
            ),
        )
    }

    /// 500: something failed inside. The reader learns only that; the source is logged once, with its chain.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut error = HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            Text::new(
                "Внутренняя ошибка; попробуйте ещё раз.",
                "Internal error; try again.",
            ),
        );
        error.source = Some(source.into());
        error
    }

    /// A more precise code than the constructor's (`receipt_already_imported`, …).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.reply.code = code;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.reply.status
    }

    /// What a reader is told.
    pub fn reply(&self) -> &ErrorReply {
        &self.reply
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source:#}", self.reply.message),
            None => write!(f, "{}", self.reply.message),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<sqlx::Error> for HttpError {
    fn from(error: sqlx::Error) -> Self {
        HttpError::internal(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(
                code = self.reply.code,
                error = format!("{source:#}"),
                "request failed"
            );
        }
        let mut response =
            (self.reply.status, axum::Json(self.reply.to_json(Lang::En))).into_response();
        response.extensions_mut().insert(self.reply);
        response
    }
}

/// The kind of constraint a database refused a write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    Unique,
    ForeignKey,
}

/// Whether `error` is the database refusing a write for that kind of constraint.
pub fn violates(error: &sqlx::Error, kind: Constraint) -> bool {
    error.as_database_error().is_some_and(|e| match kind {
        Constraint::Unique => e.is_unique_violation(),
        Constraint::ForeignKey => e.is_foreign_key_violation(),
    })
}

/// Turns a constraint violation into the error that explains it (`on_constraint(Unique, || conflict)`); any
/// other database error stays what it was. SQLite does not name its constraints, so the kind decides.
pub trait ResultExt<T> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        kind: Constraint,
        map: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        kind: Constraint,
        map: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|error| {
            if violates(&error, kind) {
                map()
            } else {
                E::from(error)
            }
        })
    }
}

/// How a route group shows its errors.
#[derive(Clone, Copy)]
pub enum Answer {
    /// Pages for people: an error page in their language with a way back. The platform's form script asks for
    /// JSON (`Accept: application/json`) to put field errors next to their fields.
    Page,
    /// `{"error", "code", "fields"}`, the message in the reader's language.
    Json,
    /// A legacy contract's own shape (ELQ's import reply, the directory's envelope).
    Shaped(fn(&ErrorReply, Lang) -> Response),
}

/// What an extractor's plain-text rejection (or any other error response without an [`ErrorReply`]) becomes:
/// the reader never sees a parser's words.
fn plain_rejection(status: StatusCode) -> ErrorReply {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", Text::new("Не найдено.", "Not found.")),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            Text::new("Метод не разрешён.", "Method not allowed."),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            Text::new("Запрос слишком большой.", "The request is too large."),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            Text::new(
                "Неподдерживаемый формат данных.",
                "Unsupported content type.",
            ),
        ),
        status if status.is_server_error() => (
            "internal",
            Text::new(
                "Внутренняя ошибка; попробуйте ещё раз.",
                "Internal error; try again.",
            ),
        ),
        _ => (
            "bad_request",
            Text::new(
                "Запрос не удалось прочитать: проверьте введённые значения.",
                "The request could not be read: check the values entered.",
            ),
        ),
    };
    ErrorReply {
        status,
        code,
        message,
        fields: Vec::new(),
    }
}

/// Whether an error response without a reply is a bare rejection to be replaced (plain text, or no body type).
fn is_bare(response: &Response) -> bool {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|kind| kind.starts_with("text/plain"))
}

/// The layer every route group gets (outermost of the group, so CSRF refusals and panics are shaped too): catches
/// a handler's panic and shapes error responses as the group's [`Answer`] says. One layer for both keeps the
/// import's hot path as short as before.
pub async fn render(answer: Answer, request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let wants_json = accepts_json(request.headers());
    let origin = matches!(answer, Answer::Page).then(|| Origin {
        path: request.uri().path().to_owned(),
        referer: request.headers().get(header::REFERER).cloned(),
        host: request.headers().get(header::HOST).cloned(),
    });
    let mut response = crate::telemetry::catch_panics(request, next).await;
    let reply = match response.extensions_mut().remove::<ErrorReply>() {
        Some(reply) => reply,
        None if is_bare(&response) => plain_rejection(response.status()),
        None => return response,
    };
    match (answer, origin) {
        (Answer::Page, Some(origin)) if !wants_json => error_page(lang, &reply, origin.back()),
        (Answer::Shaped(shape), _) => shape(&reply, lang),
        _ => (reply.status, axum::Json(reply.to_json(lang))).into_response(),
    }
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    page: PageContext,
    status: u16,
    message: &'a str,
    fields: Vec<(&'a str, &'a str)>,
    back: String,
}

/// A page saying a request was refused or failed, with its status, the message, the fields and a link back.
pub fn error_page(lang: Lang, reply: &ErrorReply, back: String) -> Response {
    let title = if reply.status.is_server_error() {
        lang.pick("Ошибка сервера", "Server error")
    } else {
        lang.pick("Действие отклонено", "Refused")
    };
    let page = ErrorPage {
        page: PageContext::new(title, lang, None),
        status: reply.status.as_u16(),
        message: reply.message.get(lang),
        fields: reply
            .fields
            .iter()
            .map(|field| (field.field.as_ref(), field.message.get(lang)))
            .collect(),
        back,
    };
    (reply.status, render_page(&page)).into_response()
}

/// Where a refused page request came from.
struct Origin {
    path: String,
    referer: Option<HeaderValue>,
    host: Option<HeaderValue>,
}

impl Origin {
    /// Where "back" leads from a refusal: the page the form was on (from `Referer`, this site only), else the
    /// section's list (`/admin/wares/12/delete` → `/admin/wares/`), else the start page.
    fn back(&self) -> String {
        let host = self.host.as_ref().and_then(|v| v.to_str().ok());
        let from_referer = self
            .referer
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.split_once("://"))
            .and_then(|(_, rest)| rest.find('/').map(|i| rest.split_at(i)))
            .filter(|(referer_host, _)| Some(*referer_host) == host)
            .and_then(|(_, path)| crate::web::same_site_path(path))
            .map(str::to_owned);
        from_referer.unwrap_or_else(|| {
            let section: Vec<&str> = self
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .take(2)
                .collect();
            if section.first() == Some(&"admin") {
                format!("/{}/", section.join("/"))
            } else {
                "/".to_owned()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(path: &str, referer: Option<&'static str>) -> Origin {
        Origin {
            path: path.to_owned(),
            referer: referer.map(HeaderValue::from_static),
            host: Some(HeaderValue::from_static("shop:8000")),
        }
    }

    #[test]
    fn back_leads_to_the_referring_page_of_this_site_or_the_section() {
        let wares = Some("http://shop:8000/admin/wares/?page=2");
        assert_eq!(
            origin("/admin/wares/1/delete", wares).back(),
            "/admin/wares/?page=2"
        );
        let elsewhere = Some("http://evil.example/admin/");
        assert_eq!(
            origin("/admin/wares/12/delete", elsewhere).back(),
            "/admin/wares/"
        );
        assert_eq!(origin("/kitchen/7", None).back(), "/");
    }

    #[test]
    fn another_database_error_stays_internal() {
        let plain: Result<(), sqlx::Error> = Err(sqlx::Error::RowNotFound);
        let mapped: Result<(), HttpError> = plain.on_constraint(Constraint::Unique, || {
            HttpError::conflict(Text::same("taken"))
        });
        assert_eq!(
            mapped.unwrap_err().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn json_reads_the_readers_language_with_fields() {
        let error = HttpError::field("name", Text::new("Обязательное поле.", "Required."));
        let reply = error.reply;
        assert_eq!(
            reply.to_json(Lang::Ru),
            json!({"error": "Проверьте отмеченные поля.", "code": "invalid", "fields": {"name": "Обязательное поле."}})
        );
        assert_eq!(reply.to_json(Lang::En)["fields"]["name"], "Required.");
    }
}

/// The body of every JSON API error (an [`HttpError`] as JSON), for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in the reader's language (the `lang` cookie; Russian by default).
    pub error: String,
    /// A stable code a program can act on: `invalid`, `not_found`, `login_required`, `conflict`, …
    pub code: String,
    /// A message for each field that does not fit.
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Completes an API document with what every operation may answer besides its own outcomes, each as an
/// [`ErrorBody`]: 400 for a path or query parameter that does not parse, 401 without a valid credential, 422 for
/// a query parameter that does not fit, 413, 415 and 422 for a body that is too large, not JSON or does not fit,
/// and 500. An outcome an operation documents
/// itself keeps its description.
pub fn document_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    use utoipa::{PartialSchema, ToSchema};
    openapi
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                        .build(),
                )
                .build(),
        )
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let mut outcomes = vec![
                ("400", "A path or query parameter that does not parse"),
                ("401", "No valid credential"),
                (
                    "500",
                    "An internal error (its id is in the message and the log)",
                ),
            ];
            let queried = operation.parameters.iter().flatten().any(|parameter| {
                parameter.parameter_in == utoipa::openapi::path::ParameterIn::Query
            });
            if queried {
                outcomes.push(("422", "A query parameter that does not fit"));
            }
            if operation.request_body.is_some() {
                outcomes.extend([
                    ("413", "The body is too large"),
                    ("415", "The body is not JSON"),
                    ("422", "A field that is missing or does not fit"),
                ]);
            }
            for (status, description) in outcomes {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description));
            }
        }
    }
}
