//! The real `tillwire` binary as a child process.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::process::{self, Captured};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const TERMINATE_GRACE: Duration = Duration::from_secs(10);
/// What `tillwire serve` prints on stdout once it accepts connections.
const SERVING: &str = "tillwire is serving on ";

/// A running `tillwire serve` on 127.0.0.1, killed when dropped.
///
/// Uses `std::process` rather than tokio's so that `Drop` can kill and reap the child
/// synchronously, whatever runtime (if any) is current. To test a restart, stop this one and
/// start a new `ServerProcess` on the same database, optionally with [`Self::start_on_port`].
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    port: u16,
    output: Captured,
    pumps: Vec<JoinHandle<()>>,
    /// Set once the child has been reaped, so we never signal a pid the OS may have reused.
    status: Option<ExitStatus>,
}

impl ServerProcess {
    /// Runs `<binary> serve --listen 127.0.0.1:<free port> <args...>` and waits until
    /// `/healthz` answers 200. Panics, with everything the server printed, if it exits or is
    /// not healthy within 30 s.
    pub async fn start(
        binary: impl AsRef<Path>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> ServerProcess {
        Self::start_on_port(binary, crate::free_port(), args, envs).await
    }

    /// Like [`Self::start`] on a given port, e.g. to restart on the port a browser already uses.
    pub async fn start_on_port(
        binary: impl AsRef<Path>,
        port: u16,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> ServerProcess {
        let binary = binary.as_ref();
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(&listen)
            .args(args)
            // Defaults first so `envs` can override them. NO_COLOR keeps ANSI escapes out of
            // the captured log, which tests search with plain string matching.
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("could not start {} serve: {error}", binary.display()));

        let output = Captured::default();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let pumps = vec![
            process::pump(stdout, output.clone(), "[tillwire] "),
            process::pump(stderr, output.clone(), "[tillwire] "),
        ];
        // Built before waiting so that a panic below still kills the child via Drop.
        let mut server = ServerProcess {
            child,
            port,
            output,
            pumps,
            status: None,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&mut self) {
        let url = format!("{}/healthz", self.base_url());
        // No idle connection is kept: a test that counts the server's connections starts from none.
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build the health-check HTTP client");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the tillwire process") {
                self.status = Some(status);
                process::drain(&self.pumps);
                panic!(
                    "tillwire exited during startup ({status}); its output:\n{}",
                    self.output()
                );
            }
            let last = match client.get(&url).send().await {
                // The line printed once serving follows the start-up banners on stdout, so once it has been read,
                // so have they.
                Ok(response)
                    if response.status() == reqwest::StatusCode::OK
                        && self.output().contains(SERVING) =>
                {
                    return;
                }
                Ok(response) if response.status() == reqwest::StatusCode::OK => {
                    format!("HTTP 200, but no {SERVING:?} line read yet")
                }
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                panic!(
                    "tillwire did not answer 200 on {url} within {STARTUP_TIMEOUT:?} (last: {last}); its output:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id (to read its `/proc` entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the server has printed so far (stdout and stderr, one line per line).
    pub fn output(&self) -> String {
        process::snapshot(&self.output)
    }

    /// The generated password of the first administrator: printed once as `Password: <password>`
    /// at a terminal; otherwise (as here, where output is a pipe) in the 0600 file the server
    /// names with `Its password is in <file> (`.
    pub fn admin_password(&self) -> Option<String> {
        let output = self.output();
        password_in(&output).or_else(|| {
            let file = password_file_in(&output)?;
            Some(std::fs::read_to_string(file).ok()?.trim().to_owned())
        })
    }

    /// Kills the server with SIGKILL (what `Child::kill` sends on Unix) and reaps it: a crash,
    /// with no chance to clean up.
    pub fn kill9(&mut self) {
        if self.status.is_some() {
            return;
        }
        let _ = self.child.kill();
        self.status = Some(self.child.wait().expect("reap the killed tillwire process"));
    }

    /// Asks the server to shut down with SIGTERM and returns its exit status; SIGKILLs it if it
    /// is still running after 10 s. Sends the signal through `kill(1)` to avoid a libc/nix
    /// dependency for one call.
    pub fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        if let Some(status) = self.child.try_wait().expect("poll the tillwire process") {
            self.status = Some(status);
            return status;
        }
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now()
            + if sent {
                TERMINATE_GRACE
            } else {
                Duration::ZERO
            };
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the tillwire process") {
                self.status = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "[testkit] tillwire ignored SIGTERM for {TERMINATE_GRACE:?}; sending SIGKILL"
                );
                self.kill9();
                return self.status.expect("kill9 reaps the process");
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// First whitespace-delimited token after the first `Password: `, on the same line.
fn password_in(output: &str) -> Option<String> {
    const MARKER: &str = "Password: ";
    let start = output.find(MARKER)? + MARKER.len();
    output[start..]
        .lines()
        .next()?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// The file named after the first `Its password is in `, up to ` (`.
fn password_file_in(output: &str) -> Option<&str> {
    const MARKER: &str = "Its password is in ";
    let start = output.find(MARKER)? + MARKER.len();
    output[start..].lines().next()?.split(" (").next()
}

#[cfg(test)]
mod tests {
    use super::{password_file_in, password_in};

    #[test]
    fn finds_the_password_file() {
        let log = "First admin created. Username: admin  Its password is in /tmp/d x/first-admin-password (readable by this user only)\n";
        assert_eq!(password_file_in(log), Some("/tmp/d x/first-admin-password"));
        assert_eq!(password_file_in("Username: admin"), None);
    }

    #[test]
    fn finds_the_first_password() {
        let log = "INFO starting\n  Username: admin  Password: s3cretToken42 (shown once)\nPassword: later\n";
        assert_eq!(password_in(log).as_deref(), Some("s3cretToken42"));
        assert_eq!(password_in("Password: last"), Some("last".to_owned()));
        assert_eq!(password_in("no password here"), None);
        assert_eq!(password_in("Password: "), None);
        assert_eq!(password_in("Password:\nnext line"), None);
        assert_eq!(password_in("Password: \nnext line"), None);
    }
}
