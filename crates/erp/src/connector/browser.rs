//! Chromium driven through its own chromedriver, started on a free loopback port with a fresh profile.
//!
//! chromedriver is started in its own process group, with `PR_SET_PDEATHSIG`: it dies with tillwire even on
//! `kill -9`, and Chromium, its child, ends with chromedriver's session. Dropping a [`Browser`] ends the session and
//! kills the group, so no Chromium is left behind by a task that panicked or a connector that was dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use thirtyfour::common::config::WebDriverConfig;
use thirtyfour::prelude::*;

/// chromedriver listens within a second or two; this much means it never will.
const DRIVER_STARTUP: Duration = Duration::from_secs(20);
const DRIVER_POLL: Duration = Duration::from_millis(25);

/// A quiet browser: no sandbox or GPU (containers), no `/dev/shm` (small in Docker), no background traffic.
const CHROMIUM_ARGS: &[&str] = &[
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Which chromedriver and Chromium to run, and whether Chromium shows a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserConfig {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
    pub headless: bool,
}

impl Default for BrowserConfig {
    /// `$CHROMEDRIVER`, else `/usr/bin/chromedriver`, else `chromedriver` on `PATH`; the same for Chromium with
    /// `$CHROMIUM` and `/usr/bin/chromium`; headless.
    fn default() -> Self {
        BrowserConfig {
            chromedriver: locate("CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver"),
            chromium: locate("CHROMIUM", "/usr/bin/chromium", "chromium"),
            headless: true,
        }
    }
}

/// `$variable` when set (a wrong path then fails the start, with its name), else `default` when it exists,
/// else the first `name` on `PATH`, else the bare name (which fails the start with a message saying so).
fn locate(variable: &str, default: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    if Path::new(default).is_file() {
        return PathBuf::from(default);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// One Chromium session with its chromedriver.
pub(super) struct Browser {
    /// `None` once the session was ended.
    driver: Option<WebDriver>,
    chromedriver: Child,
    port: u16,
    /// Chromium's profile and chromedriver's output, removed with the browser.
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a Chromium session; the error says what did not start and why.
    pub(super) async fn start(
        config: &BrowserConfig,
        (width, height): (u32, u32),
        page_timeout: Duration,
    ) -> Result<Browser, String> {
        for (what, path) in [
            ("chromedriver", &config.chromedriver),
            ("Chromium", &config.chromium),
        ] {
            if !path.is_file() {
                return Err(format!("{what} not found at {}", path.display()));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("tillwire-erp-browser-")
            .tempdir()
            .map_err(|error| format!("no temporary directory for the browser: {error}"))?;
        let log = File::create(dir.path().join("chromedriver.log"))
            .map_err(|error| format!("no log file for chromedriver: {error}"))?;
        let port =
            free_port().map_err(|error| format!("no free port for chromedriver: {error}"))?;
        let mut command = Command::new(&config.chromedriver);
        command
            .arg(format!("--port={port}"))
            // SEVERE only: at INFO chromedriver writes every command's parameters, typed passwords included.
            .arg("--log-level=SEVERE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .process_group(0);
        die_with_parent(&mut command);
        let chromedriver = command.spawn().map_err(|error| {
            format!(
                "could not run chromedriver ({}): {error}",
                config.chromedriver.display()
            )
        })?;
        // Built before anything else can fail, so that Drop stops chromedriver whatever happens next.
        let mut browser = Browser {
            driver: None,
            chromedriver,
            port,
            dir,
        };
        browser.wait_for_chromedriver().await?;

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&config.chromium.to_string_lossy())
            .map_err(|error| error.to_string())?;
        let window = format!("--window-size={width},{height}");
        let profile = format!(
            "--user-data-dir={}",
            browser.dir.path().join("profile").display()
        );
        let headless = config.headless.then_some("--headless=new");
        for arg in CHROMIUM_ARGS
            .iter()
            .copied()
            .chain(headless)
            .chain([window.as_str(), profile.as_str()])
        {
            caps.add_arg(arg).map_err(|error| error.to_string())?;
        }
        // The HTTP client gives up a little after chromedriver's own page-load limit, never before it.
        let client = WebDriverConfig::builder()
            .reqwest_timeout(page_timeout + Duration::from_secs(10))
            .build()
            .map_err(|error| error.to_string())?;
        let driver = WebDriver::new_with_config(format!("http://127.0.0.1:{port}"), caps, client)
            .await
            .map_err(|error| {
                format!(
                    "could not open a Chromium session ({}): {error}{}",
                    config.chromium.display(),
                    browser.output()
                )
            })?;
        let limited = driver.set_page_load_timeout(page_timeout).await;
        browser.driver = Some(driver);
        limited.map_err(|error| format!("could not set the page-load timeout: {error}"))?;
        Ok(browser)
    }

    async fn wait_for_chromedriver(&mut self) -> Result<(), String> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + DRIVER_STARTUP;
        loop {
            if let Ok(Some(status)) = self.chromedriver.try_wait() {
                return Err(format!(
                    "chromedriver exited at start ({status}){}",
                    self.output()
                ));
            }
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "chromedriver did not listen on {address} within {DRIVER_STARTUP:?}{}",
                    self.output()
                ));
            }
            tokio::time::sleep(DRIVER_POLL).await;
        }
    }

    /// What chromedriver printed, for a message about why it did not start.
    fn output(&self) -> String {
        let mut text = String::new();
        let _ = File::open(self.dir.path().join("chromedriver.log"))
            .and_then(|mut file| file.read_to_string(&mut text));
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            format!("; chromedriver said: {text}")
        }
    }

    pub(super) fn driver(&self) -> &WebDriver {
        self.driver
            .as_ref()
            .expect("a started browser has its session until it is quit")
    }

    /// Ends the session (chromedriver closes Chromium), then Drop stops chromedriver.
    pub(super) async fn quit(mut self) {
        if let Some(driver) = self.driver.take()
            && let Err(error) = driver.quit().await
        {
            tracing::warn!(%error, "ending the browser session failed");
        }
    }
}

impl Drop for Browser {
    /// Ends a session still open with a blocking request (thirtyfour's own drop-time quit races the kill below),
    /// then kills chromedriver's whole group, Chromium included should it still be there.
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            delete_session(self.port, &driver.session_id().to_string());
            let _ = driver.leak();
        }
        if let Ok(group) = i32::try_from(self.chromedriver.id()) {
            // SAFETY: kill(2) has no memory effects; the group is chromedriver's own, created at spawn.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

/// chromedriver gets SIGKILL when the thread that started it ends: a tokio worker, which lives as long as the
/// runtime, so in practice when tillwire ends, however it ends.
fn die_with_parent(command: &mut Command) {
    // SAFETY: getpid before the fork; prctl, getppid and _exit are async-signal-safe and touch no memory of ours.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before prctl took effect: nobody is left to stop chromedriver.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// `DELETE /session/<id>`, answered once Chromium has exited; best effort, and blocking because Drop cannot await.
/// Only the response head is read: chromedriver keeps the connection open whatever the request says.
fn delete_session(port: u16, session_id: &str) {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut response = Vec::new();
    let mut buffer = [0u8; 512];
    while !response.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
        }
    }
}
