//! The iikoCloud simulator over real HTTP, checked against spec `pos_protocols.md` B.1–B.11: tokens (v1, v2 JWT,
//! TTL, revocation), the order reads and their shapes, `by_revision`'s window, webhook delivery to a receiver
//! (batches, duplicates, reordering, retries, the auth header), the fault knobs, terminal-local times across a
//! DST change, and the scenario scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tillwire_iiko::sim::cloud::{
    CloudSim, DEFAULT_API_LOGIN, Fault, WebhookBehaviour, demo_script,
};

const ORG: &str = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9";
const GROUP: &str = "4fab19a5-203c-4bf5-94eb-f572aa8b117b";
const TABLE: &str = "a1b2c3d4-0000-4000-8000-000000000005";
const BORSCH: &str = "b0000000-0000-4000-8000-000000000101";
const TEA: &str = "b0000000-0000-4000-8000-000000000102";

/// A simulator on a loopback port with one organization on Moscow time, a table and two products.
async fn world() -> (CloudSim, Api) {
    let (sim, base) = CloudSim::start().await;
    sim.add_organization(ORG, "Кафе 1");
    sim.add_terminal_group(ORG, GROUP, "Основная группа", "Russian Standard Time");
    sim.add_table(ORG, TABLE, 5);
    sim.add_product(ORG, BORSCH, "101", "Борщ", "280.50");
    sim.add_product(ORG, TEA, "102", "Чай", "90");
    (sim, Api::new(base))
}

/// A client of the simulator's API.
struct Api {
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    fn new(base: String) -> Self {
        Api {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// A method call; an empty `token` sends no `Authorization`.
    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(path, token, body.to_string(), &[]).await
    }

    async fn send(
        &self,
        path: &str,
        token: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the sim answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn token(&self) -> String {
        let answer = self
            .post(
                "/api/1/access_token",
                "",
                json!({"apiLogin": DEFAULT_API_LOGIN}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["token"].as_str().expect("a token").to_owned()
    }
}

/// An ErrorResponse (B.3) with this status.
fn assert_error(answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(answer.body["correlationId"].is_string(), "{}", answer.body);
    assert!(
        answer.body["errorDescription"].is_string(),
        "{}",
        answer.body
    );
    assert!(answer.body.get("error").is_some(), "{}", answer.body);
}

fn ids(orders: &Value) -> Vec<String> {
    orders
        .as_array()
        .expect("orders")
        .iter()
        .map(|order| order["id"].as_str().expect("an id").to_owned())
        .collect()
}

// Tokens.

#[tokio::test]
async fn v1_tokens_are_issued_to_known_logins_and_die_when_revoked() {
    let (sim, api) = world().await;
    let answer = api
        .post("/api/1/access_token", "", json!({"apiLogin": "nobody"}))
        .await;
    assert_error(&answer, StatusCode::UNAUTHORIZED);

    let token = api.token().await;
    let organizations = api.post("/api/1/organizations", &token, json!({})).await;
    assert_eq!(organizations.status, StatusCode::OK);
    assert!(organizations.body["correlationId"].is_string());
    assert_eq!(organizations.body["organizations"][0]["name"], "Кафе 1");
    assert_eq!(
        organizations.body["organizations"][0]["responseType"],
        "Simple"
    );

    let without = api.post("/api/1/organizations", "", json!({})).await;
    assert_error(&without, StatusCode::UNAUTHORIZED);
    let forged = api.post("/api/1/organizations", "forged", json!({})).await;
    assert_error(&forged, StatusCode::UNAUTHORIZED);

    sim.revoke_tokens();
    let revoked = api.post("/api/1/organizations", &token, json!({})).await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED);

    sim.add_api_login("second-login");
    let second = api
        .post(
            "/api/1/access_token",
            "",
            json!({"apiLogin": "second-login"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(sim.tokens_issued(), 2);
}

#[tokio::test]
async fn v2_tokens_are_jwts_with_a_readable_exp() {
    let (sim, api) = world().await;
    sim.add_api_key("key-1", "app-1", "secret-1");
    let wrong = api
        .post(
            "/api/v2/access_token",
            "",
            json!({"apiKey": "key-1", "appId": "app-1", "clientSecret": "wrong"}),
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED);

    let before = Utc::now().timestamp();
    let answer = api
        .post(
            "/api/v2/access_token",
            "",
            json!({"apiKey": "key-1", "appId": "app-1", "clientSecret": "secret-1"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let token = answer.body["token"].as_str().expect("a token");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url claims"))
            .expect("JSON claims");
    let exp = claims["exp"].as_i64().expect("an exp claim");
    assert!(
        exp >= before + 3600 && exp <= Utc::now().timestamp() + 3601,
        "exp {exp} is an hour from {before}"
    );

    let organizations = api.post("/api/1/organizations", token, json!({})).await;
    assert_eq!(organizations.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_expire_after_their_ttl() {
    let (sim, api) = world().await;
    sim.set_token_ttl(Duration::from_secs(60));
    let token = api.token().await;
    let fresh = api.post("/api/1/organizations", &token, json!({})).await;
    assert_eq!(fresh.status, StatusCode::OK);
    sim.advance(Duration::from_secs(61));
    let stale = api.post("/api/1/organizations", &token, json!({})).await;
    assert_error(&stale, StatusCode::UNAUTHORIZED);

    // On the real clock too.
    sim.set_token_ttl(Duration::from_millis(200));
    let short = api.token().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = api.post("/api/1/organizations", &short, json!({})).await;
    assert_error(&expired, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.tokens_issued(), 2);
}

// The world and the reads.

#[tokio::test]
async fn organizations_terminal_groups_and_menu_have_the_spec_shapes() {
    let (_sim, api) = world().await;
    let token = api.token().await;
    let token = token.as_str();

    let extended = api
        .post(
            "/api/1/organizations",
            token,
            json!({"organizationIds": null, "returnAdditionalInfo": true, "includeDisabled": false}),
        )
        .await;
    assert_eq!(
        extended.body["organizations"][0]["responseType"],
        "Extended"
    );
    assert_eq!(extended.body["organizations"][0]["currencyIsoName"], "RUB");

    let groups = api
        .post(
            "/api/1/terminal_groups",
            token,
            json!({"organizationIds": [ORG], "includeDisabled": false}),
        )
        .await;
    assert_eq!(groups.status, StatusCode::OK, "{}", groups.body);
    let group = &groups.body["terminalGroups"][0];
    assert_eq!(group["organizationId"], ORG);
    assert_eq!(group["items"][0]["id"], GROUP);
    assert_eq!(group["items"][0]["timeZone"], "Russian Standard Time");
    assert_eq!(
        groups.body["terminalGroupsInSleep"],
        json!([{"organizationId": ORG, "items": []}])
    );

    let alive = api
        .post(
            "/api/1/terminal_groups/is_alive",
            token,
            json!({"organizationIds": [ORG], "terminalGroupIds": [GROUP]}),
        )
        .await;
    assert_eq!(alive.body["isAliveStatus"][0]["isAlive"], true);

    let menu = api
        .post(
            "/api/1/nomenclature",
            token,
            json!({"organizationId": ORG, "startRevision": 0}),
        )
        .await;
    assert_eq!(menu.status, StatusCode::OK, "{}", menu.body);
    let products = menu.body["products"].as_array().expect("products");
    assert_eq!(products.len(), 2);
    assert_eq!(products[0]["code"], "101");
    assert_eq!(products[0]["type"], "Dish");
    assert_eq!(
        products[0]["sizePrices"][0]["price"]["currentPrice"],
        json!(280.5)
    );
    assert_eq!(menu.body["revision"], 2);
    let unchanged = api
        .post(
            "/api/1/nomenclature",
            token,
            json!({"organizationId": ORG, "startRevision": 2}),
        )
        .await;
    assert_eq!(unchanged.body["products"], json!([]));

    let sections = api
        .post(
            "/api/1/reserve/available_restaurant_sections",
            token,
            json!({"terminalGroupIds": [GROUP], "returnSchema": false}),
        )
        .await;
    assert_eq!(
        sections.body["restaurantSections"][0]["tables"][0]["number"],
        5
    );

    let unknown = api
        .post(
            "/api/1/terminal_groups",
            token,
            json!({"organizationIds": ["not-an-org"]}),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_and_unknown_paths_get_error_responses() {
    let (_sim, api) = world().await;
    let token = api.token().await;
    let bad_json = api
        .send("/api/1/order/by_table", &token, "{not json".into(), &[])
        .await;
    assert_error(&bad_json, StatusCode::BAD_REQUEST);
    let missing = api
        .post(
            "/api/1/order/by_table",
            &token,
            json!({"organizationIds": [ORG]}),
        )
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST);
    let bad_date = api
        .post(
            "/api/1/order/by_table",
            &token,
            json!({"organizationIds": [ORG], "tableIds": [TABLE], "dateFrom": "yesterday"}),
        )
        .await;
    assert_error(&bad_date, StatusCode::BAD_REQUEST);
    let both_ids = api
        .post(
            "/api/1/deliveries/by_id",
            &token,
            json!({"organizationId": ORG, "orderIds": [], "posOrderIds": []}),
        )
        .await;
    assert_error(&both_ids, StatusCode::BAD_REQUEST);
    let unknown = api.post("/api/1/no_such_method", &token, json!({})).await;
    assert_error(&unknown, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn table_orders_are_read_with_items_statuses_and_deletions() {
    let (sim, api) = world().await;
    sim.open_table_order(ORG, GROUP, TABLE, "order-1", 42);
    sim.add_item("order-1", "pos-1", BORSCH, "2");
    sim.add_item("order-1", "pos-2", TEA, "0.5");
    sim.add_item("order-1", "pos-3", TEA, "1");
    sim.delete_item("order-1", "pos-3");
    sim.set_item_status("order-1", "pos-1", "CookingStarted");
    sim.set_table_order_status("order-1", "Bill");
    let token = api.token().await;

    let by_table = api
        .post(
            "/api/1/order/by_table",
            &token,
            json!({"organizationIds": [ORG], "tableIds": [TABLE], "statuses": ["New", "Bill"],
                   "dateFrom": null}),
        )
        .await;
    assert_eq!(by_table.status, StatusCode::OK, "{}", by_table.body);
    let info = &by_table.body["orders"][0];
    assert_eq!(info["id"], "order-1");
    assert_eq!(info["organizationId"], ORG);
    assert_eq!(info["creationStatus"], "Success");
    assert!(info["errorInfo"].is_null());
    assert!(info["posId"].is_string());
    let order = &info["order"];
    assert_eq!(order["status"], "Bill");
    assert_eq!(order["number"], 42);
    assert_eq!(order["tableIds"], json!([TABLE]));
    assert_eq!(order["terminalGroupId"], GROUP);
    assert!(order["whenBillPrinted"].is_string());
    assert_eq!(order["sum"], json!(606)); // 2 × 280.50 + 0.5 × 90; the deleted tea is out
    let items = order["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["type"], "Product");
    assert_eq!(items[0]["product"], json!({"id": BORSCH, "name": "Борщ"}));
    assert_eq!(items[0]["price"], json!(280.5));
    assert_eq!(items[0]["cost"], json!(561));
    assert_eq!(items[0]["resultSum"], json!(561));
    assert_eq!(items[0]["status"], "CookingStarted");
    assert!(items[0]["whenPrinted"].is_string());
    assert_eq!(items[1]["amount"], json!(0.5));
    assert_eq!(items[1]["modifiers"], json!([]));
    assert!(items[1]["deleted"].is_null());
    assert!(items[2]["deleted"]["deletionMethod"]["id"].is_string());
    assert_eq!(
        sim.order_json("order-1").expect("the order")["order"],
        *order
    );

    let closed_only = api
        .post(
            "/api/1/order/by_table",
            &token,
            json!({"organizationIds": [ORG], "tableIds": [TABLE], "statuses": ["Closed"]}),
        )
        .await;
    assert_eq!(closed_only.body["orders"], json!([]));

    sim.set_table_order_status("order-1", "Closed");
    let by_id = api
        .post(
            "/api/1/order/by_id",
            &token,
            json!({"organizationIds": [ORG], "orderIds": ["order-1"]}),
        )
        .await;
    let order = &by_id.body["orders"][0]["order"];
    assert_eq!(order["status"], "Closed");
    assert!(order["whenClosed"].is_string());
    assert_eq!(order["payments"][0]["sum"], json!(606));
    let timestamps = [
        info["timestamp"].as_i64(),
        by_id.body["orders"][0]["timestamp"].as_i64(),
    ];
    assert!(timestamps[1] > timestamps[0], "{timestamps:?}");
}

#[tokio::test]
async fn deliveries_are_read_by_id_by_date_and_status() {
    let (sim, api) = world().await;
    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 40, 0).unwrap());
    sim.create_delivery(ORG, GROUP, "delivery-1", 1234);
    sim.add_item("delivery-1", "pos-1", BORSCH, "4");
    sim.create_delivery(ORG, GROUP, "delivery-2", 1235);
    sim.set_delivery_status("delivery-2", "Cancelled");
    let token = api.token().await;

    let by_id = api
        .post(
            "/api/1/deliveries/by_id",
            &token,
            json!({"organizationId": ORG, "orderIds": ["delivery-1"]}),
        )
        .await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.body);
    let order = &by_id.body["orders"][0]["order"];
    assert_eq!(order["status"], "Unconfirmed");
    assert_eq!(order["number"], 1234);
    assert_eq!(order["sum"], json!(1122));
    assert_eq!(order["whenCreated"], "2024-05-01 12:40:00.000"); // Moscow, UTC+3
    assert_eq!(order["completeBefore"], "2024-05-01 13:40:00.000");
    assert_eq!(order["orderType"]["orderServiceType"], "DeliveryByCourier");
    assert!(order["cancelInfo"].is_null());

    let by_pos = api
        .post(
            "/api/1/deliveries/by_id",
            &token,
            json!({"organizationId": ORG,
                   "posOrderIds": [by_id.body["orders"][0]["posId"].clone()]}),
        )
        .await;
    assert_eq!(ids(&by_pos.body["orders"]), ["delivery-1"]);

    let cancelled = api
        .post(
            "/api/1/deliveries/by_delivery_date_and_status",
            &token,
            json!({"organizationIds": [ORG], "deliveryDateFrom": "2024-05-01 00:00:00.000",
                   "deliveryDateTo": "2024-05-02 00:00:00.000", "statuses": ["Cancelled"]}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["maxRevision"], sim.revision());
    let group = &cancelled.body["ordersByOrganizations"][0];
    assert_eq!(group["organizationId"], ORG);
    assert_eq!(ids(&group["orders"]), ["delivery-2"]);
    let info = &group["orders"][0]["order"]["cancelInfo"];
    assert_eq!(info["whenCancelled"], "2024-05-01 12:40:00.000");

    let later = api
        .post(
            "/api/1/deliveries/by_delivery_date_and_status",
            &token,
            json!({"organizationIds": [ORG], "deliveryDateFrom": "2024-05-01 14:00:00.000"}),
        )
        .await;
    assert_eq!(later.body["ordersByOrganizations"][0]["orders"], json!([]));

    let bad_status = api
        .post(
            "/api/1/deliveries/by_delivery_date_and_status",
            &token,
            json!({"organizationIds": [ORG], "deliveryDateFrom": "2024-05-01 00:00:00.000",
                   "statuses": ["Teleported"]}),
        )
        .await;
    assert_error(&bad_status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn by_revision_returns_newer_changes_only_and_refuses_starts_beyond_3_hours() {
    let (sim, api) = world().await;
    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap());
    sim.create_delivery(ORG, GROUP, "delivery-1", 1);
    sim.add_item("delivery-1", "pos-1", TEA, "1");
    let known = sim.revision();
    assert_eq!(known, 2);
    sim.advance(Duration::from_secs(60));
    sim.create_delivery(ORG, GROUP, "delivery-2", 2);
    sim.set_delivery_status("delivery-1", "CookingStarted");
    sim.open_table_order(ORG, GROUP, TABLE, "table-order", 7);
    sim.set_token_ttl(Duration::from_secs(24 * 3600)); // the clock jumps hours ahead
    let token = api.token().await;
    let poll = |start: i64| {
        api.post(
            "/api/1/deliveries/by_revision",
            &token,
            json!({"startRevision": start, "organizationIds": [ORG], "sourceKeys": null}),
        )
    };

    let newer = poll(known).await;
    assert_eq!(newer.status, StatusCode::OK, "{}", newer.body);
    assert_eq!(newer.body["maxRevision"], 5);
    let group = &newer.body["ordersByOrganizations"][0];
    assert_eq!(ids(&group["orders"]), ["delivery-1", "delivery-2"]);
    assert_eq!(group["orders"][0]["order"]["status"], "CookingStarted");

    let after_third = poll(3).await;
    assert_eq!(
        ids(&after_third.body["ordersByOrganizations"][0]["orders"]),
        ["delivery-1"]
    );
    let nothing_new = poll(5).await;
    assert_eq!(
        nothing_new.body["ordersByOrganizations"][0]["orders"],
        json!([])
    );

    // 3 h after revision 2 (made at 09:00), but 2 h 59 min after revision 3.
    sim.advance(Duration::from_secs(3 * 3600 - 30));
    assert_error(&poll(known).await, StatusCode::BAD_REQUEST);
    assert_eq!(poll(3).await.status, StatusCode::OK);
    sim.advance(Duration::from_secs(60));
    assert_error(&poll(5).await, StatusCode::BAD_REQUEST);
    sim.set_delivery_status("delivery-2", "OnWay");
    let fresh = poll(6).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert_eq!(fresh.body["maxRevision"], 6);
}

#[tokio::test]
async fn local_times_follow_the_terminal_groups_zone_across_a_dst_change() {
    let (sim, api) = world().await;
    let berlin = "c0000000-0000-4000-8000-0000000000be";
    sim.add_terminal_group(ORG, berlin, "Berlin", "W. Europe Standard Time");
    // Europe/Berlin goes from UTC+1 to UTC+2 at 01:00 UTC on 2024-03-31.
    sim.set_now(Utc.with_ymd_and_hms(2024, 3, 31, 0, 30, 0).unwrap());
    sim.open_table_order(ORG, berlin, TABLE, "before", 1);
    sim.open_table_order(ORG, GROUP, TABLE, "moscow", 2);
    sim.set_now(Utc.with_ymd_and_hms(2024, 3, 31, 1, 30, 0).unwrap());
    sim.open_table_order(ORG, berlin, TABLE, "after", 3);
    let created = |id: &str| sim.order_json(id).expect("the order")["order"]["whenCreated"].clone();
    assert_eq!(created("before"), "2024-03-31 01:30:00.000");
    assert_eq!(created("after"), "2024-03-31 03:30:00.000");
    assert_eq!(created("moscow"), "2024-03-31 03:30:00.000");

    let token = api.token().await;
    let since_two = api
        .post(
            "/api/1/order/by_table",
            &token,
            json!({"organizationIds": [ORG], "tableIds": [TABLE],
                   "dateFrom": "2024-03-31 02:00:00.000"}),
        )
        .await;
    assert_eq!(ids(&since_two.body["orders"]), ["moscow", "after"]);

    // An unknown zone is UTC.
    let nowhere = "c0000000-0000-4000-8000-00000000000f";
    sim.add_terminal_group(ORG, nowhere, "Nowhere", "Atlantis Standard Time");
    sim.open_table_order(ORG, nowhere, TABLE, "nowhere", 4);
    assert_eq!(created("nowhere"), "2024-03-31 01:30:00.000");
}

// Webhooks.

/// A POST the receiver got: its `Authorization` header and its body.
type Received = (Option<String>, Value);

/// A webhook receiver that keeps each POST's `Authorization` and body and answers the statuses queued.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, format!("http://{address}/hook"))
    }

    fn calls(&self) -> Vec<Received> {
        self.calls.lock().unwrap().clone()
    }

    /// The bodies received, as lists of `(eventInfo.id, eventInfo.timestamp)`.
    fn events(&self) -> Vec<Vec<(String, i64)>> {
        self.calls()
            .iter()
            .map(|(_, body)| {
                body.as_array()
                    .expect("a JSON array")
                    .iter()
                    .map(|event| {
                        (
                            event["eventInfo"]["id"].as_str().expect("an id").to_owned(),
                            event["eventInfo"]["timestamp"]
                                .as_i64()
                                .expect("a timestamp"),
                        )
                    })
                    .collect()
            })
            .collect()
    }
}

async fn hook(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    receiver.calls.lock().unwrap().push((auth, body));
    let status = receiver.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// Registers the receiver through the API, as a client would.
async fn register(api: &Api, url: &str) {
    let token = api.token().await;
    let answer = api
        .post(
            "/api/1/webhooks/update_settings",
            &token,
            json!({"organizationId": ORG, "webHooksUri": url, "authToken": "hook-secret",
                   "webHooksFilter": {"tableOrderFilter": {"orderStatuses": ["New", "Bill", "Closed", "Deleted"],
                                                           "itemStatuses": ["Added"], "errors": true}}}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

fn manual(behaviour: WebhookBehaviour) -> WebhookBehaviour {
    WebhookBehaviour {
        auto: false,
        ..behaviour
    }
}

#[tokio::test]
async fn webhooks_post_each_change_with_the_auth_token() {
    let (sim, api) = world().await;
    let (receiver, url) = Receiver::start().await;
    register(&api, &url).await;
    assert_eq!(
        sim.webhook_settings(ORG).expect("stored")["webHooksUri"],
        url.as_str()
    );
    let token = api.token().await;
    let settings = api
        .post(
            "/api/1/webhooks/settings",
            &token,
            json!({"organizationId": ORG}),
        )
        .await;
    assert_eq!(settings.body["webHooksUri"], url.as_str());
    assert_eq!(settings.body["authToken"], "hook-secret");
    assert_eq!(settings.body["apiLoginName"], DEFAULT_API_LOGIN);

    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 1).unwrap());
    sim.open_table_order(ORG, GROUP, TABLE, "order-1", 1);
    sim.add_item("order-1", "pos-1", BORSCH, "1");
    sim.flush_webhooks().await;

    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    for (auth, _) in &calls {
        assert_eq!(auth.as_deref(), Some("hook-secret"));
    }
    let event = &calls[1].1[0];
    assert_eq!(event["eventType"], "TableOrderUpdate");
    assert_eq!(event["eventTime"], "2024-05-01 09:00:01.000"); // UTC, unlike the order's times
    assert_eq!(event["organizationId"], ORG);
    assert!(event["correlationId"].is_string());
    assert_eq!(event["eventInfo"]["order"]["items"][0]["status"], "Added");
    assert_eq!(
        event["eventInfo"]["order"]["whenCreated"],
        "2024-05-01 12:00:01.000"
    );
    let events = receiver.events();
    assert!(events[1][0].1 > events[0][0].1, "{events:?}");
    let log = sim.webhook_log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, Some(200));
    assert_eq!(log[0].url, url);

    // Deliveries are sent as their own event type, and on their own by default.
    sim.create_delivery(ORG, GROUP, "delivery-1", 7);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.calls().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the delivery's webhook never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.calls()[2].1[0]["eventType"], "DeliveryOrderUpdate");
}

#[tokio::test]
async fn webhooks_can_be_batched_duplicated_and_reordered() {
    let (sim, api) = world().await;
    let (receiver, url) = Receiver::start().await;
    register(&api, &url).await;
    sim.set_webhooks(manual(WebhookBehaviour {
        batch: 3,
        duplicate: true,
        reorder: true,
        ..WebhookBehaviour::default()
    }));
    sim.open_table_order(ORG, GROUP, TABLE, "order-1", 1);
    sim.add_item("order-1", "pos-1", BORSCH, "1");
    sim.set_table_order_status("order-1", "Bill");
    sim.flush_webhooks().await;

    let events = receiver.events();
    assert_eq!(events.len(), 2, "one batch, sent twice: {events:?}");
    assert_eq!(events[0], events[1]);
    assert_eq!(events[0].len(), 3);
    assert!(
        events[0].windows(2).all(|pair| pair[0].1 > pair[1].1),
        "newest first: {events:?}"
    );
}

#[tokio::test]
async fn webhooks_are_retried_after_a_failure_and_lost_when_disabled() {
    let (sim, api) = world().await;
    let (receiver, url) = Receiver::start().await;
    register(&api, &url).await;
    receiver.answers.lock().unwrap().extend([500, 500]);
    sim.set_webhooks(manual(WebhookBehaviour {
        retry_intervals: vec![Duration::from_millis(10); 3],
        ..WebhookBehaviour::default()
    }));
    sim.open_table_order(ORG, GROUP, TABLE, "order-1", 1);
    sim.flush_webhooks().await;
    let log = sim.webhook_log();
    let answers: Vec<(Option<u16>, usize)> = log
        .iter()
        .map(|attempt| (attempt.status, attempt.retry))
        .collect();
    assert_eq!(answers, [(Some(500), 0), (Some(500), 1), (Some(200), 2)]);
    assert!(log.windows(2).all(|pair| pair[0].events == pair[1].events));
    assert_eq!(receiver.calls().len(), 3);

    // Once the retries run out the events are given up.
    receiver.answers.lock().unwrap().extend([503; 4]);
    sim.add_item("order-1", "pos-1", TEA, "1");
    sim.flush_webhooks().await;
    assert_eq!(sim.webhook_log().len(), 7);
    sim.set_table_order_status("order-1", "Bill");
    sim.flush_webhooks().await;
    assert_eq!(
        sim.webhook_log().last().expect("an attempt").status,
        Some(200)
    );

    sim.set_webhooks(manual(WebhookBehaviour {
        enabled: false,
        ..WebhookBehaviour::default()
    }));
    sim.set_table_order_status("order-1", "Closed");
    sim.flush_webhooks().await;
    assert_eq!(receiver.calls().len(), 8);
}

// Faults.

#[tokio::test]
async fn faults_answer_429_with_retry_after_500_and_401_then_recover() {
    let (sim, api) = world().await;
    let token = api.token().await;
    let path = "/api/1/order/by_table";
    let body = json!({"organizationIds": [ORG], "tableIds": [TABLE]});
    sim.fail_next(
        path,
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
        1,
    );
    sim.fail_next(path, Fault::Status(500), 1);
    sim.fail_next(path, Fault::Unauthorized, 1);

    let limited = api.post(path, &token, body.clone()).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "7");
    assert_error(
        &api.post(path, &token, body.clone()).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert_error(
        &api.post(path, &token, body.clone()).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(api.post(path, &token, body).await.status, StatusCode::OK);
    assert_eq!(sim.requests(path), 4);
    assert_eq!(sim.requests("/api/1/access_token"), 1);
}

#[tokio::test]
async fn a_slow_answer_beyond_the_timeout_header_is_a_408() {
    let (sim, api) = world().await;
    let token = api.token().await;
    let path = "/api/1/deliveries/by_revision";
    let body = json!({"startRevision": 0, "organizationIds": [ORG]}).to_string();
    sim.fail_next(path, Fault::Slow(Duration::from_secs(30)), 1);
    let timed_out = api
        .send(path, &token, body.clone(), &[("Timeout", "1")])
        .await;
    assert_error(&timed_out, StatusCode::REQUEST_TIMEOUT);

    sim.fail_next(path, Fault::Slow(Duration::from_millis(50)), 1);
    let slow = api.send(path, &token, body, &[("Timeout", "5")]).await;
    assert_eq!(slow.status, StatusCode::OK, "{}", slow.body);
}

#[tokio::test]
async fn command_status_knows_recent_correlation_ids_only() {
    let (sim, api) = world().await;
    let token = api.token().await;
    let path = "/api/1/commands/status";
    let operation = api
        .post("/api/1/organizations", &token, json!({}))
        .await
        .body["correlationId"]
        .clone();
    let status = |correlation: Value| {
        api.post(
            path,
            &token,
            json!({"organizationId": ORG, "correlationId": correlation}),
        )
    };
    let known = status(operation.clone()).await;
    assert_eq!(known.status, StatusCode::OK, "{}", known.body);
    assert_eq!(known.body["state"], "Success");
    assert_error(
        &status(json!("00000000-0000-4000-8000-000000000000")).await,
        StatusCode::GONE,
    );
    sim.fail_next(path, Fault::Gone, 1);
    assert_error(&status(operation.clone()).await, StatusCode::GONE);
    sim.advance(Duration::from_secs(2 * 3600));
    let token = api.token().await;
    let expired = api
        .post(
            path,
            &token,
            json!({"organizationId": ORG, "correlationId": operation}),
        )
        .await;
    assert_error(&expired, StatusCode::GONE);
}

// Scenario scripts and the sim's own pages.

const SCRIPT: &str = r#"
# A café with one table order.
org org-1 "Кафе 1"
terminal tg-1 org=org-1 tz="Russian Standard Time" name="Основная группа"
table table-5 org=org-1 number=5
product borsch org=org-1 code=101 name="Борщ" price=280.50
product tea org=org-1 code=102 name="Чай \"с лимоном\"" price=90

open order-42 org=org-1 terminal=tg-1 table=table-5 number=42
add order-42 p1 borsch amount=2
add order-42 p2 tea amount=0.5
add order-42 p3 tea
delete order-42 p3
item-status order-42 p1 CookingStarted
wait 5m   # the clock moves, nothing sleeps
status order-42 Bill
delivery d-1 org=org-1 terminal=tg-1 number=1234
status d-1 OnWay
"#;

#[tokio::test]
async fn scripts_build_the_world_and_drive_orders() {
    let sim = CloudSim::new();
    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap());
    sim.run_script(SCRIPT).expect("the script runs");
    let order = sim.order_json("order-42").expect("the order");
    assert_eq!(order["order"]["status"], "Bill");
    assert_eq!(order["order"]["whenCreated"], "2024-05-01 12:00:00.000");
    assert_eq!(order["order"]["whenBillPrinted"], "2024-05-01 12:05:00.000");
    assert_eq!(order["order"]["sum"], json!(606));
    let items = &order["order"]["items"];
    assert_eq!(items[0]["status"], "CookingStarted");
    assert_eq!(items[1]["amount"], json!(0.5));
    assert_eq!(items[2]["product"]["name"], "Чай \"с лимоном\"");
    assert!(items[2]["deleted"].is_object());
    let delivery = sim.order_json("d-1").expect("the delivery");
    assert_eq!(delivery["order"]["status"], "OnWay");
    assert!(delivery["order"]["whenSended"].is_string());
    assert_eq!(sim.revision(), 9);
}

#[tokio::test]
async fn script_errors_name_their_line() {
    let sim = CloudSim::new();
    let unreadable = "org org-1 \"Кафе\"\n\nproduct p org=org-1 code=1 name=X price=abc\n";
    let error = sim.run_script(unreadable).expect_err("a bad price");
    assert_eq!(error.line, 3);
    assert!(error.to_string().starts_with("line 3: "), "{error}");
    assert!(
        sim.order_json("anything").is_none() && sim.revision() == 0,
        "nothing ran"
    );

    let failing = "org org-1 \"Кафе\"\n# comment\nadd no-such-order p1 borsch\n";
    let error = sim.run_script(failing).expect_err("an unknown order");
    assert_eq!(error.line, 3);
    assert!(error.message.contains("no-such-order"), "{error}");

    for (script, line) in [
        ("frobnicate x", 1),
        ("org\n", 1),
        ("\n\nstatus x", 3),
        ("wait soon", 1),
        ("org o \"unclosed", 1),
        ("table t org=o number=5 colour=red", 1),
    ] {
        let error = sim.run_script(script).expect_err(script);
        assert_eq!(error.line, line, "{script}: {error}");
    }
}

#[tokio::test]
async fn the_sim_pages_show_the_state_and_run_scripts() {
    let (sim, base) = CloudSim::start().await;
    let http = reqwest::Client::new();
    let run = |text: &str| {
        http.post(format!("{base}/sim/script"))
            .body(text.to_owned())
            .send()
    };

    // Here a wait really waits.
    let ran = run(&SCRIPT.replace("wait 5m", "wait 50ms"))
        .await
        .expect("an answer");
    assert_eq!(ran.status(), StatusCode::OK);
    assert_eq!(sim.revision(), 9);
    let refused = run("org o \"O\"\nopen x org=o terminal=none table=none number=1\n")
        .await
        .expect("an answer");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["line"], 2);

    let state: Value = http
        .get(format!("{base}/sim/state"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(state["revision"], 9);
    assert_eq!(
        state["organizations"][0]["products"][0]["price"],
        json!(280.5)
    );
    assert_eq!(ids(&state["orders"]), ["order-42", "d-1"]);

    let page = http
        .get(format!("{base}/sim/"))
        .send()
        .await
        .expect("an answer")
        .text()
        .await
        .expect("HTML");
    assert!(page.contains("Кафе 1") && page.contains("Борщ") && page.contains("order-42"));
    assert!(!page.contains("src=\"http"), "self-contained");
}

#[tokio::test]
async fn the_demo_world_has_a_pizzeria_and_its_menu() {
    let (sim, api) = {
        let (sim, base) = CloudSim::start().await;
        (sim, Api::new(base))
    };
    sim.run_script(demo_script()).expect("the demo script runs");
    assert_eq!(sim.revision(), 0, "no orders");
    let token = api.token().await;
    let organizations = api.post("/api/1/organizations", &token, json!({})).await;
    let org = &organizations.body["organizations"][0];
    assert_eq!(org["name"], "Демо-пиццерия");
    let groups = api
        .post(
            "/api/1/terminal_groups",
            &token,
            json!({"organizationIds": [org["id"].clone()]}),
        )
        .await;
    assert_eq!(
        groups.body["terminalGroups"][0]["items"][0]["timeZone"],
        "Russian Standard Time"
    );
    let menu = api
        .post(
            "/api/1/nomenclature",
            &token,
            json!({"organizationId": org["id"].clone()}),
        )
        .await;
    let codes: Vec<&str> = menu.body["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|product| product["code"].as_str().expect("a code"))
        .collect();
    assert_eq!(codes, ["PIZZA-MARG", "PIZZA-PEPP", "LEMONADE", "TIRAMISU"]);
    let prices: Vec<f64> = menu.body["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|product| {
            product["sizePrices"][0]["price"]["currentPrice"]
                .as_f64()
                .expect("a price")
        })
        .collect();
    assert!(
        prices.iter().all(|price| price.fract() != 0.0),
        "kopecks: {prices:?}"
    );
}
