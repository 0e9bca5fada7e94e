//! Self-tests: the helpers against the real PostgreSQL, SQLite and Chromium they wrap.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Backend, Browser, ServerProcess, TestDatabase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `SELECT 1` through the URL the application would get. Defined at the top level so the
/// `both_backends!` test below also checks that `use super::*` reaches the file's items.
async fn select_one(db: &TestDatabase) -> i64 {
    match db.backend() {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(db.url())
                .expect("sqlite url")
                .create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&options)
                .await
                .expect("connect to sqlite");
            sqlx::query_scalar::<_, i64>("SELECT 1")
                .fetch_one(&mut conn)
                .await
                .expect("SELECT 1")
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(db.url())
                .await
                .expect("connect to postgres");
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&mut conn)
                .await
                .expect("SELECT 1")
                .into()
        }
    }
}

tillwire_testkit::both_backends!(database_answers_select_1, |db| async move {
    assert_eq!(select_one(&db).await, 1);
});

tillwire_testkit::both_backends!(backend_matches_url_scheme, |db| async move {
    let scheme = match db.backend() {
        Backend::Sqlite => "sqlite://",
        Backend::Postgres => "postgres://",
    };
    assert!(
        db.url().starts_with(scheme),
        "{} for {:?}",
        db.url(),
        db.backend()
    );
});

#[tokio::test]
async fn sqlite_directory_is_removed_on_drop() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    assert_eq!(select_one(&db).await, 1);
    let file = db
        .url()
        .strip_prefix("sqlite://")
        .expect("sqlite:// url")
        .to_owned();
    let dir = std::path::Path::new(&file)
        .parent()
        .expect("file has a directory")
        .to_owned();
    assert!(
        std::path::Path::new(&file).exists(),
        "the connection created {file}"
    );
    drop(db);
    assert!(!dir.exists(), "{} should be gone", dir.display());
}

#[tokio::test]
async fn postgres_database_is_fresh_and_dropped_afterwards() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let name = db
        .url()
        .rsplit('/')
        .next()
        .expect("database in url")
        .to_owned();
    assert!(name.starts_with("tw_test_"), "{name}");

    let mut conn = PgConnection::connect(db.url())
        .await
        .expect("connect to the test database");
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, name);
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a new database is empty");

    // Still connected: the drop must force the connection out rather than fail.
    drop(db);
    let admin_url = db_admin_url();
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connect as admin");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "{name} should have been dropped");
}

fn db_admin_url() -> String {
    std::env::var("TILLWIRE_TEST_PG_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test]
#[should_panic(expected = "serve --listen 127.0.0.1:")]
async fn server_that_exits_at_startup_fails_loudly_with_its_output() {
    // `echo` stands in for a binary that dies at startup: it prints its arguments and exits,
    // and that output must appear in the panic message.
    ServerProcess::start("echo", &["--extra"], &[]).await;
}

/// Serves `page` to every request on a loopback port; returns the page's URL.
async fn serve_page(page: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head; this page server ignores what was asked for.
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_reads_a_served_page() {
    let url = serve_page(
        "<!doctype html><html><head><title>Testkit page</title></head>\
         <body><h1 id=\"greeting\">Привет, tillwire</h1>\
         <script>document.body.insertAdjacentHTML('beforeend', '<p id=\"js\">scripted</p>')</script></body></html>",
    )
    .await;
    let browser = Browser::start().await;
    let driver = browser.driver();
    driver.goto(&url).await.expect("open the page");
    assert_eq!(driver.title().await.unwrap(), "Testkit page");
    assert_eq!(
        driver
            .find(By::Id("greeting"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Привет, tillwire"
    );
    assert_eq!(
        driver
            .find(By::Id("js"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "scripted",
        "JavaScript runs"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_dropped_without_quit_stops_chromedriver() {
    let browser = Browser::start().await;
    let server_url = browser.driver().server_url().clone();
    let port = server_url.port().expect("chromedriver url has a port");
    drop(browser);
    // Drop reaps chromedriver, so its port must be closed right away.
    let refused = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(1),
    );
    assert!(
        refused.is_err(),
        "chromedriver on port {port} should be gone"
    );
}

// Rust 2024 async closures work too, not only `|db| async move { … }`.
tillwire_testkit::both_backends!(async_closure_syntax_works, async move |db| {
    assert_eq!(select_one(&db).await, 1);
});
