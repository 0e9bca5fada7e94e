//! The directory's domain error, its [`HttpError`], and the original's envelope `{"message": …, "extra": {…}}`
//! that the API answers every error in.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tillwire_platform::error::ErrorReply;
use tillwire_platform::web::Lang;
use tillwire_platform::{HttpError, Text};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Field errors, keyed by field, in the order the fields were checked. Each value is what the original
    /// answers for the field: a list of messages, or a list field's nested errors.
    #[error("Validation error")]
    Validation(Map<String, Value>),
    /// A body or query that is not JSON (or a form): the message carries the parser's words, as the original's.
    #[error("{0}")]
    Malformed(String),
    /// One of the original's messages ([`messages`]): clients match them, so they read the same in both languages.
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("Authentication credentials were not provided.")]
    Unauthenticated,
    #[error("Invalid token.")]
    BadToken,
    #[error("Request was throttled. Expected available in 60 seconds.")]
    Throttled,
    /// Russian, as the original answers with `LANGUAGE_CODE=ru`.
    #[error("Метод \"{0}\" не разрешен.")]
    MethodNotAllowed(String),
    /// A body of a type the original could not parse; Russian, as above.
    #[error("Неподдерживаемый тип данных \"{0}\" в запросе.")]
    UnsupportedMediaType(String),
    /// An admin form or import file that does not fit: the form's field, when there is one, and why.
    #[error("{message}")]
    Invalid {
        field: Option<&'static str>,
        message: Text,
    },
    /// An admin deletion of something others still refer to.
    #[error("{0}")]
    InUse(Text),
    /// Something an admin page names that does not exist (any more).
    #[error("{0}")]
    Missing(Text),
    #[error(transparent)]
    Tokens(#[from] tillwire_platform::tokens::TokenError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The messages clients match (spec §3.7).
pub mod messages {
    pub const CHAT_NOT_FOUND: &str = "Chat by chat ID is not found";
    pub const ROLE_NOT_FOUND: &str = "Role is not found";
    pub const NO_ROLE: &str = "User has no any role";
    pub const UNIT_BY_NAME_NOT_FOUND: &str = "Unit by name is not found";
    pub const REPORT_TYPE_NOT_FOUND: &str = "Report type is not found";
    pub const REPORT_TYPE_BY_ID_NOT_FOUND: &str = "Report type by ID is not found";
    pub const REPORT_TYPE_DENIED: &str = "Permission to report type denied";
    pub const CHAT_EXISTS: &str = "Chat with provided chat ID already exists";
    pub const ROUTE_EXISTS: &str = "Unit route already exists";
    /// Not the original's (it never checked): the bot's "ensure" refuses a report type that is switched off.
    pub const REPORT_TYPE_INACTIVE: &str = "Report type is not active";
    pub const UNKNOWN_PATH: &str = "Not found.";
}

impl DirectoryError {
    /// A single API field's error, e.g. `field("title", "Обязательное поле.")`.
    pub fn field(name: &str, message: &str) -> Self {
        let mut fields = Map::new();
        fields.insert(name.to_owned(), json!([message]));
        DirectoryError::Validation(fields)
    }

    /// An admin form's field that does not fit.
    pub fn invalid(field: &'static str, message: Text) -> Self {
        DirectoryError::Invalid {
            field: Some(field),
            message,
        }
    }
}

impl From<DirectoryError> for HttpError {
    fn from(error: DirectoryError) -> Self {
        use StatusCode as S;
        match error {
            DirectoryError::Validation(fields) => {
                let summary =
                    HttpError::new(S::BAD_REQUEST, "invalid", Text::same("Validation error"));
                fields.into_iter().fold(summary, |error, (field, value)| {
                    error.with_field(field, Text::same(field_text(&value)))
                })
            }
            error @ DirectoryError::Malformed(_) => legacy(&error, S::BAD_REQUEST, "bad_request"),
            // An unknown path: Django's 404 text, in the API's language (Russian in production).
            DirectoryError::NotFound(messages::UNKNOWN_PATH) => HttpError::new(
                S::NOT_FOUND,
                "not_found",
                Text::new("Страница не найдена.", "Not found."),
            ),
            error @ DirectoryError::NotFound(_) => legacy(&error, S::NOT_FOUND, "not_found"),
            error @ DirectoryError::Forbidden(_) => legacy(&error, S::FORBIDDEN, "forbidden"),
            error @ DirectoryError::Conflict(_) => legacy(&error, S::CONFLICT, "conflict"),
            error @ DirectoryError::Unauthenticated => {
                legacy(&error, S::UNAUTHORIZED, "login_required")
            }
            error @ DirectoryError::BadToken => legacy(&error, S::UNAUTHORIZED, "bad_token"),
            error @ DirectoryError::Throttled => {
                legacy(&error, S::TOO_MANY_REQUESTS, "rate_limited")
            }
            error @ DirectoryError::MethodNotAllowed(_) => {
                legacy(&error, S::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            error @ DirectoryError::UnsupportedMediaType(_) => {
                legacy(&error, S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            DirectoryError::Invalid {
                field: Some(field),
                message,
            } => HttpError::field(field, message),
            DirectoryError::Invalid {
                field: None,
                message,
            } => HttpError::invalid(message),
            DirectoryError::InUse(message) => HttpError::conflict(message).with_code("in_use"),
            DirectoryError::Missing(message) => HttpError::not_found(message),
            DirectoryError::Tokens(error) => error.into(),
            DirectoryError::Database(error) => HttpError::internal(error),
            DirectoryError::Json(error) => HttpError::internal(error),
        }
    }
}

/// An error of the API's own: its message is the original's exact words, whatever the reader's language.
fn legacy(error: &DirectoryError, status: StatusCode, code: &'static str) -> HttpError {
    HttpError::new(status, code, Text::same(error.to_string()))
}

impl IntoResponse for DirectoryError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

/// How the API answers an error (its route group's `Answer::Shaped`): the original's envelope with the reply's
/// status. Bad input (code `invalid`, or any reply naming fields) lists them in `extra.fields`; internal failures
/// are never described.
pub fn envelope(reply: &ErrorReply, lang: Lang) -> Response {
    let (message, extra) = if reply.status.is_server_error() {
        ("Internal server error", json!({}))
    } else if reply.code == "invalid" || !reply.fields.is_empty() {
        let fields: Map<String, Value> = reply
            .fields
            .iter()
            .map(|field| {
                let messages = field_messages(field.message.get(lang));
                (field.field.to_string(), messages)
            })
            .collect();
        (reply.message.get(lang), json!({ "fields": fields }))
    } else {
        (reply.message.get(lang), json!({}))
    };
    (
        reply.status,
        axum::Json(json!({ "message": message, "extra": extra })),
    )
        .into_response()
}

/// A validation field's value as an [`HttpError`] field's text: a list of one message is that message (readable
/// wherever the error is shown); any other shape (a list field's nested errors) is its JSON, so the envelope
/// gives it back exactly.
fn field_text(value: &Value) -> String {
    match value.as_array().map(Vec::as_slice) {
        Some([Value::String(message)]) if field_messages(message) == *value => message.clone(),
        _ => value.to_string(),
    }
}

/// The inverse of [`field_text`]: JSON lists and objects as they are, any other text as a list of one message.
fn field_messages(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(value @ (Value::Array(_) | Value::Object(_))) => value,
        _ => json!([text]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    fn reply(error: DirectoryError) -> ErrorReply {
        HttpError::from(error).reply().clone()
    }

    #[test]
    fn field_values_survive_the_http_error() {
        for value in [
            json!(["Обязательное поле."]),
            json!({"non_field_errors": ["Этот список не может быть пустым."]}),
            json!([["Введите правильное число."], {}]),
            json!(["[1]"]),
            json!(["a", "b"]),
        ] {
            assert_eq!(field_messages(&field_text(&value)), value, "{value}");
        }
        assert_eq!(
            field_text(&json!(["Обязательное поле."])),
            "Обязательное поле."
        );
    }

    #[tokio::test]
    async fn the_envelope_keeps_the_originals_shapes() {
        let mut fields = Map::new();
        fields.insert("user_chat_id".into(), json!(["Обязательное поле."]));
        fields.insert(
            "unit_ids".into(),
            json!([["Введите правильное число."], {}]),
        );
        let validation = reply(DirectoryError::Validation(fields.clone()));
        assert_eq!(
            body(envelope(&validation, Lang::En)).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"message": "Validation error", "extra": {"fields": fields}})
            )
        );
        let method = reply(DirectoryError::MethodNotAllowed("POST".into()));
        assert_eq!(
            body(envelope(&method, Lang::En)).await,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"message": "Метод \"POST\" не разрешен.", "extra": {}})
            )
        );
        let failed = reply(DirectoryError::Database(sqlx::Error::RowNotFound));
        assert_eq!(
            body(envelope(&failed, Lang::Ru)).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "Internal server error", "extra": {}})
            )
        );
    }
}
