//! An in-process directory over a fresh database, loaded with a small chain, and a client that calls its
//! router the way the bot and the report workers do.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use serde_json::Value;
use tillwire_directory::{AccessConfig, Directory};
use tillwire_platform::{Platform, Settings, Store};
use tillwire_testkit::TestDatabase;
use tower::ServiceExt;

pub use serde_json::json;

/// Both mounts of the API: every contract test runs against each.
pub const PREFIXES: [&str; 2] = ["", "/api"];

pub const FIXTURE: &str = r#"{
  "regions": [{"id": 1, "name": "Москва 1"}, {"id": 2, "name": "Москва 2"}],
  "departments": [{"id": 4, "name": "Подольск", "uuid": "dep-4"}],
  "units": [
    {"id": 1, "name": "Москва 1-1", "uuid": "u-1", "region_id": 1, "department_id": 4,
     "office_manager_account_name": "om1", "dodo_is_api_account_name": "api1"},
    {"id": 2, "name": "Москва 1-2", "uuid": "u-2", "region_id": 1, "department_id": 4},
    {"id": 3, "name": "Москва 2-1", "uuid": "u-3", "region_id": 2, "department_id": 4},
    {"id": 4, "name": "Подольск-3", "uuid": "u-4", "region_id": 2, "department_id": 4}
  ],
  "report_types": [
    {"id": 1, "name": "STATISTICS", "verbose_name": "Отчёты по статистике", "is_active": true, "priority": 1},
    {"id": 2, "name": "INGREDIENTS_STOP_SALES", "verbose_name": "Стопы (тесто, сыр, пицца-соус)", "is_active": true, "priority": 5},
    {"id": 3, "name": "STREET_STOP_SALES", "verbose_name": "Стопы (Улица)"},
    {"id": 7, "name": "CANCELED_ORDERS", "verbose_name": "Отмены заказов", "is_active": true, "priority": 10},
    {"id": 10, "name": "COOKING_TIME", "verbose_name": "Время приготовления (общее)", "parent_id": 1, "is_active": true}
  ],
  "roles": [
    {"id": 1, "name": "Manager", "access_code": "secret-one", "unit_ids": [1, 2, 3], "report_type_ids": [1, 2, 3, 10]},
    {"id": 2, "name": "Other", "access_code": "secret-two", "unit_ids": [4], "report_type_ids": [7]}
  ],
  "telegram_chats": [
    {"chat_id": 111, "type": "PRIVATE", "title": "Eldos", "username": "eldos", "role_id": 1},
    {"chat_id": 222, "type": "PRIVATE", "title": "Nobody", "username": null, "role_id": null},
    {"chat_id": -1001, "type": "GROUP", "title": "Pizza team", "username": "", "role_id": null}
  ]
}"#;

pub struct Harness {
    pub platform: Platform,
    router: Router,
    _db: TestDatabase,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub location: Option<String>,
}

impl Harness {
    /// Migrated, seeded and loaded with [`FIXTURE`]; clients on loopback need no token.
    pub async fn new(db: TestDatabase) -> Harness {
        Self::with_access(db, AccessConfig::default()).await
    }

    pub async fn with_access(db: TestDatabase, access: AccessConfig) -> Harness {
        let store = Store::connect(db.url()).await.expect("connect");
        store
            .migrate(&[
                tillwire_platform::MIGRATIONS,
                tillwire_units::MIGRATIONS,
                tillwire_directory::MIGRATIONS,
            ])
            .await
            .expect("migrate");
        let platform = Platform::new(store, Settings::for_database(db.url()));
        tillwire_directory::seed::init(&platform)
            .await
            .expect("seed");
        tillwire_directory::import::import(&platform.store, FIXTURE, "test")
            .await
            .expect("fixture");
        // Each group shows its errors as the platform's assembly would have it.
        let router = tillwire_directory::routes(Directory::with_access(platform.clone(), access))
            .into_iter()
            .fold(Router::new(), |router, (_, answer, routes)| {
                router.merge(
                    routes.layer(axum::middleware::from_fn(move |request, next| {
                        tillwire_platform::error::render(answer, request, next)
                    })),
                )
            });
        Harness {
            platform,
            router,
            _db: db,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(method, path, body, "127.0.0.1:5000", None)
            .await
    }

    /// A request from `from`, with an optional `Authorization` header value.
    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        from: &str,
        authorization: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).expect("request");
        let address: SocketAddr = from.parse().expect("address");
        request.extensions_mut().insert(ConnectInfo(address));
        self.send(request).await
    }

    /// A request from loopback with these headers and this raw body.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.to_owned())).expect("request"))
            .await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            location,
        }
    }

    /// The router, for requests the helpers above do not cover (pages, uploads).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
}

/// The original's envelope for a message.
pub fn envelope(message: &str) -> Value {
    json!({"message": message, "extra": {}})
}

impl Harness {
    /// POSTs a raw body labelled as JSON (for malformed input).
    pub async fn call_raw(&self, path: &str, body: &str) -> Reply {
        self.call_with(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await
    }
}
