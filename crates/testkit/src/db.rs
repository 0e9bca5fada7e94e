//! Throwaway databases: a fresh SQLite file or a fresh PostgreSQL database per test.

use rand::Rng;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// Which database engine a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Admin connection used to create and drop the per-test PostgreSQL databases.
const PG_URL_VAR: &str = "TILLWIRE_TEST_PG_URL";
const PG_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// An empty database that exists for as long as this value does.
///
/// Tests get a URL and hand it to the application, which runs its own migrations, so every test
/// starts from the same empty state and tests can run in parallel.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: String,
    /// Holds the SQLite directory; deleted on drop.
    _dir: Option<TempDir>,
    /// PostgreSQL database to drop on drop.
    pg: Option<PgDatabase>,
}

#[derive(Debug)]
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database.
    ///
    /// SQLite: a URL for a file in a fresh temporary directory; the file itself is left for the
    /// application to create. PostgreSQL: a new database `tw_test_<random>` on the server named
    /// by `TILLWIRE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
    ///
    /// Panics if PostgreSQL is unreachable: the suite must not pass without having tested it.
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("tillwire-test-")
                    .tempdir()
                    .expect("create a temporary directory for the SQLite database");
                let url = format!("sqlite://{}", dir.path().join("test.sqlite3").display());
                TestDatabase {
                    backend,
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var(PG_URL_VAR)
                    .ok()
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| PG_URL_DEFAULT.to_owned());
                let name = random_database_name();
                let url = with_database(&admin_url, &name);
                let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
                    panic!("PostgreSQL is required for the tests ({PG_URL_VAR}={admin_url}): {error}")
                });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|error| {
                        panic!("could not create test database {name} via {admin_url}: {error}")
                    });
                let _ = admin.close().await;
                TestDatabase {
                    backend,
                    url,
                    _dir: None,
                    pg: Some(PgDatabase { admin_url, name }),
                }
            }
        }
    }

    /// Connection URL for the application (`sqlite://…` or `postgres://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDatabase {
    /// Drops the PostgreSQL database, best effort.
    ///
    /// `Drop` often runs inside the test's tokio runtime, where blocking on a future panics, so
    /// the cleanup gets its own thread and its own small runtime. `WITH (FORCE)` disconnects
    /// pools the test or a killed server left behind. Failures are ignored: a leftover
    /// `tw_test_*` database is harmless and must not turn a passing test into a failing one.
    fn drop(&mut self) {
        let Some(PgDatabase { admin_url, name }) = self.pg.take() else {
            return;
        };
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// `tw_test_` plus 12 random lowercase letters and digits: a valid unquoted identifier, unique
/// enough for parallel test runs, and easy to spot (and clean up) if a drop never ran.
fn random_database_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("tw_test_{suffix}")
}

/// The admin URL with its database name replaced, keeping host, user and query parameters.
fn with_database(admin_url: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(admin_url)
        .unwrap_or_else(|error| panic!("{PG_URL_VAR}={admin_url} is not a valid URL: {error}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_a_plain_identifier() {
        let name = random_database_name();
        assert_eq!(name.len(), "tw_test_".len() + 12);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
    }

    #[test]
    fn url_keeps_everything_but_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "tw_test_x"),
            "postgres://postgres@127.0.0.1:5432/tw_test_x"
        );
        assert_eq!(
            with_database("postgres://u:p@db:6543/test?sslmode=disable", "tw_test_x"),
            "postgres://u:p@db:6543/tw_test_x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@db", "tw_test_x"),
            "postgres://u@db/tw_test_x"
        );
    }
}
