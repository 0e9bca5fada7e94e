//! Request input (query strings, JSON or form bodies) checked field by field into typed values, collecting the
//! original's Russian field messages into one 400 `Validation error` envelope.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Map, Value, json};

use crate::DirectoryError;

pub const REQUIRED: &str = "Обязательное поле.";
pub const BLANK: &str = "Это поле не может быть пустым.";
pub const NOT_INT: &str = "Введите правильное число.";
pub const EMPTY_LIST: &str = "Этот список не может быть пустым.";

/// Named input values: a query string (a repeated key becomes a list) or a body object.
#[derive(Debug, Default)]
pub struct Input {
    values: Map<String, Value>,
    /// Query and form values are always strings, so there one occurrence of a list key is a one-item list.
    from_query: bool,
}

impl Input {
    fn from_pairs(pairs: Vec<(String, String)>) -> Input {
        let mut map = Map::new();
        for (key, value) in pairs {
            match map.get_mut(&key) {
                Some(Value::Array(list)) => list.push(Value::String(value)),
                Some(single) => *single = json!([single.take(), value]),
                None => {
                    map.insert(key, Value::String(value));
                }
            }
        }
        Input {
            values: map,
            from_query: true,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }
}

/// The query string as [`Input`].
pub struct QueryInput(pub Input);

impl<S: Send + Sync> FromRequestParts<S> for QueryInput {
    type Rejection = DirectoryError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, DirectoryError> {
        let pairs = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map_err(|e| DirectoryError::Malformed(format!("Query parse error - {e}")))?;
        Ok(QueryInput(Input::from_pairs(pairs)))
    }
}

/// A JSON or form-urlencoded body as [`Input`] (the original accepted both).
pub struct BodyInput(pub Input);

const BODY_LIMIT: usize = 1024 * 1024;

impl<S: Send + Sync> FromRequest<S> for BodyInput {
    type Rejection = DirectoryError;
    async fn from_request(request: Request, _: &S) -> Result<Self, DirectoryError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| DirectoryError::Malformed("Request body too large".into()))?;
        // The original's parsers (DRF's defaults): JSON, a URL-encoded form and a multipart form; any other type
        // is refused with DRF's words. Without a type, the body is read as JSON.
        match content_type.as_deref() {
            Some(kind) if kind.starts_with("application/x-www-form-urlencoded") => {
                let pairs = serde_urlencoded::from_bytes(&bytes)
                    .map_err(|e| DirectoryError::Malformed(format!("Form parse error - {e}")))?;
                return Ok(BodyInput(Input::from_pairs(pairs)));
            }
            Some(kind) if kind.starts_with("multipart/form-data") => {
                let pairs = tillwire_platform::web::multipart_fields(kind, bytes)
                    .await
                    .map_err(|e| {
                        DirectoryError::Malformed(format!("Multipart form parse error - {e}"))
                    })?;
                return Ok(BodyInput(Input::from_pairs(pairs)));
            }
            Some(kind) if !is_json(kind) => {
                return Err(DirectoryError::UnsupportedMediaType(kind.to_owned()));
            }
            _ => {}
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(BodyInput(Input::default()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(values)) => Ok(BodyInput(Input {
                values,
                from_query: false,
            })),
            Ok(other) => Err(DirectoryError::field(
                "non_field_errors",
                &format!(
                    "Недопустимые данные. Ожидался dictionary, но был получен {}.",
                    python_type(&other)
                ),
            )),
            Err(error) => Err(DirectoryError::Malformed(format!(
                "JSON parse error - {error}"
            ))),
        }
    }
}

/// `application/json` and its kin (`application/problem+json`, a charset parameter).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The name Python gives a JSON value's type, as the original's messages show it.
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::String(_) => "str",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Null => "NoneType",
        Value::Object(_) => "dict",
    }
}

/// Collects the errors of one input's fields.
#[derive(Default)]
pub struct Check {
    fields: Map<String, Value>,
}

impl Check {
    pub fn fail(&mut self, name: &str, message: impl Into<Value>) {
        self.fields.insert(name.to_owned(), message.into());
    }

    /// An integer within `min..=max`; `None` when absent and optional, or invalid (recorded).
    pub fn int(
        &mut self,
        input: &Input,
        name: &str,
        required: bool,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        let value = match input.get(name) {
            None => {
                if required {
                    self.fail(name, json!([REQUIRED]));
                }
                return None;
            }
            Some(Value::Null) if !required => return None,
            // A query or form sends an empty value for a field left blank: an optional one then takes its
            // default, as the original's forms did (`?limit=`).
            Some(Value::String(text)) if text.is_empty() && input.from_query && !required => {
                return None;
            }
            Some(value) => value,
        };
        match int_of(value) {
            Err(message) => {
                self.fail(name, json!([message]));
                None
            }
            Ok(n) if min.is_some_and(|m| n < m) => {
                let message = format!(
                    "Убедитесь, что это значение больше либо равно {}.",
                    min.unwrap_or_default()
                );
                self.fail(name, json!([message]));
                None
            }
            Ok(n) if max.is_some_and(|m| n > m) => {
                let message = format!(
                    "Убедитесь, что это значение меньше либо равно {}.",
                    max.unwrap_or_default()
                );
                self.fail(name, json!([message]));
                None
            }
            Ok(n) => Some(n),
        }
    }

    /// A string of at most `max` characters. `Some(None)` is an allowed null or empty value.
    pub fn text(
        &mut self,
        input: &Input,
        name: &str,
        required: bool,
        blank_ok: bool,
        max: usize,
    ) -> Option<Option<String>> {
        let text = match input.get(name) {
            None if required => {
                self.fail(name, json!([REQUIRED]));
                return None;
            }
            None => return Some(None),
            Some(Value::Null) if blank_ok => return Some(None),
            Some(Value::String(text)) => text.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Null) => {
                self.fail(name, json!([BLANK]));
                return None;
            }
            Some(_) => {
                self.fail(name, json!(["Not a valid string."]));
                return None;
            }
        };
        if text.is_empty() {
            if blank_ok {
                return Some(None);
            }
            self.fail(name, json!([BLANK]));
            return None;
        }
        if text.chars().count() > max {
            let message = format!("Убедитесь, что это значение содержит не более {max} символов.");
            self.fail(name, json!([message]));
            return None;
        }
        Some(Some(text))
    }

    /// A non-empty list of integers (a repeated query key or a JSON array), duplicates collapsed, ascending.
    pub fn int_list(&mut self, input: &Input, name: &str) -> Option<Vec<i64>> {
        let items: Vec<&Value> = match input.get(name) {
            None => {
                self.fail(name, json!([REQUIRED]));
                return None;
            }
            Some(Value::Array(items)) => items.iter().collect(),
            Some(value @ Value::String(_)) if input.from_query => vec![value],
            Some(other) => {
                let kind = match other {
                    Value::String(_) => "str",
                    Value::Number(_) => "int",
                    _ => "object",
                };
                let message = format!("Ожидался list со значениями, но был получен \"{kind}\".");
                self.fail(name, json!({ "non_field_errors": [message] }));
                return None;
            }
        };
        if items.is_empty() {
            self.fail(name, json!({ "non_field_errors": [EMPTY_LIST] }));
            return None;
        }
        let parsed: Vec<Result<i64, &str>> = items.into_iter().map(int_of).collect();
        if parsed.iter().any(Result::is_err) {
            let per_item: Vec<Value> = parsed
                .iter()
                .map(|r| r.map_or_else(|m| json!([m]), |_| json!({})))
                .collect();
            self.fail(name, Value::Array(per_item));
            return None;
        }
        let mut ids: Vec<i64> = parsed.into_iter().flatten().collect();
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }

    /// The limit/offset page (limit 1–100, default 100; offset ≥ 0, default 0).
    pub fn page(&mut self, input: &Input) -> Page {
        let limit = self.int(input, "limit", false, Some(1), Some(100));
        let offset = self.int(input, "offset", false, Some(0), None);
        Page {
            limit: limit.unwrap_or(100),
            offset: offset.unwrap_or(0),
        }
    }

    pub fn finish(self) -> Result<(), DirectoryError> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(DirectoryError::Validation(self.fields))
        }
    }
}

fn int_of(value: &Value) -> Result<i64, &'static str> {
    match value {
        Value::Number(n) => n.as_i64().ok_or(NOT_INT),
        Value::String(text) => text.trim().parse().map_err(|_| NOT_INT),
        Value::Null => Err(BLANK),
        _ => Err(NOT_INT),
    }
}

/// A checked limit/offset page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    /// Rows to fetch: one more than the page, to know whether the list ends here.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// `{"<key>": [...], "is_end_of_list_reached": …}` from up to `limit + 1` fetched rows.
    pub fn respond<T: serde::Serialize>(
        &self,
        key: &'static str,
        rows: Vec<T>,
    ) -> axum::Json<PageBody<T>> {
        axum::Json(self.body(key, rows))
    }

    pub fn body<T: serde::Serialize>(&self, key: &'static str, mut rows: Vec<T>) -> PageBody<T> {
        let is_end = rows.len() as i64 <= self.limit;
        rows.truncate(self.limit as usize);
        PageBody { key, rows, is_end }
    }
}

/// A page's body, serialised straight from the rows (no intermediate JSON tree on the hot lists).
pub struct PageBody<T> {
    key: &'static str,
    rows: Vec<T>,
    is_end: bool,
}

impl<T: serde::Serialize> serde::Serialize for PageBody<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(self.key, &self.rows)?;
        map.serialize_entry("is_end_of_list_reached", &self.is_end)?;
        map.end()
    }
}
