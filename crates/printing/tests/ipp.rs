//! A real IPP printer: `ippeveprinter` (Debian `cups-ipp-utils`) on loopback receives the ticket jobs. It needs
//! DNS-SD, so the test runs a private D-Bus and an Avahi daemon restricted to the loopback interface.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PIZZA, eventually};
use ipp::model::DelimiterTag;
use ipp::operation::IppOperation;
use ipp::operation::builder::IppOperationBuilder;
use ipp::parser::IppParser;

const LIMIT: Duration = Duration::from_secs(60);

/// Child processes killed (and reaped) on drop, youngest first.
struct Daemons {
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn executable(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("{name} is required: apt-get install cups-ipp-utils avahi-daemon dbus")
        })
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Daemons {
    /// D-Bus, then Avahi on `lo` only (no multicast leaves the machine).
    fn dns_sd() -> Daemons {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("bus");
        let conf = dir.path().join("avahi.conf");
        std::fs::write(
            &conf,
            "[server]\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=lo\nenable-dbus=yes\n[wide-area]\nenable-wide-area=no\n[publish]\npublish-workstation=no\npublish-hinfo=no\n",
        )
        .unwrap();
        let mut daemons = Daemons {
            children: Vec::new(),
            dir,
        };
        let dbus = Command::new(executable("dbus-daemon"))
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address=unix:path={}", bus.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        daemons.children.push(dbus);
        wait_for("dbus-daemon", || bus.exists());
        let log = daemons.dir.path().join("avahi.log");
        let avahi = Command::new(executable("avahi-daemon"))
            .args(["--no-drop-root", "--no-chroot", "--no-rlimits", "-f"])
            .arg(&conf)
            .env("DBUS_SYSTEM_BUS_ADDRESS", daemons.bus())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start avahi-daemon");
        daemons.children.push(avahi);
        wait_for("avahi-daemon", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Server startup complete"))
        });
        daemons
    }

    fn bus(&self) -> String {
        format!("unix:path={}", self.dir.path().join("bus").display())
    }

    /// An IPP Everywhere printer taking `formats`, keeping received documents in `spool`.
    fn printer(&mut self, name: &str, formats: &str, spool: &Path) -> u16 {
        let port = tillwire_testkit::free_port();
        let printer = Command::new(executable("ippeveprinter"))
            .args(["-p", &port.to_string(), "-k", "-f", formats, "-d"])
            .arg(spool)
            .arg(name)
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ippeveprinter");
        self.children.push(printer);
        wait_for("ippeveprinter", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        port
    }
}

/// `job-state` of job `id` (9 = completed).
async fn job_state(port: u16, id: i32) -> Option<i32> {
    let uri: http::Uri = format!("ipp://127.0.0.1:{port}/ipp/print").parse().unwrap();
    let request = IppOperationBuilder::get_job_attributes(uri, id)
        .build()
        .ok()?
        .into_ipp_request();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut request.into_read(), &mut body).ok()?;
    let reply = tillwire_testkit::reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/ipp/print"))
        .header("content-type", "application/ipp")
        .body(body)
        .send()
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let reply = IppParser::new(Cursor::new(reply)).parse().ok()?;
    let state = reply
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .find_map(|g| g.get("job-state").map(|a| a.value().to_string()))?;
    state.parse().ok()
}

/// The one document the printer kept.
fn spooled(spool: &Path) -> Option<Vec<u8>> {
    let entry = std::fs::read_dir(spool)
        .ok()?
        .flatten()
        .find(|e| e.path().is_file())?;
    std::fs::read(entry.path()).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ipp_printers_get_a_pdf_or_raw_escpos() {
    let mut daemons = Daemons::dns_sd();
    let pdf_spool = tempfile::tempdir().unwrap();
    let raw_spool = tempfile::tempdir().unwrap();
    let pdf_port = daemons.printer(
        "Kitchen57",
        "application/pdf,application/octet-stream",
        pdf_spool.path(),
    );
    let raw_port = daemons.printer("Raw80", "application/vnd.cups-raw", raw_spool.path());

    let db = tillwire_testkit::TestDatabase::new(tillwire_testkit::Backend::Sqlite).await;
    let app = common::start(&db, |_| {}).await;
    app.set_printer_address(&format!("ipp://127.0.0.1:{pdf_port}/ipp/print"))
        .await;
    app.import(1, 1, &[(PIZZA, 2.0)]).await;

    eventually("the IPP job completes", LIMIT, || async {
        (job_state(pdf_port, 1).await == Some(9)).then_some(())
    })
    .await;
    let pdf = eventually("the printer keeps the document", LIMIT, || async {
        spooled(pdf_spool.path())
    })
    .await;
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.starts_with("%PDF-"), "a PDF for a driver-based queue");
    // 57 × 120 mm in points.
    assert!(
        text.contains("/MediaBox [0 0 161.57 340.16]"),
        "page size: {}",
        &text[..text.len().min(600)]
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM jobs WHERE state = 'done'")
            .await,
        1
    );

    // A queue that takes only raw data gets the ESC/POS stream.
    app.set_printer_address(&format!("ipp://127.0.0.1:{raw_port}/ipp/print"))
        .await;
    app.import(1, 2, &[(PIZZA, 1.0)]).await;
    eventually("the raw job completes", LIMIT, || async {
        (job_state(raw_port, 1).await == Some(9)).then_some(())
    })
    .await;
    let raw = eventually("the raw printer keeps the document", LIMIT, || async {
        spooled(raw_spool.path())
    })
    .await;
    let printed = tillwire_printing::sim::decode(&raw).expect("ESC/POS");
    assert_eq!(printed.numbers(), vec!["№ 2".to_owned()]);
}
