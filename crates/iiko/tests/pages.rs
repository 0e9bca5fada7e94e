//! The iiko admin pages over real HTTP with a signed-in admin, on both backends: a cloud connection added through
//! its form (every wrong field named; its secrets neither on the pages nor in the database as typed), edited
//! without typing the secrets again, its terminal group given a unit, deleted; a failed inbox event retried; a
//! product mapped on the page and then made from the next webhook; iikoServers added, edited and deleted.

mod common;

use common::*;
use serde_json::{Value, json};
use tillwire_iiko::IikoId;
use tillwire_iiko::config::Credentials;
use tillwire_iiko::intake::{Received, Source};
use tillwire_platform::Role;
use tillwire_platform::auth::{NewPassword, Username, Users};
use tillwire_platform::read;
use tillwire_units::{UnitName, Units};

/// An organization with no connection until the page adds one (the settings file's is `ORG`).
const ORG2: &str = "5f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const TERMINAL2: &str = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d";
const ORDER: &str = "8d7c6b5a-4f3e-4d2c-8b1a-0f9e8d7c6b5a";
const TOKEN2: &str = "bar-webhook-token-0987654321";
const SERVER_PASSWORD: &str = "server-secret-password-1";

/// A signed-in admin's browser, as the platform's form script posts (asking for JSON).
struct Admin {
    client: reqwest::Client,
    csrf: String,
    base: String,
}

impl Admin {
    async fn sign_in(app: &App) -> Admin {
        let password = "iiko-admin-password-123";
        Users(&app.platform.store)
            .create(
                &Username::parse("iiko-admin").unwrap(),
                &NewPassword::parse(password).unwrap(),
                Role::Admin,
            )
            .await
            .unwrap();
        let client = tillwire_testkit::http_client();
        let csrf = tillwire_testkit::login(&client, &app.base_url, "iiko-admin", password).await;
        Admin {
            client,
            csrf,
            base: app.base_url.clone(),
        }
    }

    async fn page(&self, path: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A page asked for as the form script asks (a refusal comes as JSON).
    async fn asking_json(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Posts a form; the status, the body, and where a redirect points.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, response.text().await.unwrap(), location)
    }

    /// Posts a form that must be refused with these fields named.
    async fn refused(&self, path: &str, fields: &[(&str, &str)], named: &[&str]) {
        let (status, body, _) = self.post(path, fields).await;
        assert_eq!(status, 422, "{body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        for field in named {
            assert!(
                reply["fields"][field].is_string(),
                "{field} is not named: {body}"
            );
        }
    }

    /// Posts a form that must be taken; where it redirects to.
    async fn taken(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let (status, body, location) = self.post(path, fields).await;
        assert_eq!(status, 303, "{body}");
        location
    }
}

/// A table order's webhook event for `ORG2`: version `timestamp`, with `amount` of lemonade.
fn lemonade_event(timestamp: i64, amount: f64) -> Value {
    json!({
        "eventType": "TableOrderUpdate", "eventTime": "2024-05-01 12:00:00.000", "organizationId": ORG2,
        "correlationId": "c-1",
        "eventInfo": {
            "id": ORDER, "posId": null, "organizationId": ORG2, "timestamp": timestamp,
            "creationStatus": "Success", "errorInfo": null,
            "order": {"status": "New", "whenCreated": "2024-05-01 12:00:00.000", "number": 77,
                      "terminalGroupId": TERMINAL2, "tableIds": [TABLE],
                      "items": [{"type": "Product", "product": {"id": LEMONADE, "name": "Лимонад"},
                                 "amount": amount, "positionId": "l1", "deleted": null}]}
        }
    })
}

/// Every text column of the table's rows, joined: what a look into the database would show.
async fn stored_text(app: &App, sql: &'static str) -> String {
    let rows: Vec<(String,)> =
        read!(&app.platform.store, db => sqlx::query_as(sql).fetch_all(db).await).unwrap();
    rows.into_iter()
        .map(|(text,)| text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The opening tag of the page's form posting to `action`.
fn form_tag<'a>(page: &'a str, action: &str) -> &'a str {
    let at = page
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let start = page[..at].rfind("<form").expect("the form's tag");
    &page[start..at + page[at..].find('>').expect("the tag's end")]
}

fn id_in(location: &str, prefix: &str) -> i64 {
    location
        .strip_prefix(prefix)
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("{location:?} is not under {prefix}"))
}

fn connection_form<'a>(
    overrides: &[(&'a str, &'a str)],
    sim_url: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("name", "Бар на крыше"),
        ("api_url", sim_url),
        ("organization_id", ORG2),
        ("unit_id", ""),
        ("auth", "api_login"),
        ("api_login", API_LOGIN),
        ("webhook_token", TOKEN2),
        ("tables", TABLE),
        ("active", "on"),
    ];
    for (name, value) in overrides {
        form.retain(|(field, _)| field != name);
        form.push((name, value));
    }
    form
}

tillwire_testkit::both_backends!(
    a_connection_is_added_edited_mapped_retried_and_deleted_on_the_pages,
    |db| async move {
        let app = App::start(&db).await;
        app.sim.add_organization(ORG2, "Бар");
        app.sim
            .add_terminal_group(ORG2, TERMINAL2, "Бар: касса", "Russian Standard Time");
        let admin = Admin::sign_in(&app).await;
        let org2 = IikoId::parse(ORG2).unwrap();

        // An event for an organization without a connection fails (here as if the poll had brought it).
        app.iiko
            .intake
            .receive(
                Source::Webhook,
                &[Received::from_webhook(&org2, &lemonade_event(1, 1.0))],
            )
            .await
            .unwrap();
        app.platform.jobs.notify();
        app.settled().await;
        assert_eq!(app.inbox_states().await[0].0, "failed");

        let overview = admin.page("/admin/iiko/").await;
        assert!(
            overview.contains("Подключения iikoCloud") && overview.contains("tillwire.toml"),
            "{overview}"
        );
        assert!(!overview.contains(API_LOGIN) && !overview.contains(WEBHOOK_TOKEN));

        // Every wrong field is named.
        let sim_url = app.sim_url.clone();
        let add = "/admin/iiko/cloud/";
        admin
            .refused(
                add,
                &connection_form(
                    &[
                        ("organization_id", "not-a-uuid"),
                        ("api_login", ""),
                        ("webhook_token", "short"),
                        ("tables", "table five"),
                        ("api_url", "ftp://iiko"),
                    ],
                    &sim_url,
                ),
                &[
                    "organization_id",
                    "api_login",
                    "webhook_token",
                    "tables",
                    "api_url",
                ],
            )
            .await;
        admin
            .refused(
                add,
                &connection_form(&[("auth", "api_key"), ("api_key", "k-1")], &sim_url),
                &["app_id", "client_secret"],
            )
            .await;
        admin
            .refused(
                add,
                &connection_form(&[("organization_id", ORG), ("unit_id", "999999")], &sim_url),
                &["organization_id", "unit_id"],
            )
            .await;

        let location = admin
            .taken(
                add,
                &connection_form(&[("organization_id", &ORG2.to_uppercase())], &sim_url),
            )
            .await;
        let id = id_in(&location, "/admin/iiko/cloud/");
        let overview = admin.page("/admin/iiko/").await;
        assert!(
            overview.contains("Бар на крыше")
                && overview.contains(&format!("/iiko/webhook/{ORG2}")),
            "{overview}"
        );
        let page = admin.page(&location).await;
        assert!(
            page.contains("Группы терминалов") && page.contains("токен задан"),
            "{page}"
        );
        for shown in [&overview, &page] {
            assert!(!shown.contains(API_LOGIN) && !shown.contains(TOKEN2));
        }
        let stored = stored_text(
            &app,
            "SELECT organization_id || name || api_url || credentials_sealed || COALESCE(webhook_token_sealed, '') || tables
             FROM iiko_connections",
        )
        .await;
        assert!(stored.contains(ORG2), "{stored}");
        assert!(
            !stored.contains(API_LOGIN) && !stored.contains(TOKEN2),
            "{stored}"
        );

        // An edit that leaves the secrets empty keeps them.
        admin
            .taken(
                &location,
                &connection_form(
                    &[("name", "Бар"), ("api_login", ""), ("webhook_token", "")],
                    &sim_url,
                ),
            )
            .await;
        let connection = app
            .iiko
            .connections
            .get(tillwire_iiko::ConnectionId(id))
            .await
            .unwrap();
        assert_eq!(connection.name, "Бар");
        assert_eq!(
            connection.credentials,
            Credentials::ApiLogin {
                api_login: API_LOGIN.to_owned()
            }
        );
        assert_eq!(
            connection
                .webhook_token
                .map(|t| t.expose().to_owned())
                .as_deref(),
            Some(TOKEN2)
        );

        // The failed event, retried from the inbox, now finds its connection.
        let failed = admin.page("/admin/iiko/inbox/?state=failed").await;
        let (inbox_id,): (i64,) = read!(&app.platform.store, db => sqlx::query_as(
            "SELECT id FROM iiko_inbox WHERE state = 'failed'"
        ).fetch_one(db).await)
        .unwrap();
        let retry = format!("/admin/iiko/inbox/{inbox_id}/retry?state=failed");
        assert!(
            failed.contains(&retry) && failed.contains("Повторить"),
            "{failed}"
        );
        assert!(
            failed.contains("нет подключения iikoCloud для организации"),
            "{failed}"
        );
        let back = admin.taken(&retry, &[]).await;
        assert_eq!(back, "/admin/iiko/inbox/?state=failed");
        app.settled().await;
        assert_eq!(app.inbox_states().await[0].0, "processed");
        let (status, body, _) = admin.post(&retry, &[]).await;
        assert_eq!(status, 409, "a processed event is not retried: {body}");
        let inbox = admin
            .page(&format!("/admin/iiko/inbox/?organization={ORG2}"))
            .await;
        // The event's body, indented and escaped.
        assert!(
            inbox.contains("обработано")
                && inbox.contains("&#34;name&#34;: &#34;Лимонад&#34;")
                && !inbox.contains("\"name\": \"Лимонад\""),
            "{inbox}"
        );
        let (status, refused) = admin
            .asking_json("/admin/iiko/inbox/?state=done&page=-1")
            .await;
        assert_eq!(status, 422, "{refused}");
        assert!(
            refused.contains("\"state\"") && refused.contains("\"page\""),
            "{refused}"
        );

        // The lemonade made nothing: it waits on the mapping page, and is mapped there.
        let mapping = admin
            .page(&format!("/admin/iiko/mapping/?organization={ORG2}"))
            .await;
        assert!(
            mapping.contains("Лимонад")
                && mapping.contains("не сопоставлен")
                && mapping.contains(&format!("<option value=\"{SALAD_WARE}\">")),
            "{mapping}"
        );
        admin
            .refused(
                "/admin/iiko/mapping/",
                &[
                    ("organization", ORG2),
                    ("product", LEMONADE),
                    ("ware_code", &"7".repeat(101)),
                ],
                &["ware_code"],
            )
            .await;
        admin
            .taken(
                "/admin/iiko/mapping/",
                &[
                    ("organization", ORG2),
                    ("product", LEMONADE),
                    ("ware_code", SALAD_WARE),
                ],
            )
            .await;
        let mapping = admin
            .page(&format!("/admin/iiko/mapping/?organization={ORG2}"))
            .await;
        assert!(mapping.contains(&format!("→ {SALAD_WARE}")), "{mapping}");

        // The next version of the order, by webhook, makes the mapped ware.
        let answer = app
            .client
            .post(format!("{}/iiko/webhook/{ORG2}", app.base_url))
            .header("authorization", TOKEN2)
            .json(&json!([lemonade_event(2, 2.0)]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        eventually("the lemonade made as a salad", || async {
            app.iiko_orders()
                .await
                .iter()
                .any(|o| lines(o) == vec![(SALAD_WARE.to_owned(), 2.0)])
        })
        .await;

        // The terminal group iikoCloud listed, given its own unit; the order on the connection's page.
        let bar = Units(&app.platform.store)
            .create(&UnitName::parse("Бар").unwrap())
            .await
            .unwrap();
        let groups = format!("/admin/iiko/cloud/{id}/groups");
        admin
            .refused(
                &groups,
                &[("group", TERMINAL2), ("unit_id", "999999")],
                &["unit_id"],
            )
            .await;
        admin
            .taken(
                &groups,
                &[("group", TERMINAL2), ("unit_id", &bar.0.to_string())],
            )
            .await;
        let group = app
            .iiko
            .connections
            .terminal_group(&org2, &IikoId::parse(TERMINAL2).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(group.unit_id, Some(bar.0));
        let page = admin.page(&location).await;
        assert!(
            page.contains("Бар: касса")
                && page.contains("Europe/Moscow")
                && page.contains("в зале"),
            "{page}"
        );

        // Deleting asks first (the page's form script), then the organization takes no webhooks.
        assert!(
            form_tag(&page, &format!("/admin/iiko/cloud/{id}/delete")).contains("data-confirm=\""),
            "{page}"
        );
        assert_eq!(
            admin
                .taken(&format!("/admin/iiko/cloud/{id}/delete"), &[])
                .await,
            "/admin/iiko/"
        );
        assert!(
            app.iiko
                .connections
                .by_organization(&org2)
                .await
                .unwrap()
                .is_none()
        );
        let (status, _, _) = admin
            .post(&format!("/admin/iiko/cloud/{id}/delete"), &[])
            .await;
        assert_eq!(status, 404);
        let answer = app
            .client
            .post(format!("{}/iiko/webhook/{ORG2}", app.base_url))
            .header("authorization", TOKEN2)
            .json(&json!([lemonade_event(3, 1.0)]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM iiko_connection_state WHERE connection_id NOT IN (SELECT id FROM iiko_connections)")
                .await,
            0
        );
    }
);

tillwire_testkit::both_backends!(
    iiko_servers_are_added_edited_and_deleted_on_the_pages,
    |db| async move {
        let app = App::start(&db).await;
        let admin = Admin::sign_in(&app).await;
        let add = "/admin/iiko/servers/";
        admin
            .refused(
                add,
                &[
                    ("url", "ftp://10.1.1.5/resto/"),
                    ("login", " "),
                    ("password", ""),
                    ("time_zone", "Mars/Olympus"),
                    ("organization_id", "nope"),
                ],
                &["url", "login", "password", "time_zone", "organization_id"],
            )
            .await;
        let url = "http://10.1.1.5:8080/resto/";
        let server = |time_zone: &'static str, password: &'static str| {
            vec![
                ("url", url),
                ("login", "admin"),
                ("password", password),
                ("time_zone", time_zone),
                ("organization_id", ""),
                ("active", "on"),
            ]
        };
        let location = admin
            .taken(add, &server("Russian Standard Time", SERVER_PASSWORD))
            .await;
        let id = id_in(&location, "/admin/iiko/servers/");
        let stored = app.iiko.servers.get(id).await.unwrap();
        assert_eq!(stored.organization, IikoId::derived(url));
        assert_eq!(stored.zone, Some(chrono_tz::Europe::Moscow));
        assert_eq!(stored.password.expose(), SERVER_PASSWORD);
        admin
            .refused(add, &server("", "another-password"), &["url"])
            .await;

        // The password left empty stays.
        admin.taken(&location, &server("Europe/Samara", "")).await;
        let stored = app.iiko.servers.get(id).await.unwrap();
        assert_eq!(stored.zone, Some(chrono_tz::Europe::Samara));
        assert_eq!(stored.password.expose(), SERVER_PASSWORD);
        let overview = admin.page("/admin/iiko/").await;
        let page = admin.page(&location).await;
        assert!(
            overview.contains(url) && page.contains("Europe/Samara"),
            "{page}"
        );
        for shown in [&overview, &page] {
            assert!(!shown.contains(SERVER_PASSWORD));
        }
        let sealed = stored_text(
            &app,
            "SELECT url || login || password_sealed FROM iiko_servers",
        )
        .await;
        assert!(!sealed.contains(SERVER_PASSWORD), "{sealed}");

        assert!(
            form_tag(&page, &format!("{location}delete")).contains("data-confirm=\""),
            "{page}"
        );
        assert_eq!(
            admin.taken(&format!("{location}delete"), &[]).await,
            "/admin/iiko/"
        );
        assert_eq!(app.iiko.servers.list().await.unwrap().len(), 0);
        assert_eq!(admin.asking_json(&location).await.0, 404);
    }
);
