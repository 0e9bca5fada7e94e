//! `tillwire`: the command line. Everything else lives in the area crates; this wires them together.

use tillwire::app;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tillwire_platform::config::{Overrides, Settings};

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
    /// Settings file (default: ./tillwire.toml when present).
    #[arg(long, global = true, env = "TILLWIRE_CONFIG")]
    config: Option<PathBuf>,
    /// Database: sqlite://PATH (default: DATA_DIR/tillwire.sqlite3) or postgres://…
    #[arg(long, global = true, env = "TILLWIRE_DATABASE_URL")]
    database_url: Option<String>,
    /// Where the embedded database and other files live (default: ./data).
    #[arg(long, global = true, env = "TILLWIRE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, seed what is missing, and serve the web app, API and screens.
    Serve {
        /// Address to listen on (default 127.0.0.1:8000).
        #[arg(long, env = "TILLWIRE_LISTEN")]
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
    /// Ticket printers.
    #[command(subcommand)]
    Print(PrintCommand),
}

#[derive(Subcommand)]
enum PrintCommand {
    /// Print a test page on PRINTER (its id or name) now, without the queue.
    Test { printer: String },
}

fn main() -> std::process::ExitCode {
    Settings::load_dotenv();
    let cli = Cli::parse();
    tillwire_platform::telemetry::init_logging();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        config_file: cli.common.config.clone(),
        listen,
        database_url: cli.common.database_url.clone(),
        data_dir: cli.common.data_dir.clone(),
    };
    let settings = match Settings::load(&overrides) {
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
            Command::Print(PrintCommand::Test { printer }) => {
                app::print_test(settings, &printer).await
            }
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
