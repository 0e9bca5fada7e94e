//! The compatible HTTP API (spec §3), mounted both unprefixed and under `/api/`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, patch, post};
use axum::{Extension, Json, Router, middleware};
use serde_json::{Value, json};
use tillwire_platform::web::ClientAddr;

use crate::access::{Caller, guard};
use crate::error::messages;
use crate::input::{BodyInput, Check, QueryInput};
use crate::storage::{Catalog, ChatType, ChatUpdate, NewChat, RouteRequest};
use crate::subscriptions::Subscriptions;
use crate::{Directory, DirectoryError};

/// Telegram allows group titles of 128 characters and user names of 64 + 64; the original's 64 was too short.
const TITLE_MAX: usize = 255;
const USERNAME_MAX: usize = 64;

type Reply = Result<Response, DirectoryError>;

pub fn router(directory: Directory) -> Router<Directory> {
    let endpoints: [(&str, MethodRouter<Directory>); 17] = [
        ("/units/", get(units)),
        ("/units/name/{name}/", get(unit_by_name)),
        ("/units/regions/", get(regions)),
        ("/units/departments/", get(departments)),
        ("/telegram-chats/", get(chats).post(create_chat)),
        ("/telegram-chats/chat-types/", get(chat_types)),
        ("/telegram-chats/{chat_id}/", get(chat).put(update_chat)),
        ("/report-types/", get(report_types)),
        ("/report-types/statistics/", get(statistics)),
        ("/report-types/names/{name}/", get(report_type_by_name)),
        ("/report-routes/", post(create_routes).delete(delete_routes)),
        ("/report-routes/units/", get(routed_units)),
        ("/report-routes/telegram-chats/", get(routed_chats)),
        ("/roles/users/{chat_id}/", patch(assign_role)),
        ("/roles/users/{chat_id}/units/", get(role_units)),
        ("/roles/users/{chat_id}/regions/", get(role_regions)),
        (
            "/roles/users/{chat_id}/report-types/",
            get(role_report_types),
        ),
    ];
    let mut api = Router::new();
    for (path, endpoint) in endpoints {
        // Every path ends with `/`; without it the original redirected to it (see `append_slash`).
        api = api
            .route(path, allowed(endpoint))
            .route(path.trim_end_matches('/'), any(append_slash));
    }
    // Unknown paths inside the directory's sections answer the JSON envelope, not an HTML page.
    // (A catch-all cannot sit beside a parameter, so below `/telegram-chats/` it starts one level deeper; the
    // chat handlers answer the same 404 for a non-numeric id.)
    for section in [
        "/units",
        "/telegram-chats/{chat_id}",
        "/report-types",
        "/report-routes",
        "/roles",
    ] {
        api = api.route(&format!("{section}/{{*rest}}"), any(unknown_path));
    }
    let api = api.route_layer(middleware::from_fn_with_state(directory, guard));
    Router::new().merge(api.clone()).nest("/api", api)
}

/// A known path without its trailing slash: redirected to it with the query kept, as Django's `APPEND_SLASH`
/// did; 301 for GET and HEAD, 308 for other methods so their method and body survive (Django's 301 lost them).
async fn append_slash(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let status = if matches!(method, Method::GET | Method::HEAD) {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    (status, [(header::LOCATION, location)]).into_response()
}

/// Every other method on a known path answers the original's 405 envelope.
fn allowed(route: MethodRouter<Directory>) -> MethodRouter<Directory> {
    route.fallback(
        |method: Method| async move { DirectoryError::MethodNotAllowed(method.to_string()) },
    )
}

async fn unknown_path() -> DirectoryError {
    DirectoryError::NotFound(messages::UNKNOWN_PATH)
}

/// A `chat_id` path segment (negative for groups); anything else is an unknown URL, as in the original.
fn chat_id_of(raw: &str) -> Result<i64, DirectoryError> {
    raw.parse()
        .map_err(|_| DirectoryError::NotFound(messages::UNKNOWN_PATH))
}

fn catalog(directory: &Directory) -> Catalog<'_> {
    Catalog(&directory.platform.store)
}

fn empty(status: StatusCode) -> Reply {
    Ok(status.into_response())
}

async fn units(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    let body = d
        .unit_pages
        .get_or_render((page.limit, page.offset), async {
            let rows = catalog(&d).units(page).await?;
            Ok::<_, DirectoryError>(serde_json::to_vec(&page.body("units", rows))?.into())
        })
        .await?;
    Ok(json_body(body))
}

fn json_body(body: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn unit_by_name(State(d): State<Directory>, Path(name): Path<String>) -> Reply {
    Ok(Json(catalog(&d).unit_by_name(&name).await?).into_response())
}

async fn regions(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    Ok(page
        .respond("regions", catalog(&d).regions(page).await?)
        .into_response())
}

async fn departments(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    let rows = catalog(&d).departments(page).await?;
    Ok(page.respond("departments", rows).into_response())
}

async fn chats(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    let rows: Vec<Value> = catalog(&d)
        .chats(page)
        .await?
        .into_iter()
        .map(|(title, chat_id)| json!({ "title": title, "chat_id": chat_id }))
        .collect();
    Ok(page.respond("telegram_chats", rows).into_response())
}

async fn create_chat(
    State(d): State<Directory>,
    Extension(caller): Extension<Caller>,
    BodyInput(input): BodyInput,
) -> Reply {
    let mut check = Check::default();
    let chat_id = check.int(&input, "chat_id", true, None, None);
    let kind = check
        .text(&input, "type", true, false, 16)
        .flatten()
        .and_then(|text| {
            let kind = ChatType::parse(&text);
            if kind.is_none() {
                check.fail(
                    "type",
                    json!([format!("Значения {text} нет среди допустимых вариантов.")]),
                );
            }
            kind
        });
    let title = check
        .text(&input, "title", true, false, TITLE_MAX)
        .flatten();
    // "" and null are both "no username" (the original stored both).
    let username = check.text(&input, "username", false, true, USERNAME_MAX);
    check.finish()?;
    let (Some(chat_id), Some(kind), Some(title), Some(username)) = (chat_id, kind, title, username)
    else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    let chat = NewChat {
        chat_id,
        kind,
        title,
        username,
    };
    catalog(&d).create_chat(&chat, &caller.0).await?;
    empty(StatusCode::CREATED)
}

async fn chat_types() -> Json<Value> {
    Json(json!(ChatType::ALL.map(ChatType::as_str)))
}

async fn chat(State(d): State<Directory>, Path(raw): Path<String>) -> Reply {
    let chat = catalog(&d).chat(chat_id_of(&raw)?).await?;
    let kind = chat.kind();
    // `type` keeps the original's display label; `type_name` is the enum clients send.
    Ok(Json(json!({
        "chat_id": chat.chat_id,
        "username": chat.username,
        "title": chat.title,
        "type": kind.label(),
        "type_name": kind.as_str(),
    }))
    .into_response())
}

/// `username` may be left out (telegram-chats-manager sends only `title`): the stored one is kept.
/// `migrate_to_chat_id` moves the chat, with its routes, to a supergroup's new id.
async fn update_chat(
    State(d): State<Directory>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    BodyInput(input): BodyInput,
) -> Reply {
    let chat_id = chat_id_of(&raw)?;
    let mut check = Check::default();
    let title = check
        .text(&input, "title", true, false, TITLE_MAX)
        .flatten();
    let username = input
        .contains("username")
        .then(|| check.text(&input, "username", false, true, USERNAME_MAX))
        .flatten();
    let migrate_to = check.int(&input, "migrate_to_chat_id", false, None, None);
    check.finish()?;
    let Some(title) = title else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    let update = ChatUpdate {
        title,
        username,
        migrate_to,
    };
    catalog(&d).update_chat(chat_id, &update, &caller.0).await?;
    empty(StatusCode::NO_CONTENT)
}

/// The classic paginated list; with `parent_id` (HEAD's form) the bare array of that type's active children.
async fn report_types(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    if input.contains("parent_id") {
        let parent = check.int(&input, "parent_id", true, Some(1), None);
        check.finish()?;
        let rows = catalog(&d)
            .report_type_children(parent.unwrap_or_default())
            .await?;
        return Ok(Json(rows).into_response());
    }
    let page = check.page(&input);
    check.finish()?;
    let rows = catalog(&d).report_types(page, false).await?;
    Ok(page.respond("report_types", rows).into_response())
}

async fn statistics(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    let rows = catalog(&d).report_types(page, true).await?;
    Ok(page.respond("report_types", rows).into_response())
}

async fn report_type_by_name(State(d): State<Directory>, Path(name): Path<String>) -> Reply {
    Ok(Json(catalog(&d).report_type_by_name(&name).await?).into_response())
}

async fn routed_units(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let chat_id = check.int(&input, "chat_id", true, None, None);
    let report_type_id = check.int(&input, "report_type_id", true, Some(1), None);
    let page = check.page(&input);
    check.finish()?;
    let (Some(chat_id), Some(report_type_id)) = (chat_id, report_type_id) else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    let rows = catalog(&d)
        .routed_units(chat_id, report_type_id, page)
        .await?;
    Ok(page.respond("unit_ids", rows).into_response())
}

async fn routed_chats(State(d): State<Directory>, QueryInput(input): QueryInput) -> Reply {
    let mut check = Check::default();
    let unit_id = check.int(&input, "unit_id", true, Some(1), None);
    let report_type_id = check.int(&input, "report_type_id", true, Some(1), None);
    let page = check.page(&input);
    check.finish()?;
    let (Some(unit_id), Some(report_type_id)) = (unit_id, report_type_id) else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    let key = (unit_id, report_type_id, page.limit, page.offset);
    let body = d
        .fan_out_pages
        .get_or_render(key, async {
            let rows = catalog(&d)
                .routed_chats(unit_id, report_type_id, page)
                .await?;
            Ok::<_, DirectoryError>(serde_json::to_vec(&page.body("chat_ids", rows))?.into())
        })
        .await?;
    Ok(json_body(body))
}

async fn create_routes(
    State(d): State<Directory>,
    Extension(caller): Extension<Caller>,
    BodyInput(input): BodyInput,
) -> Reply {
    let mut check = Check::default();
    let report_type_id = check.int(&input, "report_type_id", true, None, None);
    let chat_id = check.int(&input, "chat_id", true, None, None);
    let user_chat_id = check.int(&input, "user_chat_id", true, None, None);
    let unit_ids = check.int_list(&input, "unit_ids");
    check.finish()?;
    let (Some(report_type_id), Some(chat_id), Some(user_chat_id), Some(unit_ids)) =
        (report_type_id, chat_id, user_chat_id, unit_ids)
    else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    let request = RouteRequest {
        report_type_id,
        chat_id,
        user_chat_id,
        unit_ids,
    };
    catalog(&d).create_routes(&request, &caller.0).await?;
    empty(StatusCode::CREATED)
}

/// Unlike the original (500 on bad input, silent no-op without `unit_ids`), every parameter is validated.
async fn delete_routes(
    State(d): State<Directory>,
    Extension(caller): Extension<Caller>,
    QueryInput(input): QueryInput,
) -> Reply {
    let mut check = Check::default();
    let chat_id = check.int(&input, "chat_id", true, None, None);
    let report_type_id = check.int(&input, "report_type_id", true, Some(1), None);
    let unit_ids = check.int_list(&input, "unit_ids");
    check.finish()?;
    let (Some(chat_id), Some(report_type_id), Some(unit_ids)) = (chat_id, report_type_id, unit_ids)
    else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    catalog(&d)
        .delete_routes(chat_id, report_type_id, &unit_ids, &caller.0)
        .await?;
    empty(StatusCode::NO_CONTENT)
}

async fn assign_role(
    State(d): State<Directory>,
    Extension(caller): Extension<Caller>,
    ClientAddr(address): ClientAddr,
    Path(raw): Path<String>,
    BodyInput(input): BodyInput,
) -> Reply {
    let chat_id = chat_id_of(&raw)?;
    let mut check = Check::default();
    let code = check.text(&input, "access_code", true, false, 64).flatten();
    check.finish()?;
    let Some(code) = code else {
        return Err(DirectoryError::Validation(Default::default()));
    };
    // A wrong code, or a chat that does not exist, counts as a failed attempt.
    Subscriptions(d.platform.store.clone())
        .redeem(&d.limiter, address, chat_id, &code, &caller.0)
        .await?;
    empty(StatusCode::NO_CONTENT)
}

async fn role_units(
    State(d): State<Directory>,
    Path(raw): Path<String>,
    QueryInput(input): QueryInput,
) -> Reply {
    let role = catalog(&d).role_of(chat_id_of(&raw)?).await?;
    let mut check = Check::default();
    let region_id = check.int(&input, "region_id", false, Some(1), None);
    let page = check.page(&input);
    check.finish()?;
    let rows = catalog(&d).role_units(role, region_id, page).await?;
    Ok(page.respond("units", rows).into_response())
}

async fn role_regions(
    State(d): State<Directory>,
    Path(raw): Path<String>,
    QueryInput(input): QueryInput,
) -> Reply {
    let role = catalog(&d).role_of(chat_id_of(&raw)?).await?;
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    let rows = catalog(&d).role_regions(role, page).await?;
    Ok(page.respond("regions", rows).into_response())
}

async fn role_report_types(
    State(d): State<Directory>,
    Path(raw): Path<String>,
    QueryInput(input): QueryInput,
) -> Reply {
    let role = catalog(&d).role_of(chat_id_of(&raw)?).await?;
    let mut check = Check::default();
    let page = check.page(&input);
    check.finish()?;
    let rows = catalog(&d).role_report_types(role, page).await?;
    Ok(page.respond("report_types", rows).into_response())
}
