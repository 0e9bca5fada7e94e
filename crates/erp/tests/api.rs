//! The management API over real HTTP, on both backends: who may call it, integrations added (fields checked and
//! named, duplicates refused), read back without their password, changed (a new script is a new version),
//! started, stopped and killed, their orders listed, a failed order put back, and removal.

mod common;

use serde_json::{Value, json};
use tillwire_platform::tokens::{Scope, TokenName, Tokens};
use tillwire_platform::{Platform, area};
use tillwire_testkit::reqwest::{Client, Method};
use tillwire_testkit::{TestDatabase, http_client, serve_router};

struct App {
    base: String,
    client: Client,
    platform: Platform,
    token: String,
    _data: tempfile::TempDir,
    _db: TestDatabase,
}

impl App {
    async fn start(db: TestDatabase) -> App {
        let (platform, data) = common::platform(&db, |_| {}).await;
        let built = area::assemble(&common::AREAS, &platform).expect("assemble");
        let (base, _) = serve_router(built.router).await;
        let token = Tokens(&platform.store)
            .issue(
                &TokenName::parse("ops").unwrap(),
                &Scope::area("erp"),
                None,
                "test",
            )
            .await
            .unwrap()
            .plain;
        App {
            base,
            client: http_client(),
            platform,
            token,
            _data: data,
            _db: db,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn as_ops(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, body, Some(&self.token.clone()))
            .await
    }
}

tillwire_testkit::both_backends!(
    integrations_are_managed_and_never_show_their_password,
    |db| async move {
        let app = App::start(db).await;
        let intake = Tokens(&app.platform.store)
            .issue(
                &TokenName::parse("oilmat").unwrap(),
                &Scope::area("erp.intake"),
                None,
                "test",
            )
            .await
            .unwrap()
            .plain;
        assert_eq!(
            app.call(Method::GET, "/api/v1/erp/integrations", None, None)
                .await
                .0,
            401
        );
        assert_eq!(
            app.call(Method::GET, "/api/v1/erp/integrations", None, Some(&intake))
                .await
                .0,
            403
        );

        let (status, created) = app
        .as_ops(
            Method::POST,
            "/api/v1/erp/integrations",
            Some(json!({"workshop": "hosses", "erp_type": "admanager", "username": "w@example.dk",
                        "password": "pa55-word", "port": 5000, "autostart": true})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["base_url"], "https://manager.addanmark.dk");
        assert_eq!(
            (
                created["has_password"].as_bool(),
                created["worker_running"].as_bool()
            ),
            (Some(true), Some(true))
        );
        assert_eq!(created["script_version"], 1);
        let id = created["id"].as_i64().unwrap();
        for (path, body) in [
            ("/api/v1/erp/integrations", None),
            (&*format!("/api/v1/erp/integrations/{id}"), None),
        ] {
            let (_, read) = app.as_ops(Method::GET, path, body).await;
            assert!(!read.to_string().contains("pa55-word"), "{read}");
        }

        // Every wrong field named; the same workshop or port refused.
        let (status, refused) = app
        .as_ops(
            Method::POST,
            "/api/v1/erp/integrations",
            Some(json!({"workshop": "a/b", "erp_type": "admanager", "max_attempts": 0, "task_timeout_secs": 500})),
        )
        .await;
        assert_eq!(status, 422, "{refused}");
        for field in ["workshop", "max_attempts", "task_timeout_secs"] {
            assert!(refused["fields"][field].is_string(), "{field}: {refused}");
        }
        let (status, taken) = app
            .as_ops(
                Method::POST,
                "/api/v1/erp/integrations",
                Some(json!({"workshop": "hosses", "erp_type": "au2office", "port": 5000})),
            )
            .await;
        assert_eq!(status, 422);
        assert!(
            taken["fields"]["workshop"].is_string() && taken["fields"]["port"].is_string(),
            "{taken}"
        );
        let (status, _) = app
            .as_ops(
                Method::POST,
                "/api/v1/erp/integrations",
                Some(json!({"workshop": "x", "erp_type": "sap"})),
            )
            .await;
        assert_eq!(status, 422, "an unknown ERP is not read");

        // A changed script is a new version; the password is kept when not sent.
        let mut script = created["script"].clone();
        script["waits"]["step_timeout_ms"] = json!(12_000);
        let (status, changed) = app
        .as_ops(
            Method::PUT,
            &format!("/api/v1/erp/integrations/{id}"),
            Some(json!({"workshop": "hosses", "erp_type": "admanager", "base_url": "http://127.0.0.1:9/",
                        "username": "w@example.dk", "script": script})),
        )
        .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(
            (
                changed["has_password"].as_bool(),
                changed["script_version"].as_i64()
            ),
            (Some(true), Some(2))
        );
        assert_eq!(changed["script"]["waits"]["step_timeout_ms"], 12_000);
        assert_eq!(changed["base_url"], "http://127.0.0.1:9");
        let (status, broken) = app
        .as_ops(
            Method::PUT,
            &format!("/api/v1/erp/integrations/{id}"),
            Some(json!({"workshop": "hosses", "erp_type": "admanager", "script": {"nonsense": true}})),
        )
        .await;
        assert_eq!(status, 422);
        assert!(broken["fields"]["script"].is_string(), "{broken}");

        let (status, killed) = app
            .as_ops(
                Method::POST,
                &format!("/api/v1/erp/integrations/{id}/kill"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            (
                killed["active"].as_bool(),
                killed["worker_running"].as_bool()
            ),
            (Some(false), Some(false))
        );
        let (_, started) = app
            .as_ops(
                Method::POST,
                &format!("/api/v1/erp/integrations/{id}/start"),
                None,
            )
            .await;
        assert_eq!(
            (
                started["active"].as_bool(),
                started["worker_running"].as_bool()
            ),
            (Some(true), Some(true))
        );
        assert_eq!(
            app.as_ops(
                Method::POST,
                &format!("/api/v1/erp/integrations/{id}/explode"),
                None
            )
            .await
            .0,
            422
        );

        let (status, orders) = app
            .as_ops(
                Method::GET,
                &format!("/api/v1/erp/integrations/{id}/orders?status=failed"),
                None,
            )
            .await;
        assert_eq!((status, orders), (200, json!([])));
        assert_eq!(
            app.as_ops(
                Method::GET,
                &format!("/api/v1/erp/integrations/{id}/orders?limit=0"),
                None
            )
            .await
            .0,
            422
        );
        assert_eq!(
            app.as_ops(Method::GET, "/api/v1/erp/orders/999", None)
                .await
                .0,
            404
        );

        assert_eq!(
            app.as_ops(
                Method::DELETE,
                &format!("/api/v1/erp/integrations/{id}"),
                None
            )
            .await
            .0,
            204
        );
        assert_eq!(
            app.as_ops(Method::GET, &format!("/api/v1/erp/integrations/{id}"), None)
                .await
                .0,
            404
        );
    }
);
