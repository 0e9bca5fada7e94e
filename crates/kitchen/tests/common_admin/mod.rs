//! The admin area under test: the platform, units and kitchen routers behind the real CSRF middleware, served in
//! process on a loopback socket against the `TestDatabase` that `both_backends!` hands the test, and a browser-like
//! client signed in as an admin.
//!
//! Every app starts from the seeded state: the default unit with stations Салаты, Шаурма, Пиццерия, Вок, the printer
//! "Принтер этикеток", registers 1–5, statuses 1–4 with ELQ's flows, and the five demo wares.

#![allow(dead_code)]

use tillwire_kitchen::Kitchen;
use tillwire_platform::auth::{NewPassword, Username, Users};
use tillwire_platform::config::Secret;
use tillwire_platform::{Platform, Role, read};
use tillwire_testkit::reqwest::{Client, StatusCode, header};
use tillwire_testkit::{TestDatabase, http_client, login};
use tillwire_units::{UnitId, Units};

pub const ADMIN: &str = "boss";
pub const PASSWORD: &str = "correct horse battery";
/// The legacy device key of the default unit, for placing orders through ELQ's import endpoint.
pub const API_KEY: &str = "admin-tests-key";

/// A response as a test looks at it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub content_type: String,
    pub body: String,
}

pub struct AdminApp {
    pub base_url: String,
    pub platform: Platform,
    pub kitchen: Kitchen,
    /// Signed in as [`ADMIN`].
    pub client: Client,
    pub csrf: String,
    pub unit: i64,
    /// Keeps the server running for as long as the test holds the `AdminApp`.
    _app: super::common::TestApp,
}

impl AdminApp {
    /// The shared kitchen test app (`common::start_with` serves the admin routers too) plus a signed-in admin.
    pub async fn start(db: &TestDatabase) -> AdminApp {
        let app =
            super::common::start_with(db, |settings| settings.api_key = Some(Secret::new(API_KEY)))
                .await;
        create_user(&app.platform, ADMIN, Role::Admin).await;
        let (base_url, platform, kitchen) = (
            app.base_url.clone(),
            app.platform.clone(),
            app.kitchen.clone(),
        );
        let client = http_client();
        let csrf = login(&client, &base_url, ADMIN, PASSWORD).await;
        let unit = Units(&platform.store)
            .default_unit()
            .await
            .expect("read units")
            .expect("the default unit")
            .id;
        AdminApp {
            base_url,
            platform,
            kitchen,
            client,
            csrf,
            unit,
            _app: app,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_as(&self.client, path).await
    }

    pub async fn get_as(&self, client: &Client, path: &str) -> Page {
        page(client.get(self.url(path)).send().await.expect("GET")).await
    }

    /// A form POST as the page sends it, with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = fields.to_vec();
        form.push(("csrf", &self.csrf));
        self.post_raw(&self.client, path, &form).await
    }

    /// A form POST with exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, client: &Client, path: &str, fields: &[(&str, &str)]) -> Page {
        page(
            client
                .post(self.url(path))
                .form(fields)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// A multipart POST of a CSV file, as the import form sends it (the CSRF token a field of the body).
    pub async fn upload_csv(&self, path_and_query: &str, csv: &str) -> Page {
        self.upload_csv_with(path_and_query, csv, &self.csrf).await
    }

    /// A multipart POST of a CSV file whose `csrf` field is `csrf`.
    pub async fn upload_csv_with(&self, path_and_query: &str, csv: &str, csrf: &str) -> Page {
        const BOUNDARY: &str = "tillwire-test-boundary-7d3c";
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"wares.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n\r\n--{BOUNDARY}--\r\n"
        );
        let response = self
            .client
            .post(self.url(path_and_query))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .expect("multipart POST");
        page(response).await
    }

    /// Switches the admin's pages to English (the language cookie, as the topbar link sets it).
    pub async fn use_english(&self) {
        let response = self
            .client
            .get(self.url("/lang/en"))
            .send()
            .await
            .expect("GET /lang/en");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }

    /// A signed-in client of a new user with this role, and its CSRF token.
    pub async fn sign_in_as(&self, username: &str, role: Role) -> (Client, String) {
        create_user(&self.platform, username, role).await;
        let client = http_client();
        let csrf = login(&client, &self.base_url, username, PASSWORD).await;
        (client, csrf)
    }

    pub async fn export_csv(&self) -> String {
        let page = self
            .get(&format!("/admin/wares/export.csv?unit={}", self.unit))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        assert!(page.content_type.starts_with("text/csv"), "{page:?}");
        page.body
    }

    /// The id of a station of the default unit by name.
    pub async fn station(&self, name: &str) -> Option<i64> {
        let stations = self
            .kitchen
            .stations(UnitId(self.unit))
            .await
            .expect("list stations");
        stations.into_iter().find(|s| s.name == name).map(|s| s.id)
    }

    /// A ware of the default unit: id, full name, short name, station id, catch quantity.
    pub async fn ware(&self, code: &str) -> Option<(i64, String, String, i64, f64)> {
        read!(&self.platform.store, db => sqlx::query_as(
            "SELECT id, full_name, short_name, station_id, catch_quantity FROM wares WHERE unit_id = $1 AND code = $2",
        )
        .bind(self.unit)
        .bind(code)
        .fetch_optional(db)
        .await)
        .expect("read a ware")
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        let (count,): (i64,) =
            read!(&self.platform.store, db => sqlx::query_as(sql).fetch_one(db).await)
                .expect("count rows");
        count
    }
}

pub async fn create_user(platform: &Platform, username: &str, role: Role) -> i64 {
    Users(&platform.store)
        .create(
            &Username::parse(username).expect("a valid username"),
            &NewPassword::parse(PASSWORD).expect("a valid password"),
            role,
        )
        .await
        .expect("create a user")
}

async fn page(response: tillwire_testkit::reqwest::Response) -> Page {
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = response.status();
    let location = header_text(header::LOCATION);
    let content_type = header_text(header::CONTENT_TYPE);
    let body = response.text().await.expect("read the body");
    Page {
        status,
        location,
        content_type,
        body,
    }
}
