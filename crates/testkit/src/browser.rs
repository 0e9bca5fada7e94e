//! A real headless Chromium, driven through chromedriver with thirtyfour.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use thirtyfour::prelude::*;

use crate::process::{self, Captured};

const MISSING: &str = "chromium and chromium-driver are required for browser tests; \
                       run the README test command which installs them";
const DRIVER_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Chromium flags for a quiet, deterministic browser: no GPU or sandbox (containers and CI),
/// no `/dev/shm` (small in Docker), no QUIC, and no background traffic to Google services.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

/// A headless Chromium session with its own chromedriver and a fresh profile.
///
/// Call [`Browser::quit`] at the end of a test. If the test panics first, `Drop` still closes
/// the browser session and kills chromedriver, so no Chromium processes are left behind.
#[derive(Debug)]
pub struct Browser {
    /// `None` only after `quit` or during `drop`.
    driver: Option<WebDriver>,
    chromedriver: Child,
    chromedriver_port: u16,
    pumps: Vec<JoinHandle<()>>,
    /// Chromium's `--user-data-dir`; a fresh one means no cookies or cache leak between tests.
    profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session.
    ///
    /// chromedriver comes from `$CHROMEDRIVER`, else `/usr/bin/chromedriver`, else `PATH`;
    /// Chromium from `$CHROMIUM`, else `/usr/bin/chromium`, else `PATH`. Panics if either is
    /// missing.
    pub async fn start() -> Browser {
        let chromedriver_path = chromedriver_binary();
        let chromium_path = chromium_binary();
        let profile = tempfile::Builder::new()
            .prefix("tillwire-chromium-")
            .tempdir()
            .expect("create a temporary Chromium profile directory");

        let port = crate::free_port();
        let mut chromedriver = Command::new(&chromedriver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "could not start {}: {error}; {MISSING}",
                    chromedriver_path.display()
                )
            });
        let output = Captured::default();
        let pumps = vec![
            process::pump(
                chromedriver.stdout.take().expect("stdout is piped"),
                output.clone(),
                "[chromedriver] ",
            ),
            process::pump(
                chromedriver.stderr.take().expect("stderr is piped"),
                output.clone(),
                "[chromedriver] ",
            ),
        ];
        // Built before the fallible steps so that a panic below still kills chromedriver.
        let mut browser = Browser {
            driver: None,
            chromedriver,
            chromedriver_port: port,
            pumps,
            profile,
        };
        browser.wait_for_chromedriver(&output).await;

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium_path.to_string_lossy())
            .expect("set the Chromium binary capability");
        for arg in CHROMIUM_ARGS {
            caps.add_arg(arg).expect("add a Chromium argument");
        }
        caps.add_arg(&format!(
            "--user-data-dir={}",
            browser.profile.path().display()
        ))
        .expect("add the Chromium profile argument");
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps).await.unwrap_or_else(|error| {
            process::drain(&browser.pumps);
            panic!(
                "could not open a Chromium session ({}) through chromedriver: {error}\nchromedriver output:\n{}",
                chromium_path.display(),
                process::snapshot(&output)
            )
        });
        browser.driver = Some(driver);
        browser
    }

    async fn wait_for_chromedriver(&mut self, output: &Captured) {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.chromedriver_port));
        let deadline = Instant::now() + DRIVER_STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.chromedriver.try_wait().expect("poll chromedriver") {
                process::drain(&self.pumps);
                panic!(
                    "chromedriver exited during startup ({status}); its output:\n{}",
                    process::snapshot(output)
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "chromedriver did not listen on {address} within {DRIVER_STARTUP_TIMEOUT:?}; its output:\n{}",
                    process::snapshot(output)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The WebDriver session, for `goto`, `find`, `execute` and the rest of thirtyfour.
    pub fn driver(&self) -> &WebDriver {
        self.driver
            .as_ref()
            .expect("the browser session is open until quit")
    }

    /// Closes the browser session cleanly; chromedriver is then stopped by `Drop`.
    pub async fn quit(mut self) {
        if let Some(driver) = self.driver.take()
            && let Err(error) = driver.quit().await
        {
            eprintln!("[testkit] closing the browser session failed: {error}");
        }
    }
}

impl Drop for Browser {
    /// Ends the session if `quit` was not called (typically a panicking test), then kills
    /// chromedriver.
    ///
    /// Killing chromedriver alone would orphan Chromium, and thirtyfour's own drop-time quit
    /// returns before the request completes inside a multi-threaded runtime, racing the kill.
    /// So the session is deleted here with a blocking, hand-written HTTP request, which works
    /// whatever runtime is (or is not) current, and thirtyfour is told not to repeat it.
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            delete_session(self.chromedriver_port, &driver.session_id().to_string());
            let _ = driver.leak();
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

/// `DELETE /session/<id>` to chromedriver, which answers once Chromium has exited. Best effort.
///
/// Waits for the response head only: chromedriver keeps the connection open regardless of
/// `Connection: close`, so reading to the end would sit out the whole read timeout.
fn delete_session(port: u16, session_id: &str) {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
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

fn chromedriver_binary() -> PathBuf {
    locate("CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")
}

fn chromium_binary() -> PathBuf {
    locate("CHROMIUM", "/usr/bin/chromium", "chromium")
}

/// `$variable` if set (and then it must exist), else the Debian path, else `name` on `PATH`,
/// matching how `scripts/test.sh` checks for the tools with `command -v`.
fn locate(variable: &str, default: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            panic!(
                "{} (from {variable}) does not exist: {MISSING}",
                path.display()
            );
        }
        return path;
    }
    if Path::new(default).is_file() {
        return PathBuf::from(default);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found (${variable}, {default}, PATH): {MISSING}"))
}
