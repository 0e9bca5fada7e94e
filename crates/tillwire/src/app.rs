//! Wiring: the list of areas, and the commands that open the store, migrate, seed, and run the server, the job
//! runner and the areas' background tasks.

use std::time::{Duration, Instant};

use anyhow::Context;
use tillwire_kitchen::Kitchen;
use tillwire_platform::area::{self, Area};
use tillwire_platform::auth::{NewPassword, Role, Username, Users};
use tillwire_platform::tokens::{Scope, TokenName, Tokens};
use tillwire_platform::{Platform, Settings, Store};
use tillwire_printing::Printing;
use tillwire_units::Units;

/// Jobs run at once. Jobs of one key (a printer) run one at a time whatever this is; more at once means larger
/// claims and settlements for the same round trips.
const JOB_CONCURRENCY: usize = 64;

/// Every area of tillwire, in build order: an area may use the services of those before it (printing and the
/// collector use the kitchen's). Adding an area is one line here.
pub const AREAS: &[&Area] = &[
    &tillwire_platform::AREA,
    &tillwire_units::AREA,
    &tillwire_kitchen::AREA,
    &tillwire_printing::AREA,
    &tillwire_collector::AREA,
    &tillwire_directory::AREA,
    &tillwire_monitor::AREA,
    &tillwire_notify::AREA,
    &tillwire_erp::AREA,
    &tillwire_iiko::AREA,
];

/// Connects (creating the SQLite file and its directory when needed) and brings the schema up to date.
pub async fn open(settings: Settings) -> anyhow::Result<Platform> {
    // The data directory holds the database (sessions' CSRF tokens, the audit), the secret key and the first
    // admin's password: only tillwire's user may read it.
    private_dir(&settings.data_dir)?;
    let sqlite_file = settings
        .database_url
        .strip_prefix("sqlite://")
        .map(|path| std::path::PathBuf::from(path.split('?').next().unwrap_or(path)));
    if let Some(parent) = sqlite_file
        .as_deref()
        .and_then(std::path::Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
    {
        private_dir(parent)?;
    }
    let store = Store::connect(&settings.database_url)
        .await
        .context("opening the database")?;
    if let Some(file) = &sqlite_file {
        private_files(file)?;
    }
    let applied = store
        .migrate(&area::migrations(AREAS))
        .await
        .context("migrating the database")?;
    if applied > 0 {
        tracing::info!(applied, backend = ?store.backend(), "database migrated");
    }
    Ok(Platform::new(store, settings))
}

/// Creates `dir` if needed and makes it readable by its owner only (0700).
fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

/// Makes the SQLite database and its journal files readable by their owner only (0600); SQLite gives the journal
/// files it creates later the database file's mode.
fn private_files(database: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", path.display()))?;
        }
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
    area::seed(AREAS, &platform, false).await?;
    println!("Initialised.");
    platform.store.close().await;
    Ok(())
}

pub async fn demo(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    area::seed(AREAS, &platform, true).await?;
    platform.store.close().await;
    Ok(())
}

pub async fn maintenance(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    println!("Optimizing...");
    let report = Kitchen::new(platform.clone())?.run_retention().await?;
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
    let kitchen = Kitchen::new(platform.clone())?;
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
    Printing::new(kitchen)?.test_page(&target).await?;
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

/// `tillwire monitor import FILE.csv`: registers from CSV, all or nothing; every problem of the file is printed.
pub async fn monitor_import(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let platform = open(settings).await?;
    let outcome = tillwire_monitor::import::import(&platform.store, &text).await;
    platform.store.close().await;
    match outcome {
        Ok(counts) => {
            println!(
                "{} added, {} updated, {} unchanged",
                counts.added, counts.updated, counts.unchanged
            );
            Ok(())
        }
        Err(tillwire_monitor::import::ImportError::Lines(errors)) => {
            for error in &errors {
                eprintln!("{}: {error}", file.display());
            }
            anyhow::bail!(
                "{}: {} problem(s); nothing was imported",
                file.display(),
                errors.len()
            )
        }
        Err(error) => Err(anyhow::Error::from(error).context(file.display().to_string())),
    }
}

/// `tillwire iiko webhooks setup --url URL`: registers tillwire's webhook with iikoCloud for every connection.
pub async fn iiko_webhooks_setup(settings: Settings, url: &str) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    area::seed(AREAS, &platform, false).await?;
    let app = area::assemble(AREAS, &platform)?;
    let iiko: tillwire_iiko::Iiko = app
        .service()
        .ok_or_else(|| anyhow::anyhow!("the iiko area is not assembled"))?;
    iiko.load_config()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let outcome = tillwire_iiko::webhook::register(&iiko, url).await;
    platform.store.close().await;
    let registered = outcome?;
    if registered.is_empty() {
        anyhow::bail!("no iikoCloud connection has a webhook_token: nothing was registered");
    }
    for (organization, uri) in registered {
        println!("{organization}: iikoCloud sends its webhooks to {uri}");
    }
    Ok(())
}

/// `tillwire erp import-oilmat DIR`: oilmat-erp's order history, with a line of progress per hundred rows.
pub async fn erp_import(
    settings: Settings,
    dir: &std::path::Path,
    erp_type: Option<tillwire_erp::ErpType>,
) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    let integrations =
        tillwire_erp::Integrations::new(platform.store.clone(), platform.settings.data_dir.clone());
    let orders = tillwire_erp::Orders::new(platform.store.clone(), platform.jobs.clone());
    let outcome = tillwire_erp::import::import_oilmat(
        &integrations,
        &orders,
        dir,
        erp_type,
        |workshop, done, total| {
            if done % 100 == 0 || done == total {
                eprintln!("{workshop}: {done}/{total}");
            }
        },
    )
    .await;
    platform.store.close().await;
    for report in outcome? {
        println!(
            "{}: {} added, {} already there{}{}",
            report.workshop,
            report.added,
            report.already_there,
            if report.unknown_status > 0 {
                format!(
                    ", {} with an unknown status (imported as failed)",
                    report.unknown_status
                )
            } else {
                String::new()
            },
            if report.created {
                " (integration created, parked, no login yet)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `tillwire collect setretail --config main.json`: ELQ's collector with a cursor, posting to main.json's `api`.
/// A new password from standard input (its first line) when that is not a terminal, so a script can pipe one in
/// without it showing in the process list; at a terminal, a generated one (`true`: print it once).
fn new_password() -> anyhow::Result<(NewPassword, bool)> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return Ok((NewPassword::generate(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = NewPassword::parse(line.trim_end_matches(['\r', '\n']))?;
    Ok((password, false))
}

pub async fn user_add(settings: Settings, name: &str, role: &str) -> anyhow::Result<()> {
    let username = Username::parse(name)?;
    let role: Role = role.parse()?;
    let (password, generated) = new_password()?;
    let platform = open(settings).await?;
    Users(&platform.store)
        .create(&username, &password, role)
        .await?;
    tracing::info!(username = username.as_str(), %role, by = "cli", "user created");
    if generated {
        println!("Password: {}  (shown once)", password.expose());
    }
    eprintln!("User {} ({role}) created.", username.as_str());
    Ok(())
}

pub async fn user_password(settings: Settings, name: &str) -> anyhow::Result<()> {
    let (password, generated) = new_password()?;
    let platform = open(settings).await?;
    let users = Users(&platform.store);
    let user = users
        .list()
        .await?
        .into_iter()
        .find(|user| user.username == name)
        .with_context(|| format!("no user named {name:?}"))?;
    let role: Role = user.role.parse()?;
    users
        .update(user.id, role, user.active, Some(&password))
        .await?;
    tracing::info!(user = user.id, username = name, by = "cli", "password set");
    if generated {
        println!("Password: {}  (shown once)", password.expose());
    }
    eprintln!("Password of {name} set; their sessions have ended.");
    Ok(())
}

/// Who a token command acts as, in the token audit.
const CLI_ACTOR: &str = "cli";

pub async fn token_issue(
    settings: Settings,
    name: &str,
    scope: &str,
    unit: Option<i64>,
) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    let areas = area::token_scopes(AREAS);
    let name = TokenName::parse(name)?;
    let scope = Scope::parse(scope, &areas)?;
    if let Some(unit) = unit {
        Units(&platform.store)
            .get(tillwire_units::UnitId(unit))
            .await?;
    }
    let issued = Tokens(&platform.store)
        .issue(&name, &scope, unit, CLI_ACTOR)
        .await?;
    println!("{}", issued.plain);
    eprintln!(
        "Token {} ({}, scope {}) issued. It is shown once: store it now.",
        issued.id,
        name.as_str(),
        scope.as_str()
    );
    Ok(())
}

pub async fn token_list(settings: Settings) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    for token in Tokens(&platform.store).list(None).await? {
        let unit = token
            .unit_id
            .map(|u| format!(" unit {u}"))
            .unwrap_or_default();
        let state = if token.revoked() { "revoked" } else { "active" };
        println!(
            "{}\t{}{unit}\t{}\t{}…\t{state}",
            token.id, token.scope, token.name, token.prefix
        );
    }
    Ok(())
}

pub async fn token_revoke(settings: Settings, id: i64) -> anyhow::Result<()> {
    let platform = open(settings).await?;
    Tokens(&platform.store).revoke(id, CLI_ACTOR).await?;
    eprintln!("Token {id} revoked.");
    Ok(())
}

pub async fn collect_setretail(
    settings: Settings,
    main_json: Option<std::path::PathBuf>,
    options: tillwire_collector::cli::CliOptions,
) -> anyhow::Result<()> {
    let main_json = main_json.context("--config main.json is required")?;
    let options = tillwire_collector::cli::CliOptions {
        main_json,
        ..options
    };
    Ok(tillwire_collector::cli::run(&settings, options).await?)
}

/// `tillwire sim ukm5`: simulated UKM 5 registers until SIGTERM or Ctrl-C, printing each register that gets two
/// requests within a second as it happens, and a summary at the end.
/// `tillwire sim telegram`: a simulated Bot API for one bot, until stopped; prints every send that came before
/// the retry_after the simulator had given.
/// A simulator's password: the one given, or one made here and shown once (no default password, even for a
/// simulator). The second value says whether it was made.
fn sim_password(given: Option<String>) -> (String, bool) {
    match given {
        Some(password) if !password.is_empty() => (password, false),
        _ => (tillwire_platform::random_token(16), true),
    }
}

/// ", password …" for a banner when the password was made here, else nothing.
fn made_password(password: &str, made: bool) -> String {
    if made {
        format!(", password {password}")
    } else {
        String::new()
    }
}

/// Binds a simulator's `--listen` address.
async fn sim_listener(
    listen: &str,
) -> anyhow::Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}"))?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// Serves a simulator until SIGTERM or SIGINT.
async fn serve_sim(listener: tokio::net::TcpListener, router: axum::Router) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(tillwire_platform::server::stop_signal())
        .await?;
    Ok(())
}

/// `tillwire sim iiko-cloud`: the iikoCloud simulator with the demo world, then a script played in real time.
pub async fn sim_iiko_cloud(listen: &str, script: Option<&std::path::Path>) -> anyhow::Result<()> {
    use tillwire_iiko::sim::cloud::{CloudSim, DEFAULT_API_LOGIN, demo_script};
    let script = match script {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--script {}", path.display()))?,
        ),
        None => None,
    };
    let sim = CloudSim::new();
    sim.run_script(demo_script())
        .map_err(|e| anyhow::anyhow!("the demo world, {e}"))?;
    let (listener, address) = sim_listener(listen).await?;
    println!(
        "Simulating iikoCloud at http://{address} (api login {DEFAULT_API_LOGIN}); its state and a script box at http://{address}/sim/"
    );
    let server = tokio::spawn(serve_sim(listener, sim.router()));
    if let Some(script) = script {
        sim.play_script(&script)
            .await
            .map_err(|e| anyhow::anyhow!("--script, {e}"))?;
        println!("The script has played; the simulator keeps serving.");
    }
    server.await??;
    Ok(())
}

/// `tillwire sim iiko-server`: the iikoServer simulator, with a script or the demo's sales.
pub async fn sim_iiko_server(
    listen: &str,
    login: &str,
    password: Option<String>,
    script: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let (password, made) = sim_password(password);
    let sim = tillwire_iiko::sim::server::ServerSim::new(login, &password);
    let script = match script {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("--script {}", path.display()))?
        }
        None => tillwire_iiko::sim::server::demo_script(),
    };
    sim.run_script(&script)
        .map_err(|e| anyhow::anyhow!("the script, {e}"))?;
    let (listener, address) = sim_listener(listen).await?;
    println!(
        "Simulating iikoServer at http://{address}/resto/ (login {login}{}); its state at http://{address}/resto/sim/",
        made_password(&password, made)
    );
    serve_sim(listener, sim.router()).await
}

pub async fn sim_erp(
    kind: tillwire_erp::sim::ErpType,
    listen: &str,
    username: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let sim = tillwire_erp::sim::ErpSim::new(kind);
    let (password, made) = sim_password(password);
    sim.set_credentials(username, &password);
    let (listener, address) = sim_listener(listen).await?;
    println!(
        "Simulating {} at http://{address}{} (user {username}{}); what was added at http://{address}/sim/",
        kind.name(),
        kind.login_path(),
        made_password(&password, made)
    );
    serve_sim(listener, sim.router()).await
}

pub async fn sim_telegram(listen: &str, token: &str) -> anyhow::Result<()> {
    use tillwire_notify::sim::TelegramSim;
    anyhow::ensure!(
        !token.is_empty() && !token.contains('/'),
        "--token must be non-empty and without '/'"
    );
    let sim = TelegramSim::new(token);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}"))?;
    let address = listener.local_addr()?;
    println!(
        "Simulating the Telegram Bot API: base URL http://{address} (methods at http://{address}/bot{token}/METHOD), chats at http://{address}/sim/"
    );
    let watcher = sim.clone();
    let report = tokio::spawn(async move {
        let mut told = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let violations = watcher.rate_violations();
            for violation in violations.iter().skip(told) {
                println!(
                    "chat {}: a message {} ms before its retry_after elapsed (rate violation)",
                    violation.chat_id,
                    violation.early_by.as_millis()
                );
            }
            told = violations.len();
        }
    });
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(tillwire_platform::server::stop_signal())
        .await?;
    report.abort();
    let violations = sim.rate_violations().len();
    println!(
        "{} message(s) delivered, {violations} rate violation(s), {} lost repl(ies)",
        sim.all_messages().len(),
        sim.lost_replies()
    );
    Ok(())
}

pub async fn sim_ukm5(
    settings: &Settings,
    registers: u32,
    listen: &str,
    format: tillwire_monitor::sim::BodyFormat,
    scenario: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use tillwire_monitor::sim::Simulator;
    anyhow::ensure!(registers >= 1, "--registers must be at least 1");
    let steps = match scenario {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--scenario {}", path.display()))?;
            tillwire_monitor::scenario::parse(&text).map_err(|errors| {
                anyhow::anyhow!("--scenario {}:\n  {}", path.display(), errors.join("\n  "))
            })?
        }
    };
    if let Some(step) = steps
        .iter()
        .find(|s| s.register.is_some_and(|n| n > registers))
    {
        anyhow::bail!(
            "--scenario: register {} is not simulated (--registers {registers})",
            step.register.unwrap_or_default()
        );
    }
    let zone = settings.timezone.unwrap_or(chrono_tz::UTC);
    let sim = Simulator::new(registers, zone);
    for n in 1..=registers {
        sim.set_format(n, format);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}"))?;
    let address = listener.local_addr()?;
    println!(
        "Simulating {registers} UKM 5 register(s), clocks in {zone}: http://{address}/r/1/api/v1/status/downtime … /r/{registers}/…"
    );
    let player = sim.clone();
    tokio::spawn(async move { player.play(&steps).await });
    let watcher = sim.clone();
    let report = tokio::spawn(async move {
        let mut told = std::collections::HashSet::new();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for (n, gap) in watcher.rate_violations() {
                if told.insert(n) {
                    println!(
                        "register {n}: two requests {} ms apart (the limit is one a second)",
                        gap.as_millis()
                    );
                }
            }
        }
    });
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(tillwire_platform::server::stop_signal())
        .await?;
    report.abort();
    let violations = sim.rate_violations();
    println!(
        "{} register(s) got two requests within a second{}",
        violations.len(),
        if violations.is_empty() { "" } else { ":" }
    );
    for (n, gap) in violations {
        println!("  register {n}: shortest gap {} ms", gap.as_millis());
    }
    Ok(())
}

/// Resolves at SIGTERM or SIGINT.
async fn shutdown_signal() {
    tillwire_platform::server::stop_signal().await;
    tracing::info!("shutting down");
}

pub async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    tillwire_platform::server::raise_open_files_limit();
    tillwire_platform::telemetry::metrics_handle();
    let listen = settings.listen;
    // Bound first, so that nothing started below (a demo's simulator on an ephemeral port, say) can take the port.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let platform = open(settings).await?;
    area::seed(AREAS, &platform, demo).await?;
    run(platform, Some(listener), started).await
}

/// `tillwire erp run PORT WORKSHOP TYPE`: oilmat-erp's `python app.py PORT WORKSHOP TYPE`, one workshop's
/// integration on its port, with its state in the data directory; its `/kill` ends the process. Every area runs
/// (their jobs must not go unhandled) but no main listener.
pub async fn erp_run(
    settings: Settings,
    port: u16,
    workshop: &str,
    erp_type: tillwire_erp::ErpType,
    erp_url: Option<&str>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let platform = open(settings).await?;
    area::seed(AREAS, &platform, false).await?;
    let integration =
        tillwire_erp::standalone::prepare(&platform, port, workshop, erp_type, erp_url).await?;
    println!(
        "tillwire erp: {} ({}) on http://{}:{port}/ for OilMat; its worker is {}",
        integration.workshop,
        integration.erp_type,
        tillwire_erp::config::parse(&platform.settings)?.listen_host,
        if integration.worker_running {
            "running"
        } else {
            "parked (PUT /start_worker starts it)"
        }
    );
    run(platform, None, started).await
}

/// Runs the assembled areas (their routes on `listener`, when there is one), the job runner and the background
/// tasks until the process is told to stop, or a task fails.
async fn run(
    platform: Platform,
    listener: Option<tokio::net::TcpListener>,
    started: Instant,
) -> anyhow::Result<()> {
    platform
        .events
        .spawn_relay()
        .await
        .context("listening for other instances' events")?;
    let app = area::assemble(AREAS, &platform)?;
    let grace = platform.settings.shutdown_grace;

    // SIGTERM or SIGINT: live streams tell their screens to reconnect and end, the server stops accepting and
    // finishes what is in flight, the job runner starts nothing new; all within the grace period.
    tokio::spawn({
        let platform = platform.clone();
        async move {
            shutdown_signal().await;
            platform.begin_shutdown();
        }
    });
    let runner = tokio::spawn(platform.jobs.clone().with_grace(grace).run(
        app.jobs,
        JOB_CONCURRENCY,
        {
            let mut stopping = platform.stopping();
            async move { stopping.wait().await }
        },
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, task) in app.tasks {
        let run = task(platform.stopping());
        tasks.spawn(async move { run.await.with_context(|| format!("background task {name}")) });
    }

    let served = async {
        match listener {
            Some(listener) => {
                let address = listener.local_addr()?;
                tracing::info!(%address, startup_ms = started.elapsed().as_millis() as u64, "tillwire is serving");
                println!("tillwire is serving on http://{address}");
                tillwire_platform::server::serve(
                    listener,
                    app.router,
                    &platform.settings.http,
                    platform.stopping(),
                    grace,
                )
                .await;
            }
            None => platform.stopping().wait().await,
        }
        Ok::<_, anyhow::Error>(())
    };
    // A background task that fails (one that cannot start, say) stops the process: it must not go unnoticed.
    let outcome = tokio::select! {
        served = served => served,
        failed = first_failure(&mut tasks) => Err(failed),
    };
    platform.begin_shutdown();
    let _ = runner.await;
    while let Some(finished) = tasks.join_next().await {
        if let Ok(Err(error)) = finished {
            tracing::warn!(
                error = format!("{error:#}"),
                "background task failed while stopping"
            );
        }
    }
    platform.store.close().await;
    outcome
}

/// Waits for the first background task that fails or panics; never resolves while all are well.
async fn first_failure(tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>) -> anyhow::Error {
    while let Some(finished) = tasks.join_next().await {
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return error,
            Err(join) => return anyhow::anyhow!("a background task panicked: {join}"),
        }
    }
    std::future::pending().await
}
