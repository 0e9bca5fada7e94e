//! The one error type of the directory, answered as the original's envelope `{"message": …, "extra": {…}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Field errors, keyed by field, in the order the fields were checked.
    #[error("Validation error")]
    Validation(Map<String, Value>),
    /// A body that is not JSON (or a form): the message carries the parser's words.
    #[error("{0}")]
    Malformed(String),
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
    /// An admin form or import file that does not fit; the text says where.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Units(#[from] tillwire_units::UnitError),
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
    pub const UNKNOWN_PATH: &str = "Not found.";
}

impl DirectoryError {
    pub fn status(&self) -> StatusCode {
        match self {
            DirectoryError::Validation(_)
            | DirectoryError::Malformed(_)
            | DirectoryError::Invalid(_) => StatusCode::BAD_REQUEST,
            DirectoryError::NotFound(_) => StatusCode::NOT_FOUND,
            DirectoryError::Forbidden(_) => StatusCode::FORBIDDEN,
            DirectoryError::Conflict(_) => StatusCode::CONFLICT,
            DirectoryError::Unauthenticated | DirectoryError::BadToken => StatusCode::UNAUTHORIZED,
            DirectoryError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            DirectoryError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            DirectoryError::Units(error) if !error.status().is_server_error() => error.status(),
            DirectoryError::Database(_) | DirectoryError::Json(_) | DirectoryError::Units(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A single field's error, e.g. `field("title", "Обязательное поле.")`.
    pub fn field(name: &str, message: &str) -> Self {
        let mut fields = Map::new();
        fields.insert(name.to_owned(), json!([message]));
        DirectoryError::Validation(fields)
    }

    /// The envelope's `message` as shown to a client (internal failures are never described).
    pub fn public_message(&self) -> String {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "directory request failed");
            "Internal server error".to_owned()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for DirectoryError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.public_message();
        let extra = match self {
            DirectoryError::Validation(fields) => json!({ "fields": fields }),
            _ => json!({}),
        };
        (
            status,
            axum::Json(json!({ "message": message, "extra": extra })),
        )
            .into_response()
    }
}

/// The same error for the admin pages, in the `{"error": …}` shape `html_errors` turns into a page.
pub struct AdminError(pub DirectoryError);

impl<E: Into<DirectoryError>> From<E> for AdminError {
    fn from(error: E) -> Self {
        AdminError(error.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let mut message = self.0.public_message();
        if let DirectoryError::Validation(fields) = &self.0 {
            message = format!("{message}: {}", Value::Object(fields.clone()));
        }
        (status, axum::Json(json!({ "error": message }))).into_response()
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

/// A handler that panicked still answers the envelope (500, no details), never an empty reply.
pub(crate) fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("directory handler panicked");
    let body = json!({ "message": "Internal server error", "extra": {} });
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}
