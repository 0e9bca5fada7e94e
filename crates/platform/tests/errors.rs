//! The one error vocabulary, seen from outside: the same `HttpError` is a page in the reader's language on a page
//! route (JSON for the form script), `{"error","code","fields"}` on a JSON route and a legacy shape where a route
//! group keeps one; extractor rejections never show a parser's words; a unique violation becomes the area's 409
//! on both backends.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tillwire_platform::area;
use tillwire_platform::error::{Constraint, ErrorReply, ResultExt};
use tillwire_platform::web::Lang;
use tillwire_platform::{
    Access, Answer, Area, HttpError, Migration, Platform, Settings, Store, Text, write,
};
use tillwire_testkit::reqwest::{self, StatusCode};

fn required_name() -> HttpError {
    HttpError::field("name", Text::new("Обязательное поле.", "Required."))
}

async fn number(Path(n): Path<i64>) -> String {
    n.to_string()
}

/// A legacy client's shape: only the English message and the status.
fn legacy(reply: &ErrorReply, _: Lang) -> Response {
    let body = json!({ "legacy": reply.message.to_string(), "status": reply.status.as_u16() });
    (AxumStatus::OK, axum::Json(body)).into_response()
}

async fn claim(State(platform): State<Platform>, name: String) -> Result<&'static str, HttpError> {
    write!(&platform.store, db => sqlx::query("INSERT INTO errs_names (name) VALUES ($1)")
        .bind(&name)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
    .on_constraint(Constraint::Unique, || {
        HttpError::conflict(Text::new("Имя занято.", "The name is taken.")).with_code("name_taken")
    })?;
    Ok("claimed")
}

const ERRS: Area = Area {
    name: "errs",
    migrations: &[Migration {
        area: "errs",
        version: 1,
        sqlite: "CREATE TABLE errs_names (name TEXT NOT NULL UNIQUE);",
        postgres: "CREATE TABLE errs_names (name TEXT NOT NULL UNIQUE);",
    }],
    build: |assembly| {
        let platform = assembly.platform.clone();
        assembly.routes(
            Access::Session,
            Answer::Page,
            Router::new()
                .route("/errs/field", get(|| async { required_name() }))
                .route("/errs/number/{n}", get(number)),
        );
        assembly.routes(
            Access::Credential,
            Answer::Json,
            Router::new()
                .route(
                    "/errs/api/missing",
                    get(|| async {
                        HttpError::not_found(Text::new("Нет такого.", "No such thing."))
                    }),
                )
                .route("/errs/api/number/{n}", get(number))
                .route("/errs/api/names", post(claim))
                .with_state(platform),
        );
        assembly.routes(
            Access::Credential,
            Answer::Shaped(legacy),
            Router::new().route("/errs/legacy", get(|| async { required_name() })),
        );
        Ok(())
    },
    ..Area::NONE
};

const AREAS: &[&Area] = &[&tillwire_platform::AREA, &ERRS];

tillwire_testkit::both_backends!(errors_take_their_route_groups_shape, |db| async move {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&area::migrations(AREAS))
        .await
        .expect("migrate");
    let platform = Platform::new(store, Settings::for_database(db.url()));
    let app = area::assemble(AREAS, &platform).expect("assemble");
    let (base, server) = tillwire_testkit::serve_router(app.router).await;
    let client = reqwest::Client::new();
    let get = |path: &str, lang: &str, accept: &str| {
        client
            .get(format!("{base}{path}"))
            .header("cookie", format!("lang={lang}"))
            .header("accept", accept)
            .send()
    };

    // A page route: an error page in the reader's language, with the field's message and a way back.
    for (lang, summary, field) in [
        ("ru", "Проверьте отмеченные поля.", "Обязательное поле."),
        ("en", "Check the marked fields.", "Required."),
    ] {
        let page = get("/errs/field", lang, "text/html").await.expect("page");
        assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = page.text().await.expect("body");
        assert!(
            html.contains("<html") && html.contains(summary) && html.contains(field),
            "{html}"
        );
        assert!(
            html.contains(r#"class="button" href="/""#),
            "a way back: {html}"
        );
    }
    // The form script asks the same route for JSON and places the field's error itself.
    let reply = get("/errs/field", "ru", "application/json")
        .await
        .expect("json");
    assert_eq!(reply.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.json::<Value>().await.expect("JSON"),
        json!({"error": "Проверьте отмеченные поля.", "code": "invalid", "fields": {"name": "Обязательное поле."}})
    );
    // A path that does not parse: a readable refusal, not the parser's words.
    let page = get("/errs/number/abc", "ru", "text/html")
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.expect("body");
    assert!(html.contains("Запрос не удалось прочитать"), "{html}");
    assert!(!html.contains("Cannot parse"), "{html}");

    // A JSON route answers JSON in the reader's language, extractor rejections included.
    let reply = get("/errs/api/missing", "en", "*/*").await.expect("json");
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json::<Value>().await.expect("JSON"),
        json!({"error": "No such thing.", "code": "not_found", "fields": {}})
    );
    let reply = get("/errs/api/number/abc", "ru", "*/*")
        .await
        .expect("json");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    let body = reply.json::<Value>().await.expect("JSON");
    assert_eq!(body["code"], "bad_request");
    assert!(!body.to_string().contains("Cannot parse"), "{body}");

    // A legacy group keeps its own shape.
    let reply = get("/errs/legacy", "ru", "*/*").await.expect("legacy");
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.json::<Value>().await.expect("JSON"),
        json!({"legacy": "Check the marked fields.", "status": 422})
    );

    // A unique violation becomes the area's conflict on this backend; the first write stands.
    let claim = |name: &'static str| {
        client
            .post(format!("{base}/errs/api/names"))
            .header("cookie", "lang=en")
            .body(name)
            .send()
    };
    assert_eq!(claim("ann").await.expect("first").status(), StatusCode::OK);
    let taken = claim("ann").await.expect("second");
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_eq!(
        taken.json::<Value>().await.expect("JSON"),
        json!({"error": "The name is taken.", "code": "name_taken", "fields": {}})
    );
    server.abort();
});
