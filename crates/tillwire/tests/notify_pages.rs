//! The Telegram outbox page in the real binary, against the Bot API simulator served by this test: a test message
//! goes out and is listed as the chat sees it; one refused by Telegram is listed with Telegram's words and can be
//! sent again or discarded; the page never shows the token; in both languages.

mod common;

use std::time::Duration;

use common::eventually;
use tillwire_notify::sim::{Behaviour, TelegramSim};
use tillwire_testkit::reqwest::StatusCode;
use tillwire_testkit::{Backend, TestDatabase, http_client, login};

const TOKEN: &str = "123456:PAGE-TEST-SECRET";
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_page_sends_lists_retries_and_discards() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sim = TelegramSim::new(TOKEN);
    let base = sim.serve_on_loopback().await.expect("simulator");
    sim.set_chat(222, Behaviour::Blocked);
    let dir = common::data_dir();
    let settings = dir.path().join("tillwire.toml");
    std::fs::write(
        &settings,
        format!("[telegram]\napi_url = \"{base}\"\nbot_token = \"{TOKEN}\"\n"),
    )
    .expect("settings");
    let server =
        common::serve_with_config(db.url(), &dir.path().join("data"), &settings, false, &[]).await;
    let client = http_client();
    let username = common::admin_username(&server.output());
    let csrf = login(
        &client,
        &server.base_url(),
        &username,
        &common::admin_password(&server),
    )
    .await;
    let url = |path: &str| format!("{}{path}", server.base_url());
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let client = client.clone();
        let csrf = csrf.clone();
        let target = url(path);
        async move {
            let mut form = fields;
            form.push(("csrf", csrf));
            client
                .post(target)
                .header("accept", "application/json")
                .form(&form)
                .send()
                .await
                .expect("POST")
                .status()
        }
    };
    let page = || async {
        client
            .get(url("/admin/notify/"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page")
    };

    assert_eq!(
        post(
            "/admin/notify/test",
            vec![
                ("chat_id", "111".into()),
                ("text", "Проверка <1> & \"2\"".into())
            ]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post("/admin/notify/test", vec![("chat_id", "222".into())]).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post("/admin/notify/test", vec![("chat_id", "not a chat".into())]).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    eventually("the test message delivered", LIMIT, || async {
        let got = sim.messages(111);
        if got.len() == 1 {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    assert_eq!(
        sim.messages(111)[0].visible_text,
        "🔔 Проверка <1> & \"2\"",
        "escaped on the way, shown as typed"
    );
    let listed = eventually("the refused one listed", LIMIT, || async {
        let body = page().await;
        if body.contains("Forbidden: bot was blocked by the user") {
            Ok(body)
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let shown = listed
        .split("message-text\">")
        .find(|text| text.starts_with("🔔 Проверка &#60;1&#62;"))
        .map(|text| text.split("</pre>").next().unwrap_or_default())
        .unwrap_or_else(|| panic!("the test message listed: {listed}"));
    // Escaped once, by the page (askama writes numeric references): the chat's text, not the stored HTML.
    assert_eq!(shown, "🔔 Проверка &#60;1&#62; &#38; &#34;2&#34;");
    assert!(
        !listed.contains("&amp;lt;") && !listed.contains("&#38;lt;"),
        "no markup shown"
    );
    assert!(
        !listed.contains("PAGE-TEST-SECRET"),
        "the token is never shown"
    );
    let failed_id = listed
        .split("/admin/notify/messages/")
        .find_map(|rest| {
            rest.split('/')
                .next()
                .filter(|id| id.parse::<i64>().is_ok())
        })
        .expect("a failed message's form")
        .to_owned();

    // Sent again: it goes back in line and fails again (the chat still blocks the bot); then discarded.
    let retry = client
        .post(url(&format!("/admin/notify/messages/{failed_id}/retry")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("retry")
        .status();
    assert_eq!(retry, StatusCode::SEE_OTHER);
    eventually("the retry done", LIMIT, || async {
        let body = page().await;
        if body.contains("Попыток") && body.contains("<td>2</td>") {
            Ok(())
        } else {
            Err("attempt 2 not yet".to_owned())
        }
    })
    .await;
    let discard = client
        .post(url(&format!("/admin/notify/messages/{failed_id}/discard")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("discard")
        .status();
    assert_eq!(discard, StatusCode::SEE_OTHER);
    let after = page().await;
    assert!(after.contains("отменено"), "discarded");
    let gone = client
        .post(url("/admin/notify/messages/999999/discard"))
        .header("accept", "application/json")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("discard")
        .status();
    assert_eq!(gone, StatusCode::NOT_FOUND);

    client.get(url("/lang/en")).send().await.expect("English");
    let english = page().await;
    assert!(
        english.contains("Telegram notifications")
            && english.contains("discarded")
            && english.contains("sent")
    );
}

/// A signed-in admin's client and its form poster.
struct Admin {
    client: tillwire_testkit::reqwest::Client,
    base: String,
    csrf: String,
}

impl Admin {
    async fn sign_in(server: &tillwire_testkit::ServerProcess) -> Admin {
        let client = http_client();
        let username = common::admin_username(&server.output());
        let csrf = login(
            &client,
            &server.base_url(),
            &username,
            &common::admin_password(server),
        )
        .await;
        Admin {
            client,
            base: server.base_url(),
            csrf,
        }
    }

    /// Posts a form as the page's script does; the status and the body.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn get(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page")
    }
}

// A token set on the page turns delivery on without a restart, is kept sealed and never shown; message
// templates are previewed, refused when Telegram would refuse them, kept, and reset.
tillwire_testkit::both_backends!(
    a_token_set_on_the_page_turns_delivery_on_and_templates_are_edited,
    |db| async move {
        let sim = TelegramSim::new(TOKEN);
        let base = sim.serve_on_loopback().await.expect("simulator");
        let dir = common::data_dir();
        let settings = dir.path().join("tillwire.toml");
        std::fs::write(
            &settings,
            format!("[telegram]\napi_url = \"{base}\"\nbot = \"polling\"\n"),
        )
        .expect("settings");
        let server =
            common::serve_with_config(db.url(), &dir.path().join("data"), &settings, false, &[])
                .await;
        let admin = Admin::sign_in(&server).await;

        let page = admin.get("/admin/notify/").await;
        assert!(page.contains("Доставка выключена"), "no token yet");
        let (status, body) = admin
            .post("/admin/notify/token", &[("token", "not a token")])
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("@BotFather"), "{body}");
        let (status, _) = admin.post("/admin/notify/token", &[("token", TOKEN)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let page = admin.get("/admin/notify/").await;
        assert!(page.contains("задан на этой странице"), "{page}");
        assert!(
            !page.contains("PAGE-TEST-SECRET"),
            "the token is never shown"
        );
        let stored = common::query_strings(&db, "SELECT value FROM notify_settings").await;
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].contains("PAGE-TEST-SECRET"), "sealed at rest");

        // Delivery starts without a restart.
        let (status, _) = admin
            .post(
                "/admin/notify/test",
                &[("chat_id", "111"), ("text", "через токен со страницы")],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        eventually("the test message delivered", LIMIT, || async {
            match sim.messages(111).as_slice() {
                [one] if one.visible_text == "🔔 через токен со страницы" => {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        })
        .await;

        // The chain's bot starts polling with the token from the page too.
        sim.push_message(4242, 4242, "/start");
        eventually("the bot's answer to /start", LIMIT, || async {
            match sim.messages(4242).as_slice() {
                [] => Err("no answer yet".to_owned()),
                _ => Ok(()),
            }
        })
        .await;

        // Templates: every kind listed; a preview shows the chat's text without keeping it.
        let templates = admin.get("/admin/notify/templates/").await;
        for key in [
            "incident_opened",
            "incident_reminded",
            "printer_failing",
            "collector_behind",
            "erp_line_failed",
            "daily_summary",
        ] {
            assert!(templates.contains(&format!("id=\"{key}\"")), "{key} listed");
        }
        let path = "/admin/notify/templates/printer_failing/ru";
        let (status, preview) = admin
            .post(
                path,
                &[
                    (
                        "body",
                        "Печать встала: <b>{printer}</b>\n<code>{error}</code>",
                    ),
                    ("intent", "preview"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            preview.contains("Печать встала: Кухня\nconnection refused"),
            "{preview}"
        );
        assert!(preview.contains("не сохранено"));
        assert!(
            !admin
                .get("/admin/notify/templates/")
                .await
                .contains("Печать встала"),
            "a preview keeps nothing"
        );
        let (status, refused) = admin
            .post(
                path,
                &[
                    ("body", "Печать встала: {printer} {register}"),
                    ("intent", "save"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.contains("{register}"), "{refused}");
        let (status, _) = admin
            .post(
                path,
                &[
                    ("body", "Печать встала: <b>{printer}</b>"),
                    ("intent", "save"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let kept = admin.get("/admin/notify/templates/").await;
        assert!(kept.contains("Печать встала") && kept.contains("изменён"));
        let (status, _) = admin.post(path, &[("intent", "reset")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(
            !admin
                .get("/admin/notify/templates/")
                .await
                .contains("Печать встала")
        );
        let (status, _) = admin
            .post(
                "/admin/notify/templates/nothing/ru",
                &[("intent", "save"), ("body", "x")],
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Removed, delivery stops: a new test message waits.
        let (status, _) = admin.post("/admin/notify/token/clear", &[]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(
            admin
                .get("/admin/notify/")
                .await
                .contains("Доставка выключена")
        );
        admin
            .client
            .get(format!("{}/lang/en", admin.base))
            .send()
            .await
            .expect("English");
        let english = admin.get("/admin/notify/templates/").await;
        assert!(
            english.contains("Telegram message templates") && english.contains("The chat shows:")
        );
    }
);

// Messages waiting when the process is killed (Telegram answering 5xx) are all delivered after a restart, once.
tillwire_testkit::both_backends!(pending_messages_survive_kill_9, |db| async move {
    let sim = TelegramSim::new(TOKEN);
    let base = sim.serve_on_loopback().await.expect("simulator");
    let chats = [101_i64, 102, 103, -1004];
    for chat in chats {
        sim.set_chat(chat, Behaviour::ServerError { count: 1_000 });
    }
    let dir = common::data_dir();
    let settings = dir.path().join("tillwire.toml");
    std::fs::write(
        &settings,
        format!("[telegram]\napi_url = \"{base}\"\nbot_token = \"{TOKEN}\"\n"),
    )
    .expect("settings");
    let data = dir.path().join("data");
    let mut first = common::serve_with_config(db.url(), &data, &settings, false, &[]).await;
    let admin = Admin::sign_in(&first).await;
    for chat in chats {
        for n in 1..=3 {
            let text = format!("{chat}-{n}");
            let (status, _) = admin
                .post(
                    "/admin/notify/test",
                    &[("chat_id", &chat.to_string()), ("text", &text)],
                )
                .await;
            assert_eq!(status, StatusCode::SEE_OTHER);
        }
    }
    eventually("the first messages tried and refused", LIMIT, || async {
        let tried = common::query_pairs(
            &db,
            "SELECT COUNT(*), COUNT(CASE WHEN attempts > 0 THEN 1 END) FROM notify_messages WHERE state = 'pending'",
        )
        .await;
        // One chat's messages go one at a time: the first of each chat was tried, the others wait behind it.
        match tried.as_slice() {
            [(12, 4)] => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    first.kill9();
    assert!(
        sim.all_messages().is_empty(),
        "nothing got through before the crash"
    );
    for chat in chats {
        sim.set_chat(chat, Behaviour::Normal);
    }

    let _second = common::serve_with_config(db.url(), &data, &settings, false, &[]).await;
    eventually("every message delivered", LIMIT, || async {
        let count = sim.all_messages().len();
        if count >= 12 {
            Ok(())
        } else {
            Err(format!("{count} of 12"))
        }
    })
    .await;
    for chat in chats {
        let texts: Vec<String> = sim
            .messages(chat)
            .into_iter()
            .map(|m| m.visible_text)
            .collect();
        let wanted: Vec<String> = (1..=3).map(|n| format!("🔔 {chat}-{n}")).collect();
        assert_eq!(texts, wanted, "each once, in order, in chat {chat}");
    }
    assert_eq!(sim.lost_replies(), 0);
});
