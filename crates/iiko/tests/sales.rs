//! iiko's kept sales for people and programs, on both backends: the sales page with its plots in Russian and
//! English, and `GET /api/v1/iiko/sales` for a token of scope `iiko`, refusing others and bad ranges.

mod common;

use common::*;
use serde_json::Value;
use tillwire_platform::auth::{NewPassword, Username, Users};
use tillwire_platform::tokens::{Scope, TokenName, Tokens};
use tillwire_platform::{Role, write};

async fn keep(app: &App, unit: i64, day: &str, revenue: &str, orders: i64, dishes: &str) {
    write!(&app.platform.store, db => sqlx::query(
        "INSERT INTO iiko_daily_sales (unit_id, day, revenue, orders, dishes, final, fetched_ms) VALUES ($1, $2, $3, $4, $5, TRUE, 0)",
    )
    .bind(unit)
    .bind(day)
    .bind(revenue)
    .bind(orders)
    .bind(dishes)
    .execute(db)
    .await
    .map(|_| ()))
    .unwrap();
}

async fn token(app: &App, scope: Scope) -> String {
    Tokens(&app.platform.store)
        .issue(&TokenName::parse("reports").unwrap(), &scope, None, "test")
        .await
        .unwrap()
        .plain
}

tillwire_testkit::both_backends!(
    a_units_day_is_shown_with_its_plots_and_given_as_json,
    |db| async move {
        let app = App::start(&db).await;
        let unit = tillwire_units::Units(&app.platform.store)
            .default_unit()
            .await
            .unwrap()
            .unwrap()
            .id;
        keep(&app, unit, "2024-05-01", "2220.75", 2,
        r#"[{"name":"Маргарита <острая>","amount":"3","revenue":"1770.75"},{"name":"Морс","amount":"3","revenue":"450"}]"#).await;
        keep(
            &app,
            unit,
            "2024-04-30",
            "999",
            1,
            r#"[{"name":"Морс","amount":"1","revenue":"999"}]"#,
        )
        .await;

        Users(&app.platform.store)
            .create(
                &Username::parse("boss").unwrap(),
                &NewPassword::parse("boss-password-123").unwrap(),
                Role::Admin,
            )
            .await
            .unwrap();
        let client = tillwire_testkit::http_client();
        tillwire_testkit::login(&client, &app.base_url, "boss", "boss-password-123").await;
        let page = |query: String| {
            let client = client.clone();
            let url = format!("{}/admin/iiko/sales/{query}", app.base_url);
            async move {
                let answer = client.get(url).send().await.unwrap();
                (answer.status().as_u16(), answer.text().await.unwrap())
            }
        };
        let (status, html) = page(format!("?unit={unit}&day=2024-05-01")).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("2\u{a0}220,75")
                && html.contains("Средний чек")
                && html.contains("1\u{a0}110,38"),
            "{html}"
        );
        assert!(
            html.contains("Маргарита &#60;острая&#62;")
                || html.contains("Маргарита &lt;острая&gt;"),
            "names are escaped: {html}"
        );
        assert!(html.contains("id=\"dishes-plot\"") && html.contains("id=\"days-plot\""));
        assert!(html.contains("окончательные"));
        // A day without figures says so.
        let (_, empty) = page(format!("?unit={unit}&day=2024-04-01")).await;
        assert!(empty.contains("id=\"no-sales\""));
        assert_eq!(page(format!("?unit={unit}&day=tomorrow")).await.0, 422);
        assert_eq!(page("?unit=9999".into()).await.0, 404);
        client
            .get(format!("{}/lang/en", app.base_url))
            .send()
            .await
            .unwrap();
        let (_, english) = page(format!("?unit={unit}&day=2024-05-01")).await;
        assert!(
            english.contains("Average bill")
                && english.contains("Dishes by revenue")
                && !english.contains("Средний чек")
        );
        // Not for someone signed out.
        let anonymous = tillwire_testkit::http_client()
            .get(format!("{}/admin/iiko/sales/", app.base_url))
            .send()
            .await
            .unwrap();
        // Sent to sign in, with nothing of the page.
        assert_eq!(anonymous.status().as_u16(), 303);
        let location = anonymous.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/users/login/"), "{location}");
        assert!(!anonymous.text().await.unwrap().contains("2220"));

        let reports = token(&app, Scope::area("iiko")).await;
        let api = |token: Option<String>, query: String| {
            let mut request = app
                .client
                .get(format!("{}/api/v1/iiko/sales{query}", app.base_url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                let answer = request.send().await.unwrap();
                (
                    answer.status().as_u16(),
                    answer.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (status, days) = api(
            Some(reports.clone()),
            format!("?unit={unit}&from=2024-04-30&to=2024-05-01"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(days.as_array().unwrap().len(), 2);
        assert_eq!(days[1]["revenue"], "2220.75");
        assert_eq!(days[1]["dishes"][0]["amount"], "3");
        assert_eq!(
            api(None, format!("?unit={unit}&from=2024-04-30&to=2024-05-01"))
                .await
                .0,
            401
        );
        let other = token(&app, Scope::area("directory")).await;
        assert_eq!(
            api(
                Some(other),
                format!("?unit={unit}&from=2024-04-30&to=2024-05-01")
            )
            .await
            .0,
            403
        );
        assert_eq!(
            api(
                Some(reports.clone()),
                format!("?unit={unit}&from=2024-05-02&to=2024-05-01")
            )
            .await
            .0,
            422
        );
        assert_eq!(
            api(
                Some(reports.clone()),
                format!("?unit={unit}&from=2023-01-01&to=2024-05-01")
            )
            .await
            .0,
            422
        );
        assert_eq!(
            api(
                Some(reports.clone()),
                "?unit=x&from=2024-05-01&to=2024-05-01".into()
            )
            .await
            .0,
            400
        );
        assert_eq!(
            api(
                Some(reports),
                "?unit=9999&from=2024-05-01&to=2024-05-01".into()
            )
            .await
            .0,
            404
        );
    }
);
