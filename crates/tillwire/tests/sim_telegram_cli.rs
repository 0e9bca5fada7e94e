//! `tillwire sim telegram`: the Bot API simulator served by the real binary; a message sent to it can be read
//! back from `/sim/messages`, and a send that ignores retry_after is reported.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, eventually};
use serde_json::{Value, json};

#[tokio::test]
async fn a_sent_message_is_read_back_and_an_early_retry_reported() {
    let port = tillwire_testkit::free_port();
    let dir = common::data_dir();
    let log = dir.path().join("sim.log");
    let mut child = Command::new(BIN)
        .args(["sim", "telegram", "--token", "777:CLI-test", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("TILLWIRE_CONFIG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tillwire sim telegram");
    let client = tillwire_testkit::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let send = |text: &'static str| {
        client
            .post(format!("{base}/bot777:CLI-test/sendMessage"))
            .json(&json!({"chat_id": -4001, "text": text, "parse_mode": "HTML"}))
            .send()
    };
    let sent = eventually("the simulator", Duration::from_secs(30), || async {
        send("<b>Kitchen 2</b> is late &amp; cold")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(sent.status(), 200);
    let sent: Value = sent.json().await.expect("json");
    assert_eq!(sent["result"]["text"], "Kitchen 2 is late & cold");

    let listed: Value = client
        .get(format!("{base}/sim/messages?chat_id=-4001"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["text"], "<b>Kitchen 2</b> is late &amp; cold");
    assert_eq!(listed[0]["visible_text"], "Kitchen 2 is late & cold");

    // Twice more at once: a 429, then a send that ignores it.
    assert_eq!(send("again").await.expect("send").status(), 429);
    assert_eq!(send("again").await.expect("send").status(), 429);
    eventually("the violation report", Duration::from_secs(30), || async {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        if output.contains("chat -4001:") && output.contains("rate violation") {
            Ok(())
        } else {
            Err(output)
        }
    })
    .await;
    let output = std::fs::read_to_string(&log).expect("log");
    assert!(
        output.contains(&format!("base URL http://127.0.0.1:{port}")),
        "{output}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status:?}");
}
