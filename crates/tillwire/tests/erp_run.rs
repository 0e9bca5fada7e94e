//! `tillwire erp run PORT WORKSHOP TYPE`, the drop-in for `python app.py PORT WORKSHOP TYPE`, as a real process:
//! OilMat's routes on its port, the worker parked at start, the state kept in the data directory across a restart,
//! `/kill` ending the process; and, with a real Chromium against the AD Manager simulator, a `kill -9` between the
//! ERP saving a line and tillwire recording it never makes a second line: the restarted process finds the
//! order's marker and completes the order.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BIN, eventually};
use serde_json::{Value, json};
use tillwire_erp::ErpType;
use tillwire_erp::sim::{DEFAULT_PASSWORD, DEFAULT_USERNAME, ErpSim, Product};
use tillwire_testkit::reqwest::header;
use tillwire_testkit::{Backend, TestDatabase, http_client};

struct Run {
    child: Child,
    base: String,
}

/// Starts `tillwire erp run PORT hosses admanager --erp-url ERP` on `db` and `data`, logging everything (debug)
/// to `data/erp-run-PORT.log`.
fn run(db: &TestDatabase, data: &std::path::Path, port: u16, erp: &str) -> Run {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join(format!("erp-run-{port}.log")))
        .expect("log file");
    let child = Command::new(BIN)
        .args([
            "erp",
            "run",
            &port.to_string(),
            "hosses",
            "admanager",
            "--erp-url",
            erp,
        ])
        .arg("--database-url")
        .arg(db.url())
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start tillwire erp run");
    Run {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn call(method: &str, url: &str, body: Option<Value>) -> Result<(u16, Value), String> {
    let client = http_client();
    let request = match method {
        "PUT" => client.put(url),
        "POST" => client.post(url),
        _ => client.get(url),
    };
    let request = match body {
        // As OilMat's client sends it: a JSON string holding the order's JSON.
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_string(&body.to_string()).unwrap()),
        None => request,
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

async fn alive(run: &Run) -> Value {
    eventually(
        "tillwire erp run to listen",
        Duration::from_secs(60),
        || async {
            call("GET", &format!("{}/alive", run.base), None)
                .await
                .map(|(_, body)| body)
        },
    )
    .await
}

fn order(id: &str, case: &str) -> Value {
    json!({"unique_id": id, "dealer": "Gygag", "case_nr": case, "product_nr": "10", "product_amount": "3",
           "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD})
}

async fn exited(child: &mut Child) -> std::process::ExitStatus {
    eventually("the process to end", Duration::from_secs(30), || {
        let status = child.try_wait().expect("poll");
        async move { status.ok_or_else(|| "still running".to_owned()) }
    })
    .await
}

#[tokio::test]
async fn it_serves_oilmat_keeps_its_state_and_kill_ends_it() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let data = common::data_dir();
    let port = tillwire_testkit::free_port();
    // An ERP nobody answers on: the worker stays parked, so it is never asked.
    let erp = format!("http://127.0.0.1:{}", tillwire_testkit::free_port());
    let mut first = run(&db, data.path(), port, &erp);
    let said = alive(&first).await;
    assert_eq!(said["API is alive, worker runningg"], false, "{said}");
    assert_eq!(said["workshop"], "hosses");
    let (status, created) = call(
        "POST",
        &format!("{}/create", first.base),
        Some(order("0001", "560")),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, created["message"].as_str()),
        (200, Some("Order line creation task added to queue"))
    );
    let (status, killed) = call("PUT", &format!("{}/kill", first.base), None)
        .await
        .unwrap();
    assert_eq!(
        (status, killed),
        (200, json!({"Shutting down": first.child.id()}))
    );
    assert!(exited(&mut first.child).await.success());

    let mut second = run(&db, data.path(), port, &erp);
    alive(&second).await;
    let (_, status) = call(
        "GET",
        &format!("{}/check_order_status?unique_id=0001", second.base),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status["status"], "received", "{status}");
    let (_, queue) = call("GET", &format!("{}/queue?type=task", second.base), None)
        .await
        .unwrap();
    assert_eq!(queue["length"], 1);
    assert!(!queue.to_string().contains(DEFAULT_PASSWORD), "{queue}");
    second.child.kill().ok();
    second.child.wait().ok();
    let log =
        std::fs::read_to_string(data.path().join(format!("erp-run-{port}.log"))).expect("the log");
    assert!(log.contains("order received"), "{log}");
    assert!(
        !log.contains(DEFAULT_PASSWORD),
        "the password is in the log"
    );
}

#[tokio::test]
async fn a_crash_between_save_and_record_never_makes_a_second_line() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let data = common::data_dir();
    let sim = ErpSim::new(ErpType::AdManager);
    sim.set_cases(["560", "561"]);
    sim.set_catalogue([Product::new("10", "Motorolie 5W-30", "L", "Olie", "89,00")]);
    let erp = sim.serve_on_loopback().await.expect("the simulator");
    let port = tillwire_testkit::free_port();
    let mut first = run(&db, data.path(), port, &erp);
    alive(&first).await;
    // Every page of the ERP answers slowly, so after the save lands the read-back is still in flight.
    sim.set_page_delay(Duration::from_millis(1500));
    call(
        "POST",
        &format!("{}/create", first.base),
        Some(order("0042", "561")),
    )
    .await
    .unwrap();
    call("PUT", &format!("{}/start_worker", first.base), None)
        .await
        .unwrap();
    eventually("the ERP to save the line", Duration::from_secs(120), || {
        let lines = sim.lines("561");
        async move {
            if lines.is_empty() {
                Err("no line yet".to_owned())
            } else {
                Ok(())
            }
        }
    })
    .await;
    first.child.kill().expect("kill -9");
    first.child.wait().ok();
    sim.set_page_delay(Duration::ZERO);
    assert_eq!(sim.lines("561").len(), 1);

    // The restarted process takes the job over once its lease runs out, finds the marker, adds nothing.
    let second = run(&db, data.path(), port, &erp);
    alive(&second).await;
    // Parked at start, as oilmat-erp's worker was.
    call("PUT", &format!("{}/start_worker", second.base), None)
        .await
        .unwrap();
    let done = eventually(
        "the order to complete after the crash",
        Duration::from_secs(180),
        || async {
            let (_, status) = call(
                "GET",
                &format!("{}/check_order_status?unique_id=0042", second.base),
                None,
            )
            .await?;
            match status["status"].as_str() {
                Some("completed") => Ok(status),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(
        sim.lines("561").len(),
        1,
        "a second line: {:?}",
        sim.lines("561")
    );
    let mut second = second;
    second.child.kill().ok();
    second.child.wait().ok();
}
