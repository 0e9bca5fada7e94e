//! The printers as an admin sees them, against the real binary: the test page from the command line (the
//! printer's name in any case, Cyrillic included) and from the printers page's button, and the printers status
//! page following a printer that goes down and comes back, and tickets that ran out of attempts and are retried.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{DEVICE_KEY, eventually};
use tillwire_printing::sim::{EscPosSink, Printed, decode};
use tillwire_testkit::reqwest::Client;
use tillwire_testkit::{ServerProcess, TestDatabase, http_client, login};

/// The seeded printer, which registers 1–5 print on.
const PRINTER: &str = "Принтер этикеток";
/// Bounds a broken server; a working one prints within the first backoffs (seconds).
const LIMIT: Duration = Duration::from_secs(60);

/// A server with `envs`, an admin signed in over a session (the client and its CSRF token), and the seeded
/// printer pointed at `address` through the admin page.
async fn signed_in(
    db: &TestDatabase,
    data: &std::path::Path,
    envs: &[(&str, &str)],
    address: &str,
) -> (ServerProcess, Client, String) {
    let server = common::serve(db, data, envs).await;
    let base = server.base_url();
    let admin = http_client();
    let user = common::admin_username(&server.output());
    let csrf = login(&admin, &base, &user, &common::admin_password(&server)).await;
    let saved = common::save_printer(&admin, &base, &csrf, PRINTER, address).await;
    assert_eq!(saved, 303);
    (server, admin, csrf)
}

/// Waits for the sink's `n`-th print job and decodes it.
async fn nth_print(sink: &EscPosSink, n: usize) -> Printed {
    let job = eventually("the printer receives the job", LIMIT, || async {
        sink.received()
            .get(n)
            .cloned()
            .ok_or_else(|| format!("{} jobs received", sink.received().len()))
    })
    .await;
    decode(&job.bytes).expect("a well-formed ESC/POS stream")
}

/// The test page: one cut slip headed by a big "ТЕСТ" that names the printer.
fn assert_test_page(printed: &Printed) {
    assert_eq!(printed.numbers(), vec!["ТЕСТ".to_owned()], "{printed:?}");
    assert!(printed.uncut.is_empty(), "the page is cut: {printed:?}");
    assert!(
        printed.slips[0].iter().any(|line| line.text == PRINTER),
        "the page names the printer: {printed:?}"
    );
}

tillwire_testkit::both_backends!(
    print_test_finds_the_printer_by_name_in_any_case,
    |db| async move {
        let data = common::data_dir();
        let sink = EscPosSink::start(0).await.unwrap();
        let (server, _, _) = signed_in(&db, data.path(), &[], &sink.printer_address()).await;
        drop(server);

        // "пРИНТЕР ЭТИКЕТОК" differs from the stored name in the case of Cyrillic letters only.
        let other_case = "пРИНТЕР ЭТИКЕТОК";
        let output = tokio::process::Command::new(common::BIN)
            .args(["--database-url", db.url(), "--data-dir"])
            .arg(data.path())
            .args(["print", "test", other_case])
            .current_dir(data.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .expect("run tillwire print test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "tillwire print test {other_case:?}: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("Test page printed on \"{PRINTER}\"")),
            "{stdout}"
        );
        assert_test_page(&nth_print(&sink, 0).await);
        assert_eq!(sink.received().len(), 1, "one page");
    }
);

tillwire_testkit::both_backends!(
    the_test_page_button_prints_through_the_queue,
    |db| async move {
        let data = common::data_dir();
        let sink = EscPosSink::start(0).await.unwrap();
        let (server, admin, csrf) = signed_in(&db, data.path(), &[], &sink.printer_address()).await;
        let base = server.base_url();

        let without_csrf = admin
            .post(format!("{base}/admin/printers/1/test"))
            .send()
            .await
            .expect("POST /admin/printers/1/test");
        assert_eq!(without_csrf.status(), 403, "a session needs its CSRF token");
        let pressed = admin
            .post(format!("{base}/admin/printers/1/test"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("POST /admin/printers/1/test");
        assert_eq!(pressed.status(), 303);
        assert_eq!(
            pressed.headers()["location"],
            "/admin/printers/status?unit=1"
        );
        assert_test_page(&nth_print(&sink, 0).await);
        assert_eq!(
            sink.received().len(),
            1,
            "the request without a token printed nothing"
        );
    }
);

/// The seeded printer's row on `/admin/printers/status`.
#[derive(Debug)]
struct StatusRow {
    last_success: String,
    last_error: String,
    pending: i64,
    dead: i64,
}

async fn status_row(admin: &Client, base: &str) -> StatusRow {
    let page = admin
        .get(format!("{base}/admin/printers/status"))
        .send()
        .await
        .expect("GET /admin/printers/status")
        .text()
        .await
        .expect("the status page");
    let row = page
        .split_once(r#"<tr id="printer-1">"#)
        .and_then(|(_, rest)| rest.split_once("</tr>"))
        .unwrap_or_else(|| panic!("no row for printer 1: {page}"))
        .0;
    let cell = |class: &str| {
        row.split_once(&format!(r#"<td class="{class}">"#))
            .and_then(|(_, rest)| rest.split_once("</td>"))
            .unwrap_or_else(|| panic!("no {class} cell: {row}"))
            .0
            .trim()
            .to_owned()
    };
    let number = |class: &str| {
        cell(class)
            .parse()
            .unwrap_or_else(|_| panic!("{class}: {row}"))
    };
    StatusRow {
        last_success: cell("last-success"),
        last_error: cell("last-error"),
        pending: number("pending"),
        dead: number("dead"),
    }
}

/// Whether the operator screen marks order `number` as not printed.
async fn print_failed(admin: &Client, base: &str, number: i64) -> bool {
    let snapshot: serde_json::Value = admin
        .get(format!("{base}/screens/snapshot"))
        .send()
        .await
        .expect("GET /screens/snapshot")
        .json()
        .await
        .expect("a snapshot");
    snapshot["orders"]
        .as_array()
        .and_then(|orders| orders.iter().find(|o| o["number"] == number))
        .and_then(|order| order["print_failed"].as_bool())
        .unwrap_or_else(|| panic!("order {number} with print_failed on the board: {snapshot}"))
}

tillwire_testkit::both_backends!(
    the_status_page_follows_a_printer_down_and_up,
    |db| async move {
        let data = common::data_dir();
        // Nobody listens on the port yet: the printer is down.
        let port = tillwire_testkit::free_port();
        let envs = [("API_KEY", DEVICE_KEY)];
        let (server, admin, csrf) =
            signed_in(&db, data.path(), &envs, &format!("tcp://127.0.0.1:{port}")).await;
        let base = server.base_url();
        let day = common::today();
        let client = http_client();
        let numbers = [
            common::import(&client, &base, DEVICE_KEY, 1, &day).await,
            common::import(&client, &base, DEVICE_KEY, 2, &day).await,
        ];

        let down = eventually("the page shows the failure", LIMIT, || async {
            let row = status_row(&admin, &base).await;
            if row.last_error.contains(&format!("127.0.0.1:{port}")) {
                Ok(row)
            } else {
                Err(format!("{row:?}"))
            }
        })
        .await;
        assert_eq!(down.pending, 2, "both tickets wait: {down:?}");
        assert_eq!(down.dead, 0, "{down:?}");
        assert_eq!(down.last_success, "", "nothing printed yet: {down:?}");

        let sink = EscPosSink::start(port).await.unwrap();
        let woken = admin
            .post(format!("{base}/admin/printers/1/wake"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("POST /admin/printers/1/wake");
        assert_eq!(woken.status(), 303);
        let printed = [nth_print(&sink, 0).await, nth_print(&sink, 1).await];
        let expected: Vec<Vec<String>> = numbers.iter().map(|n| vec![format!("№ {n}")]).collect();
        assert_eq!(printed.map(|p| p.numbers()).to_vec(), expected, "in order");
        let up = eventually("the page shows the printer back", LIMIT, || async {
            let row = status_row(&admin, &base).await;
            if row.pending == 0 && !row.last_success.is_empty() {
                Ok(row)
            } else {
                Err(format!("{row:?}"))
            }
        })
        .await;
        assert_eq!(up.dead, 0, "{up:?}");
        assert_eq!(sink.received().len(), 2, "each ticket once");
    }
);

tillwire_testkit::both_backends!(
    given_up_tickets_keep_their_mark_and_can_be_retried,
    |db| async move {
        let data = common::data_dir();
        let port = tillwire_testkit::free_port();
        // One attempt: the first failure gives the ticket up.
        let envs = [
            ("API_KEY", DEVICE_KEY),
            ("TILLWIRE_PRINT_MAX_ATTEMPTS", "1"),
        ];
        let (server, admin, csrf) =
            signed_in(&db, data.path(), &envs, &format!("tcp://127.0.0.1:{port}")).await;
        let base = server.base_url();
        let client = http_client();
        let number = common::import(&client, &base, DEVICE_KEY, 1, &common::today()).await;

        // The page reads the health, the backlog and the dead jobs one after the other: wait for all three.
        eventually("the ticket is given up", LIMIT, || async {
            let row = status_row(&admin, &base).await;
            if row.dead == 1 && row.pending == 0 && !row.last_error.is_empty() {
                Ok(())
            } else {
                Err(format!("{row:?}"))
            }
        })
        .await;
        assert!(
            print_failed(&admin, &base, number).await,
            "the order keeps its print-failed mark"
        );

        let sink = EscPosSink::start(port).await.unwrap();
        let retried = admin
            .post(format!("{base}/admin/printers/1/retry"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("POST /admin/printers/1/retry");
        assert_eq!(retried.status(), 303);
        assert_eq!(
            nth_print(&sink, 0).await.numbers(),
            vec![format!("№ {number}")]
        );
        eventually("the page and the order clear", LIMIT, || async {
            let row = status_row(&admin, &base).await;
            let failed = print_failed(&admin, &base, number).await;
            if row.dead == 0 && row.pending == 0 && !failed {
                Ok(())
            } else {
                Err(format!("{row:?}, print_failed {failed}"))
            }
        })
        .await;
        assert_eq!(sink.received().len(), 1, "printed once");
    }
);
