//! Secure by default: tokens outside the allow-list, throttled access codes, no secret in a response or a log.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::Method;
use common::{Harness, envelope, json};
use tillwire_directory::AccessConfig;
use tillwire_platform::Settings;
use tillwire_platform::tokens::{Scope, TokenName, Tokens};

/// Everything any test of this file logs, at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        logs
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn networks(list: &[&str]) -> AccessConfig {
    AccessConfig {
        allow: tillwire_platform::server::Networks::parse(list).unwrap(),
    }
}

tillwire_testkit::both_backends!(
    outside_the_allow_list_a_token_is_required,
    |db| async move {
        let t = Harness::with_access(db, networks(&["10.0.0.0/8"])).await;
        for path in [
            "/units/",
            "/api/report-routes/telegram-chats/?unit_id=1&report_type_id=2",
            "/telegram-chats/nope/",
        ] {
            let refused = t.call(Method::GET, path, None).await;
            assert_eq!(
                (refused.status, refused.body),
                (
                    401,
                    envelope("Authentication credentials were not provided.")
                ),
                "{path}"
            );
        }
        let inside = t
            .call_as(Method::GET, "/units/", None, "10.1.2.3:4000", None)
            .await;
        assert_eq!(inside.status, 200);
        let (id, token) = issue(&t, "notifications-router", "directory").await;
        let bearer = format!("Bearer {token}");
        let with_token = t
            .call_as(
                Method::GET,
                "/api/units/",
                None,
                "192.168.7.7:4000",
                Some(&bearer),
            )
            .await;
        assert_eq!(with_token.status, 200);
        let drf_style = t
            .call_as(
                Method::GET,
                "/units/",
                None,
                "192.168.7.7:4000",
                Some(&format!("Token {token}")),
            )
            .await;
        assert_eq!(drf_style.status, 200);
        let wrong = t
            .call_as(
                Method::GET,
                "/units/",
                None,
                "10.1.2.3:4000",
                Some("Bearer twd_wrong"),
            )
            .await;
        assert_eq!(
            (wrong.status, wrong.body),
            (401, envelope("Invalid token."))
        );
        Tokens(&t.platform.store)
            .revoke(id, "admin:test")
            .await
            .unwrap();
        let revoked = t
            .call_as(
                Method::GET,
                "/units/",
                None,
                "192.168.7.7:4000",
                Some(&bearer),
            )
            .await;
        assert_eq!(revoked.status, 401);
        // One mechanism for every token: an admin token opens the directory too, another area's does not.
        let (_, admin) = issue(&t, "automation", "admin").await;
        let as_admin = t
            .call_as(
                Method::GET,
                "/units/",
                None,
                "192.168.7.7:4000",
                Some(&format!("Bearer {admin}")),
            )
            .await;
        assert_eq!(as_admin.status, 200);
        let (_, other) = issue(&t, "kitchen-sync", "kitchen").await;
        let as_other = t
            .call_as(
                Method::GET,
                "/units/",
                None,
                "192.168.7.7:4000",
                Some(&format!("Bearer {other}")),
            )
            .await;
        assert_eq!(
            (as_other.status, as_other.body),
            (
                403,
                envelope("You do not have permission to perform this action.")
            )
        );
        // Writes are audited under the caller's name.
        let (_, token) = issue(&t, "bot", "directory").await;
        let created = t
            .call_as(
                Method::POST,
                "/telegram-chats/",
                Some(json!({"chat_id": 5, "type": "PRIVATE", "title": "x"})),
                "8.8.8.8:1",
                Some(&format!("Bearer {token}")),
            )
            .await;
        assert_eq!(created.status, 201);
        let actor: (String,) = tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(
        "SELECT actor FROM directory_audit WHERE action = 'chat.create'").fetch_one(db).await)
        .unwrap();
        assert_eq!(actor.0, "token:bot");
    }
);

tillwire_testkit::both_backends!(empty_allow_list_refuses_loopback, |db| async move {
    let t = Harness::with_access(db, networks(&[])).await;
    assert_eq!(t.get("/api/units/").await.status, 401);
});

tillwire_testkit::both_backends!(access_code_brute_force_is_throttled, |db| async move {
    let t = Harness::with_access(db, networks(&["127.0.0.0/8", "10.0.0.0/8"])).await;
    let attempt = |chat: i64, code: &'static str, from: &'static str| {
        let t = &t;
        async move {
            t.call_as(
                Method::PATCH,
                &format!("/roles/users/{chat}/"),
                Some(json!({"access_code": code})),
                from,
                None,
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(
            attempt(222, "guess", "127.0.0.1:1").await.body,
            envelope("Role is not found")
        );
    }
    let throttled = attempt(222, "secret-one", "127.0.0.1:1").await;
    assert_eq!(
        throttled.status, 429,
        "even the right code waits once the chat is throttled"
    );
    assert_eq!(
        throttled.body,
        envelope("Request was throttled. Expected available in 60 seconds.")
    );
    // Someone else's guesses lock nobody out: the same chat with its right code from another address works.
    assert_eq!(attempt(222, "secret-one", "127.0.0.2:1").await.status, 204);
    // Right codes are not counted: a role switched many times a minute is never refused.
    for _ in 0..20 {
        assert_eq!(attempt(111, "secret-two", "127.0.0.3:1").await.status, 204);
    }
    // Per address: one client guessing for many chats.
    let mut statuses = Vec::new();
    for chat in 0..61 {
        statuses.push(attempt(10_000 + chat, "guess", "10.0.0.9:1").await.status);
    }
    assert!(statuses[..60].iter().all(|s| *s == 404));
    assert_eq!(statuses[60], 429);
    // Another chat from another address is not affected.
    assert_eq!(attempt(111, "secret-two", "127.0.0.2:1").await.status, 204);
});

tillwire_testkit::both_backends!(no_secret_in_responses_or_logs, |db| async move {
    let logs = captured_logs();
    let t = Harness::new(db).await;
    let (_, token) = issue(&t, "worker", "directory").await;
    let mut bodies = String::new();
    for (method, path, body) in [
        (
            Method::PATCH,
            "/roles/users/222/",
            Some(json!({"access_code": "secret-one"})),
        ),
        (
            Method::PATCH,
            "/roles/users/222/",
            Some(json!({"access_code": "secret-wrong"})),
        ),
        (Method::GET, "/roles/users/222/units/", None),
        (Method::GET, "/telegram-chats/222/", None),
    ] {
        let reply = t
            .call_as(
                method,
                path,
                body,
                "127.0.0.1:1",
                Some(&format!("Bearer {token}")),
            )
            .await;
        bodies.push_str(&reply.text);
    }
    // The directory's audit and the platform's token audit.
    let audit: Vec<(String, String)> =
        tillwire_platform::read!(&t.platform.store, db => sqlx::query_as(
        "SELECT actor, detail FROM directory_audit UNION ALL SELECT actor, detail FROM token_audit").fetch_all(db).await)
        .unwrap();
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "admin:test" && d.contains("\"name\":\"worker\"")),
        "issuing a token is audited: {audit:?}"
    );
    for secret in ["secret-one", "secret-two", "secret-wrong", token.as_str()] {
        assert!(!bodies.contains(secret), "{secret} in a response");
        assert!(!logged.contains(secret), "{secret} in the log");
        assert!(
            audit
                .iter()
                .all(|(a, d)| !a.contains(secret) && !d.contains(secret)),
            "{secret} in the audit"
        );
    }
});

#[test]
fn allow_list_settings() {
    let with = |directory: &str| {
        let mut settings = Settings::for_database("sqlite::memory:");
        settings.set(
            "directory",
            toml::from_str::<toml::Table>(directory).unwrap(),
        );
        AccessConfig::from_settings(&settings)
    };
    let access = with(r#"allow = ["10.0.0.0/8", "192.168.1.5"]"#).unwrap();
    assert!(access.allows("10.200.0.1".parse().unwrap()));
    assert!(access.allows("192.168.1.5".parse().unwrap()));
    assert!(access.allows("::ffff:10.0.0.1".parse().unwrap()));
    assert!(!access.allows("127.0.0.1".parse().unwrap()));
    assert!(with("").unwrap().allows("::1".parse().unwrap()));
    // The variable's form: one comma-separated text; `none` leaves nobody allowed.
    let access = with(r#"allow = "10.0.0.0/8, 192.168.1.5""#).unwrap();
    assert!(access.allows("192.168.1.5".parse().unwrap()));
    let nobody = with(r#"allow = "none""#).unwrap();
    assert!(!nobody.allows("127.0.0.1".parse().unwrap()) && !nobody.allows("::1".parse().unwrap()));
    let bad = with(r#"allow = ["ten"]"#).unwrap_err().to_string();
    assert!(
        bad.contains("directory.allow") && bad.contains("\"ten\""),
        "{bad}"
    );
    assert!(with(r#"alow = []"#).is_err());
}

/// Issues a platform token of `scope` as the admin pages would.
async fn issue(t: &Harness, name: &str, scope: &str) -> (i64, String) {
    let scope = Scope::parse(scope, &["directory", "kitchen"]).expect("scope");
    let issued = Tokens(&t.platform.store)
        .issue(
            &TokenName::parse(name).expect("name"),
            &scope,
            None,
            "admin:test",
        )
        .await
        .expect("issue");
    (issued.id, issued.plain)
}
