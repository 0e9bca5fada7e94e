//! How oilmat-erp's Flask app wrote its answers, byte for byte where clients may compare: `jsonify` (keys sorted,
//! compact, non-ASCII as `\uXXXX`, a trailing newline), Werkzeug's HTML error pages, and Python's `repr` of the
//! queue's tuples (spec §1.1, §1.5).

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON answer as Flask's `jsonify` writes it.
pub fn json(status: StatusCode, value: &Value) -> Response {
    let mut body = String::new();
    write_value(&mut body, value);
    body.push('\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    json(status, &object([("error", Value::from(message))]))
}

/// A JSON object from pairs (the order does not matter: keys are sorted when written).
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            out.push('{');
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            for (i, (key, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, value);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::String(text) => write_string(out, text),
        other => out.push_str(&other.to_string()),
    }
}

/// Python's `json.dumps(ensure_ascii=True)` string.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// One value of a queue tuple, as Python's `repr` shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Str(String),
    Int(i64),
}

/// Python's `repr` of a list of tuples: `[('Gygag', '560', '10', '5', '0001', '***', '***')]`.
pub fn repr_tuples(rows: &[Vec<Item>]) -> String {
    let tuples: Vec<String> = rows
        .iter()
        .map(|row| {
            let items: Vec<String> = row
                .iter()
                .map(|item| match item {
                    Item::Str(text) => repr_str(text),
                    Item::Int(n) => n.to_string(),
                })
                .collect();
            match items.len() {
                1 => format!("({},)", items[0]),
                _ => format!("({})", items.join(", ")),
            }
        })
        .collect();
    format!("[{}]", tuples.join(", "))
}

/// Python's `repr` of a `str`: single quotes unless the text has a `'` and no `"`.
fn repr_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Werkzeug's HTML error page.
pub fn html_error(status: StatusCode, description: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html>\n<html lang=en>\n<title>{code} {title}</title>\n<h1>{title}</h1>\n<p>{description}</p>\n",
        code = status.as_u16()
    );
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

pub fn not_found() -> Response {
    html_error(
        StatusCode::NOT_FOUND,
        "The requested URL was not found on the server. If you entered the URL manually please check your \
         spelling and try again.",
    )
}

pub fn method_not_allowed() -> Response {
    html_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}

pub fn unsupported_media_type() -> Response {
    html_error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Did not attempt to load JSON data because the request Content-Type was not &#39;application/json&#39;.",
    )
}

pub fn bad_request() -> Response {
    html_error(
        StatusCode::BAD_REQUEST,
        "The browser (or proxy) sent a request that this server could not understand.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn json_is_sorted_compact_ascii_with_a_newline() {
        let value = serde_json::json!({"b": 1, "a": "Åben \"x\"\n😀", "c": [true, null]});
        assert_eq!(
            body(json(StatusCode::OK, &value)).await,
            "{\"a\":\"\\u00c5ben \\\"x\\\"\\n\\ud83d\\ude00\",\"b\":1,\"c\":[true,null]}\n"
        );
    }

    #[test]
    fn tuples_read_as_python_prints_them() {
        let rows = vec![
            vec![
                Item::Str("Gygag".into()),
                Item::Str("it's".into()),
                Item::Int(5),
            ],
            vec![Item::Str("both ' and \"".into())],
        ];
        assert_eq!(
            repr_tuples(&rows),
            "[('Gygag', \"it's\", 5), ('both \\' and \"',)]"
        );
        assert_eq!(repr_tuples(&[]), "[]");
    }
}
