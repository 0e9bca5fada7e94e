//! CAC Au2Office (spec §3.2): the login at `/Account/Login` (`#inputEmail`, `#inputPassword`, the first `.btn`),
//! the portal's link `Åben kundestyring` (same tab), customer management listing its cases as
//! `<span class="font-bold">#<case> </span>` once a script has fetched them (so a connector has to wait), and the
//! worksheet: an ag-grid-like grid whose cells carry `col-id`, a header row whose productnumber cell is named
//! `Varenummer`, the lines, and a last empty row with `child-cell > input`.
//!
//! As in the original, an item number typed in the empty row and TAB stores a new line (amount 1) but the grid
//! is not redrawn: the line takes its place as the last non-empty row on a reload. A double-click on a cell's
//! `div > div` edits it with the caret after its text; TAB commits the cell and edits the next one with its
//! text selected (name → unit → group → amount), so a typed amount replaces the 1.

use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{Credentials, ErpSim, Field, Line, Refused, escape, log_in, page};

pub(super) fn routes() -> Router<ErpSim> {
    Router::new()
        .route("/Account/Login", get(login_page).post(login))
        .route("/", get(portal))
        .route("/kundestyring", get(customer_management))
        .route("/kundestyring/api/worksheets", get(worksheets))
        .route("/kundestyring/worksheet/{case}", get(worksheet))
        .route("/kundestyring/api/worksheet/{case}/lines", post(add_line))
        .route(
            "/kundestyring/api/worksheet/{case}/lines/{index}",
            post(edit_line),
        )
}

const STYLE: &str = "body{font-family:'Segoe UI',Arial,sans-serif;margin:0;color:#222}\
    .navbar{background:#1d3557;color:#fff;padding:.8rem 1.2rem}main{padding:1rem 2rem}\
    .form-signin{max-width:22rem}.form-control{display:block;width:100%;margin:.5rem 0;padding:.5rem;font:inherit}\
    .btn{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid #1d3557;cursor:pointer}\
    .btn-primary{background:#1d3557;color:#fff}.btn-link{background:none;border:0;color:#1d3557}\
    .text-danger{color:#b00020;margin:.5rem 0}.worksheet-card{padding:.5rem 0;border-bottom:1px solid #ddd}\
    .font-bold{font-weight:700;cursor:pointer}.ag-root{display:table;border:1px solid #bbb;font-size:.9rem}\
    .ag-header-row,.ag-row{display:table-row}.ag-header-row{background:#f1f3f5;font-weight:600}\
    .ag-header-cell,.ag-cell{display:table-cell;padding:.3rem .6rem;border-bottom:1px solid #ddd;min-width:5rem}\
    .ag-cell:focus{outline:2px solid #457b9d}.ag-cell-edit-input{font:inherit;width:100%}\
    .toast{position:fixed;bottom:1rem;right:1rem;background:#b00020;color:#fff;padding:.6rem 1rem}";

/// The grid's columns: `col-id`, header.
const COLUMNS: [(&str, &str); 6] = [
    ("productnumber", "Varenummer"),
    ("productname", "Varenavn"),
    ("productUnit", "Enhed"),
    ("productGroup", "Varegruppe"),
    ("numberOfItems", "Antal"),
    ("salesprice", "Salgspris"),
];

/// The columns a double-click or TAB edits, in TAB order.
const EDITABLE: [&str; 4] = [
    "productname",
    "productUnit",
    "productGroup",
    "numberOfItems",
];

fn au_page(title: &str, body: &str, script: &str) -> Html<String> {
    Html(page(
        title,
        STYLE,
        &format!("<div class=\"navbar\">CAC Au2Office</div><main>{body}</main>"),
        script,
    ))
}

fn login_form(error: Option<&str>) -> Html<String> {
    let error = error
        .map(|text| {
            format!(
                "<div class=\"validation-summary-errors text-danger\">{}</div>",
                escape(text)
            )
        })
        .unwrap_or_default();
    au_page(
        "Log ind – CAC",
        &format!(
            "<form method=\"post\" action=\"/Account/Login\" class=\"form-signin\"><h1>Log ind</h1>{error}\
             <input type=\"email\" id=\"inputEmail\" name=\"Email\" class=\"form-control\" placeholder=\"E-mail\" \
             autocomplete=\"username\">\
             <input type=\"password\" id=\"inputPassword\" name=\"Password\" class=\"form-control\" \
             placeholder=\"Adgangskode\" autocomplete=\"current-password\">\
             <button class=\"btn btn-lg btn-primary\" type=\"submit\">Log ind</button>\
             <a class=\"btn btn-link\" href=\"/Account/Login\">Glemt adgangskode?</a></form>"
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
        login_form(Some("Ugyldigt loginforsøg."))
    })
}

/// The portal after login; customer management opens in the same tab.
#[tracing::instrument(skip_all)]
async fn portal() -> Html<String> {
    au_page(
        "CAC Portal",
        "<h1>Velkommen</h1><p><a href=\"/kundestyring\" class=\"portal-link\">Åben kundestyring</a></p>",
        "",
    )
}

/// Redirects to the login when a script's call finds the session gone.
const ON_401: &str = "if (answer.status === 401) { location.href = '/Account/Login'; return; }";

#[tracing::instrument(skip_all)]
async fn customer_management() -> Html<String> {
    let script = format!(
        "(async () => {{\
           const answer = await fetch('/kundestyring/api/worksheets');\
           {ON_401}\
           const list = document.querySelector('sb-worksheet-list');\
           list.replaceChildren(...(await answer.json()).map(worksheet => {{\
             const card = document.createElement('div');\
             card.className = 'worksheet-card';\
             const number = document.createElement('span');\
             number.className = 'font-bold';\
             number.textContent = '#' + worksheet.case + ' ';\
             number.addEventListener('click', () => {{\
               location.href = '/kundestyring/worksheet/' + encodeURIComponent(worksheet.case); }});\
             const customer = document.createElement('span');\
             customer.textContent = worksheet.customer;\
             card.append(number, customer);\
             return card;\
           }}));\
         }})();"
    );
    au_page(
        "Kundestyring",
        "<h1>Arbejdskort</h1><sb-worksheet-list><p>Henter arbejdskort …</p></sb-worksheet-list>",
        &script,
    )
}

#[tracing::instrument(skip_all)]
async fn worksheets(State(sim): State<ErpSim>) -> Json<serde_json::Value> {
    let cases: Vec<_> = sim
        .cases()
        .into_iter()
        .enumerate()
        .map(|(n, case)| json!({"case": case, "customer": format!("Kunde {}", n + 1)}))
        .collect();
    Json(json!(cases))
}

/// The grid's behaviour: the new line on TAB, editing on double-click, TAB from cell to cell.
const GRID_SCRIPT: &str = "const grid = document.querySelector('.ag-root');\
const api = grid.dataset.api;\
const toast = document.querySelector('.toast');\
async function send(url, body) {\
  const answer = await fetch(url, {method: 'POST', headers: {'content-type': 'application/json'},\
    body: JSON.stringify(body)});\
  ON_401\
  const reply = await answer.json();\
  if (!answer.ok) { toast.textContent = reply.error; toast.hidden = false; return null; }\
  return reply;\
}\
const fresh = grid.querySelector('.ag-row-new child-cell > input');\
fresh.addEventListener('keydown', async event => {\
  if (event.key !== 'Tab' || !fresh.value.trim()) return;\
  const line = await send(api, {item: fresh.value.trim()});\
  if (line) grid.querySelector('.ag-row-new [col-id=\"productname\"] .ag-cell-value').textContent = line.name;\
});\
function edit(cell, selectAll) {\
  const shown = cell.querySelector('.ag-cell-value');\
  const input = document.createElement('input');\
  input.className = 'ag-cell-edit-input';\
  input.value = shown.textContent;\
  shown.replaceWith(input);\
  input.focus();\
  if (selectAll) input.select(); else input.setSelectionRange(input.value.length, input.value.length);\
  input.addEventListener('keydown', event => {\
    if (!['Tab', 'Enter', 'Escape'].includes(event.key)) return;\
    event.preventDefault();\
    const value = event.key === 'Escape' ? shown.textContent : input.value;\
    const changed = value !== shown.textContent;\
    shown.textContent = value;\
    input.replaceWith(shown);\
    if (changed) send(api + '/' + cell.parentElement.dataset.index, {field: cell.getAttribute('col-id'), value});\
    const next = cell.nextElementSibling;\
    if (event.key === 'Tab' && next && next.classList.contains('ag-cell-editable')) edit(next, true);\
    else cell.focus();\
  });\
}\
grid.addEventListener('dblclick', event => {\
  const cell = event.target.closest('.ag-row[data-index] .ag-cell-editable');\
  if (cell && !cell.querySelector('input')) edit(cell, false);\
});";

fn cell(column: &str, content: &str, editable: bool) -> String {
    format!(
        "<div class=\"ag-cell{}\" role=\"gridcell\" col-id=\"{column}\" tabindex=\"-1\">{content}</div>",
        if editable { " ag-cell-editable" } else { "" }
    )
}

fn value(text: &str) -> String {
    format!(
        "<div class=\"ag-cell-wrapper\"><div class=\"ag-cell-value\">{}</div></div>",
        escape(text)
    )
}

#[tracing::instrument(skip_all)]
async fn worksheet(State(sim): State<ErpSim>, Path(case): Path<String>) -> Response {
    if !sim.has_case(&case) {
        let body = format!(
            "<div class=\"text-danger\">{}</div>",
            escape(&Refused::NoCase(case).to_string())
        );
        return (StatusCode::NOT_FOUND, au_page("Kundestyring", &body, "")).into_response();
    }
    let catalogue = sim.catalogue();
    let header: String = COLUMNS
        .iter()
        .map(|(column, title)| {
            format!(
                "<div class=\"ag-header-cell\" role=\"columnheader\" col-id=\"{column}\">\
                 <span class=\"ag-header-cell-text\">{title}</span></div>"
            )
        })
        .collect();
    let rows: String = sim
        .lines(&case)
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let product = catalogue.iter().find(|p| p.item == line.item);
            let field = |pick: fn(&super::Product) -> &str| product.map(pick).unwrap_or("");
            let values = [
                line.item.as_str(),
                line.name.as_str(),
                field(|p| p.unit.as_str()),
                field(|p| p.group.as_str()),
                line.amount.as_str(),
                field(|p| p.price.as_str()),
            ];
            let cells: String = COLUMNS
                .iter()
                .zip(values)
                .map(|((column, _), text)| cell(column, &value(text), EDITABLE.contains(column)))
                .collect();
            format!("<div class=\"ag-row\" role=\"row\" data-index=\"{index}\">{cells}</div>")
        })
        .collect();
    let fresh: String = COLUMNS
        .iter()
        .map(|(column, _)| match *column {
            "productnumber" => cell(
                column,
                "<child-cell><input autocomplete=\"off\"></child-cell>",
                false,
            ),
            _ => cell(column, &value(""), false),
        })
        .collect();
    let body = format!(
        "<h1>Arbejdskort {case}</h1><sb-worksheet>\
         <div class=\"ag-root\" role=\"grid\" data-api=\"/kundestyring/api/worksheet/{case}/lines\">\
         <div class=\"ag-header-row\" role=\"row\">{header}</div>{rows}\
         <div class=\"ag-row ag-row-new\" role=\"row\">{fresh}</div></div></sb-worksheet>\
         <div class=\"toast\" role=\"alert\" hidden></div>",
        case = escape(&case),
    );
    au_page(
        &format!("Arbejdskort {case}"),
        &body,
        &GRID_SCRIPT.replace("ON_401", ON_401),
    )
    .into_response()
}

/// A refusal as the grid's script shows it.
fn refused(refused: Refused) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": refused.to_string()})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct NewLine {
    item: String,
}

/// The empty row's item number: a line with the catalogue's name and amount 1.
#[tracing::instrument(skip_all)]
async fn add_line(
    State(sim): State<ErpSim>,
    Path(case): Path<String>,
    Json(new): Json<NewLine>,
) -> Response {
    let Some(product) = sim.product(&new.item) else {
        return refused(Refused::UnknownItem(new.item));
    };
    let line = Line::new(&product.item, &product.name, "1");
    match sim.add_line(&case, line.clone()) {
        Ok(()) => Json(line).into_response(),
        Err(refusal) => refused(refusal),
    }
}

#[derive(Deserialize)]
struct Edit {
    field: String,
    value: String,
}

/// A committed cell of line `index`.
#[tracing::instrument(skip_all)]
async fn edit_line(
    State(sim): State<ErpSim>,
    Path((case, index)): Path<(String, usize)>,
    Json(edit): Json<Edit>,
) -> Response {
    let field = match edit.field.as_str() {
        "productname" => Field::Name,
        "numberOfItems" => Field::Amount,
        other => {
            let title = COLUMNS
                .iter()
                .find(|(column, _)| *column == other)
                .map_or(other, |(_, title)| *title);
            return refused(Refused::FixedField(title.to_owned()));
        }
    };
    let value = match field {
        Field::Amount => edit.value.trim(),
        Field::Name => &edit.value,
    };
    match sim.edit_line(&case, index, field, value) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(refusal) => refused(refusal),
    }
}
