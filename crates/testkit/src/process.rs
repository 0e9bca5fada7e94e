//! Child-process plumbing shared by the server and chromedriver wrappers.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Everything a child wrote to stdout and stderr, interleaved in arrival order.
pub(crate) type Captured = Arc<Mutex<String>>;

/// Copies `pipe` line by line into `captured`, echoing each line to stderr behind `prefix`.
///
/// The echo goes through `eprintln!`, which the test harness captures for the test thread that
/// spawned us, so a child's log shows up next to the failure of the test that started it.
/// Bytes are read raw and decoded lossily so one bad byte cannot stop the capture.
pub(crate) fn pump(
    pipe: impl Read + Send + 'static,
    captured: Captured,
    prefix: &'static str,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    eprintln!("{prefix}{text}");
                    let mut all = captured
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    all.push_str(text);
                    all.push('\n');
                }
            }
        }
    })
}

/// Reads the captured text, tolerating a poisoned lock (a panic elsewhere must not hide logs).
pub(crate) fn snapshot(captured: &Captured) -> String {
    captured
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Gives the pump threads a moment to drain what a just-exited child wrote, without hanging if
/// some grandchild still holds the pipe open.
pub(crate) fn drain(pumps: &[JoinHandle<()>]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !pumps.iter().all(JoinHandle::is_finished) {
        std::thread::sleep(Duration::from_millis(10));
    }
}
