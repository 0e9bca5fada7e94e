//! `tillwire`: the command line. Everything else lives in the area crates; this wires them together.

use tillwire::app;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tillwire_platform::area;
use tillwire_platform::config::{Overrides, Settings, Sources};

#[derive(Parser)]
#[command(
    name = "tillwire",
    version,
    about = "Receipts in; queue numbers, tickets, alerts and ERP lines out."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Settings file (default: $TILLWIRE_CONFIG, else ./tillwire.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database: sqlite://PATH (default: $TILLWIRE_DATABASE_URL, else DATA_DIR/tillwire.sqlite3) or postgres://…
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Where the embedded database and other files live (default: $TILLWIRE_DATA_DIR, else ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, seed what is missing, and serve the web app, API and screens.
    Serve {
        /// Address to listen on (default: $TILLWIRE_LISTEN, else 127.0.0.1:8000).
        #[arg(long)]
        listen: Option<String>,
        /// Also load ELQ's five demo wares and issue a device key, so a receipt can be posted at once.
        #[arg(long)]
        demo: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Migrate and seed statuses, flows, the default unit with its stations, printer and registers, and the
    /// first admin (its password is printed once).
    Init,
    /// Load ELQ's five demo wares into the default unit.
    Demo,
    /// Purge finished orders older than the retention period (TILLWIRE_RETENTION_DAYS, default 30).
    Maintenance,
    /// Collect sales from cash registers and deliver them to an import endpoint.
    #[command(subcommand)]
    Collect(CollectCommand),
    /// Ticket printers.
    #[command(subcommand)]
    Print(PrintCommand),
    /// The unit-routes directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// The UKM 5 register monitor.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// The ERP bridge (replaces oilmat-erp).
    #[command(subcommand)]
    Erp(ErpCommand),
    /// The iiko intake.
    #[command(subcommand)]
    Iiko(IikoCommand),
    /// Service tokens for programs that call tillwire's APIs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// People who sign in: for an operator who lost the admin's password.
    #[command(subcommand)]
    User(UserCommand),
    /// Simulators of the outside systems tillwire talks to, for trying it out and for tests.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Subcommand)]
enum SimCommand {
    /// UKM 5 registers' monitoring API: register N answers under http://ADDR/r/N/api/v1/status/…; reports every
    /// register that gets two requests within a second (the vendor's limit).
    Ukm5 {
        /// How many registers (1..=N).
        #[arg(long, default_value_t = 5)]
        registers: u32,
        #[arg(long, default_value = "127.0.0.1:8405")]
        listen: String,
        /// How values are written: plain-iso, plain-space, json-scalar, json-object or epoch-ms.
        #[arg(long, default_value = "plain-space")]
        format: tillwire_monitor::sim::BodyFormat,
        /// A scenario script to play (lines of `SECONDS REGISTER ACTION [VALUE]`: open, scan, close, login ID,
        /// logout, paper-out, paper-in, ofd N, vision-off, vision-on, weight KG, fault none|drop|hang|500|slow MS|
        /// flapping MS, advance MINUTES; `*` for every register).
        #[arg(long)]
        scenario: Option<std::path::PathBuf>,
    },
    /// The Telegram Bot API: methods under http://ADDR/bot{TOKEN}/{method}, what each chat received at
    /// http://ADDR/sim/; reports every send that ignored a retry_after.
    Telegram {
        #[arg(long, default_value = "127.0.0.1:8406")]
        listen: String,
        /// The bot's token, as a client would put it in the URL.
        #[arg(long, default_value = tillwire_notify::sim::DEFAULT_TOKEN)]
        token: String,
    },
    /// A workshop ERP's web UI, as oilmat-erp drives it: AD Manager (`--type admanager`, login at /login) or
    /// Au2Office (`--type au2office`, login at /Account/Login); what was added at http://ADDR/sim/.
    Erp {
        /// admanager or au2office.
        #[arg(long = "type")]
        kind: tillwire_erp::sim::ErpType,
        #[arg(long, default_value = "127.0.0.1:8407")]
        listen: String,
        /// The login's user name.
        #[arg(long, default_value = tillwire_erp::sim::DEFAULT_USERNAME)]
        username: String,
        /// The login's password; without one a random password is made and printed.
        #[arg(long, env = "TILLWIRE_SIM_ERP_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// iikoCloud's API (every method a POST under http://ADDR/api/…, tokens for the api login `sim-api-login`,
    /// webhooks to the URL set with update_settings); its state and a script box at http://ADDR/sim/.
    IikoCloud {
        #[arg(long, default_value = "127.0.0.1:8408")]
        listen: String,
        /// A script to play (org, terminal, table, product, open, delivery, add, delete, status, item-status,
        /// wait; see `tillwire_iiko::sim::cloud`); without one, the demo pizzeria with no orders yet.
        #[arg(long)]
        script: Option<std::path::PathBuf>,
    },
    /// iikoServer's REST API under http://ADDR/resto/api/ (auth with the SHA-1 of the password, one licence
    /// slot, OLAP v2 SALES, the events journal); state and overlapping requests at http://ADDR/resto/sim/.
    IikoServer {
        #[arg(long, default_value = "127.0.0.1:8409")]
        listen: String,
        #[arg(long, default_value = "tillwire")]
        login: String,
        /// The password; without one a random password is made and printed.
        #[arg(long, env = "TILLWIRE_SIM_IIKO_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// A script to run first (department, open, add, delete, pay, remove, sale, wait; see `tillwire_iiko::sim::server`);
        /// without one, the demo's three days of sales.
        #[arg(long)]
        script: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from standard input when it is not a terminal; otherwise one is
    /// generated and printed once.
    Add {
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
    },
    /// Set a user's password (read as for `add`) and end their sessions.
    Password { name: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token and print it once (only its hash is kept).
    Issue {
        /// Who uses it, e.g. "notifications-router".
        #[arg(long)]
        name: String,
        /// `admin` (every area's API), an area's name (`directory`, …), or `device` (with --unit).
        #[arg(long)]
        scope: String,
        /// The unit a device key acts for.
        #[arg(long)]
        unit: Option<i64>,
    },
    /// List tokens: id, scope, name, prefix, state (never the token).
    List,
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Import regions, departments, units, report types, roles and Telegram chats from a JSON file
    /// (idempotent; all or nothing).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum MonitorCommand {
    /// Add or update registers from a CSV file with the header `unit,name,url,timezone` (optionally `,region`;
    /// an empty unit is the default one, an empty zone the install's). All or nothing: every problem is reported
    /// by line and nothing is written unless there is none.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum IikoCommand {
    /// iikoCloud's webhooks.
    #[command(subcommand)]
    Webhooks(IikoWebhooksCommand),
}

#[derive(Subcommand)]
enum IikoWebhooksCommand {
    /// Tells iikoCloud, for every connection with a webhook token, to send its orders' events to
    /// URL/iiko/webhook/{organization} with that token, and reads the settings back.
    Setup {
        /// The address iikoCloud reaches tillwire at, e.g. https://hub.example.com
        #[arg(long)]
        url: String,
    },
}

#[derive(Subcommand)]
enum ErpCommand {
    /// One workshop's integration on its own port, as `python app.py PORT WORKSHOP TYPE` ran it: OilMat's routes
    /// at http://127.0.0.1:PORT/, the state in the data directory; `PUT /kill` ends the process.
    Run {
        port: u16,
        workshop: String,
        /// admanager or au2office.
        #[arg(value_name = "TYPE")]
        erp_type: tillwire_erp::ErpType,
        /// The ERP's address (default: the real one), e.g. a simulator: tillwire sim erp.
        #[arg(long)]
        erp_url: Option<String>,
    },
    /// Carry oilmat-erp's order history over from its workshop_logs/ directory (each
    /// <workshop>/order_status.db) or one workshop's directory. Importing twice adds nothing.
    ImportOilmat {
        dir: PathBuf,
        /// The ERP of workshops that have no integration yet (they are created, parked, without a login).
        #[arg(long = "type")]
        erp_type: Option<tillwire_erp::ErpType>,
    },
}

#[derive(Subcommand)]
enum PrintCommand {
    /// Print a test page on PRINTER (its id or name) now, without the queue.
    Test { printer: String },
}

#[derive(Subcommand)]
enum CollectCommand {
    /// Read Set Retail 10 register databases listed in ELQ's main.json (`--config main.json`) and post every sale,
    /// once, in commit order, to its `api` URL. Cursors are kept in DATA_DIR/collector.sqlite3.
    Setretail {
        /// Sales read per query while catching up.
        #[arg(long, default_value_t = tillwire_collector::DEFAULT_BATCH)]
        batch: u32,
        /// A register seen for the first time starts this many hours back (default: the start of today).
        #[arg(long)]
        lookback_hours: Option<u32>,
        /// Each pass also re-reads this many minutes behind the cursor for sales not yet sent (0: off).
        #[arg(long, default_value_t = 10)]
        overlap_minutes: u32,
        /// Also serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9187).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tillwire_platform::telemetry::init_logging();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    // For `collect setretail`, `--config` names ELQ's main.json, not tillwire.toml.
    let collecting = matches!(cli.command, Command::Collect(_));
    let overrides = Overrides {
        config_file: cli.common.config.clone().filter(|_| !collecting),
        listen,
        database_url: cli.common.database_url.clone(),
        data_dir: cli.common.data_dir.clone(),
    };
    let sources = Sources::process(overrides, area::variables(app::AREAS));
    let settings = match Settings::load(sources).and_then(|settings| {
        area::check_settings(app::AREAS, &settings)?;
        Ok(settings)
    }) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("tillwire: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { demo, .. } => app::serve(settings, demo).await,
            Command::Migrate => app::migrate(settings).await,
            Command::Init => app::init(settings).await,
            Command::Demo => app::demo(settings).await,
            Command::Maintenance => app::maintenance(settings).await,
            Command::Collect(CollectCommand::Setretail {
                batch,
                lookback_hours,
                overlap_minutes,
                metrics_listen,
            }) => {
                let options = tillwire_collector::cli::CliOptions {
                    main_json: Default::default(),
                    batch,
                    lookback_hours,
                    overlap: tillwire_collector::config::Overlap::minutes(Some(overlap_minutes)),
                    metrics_listen,
                };
                app::collect_setretail(settings, cli.common.config, options).await
            }
            Command::Sim(SimCommand::Ukm5 {
                registers,
                listen,
                format,
                scenario,
            }) => app::sim_ukm5(&settings, registers, &listen, format, scenario.as_deref()).await,
            Command::Sim(SimCommand::Erp {
                kind,
                listen,
                username,
                password,
            }) => app::sim_erp(kind, &listen, &username, password).await,
            Command::Sim(SimCommand::IikoCloud { listen, script }) => {
                app::sim_iiko_cloud(&listen, script.as_deref()).await
            }
            Command::Sim(SimCommand::IikoServer {
                listen,
                login,
                password,
                script,
            }) => app::sim_iiko_server(&listen, &login, password, script.as_deref()).await,
            Command::Sim(SimCommand::Telegram { listen, token }) => {
                app::sim_telegram(&listen, &token).await
            }
            Command::Print(PrintCommand::Test { printer }) => {
                app::print_test(settings, &printer).await
            }
            Command::Directory(DirectoryCommand::Import { file }) => {
                app::directory_import(settings, &file).await
            }
            Command::Monitor(MonitorCommand::Import { file }) => {
                app::monitor_import(settings, &file).await
            }
            Command::Erp(ErpCommand::Run {
                port,
                workshop,
                erp_type,
                erp_url,
            }) => app::erp_run(settings, port, &workshop, erp_type, erp_url.as_deref()).await,
            Command::Erp(ErpCommand::ImportOilmat { dir, erp_type }) => {
                app::erp_import(settings, &dir, erp_type).await
            }
            Command::Iiko(IikoCommand::Webhooks(IikoWebhooksCommand::Setup { url })) => {
                app::iiko_webhooks_setup(settings, &url).await
            }
            Command::Token(TokenCommand::Issue { name, scope, unit }) => {
                app::token_issue(settings, &name, &scope, unit).await
            }
            Command::Token(TokenCommand::List) => app::token_list(settings).await,
            Command::User(UserCommand::Add { name, role }) => {
                app::user_add(settings, &name, &role).await
            }
            Command::User(UserCommand::Password { name }) => {
                app::user_password(settings, &name).await
            }
            Command::Token(TokenCommand::Revoke { id }) => app::token_revoke(settings, id).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tillwire: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
