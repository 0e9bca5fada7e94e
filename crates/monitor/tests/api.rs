//! The monitor's JSON API over real HTTP, on both backends: who may call it (by token scope), registers written
//! and read (duplicates, bad fields named, declared ones refused, the poller told), the state, incidents filtered
//! and acknowledged (with the domain event), and a register's history.

use serde_json::{Value, json};
use tillwire_monitor::config::Declared;
use tillwire_monitor::health::{Change, Health};
use tillwire_monitor::storage::{Incidents, Subject};
use tillwire_monitor::{BaseUrl, Kind, RegisterId, RegisterName};
use tillwire_platform::tokens::{Scope, TokenName, Tokens};
use tillwire_platform::{Platform, Settings, Store, area, read};
use tillwire_testkit::reqwest::{Client, Method};
use tillwire_testkit::{TestDatabase, http_client, serve_router};
use tillwire_units::{UnitName, Units};

const REGISTERS: &str = "/api/v1/monitor/registers";

struct App {
    base: String,
    client: Client,
    platform: Platform,
    unit: i64,
    other_unit: i64,
    monitor_token: String,
    admin_token: String,
    other_token: String,
    _db: TestDatabase,
}

struct Reply {
    status: u16,
    body: Value,
}

async fn token(platform: &Platform, name: &str, scope: Scope, unit: Option<i64>) -> String {
    Tokens(&platform.store)
        .issue(&TokenName::parse(name).unwrap(), &scope, unit, "test")
        .await
        .expect("token")
        .plain
}

async fn start(db: TestDatabase) -> App {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&area::migrations(&[
            &tillwire_platform::AREA,
            &tillwire_units::AREA,
            &tillwire_monitor::AREA,
        ]))
        .await
        .expect("migrate");
    let platform = Platform::new(store, Settings::for_database(db.url()));
    let units = Units(&platform.store);
    let unit = units
        .ensure_default("Главный")
        .await
        .unwrap()
        .expect("default unit")
        .0;
    let other_unit = units
        .create(&UnitName::parse("Второй").unwrap())
        .await
        .unwrap()
        .0;
    // The monitor's poller task is not started: the test drives the state itself.
    let built = area::assemble(
        &[
            &tillwire_platform::AREA,
            &tillwire_units::AREA,
            &tillwire_monitor::AREA,
        ],
        &platform,
    )
    .expect("assemble");
    let (base, _server) = serve_router(built.router).await;
    App {
        base,
        client: http_client(),
        monitor_token: token(&platform, "noc", Scope::area("monitor"), None).await,
        admin_token: token(&platform, "root", Scope::ADMIN, None).await,
        other_token: token(&platform, "routes", Scope::area("directory"), None).await,
        platform,
        unit,
        other_unit,
        _db: db,
    }
}

impl App {
    async fn call_with(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(Some(&self.monitor_token), method, path, body)
            .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
}

fn register(unit: i64, name: &str) -> Value {
    json!({"unit_id": unit, "name": name, "url": "http://10.1.16.11:8080", "timezone": "Asia/Yekaterinburg",
           "region": "Урал", "thresholds": {"offline_polls": 5}})
}

tillwire_testkit::both_backends!(tokens_decide_who_may_call, |db| async move {
    let app = start(db).await;
    let device = token(&app.platform, "till", Scope::DEVICE, Some(app.unit)).await;
    for path in [
        REGISTERS,
        "/api/v1/monitor/state",
        "/api/v1/monitor/incidents",
    ] {
        let none = app.call_with(None, Method::GET, path, None).await;
        assert_eq!(none.status, 401, "{path}");
        assert_eq!(none.body["code"], "login_required", "{}", none.body);
        assert!(none.body["error"].is_string() && none.body["fields"].is_object());
        let unknown = app
            .call_with(Some("tw_not-a-token"), Method::GET, path, None)
            .await;
        assert_eq!(unknown.status, 401, "{path}");
        for other in [&app.other_token, &device] {
            let refused = app.call_with(Some(other), Method::GET, path, None).await;
            assert_eq!(refused.status, 403, "{path}");
            assert_eq!(refused.body["code"], "forbidden");
        }
        for allowed in [&app.monitor_token, &app.admin_token] {
            let ok = app.call_with(Some(allowed), Method::GET, path, None).await;
            assert_eq!(ok.status, 200, "{path}: {}", ok.body);
            assert_eq!(ok.body, json!([]));
        }
    }
    // A write without a token writes nothing, and is refused before its body is read.
    let refused = app
        .call_with(
            Some(&app.other_token),
            Method::POST,
            REGISTERS,
            Some(json!({"nonsense": true})),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.get(REGISTERS).await.body, json!([]));
});

tillwire_testkit::both_backends!(registers_are_written_and_read, |db| async move {
    let app = start(db).await;
    let mut changes = app.platform.events.subscribe();
    let created = app
        .call(
            Method::POST,
            REGISTERS,
            Some(register(app.unit, " Касса 1 ")),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(
        (
            &created.body["name"],
            &created.body["url"],
            &created.body["timezone"],
            &created.body["region"],
            &created.body["enabled"],
            &created.body["declared"],
            &created.body["thresholds"],
        ),
        (
            &json!("Касса 1"),
            &json!("http://10.1.16.11:8080/"),
            &json!("Asia/Yekaterinburg"),
            &json!("Урал"),
            &json!(true),
            &json!(false),
            &json!({"offline_polls": 5}),
        )
    );
    let event = changes.recv().await.expect("event");
    assert_eq!(
        (event.topic.as_str(), event.unit_id),
        (tillwire_monitor::TOPIC_REGISTERS_CHANGED, app.unit)
    );

    // The same name in the same unit: 409, and nothing added; in another unit it is fine.
    let duplicate = app
        .call(Method::POST, REGISTERS, Some(register(app.unit, "Касса 1")))
        .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);
    assert_eq!(duplicate.body["code"], "conflict");
    let elsewhere = app
        .call(
            Method::POST,
            REGISTERS,
            Some(
                json!({"unit_id": app.other_unit, "name": "Касса 1", "url": "https://k.local/ukm"}),
            ),
        )
        .await;
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.body);
    assert_eq!(elsewhere.body["timezone"], Value::Null);
    assert_eq!(elsewhere.body["thresholds"], json!({}));
    let other_id = elsewhere.body["id"].as_i64().unwrap();

    let all = app.get(REGISTERS).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let one_unit = app
        .get(&format!("{REGISTERS}?unit={}", app.other_unit))
        .await;
    assert_eq!(one_unit.body.as_array().unwrap().len(), 1);
    assert_eq!(one_unit.body[0]["id"], other_id);
    let bad_unit = app.get(&format!("{REGISTERS}?unit=x")).await;
    assert_eq!(
        (bad_unit.status, bad_unit.body["fields"]["unit"].is_string()),
        (422, true)
    );

    let got = app.get(&format!("{REGISTERS}/{id}")).await;
    assert_eq!((got.status, &got.body), (200, &created.body));
    assert_eq!(app.get(&format!("{REGISTERS}/999999")).await.status, 404);
    assert_eq!(app.get(&format!("{REGISTERS}/abc")).await.status, 400);

    // Bad fields: each named, nothing written.
    let bad = app
        .call(
            Method::POST,
            REGISTERS,
            Some(json!({"unit_id": app.unit, "name": "Касса 9", "url": "ftp://x/", "timezone": "Mars/Base",
                        "thresholds": {"offline_polls": 0, "bogus": 1}, "colour": "red"})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let fields = bad.body["fields"].as_object().unwrap();
    for field in [
        "url",
        "timezone",
        "thresholds.offline_polls",
        "thresholds.bogus",
        "colour",
    ] {
        assert!(fields.contains_key(field), "{field}: {}", bad.body);
    }
    let missing = app.call(Method::POST, REGISTERS, Some(json!({}))).await;
    assert_eq!(missing.status, 422);
    for field in ["unit_id", "name", "url"] {
        assert!(
            missing.body["fields"][field].is_string(),
            "{field}: {}",
            missing.body
        );
    }
    let no_unit = app
        .call(Method::POST, REGISTERS, Some(register(424242, "Касса 9")))
        .await;
    assert_eq!(no_unit.status, 422, "{}", no_unit.body);
    assert!(no_unit.body["fields"]["unit_id"].is_string());
    let not_json = app
        .client
        .post(format!("{}{REGISTERS}", app.base))
        .bearer_auth(&app.monitor_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    assert_eq!(app.get(REGISTERS).await.body.as_array().unwrap().len(), 2);

    // PUT replaces the register; a bad one changes nothing; a taken name is a conflict.
    let updated = app
        .call(
            Method::PUT,
            &format!("{REGISTERS}/{id}"),
            Some(json!({"unit_id": app.unit, "name": "Касса 1", "url": "http://10.1.16.12/", "enabled": false})),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        (
            &updated.body["url"],
            &updated.body["enabled"],
            &updated.body["timezone"],
            &updated.body["thresholds"]
        ),
        (
            &json!("http://10.1.16.12/"),
            &json!(false),
            &Value::Null,
            &json!({})
        )
    );
    let bad_update = app
        .call(
            Method::PUT,
            &format!("{REGISTERS}/{id}"),
            Some(json!({"unit_id": app.unit, "name": "Касса 1", "url": "http://10.1.16.13/", "thresholds": {"close_after": 1000}})),
        )
        .await;
    assert_eq!(bad_update.status, 422);
    assert!(bad_update.body["fields"]["thresholds.close_after"].is_string());
    let taken = app
        .call(
            Method::PUT,
            &format!("{REGISTERS}/{other_id}"),
            Some(json!({"unit_id": app.unit, "name": "Касса 1", "url": "http://k/"})),
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert_eq!(
        app.get(&format!("{REGISTERS}/{id}")).await.body,
        updated.body
    );
    assert_eq!(
        app.call(
            Method::PUT,
            &format!("{REGISTERS}/999999"),
            Some(register(app.unit, "X"))
        )
        .await
        .status,
        404
    );

    // DELETE: 204, then gone.
    let deleted = app
        .call(Method::DELETE, &format!("{REGISTERS}/{other_id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.get(&format!("{REGISTERS}/{other_id}")).await.status,
        404
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("{REGISTERS}/{other_id}"), None)
            .await
            .status,
        404
    );
});

tillwire_testkit::both_backends!(declared_registers_are_read_only, |db| async move {
    let app = start(db).await;
    tillwire_monitor::declare(
        &app.platform,
        &[Declared {
            unit: None,
            name: RegisterName::parse("Из файла").unwrap(),
            url: BaseUrl::parse("http://10.0.0.1/").unwrap(),
            zone: None,
            region: String::new(),
        }],
    )
    .await
    .unwrap();
    let all = app.get(REGISTERS).await;
    assert_eq!(all.body[0]["declared"], true);
    let id = all.body[0]["id"].as_i64().unwrap();
    let put = app
        .call(
            Method::PUT,
            &format!("{REGISTERS}/{id}"),
            Some(register(app.unit, "Из файла")),
        )
        .await;
    assert_eq!(put.status, 409, "{}", put.body);
    assert_eq!(put.body["code"], "declared");
    assert!(
        put.body["error"]
            .as_str()
            .unwrap()
            .contains("tillwire.toml")
    );
    let delete = app
        .call(Method::DELETE, &format!("{REGISTERS}/{id}"), None)
        .await;
    assert_eq!(
        (delete.status, &delete.body["code"]),
        (409, &json!("declared"))
    );
    assert_eq!(
        app.get(&format!("{REGISTERS}/{id}")).await.body["url"],
        "http://10.0.0.1/"
    );
});

tillwire_testkit::both_backends!(state_incidents_and_history, |db| async move {
    let app = start(db).await;
    let first = app
        .call(Method::POST, REGISTERS, Some(register(app.unit, "Касса 1")))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let second = app
        .call(
            Method::POST,
            REGISTERS,
            Some(register(app.other_unit, "Касса 2")),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    // Before any poll: the registers, with no state.
    let state = app.get("/api/v1/monitor/state").await;
    assert_eq!(state.status, 200);
    assert_eq!(state.body.as_array().unwrap().len(), 2);
    assert_eq!(state.body[0]["state"], Value::Null);

    let incidents = Incidents(app.platform.store.clone());
    let mut health = Health {
        up: Some(false),
        ofd: Some(42),
        cashier: Some("7".into()),
        ..Default::default()
    };
    health.open.insert(Kind::Offline);
    health.open.insert(Kind::OfdBacklog);
    let subject = Subject {
        register: RegisterId(first),
        register_name: "Касса 1".into(),
        unit_id: app.unit,
    };
    incidents
        .apply(
            &subject,
            &health,
            &[
                Change::Open(Kind::Offline, String::new()),
                Change::Open(Kind::OfdBacklog, "42".into()),
            ],
        )
        .await
        .unwrap();
    incidents
        .apply(
            &Subject {
                register: RegisterId(second),
                register_name: "Касса 2".into(),
                unit_id: app.other_unit,
            },
            &Health {
                up: Some(true),
                ..Default::default()
            },
            &[Change::Open(Kind::NoPaper, String::new())],
        )
        .await
        .unwrap();

    let state = app
        .get(&format!("/api/v1/monitor/state?unit={}", app.unit))
        .await;
    assert_eq!(state.body.as_array().unwrap().len(), 1, "{}", state.body);
    let mine = &state.body[0];
    assert_eq!(mine["register"]["id"], first);
    assert_eq!(
        (
            &mine["state"]["up"],
            &mine["state"]["ofd"],
            &mine["state"]["cashier"],
            &mine["state"]["open"]
        ),
        (
            &json!(false),
            &json!(42),
            &json!("7"),
            &json!(["offline", "ofd_backlog"])
        )
    );
    assert!(mine["state"].get("streaks").is_none());

    let all = app.get("/api/v1/monitor/incidents").await;
    assert_eq!(all.body.as_array().unwrap().len(), 3, "{}", all.body);
    let by_unit = app
        .get(&format!(
            "/api/v1/monitor/incidents?unit={}",
            app.other_unit
        ))
        .await;
    assert_eq!(by_unit.body.as_array().unwrap().len(), 1);
    assert_eq!(by_unit.body[0]["kind"], "no_paper");
    let by_register = app
        .get(&format!(
            "/api/v1/monitor/incidents?register={first}&kind=ofd_backlog&open=true"
        ))
        .await;
    assert_eq!(by_register.body.as_array().unwrap().len(), 1);
    assert_eq!(by_register.body[0]["detail"], "42");
    let limited = app.get("/api/v1/monitor/incidents?limit=1").await;
    assert_eq!(limited.body.as_array().unwrap().len(), 1);
    let future = app
        .get("/api/v1/monitor/incidents?since_ms=99999999999999")
        .await;
    assert_eq!(future.body, json!([]));
    let bad = app
        .get("/api/v1/monitor/incidents?kind=fire&limit=0&open=maybe&unit=x")
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    for field in ["kind", "limit", "open", "unit"] {
        assert!(
            bad.body["fields"][field].is_string(),
            "{field}: {}",
            bad.body
        );
    }
    assert_eq!(
        app.get("/api/v1/monitor/incidents?limit=1001").await.status,
        422
    );

    // Acknowledge: by the token's name, with the domain event; again changes nothing.
    let offline = by_register.body[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/monitor/incidents/{offline}/acknowledge");
    let acknowledged = app.call(Method::POST, &path, None).await;
    assert_eq!(acknowledged.status, 200, "{}", acknowledged.body);
    assert_eq!(acknowledged.body["acknowledged_by"], "noc");
    let at = acknowledged.body["acknowledged_ms"].as_i64().unwrap();
    let again = app
        .call_with(Some(&app.admin_token), Method::POST, &path, None)
        .await;
    assert_eq!(
        (
            again.body["acknowledged_by"].clone(),
            again.body["acknowledged_ms"].as_i64()
        ),
        (json!("noc"), Some(at))
    );
    assert_eq!(
        app.call(
            Method::POST,
            "/api/v1/monitor/incidents/999999/acknowledge",
            None
        )
        .await
        .status,
        404
    );
    let refused = app
        .call_with(Some(&app.other_token), Method::POST, &path, None)
        .await;
    assert_eq!(refused.status, 403);
    let events: Vec<(Option<i64>, String)> = read!(&app.platform.store, db => sqlx::query_as(
        "SELECT unit_id, payload FROM domain_events WHERE kind = 'monitor.incident_acknowledged'",
    )
    .fetch_all(db)
    .await)
    .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let payload: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(events[0].0, Some(app.unit));
    assert_eq!(
        (
            &payload["incident"],
            &payload["register_name"],
            &payload["acknowledged_by"]
        ),
        (&json!(offline), &json!("Касса 1"), &json!("noc"))
    );

    // History: the register's incidents, its samples (none yet), the span asked for.
    let history = app
        .get(&format!("{REGISTERS}/{first}/history?hours=2"))
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(history.body["incidents"].as_array().unwrap().len(), 2);
    assert_eq!(history.body["samples"], json!([]));
    let span =
        history.body["until_ms"].as_i64().unwrap() - history.body["since_ms"].as_i64().unwrap();
    assert_eq!(span, 2 * 3_600_000);
    for bad in ["0", "49", "x"] {
        let reply = app
            .get(&format!("{REGISTERS}/{first}/history?hours={bad}"))
            .await;
        assert_eq!(reply.status, 422, "{bad}");
        assert!(reply.body["fields"]["hours"].is_string());
    }
    assert_eq!(
        app.get(&format!("{REGISTERS}/999999/history")).await.status,
        404
    );
});
