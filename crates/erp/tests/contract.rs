//! OilMat's contract over real HTTP, on both backends and both mounts (an integration's own listener and
//! `/erp/{workshop}/` on the main one): every route, every error branch with the original's words and status,
//! the bytes of its JSON, `unique_id` idempotency (also under concurrent resends), who may call (tokens by scope,
//! the allow-list), and the password never coming back. The worker stays parked, so no browser is needed here.

mod common;

use serde_json::{Value, json};
use tillwire_erp::integrations::{IntegrationSpec, Workshop};
use tillwire_erp::{Erp, ErpType, Integration, IntegrationId, OrderStatus, contract};
use tillwire_platform::tokens::{Scope, TokenName, Tokens};
use tillwire_platform::{Platform, area, read};
use tillwire_testkit::reqwest::{Client, Method, header};
use tillwire_testkit::{TestDatabase, http_client, serve_router};

const PASSWORD: &str = "s3cret-pa55";

struct App {
    /// The main listener's base URL.
    main: String,
    /// The integration's own listener.
    own: String,
    client: Client,
    platform: Platform,
    erp: Erp,
    integration: Integration,
    _data: tempfile::TempDir,
    _db: TestDatabase,
}

struct Reply {
    status: u16,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }
}

/// A platform with the erp area and one integration (no login of its own unless `login`), served on both
/// mounts. `allow` replaces the default allow-list (loopback).
async fn start(db: TestDatabase, login: bool, allow: Option<&str>) -> App {
    let (platform, data) = common::platform(&db, |settings| {
        if let Some(allow) = allow {
            settings.set("erp.allow", allow);
        }
    })
    .await;
    let built = area::assemble(&common::AREAS, &platform).expect("assemble");
    let erp = built.service::<Erp>().expect("the erp area's services");
    let mut spec = IntegrationSpec::new(Workshop::parse("hosses").unwrap(), ErpType::AdManager);
    if login {
        spec.username = Some("workshop@example.dk".into());
        spec.password = Some(PASSWORD.into());
    }
    let integration = erp
        .integrations
        .create(&spec, "test")
        .await
        .expect("integration");
    let (main, _) = serve_router(built.router).await;
    let (own, _) = serve_router(contract::own_listener(erp.clone(), integration.id)).await;
    App {
        main,
        own,
        client: http_client(),
        platform,
        erp,
        integration,
        _data: data,
        _db: db,
    }
}

impl App {
    /// Both mounts' base URLs for this integration.
    fn mounts(&self) -> [String; 2] {
        [self.own.clone(), format!("{}/erp/hosses", self.main)]
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<(&str, String)>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self.client.request(method, url);
        if let Some((content_type, body)) = body {
            request = request
                .header(header::CONTENT_TYPE, content_type)
                .body(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        Reply {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            text: response.text().await.expect("body"),
        }
    }

    async fn get(&self, url: &str) -> Reply {
        self.call(Method::GET, url, None, None).await
    }

    async fn put(&self, url: &str) -> Reply {
        self.call(Method::PUT, url, None, None).await
    }

    /// `/create` as OilMat's client sends it: `requests.post(url, json=json.dumps(data))`.
    async fn create(&self, base: &str, order: &Value) -> Reply {
        let double = serde_json::to_string(&order.to_string()).unwrap();
        self.call(
            Method::POST,
            &format!("{base}/create"),
            Some(("application/json", double)),
            None,
        )
        .await
    }

    async fn token(&self, name: &str, scope: Scope) -> String {
        Tokens(&self.platform.store)
            .issue(&TokenName::parse(name).unwrap(), &scope, None, "test")
            .await
            .expect("token")
            .plain
    }
}

fn order(id: &str) -> Value {
    json!({"unique_id": id, "dealer": "Gygag", "case_nr": "560", "product_nr": "10", "product_amount": "5",
           "username": "u@example.com", "password": PASSWORD})
}

tillwire_testkit::both_backends!(
    every_route_answers_as_oilmat_did_on_both_mounts,
    |db| async move {
        let app = start(db, false, None).await;
        for (n, base) in app.mounts().iter().enumerate() {
            let alive = app.get(&format!("{base}/alive")).await;
            assert_eq!(alive.status, 200);
            assert_eq!(alive.content_type, "application/json");
            assert!(
                alive
                    .text
                    .starts_with("{\"API is alive, worker runningg\":false,"),
                "{}",
                alive.text
            );
            assert!(alive.text.ends_with("}\n"));
            assert_eq!(alive.json()["workshop"], "hosses");

            let id = format!("000{n}");
            let created = app.create(base, &order(&id)).await;
            assert_eq!(
                (created.status, created.text.as_str()),
                (
                    200,
                    "{\"message\":\"Order line creation task added to queue\"}\n"
                )
            );
            let status = app
                .get(&format!("{base}/check_order_status?unique_id={id}"))
                .await;
            assert_eq!(status.status, 200);
            let body = status.json();
            assert_eq!(
                (body["status"].as_str(), body["unique_id"].as_str()),
                (Some("received"), Some(id.as_str()))
            );
            assert_eq!(
                body["reason"],
                Value::Null,
                "the reason never echoes the request"
            );
            // Keys sorted, compact.
            assert!(
                status
                    .text
                    .starts_with("{\"attempts\":0,\"finished_at\":null,\"reason\":null,"),
                "{}",
                status.text
            );

            let queue = app.get(&format!("{base}/queue?type=task")).await;
            assert_eq!(queue.status, 200);
            assert_eq!(
                queue.json()["queue"]
                    .as_str()
                    .unwrap()
                    .matches("('Gygag', '560', '10', '5', ")
                    .count(),
                n + 1
            );
            assert!(
                queue.text.contains(&format!("'{id}', '***', '***')")),
                "{}",
                queue.text
            );
            assert_eq!(queue.json()["length"], n + 1);
            assert_eq!(
                app.get(&format!("{base}/queue?type=error")).await.json(),
                json!({"length": 0, "queue": "[]"})
            );

            assert_eq!(
                app.put(&format!("{base}/start_worker")).await.text,
                "{\"Worker running\":true}\n"
            );
            assert_eq!(
                app.get(&format!("{base}/alive")).await.json()["API is alive, worker runningg"],
                true
            );
            assert_eq!(
                app.put(&format!("{base}/stop_worker")).await.text,
                "{\"Worker running\":false}\n"
            );
        }
        // Nothing anywhere holds the password in the clear: not the orders, not the jobs.
        let leaked: Vec<(String,)> = read!(&app.platform.store, db => sqlx::query_as(
        "SELECT COALESCE(credentials_sealed, '') || dealer || COALESCE(message, '') FROM erp_orders
         UNION ALL SELECT payload FROM jobs",
    )
    .fetch_all(db)
    .await)
        .unwrap();
        assert!(!leaked.is_empty());
        assert!(
            leaked.iter().all(|(text,)| !text.contains(PASSWORD)),
            "{leaked:?}"
        );
    }
);

tillwire_testkit::both_backends!(every_refusal_has_the_originals_words, |db| async move {
    let app = start(db, false, None).await;
    for (n, base) in app.mounts().into_iter().enumerate() {
        let id = |suffix: &str| format!("{n}{suffix}");
        let post = |content_type: &'static str, body: String| {
            let url = format!("{base}/create");
            let app = &app;
            async move {
                app.call(Method::POST, &url, Some((content_type, body)), None)
                    .await
            }
        };
        let not_json = post("text/plain", "{}".into()).await;
        assert_eq!(not_json.status, 415);
        assert!(not_json.content_type.starts_with("text/html"));
        assert!(not_json.text.contains("Did not attempt to load JSON data"));
        let broken = post("application/json", "{".into()).await;
        assert_eq!(
            (broken.status, broken.content_type.starts_with("text/html")),
            (400, true)
        );
        let inner = post("application/json", "\"{nope\"".into()).await;
        assert_eq!(
            (inner.status, inner.text.as_str()),
            (400, "{\"error\":\"Invalid JSON format\"}\n")
        );
        let list = post("application/json", "\"[1, 2]\"".into()).await;
        assert_eq!(
            list.json()["error"],
            "Missing required parameter:e=TypeError('list indices must be integers or slices, not str')"
        );
        let mut missing = order(&id("100"));
        missing.as_object_mut().unwrap().remove("case_nr");
        missing.as_object_mut().unwrap().remove("product_nr");
        let reply = app.create(&base, &missing).await;
        assert_eq!(
            (reply.status, reply.json()["error"].as_str()),
            (
                400,
                Some("Missing required parameter:e=KeyError('case_nr')")
            )
        );
        // A missing login, when the integration has none of its own.
        let mut no_login = order(&id("101"));
        no_login.as_object_mut().unwrap().remove("password");
        assert_eq!(
            app.create(&base, &no_login).await.json()["error"],
            "Missing required parameter:e=KeyError('password')"
        );
        // A value that would press ENTER in the ERP's page never reaches the queue.
        let mut keys = order(&id("102"));
        keys["product_nr"] = json!("10\u{E007}");
        let refused = app.create(&base, &keys).await;
        assert_eq!(refused.status, 400);
        assert!(
            refused.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid product_nr")
        );
        let mut fraction = order(&id("103"));
        fraction["product_amount"] = json!("5.5");
        assert_eq!(app.create(&base, &fraction).await.status, 400);

        let status = |id: &str| {
            let url = format!("{base}/check_order_status?unique_id={id}");
            let app = &app;
            async move { app.get(&url).await }
        };
        // A refused order whose id could be read says `bad request` (the original forgot new ids).
        assert_eq!(status(&id("100")).await.json()["status"], "bad request");
        assert_eq!(status(&id("102")).await.json()["status"], "bad request");
        assert_eq!(
            (status("nope").await.status, status("nope").await.text),
            (404, "{\"error\":\"Order not found\"}\n".into())
        );
        assert_eq!(
            app.get(&format!("{base}/check_order_status")).await.text,
            "{\"error\":\"order_id is required\"}\n"
        );
        assert_eq!(
            app.get(&format!("{base}/check_order_status?unique_id="))
                .await
                .status,
            400
        );
        for path in ["/queue", "/queue?type=tasks"] {
            let reply = app.get(&format!("{base}{path}")).await;
            assert_eq!(
                (reply.status, reply.text.as_str()),
                (400, "{\"error\":\"Invalid queue type\"}\n")
            );
        }
        assert_eq!(
            app.put(&format!("{base}/clear_queue?type=x")).await.status,
            400
        );
        let wrong_method = app.get(&format!("{base}/create")).await;
        assert_eq!(
            (
                wrong_method.status,
                wrong_method.content_type.starts_with("text/html")
            ),
            (405, true)
        );
        assert_eq!(app.get(&format!("{base}/start_worker")).await.status, 405);
        let unknown = app.get(&format!("{base}/add_creds")).await;
        assert_eq!(
            (
                unknown.status,
                unknown.content_type.starts_with("text/html")
            ),
            (404, true)
        );
        // A corrected resend of a bad request is queued.
        assert_eq!(
            app.create(&base, &order(&id("100"))).await.json()["message"],
            "Order line creation task added to queue"
        );
        assert_eq!(status(&id("100")).await.json()["status"], "received");
        // Clearing the task queue ends its orders `failed` (cleared), not `received` for ever.
        let cleared = app.put(&format!("{base}/clear_queue?type=task")).await;
        assert!(
            cleared.json()["Queue elements removed"]
                .as_str()
                .unwrap()
                .contains(&format!("'{}'", id("100")))
        );
        let after = status(&id("100")).await.json();
        assert_eq!(
            (after["status"].as_str(), after["reason_code"].as_str()),
            (Some("failed"), Some("cleared"))
        );
    }
    // An unknown workshop on the main mount is an unknown path.
    assert_eq!(
        app.get(&format!("{}/erp/nobody/alive", app.main))
            .await
            .status,
        404
    );
});

tillwire_testkit::both_backends!(
    a_unique_id_is_queued_once_even_when_resent_at_once,
    |db| async move {
        let app = start(db, true, None).await;
        let base = app.own.clone();
        // The integration has its own login: the order needs none, and one sent is ignored.
        let mut plain = order("7");
        plain.as_object_mut().unwrap().remove("username");
        plain.as_object_mut().unwrap().remove("password");
        // A plain object (the original answered 500) is read too.
        let first = app
            .call(
                Method::POST,
                &format!("{base}/create"),
                Some(("application/json", plain.to_string())),
                None,
            )
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
        let resend = order("8");
        let resends = futures::future::join_all((0..12).map(|_| app.create(&base, &resend))).await;
        assert!(
            resends.iter().all(|reply| reply.status == 200),
            "{:?}",
            resends.iter().map(|reply| &reply.text).collect::<Vec<_>>()
        );
        let queued = resends
            .iter()
            .filter(|reply| reply.json()["message"] == "Order line creation task added to queue")
            .count();
        assert_eq!(queued, 1, "exactly one resend queued the order");
        let again = app.create(&base, &order("7")).await.json();
        assert_eq!(
            again,
            json!({"message": "Order already received; not queued again", "status": "received", "unique_id": "7"})
        );
        let jobs: Vec<(i64,)> = read!(&app.platform.store, db => sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE queue = 'erp.line'",
    )
    .fetch_all(db)
    .await)
        .unwrap();
        assert_eq!(jobs[0].0, 2);
        let waiting = app
            .erp
            .orders
            .list(app.integration.id, Some(OrderStatus::Received), 10)
            .await
            .unwrap();
        assert_eq!(waiting.len(), 2);
    }
);

tillwire_testkit::both_backends!(
    tokens_and_the_allow_list_decide_who_may_call,
    |db| async move {
        // Loopback is not allow-listed here: every call needs a token.
        let app = start(db, true, Some("10.0.0.0/8")).await;
        let intake = app
            .token("oilmat", Scope::area(contract::INTAKE_SCOPE))
            .await;
        let manager = app.token("ops", Scope::area("erp")).await;
        let admin = app.token("root", Scope::ADMIN).await;
        let other = app.token("routes", Scope::area("units")).await;
        for base in app.mounts() {
            let call = |method: Method, path: &str, token: Option<&str>| {
                let url = format!("{base}{path}");
                let app = &app;
                let token = token.map(str::to_owned);
                async move { app.call(method, &url, None, token.as_deref()).await.status }
            };
            assert_eq!(call(Method::GET, "/alive", None).await, 401);
            assert_eq!(call(Method::GET, "/alive", Some("tw_nonsense")).await, 401);
            assert_eq!(call(Method::GET, "/alive", Some(&other)).await, 403);
            assert_eq!(call(Method::GET, "/alive", Some(&intake)).await, 200);
            assert_eq!(
                call(
                    Method::GET,
                    "/check_order_status?unique_id=1",
                    Some(&intake)
                )
                .await,
                404
            );
            // The intake may not manage.
            for path in [
                "/queue?type=task",
                "/clear_queue?type=error",
                "/start_worker",
                "/stop_worker",
                "/kill",
            ] {
                let method = if path.starts_with("/queue") {
                    Method::GET
                } else {
                    Method::PUT
                };
                assert_eq!(call(method, path, Some(&intake)).await, 403, "{path}");
            }
            assert_eq!(
                call(Method::GET, "/queue?type=task", Some(&manager)).await,
                200
            );
            assert_eq!(call(Method::PUT, "/start_worker", Some(&admin)).await, 200);
            let created = app
                .call(
                    Method::POST,
                    &format!("{base}/create"),
                    Some(("application/json", order("9").to_string())),
                    Some(&intake),
                )
                .await;
            assert_eq!(created.status, 200);
        }
    }
);

tillwire_testkit::both_backends!(
    kill_stops_the_integration_until_it_is_started,
    |db| async move {
        let app = start(db, true, None).await;
        let base = format!("{}/erp/hosses", app.main);
        assert_eq!(app.put(&format!("{base}/start_worker")).await.status, 200);
        let killed = app.put(&format!("{base}/kill")).await;
        assert_eq!(killed.json(), json!({"Shutting down": std::process::id()}));
        let integration = app.erp.integrations.get(app.integration.id).await.unwrap();
        assert!(!integration.active && !integration.worker_running);
        assert_eq!(
            app.get(&format!("{base}/alive")).await.status,
            404,
            "a killed integration is not served"
        );
        app.erp
            .start(IntegrationId(app.integration.id.0))
            .await
            .unwrap();
        assert_eq!(
            app.get(&format!("{base}/alive")).await.json()["worker_running"],
            true
        );
    }
);
