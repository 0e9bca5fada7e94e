//! `/admin/iiko/`: the iikoCloud connections and iikoServers at a glance, each with its form (secrets are
//! write-only: never shown, an empty field keeps them); a connection's page with its terminal groups and the
//! orders applied last; the product mapping per organization; and the inbox, where a failed event is retried.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::{Admin, human_duration, local_time};
use tillwire_platform::web::{Asset, Lang, NavLink, PageContext, render};
use tillwire_platform::{HttpError, Text, now_ms};
use tillwire_units::{UnitId, Units};

use crate::Iiko;
use crate::config::Credentials;
use crate::connections::{
    Connection, ConnectionId, ConnectionInput, Problems, chosen_unit, organization_id, present,
};
use crate::model::IikoId;
use crate::servers::{Server, ServerInput};
use crate::views::{self, InboxFilter, InboxState};

pub const ADMIN_NAV: &[NavLink] = &[NavLink::to("/admin/iiko/", "iiko", "iiko")];
pub const ASSETS: &[Asset] = &[Asset {
    name: "iiko.css",
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../assets/iiko.css"),
}];
const SECTION: &str = "/admin/iiko/";
const ORDERS_SHOWN: i64 = 50;

pub fn router(iiko: Iiko) -> Router {
    Router::new()
        .route("/admin/iiko/", get(overview))
        .route("/admin/iiko/cloud/", post(create_connection))
        .route(
            "/admin/iiko/cloud/{id}/",
            get(connection_page).post(update_connection),
        )
        .route("/admin/iiko/cloud/{id}/delete", post(delete_connection))
        .route("/admin/iiko/cloud/{id}/groups", post(set_group_unit))
        .route("/admin/iiko/servers/", post(create_server))
        .route(
            "/admin/iiko/servers/{id}/",
            get(server_page).post(update_server),
        )
        .route("/admin/iiko/servers/{id}/delete", post(delete_server))
        .route("/admin/iiko/mapping/", get(mapping_page).post(map_product))
        .route("/admin/iiko/inbox/", get(inbox_page))
        .route("/admin/iiko/inbox/{id}/retry", post(retry))
        .with_state(iiko)
}

/// What every line of these pages is told with: the reader's language, the installation's zone and clock, and
/// the units' names.
struct Context<'a> {
    lang: Lang,
    iiko: &'a Iiko,
    now: i64,
    units: Vec<(i64, String)>,
}

impl<'a> Context<'a> {
    async fn new(iiko: &'a Iiko, lang: Lang) -> Result<Context<'a>, HttpError> {
        let units = Units(&iiko.platform.store)
            .list()
            .await?
            .into_iter()
            .map(|unit| (unit.id, unit.name))
            .collect();
        Ok(Context {
            lang,
            iiko,
            now: now_ms(),
            units,
        })
    }

    /// An instant on the installation's clock; empty for none.
    fn when(&self, ms: Option<i64>) -> String {
        ms.map(|ms| local_time(&self.iiko.platform.settings, ms, "%Y-%m-%d %H:%M:%S"))
            .unwrap_or_default()
    }

    /// How long ago, as people say it; empty for never.
    fn ago(&self, ms: Option<i64>) -> String {
        ms.map(|ms| {
            let ago = human_duration(self.now - ms, self.lang);
            self.lang.pick(format!("{ago} назад"), format!("{ago} ago"))
        })
        .unwrap_or_default()
    }

    fn unit_name(&self, unit: Option<i64>) -> String {
        match unit {
            None => self
                .lang
                .pick("основное подразделение", "the default unit")
                .to_owned(),
            Some(id) => self
                .units
                .iter()
                .find(|(unit, _)| *unit == id)
                .map_or_else(|| format!("#{id}"), |(_, name)| name.clone()),
        }
    }
}

/// A connection as the pages show it: never a secret, only which kind of credentials and whether a token is set.
struct CloudView {
    id: ConnectionId,
    name: String,
    organization: String,
    unit: String,
    auth: String,
    has_token: bool,
    active: bool,
    from_config: bool,
    tables: usize,
    last_webhook: String,
    last_webhook_ago: String,
    last_poll: String,
    last_poll_ago: String,
    revision: Option<i64>,
    revision_ago: String,
    last_error: Option<String>,
    last_error_at: String,
}

impl CloudView {
    async fn of(context: &Context<'_>, connection: &Connection) -> Result<Self, HttpError> {
        let state = context.iiko.connections.state(connection.id).await?;
        let lang = context.lang;
        Ok(CloudView {
            id: connection.id,
            name: connection.name.clone(),
            organization: connection.organization.to_string(),
            unit: context.unit_name(connection.unit.map(|u| u.0)),
            auth: match &connection.credentials {
                Credentials::ApiLogin { .. } => lang.pick("API-логин", "API login").to_owned(),
                Credentials::ApiKey { app_id, .. } => {
                    format!("{} · app id {app_id}", lang.pick("ключ API", "API key"))
                }
            },
            has_token: connection.webhook_token.is_some(),
            active: connection.active,
            from_config: connection.from_config,
            tables: connection.tables.len(),
            last_webhook: context.when(state.last_webhook_ms),
            last_webhook_ago: context.ago(state.last_webhook_ms),
            last_poll: context.when(state.last_poll_ms),
            last_poll_ago: context.ago(state.last_poll_ms),
            revision: state.delivery_revision,
            revision_ago: context.ago(state.revision_ms),
            last_error: state.last_error,
            last_error_at: context.when(state.last_error_ms),
        })
    }
}

/// A server as the pages show it: never its password.
struct ServerView {
    id: i64,
    url: String,
    login: String,
    unit: String,
    organization: String,
    zone: String,
    active: bool,
    from_config: bool,
    revision: Option<i64>,
    last_poll: String,
    last_poll_ago: String,
    last_error: Option<String>,
    last_error_at: String,
}

impl ServerView {
    fn of(context: &Context<'_>, server: &Server) -> Self {
        ServerView {
            id: server.id,
            url: server.url.clone(),
            login: server.login.clone(),
            unit: context.unit_name(server.unit.map(|u| u.0)),
            organization: server.organization.to_string(),
            zone: server.zone.map(|z| z.name().to_owned()).unwrap_or_else(|| {
                context
                    .lang
                    .pick("пояс установки", "the installation's zone")
                    .to_owned()
            }),
            active: server.active,
            from_config: server.from_config,
            revision: server.state.revision,
            last_poll: context.when(server.state.last_poll_ms),
            last_poll_ago: context.ago(server.state.last_poll_ms),
            last_error: server.state.last_error.clone(),
            last_error_at: context.when(server.state.last_error_ms),
        }
    }
}

/// The connection form's values: a connection's (its secrets only as "set"), or a new one's defaults.
struct CloudForm {
    name: String,
    api_url: String,
    organization_id: String,
    unit_id: Option<i64>,
    auth: &'static str,
    app_id: String,
    has_login: bool,
    has_key: bool,
    has_token: bool,
    tables: String,
    active: bool,
}

impl CloudForm {
    fn of(connection: &Connection) -> Self {
        let (auth, app_id) = match &connection.credentials {
            Credentials::ApiLogin { .. } => ("api_login", String::new()),
            Credentials::ApiKey { app_id, .. } => ("api_key", app_id.clone()),
        };
        CloudForm {
            name: connection.name.clone(),
            api_url: connection.api_url.clone(),
            organization_id: connection.organization.to_string(),
            unit_id: connection.unit.map(|u| u.0),
            auth,
            app_id,
            has_login: auth == "api_login",
            has_key: auth == "api_key",
            has_token: connection.webhook_token.is_some(),
            tables: connection
                .tables
                .iter()
                .map(IikoId::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
            active: connection.active,
        }
    }

    fn new_one() -> Self {
        CloudForm {
            name: String::new(),
            api_url: crate::cloud::DEFAULT_API_URL.to_owned(),
            organization_id: String::new(),
            unit_id: None,
            auth: "api_login",
            app_id: String::new(),
            has_login: false,
            has_key: false,
            has_token: false,
            tables: String::new(),
            active: true,
        }
    }
}

/// The server form's values: a server's (its password only as "set"), or a new one's defaults.
struct ServerForm {
    url: String,
    login: String,
    has_password: bool,
    unit_id: Option<i64>,
    time_zone: String,
    organization_id: String,
    active: bool,
}

impl ServerForm {
    fn of(server: &Server) -> Self {
        ServerForm {
            url: server.url.clone(),
            login: server.login.clone(),
            has_password: true,
            unit_id: server.unit.map(|u| u.0),
            time_zone: server.zone.map(|z| z.name().to_owned()).unwrap_or_default(),
            organization_id: server.organization.to_string(),
            active: server.active,
        }
    }

    fn new_one() -> Self {
        ServerForm {
            url: String::new(),
            login: String::new(),
            has_password: false,
            unit_id: None,
            time_zone: String::new(),
            organization_id: String::new(),
            active: true,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_iiko.html")]
struct OverviewPage {
    page: PageContext,
    section: &'static str,
    clouds: Vec<CloudView>,
    servers: Vec<ServerView>,
    /// Some connection comes from the settings file (a note says what that means).
    any_from_config: bool,
    cloud_form: CloudForm,
    server_form: ServerForm,
    units: Vec<(i64, String)>,
}

#[tracing::instrument(skip_all)]
async fn overview(State(iiko): State<Iiko>, admin: Admin) -> Result<Response, HttpError> {
    let context = Context::new(&iiko, admin.lang).await?;
    let mut clouds = Vec::new();
    for connection in iiko.connections.list().await? {
        clouds.push(CloudView::of(&context, &connection).await?);
    }
    let servers = iiko
        .servers
        .list()
        .await?
        .iter()
        .map(|server| ServerView::of(&context, server))
        .collect();
    Ok(render(&OverviewPage {
        page: admin.page("iiko: подключения", "iiko: connections"),
        section: SECTION,
        any_from_config: clouds.iter().any(|c| c.from_config),
        clouds,
        servers,
        cloud_form: CloudForm::new_one(),
        server_form: ServerForm::new_one(),
        units: context.units,
    }))
}

/// Webhook tokens are kept for a few seconds from a read: a change here is seen at once.
fn connections_changed(iiko: &Iiko) {
    iiko.webhook_tokens.clear();
}

#[tracing::instrument(skip_all)]
async fn create_connection(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Form(input): Form<ConnectionInput>,
) -> Result<Redirect, HttpError> {
    let id = iiko.connections.create(&input).await?;
    connections_changed(&iiko);
    Ok(Redirect::to(&format!("/admin/iiko/cloud/{id}/")))
}

#[tracing::instrument(skip_all)]
async fn update_connection(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Path(id): Path<i64>,
    Form(input): Form<ConnectionInput>,
) -> Result<Redirect, HttpError> {
    iiko.connections.update(ConnectionId(id), &input).await?;
    connections_changed(&iiko);
    Ok(Redirect::to(&format!("/admin/iiko/cloud/{id}/")))
}

#[tracing::instrument(skip_all)]
async fn delete_connection(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    iiko.connections.delete(ConnectionId(id)).await?;
    connections_changed(&iiko);
    Ok(Redirect::to(SECTION))
}

/// A terminal group with the zone its times are read in.
struct GroupLine {
    id: String,
    name: String,
    time_zone: String,
    /// The IANA zone the Windows id stands for; empty when it is unknown (the installation's zone is used).
    zone: String,
    unit_id: Option<i64>,
}

/// An order applied, as the connection's page lists it.
struct OrderLine {
    key: String,
    number: String,
    kind: &'static str,
    status: String,
    queue_number: Option<i64>,
    unit: String,
    when: String,
}

#[derive(Template)]
#[template(path = "admin_iiko_cloud.html")]
struct ConnectionPage {
    page: PageContext,
    section: &'static str,
    view: CloudView,
    form: CloudForm,
    units: Vec<(i64, String)>,
    groups: Vec<GroupLine>,
    orders: Vec<OrderLine>,
}

#[tracing::instrument(skip_all)]
async fn connection_page(
    State(iiko): State<Iiko>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    let connection = iiko.connections.get(ConnectionId(id)).await?;
    let context = Context::new(&iiko, admin.lang).await?;
    let lang = admin.lang;
    let groups = iiko
        .connections
        .terminal_groups(&connection.organization)
        .await?
        .into_iter()
        .map(|group| GroupLine {
            zone: crate::timezone::zone(&group.time_zone)
                .map(|z| z.name().to_owned())
                .unwrap_or_default(),
            id: group.id,
            name: group.name,
            time_zone: group.time_zone,
            unit_id: group.unit_id,
        })
        .collect();
    let orders = views::orders(&iiko.platform.store, &connection.organization, ORDERS_SHOWN)
        .await?
        .into_iter()
        .map(|order| OrderLine {
            number: order.number.unwrap_or_default(),
            kind: match order.kind.as_str() {
                "table" => lang.pick("в зале", "table"),
                _ => lang.pick("доставка", "delivery"),
            },
            status: order.status,
            queue_number: order.queue_number,
            unit: context.unit_name(order.unit_id),
            when: context.when(Some(order.updated_ms)),
            key: order.order_key,
        })
        .collect();
    Ok(render(&ConnectionPage {
        page: admin.page(&connection.name, &connection.name),
        section: SECTION,
        view: CloudView::of(&context, &connection).await?,
        form: CloudForm::of(&connection),
        units: context.units,
        groups,
        orders,
    }))
}

/// A terminal group's unit as posted.
#[derive(Default, Deserialize)]
#[serde(default)]
struct GroupForm {
    group: String,
    unit_id: String,
}

#[tracing::instrument(skip_all)]
async fn set_group_unit(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<GroupForm>,
) -> Result<Redirect, HttpError> {
    let connection = iiko.connections.get(ConnectionId(id)).await?;
    let group = IikoId::parse(&form.group).ok_or_else(|| {
        HttpError::field(
            "group",
            Text::new("Нет такой группы терминалов.", "No such terminal group."),
        )
    })?;
    let mut problems = Problems::default();
    let unit = chosen_unit(&iiko.platform.store, &form.unit_id, &mut problems).await?;
    problems.into_result()?;
    iiko.connections
        .set_terminal_group_unit(&connection.organization, &group, unit)
        .await?;
    Ok(Redirect::to(&format!("/admin/iiko/cloud/{id}/")))
}

#[derive(Template)]
#[template(path = "admin_iiko_server.html")]
struct ServerPage {
    page: PageContext,
    section: &'static str,
    view: ServerView,
    form: ServerForm,
    units: Vec<(i64, String)>,
}

#[tracing::instrument(skip_all)]
async fn server_page(
    State(iiko): State<Iiko>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    let server = iiko.servers.get(id).await?;
    let context = Context::new(&iiko, admin.lang).await?;
    Ok(render(&ServerPage {
        page: admin.page(&server.url, &server.url),
        section: SECTION,
        view: ServerView::of(&context, &server),
        form: ServerForm::of(&server),
        units: context.units,
    }))
}

#[tracing::instrument(skip_all)]
async fn create_server(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Form(input): Form<ServerInput>,
) -> Result<Redirect, HttpError> {
    let id = iiko.servers.create(&input).await?;
    Ok(Redirect::to(&format!("/admin/iiko/servers/{id}/")))
}

#[tracing::instrument(skip_all)]
async fn update_server(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Path(id): Path<i64>,
    Form(input): Form<ServerInput>,
) -> Result<Redirect, HttpError> {
    iiko.servers.update(id, &input).await?;
    Ok(Redirect::to(&format!("/admin/iiko/servers/{id}/")))
}

#[tracing::instrument(skip_all)]
async fn delete_server(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    iiko.servers.delete(id).await?;
    Ok(Redirect::to(SECTION))
}

/// An organization the pages can be filtered by: its id and how it is named (its connection, else its server).
struct Organization {
    id: String,
    label: String,
    /// The unit whose catalogue its products map to (`None`: the default unit).
    unit: Option<UnitId>,
}

/// Every organization known: the connections', the servers', and any with products seen.
async fn organizations(iiko: &Iiko) -> Result<Vec<Organization>, HttpError> {
    let mut known: Vec<Organization> = Vec::new();
    let mut add = |id: String, label: String, unit: Option<UnitId>| {
        if !known.iter().any(|o| o.id == id) {
            known.push(Organization { id, label, unit });
        }
    };
    for connection in iiko.connections.list().await? {
        add(
            connection.organization.to_string(),
            connection.name,
            connection.unit,
        );
    }
    for server in iiko.servers.list().await? {
        add(server.organization.to_string(), server.url, server.unit);
    }
    for id in views::product_organizations(&iiko.platform.store).await? {
        add(id.clone(), id, None);
    }
    Ok(known)
}

/// The organization asked for in a query (empty: none), named in the error when it is not an id.
fn asked_organization(text: &str, problems: &mut Problems) -> Option<IikoId> {
    let text = present(text)?;
    organization_id(text)
        .map_err(|message| problems.add("organization", message))
        .ok()
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct OrganizationQuery {
    organization: String,
}

/// A product's line on the mapping page.
struct ProductLine {
    product_id: String,
    name: String,
    seen: i64,
    last_seen: String,
    ware_code: String,
    /// The mapped ware's name; empty when the code is not in the unit's catalogue.
    ware_name: String,
    /// It made something the last time it came.
    mapped: bool,
}

#[derive(Template)]
#[template(path = "admin_iiko_mapping.html")]
struct MappingPage {
    page: PageContext,
    section: &'static str,
    organizations: Vec<Organization>,
    organization: String,
    unit: String,
    products: Vec<ProductLine>,
    wares: Vec<(String, String)>,
}

#[tracing::instrument(skip_all)]
async fn mapping_page(
    State(iiko): State<Iiko>,
    admin: Admin,
    Query(query): Query<OrganizationQuery>,
) -> Result<Response, HttpError> {
    let mut problems = Problems::default();
    let asked = asked_organization(&query.organization, &mut problems);
    problems.into_result()?;
    let organizations = organizations(&iiko).await?;
    let context = Context::new(&iiko, admin.lang).await?;
    let chosen = asked
        .map(|id| id.to_string())
        .or_else(|| organizations.first().map(|o| o.id.clone()));
    let unit = match organizations
        .iter()
        .find(|o| Some(&o.id) == chosen.as_ref())
        .and_then(|o| o.unit)
    {
        Some(unit) => Some(unit),
        None => Units(&iiko.platform.store)
            .default_unit()
            .await?
            .map(|u| u.unit_id()),
    };
    let wares = match unit {
        Some(unit) => views::wares(&iiko.platform.store, unit).await?,
        None => Vec::new(),
    };
    let products = match chosen.as_deref().and_then(IikoId::parse) {
        Some(organization) => views::products(&iiko.platform.store, &organization).await?,
        None => Vec::new(),
    }
    .into_iter()
    .map(|product| {
        let ware_code = product.ware_code.unwrap_or_default();
        ProductLine {
            ware_name: wares
                .iter()
                .find(|(code, _)| *code == ware_code)
                .map(|(_, name)| name.clone())
                .unwrap_or_default(),
            last_seen: context.when(Some(product.last_seen_ms).filter(|ms| *ms > 0)),
            product_id: product.product_id,
            name: product.name,
            seen: product.seen,
            mapped: product.mapped,
            ware_code,
        }
    })
    .collect();
    Ok(render(&MappingPage {
        page: admin.page("iiko: сопоставление товаров", "iiko: product mapping"),
        section: SECTION,
        unit: context.unit_name(unit.map(|u| u.0)),
        organization: chosen.unwrap_or_default(),
        organizations,
        products,
        wares,
    }))
}

/// A product's mapping as posted: a ware code, or `clear` to take it away.
#[derive(Default, Deserialize)]
#[serde(default)]
struct MapForm {
    organization: String,
    product: String,
    ware_code: String,
    clear: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn map_product(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Form(form): Form<MapForm>,
) -> Result<Redirect, HttpError> {
    let organization = organization_id(&form.organization)
        .map_err(|message| HttpError::field("organization", message))?;
    let product = IikoId::parse(&form.product).ok_or_else(|| {
        HttpError::field(
            "product",
            Text::new("Id товара iiko — UUID.", "An iiko product id is a UUID."),
        )
    })?;
    let ware_code = match form.clear {
        Some(_) => None,
        None => Some(form.ware_code.as_str()),
    };
    iiko.connections
        .map_product(&organization, &product, ware_code)
        .await?;
    Ok(Redirect::to(&format!(
        "/admin/iiko/mapping/?organization={organization}"
    )))
}

/// The inbox's filters as asked (text, so that a wrong one is named rather than refused by a parser).
#[derive(Default, Deserialize)]
#[serde(default)]
struct InboxQuery {
    state: String,
    organization: String,
    page: String,
}

impl InboxQuery {
    fn filter(&self) -> Result<InboxFilter, HttpError> {
        let mut problems = Problems::default();
        let state = present(&self.state).and_then(|text| {
            let state = InboxState::parse(text);
            if state.is_none() {
                problems.add("state", Text::same("received, processed, skipped, failed"));
            }
            state
        });
        let organization = asked_organization(&self.organization, &mut problems);
        let page = match present(&self.page) {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 0)
                .unwrap_or_else(|| {
                    problems.add(
                        "page",
                        Text::new(
                            "Нужно целое число от 0.",
                            "A whole number from 0 is needed.",
                        ),
                    );
                    0
                }),
        };
        problems.into_result()?;
        Ok(InboxFilter {
            state,
            organization,
            page,
        })
    }
}

/// The query of the inbox with `filter` on its page `page`: empty, or `?` and the fields.
fn inbox_query(filter: &InboxFilter, page: i64) -> String {
    let mut fields = Vec::new();
    if let Some(state) = filter.state {
        fields.push(format!("state={}", state.as_str()));
    }
    if let Some(organization) = &filter.organization {
        fields.push(format!("organization={organization}"));
    }
    if page > 0 {
        fields.push(format!("page={page}"));
    }
    match fields.is_empty() {
        true => String::new(),
        false => format!("?{}", fields.join("&")),
    }
}

fn inbox_href(filter: &InboxFilter, page: i64) -> String {
    format!("/admin/iiko/inbox/{}", inbox_query(filter, page))
}

fn state_label(lang: Lang, state: &str) -> &'static str {
    match InboxState::parse(state) {
        Some(InboxState::Received) => lang.pick("принято", "received"),
        Some(InboxState::Processed) => lang.pick("обработано", "processed"),
        Some(InboxState::Skipped) => lang.pick("пропущено", "skipped"),
        Some(InboxState::Failed) => lang.pick("ошибка", "failed"),
        None => lang.pick("все", "all"),
    }
}

/// The intake writes what it did in English (it is also the log's); the Russian page reads its usual phrases in
/// Russian, the technical rest (after a colon) as written.
const OUTCOMES_RU: &[(&str, &str)] = &[
    (
        "an event type the intake does not apply",
        "тип события, который не применяется",
    ),
    (
        "the event names no order id or timestamp",
        "в событии нет id заказа или времени изменения",
    ),
    (
        "no iikoCloud connection for organization",
        "нет подключения iikoCloud для организации",
    ),
    (
        "no unit for this organization, and no default unit",
        "нет подразделения для этой организации и нет основного",
    ),
    (
        "iiko could not create this order",
        "iiko не смог создать этот заказ",
    ),
    ("is not newer than the one applied", "не новее применённой"),
    ("the order could not be read", "заказ не читается"),
    ("the queue refused it", "очередь не приняла заказ"),
    (
        "the stored event is not JSON",
        "сохранённое событие — не JSON",
    ),
    ("is not applied", "не применяется"),
    ("event type", "тип события"),
    ("version", "версия"),
    ("queue number", "номер в очереди"),
    ("nothing to make", "готовить нечего"),
    (" unchanged", " без изменений"),
    (" updated", " изменён"),
    (" cancelled", " отменён"),
];

fn outcome_text(lang: Lang, outcome: &str) -> String {
    if lang == Lang::En {
        return outcome.to_owned();
    }
    let (said, detail) = match outcome.split_once(": ") {
        // "iiko № 42: queue number 7" keeps its number before the colon.
        Some((number, _)) if number.starts_with("iiko №") => (outcome, ""),
        Some((said, detail)) => (said, detail),
        None => (outcome, ""),
    };
    let said = OUTCOMES_RU
        .iter()
        .fold(said.to_owned(), |text, (en, ru)| text.replace(en, ru));
    match detail {
        "" => said,
        detail => format!("{said}: {detail}"),
    }
}

/// An inbox row as the page lists it.
struct InboxLine {
    id: i64,
    received: String,
    organization: String,
    source: &'static str,
    event_type: String,
    order_key: String,
    state: String,
    state_label: &'static str,
    outcome: String,
    /// The event as received, indented.
    body: String,
    retry: bool,
}

#[derive(Template)]
#[template(path = "admin_iiko_inbox.html")]
struct InboxPage {
    page: PageContext,
    section: &'static str,
    rows: Vec<InboxLine>,
    states: Vec<(&'static str, &'static str)>,
    state: String,
    organizations: Vec<Organization>,
    organization: String,
    /// This page's query (the retry comes back to it), the newer and the older page's address.
    query: String,
    newer: Option<String>,
    older: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn inbox_page(
    State(iiko): State<Iiko>,
    admin: Admin,
    Query(query): Query<InboxQuery>,
) -> Result<Response, HttpError> {
    let filter = query.filter()?;
    let lang = admin.lang;
    let context = Context::new(&iiko, lang).await?;
    let organizations = organizations(&iiko).await?;
    let (rows, more) = views::inbox(&iiko.platform.store, &filter).await?;
    let rows = rows
        .into_iter()
        .map(|row| InboxLine {
            id: row.id,
            received: context.when(Some(row.received_ms)),
            organization: organizations
                .iter()
                .find(|o| o.id == row.organization_id)
                .map_or_else(|| row.organization_id.clone(), |o| o.label.clone()),
            source: match row.source.as_str() {
                "webhook" => lang.pick("вебхук", "webhook"),
                _ => lang.pick("опрос", "poll"),
            },
            event_type: row.event_type,
            retry: row.state == "failed" && row.order_key.is_some(),
            order_key: row.order_key.unwrap_or_default(),
            state_label: state_label(lang, &row.state),
            state: row.state,
            outcome: outcome_text(lang, row.outcome.as_deref().unwrap_or_default()),
            body: serde_json::from_str::<serde_json::Value>(&row.body)
                .and_then(|body| serde_json::to_string_pretty(&body))
                .unwrap_or(row.body),
        })
        .collect();
    Ok(render(&InboxPage {
        page: admin.page("iiko: входящие события", "iiko: inbox"),
        section: SECTION,
        rows,
        states: InboxState::ALL
            .iter()
            .map(|s| (s.as_str(), state_label(lang, s.as_str())))
            .collect(),
        state: filter
            .state
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        organization: filter
            .organization
            .as_ref()
            .map(IikoId::to_string)
            .unwrap_or_default(),
        organizations,
        query: inbox_query(&filter, filter.page),
        newer: (filter.page > 0).then(|| inbox_href(&filter, filter.page - 1)),
        older: more.then(|| inbox_href(&filter, filter.page + 1)),
    }))
}

/// Puts a failed event back in line and comes back to the inbox page it was on.
#[tracing::instrument(skip_all)]
async fn retry(
    State(iiko): State<Iiko>,
    _admin: Admin,
    Path(id): Path<i64>,
    Query(query): Query<InboxQuery>,
) -> Result<Redirect, HttpError> {
    let filter = query.filter()?;
    if !iiko.intake.retry(id).await? {
        return Err(HttpError::conflict(Text::new(
            "Это событие не в ошибке (или не называет заказ): повторять нечего.",
            "This event has not failed (or names no order): there is nothing to retry.",
        )));
    }
    iiko.platform.jobs.notify();
    Ok(Redirect::to(&inbox_href(&filter, filter.page)))
}
