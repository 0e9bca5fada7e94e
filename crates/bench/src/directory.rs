//! Directory reads under load: `GET /report-routes/telegram-chats/` (the notification fan-out) and `GET /units/`
//! with concurrent clients, over a chain of `units` units and `routes` routes loaded through
//! `tillwire directory import` and the route API.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::server::{Server, Target};
use crate::{Backend, hammer, summarize};

/// Group chats the routes go to; each unit reaches `routes / units` of them.
const CHATS: usize = 100;
const REPORT_TYPE: i64 = 2;
/// The acting user (a member with a role granting every unit) that creates the routes.
const USER_CHAT: i64 = -1_000_000;

pub async fn run(
    target: &Target,
    backend: Backend,
    clients: usize,
    units: usize,
    routes: usize,
    requests: usize,
) -> anyhow::Result<()> {
    let (server, _) = Server::start(target, backend).await?;
    load_chain(target, &server, units, (routes / units).clamp(1, CHATS)).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let fan_out = |i: usize| {
        format!(
            "/report-routes/telegram-chats/?report_type_id={REPORT_TYPE}&unit_id={}",
            i % units + 1
        )
    };
    let pages = (units / 100).max(1);
    let unit_pages = move |i: usize| format!("/units/?offset={}", i % pages * 100);
    let cases: [(&str, &(dyn Fn(usize) -> String + Sync)); 2] = [
        ("report-routes/telegram-chats", &fan_out),
        ("units", &unit_pages),
    ];
    for (name, path) in cases {
        let urls: Arc<Vec<String>> = Arc::new(
            (0..requests)
                .map(|i| format!("{}{}", server.base, path(i)))
                .collect(),
        );
        let get = {
            let urls = urls.clone();
            move |client: &reqwest::Client, i: usize| client.get(&urls[i % urls.len()])
        };
        hammer(&client, clients, 2_000, get.clone()).await?;
        let started = Instant::now();
        let (latencies, errors) = hammer(&client, clients, requests, get).await?;
        let elapsed = started.elapsed();
        let summary = summarize(latencies);
        println!(
            "directory {backend:?} GET /{name}/: {units} units, {routes} routes, {clients} clients: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} errors",
            requests as f64 / elapsed.as_secs_f64(),
            summary.p50,
            summary.p99,
            summary.max,
        );
    }
    server.stop().await;
    Ok(())
}

/// Units, one role granting all of them, the chats, then `per_unit` routes per unit: unit `u` goes to the
/// chats `u % CHATS … u % CHATS + per_unit - 1` (mod `CHATS`), so every chat gets about as many units.
async fn load_chain(
    target: &Target,
    server: &Server,
    units: usize,
    per_unit: usize,
) -> anyhow::Result<()> {
    let unit_rows: Vec<_> = (1..=units)
        .map(|id| json!({"id": id, "name": format!("Unit {id}"), "uuid": format!("uuid-{id}"), "region_id": 1, "department_id": 1}))
        .collect();
    let mut chat_rows = vec![
        json!({"chat_id": USER_CHAT, "type": "PRIVATE", "title": "Operator", "username": null, "role_id": 1}),
    ];
    chat_rows.extend((0..CHATS).map(|c| json!({"chat_id": chat_id(c), "type": "GROUP", "title": format!("Chat {c}"), "username": null, "role_id": null})));
    let file = json!({
        "regions": [{"id": 1, "name": "Region"}],
        "departments": [{"id": 1, "name": "Department"}],
        "units": unit_rows,
        "report_types": [{"id": REPORT_TYPE, "name": "INGREDIENTS_STOP_SALES", "verbose_name": "Стопы", "is_active": true}],
        "roles": [{"id": 1, "name": "All", "access_code": "bench-code", "unit_ids": (1..=units).collect::<Vec<_>>(), "report_type_ids": [REPORT_TYPE]}],
        "telegram_chats": chat_rows,
    });
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("directory.json");
    std::fs::write(&path, file.to_string())?;
    let status = std::process::Command::new(&target.binary)
        .args(["directory", "import"])
        .arg(&path)
        .args(["--database-url", &server.database_url])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "directory import failed");
    let client = reqwest::Client::new();
    for c in 0..CHATS {
        let unit_ids: Vec<usize> = (1..=units)
            .filter(|u| (c + CHATS - u % CHATS) % CHATS < per_unit)
            .collect();
        for batch in unit_ids.chunks(1_000) {
            let response = client
                .post(format!("{}/report-routes/", server.base))
                .json(&json!({"report_type_id": REPORT_TYPE, "chat_id": chat_id(c), "user_chat_id": USER_CHAT, "unit_ids": batch}))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().as_u16() == 201,
                "route creation: {}",
                response.status()
            );
        }
    }
    Ok(())
}

fn chat_id(c: usize) -> i64 {
    USER_CHAT - 1 - c as i64
}
