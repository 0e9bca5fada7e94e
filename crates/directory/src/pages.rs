//! Admin pages for the directory: units with region and department, regions, departments, report types,
//! roles, chats, routes, service tokens and the import upload. Lists are searchable and paged for chains of
//! thousands of units.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::Text;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};

use tillwire_platform::tokens::{TokenName, TokenRow, Tokens};

use crate::access;
use crate::manage::{
    AdminChat, AdminReportType, AdminRole, AdminRoute, AdminUnit, Group, Manage, PAGE_ROWS, Search,
    UnitInfo,
};
use crate::{ChatType, Directory, DirectoryError};

type Page = Result<Response, DirectoryError>;
type Done = Result<Redirect, DirectoryError>;

pub fn router() -> Router<Directory> {
    Router::new()
        .route(
            "/admin/directory/",
            get(|| async { Redirect::to("/admin/directory/units/") }),
        )
        .route("/admin/directory/units/", get(units_page))
        .route("/admin/directory/units/{id}", post(save_unit))
        .route(
            "/admin/directory/regions/",
            get(regions_page).post(create_region),
        )
        .route("/admin/directory/regions/{id}", post(rename_region))
        .route("/admin/directory/regions/{id}/delete", post(delete_region))
        .route(
            "/admin/directory/departments/",
            get(departments_page).post(save_department),
        )
        .route(
            "/admin/directory/departments/{id}/delete",
            post(delete_department),
        )
        .route("/admin/directory/report-types/", get(report_types_page))
        .route("/admin/directory/report-types/{id}", post(save_report_type))
        .route("/admin/directory/roles/", get(roles_page).post(create_role))
        .route("/admin/directory/roles/{id}", post(save_role))
        .route("/admin/directory/roles/{id}/code", post(new_code))
        .route("/admin/directory/roles/{id}/delete", post(delete_role))
        .route("/admin/directory/chats/", get(chats_page))
        .route("/admin/directory/chats/{chat_id}/role", post(set_chat_role))
        .route(
            "/admin/directory/chats/{chat_id}/reactivate",
            post(reactivate_chat),
        )
        .route("/admin/directory/routes/", get(routes_page).post(add_route))
        .route("/admin/directory/routes/{id}/delete", post(delete_route))
        .route(
            "/admin/directory/tokens/",
            get(tokens_page).post(issue_token),
        )
        .route("/admin/directory/tokens/{id}/revoke", post(revoke_token))
        .route(
            "/admin/directory/import",
            get(import_page).post(import_upload),
        )
}

/// What one directory page shows.
enum View {
    Units(
        Vec<AdminUnit>,
        Vec<(i64, String)>,
        Vec<(i64, String, Option<String>)>,
    ),
    Regions(Vec<(i64, String)>),
    Departments(Vec<(i64, String, Option<String>)>),
    ReportTypes(Vec<AdminReportType>),
    Roles(Vec<AdminRole>),
    Chats(Vec<AdminChat>, Vec<AdminRole>),
    Routes(Vec<AdminRoute>),
    Tokens(Vec<TokenRow>),
    Import(Option<String>),
}

#[derive(Template)]
#[template(path = "directory_admin.html")]
struct DirectoryPage {
    page: PageContext,
    section: &'static str,
    tab: &'static str,
    q: String,
    page_no: i64,
    /// A secret just generated (an access code or a token): shown in this response only.
    shown_once: Option<String>,
    view: View,
}

impl DirectoryPage {
    fn has_next(&self) -> bool {
        let rows = match &self.view {
            View::Units(rows, ..) => rows.len(),
            View::Chats(rows, _) => rows.len(),
            View::Routes(rows) => rows.len(),
            _ => 0,
        };
        rows as i64 == PAGE_ROWS
    }
    fn text(&self, value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
    fn id_text(&self, value: &Option<i64>) -> String {
        value.map(|v| v.to_string()).unwrap_or_default()
    }
    fn same(&self, stored: &Option<i64>, id: &i64) -> bool {
        *stored == Some(*id)
    }
    fn chat_type(&self, stored: &str) -> &'static str {
        match ChatType::parse(stored) {
            Some(ChatType::Private) => self.page.lang.pick("Личный", "Private"),
            Some(ChatType::Group) => self.page.lang.pick("Групповой", "Group"),
            None => "?",
        }
    }
}

const TABS: [(&str, &str, &str); 9] = [
    ("units", "Подразделения", "Units"),
    ("regions", "Регионы", "Regions"),
    ("departments", "Департаменты", "Departments"),
    ("report-types", "Типы отчётов", "Report types"),
    ("roles", "Роли", "Roles"),
    ("chats", "Чаты", "Chats"),
    ("routes", "Маршруты", "Routes"),
    ("tokens", "Токены сервисов", "Service tokens"),
    ("import", "Импорт", "Import"),
];

impl DirectoryPage {
    fn tabs(&self) -> Vec<(&'static str, &'static str)> {
        TABS.iter()
            .map(|(tab, ru, en)| (*tab, self.page.lang.pick(*ru, *en)))
            .collect()
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<i64>,
}

fn show(
    admin: &Admin,
    tab: &'static str,
    query: ListQuery,
    shown_once: Option<String>,
    view: View,
) -> Page {
    let (_, ru, en) = TABS
        .iter()
        .find(|(t, ..)| *t == tab)
        .copied()
        .unwrap_or(TABS[0]);
    let secret = shown_once.is_some();
    let page = render(&DirectoryPage {
        page: admin.page(ru, en),
        section: "/admin/directory/",
        tab,
        q: query.q,
        page_no: query.page.unwrap_or(1).max(1),
        shown_once,
        view,
    });
    Ok(tillwire_platform::web::shown_once(page, secret))
}

fn actor(admin: &Admin) -> String {
    format!("admin:{}", admin.username())
}

/// A whole number from the form's `field`.
fn int(text: &str, field: &'static str) -> Result<i64, DirectoryError> {
    text.trim().parse().map_err(|_| {
        DirectoryError::invalid(
            field,
            Text::new("Введите целое число.", "Enter a whole number."),
        )
    })
}

fn optional_int(text: &str, field: &'static str) -> Result<Option<i64>, DirectoryError> {
    match text.trim() {
        "" => Ok(None),
        other => int(other, field).map(Some),
    }
}

fn optional_text(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A name of 1–64 characters from the form's `field`, as the original's columns.
fn name(text: &str, field: &'static str) -> Result<String, DirectoryError> {
    let text = text.trim();
    match text.chars().count() {
        1..=64 => Ok(text.to_owned()),
        _ => Err(DirectoryError::invalid(
            field,
            Text::new("От 1 до 64 символов.", "1–64 characters."),
        )),
    }
}

/// `1, 2 3` → `[1, 2, 3]`.
fn id_list(text: &str, field: &'static str) -> Result<Vec<i64>, DirectoryError> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            let message = Text::new(
                "Целые числа через запятую или пробел.",
                "Whole numbers separated by commas or spaces.",
            );
            DirectoryError::invalid(field, message)
        })
}

async fn units_page(
    State(d): State<Directory>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Page {
    let manage = Manage(&d.platform.store);
    let units = manage
        .units(&Search::new(&query.q, query.page.unwrap_or(1)))
        .await?;
    let view = View::Units(units, manage.regions().await?, manage.departments().await?);
    show(&admin, "units", query, None, view)
}

#[derive(Deserialize)]
struct UnitForm {
    uuid: String,
    region_id: String,
    department_id: String,
    #[serde(default)]
    office_manager_account_name: String,
    #[serde(default)]
    dodo_is_api_account_name: String,
    #[serde(default)]
    shift_manager_account_name: String,
}

async fn save_unit(
    State(d): State<Directory>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<UnitForm>,
) -> Done {
    let info = UnitInfo {
        uuid: optional_text(&form.uuid).ok_or_else(|| {
            DirectoryError::invalid("uuid", Text::new("Обязательное поле.", "Required."))
        })?,
        region_id: int(&form.region_id, "region_id")?,
        department_id: int(&form.department_id, "department_id")?,
        office_manager_account_name: optional_text(&form.office_manager_account_name),
        dodo_is_api_account_name: optional_text(&form.dodo_is_api_account_name),
        shift_manager_account_name: optional_text(&form.shift_manager_account_name),
    };
    Manage(&d.platform.store)
        .set_unit_info(id, &info, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/units/"))
}

async fn regions_page(State(d): State<Directory>, admin: Admin) -> Page {
    let regions = Manage(&d.platform.store).regions().await?;
    show(
        &admin,
        "regions",
        ListQuery::default(),
        None,
        View::Regions(regions),
    )
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

async fn create_region(
    State(d): State<Directory>,
    admin: Admin,
    Form(form): Form<NameForm>,
) -> Done {
    Manage(&d.platform.store)
        .save_region(None, &name(&form.name, "name")?, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/regions/"))
}

async fn rename_region(
    State(d): State<Directory>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<NameForm>,
) -> Done {
    Manage(&d.platform.store)
        .save_region(Some(id), &name(&form.name, "name")?, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/regions/"))
}

async fn delete_region(State(d): State<Directory>, admin: Admin, Path(id): Path<i64>) -> Done {
    Manage(&d.platform.store)
        .delete_group(Group::Region, id, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/regions/"))
}

async fn departments_page(State(d): State<Directory>, admin: Admin) -> Page {
    let departments = Manage(&d.platform.store).departments().await?;
    show(
        &admin,
        "departments",
        ListQuery::default(),
        None,
        View::Departments(departments),
    )
}

#[derive(Deserialize)]
struct DepartmentForm {
    id: String,
    name: String,
    #[serde(default)]
    uuid: String,
}

async fn save_department(
    State(d): State<Directory>,
    admin: Admin,
    Form(form): Form<DepartmentForm>,
) -> Done {
    let uuid = optional_text(&form.uuid);
    Manage(&d.platform.store)
        .save_department(
            int(&form.id, "id")?,
            &name(&form.name, "name")?,
            uuid.as_deref(),
            &actor(&admin),
        )
        .await?;
    Ok(Redirect::to("/admin/directory/departments/"))
}

async fn delete_department(State(d): State<Directory>, admin: Admin, Path(id): Path<i64>) -> Done {
    Manage(&d.platform.store)
        .delete_group(Group::Department, id, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/departments/"))
}

async fn report_types_page(State(d): State<Directory>, admin: Admin) -> Page {
    let types = Manage(&d.platform.store).report_types().await?;
    show(
        &admin,
        "report-types",
        ListQuery::default(),
        None,
        View::ReportTypes(types),
    )
}

#[derive(Deserialize)]
struct ReportTypeForm {
    verbose_name: String,
    #[serde(default)]
    parent_id: String,
    priority: String,
    /// A checkbox: present when ticked.
    active: Option<String>,
}

async fn save_report_type(
    State(d): State<Directory>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<ReportTypeForm>,
) -> Done {
    let report_type = AdminReportType {
        id,
        name: String::new(),
        verbose_name: name(&form.verbose_name, "verbose_name")?,
        parent_id: optional_int(&form.parent_id, "parent_id")?,
        priority: int(&form.priority, "priority")?,
        is_active: form.active.is_some(),
    };
    Manage(&d.platform.store)
        .update_report_type(&report_type, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/report-types/"))
}

async fn roles_view(d: &Directory, admin: &Admin, shown_once: Option<String>) -> Page {
    let roles = Manage(&d.platform.store).roles().await?;
    show(
        admin,
        "roles",
        ListQuery::default(),
        shown_once,
        View::Roles(roles),
    )
}

async fn roles_page(State(d): State<Directory>, admin: Admin) -> Page {
    roles_view(&d, &admin, None).await
}

/// The generated code is shown in the response to this POST only; it is stored hashed.
async fn create_role(State(d): State<Directory>, admin: Admin, Form(form): Form<NameForm>) -> Page {
    let code = Manage(&d.platform.store)
        .create_role(&name(&form.name, "name")?, &actor(&admin))
        .await?;
    roles_view(&d, &admin, Some(code.expose().to_owned())).await
}

async fn new_code(State(d): State<Directory>, admin: Admin, Path(id): Path<i64>) -> Page {
    let code = Manage(&d.platform.store)
        .new_code(id, &actor(&admin))
        .await?;
    roles_view(&d, &admin, Some(code.expose().to_owned())).await
}

#[derive(Deserialize)]
struct RoleForm {
    name: String,
    #[serde(default)]
    unit_ids: String,
    #[serde(default)]
    report_type_ids: String,
}

async fn save_role(
    State(d): State<Directory>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<RoleForm>,
) -> Done {
    let units = id_list(&form.unit_ids, "unit_ids")?;
    let types = id_list(&form.report_type_ids, "report_type_ids")?;
    Manage(&d.platform.store)
        .set_role(
            id,
            &name(&form.name, "name")?,
            &units,
            &types,
            &actor(&admin),
        )
        .await?;
    Ok(Redirect::to("/admin/directory/roles/"))
}

async fn delete_role(State(d): State<Directory>, admin: Admin, Path(id): Path<i64>) -> Done {
    Manage(&d.platform.store)
        .delete_role(id, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/roles/"))
}

async fn chats_page(
    State(d): State<Directory>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Page {
    let manage = Manage(&d.platform.store);
    let chats = manage
        .chats(&Search::new(&query.q, query.page.unwrap_or(1)))
        .await?;
    let view = View::Chats(chats, manage.roles().await?);
    show(&admin, "chats", query, None, view)
}

#[derive(Deserialize)]
struct ChatRoleForm {
    #[serde(default)]
    role_id: String,
}

async fn set_chat_role(
    State(d): State<Directory>,
    admin: Admin,
    Path(chat_id): Path<i64>,
    Form(form): Form<ChatRoleForm>,
) -> Done {
    let role = optional_int(&form.role_id, "role_id")?;
    Manage(&d.platform.store)
        .set_chat_role(chat_id, role, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/chats/"))
}

/// Takes a chat Telegram had refused back into the fan-out (the bot was unblocked or added again).
async fn reactivate_chat(
    State(d): State<Directory>,
    admin: Admin,
    Path(chat_id): Path<i64>,
) -> Done {
    crate::routing::Routing(d.platform.store.clone())
        .reactivate(chat_id, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/chats/"))
}

async fn routes_page(
    State(d): State<Directory>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Page {
    let routes = Manage(&d.platform.store)
        .routes(&Search::new(&query.q, query.page.unwrap_or(1)))
        .await?;
    show(&admin, "routes", query, None, View::Routes(routes))
}

#[derive(Deserialize)]
struct RouteForm {
    chat_id: String,
    unit_id: String,
    report_type_id: String,
}

async fn add_route(State(d): State<Directory>, admin: Admin, Form(form): Form<RouteForm>) -> Done {
    Manage(&d.platform.store)
        .add_route(
            int(&form.chat_id, "chat_id")?,
            int(&form.unit_id, "unit_id")?,
            int(&form.report_type_id, "report_type_id")?,
            &actor(&admin),
        )
        .await?;
    Ok(Redirect::to("/admin/directory/routes/"))
}

async fn delete_route(State(d): State<Directory>, admin: Admin, Path(id): Path<i64>) -> Done {
    Manage(&d.platform.store)
        .delete_route(id, &actor(&admin))
        .await?;
    Ok(Redirect::to("/admin/directory/routes/"))
}

async fn tokens_view(d: &Directory, admin: &Admin, shown_once: Option<String>) -> Page {
    let tokens = Tokens(&d.platform.store).list(Some(&access::SCOPE)).await?;
    show(
        admin,
        "tokens",
        ListQuery::default(),
        shown_once,
        View::Tokens(tokens),
    )
}

async fn tokens_page(State(d): State<Directory>, admin: Admin) -> Page {
    tokens_view(&d, &admin, None).await
}

/// Shows the new token in the response to this POST only; it is never retrievable again.
async fn issue_token(State(d): State<Directory>, admin: Admin, Form(form): Form<NameForm>) -> Page {
    let name = TokenName::parse(&form.name)?;
    let issued = Tokens(&d.platform.store)
        .issue(&name, &access::SCOPE, None, &actor(&admin))
        .await?;
    tracing::info!(
        token = issued.id,
        by = admin.username(),
        "directory token issued"
    );
    tokens_view(&d, &admin, Some(issued.plain)).await
}

async fn revoke_token(State(d): State<Directory>, admin: Admin, Path(id): Path<i64>) -> Done {
    Tokens(&d.platform.store)
        .revoke_of(&access::SCOPE, id, &actor(&admin))
        .await?;
    tracing::info!(token = id, by = admin.username(), "directory token revoked");
    Ok(Redirect::to("/admin/directory/tokens/"))
}

async fn import_page(admin: Admin) -> Page {
    show(
        &admin,
        "import",
        ListQuery::default(),
        None,
        View::Import(None),
    )
}

/// The uploaded file (field `file`) goes through the same import as the command line.
async fn import_upload(State(d): State<Directory>, admin: Admin, mut multipart: Multipart) -> Page {
    let unreadable = |error: axum::extract::multipart::MultipartError| {
        let words = error.body_text();
        DirectoryError::invalid(
            "file",
            Text::new(
                format!("Файл не удалось прочитать: {words}"),
                format!("The file could not be read: {words}"),
            ),
        )
    };
    let mut text = None;
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        if field.name() == Some("file") {
            text = Some(field.text().await.map_err(unreadable)?);
        }
    }
    let text = text.ok_or_else(|| {
        DirectoryError::invalid("file", Text::new("Выберите файл.", "Choose a file."))
    })?;
    let report = crate::import::import(&d.platform.store, &text, &actor(&admin)).await?;
    show(
        &admin,
        "import",
        ListQuery::default(),
        None,
        View::Import(Some(report.to_string())),
    )
}
