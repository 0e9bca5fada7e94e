//! `tillwire sim ukm5`: simulated UKM 5 registers served by the real binary, answering as spec A.1 describes and
//! reporting a register polled twice within a second.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, eventually};

#[tokio::test]
async fn simulated_registers_answer_and_the_rate_checker_reports() {
    let port = tillwire_testkit::free_port();
    let dir = common::data_dir();
    let log = dir.path().join("sim.log");
    let child = Command::new(BIN)
        .args([
            "sim",
            "ukm5",
            "--registers",
            "3",
            "--format",
            "json-object",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("TILLWIRE_TIMEZONE", "Asia/Yekaterinburg")
        .env_remove("TILLWIRE_CONFIG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tillwire sim ukm5");
    let client = tillwire_testkit::http_client();
    let url =
        |n: u32, endpoint: &str| format!("http://127.0.0.1:{port}/r/{n}/api/v1/status/{endpoint}");
    let idle = eventually("the simulator", Duration::from_secs(30), || async {
        client
            .get(url(2, "downtime"))
            .send()
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(idle.status(), 200);
    let body = idle.text().await.expect("body");
    let value = tillwire_monitor::parse::value_of(&body);
    assert!(body.starts_with("{\"downtime\":"), "{body}");
    assert!(
        tillwire_monitor::parse::time(&value, chrono_tz::Asia::Yekaterinburg).is_some(),
        "{body}"
    );
    let busy = client
        .get(url(3, "last_receipt_time"))
        .send()
        .await
        .expect("GET");
    assert_eq!(busy.status(), 204, "no receipt open");
    let paper = client.get(url(3, "paper")).send().await.expect("GET");
    assert_eq!(paper.status(), 200, "paper in");
    let missing = client.get(url(4, "downtime")).send().await.expect("GET");
    assert_eq!(missing.status(), 404, "only registers 1–3");

    // Register 3 got two requests within a second: the simulator says so, once.
    eventually("the rate report", Duration::from_secs(30), || async {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        if output.contains("register 3: two requests") {
            Ok(())
        } else {
            Err(output)
        }
    })
    .await;
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let mut child = child;
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status:?}");
    let output = std::fs::read_to_string(&log).expect("log");
    assert!(
        output.contains("1 register(s) got two requests within a second:"),
        "{output}"
    );
    assert!(!output.contains("register 2:"), "{output}");
}

#[tokio::test]
async fn a_scenario_script_drives_the_registers_and_a_bad_one_is_refused_by_line() {
    let dir = common::data_dir();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1 1 open\nsoon 2 paper-out\n3 9 close\n").expect("script");
    let refused = Command::new(BIN)
        .args([
            "sim",
            "ukm5",
            "--registers",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
        ])
        .arg(&bad)
        .env_remove("TILLWIRE_CONFIG")
        .output()
        .expect("run tillwire sim ukm5");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");

    let port = tillwire_testkit::free_port();
    let script = dir.path().join("morning.txt");
    std::fs::write(
        &script,
        "# seconds register action\n0 1 open\n0.2 2 paper-out\n0.2 * ofd 25\n",
    )
    .expect("script");
    let mut child = Command::new(BIN)
        .args(["sim", "ukm5", "--registers", "2", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--scenario")
        .arg(&script)
        .env_remove("TILLWIRE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tillwire sim ukm5");
    let client = tillwire_testkit::http_client();
    let url =
        |n: u32, endpoint: &str| format!("http://127.0.0.1:{port}/r/{n}/api/v1/status/{endpoint}");
    eventually("the script played", Duration::from_secs(30), || async {
        let paper = client
            .get(url(2, "paper"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status();
        let ofd = client
            .get(url(1, "ofd"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let busy = client
            .get(url(1, "downtime"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status();
        let ofd = ofd.text().await.map_err(|e| e.to_string())?;
        if paper == 204 && ofd.trim() == "25" && busy == 204 {
            Ok(())
        } else {
            Err(format!("paper {paper}, ofd {ofd:?}, downtime {busy}"))
        }
    })
    .await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}
