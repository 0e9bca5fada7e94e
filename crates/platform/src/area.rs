//! Areas plug in. Each area crate exports one [`Area`] value that says what it brings: migrations, embedded
//! assets, navigation entries, the `tillwire.toml` section it reads, seed and demo steps, and a `build` step that
//! registers its routes (each group with the way it authenticates), job handlers, background tasks and the
//! services other areas use. The binary lists its areas once; [`assemble`] turns the list into one app. The
//! platform never names an area.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;

use crate::config::{ConfigError, EnvVar, PLATFORM_ENV};
use crate::error::{self, Answer, HttpError, Text};
use crate::jobs::JobRegistry;
use crate::store::Migration;
use crate::telemetry;
use crate::web::{self, Asset, Lang, NavLink};
use crate::{Platform, Settings};

/// An async step over the platform (seeding, demo data).
pub type Step = for<'a> fn(&'a Platform) -> BoxFuture<'a, anyhow::Result<()>>;

/// What an area brings. Build one with struct syntax and [`Area::NONE`] for the parts it does not have.
pub struct Area {
    /// Short, lowercase; names the area in logs and errors.
    pub name: &'static str,
    pub migrations: &'static [Migration],
    /// Served under `/static/`.
    pub assets: &'static [Asset],
    /// Entries of the top bar every page shows.
    pub main_nav: &'static [NavLink],
    /// Entries of the admin area's navigation.
    pub admin_nav: &'static [NavLink],
    /// The `[section]` of `tillwire.toml` the area reads, and its check, run at start so a bad value stops
    /// the process with a message instead of failing later.
    pub settings: Option<SettingsSection>,
    /// Creates what must exist (run at every start, so it only adds what is missing).
    pub seed: Option<Step>,
    /// Adds demo data (`tillwire demo`, `serve --demo`), after every area's seed.
    pub demo: Option<Step>,
    /// Registers routes, jobs, tasks and services.
    pub build: fn(&mut Assembly) -> anyhow::Result<()>,
    /// Answers unmatched paths the area claims (the directory's clients expect its JSON envelope there).
    pub unmatched: Option<fn(&str) -> Option<Response>>,
    /// The area's part of the OpenAPI document at `/api/openapi.json`.
    pub openapi: Option<fn() -> utoipa::openapi::OpenApi>,
    /// Token scopes the area defines besides its name (the ERP bridge's order intake is not its management).
    pub scopes: &'static [&'static str],
}

impl Area {
    /// An area with nothing but a name, to fill in the parts an area does not have:
    /// `Area { name: "x", build, ..Area::NONE }`.
    pub const NONE: Area = Area {
        name: "",
        migrations: &[],
        assets: &[],
        main_nav: &[],
        admin_nav: &[],
        settings: None,
        seed: None,
        demo: None,
        build: |_| Ok(()),
        unmatched: None,
        openapi: None,
        scopes: &[],
    };
}

/// A section of the settings an area owns: `[name]` in `tillwire.toml`, and its variables.
pub struct SettingsSection {
    /// The table's name: `[name]`.
    pub name: &'static str,
    /// The environment variables of its keys (each key `name.key`).
    pub env: &'static [EnvVar],
    /// Parses the area's settings (every layer applied) and says what is wrong.
    pub check: fn(&Settings) -> Result<(), ConfigError>,
}

/// How the routes of a group authenticate; it decides what the platform puts in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Pages and screens of signed-in people: session cookie, and a CSRF token on every unsafe request.
    Session,
    /// Devices and services: a key or token header on each request. A session cookie the browser sends along
    /// (Swagger UI's "Try it out") grants nothing and asks for no CSRF token.
    Credential,
    /// Anyone: static files, the API description.
    Public,
}

/// Tells a background task to stop.
#[derive(Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown signal and the sender that gives it (send `true`).
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        (stop, Shutdown(stopping))
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

impl From<tokio::sync::watch::Receiver<bool>> for Shutdown {
    fn from(stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Shutdown(stopping)
    }
}

/// A long-running task of an area. It returns when told to stop; an error ends the process (a task that cannot
/// start, such as a collector whose unit does not exist, must not go unnoticed).
pub type Task = Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// Services areas provide to each other, one per type.
#[derive(Default)]
struct Services(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Services {
    fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|service| service.downcast_ref::<T>())
            .cloned()
    }
}

/// What the areas are assembled into: each area's `build` adds to it.
pub struct Assembly {
    pub platform: Platform,
    area: &'static str,
    services: Services,
    router: Router,
    jobs: JobRegistry,
    tasks: Vec<(&'static str, Task)>,
}

impl Assembly {
    /// Makes a service available to the areas built after this one (the kitchen gives printing its `Kitchen`).
    pub fn provide<T: Clone + Send + Sync + 'static>(&mut self, service: T) {
        self.services.0.insert(TypeId::of::<T>(), Box::new(service));
    }

    /// A service an area built earlier provided.
    pub fn service<T: Clone + Send + Sync + 'static>(&self) -> anyhow::Result<T> {
        self.services.get().ok_or_else(|| {
            anyhow::anyhow!(
                "area {:?} needs {}, which no area listed before it provides",
                self.area,
                std::any::type_name::<T>()
            )
        })
    }

    /// Adds routes that authenticate as `access` says and show their errors as `answer` says.
    pub fn routes(&mut self, access: Access, answer: Answer, routes: Router) {
        let routes = match access {
            Access::Session => routes.layer(middleware::from_fn_with_state(
                self.platform.clone(),
                crate::auth::require_csrf,
            )),
            Access::Credential | Access::Public => routes,
        };
        let routes = routes.layer(middleware::from_fn(move |request, next| {
            error::render(answer, request, next)
        }));
        self.router = std::mem::take(&mut self.router).merge(routes);
    }

    /// The registry to add job handlers to.
    pub fn jobs(&mut self) -> &mut JobRegistry {
        &mut self.jobs
    }

    /// Adds a background task, started with the server and stopped before it exits.
    pub fn task<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks
            .push((name, Box::new(move |shutdown| Box::pin(task(shutdown)))));
    }
}

/// The assembled app: one router, the job handlers, the background tasks.
pub struct App {
    pub router: Router,
    pub jobs: Arc<JobRegistry>,
    pub tasks: Vec<(&'static str, Task)>,
    services: Services,
}

impl App {
    /// A service an area provided (tests reach the kitchen this way).
    pub fn service<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.services.get()
    }
}

/// A path no route and no area claims: a page for people, JSON under `/api/`.
fn not_found(uri: &axum::http::Uri, lang: Lang) -> Response {
    let error = HttpError::not_found(Text::new("Такой страницы нет.", "There is no such page."));
    if uri.path().starts_with("/api/") {
        return error.into_response();
    }
    error::error_page(lang, error.reply(), "/".to_owned())
}

/// Every migration of the given areas, in their order.
pub fn migrations(areas: &[&Area]) -> Vec<&'static [Migration]> {
    areas.iter().map(|area| area.migrations).collect()
}

/// Every setting's environment variables: the platform's and each area's.
pub fn variables(areas: &[&Area]) -> Vec<&'static EnvVar> {
    PLATFORM_ENV
        .iter()
        .chain(
            areas
                .iter()
                .filter_map(|area| area.settings.as_ref())
                .flat_map(|section| section.env),
        )
        .collect()
}

/// Runs each area's settings check, and refuses a section no area reads (a typo would otherwise be ignored).
pub fn check_settings(areas: &[&Area], settings: &Settings) -> Result<(), ConfigError> {
    for section in settings.section_names() {
        if !areas
            .iter()
            .any(|area| area.settings.as_ref().is_some_and(|s| s.name == section))
        {
            return Err(ConfigError::Layer(format!(
                "unknown setting or section {section:?} (a typo in tillwire.toml?)"
            )));
        }
    }
    for section in areas.iter().filter_map(|area| area.settings.as_ref()) {
        (section.check)(settings)?;
    }
    Ok(())
}

/// Runs every area's seed step, then, with `demo`, every demo step.
pub async fn seed(areas: &[&Area], platform: &Platform, demo: bool) -> anyhow::Result<()> {
    for area in areas {
        if let Some(seed) = area.seed {
            seed(platform).await?;
        }
    }
    if demo {
        for area in areas {
            if let Some(step) = area.demo {
                step(platform).await?;
            }
        }
    }
    Ok(())
}

/// Builds every area in order into one app. The navigation of the pages becomes the areas' entries.
/// The scopes a token can have besides `admin` and `device`: each area's name and the extra scopes it defines.
pub fn token_scopes(areas: &[&Area]) -> Vec<&'static str> {
    areas
        .iter()
        .flat_map(|area| std::iter::once(area.name).chain(area.scopes.iter().copied()))
        .collect()
}

pub fn assemble(areas: &[&'static Area], platform: &Platform) -> anyhow::Result<App> {
    let mut assembly = Assembly {
        platform: platform.clone(),
        area: "",
        services: Services::default(),
        router: Router::new(),
        jobs: JobRegistry::default(),
        tasks: Vec::new(),
    };
    let _ = platform.scopes.set(token_scopes(areas));
    for area in areas {
        assembly.area = area.name;
        (area.build)(&mut assembly)
            .map_err(|error| error.context(format!("starting the {} area", area.name)))?;
    }
    // The platform's own admin pages (users, jobs) close the list, after the areas'.
    let (platform_areas, other_areas): (Vec<&Area>, Vec<&Area>) = areas
        .iter()
        .copied()
        .partition(|area| area.name == crate::AREA.name);
    web::install_navigation(
        areas.iter().flat_map(|area| area.main_nav),
        other_areas
            .iter()
            .chain(&platform_areas)
            .flat_map(|area| area.admin_nav),
    );
    // The API docs page is always served, with its vendored Swagger UI.
    let assets: Vec<&'static [Asset]> = std::iter::once(web::DOCS_ASSETS)
        .chain(areas.iter().map(|area| area.assets))
        .collect();
    let mut openapi = utoipa::openapi::OpenApiBuilder::new()
        .info(utoipa::openapi::Info::new(
            "tillwire API",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    for part in areas.iter().filter_map(|area| area.openapi) {
        openapi.merge(part());
    }
    error::document_errors(&mut openapi);
    assembly.routes(
        Access::Public,
        Answer::Page,
        web::docs_router(openapi.to_pretty_json().unwrap_or_default()),
    );
    assembly.routes(Access::Public, Answer::Json, web::assets_router(assets));
    let unmatched: Vec<fn(&str) -> Option<Response>> =
        areas.iter().filter_map(|area| area.unmatched).collect();
    let router = assembly
        .router
        .fallback(move |uri: axum::http::Uri, lang: Lang| async move {
            unmatched
                .iter()
                .find_map(|claim| claim(uri.path()))
                .unwrap_or_else(|| not_found(&uri, lang))
        })
        .layer(middleware::from_fn(web::security_headers))
        .layer(middleware::from_fn(telemetry::observe));
    Ok(App {
        router,
        jobs: Arc::new(assembly.jobs),
        tasks: assembly.tasks,
        services: assembly.services,
    })
}
