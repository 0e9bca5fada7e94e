//! The Bot API simulator over real HTTP: what a Bot API client will meet, including the awkward cases.

use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Value, json};
use tillwire_notify::sim::{Behaviour, Limits, TelegramSim};

const TOKEN: &str = "4242:TEST-token";

async fn start() -> (TelegramSim, String, reqwest::Client) {
    let sim = TelegramSim::new(TOKEN);
    let base = sim.serve_on_loopback().await.expect("serve");
    (sim, format!("{base}/bot{TOKEN}"), reqwest::Client::new())
}

async fn call(client: &reqwest::Client, api: &str, method: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("{api}/{method}"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn no_limits() -> Limits {
    Limits {
        per_chat_interval: Duration::ZERO,
        group_max: 1000,
        global_max: 1000,
        ..Limits::default()
    }
}

#[tokio::test]
async fn get_me_and_the_three_ways_to_pass_parameters() {
    let (sim, api, client) = start().await;
    let (status, me) = call(&client, &api, "getMe", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(me["ok"], true);
    assert_eq!(me["result"]["id"], 4242);
    assert_eq!(me["result"]["is_bot"], true);
    // GET, method names case-insensitive.
    let got: Value = client
        .get(format!("{api}/getme"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["result"]["username"], me["result"]["username"]);

    let (status, json_sent) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 100, "text": "json body", "message_thread_id": 7, "disable_notification": true,
               "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "ack:1"}]]}}),
    )
    .await;
    assert_eq!(status, 200, "{json_sent}");
    let message = &json_sent["result"];
    assert_eq!(message["message_id"], 1);
    assert_eq!(
        message["chat"],
        json!({"id": 100, "type": "private", "first_name": "User 100"})
    );
    assert_eq!(message["text"], "json body");
    assert_eq!(message["message_thread_id"], 7);
    assert!(message["date"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        message["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "ack:1"
    );

    let form: Value = client
        .post(format!("{api}/sendMessage"))
        .form(&[
            ("chat_id", "200"),
            ("text", "form & body"),
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"Go","url":"https://example.org"}]]}"#,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["ok"], true, "{form}");
    assert_eq!(form["result"]["text"], "form & body");
    let query: Value = client
        .get(format!(
            "{api}/sendMessage?chat_id=-300&text=query%20string"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(query["ok"], true, "{query}");
    assert_eq!(query["result"]["chat"]["type"], "group");
    // chat_id as a string of digits is a chat id too.
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": "100", "text": "second"}),
    )
    .await;
    assert_eq!(status, 429, "one a second to a chat");

    let delivered = sim.messages(100);
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].disable_notification);
    assert_eq!(sim.messages(200)[0].text, "form & body");
    assert_eq!(sim.all_messages().len(), 3);
}

#[tokio::test]
async fn wrong_token_is_401_and_unknown_method_404() {
    let (_sim, api, client) = start().await;
    let base = api.trim_end_matches(&format!("/bot{TOKEN}")).to_owned();
    let response = client
        .get(format!("{base}/bot1:wrong/getMe"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let (status, body) = call(&client, &api, "sendSomething", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
}

#[tokio::test]
async fn a_chat_gets_one_message_a_second_and_early_retries_are_violations() {
    let (sim, api, client) = start().await;
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 5, "text": "one"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, refused) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 5, "text": "two"}),
    )
    .await;
    assert_eq!(status, 429);
    let retry_after = refused["parameters"]["retry_after"].as_u64().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(refused["error_code"], 429);
    assert_eq!(
        refused["description"],
        format!("Too Many Requests: retry after {retry_after}")
    );
    assert_eq!(
        sim.messages(5).len(),
        1,
        "a refused message is not delivered"
    );
    assert!(sim.rate_violations().is_empty());
    // Ignoring retry_after is recorded.
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 5, "text": "two"}),
    )
    .await;
    assert_eq!(status, 429);
    let violations = sim.rate_violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].chat_id, 5);
    // Waiting as told works, and delivered messages never came faster than one a second.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 5, "text": "two"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.rate_violations().len(), 1);
    assert!(sim.shortest_gap(5).unwrap() >= Duration::from_secs(1));
    // Another chat is not held up.
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 6, "text": "x"}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn group_and_global_limits() {
    let (sim, api, client) = start().await;
    sim.set_limits(Limits {
        group_max: 3,
        global_max: 1000,
        per_chat_interval: Duration::ZERO,
        ..Limits::default()
    });
    for n in 0..3 {
        let (status, body) = call(
            &client,
            &api,
            "sendMessage",
            json!({"chat_id": -77, "text": format!("m{n}")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, refused) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": -77, "text": "m3"}),
    )
    .await;
    assert_eq!(status, 429);
    let retry_after = refused["parameters"]["retry_after"].as_u64().unwrap();
    assert!((55..=60).contains(&retry_after), "{refused}");
    assert_eq!(sim.messages(-77).len(), 3);
    // A private chat is not held to the group limit.
    for n in 0..5 {
        let (status, _) = call(
            &client,
            &api,
            "sendMessage",
            json!({"chat_id": 77, "text": format!("m{n}")}),
        )
        .await;
        assert_eq!(status, 200);
    }

    sim.set_limits(Limits {
        global_max: 4,
        ..Limits::default()
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for chat in 1..=4 {
        let (status, _) = call(
            &client,
            &api,
            "sendMessage",
            json!({"chat_id": 1000 + chat, "text": "hi"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, refused) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 1005, "text": "hi"}),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(refused["parameters"]["retry_after"], 1);
    assert!(sim.messages(1005).is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 1005, "text": "hi"}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn blocked_migrated_failing_and_lost_replies() {
    let (sim, api, client) = start().await;
    sim.set_limits(no_limits());
    sim.set_chat(11, Behaviour::Blocked);
    sim.set_chat(-12, Behaviour::Blocked);
    sim.set_chat(-1_000_000_000_013, Behaviour::Blocked);
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 11, "text": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (403, "Forbidden: bot was blocked by the user")
    );
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": -12, "text": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (403, "Forbidden: bot was kicked from the group chat")
    );
    let (_, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": -1_000_000_000_013_i64, "text": "x"}),
    )
    .await;
    assert_eq!(
        body["description"],
        "Forbidden: bot was kicked from the supergroup chat"
    );

    sim.set_chat(
        -20,
        Behaviour::Migrated {
            to: -1_000_000_000_020,
        },
    );
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": -20, "text": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "Bad Request: group chat was upgraded to a supergroup chat"
    );
    assert_eq!(
        body["parameters"]["migrate_to_chat_id"],
        -1_000_000_000_020_i64
    );
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": -1_000_000_000_020_i64, "text": "x"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["chat"]["type"], "supergroup");
    assert!(sim.messages(-20).is_empty());
    assert_eq!(sim.messages(-1_000_000_000_020).len(), 1);

    sim.set_chat(30, Behaviour::ServerError { count: 2 });
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 30, "text": "x"}),
    )
    .await;
    assert_eq!((status, body["error_code"].as_i64()), (500, Some(500)));
    let response = client
        .post(format!("{api}/sendMessage"))
        .json(&json!({"chat_id": 30, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(
        response.json::<Value>().await.is_err(),
        "a proxy's HTML page, not JSON"
    );
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 30, "text": "x"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.messages(30).len(), 1);

    sim.set_chat(40, Behaviour::LoseReply { count: 1 });
    let lost = async {
        let response = client
            .post(format!("{api}/sendMessage"))
            .json(&json!({"chat_id": 40, "text": "maybe"}))
            .send()
            .await?;
        response.json::<Value>().await
    }
    .await;
    assert!(lost.is_err(), "the client sees a network error: {lost:?}");
    assert_eq!(sim.lost_replies(), 1);
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 40, "text": "maybe"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["message_id"], 2);
    let delivered = sim.messages(40);
    assert_eq!(delivered.len(), 2, "the retry made a duplicate");
    assert!(delivered[0].reply_lost && !delivered[1].reply_lost);
}

#[tokio::test]
async fn html_is_checked_as_the_server_does() {
    let (sim, api, client) = start().await;
    sim.set_limits(no_limits());
    let good = "<b>Kitchen <i>3</i></b>: <a href=\"https://tillwire.test/o?a=1&amp;b=2\">order</a> &lt;late&gt; &amp; &quot;cold&quot; &#8470;5 <tg-spoiler>s</tg-spoiler> <pre><code class=\"language-text\">x</code></pre>";
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 1, "text": good, "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["text"],
        "Kitchen 3: order <late> & \"cold\" №5 s x"
    );
    let stored = &sim.messages(1)[0];
    assert_eq!(stored.text, good);
    assert_eq!(
        stored.visible_text,
        "Kitchen 3: order <late> & \"cold\" №5 s x"
    );
    assert_eq!(stored.parse_mode.as_deref(), Some("HTML"));

    let bad = [
        ("a <br> b", "Unsupported start tag \"br\" at byte offset 2"),
        ("2 < 3", "Unsupported start tag \"\" at byte offset 2"),
        (
            "<b>open",
            "Can't find end tag corresponding to start tag \"b\"",
        ),
        (
            "<b><i>x</b></i>",
            "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\"",
        ),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        (
            "<span class=\"x\">y</span>",
            "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0",
        ),
        (
            "Fish & chips",
            "Unsupported HTML entity or unescaped \"&\" at byte offset 5",
        ),
        (
            "&nbsp;",
            "Unsupported HTML entity or unescaped \"&\" at byte offset 0",
        ),
    ];
    for (text, why) in bad {
        let (status, body) = call(
            &client,
            &api,
            "sendMessage",
            json!({"chat_id": 2, "text": text, "parse_mode": "HTML"}),
        )
        .await;
        assert_eq!(status, 400, "{text}");
        assert_eq!(
            body["description"],
            format!("Bad Request: can't parse entities: {why}"),
            "{text}"
        );
    }
    // Without parse_mode the same text is plain text.
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 2, "text": "2 < 3 & <br>"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.messages(2).len(), 1);
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 2, "text": ""}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (400, "Bad Request: message text is empty")
    );
    let (_, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 2, "text": "<b> </b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(body["description"], "Bad Request: message text is empty");
}

#[tokio::test]
async fn length_is_counted_after_entities_in_utf16() {
    let (sim, api, client) = start().await;
    sim.set_limits(no_limits());
    // 4094 visible characters from entities and tags, plus one emoji outside the BMP (2 UTF-16 units) = 4096.
    let exact = format!("<b>{}</b>😀", "&amp;".repeat(4094));
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 3, "text": exact, "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(status, 200, "{}", body["description"]);
    assert!(exact.len() > 4096);
    let over = format!("<b>{}</b>😀", "&amp;".repeat(4095));
    let (status, body) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 3, "text": over, "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (400, "Bad Request: message is too long")
    );
    let plain = format!("{}😀", "x".repeat(4095));
    let (status, _) = call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 4, "text": plain}),
    )
    .await;
    assert_eq!(status, 400, "4095 + 2 UTF-16 units");
    assert_eq!(sim.messages(3).len(), 1);
    assert!(sim.messages(4).is_empty());
}

#[tokio::test]
async fn updates_by_long_polling_confirmed_by_offset() {
    let (sim, api, client) = start().await;
    let poll = {
        let (client, api) = (client.clone(), api.clone());
        tokio::spawn(async move { call(&client, &api, "getUpdates", json!({"timeout": 10})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = sim.push_message(55, 55, "/status");
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    let updates = body["result"].as_array().unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["update_id"], first);
    assert_eq!(updates[0]["message"]["text"], "/status");
    assert_eq!(updates[0]["message"]["from"]["id"], 55);
    assert_eq!(updates[0]["message"]["chat"]["id"], 55);

    // Unconfirmed updates come again; offset confirms them.
    let (status, sent) = call(&client, &api, "sendMessage", json!({"chat_id": 55, "text": "pick", "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}})).await;
    assert_eq!(status, 200);
    let message_id = sent["result"]["message_id"].as_i64().unwrap();
    let second = sim.push_callback(55, 55, message_id, "a");
    assert!(second > first);
    let (_, again) = call(&client, &api, "getUpdates", json!({})).await;
    assert_eq!(again["result"].as_array().unwrap().len(), 2);
    let (_, rest) = call(&client, &api, "getUpdates", json!({"offset": first + 1})).await;
    let rest = rest["result"].as_array().unwrap().clone();
    assert_eq!(rest.len(), 1);
    let query = &rest[0]["callback_query"];
    assert_eq!(query["data"], "a");
    assert_eq!(query["message"]["message_id"], message_id);
    assert_eq!(query["message"]["text"], "pick");
    let (status, body) = call(
        &client,
        &api,
        "answerCallbackQuery",
        json!({"callback_query_id": query["id"], "text": "Done"}),
    )
    .await;
    assert_eq!((status, &body["result"]), (200, &json!(true)));
    let (status, _) = call(
        &client,
        &api,
        "answerCallbackQuery",
        json!({"callback_query_id": query["id"]}),
    )
    .await;
    assert_eq!(status, 400, "a query is answered once");
    assert_eq!(sim.answered_callbacks()[0].text.as_deref(), Some("Done"));
    let (_, edited) = call(&client, &api, "editMessageText", json!({"chat_id": 55, "message_id": message_id, "text": "<b>picked A</b>", "parse_mode": "HTML"})).await;
    assert_eq!(edited["result"]["text"], "picked A", "{edited}");
    assert!(edited["result"]["edit_date"].is_i64());
    let (status, same) = call(
        &client,
        &api,
        "editMessageText",
        json!({"chat_id": 55, "message_id": message_id, "text": "picked A"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        same["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: message is not modified")
    );
    let (_, none) = call(
        &client,
        &api,
        "getUpdates",
        json!({"offset": second + 1, "timeout": 0}),
    )
    .await;
    assert_eq!(none["result"], json!([]));
    assert_eq!(sim.pending_updates(), 0);
}

#[tokio::test]
async fn a_webhook_blocks_get_updates_and_receives_updates_with_the_secret() {
    let (sim, api, client) = start().await;
    sim.set_webhook_retry(Duration::from_millis(100));
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<(Option<String>, Value)>();
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(update): axum::Json<Value>| {
                let sender = sender.clone();
                let failures = failures.clone();
                async move {
                    // The first delivery fails: the simulator must try again.
                    if failures.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let secret = headers
                        .get("X-Telegram-Bot-Api-Secret-Token")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = sender.send((secret, update));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let (status, body) = call(
        &client,
        &api,
        "setWebhook",
        json!({"url": hook, "secret_token": "s3cr3t_T"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], true);
    let (status, conflict) = call(&client, &api, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(
        conflict["description"],
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    );
    let (status, _) = call(
        &client,
        &api,
        "setWebhook",
        json!({"url": "http://example.org/hook"}),
    )
    .await;
    assert_eq!(
        status, 400,
        "https is required (plain http only for loopback)"
    );

    let id = sim.push_message(9, 9, "hello");
    let (secret, update) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.as_deref(), Some("s3cr3t_T"));
    assert_eq!(update["update_id"], id);
    assert_eq!(update["message"]["text"], "hello");
    assert!(sim.webhook_attempts() >= 2, "retried after the 500");
    let (_, info) = call(&client, &api, "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["url"], hook);
    assert!(
        info["result"]["last_error_message"]
            .as_str()
            .unwrap()
            .contains("500")
    );

    let (status, body) = call(&client, &api, "deleteWebhook", json!({})).await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (200, "Webhook was deleted")
    );
    let (status, body) = call(&client, &api, "getUpdates", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!([]), "the webhook took the update");
}

#[tokio::test]
async fn a_second_get_updates_ends_the_first_with_409() {
    let (_sim, api, client) = start().await;
    let first = {
        let (client, api) = (client.clone(), api.clone());
        tokio::spawn(async move { call(&client, &api, "getUpdates", json!({"timeout": 10})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = {
        let (client, api) = (client.clone(), api.clone());
        tokio::spawn(async move { call(&client, &api, "getUpdates", json!({"timeout": 1})).await })
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 409);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("terminated by other getUpdates request")
    );
    let (status, _) = second.await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_inspection_side_over_http() {
    let (sim, api, client) = start().await;
    let base = api.trim_end_matches(&format!("/bot{TOKEN}")).to_owned();
    call(
        &client,
        &api,
        "sendMessage",
        json!({"chat_id": 8, "text": "<b>a &lt;script&gt;</b>", "parse_mode": "HTML"}),
    )
    .await;
    let page = client
        .get(format!("{base}/sim/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("a &lt;script&gt;"), "{page}");
    assert!(!page.contains("<script>"));
    let listed: Value = client
        .get(format!("{base}/sim/messages?chat_id=8"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["visible_text"], "a <script>");
    let set = client
        .post(format!("{base}/sim/chats/8"))
        .json(&json!({"behaviour": "blocked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(sim.behaviour(8), Behaviour::Blocked);
    let injected: Value = client
        .post(format!("{base}/sim/updates"))
        .json(&json!({"chat_id": 8, "from": 8, "text": "/start"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, updates) = call(&client, &api, "getUpdates", json!({})).await;
    assert_eq!(updates["result"][0]["update_id"], injected["update_id"]);
}
