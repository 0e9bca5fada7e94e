//! `tillwire sim erp`: each ERP simulator served by the real binary with its login page; without `--password` a
//! random one is made and printed once, with one it is never printed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BIN, eventually};

/// Starts `tillwire sim erp` with `args`; the child, its base URL and the file its output goes to.
fn start(args: &[&str], dir: &std::path::Path) -> (Child, String, std::path::PathBuf) {
    let port = tillwire_testkit::free_port();
    let log = dir.join(format!("sim-{port}.log"));
    let child = Command::new(BIN)
        .args(["sim", "erp", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .env_remove("TILLWIRE_SIM_ERP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tillwire sim erp");
    (child, format!("http://127.0.0.1:{port}"), log)
}

async fn page(base: &str, path: &str) -> String {
    let client = tillwire_testkit::http_client();
    eventually("the simulator", Duration::from_secs(30), || async {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("HTTP {}", response.status()));
        }
        response.text().await.map_err(|e| e.to_string())
    })
    .await
}

#[tokio::test]
async fn each_erp_is_served_and_a_made_password_is_printed_once() {
    let dir = common::data_dir();
    let (mut admanager, base, log) = start(&["--type", "admanager"], dir.path());
    let login = page(&base, "/login").await;
    assert!(
        login.contains("formcontrolname=\"email\"") && login.contains("mat-input-1"),
        "{login}"
    );
    assert_eq!(page(&base, "/sim/lines").await.trim(), "{}");
    let output = std::fs::read_to_string(&log).expect("log");
    let password = output
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("a made password printed: {output}"));
    assert_eq!(password.len(), 16, "{output}");
    let _ = admanager.kill();
    let _ = admanager.wait();

    let (mut au2office, base, log) = start(
        &["--type", "au2office", "--password", "given-secret-42"],
        dir.path(),
    );
    let login = page(&base, "/Account/Login").await;
    assert!(
        login.contains("inputEmail") && login.contains("inputPassword"),
        "{login}"
    );
    let output = std::fs::read_to_string(&log).expect("log");
    assert!(output.contains("Simulating au2office at"), "{output}");
    assert!(
        !output.contains("given-secret-42"),
        "a given password is not printed: {output}"
    );
    let _ = au2office.kill();
    let _ = au2office.wait();

    let refused = Command::new(BIN)
        .args(["sim", "erp", "--type", "sap"])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("admanager"),
        "the error names the known types"
    );
}
