//! Starting the real binary on a fresh database for one measurement.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Backend;

pub const DEVICE_KEY: &str = "bench-device-key-0123456789";

pub struct Target {
    pub binary: PathBuf,
    pub postgres: String,
}

/// An empty database of one backend (a SQLite file in a temporary directory, or a new PostgreSQL database),
/// removed by [`FreshDatabase::drop_database`].
pub struct FreshDatabase {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_database: Option<(String, String)>,
}

impl FreshDatabase {
    pub async fn create(target: &Target, backend: Backend) -> anyhow::Result<FreshDatabase> {
        let dir = tempfile::tempdir()?;
        let (url, pg_database) = match backend {
            Backend::Postgres => {
                let name = format!("tw_bench_{}", rand::random::<u32>());
                let admin = sqlx::PgPool::connect(&target.postgres).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                let base = target
                    .postgres
                    .rsplit_once('/')
                    .map_or(target.postgres.as_str(), |(b, _)| b);
                (
                    format!("{base}/{name}"),
                    Some((target.postgres.clone(), name)),
                )
            }
            _ => (
                format!("sqlite://{}/bench.sqlite3", dir.path().display()),
                None,
            ),
        };
        Ok(FreshDatabase {
            url,
            dir,
            pg_database,
        })
    }

    pub async fn drop_database(mut self) {
        if let Some((admin_url, name)) = self.pg_database.take()
            && let Ok(admin) = sqlx::PgPool::connect(&admin_url).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        }
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    pub pid: u32,
    /// The database it serves, for setting up what its pages would (e.g. a printer's address).
    pub database_url: String,
    database: Option<FreshDatabase>,
}

impl Server {
    /// Starts `tillwire serve --demo` with a fresh database of the chosen backend; returns once /healthz answers.
    pub async fn start(target: &Target, backend: Backend) -> anyhow::Result<(Server, Duration)> {
        Self::start_with(target, backend, &[]).await
    }

    /// Like [`Server::start`], with more arguments (`--config FILE`).
    pub async fn start_with(
        target: &Target,
        backend: Backend,
        extra: &[&str],
    ) -> anyhow::Result<(Server, Duration)> {
        let port = free_port()?;
        let mut args = vec![
            "serve".to_owned(),
            "--demo".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        Self::launch(target, backend, &args, port, "/healthz").await
    }

    /// `tillwire erp run PORT WORKSHOP admanager --erp-url ERP`: OilMat's routes on their own port.
    pub async fn start_erp(
        target: &Target,
        backend: Backend,
        workshop: &str,
        erp: &str,
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let args: Vec<String> = [
            "erp",
            "run",
            &port.to_string(),
            workshop,
            "admanager",
            "--erp-url",
            erp,
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        Ok(Self::launch(target, backend, &args, port, "/alive")
            .await?
            .0)
    }

    /// Runs the binary with `args` on a fresh database; returns once `ready` answers on `port`.
    async fn launch(
        target: &Target,
        backend: Backend,
        args: &[String],
        port: u16,
        ready: &str,
    ) -> anyhow::Result<(Server, Duration)> {
        let database = FreshDatabase::create(target, backend).await?;
        let url = database.url.clone();
        let started = Instant::now();
        let child = Command::new(&target.binary)
            .args(args)
            .args(["--database-url", &url])
            .arg("--data-dir")
            .arg(database.dir.path())
            .env("API_KEY", DEVICE_KEY)
            .env("RUST_LOG", "warn")
            .env("TILLWIRE_DAY_ROLLOVER_HOUR", "0")
            .env("TILLWIRE_TIMEZONE", "UTC")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        let base = format!("http://127.0.0.1:{port}");
        let server = Server {
            child,
            base,
            pid,
            database_url: url.clone(),
            database: Some(database),
        };
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(format!("{}{ready}", server.base)).send().await
                && response.status().is_success()
            {
                return Ok((server, started.elapsed()));
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "tillwire did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Resident memory of the server process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }

    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let _ = self.child.wait();
        if let Some(database) = self.database.take() {
            database.drop_database().await;
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?.port())
}

/// Today's business day as the server sees it (the bench runs it with rollover 0 in UTC).
pub fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}
