//! Wiring: open the store, migrate, seed, build the router from every area, run the server and the workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tillwire_kitchen::Kitchen;
use tillwire_platform::auth::{NewPassword, Username, Users};
use tillwire_platform::jobs::{JobFailure, JobHandler, NewJob};
use tillwire_platform::{Migration, Platform, Role, Settings, Store, web};
use tillwire_printing::Printing;
use tillwire_units::{ApiKeys, Units};
use utoipa::OpenApi;

const MIGRATIONS: &[&[Migration]] = &[
    tillwire_platform::MIGRATIONS,
    tillwire_units::MIGRATIONS,
    tillwire_kitchen::MIGRATIONS,
    tillwire_collector::MIGRATIONS,
    tillwire_printing::MIGRATIONS,
    tillwire_directory::MIGRATIONS,
];
const ASSETS: &[&[web::Asset]] = &[
    web::SHELL_ASSETS,
    web::DOCS_ASSETS,
    tillwire_kitchen::ASSETS,
];

/// Connects (creating the SQLite file and its directory when needed) and brings the schema up to date.
pub async fn open(settings: Settings) -> anyhow::Result<Platform> {
    if let Some(path) = settings.database_url.strip_prefix("sqlite://") {
        let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let store = Store::connect(&settings.database_url)
        .await
        .context("opening the database")?;
    let applied = store
        .migrate(MIGRATIONS)
        .await
        .context("migrating the database")?;
    if applied > 0 {
        tracing::info!(applied, backend = ?store.backend(), "database migrated");
    }
    Ok(Platform::new(store, settings))
}

/// Seeds what is missing and makes sure someone can sign in.
pub async fn seed(platform: &Platform) -> anyhow::Result<()> {
    if let Some(unit) = tillwire_kitchen::seed::init(platform).await? {
        tracing::info!(
            unit = unit.0,
            "created the default unit with its stations, printer and registers 1–5"
        );
    }
    tillwire_directory::seed::init(platform).await?;
    let users = Users(&platform.store);
    if users.count_admins().await? == 0 {
        let password = NewPassword::generate();
        let mut name = "admin".to_owned();
        let id = loop {
            match users
                .create(&Username::parse(&name)?, &password, Role::Admin)
                .await
            {
                Ok(id) => break id,
                Err(tillwire_platform::auth::AuthError::UsernameTaken) => {
                    name = format!("admin-{}", tillwire_platform::random_token(4))
                }
                Err(error) => return Err(error.into()),
            }
        };
        tracing::info!(user = id, "created the first admin");
        // Printed to the console once, never logged: this is the only copy.
        println!(
            "First admin created. Username: {name}  Password: {}  (shown once; sign in at /users/login/)",
            password.expose()
        );
    }
    Ok(())
}

pub async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    println!("Database is up to date ({:?}).", platform.store.backend());
    platform.store.close().await;
    Ok(())
}

pub async fn init(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    seed(&platform).await?;
    println!("Initialised.");
    platform.store.close().await;
    Ok(())
}

pub async fn demo(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    seed(&platform).await?;
    let added = tillwire_kitchen::seed::load_demo(&platform).await?;
    println!("Demo catalogue: {added} wares added.");
    platform.store.close().await;
    Ok(())
}

pub async fn maintenance(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    println!("Optimizing...");
    let report = Kitchen::new(platform.clone()).run_retention().await?;
    println!(
        "Optimization: Done, removed: {} orders, {} receipt records.",
        report.orders, report.receipts
    );
    platform.store.close().await;
    Ok(())
}

/// `tillwire print test PRINTER`: prints a test page now, bypassing the queue, and says what happened.
/// `PRINTER` is a printer's id or its name (in any unit, ignoring case in any script: "принтер" finds "Принтер").
pub async fn print_test(settings: Settings, printer: &str) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    let kitchen = Kitchen::new(platform.clone());
    let mut found = Vec::new();
    for unit in Units(&platform.store).list().await? {
        found.extend(
            kitchen
                .printers(unit.unit_id())
                .await?
                .into_iter()
                .filter(|p| {
                    p.id.to_string() == printer || tillwire_printing::same_name(&p.name, printer)
                }),
        );
    }
    let target = match found.as_slice() {
        [one] => kitchen.printer(one.id).await?,
        [] => anyhow::bail!("no printer with id or name {printer:?}"),
        _ => anyhow::bail!("several printers are named {printer:?}; use the id"),
    };
    let address = target
        .address
        .as_ref()
        .map(ToString::to_string)
        .ok_or_else(|| anyhow::anyhow!("printer {:?} has no address", target.name))?;
    Printing::new(kitchen).test_page(&target).await?;
    println!("Test page printed on \"{}\" ({address}).", target.name);
    platform.store.close().await;
    Ok(())
}

/// `tillwire directory import FILE`: the directory's master data from one JSON file, all or nothing.
pub async fn directory_import(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let platform = open(settings).await?;
    let report = tillwire_directory::import::import(&platform.store, &text, "cli").await;
    platform.store.close().await;
    println!(
        "Imported {}.",
        report.with_context(|| file.display().to_string())?
    );
    Ok(())
}

/// `tillwire collect setretail --config main.json`: ELQ's collector with a cursor, posting to main.json's `api`.
pub async fn collect_setretail(
    settings: Settings,
    main_json: Option<std::path::PathBuf>,
    batch: u32,
    lookback_hours: Option<u32>,
) -> anyhow::Result<()> {
    let main_json = main_json.context("--config main.json is required")?;
    let options = tillwire_collector::cli::CliOptions {
        main_json,
        batch,
        lookback_hours,
    };
    Ok(tillwire_collector::cli::run(&settings, options).await?)
}

/// With `--demo`, a newcomer needs a device key to post a receipt: issue one unless ELQ's `API_KEY` is set.
async fn demo_key(platform: &Platform) -> anyhow::Result<()> {
    if platform.settings.legacy.api_key.is_some() {
        return Ok(());
    }
    let Some(unit) = Units(&platform.store).default_unit().await? else {
        return Ok(());
    };
    let keys = ApiKeys(&platform.store);
    if keys
        .list()
        .await?
        .iter()
        .any(|k| k.unit_id == unit.id && !k.revoked)
    {
        return Ok(());
    }
    let issued = keys.issue(unit.unit_id(), "demo").await?;
    println!(
        "Demo device key for \"{}\": {}  (shown once; send it in the `key` header)",
        unit.name, issued.plain
    );
    Ok(())
}

pub fn router(platform: &Platform, kitchen: Kitchen) -> anyhow::Result<Router> {
    let mut openapi = tillwire_kitchen::api::KitchenApi::openapi();
    openapi.info.title = "tillwire API".into();
    let openapi_json = openapi.to_pretty_json().unwrap_or_default();
    let directory = tillwire_directory::Directory::new(platform.clone())?;
    Ok(Router::new()
        .merge(web::shell_router(platform.clone()))
        .merge(web::docs_router(openapi_json))
        .merge(web::assets_router(ASSETS))
        .merge(tillwire_platform::admin::router(platform.clone()))
        .merge(tillwire_units::router(platform.clone()))
        .merge(tillwire_collector::router(platform.clone()))
        .merge(tillwire_printing::router().with_state(kitchen.clone()))
        .merge(tillwire_kitchen::router(kitchen))
        .merge(tillwire_directory::router(directory))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            platform.clone(),
            tillwire_platform::auth::require_csrf,
        ))
        .layer(middleware::from_fn(web::security_headers))
        .layer(middleware::from_fn(observe)))
}

/// The directory's clients get its JSON envelope for unknown paths; everything else a plain 404.
async fn not_found(uri: axum::http::Uri) -> Response {
    if tillwire_directory::owns_unmatched(uri.path()) {
        tillwire_directory::not_found()
    } else {
        (axum::http::StatusCode::NOT_FOUND, "not found").into_response()
    }
}

/// Request metrics and a log line per request, with the path but never the query (it may hold a CSRF token).
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics::histogram!("tillwire_http_seconds", "route" => route, "status" => status.to_string())
        .record(started.elapsed().as_secs_f64());
    if response.status().is_server_error() {
        tracing::error!(%method, %path, status, "request failed");
    } else {
        tracing::debug!(%method, %path, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    }
    response
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

pub async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    tillwire_platform::telemetry::metrics_handle();
    let listen = settings.listen;
    let platform = open(settings).await?;
    seed(&platform).await?;
    if demo {
        let added = tillwire_kitchen::seed::load_demo(&platform).await?;
        tracing::info!(added, "demo catalogue loaded");
        demo_key(&platform).await?;
    }
    platform
        .events
        .spawn_relay()
        .await
        .context("listening for other instances' events")?;
    let kitchen = Kitchen::new(platform.clone());

    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(run_jobs(platform.clone(), kitchen.clone(), jobs_stopped));
    let collectors = tillwire_collector::start_in_process(&kitchen).await?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let app = router(&platform, kitchen)?;
    tracing::info!(address = %listener.local_addr()?, startup_ms = started.elapsed().as_millis() as u64, "tillwire is serving");
    println!("tillwire is serving on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    let _ = stop_jobs.send(true);
    let _ = runner.await;
    collectors.stop().await;
    platform.store.close().await;
    Ok(())
}

/// The background worker: runs queued jobs and schedules the daily retention purge.
async fn run_jobs(
    platform: Platform,
    kitchen: Kitchen,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut handlers: HashMap<&'static str, Arc<dyn JobHandler>> = Printing::new(kitchen.clone())
        .handlers()
        .into_iter()
        .collect();
    let retention = kitchen.clone();
    handlers.insert(
        tillwire_kitchen::RETENTION_QUEUE,
        Arc::new(move |_job| {
            let kitchen = retention.clone();
            async move {
                let report = kitchen
                    .run_retention()
                    .await
                    .map_err(|e| JobFailure::Retry(e.to_string()))?;
                tracing::info!(
                    orders = report.orders,
                    receipts = report.receipts,
                    "retention purge done"
                );
                Ok(())
            }
        }),
    );
    let jobs = platform.jobs.clone();
    let scheduler = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let mut daily = tokio::time::interval(Duration::from_secs(24 * 3600));
            loop {
                daily.tick().await;
                let job = NewJob {
                    queue: tillwire_kitchen::RETENTION_QUEUE,
                    key: tillwire_kitchen::RETENTION_QUEUE.into(),
                    payload: serde_json::json!({}),
                    max_attempts: 5,
                };
                if let Err(error) = jobs.enqueue(&job).await {
                    tracing::warn!(%error, "could not schedule the retention purge");
                }
            }
        })
    };
    jobs.run(handlers, 16, async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    })
    .await;
    scheduler.abort();
}
