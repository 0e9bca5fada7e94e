//! The chain's bot against the Bot API simulator over real HTTP, on SQLite and PostgreSQL: the access-code and
//! subscription dialogue end to end (the directory's routes checked after every step), the code throttle, Russian
//! and English, no duplicate replies across a restart, the webhook's secret, and one polling instance at a time.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tillwire_directory::ChatType;
use tillwire_directory::subscriptions::{NewChat, Subscriptions};
use tillwire_notify::bot::{self, Bot};
use tillwire_notify::sim::{Delivered, Limits, TelegramSim};
use tillwire_notify::telegram::BotApi;
use tillwire_platform::leases::Leases;
use tillwire_platform::web::Lang;
use tillwire_platform::{Platform, Settings, Store, area};
use tillwire_testkit::{TestDatabase, eventually};

const TOKEN: &str = "123456:BOT-TEST";
const CODE: &str = "pizza-42";
/// Long enough for a duplicate reply to show: a second reply to one chat within a second waits out a 429 first.
const SETTLE: Duration = Duration::from_secs(2);

/// Ten units in two regions (so a type's units are chosen region by region), a role granting them with two active
/// types and an inactive one, and a small role.
const FIXTURE: &str = r#"{
  "regions": [{"id": 1, "name": "Север"}, {"id": 2, "name": "Юг"}],
  "departments": [{"id": 1, "name": "Сеть", "uuid": "dep-1"}],
  "units": [
    {"id": 1, "name": "Север-1", "uuid": "u-1", "region_id": 1, "department_id": 1},
    {"id": 2, "name": "Север-2", "uuid": "u-2", "region_id": 1, "department_id": 1},
    {"id": 3, "name": "Север-3", "uuid": "u-3", "region_id": 1, "department_id": 1},
    {"id": 4, "name": "Север-4", "uuid": "u-4", "region_id": 1, "department_id": 1},
    {"id": 5, "name": "Север-5", "uuid": "u-5", "region_id": 1, "department_id": 1},
    {"id": 6, "name": "Юг-1", "uuid": "u-6", "region_id": 2, "department_id": 1},
    {"id": 7, "name": "Юг-2", "uuid": "u-7", "region_id": 2, "department_id": 1},
    {"id": 8, "name": "Юг-3", "uuid": "u-8", "region_id": 2, "department_id": 1},
    {"id": 9, "name": "Юг-4", "uuid": "u-9", "region_id": 2, "department_id": 1},
    {"id": 10, "name": "Юг-5 <&>", "uuid": "u-10", "region_id": 2, "department_id": 1}
  ],
  "report_types": [
    {"id": 2, "name": "INGREDIENTS_STOP_SALES", "verbose_name": "Стопы (тесто, сыр, пицца-соус)", "is_active": true, "priority": 5},
    {"id": 3, "name": "STREET_STOP_SALES", "verbose_name": "Стопы (Улица)"},
    {"id": 7, "name": "CANCELED_ORDERS", "verbose_name": "Отмены заказов", "is_active": true, "priority": 10}
  ],
  "roles": [
    {"id": 1, "name": "Manager", "access_code": "pizza-42", "unit_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "report_type_ids": [2, 3, 7]},
    {"id": 2, "name": "Small", "access_code": "small-7", "unit_ids": [1, 2], "report_type_ids": [2]}
  ]
}"#;

struct Rig {
    platform: Platform,
    sim: TelegramSim,
    base: String,
    db: TestDatabase,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.platform.begin_shutdown();
    }
}

async fn rig(db: TestDatabase) -> Rig {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&[
            tillwire_platform::MIGRATIONS,
            tillwire_units::MIGRATIONS,
            tillwire_directory::MIGRATIONS,
            tillwire_notify::MIGRATIONS,
        ])
        .await
        .expect("migrate");
    let platform = Platform::new(store, Settings::for_database(db.url()));
    tillwire_directory::seed::init(&platform)
        .await
        .expect("report types");
    tillwire_directory::import::import(&platform.store, FIXTURE, "test")
        .await
        .expect("fixture");
    tillwire_platform::write!(&platform.store, db => sqlx::query(
        "UPDATE directory_report_types SET verbose_name_en = 'Stop sales (dough, cheese, sauce)' WHERE id = 2",
    )
    .execute(db)
    .await
    .map(|_| ()))
    .expect("English label");
    let sim = TelegramSim::new(TOKEN);
    let base = sim.serve_on_loopback().await.expect("simulator");
    Rig {
        platform,
        sim,
        base,
        db,
    }
}

impl Rig {
    /// Another instance over the same database (its own leases), with `[telegram]` as given.
    async fn instance(&self, telegram: Value) -> Platform {
        let store = Store::connect(self.db.url()).await.expect("connect");
        let mut settings = Settings::for_database(self.db.url());
        let mut section = json!({ "api_url": self.base, "bot_token": TOKEN });
        for (key, value) in telegram.as_object().expect("object") {
            section[key] = value.clone();
        }
        settings.set("telegram", section);
        Platform::new(store, settings)
    }

    /// The app as `tillwire serve` assembles it, with its background tasks running; its router.
    async fn serve(&self, telegram: Value) -> (Platform, axum::Router) {
        let platform = self.instance(telegram).await;
        let app = area::assemble(&[&tillwire_notify::AREA], &platform).expect("assemble");
        for (_, task) in app.tasks {
            tokio::spawn(task(platform.stopping()));
        }
        (platform, app.router)
    }

    /// A bot polling on its own instance, with a short lease; stopped by aborting it (as if it died).
    async fn poller(&self, lease: Duration) -> (Bot, Leases, tokio::task::JoinHandle<()>) {
        let platform = self.instance(json!({})).await;
        let bot = Bot::new(
            platform.store.clone(),
            BotApi::new(&self.base, TOKEN),
            Lang::Ru,
        );
        let leases = platform.leases.clone();
        let running = tokio::spawn({
            let bot = bot.clone();
            let leases = leases.clone();
            async move {
                let _ = bot.poll(leases, lease, platform.stopping()).await;
            }
        });
        (bot, leases, running)
    }

    fn subscriptions(&self) -> Subscriptions {
        Subscriptions(self.platform.store.clone())
    }

    async fn routes(&self, chat_id: i64) -> Vec<(i64, i64)> {
        self.subscriptions()
            .of_chat(chat_id)
            .await
            .expect("subscriptions")
            .iter()
            .map(|s| (s.report_type_id, s.unit_id))
            .collect()
    }

    async fn role(&self, chat_id: i64) -> Option<i64> {
        self.subscriptions().role(chat_id).await.expect("role")
    }

    /// A user writes in their private chat (user id = chat id); the bot's reply.
    async fn say(&self, chat_id: i64, text: &str) -> Delivered {
        let before = self.sim.messages(chat_id).len();
        self.sim.push_message(chat_id, chat_id, text);
        eventually(&format!("a reply to {text:?}"), || async {
            self.sim.messages(chat_id).len() > before
        })
        .await;
        let messages = self.sim.messages(chat_id);
        assert_eq!(messages.len(), before + 1, "one reply to {text:?}");
        messages[before].clone()
    }

    /// A user presses a button under the bot's message; the message afterwards and the callback's answer.
    async fn press(
        &self,
        chat_id: i64,
        message_id: i64,
        data: &str,
    ) -> (Delivered, Option<String>) {
        let before = self.sim.answered_callbacks().len();
        self.sim.push_callback(chat_id, chat_id, message_id, data);
        eventually(&format!("an answer to {data}"), || async {
            self.sim.answered_callbacks().len() > before
        })
        .await;
        let answered = self.sim.answered_callbacks();
        assert_eq!(answered.len(), before + 1, "one answer to {data}");
        let message = self
            .sim
            .messages(chat_id)
            .into_iter()
            .find(|m| m.message_id == message_id)
            .expect("the message");
        (message, answered[before].text.clone())
    }
}

/// The buttons of a message: (text, callback data), row by row.
fn buttons(message: &Delivered) -> Vec<(String, String)> {
    let markup = message.reply_markup.clone().unwrap_or(Value::Null);
    markup["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .map(|b| {
            let data = b["callback_data"].as_str().unwrap_or_default().to_owned();
            assert!(data.len() <= 64, "callback data {data:?}");
            (b["text"].as_str().unwrap_or_default().to_owned(), data)
        })
        .collect()
}

fn datas(message: &Delivered) -> Vec<String> {
    buttons(message).into_iter().map(|(_, data)| data).collect()
}

tillwire_testkit::both_backends!(the_whole_dialogue, |db| async move {
    let rig = rig(db).await;
    // The app as served, polling.
    let (_instance, _router) = rig.serve(json!({ "bot": "polling" })).await;
    let chat = 5001;

    let hello = rig.say(chat, "/start").await;
    assert!(
        hello.visible_text.contains("код доступа"),
        "{}",
        hello.visible_text
    );
    let known = NewChat {
        chat_id: chat,
        kind: ChatType::Private,
        title: "x".into(),
        username: None,
    };
    assert!(
        !rig.subscriptions()
            .register(&known, "test")
            .await
            .expect("register"),
        "/start registered the chat"
    );
    assert_eq!(rig.role(chat).await, None);

    let wrong = rig.say(chat, "not-the-code").await;
    assert!(
        wrong.visible_text.contains("Такого кода доступа нет"),
        "{}",
        wrong.visible_text
    );
    assert!(
        !wrong.text.contains("not-the-code"),
        "the code is never echoed"
    );
    assert_eq!(rig.role(chat).await, None);

    // A chat without a role pressing an old button.
    let (_, answer) = rig.press(chat, hello.message_id, "t:2").await;
    assert_eq!(answer.as_deref(), Some("Сначала отправьте код доступа."));

    let accepted = rig.say(chat, CODE).await;
    assert!(
        accepted.visible_text.contains("Код принят"),
        "{}",
        accepted.visible_text
    );
    assert!(!accepted.text.contains(CODE), "the code is never echoed");
    assert_eq!(rig.role(chat).await, Some(1));
    // Active types by priority (the inactive STREET_STOP_SALES is not offered), then the list.
    assert_eq!(datas(&accepted), ["t:7", "t:2", "l"]);
    assert_eq!(buttons(&accepted)[0].0, "Отмены заказов");
    let menu = accepted.message_id;

    // Ten units in two regions: regions first.
    let (regions, _) = rig.press(chat, menu, "t:2").await;
    assert!(regions.edited);
    assert!(
        regions
            .visible_text
            .contains("Стопы (тесто, сыр, пицца-соус)")
    );
    assert_eq!(
        buttons(&regions)[..2],
        [
            ("Север (0/5)".to_owned(), "g:2:1".to_owned()),
            ("Юг (0/5)".to_owned(), "g:2:2".to_owned())
        ]
    );
    let (north, _) = rig.press(chat, menu, "g:2:1").await;
    assert_eq!(
        datas(&north),
        [
            "u:2:1:1", "u:2:1:2", "u:2:1:3", "u:2:1:4", "u:2:1:5", "a:2:1", "n:2:1", "t:2"
        ]
    );
    assert!(buttons(&north)[0].0.starts_with('⬜'));

    let (toggled, _) = rig.press(chat, menu, "u:2:1:1").await;
    assert_eq!(rig.routes(chat).await, [(2, 1)]);
    assert_eq!(buttons(&toggled)[0].0, "✅ Север-1");
    rig.press(chat, menu, "u:2:1:2").await;
    assert_eq!(rig.routes(chat).await, [(2, 1), (2, 2)]);
    let (toggled, _) = rig.press(chat, menu, "u:2:1:1").await;
    assert_eq!(rig.routes(chat).await, [(2, 2)]);
    assert_eq!(buttons(&toggled)[0].0, "⬜ Север-1");

    let (_, done) = rig.press(chat, menu, "a:2:1").await;
    assert_eq!(done.as_deref(), Some("Готово"));
    let north_all: Vec<(i64, i64)> = (1..=5).map(|u| (2, u)).collect();
    assert_eq!(rig.routes(chat).await, north_all);
    // "All" again changes nothing and is no error.
    let (_, done) = rig.press(chat, menu, "a:2:1").await;
    assert_eq!(done.as_deref(), Some("Готово"));
    assert_eq!(rig.routes(chat).await, north_all);
    rig.press(chat, menu, "n:2:1").await;
    assert!(rig.routes(chat).await.is_empty());

    let (regions, _) = rig.press(chat, menu, "t:2").await;
    assert_eq!(buttons(&regions)[0].0, "Север (0/5)");
    rig.press(chat, menu, "a:2:*").await;
    let everything: Vec<(i64, i64)> = (1..=10).map(|u| (2, u)).collect();
    assert_eq!(rig.routes(chat).await, everything);
    let (regions, _) = rig.press(chat, menu, "t:2").await;
    assert_eq!(buttons(&regions)[1].0, "Юг (5/5)");
    rig.press(chat, menu, "u:7:*:6").await;
    assert_eq!(
        rig.routes(chat).await.first(),
        Some(&(7, 6)),
        "by type priority"
    );

    let listed = rig.say(chat, "/subscriptions").await;
    assert!(
        listed
            .visible_text
            .contains("Стопы (тесто, сыр, пицца-соус)")
    );
    assert!(listed.visible_text.contains("Отмены заказов"));
    // Unit names are escaped in HTML and read as written.
    assert!(
        listed.text.contains("Юг-5 &lt;&amp;&gt;"),
        "{}",
        listed.text
    );
    assert!(listed.visible_text.contains("Юг-5 <&>"));
    let removals: Vec<String> = datas(&listed)
        .into_iter()
        .filter(|d| d.starts_with("x:"))
        .collect();
    assert_eq!(removals.len(), 11);
    assert_eq!(removals[0], "x:7:6", "by type priority");
    let (listed, _) = rig.press(chat, listed.message_id, "x:2:6").await;
    // Юг-1 is left under the other type only.
    assert_eq!(
        listed.visible_text.matches("Юг-1").count(),
        1,
        "{}",
        listed.visible_text
    );
    assert_eq!(datas(&listed).len(), 11, "ten removals and back");
    assert_eq!(rig.routes(chat).await.len(), 10);
    assert!(!rig.routes(chat).await.contains(&(2, 6)));

    // A switched-off type's old button.
    tillwire_platform::write!(&rig.platform.store, db => sqlx::query(
        "UPDATE directory_report_types SET is_active = FALSE WHERE id = 7",
    )
    .execute(db)
    .await
    .map(|_| ()))
    .expect("deactivate");
    let (shown, notice) = rig.press(chat, menu, "u:7:*:7").await;
    assert_eq!(
        notice.as_deref(),
        Some("Это больше недоступно для вашей роли.")
    );
    assert_eq!(datas(&shown), ["t:2", "l"]);
    assert!(!rig.routes(chat).await.contains(&(7, 7)));

    // Another role's code: the routes it does not permit go.
    let smaller = rig.say(chat, "/code small-7").await;
    assert!(smaller.visible_text.contains("Код принят"));
    assert_eq!(rig.routes(chat).await, [(2, 1), (2, 2)]);
    // Two units: no regions.
    let (units, _) = rig.press(chat, smaller.message_id, "t:2").await;
    assert_eq!(datas(&units), ["u:2:*:1", "u:2:*:2", "a:2:*", "n:2:*", "m"]);

    let back = rig.say(chat, "/start").await;
    assert!(
        back.visible_text.starts_with("С возвращением"),
        "{}",
        back.visible_text
    );
    assert_eq!(datas(&back), ["t:2", "l"]);

    let hint = rig.say(chat, "hello there").await;
    assert!(
        hint.visible_text.contains("Я не понял"),
        "{}",
        hint.visible_text
    );
    let help = rig.say(chat, "/help").await;
    assert!(help.visible_text.contains("/subscriptions"));
    // Replies in quick succession met the simulator's one-a-second per chat: each 429 was waited out.
    assert!(
        rig.sim.rate_violations().is_empty(),
        "{:?}",
        rig.sim.rate_violations()
    );
});

tillwire_testkit::both_backends!(
    a_group_registers_by_title_and_takes_a_code_command,
    |db| async move {
        let rig = rig(db).await;
        let (_instance, _router) = rig.serve(json!({ "bot": "polling" })).await;
        let group = -4242;
        let member = 42;
        rig.sim
            .push_message(group, member, "/start@tillwire_sim_bot");
        eventually("the welcome", || async {
            rig.sim.messages(group).len() == 1
        })
        .await;
        assert!(rig.sim.messages(group)[0].visible_text.contains("/code"));
        // Talk in the group is neither a code attempt nor answered.
        rig.sim.push_message(group, member, "good morning");
        rig.sim
            .push_message(group, member, &format!("/code {CODE}"));
        eventually("the code's answer", || async {
            rig.sim.messages(group).len() == 2
        })
        .await;
        tokio::time::sleep(SETTLE).await;
        assert_eq!(rig.sim.messages(group).len(), 2, "no answer to the talk");
        assert_eq!(rig.sim.pending_updates(), 0);
        let accepted = &rig.sim.messages(group)[1];
        assert!(
            accepted.visible_text.contains("Код принят"),
            "{}",
            accepted.visible_text
        );
        assert!(!accepted.text.contains(CODE));
        assert_eq!(rig.role(group).await, Some(1));
        let (_, _) = rig.press(group, accepted.message_id, "a:2:*").await;
        assert_eq!(rig.routes(group).await.len(), 10);
        // Registered by its title, as a group (read straight from the table: the directory's API has no chat getter).
        let (title, kind): (String, String) =
            tillwire_platform::read!(&rig.platform.store, db => sqlx::query_as(
        "SELECT title, chat_type FROM directory_chats WHERE chat_id = $1",
    )
    .bind(group)
    .fetch_one(db)
    .await)
            .expect("chat");
        assert_eq!((title.as_str(), kind.as_str()), ("Chat -4242", "GROUP"));
        // And the fan-out finds it.
        let recipients = tillwire_directory::routing::Routing(rig.platform.store.clone())
            .recipients(3, "INGREDIENTS_STOP_SALES")
            .await
            .expect("recipients");
        assert_eq!(
            recipients.iter().map(|r| r.chat_id).collect::<Vec<_>>(),
            [group]
        );
        assert!(recipients[0].is_group());
    }
);

tillwire_testkit::both_backends!(wrong_codes_are_throttled, |db| async move {
    let rig = rig(db).await;
    let (_instance, _router) = rig.serve(json!({ "bot": "polling" })).await;
    let chat = 7001;
    for attempt in 0..5 {
        let wrong = rig.say(chat, &format!("guess-{attempt}")).await;
        assert!(
            wrong.visible_text.contains("Такого кода доступа нет"),
            "{}",
            wrong.visible_text
        );
    }
    // Even the right code waits now.
    let throttled = rig.say(chat, CODE).await;
    assert!(
        throttled.visible_text.contains("Слишком много попыток"),
        "{}",
        throttled.visible_text
    );
    assert_eq!(rig.role(chat).await, None);
    // Another chat is not held up.
    let other = rig.say(7002, CODE).await;
    assert!(other.visible_text.contains("Код принят"));
});

tillwire_testkit::both_backends!(russian_and_english, |db| async move {
    let rig = rig(db).await;
    let (_instance, _router) = rig
        .serve(json!({ "bot": "polling", "language": "en" }))
        .await;
    let english = 6001;
    rig.sim.set_user_language(english, Some("en-GB"));
    let hello = rig.say(english, "/start").await;
    assert!(
        hello.visible_text.starts_with("Hello!"),
        "{}",
        hello.visible_text
    );
    let wrong = rig.say(english, "nope").await;
    assert!(wrong.visible_text.contains("There is no such access code"));
    let accepted = rig.say(english, CODE).await;
    assert!(accepted.visible_text.contains("Code accepted"));
    let labels: Vec<String> = buttons(&accepted)
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    // The English label where the type has one, else the Russian.
    assert_eq!(
        labels,
        [
            "Отмены заказов",
            "Stop sales (dough, cheese, sauce)",
            "📋 My subscriptions"
        ]
    );
    let (_, answer) = rig.press(english, accepted.message_id, "l").await;
    assert_eq!(answer, None);
    let empty = rig
        .sim
        .messages(english)
        .into_iter()
        .find(|m| m.message_id == accepted.message_id)
        .expect("message");
    assert_eq!(empty.visible_text, "No subscriptions yet.");

    let russian = 6002;
    let hello = rig.say(russian, "/start").await;
    assert!(
        hello.visible_text.starts_with("Здравствуйте!"),
        "{}",
        hello.visible_text
    );
    // Neither language: the install's.
    let german = 6003;
    rig.sim.set_user_language(german, Some("de"));
    assert!(
        rig.say(german, "/help")
            .await
            .visible_text
            .contains("Commands")
    );
    let silent = 6004;
    rig.sim.set_user_language(silent, None);
    assert!(
        rig.say(silent, "/help")
            .await
            .visible_text
            .contains("Commands")
    );
});

tillwire_testkit::both_backends!(a_restart_replies_to_nothing_twice, |db| async move {
    let rig = rig(db).await;
    let chat = 8001;
    let (first, _, running) = rig.poller(Duration::from_secs(5)).await;
    rig.say(chat, "/start").await;
    let update_id = rig.sim.push_message(chat, chat, "/help");
    eventually("the help", || async { rig.sim.messages(chat).len() == 2 }).await;
    // The process dies: nothing is released or confirmed on the way out.
    running.abort();
    let _ = running.await;
    assert_eq!(first.next_offset().await.expect("offset"), update_id + 1);

    let (second, _, _running) = rig.poller(Duration::from_secs(5)).await;
    assert_eq!(
        second.next_offset().await.expect("offset"),
        update_id + 1,
        "the offset is in the database"
    );
    // Telegram sends the last update again (it was never confirmed): handled already.
    let again = json!({
        "update_id": update_id,
        "message": {"message_id": 99, "from": {"id": chat, "is_bot": false, "first_name": "U"},
                    "chat": {"id": chat, "type": "private", "first_name": "U"}, "date": 0, "text": "/help"},
    });
    second.handle(again).await.expect("handled");
    // The second instance takes over once the first one's lease has run out, and answers what is new once.
    let reply = rig.say(chat, "/help").await;
    assert!(reply.visible_text.contains("/subscriptions"));
    tokio::time::sleep(SETTLE).await;
    assert_eq!(rig.sim.messages(chat).len(), 3, "no duplicate replies");
    assert_eq!(rig.sim.pending_updates(), 0);
    assert!(second.polls() > 0);
});

tillwire_testkit::both_backends!(only_one_instance_polls, |db| async move {
    let rig = rig(db).await;
    let lease = Duration::from_millis(1500);
    let (a, a_leases, a_running) = rig.poller(lease).await;
    let (b, b_leases, b_running) = rig.poller(lease).await;
    eventually("one instance polls", || async { a.polls() + b.polls() > 0 }).await;
    // Past a few renewals the other still waits.
    tokio::time::sleep(lease * 2).await;
    let (holder, holder_leases, holder_running, other, other_leases, other_running) =
        if a.polls() > 0 {
            (a, a_leases, a_running, b, b_leases, b_running)
        } else {
            (b, b_leases, b_running, a, a_leases, a_running)
        };
    assert_eq!(other.polls(), 0, "the other instance does not poll");
    assert_eq!(
        holder_leases
            .holder_of(bot::LEASE)
            .await
            .expect("holder")
            .as_deref(),
        Some(holder_leases.holder())
    );
    let chat = 9001;
    rig.say(chat, "/start").await;

    // The polling instance dies; the other takes over within the lease.
    holder_running.abort();
    let _ = holder_running.await;
    let before = holder.polls();
    eventually("the other instance polls", || async { other.polls() > 0 }).await;
    let reply = rig.say(chat, "/help").await;
    assert!(reply.visible_text.contains("/subscriptions"));
    tokio::time::sleep(SETTLE).await;
    assert_eq!(rig.sim.messages(chat).len(), 2, "each update answered once");
    assert_eq!(holder.polls(), before);
    assert_eq!(
        other_leases
            .holder_of(bot::LEASE)
            .await
            .expect("holder")
            .as_deref(),
        Some(other_leases.holder())
    );
    other_running.abort();
});

tillwire_testkit::both_backends!(the_webhook_wants_its_secret, |db| async move {
    let rig = rig(db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let url = format!(
        "http://{}{}",
        listener.local_addr().expect("address"),
        bot::WEBHOOK_PATH
    );
    let (_instance, router) = rig
        .serve(json!({ "bot": "webhook", "webhook_url": url }))
        .await;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let api = BotApi::new(&rig.base, TOKEN);
    eventually("the webhook is set", || async {
        api.call("getWebhookInfo", &json!({})).await.expect("info")["url"] == url.as_str()
    })
    .await;

    let chat = 4001;
    let update = |id: i64| {
        json!({
            "update_id": id,
            "message": {"message_id": 1, "from": {"id": chat, "is_bot": false, "first_name": "U"},
                        "chat": {"id": chat, "type": "private", "first_name": "U"}, "date": 0, "text": "/start"},
        })
    };
    let http = reqwest::Client::new();
    let post = |secret: Option<&str>, id: i64| {
        let mut request = http.post(&url).json(&update(id));
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        async move { request.send().await.expect("post").status().as_u16() }
    };
    assert_eq!(post(None, 1).await, 401);
    assert_eq!(post(Some("wrong"), 2).await, 403);
    let secret = bot::webhook_secret(TOKEN);
    let forged = format!("{}x", &secret[..secret.len() - 1]);
    assert_eq!(post(Some(&forged), 3).await, 403);
    tokio::time::sleep(SETTLE).await;
    assert!(
        rig.sim.messages(chat).is_empty(),
        "nothing handled without the secret"
    );
    assert_eq!(rig.role(chat).await, None);

    // Telegram's own delivery, with the secret set.
    let hello = rig.say(chat, "/start").await;
    assert!(hello.visible_text.contains("код доступа"));
    assert!(rig.sim.webhook_attempts() >= 1);
    assert_eq!(rig.sim.pending_updates(), 0);
    let accepted = rig.say(chat, CODE).await;
    assert!(accepted.visible_text.contains("Код принят"));
    // The same update twice: answered once (with no per-chat limit, so a second reply could not be lost to a 429).
    rig.sim.set_limits(Limits {
        per_chat_interval: Duration::from_millis(1),
        ..Limits::default()
    });
    assert_eq!(post(Some(&secret), 77).await, 200);
    assert_eq!(post(Some(&secret), 77).await, 200);
    eventually("the posted update", || async {
        rig.sim.messages(chat).len() == 3
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(rig.sim.messages(chat).len(), 3);
});
