//! AD Manager after its move to Angular Material MDC (spec §3.1): the login form's `formcontrolname` inputs
//! `#mat-input-0` and `#mat-input-1` and its `mdc-button__label`, the menu link `[routerlink='/worksheet']`, the
//! overview table of cases (paged, with a "next page" link the original script never used), and the worksheet
//! with its `worksheet-line-list` and the entry row whose item number autocompletes the name on TAB and which
//! ENTER saves.
//!
//! The entry row comes before the list of lines: the original script takes the *first* `[class='product-number']`
//! of the page and expects an `input` in it, while the rows of the list use the same classes for their text.

use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::{Credentials, ErpSim, Line, Refused, escape, log_in, page};

/// Cases per page of the worksheet overview.
const PAGE_SIZE: usize = 20;

pub(super) fn routes() -> Router<ErpSim> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/", get(home))
        .route("/worksheet", get(overview))
        .route("/worksheet/{case}", get(worksheet).post(add_line))
        .route("/api/products/{item}", get(product))
}

const STYLE: &str = "body{font-family:Roboto,Arial,sans-serif;margin:0;background:#fafafa;color:#222}\
    .mat-toolbar{display:flex;gap:1.5rem;align-items:center;background:#3f51b5;color:#fff;padding:0 1rem;height:56px}\
    .mat-toolbar a{color:#fff;text-decoration:none}main{padding:1rem 2rem}\
    .mat-mdc-form-field{display:block;margin:.8rem 0}.mat-mdc-form-field label{display:block;font-size:.8rem;color:#666}\
    input{font:inherit;padding:.4rem;border:1px solid #bbb;border-radius:4px}\
    .mdc-button{font:inherit;background:#3f51b5;color:#fff;border:0;border-radius:4px;padding:.5rem 1.2rem;cursor:pointer}\
    mat-error{display:block;color:#b00020;margin:.5rem 0}table{border-collapse:collapse;min-width:30rem}\
    td,th{text-align:left;padding:.4rem .8rem;border-bottom:1px solid #ddd}tbody tr{cursor:pointer}\
    tbody tr:hover{background:#eef}.mat-mdc-paginator{display:flex;gap:1rem;align-items:center;margin:.8rem 0}\
    .worksheet-line-new{display:flex;gap:.6rem;align-items:center;margin:1rem 0}.product-name input{width:24rem}\
    worksheet-line-list{display:block}worksheet-line-row{display:flex;gap:1rem;padding:.3rem 0;\
    border-bottom:1px solid #ddd}.product-number{min-width:6rem}.product-name{min-width:24rem}";

/// The top bar of every page behind the login, with the menu link the original script clicks.
const TOOLBAR: &str = "<nav class=\"mat-toolbar\"><strong>AD Manager</strong>\
    <a routerlink=\"/\" href=\"/\">Forside</a>\
    <a routerlink=\"/worksheet\" href=\"/worksheet\" class=\"mat-mdc-list-item\">Arbejdskort</a></nav>";

fn ad_page(title: &str, body: &str, script: &str) -> Html<String> {
    Html(page(title, STYLE, body, script))
}

fn login_form(error: Option<&str>) -> Html<String> {
    let error = error
        .map(|text| {
            format!(
                "<mat-error class=\"mat-mdc-form-field-error\">{}</mat-error>",
                escape(text)
            )
        })
        .unwrap_or_default();
    ad_page(
        "AD Manager – Log ind",
        &format!(
            "<main><h1>Log ind</h1><form method=\"post\" action=\"/login\">\
             <mat-form-field class=\"mat-mdc-form-field\"><label for=\"mat-input-0\">E-mail</label>\
             <input matinput formcontrolname=\"email\" id=\"mat-input-0\" name=\"email\" type=\"text\" \
             class=\"mat-mdc-input-element\" autocomplete=\"username\"></mat-form-field>\
             <mat-form-field class=\"mat-mdc-form-field\"><label for=\"mat-input-1\">Adgangskode</label>\
             <input matinput formcontrolname=\"password\" id=\"mat-input-1\" name=\"password\" type=\"password\" \
             class=\"mat-mdc-input-element\" autocomplete=\"current-password\"></mat-form-field>\
             {error}<button type=\"submit\" class=\"mdc-button mdc-button--unelevated mat-mdc-unelevated-button\">\
             <span class=\"mdc-button__label\">Log ind</span></button></form></main>"
        ),
        "",
    )
}

#[tracing::instrument(skip_all)]
async fn login_page() -> Html<String> {
    login_form(None)
}

#[tracing::instrument(skip_all)]
async fn login(State(sim): State<ErpSim>, Form(credentials): Form<Credentials>) -> Response {
    log_in(&sim, &credentials, || {
        login_form(Some("Forkert e-mail eller adgangskode"))
    })
}

#[tracing::instrument(skip_all)]
async fn home() -> Html<String> {
    ad_page(
        "AD Manager",
        &format!("{TOOLBAR}<main><h1>Velkommen</h1><p>Vælg Arbejdskort i menuen.</p></main>"),
        "",
    )
}

#[derive(Deserialize)]
struct Paging {
    page: Option<usize>,
}

/// The cases, [`PAGE_SIZE`] a page; a click anywhere on a row opens its worksheet.
#[tracing::instrument(skip_all)]
async fn overview(State(sim): State<ErpSim>, Query(paging): Query<Paging>) -> Html<String> {
    let cases = sim.cases();
    let pages = cases.len().div_ceil(PAGE_SIZE).max(1);
    let page = paging.page.unwrap_or(1).clamp(1, pages);
    let first = (page - 1) * PAGE_SIZE;
    let shown = &cases[first.min(cases.len())..(first + PAGE_SIZE).min(cases.len())];
    let rows: String = shown
        .iter()
        .enumerate()
        .map(|(n, case)| {
            format!(
                "<tr class=\"mat-mdc-row\" data-href=\"/worksheet/{case}\"><td class=\"mat-mdc-cell\">{case}</td>\
                 <td class=\"mat-mdc-cell\">Kunde {}</td><td class=\"mat-mdc-cell\">Åben</td></tr>",
                first + n + 1,
                case = escape(case),
            )
        })
        .collect();
    let link = |to: usize, class: &str, label: &str| {
        format!(
            "<a class=\"{class}\" aria-label=\"{label}\" href=\"/worksheet?page={to}\">{label}</a>"
        )
    };
    let previous = if page > 1 {
        link(
            page - 1,
            "mat-mdc-paginator-navigation-previous",
            "Forrige side",
        )
    } else {
        String::new()
    };
    let next = if page < pages {
        link(page + 1, "mat-mdc-paginator-navigation-next", "Næste side")
    } else {
        String::new()
    };
    ad_page(
        "AD Manager – Arbejdskort",
        &format!(
            "{TOOLBAR}<main><h1>Arbejdskort</h1><table class=\"mat-mdc-table\"><thead><tr><th>Nr.</th>\
             <th>Kunde</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>\
             <div class=\"mat-mdc-paginator\"><span class=\"mat-mdc-paginator-range-label\">{} – {} af {}</span>\
             {previous}{next}</div></main>",
            if shown.is_empty() { 0 } else { first + 1 },
            first + shown.len(),
            cases.len(),
        ),
        "document.querySelectorAll('tr[data-href]').forEach(row =>\
         row.addEventListener('click', () => { location.href = row.dataset.href; }));",
    )
}

/// The item number autocompletes the name when it changes (TAB away), from the catalogue; a click in the name
/// puts the caret after the filled-in name, so what is typed is appended to it.
const WORKSHEET_SCRIPT: &str = "const form = document.querySelector('form.worksheet-line-new');\
const itemInput = form.querySelector('[name=item]'), nameInput = form.querySelector('[name=name]');\
const unknown = form.querySelector('.autocomplete-error');\
itemInput.addEventListener('change', async () => {\
  const wanted = itemInput.value.trim();\
  if (!wanted) { nameInput.value = ''; unknown.hidden = true; return; }\
  const answer = await fetch('/api/products/' + encodeURIComponent(wanted));\
  if (answer.status === 401) { location.href = '/login'; return; }\
  unknown.hidden = answer.ok;\
  nameInput.value = answer.ok ? (await answer.json()).name : '';\
});\
nameInput.addEventListener('click', () => {\
  nameInput.setSelectionRange(nameInput.value.length, nameInput.value.length); });";

fn worksheet_page(sim: &ErpSim, case: &str, error: Option<&str>) -> Response {
    if !sim.has_case(case) {
        let body = format!(
            "{TOOLBAR}<main><mat-error>{}</mat-error></main>",
            escape(&Refused::NoCase(case.to_owned()).to_string())
        );
        return (StatusCode::NOT_FOUND, ad_page("AD Manager", &body, "")).into_response();
    }
    let catalogue = sim.catalogue();
    let rows: String = sim
        .lines(case)
        .iter()
        .map(|line| {
            let unit = catalogue
                .iter()
                .find(|p| p.item == line.item)
                .map(|p| p.unit.as_str())
                .unwrap_or("");
            format!(
                "<worksheet-line-row><span class=\"product-number\">{}</span>\
                 <span class=\"product-name\">{}</span><span class=\"product-amount-line\">\
                 <span class=\"product-amount-amount\">{}</span> <span class=\"product-amount-unit\">{}</span>\
                 </span></worksheet-line-row>",
                escape(&line.item),
                escape(&line.name),
                escape(&line.amount),
                escape(unit),
            )
        })
        .collect();
    let error = error
        .map(|text| {
            format!(
                "<div class=\"mat-mdc-snack-bar-label\" role=\"alert\">{}</div>",
                escape(text)
            )
        })
        .unwrap_or_default();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = format!(
        "{TOOLBAR}<main><h1>Arbejdskort {case}</h1>\
         <form method=\"post\" action=\"/worksheet/{case}\" class=\"worksheet-line-new\" autocomplete=\"off\">\
         <div class=\"product-number\"><input name=\"item\" aria-label=\"Varenummer\" placeholder=\"Varenummer\"></div>\
         <div class=\"product-name\"><input name=\"name\" aria-label=\"Varenavn\" placeholder=\"Varenavn\"></div>\
         <div class=\"product-amount\"><input name=\"amount\" aria-label=\"Antal\" placeholder=\"Antal\"></div>\
         <button type=\"submit\" class=\"mdc-button\"><span class=\"mdc-button__label\">Tilføj</span></button>\
         <mat-error class=\"autocomplete-error\" hidden>Varenummeret findes ikke</mat-error></form>\
         {error}<worksheet-line-list>{rows}</worksheet-line-list></main>",
        case = escape(case),
    );
    (
        status,
        ad_page(&format!("Arbejdskort {case}"), &body, WORKSHEET_SCRIPT),
    )
        .into_response()
}

#[tracing::instrument(skip_all)]
async fn worksheet(State(sim): State<ErpSim>, Path(case): Path<String>) -> Response {
    worksheet_page(&sim, &case, None)
}

#[derive(Deserialize)]
struct NewLine {
    #[serde(default)]
    item: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    amount: String,
}

/// The entry row's submit (ENTER): back to the worksheet, which lists the line, or the worksheet with the error.
#[tracing::instrument(skip_all)]
async fn add_line(
    State(sim): State<ErpSim>,
    Path(case): Path<String>,
    Form(new): Form<NewLine>,
) -> Response {
    let line = Line::new(new.item.trim(), &new.name, new.amount.trim());
    match sim.add_line(&case, line) {
        Ok(()) => Redirect::to(&format!("/worksheet/{case}")).into_response(),
        Err(refused) => worksheet_page(&sim, &case, Some(&refused.to_string())),
    }
}

/// The autocompletion's lookup.
#[tracing::instrument(skip_all)]
async fn product(State(sim): State<ErpSim>, Path(item): Path<String>) -> Response {
    match sim.product(&item) {
        Some(product) => Json(product).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": Refused::UnknownItem(item).to_string()})),
        )
            .into_response(),
    }
}
