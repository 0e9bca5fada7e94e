//! The ERP bridge's pages in the real binary with `serve --demo`: the demo workshop's integration parked with its
//! two orders; a new integration added on the page opens its own port for OilMat, is refused with every wrong
//! field named, and closes its port when killed; with autostart its worker is running again after a restart
//! although it was stopped; the pages never show a password; in both languages.

mod common;

use std::time::Duration;

use common::eventually;
use tillwire_testkit::reqwest::StatusCode;
use tillwire_testkit::{Backend, TestDatabase, http_client, login};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_are_added_watched_and_killed_on_the_page() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[]).await;
    let client = http_client();
    let base = server.base_url();
    let csrf = login(
        &client,
        &base,
        &common::admin_username(&server.output()),
        &common::admin_password(&server),
    )
    .await;
    let page = |path: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("page")
        }
    };
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let client = client.clone();
        let csrf = csrf.clone();
        async move {
            let mut form = fields;
            form.push(("csrf", csrf));
            let response = client
                .post(path)
                .header("accept", "application/json")
                .form(&form)
                .send()
                .await
                .expect("POST");
            (response.status(), response.text().await.unwrap_or_default())
        }
    };

    let list = page(format!("{base}/admin/erp/")).await;
    assert!(
        list.contains("Demo værksted") && list.contains("на паузе"),
        "{list}"
    );
    assert!(!list.contains(tillwire_erp::sim::DEFAULT_PASSWORD));

    let port = tillwire_testkit::free_port();
    let fields = |port: String, script: &str| {
        vec![
            ("workshop", "hosses".to_owned()),
            ("erp_type", "au2office".to_owned()),
            ("base_url", String::new()),
            ("unit_id", String::new()),
            ("username", "w@example.dk".to_owned()),
            ("password", "page-secret-1".to_owned()),
            ("port", port),
            ("max_attempts", "0".to_owned()),
            ("task_timeout_secs", "30".to_owned()),
            ("active", "on".to_owned()),
            ("autostart", "on".to_owned()),
            ("script", script.to_owned()),
        ]
    };
    let (status, refused) = post(
        format!("{base}/admin/erp/"),
        fields("70000".into(), "{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    for field in ["port", "max_attempts", "script"] {
        assert!(
            refused.contains(&format!("\"{field}\"")),
            "{field} not named: {refused}"
        );
    }
    let mut good = fields(port.to_string(), "");
    good.retain(|(name, _)| *name != "max_attempts");
    let (status, _) = post(format!("{base}/admin/erp/"), good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let list = page(format!("{base}/admin/erp/")).await;
    assert!(
        list.contains("hosses") && list.contains("au2office"),
        "{list}"
    );
    assert!(!list.contains("page-secret-1"));

    // Its own port answers OilMat's /alive.
    let alive = format!("http://127.0.0.1:{port}/alive");
    let said = eventually("the integration's port to open", LIMIT, || async {
        let response = client.get(&alive).send().await.map_err(|e| e.to_string())?;
        response.text().await.map_err(|e| e.to_string())
    })
    .await;
    assert!(said.contains("\"workshop\":\"hosses\""), "{said}");
    let list = page(format!("{base}/admin/erp/")).await;
    assert!(list.contains(&format!("127.0.0.1:{port}")), "{list}");

    let id = list
        .split("/admin/erp/")
        .filter_map(|rest| rest.split('/').next()?.parse::<i64>().ok())
        .max()
        .expect("the new integration's link");
    let detail = page(format!("{base}/admin/erp/{id}/")).await;
    assert!(
        detail.contains("Версии сценария") && detail.contains("/erp/hosses/create"),
        "{detail}"
    );
    assert!(!detail.contains("page-secret-1"));

    let (status, _) = post(format!("{base}/admin/erp/{id}/kill"), vec![]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually("the killed integration's port to close", LIMIT, || async {
        match client.get(&alive).send().await {
            Err(_) => Ok(()),
            Ok(response) => Err(format!("still answering {}", response.status())),
        }
    })
    .await;
    let (status, _) = post(format!("{base}/admin/erp/{id}/start"), vec![]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually(
        "the started integration's port to open again",
        LIMIT,
        || async {
            client
                .get(&alive)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
    .await;

    client
        .get(format!("{base}/lang/en"))
        .send()
        .await
        .expect("English");
    let english = page(format!("{base}/admin/erp/{id}/")).await;
    assert!(
        english.contains("Script versions") && english.contains("Orders"),
        "{english}"
    );
    assert!(!english.contains("Версии сценария"));
}
