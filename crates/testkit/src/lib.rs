//! Test helpers for tillwire integration tests.
//!
//! Everything here drives real components: a real SQLite file or PostgreSQL database, the real
//! `tillwire` binary as a child process, and a real headless Chromium through chromedriver.
//! Nothing is mocked and nothing is skipped: a missing PostgreSQL server or browser makes the
//! test panic with a message saying what to install, so a green run always means "tested".

mod browser;
mod db;
mod http;
mod process;
mod server;
mod setretail;

pub use browser::Browser;
pub use db::{Backend, TestDatabase};
pub use http::{csrf_from_html, http_client, login};
pub use server::ServerProcess;
pub use setretail::{Purchase, SetRetailDatabase};

/// Re-exported so tests use the same versions as these helpers without extra dependencies
/// (and without thirtyfour's default TLS features).
pub use {reqwest, thirtyfour};

/// Serves `router` in this process on a free loopback port (with the client's address, as `serve` gives it);
/// returns its base URL and the server task (abort it to stop).
pub async fn serve_router(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (base, server)
}

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The listener is dropped before returning, so another process could in theory grab the port
/// first; in practice the kernel does not hand out the same ephemeral port again right away.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local address of the port probe")
        .port()
}

/// How long [`eventually`] waits: a bound for broken code, never a speed requirement.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(90);

/// Polls `check` (every 50 ms) until it holds; panics with `what` if it does not within [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "gave up waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs one `both_backends!` test body. A plain function (rather than calling the closure
/// in place) so that the `FnOnce(TestDatabase)` bound tells the compiler the type of `db`.
#[doc(hidden)]
pub async fn __run_with_database<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TestDatabase::new(backend).await;
    body(db).await;
}

/// Defines the same test for SQLite and PostgreSQL.
///
/// ```no_run
/// tillwire_testkit::both_backends!(import_works, |db| async move {
///     assert!(db.url().contains("test"));
/// });
/// ```
///
/// (or with `async move |db| { … }`) expands to a module `import_works` holding two
/// `#[tokio::test]`s, `sqlite` and `postgres`, so they show up as `import_works::sqlite` and
/// `import_works::postgres` and can be filtered by either name. The module starts with `use super::*;`, so the body sees the test file's
/// imports. The calling crate needs `tokio` (features `macros`, `rt-multi-thread`) as a
/// dev-dependency, as for any `#[tokio::test]`; the runtime is multi-threaded because the
/// server under test and the test body often wait on each other.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::__run_with_database($crate::Backend::Sqlite, $body).await
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::__run_with_database($crate::Backend::Postgres, $body).await
            }
        }
    };
}
