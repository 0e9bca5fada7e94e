//! Users, passwords, sessions and the login limiter: argon2id hashes, sessions kept only as hashes, expiry and
//! logout, and throttling after the burst.

mod common;

use common::open;
use std::net::IpAddr;

use axum::Router;
use axum::routing::get;
use tillwire_platform::auth::{
    AuthError, LoginLimiter, NewPassword, SESSION_COOKIE, Sessions, Username, Users,
};
use tillwire_platform::{CurrentUser, Platform, Role, Settings, Store, now_ms, sha256_hex};
use tillwire_testkit::reqwest;

const PASSWORD: &str = "correct horse battery";

async fn create(store: &Store, username: &str, role: Role) -> i64 {
    Users(store)
        .create(
            &Username::parse(username).expect("username"),
            &NewPassword::parse(PASSWORD).expect("password"),
            role,
        )
        .await
        .expect("create user")
}

async fn sessions_rows(store: &Store) -> Vec<(String, i64, String, i64, i64)> {
    tillwire_platform::read!(store, db => sqlx::query_as(
        "SELECT token_hash, user_id, csrf_token, created_ms, expires_ms FROM sessions ORDER BY created_ms",
    )
    .fetch_all(db)
    .await)
    .expect("read sessions")
}

async fn exec(store: &Store, sql: &'static str, value: i64) {
    tillwire_platform::write!(store, db => sqlx::query(sql)
        .bind(value)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
    .expect("run test SQL");
}

tillwire_testkit::both_backends!(passwords_are_argon2id_hashes, |db| async move {
    let store = open(&db).await;
    let id = create(&store, "alice", Role::Operator).await;
    let (hash,): (String,) = tillwire_platform::read!(&store, db => sqlx::query_as(
        "SELECT password_hash FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await)
    .expect("read hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    // Salted: the same password for another user hashes differently.
    let bob = create(&store, "bob", Role::Viewer).await;
    let (other,): (String,) = tillwire_platform::read!(&store, db => sqlx::query_as(
        "SELECT password_hash FROM users WHERE id = $1",
    )
    .bind(bob)
    .fetch_one(db)
    .await)
    .expect("read hash");
    assert_ne!(hash, other);

    let users = Users(&store);
    assert_eq!(
        users.verify("alice", PASSWORD).await.expect("verify"),
        Some(id)
    );
    assert_eq!(
        users
            .verify("alice", "correct horse batterY")
            .await
            .expect("verify"),
        None
    );
    assert_eq!(users.verify("alice", "").await.expect("verify"), None);
    assert_eq!(users.verify("ALICE", PASSWORD).await.expect("verify"), None);
    assert_eq!(
        users.verify("nobody", PASSWORD).await.expect("verify"),
        None
    );

    // Taken names and weak passwords are refused.
    let again = users
        .create(
            &Username::parse("alice").expect("username"),
            &NewPassword::parse("another password").expect("password"),
            Role::Admin,
        )
        .await;
    assert!(matches!(again, Err(AuthError::UsernameTaken)), "{again:?}");
    assert!(NewPassword::parse("short").is_err());
    assert!(Username::parse("bad name").is_err());
    assert!(Username::parse("").is_err());

    // A deactivated user cannot sign in; a password change takes effect.
    assert!(
        users
            .update(id, Role::Operator, false, None)
            .await
            .expect("update")
    );
    assert_eq!(users.verify("alice", PASSWORD).await.expect("verify"), None);
    let fresh = NewPassword::parse("a brand new password").expect("password");
    assert!(
        users
            .update(id, Role::Operator, true, Some(&fresh))
            .await
            .expect("update")
    );
    assert_eq!(users.verify("alice", PASSWORD).await.expect("verify"), None);
    assert_eq!(
        users
            .verify("alice", "a brand new password")
            .await
            .expect("verify"),
        Some(id)
    );
});

/// The idle period sessions are started with here.
const IDLE: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

tillwire_testkit::both_backends!(sessions_are_stored_hashed, |db| async move {
    let store = open(&db).await;
    let id = create(&store, "alice", Role::Operator).await;
    let sessions = Sessions(&store);
    let token = sessions.start(id, IDLE).await.expect("start");
    assert!(token.len() >= 32, "{token}");
    let rows = sessions_rows(&store).await;
    assert_eq!(rows.len(), 1);
    let (token_hash, user_id, csrf, created_ms, expires_ms) = &rows[0];
    assert_eq!(*user_id, id);
    assert_eq!(
        *token_hash,
        sha256_hex(&token),
        "only the token's SHA-256 is kept"
    );
    for column in [token_hash, csrf] {
        assert!(
            !column.contains(&token),
            "the cookie token is stored in the clear"
        );
    }
    assert!(expires_ms > created_ms);

    let user = sessions
        .find(&token)
        .await
        .expect("find")
        .expect("a session");
    assert_eq!(
        (user.id, user.username.as_str(), user.role),
        (id, "alice", Role::Operator)
    );
    assert_eq!(&user.csrf, csrf);
    assert!(
        sessions.find(token_hash).await.expect("find").is_none(),
        "the stored hash is not a token"
    );
    assert!(sessions.find("").await.expect("find").is_none());
    assert!(
        sessions
            .find(&format!("{token}x"))
            .await
            .expect("find")
            .is_none()
    );

    // Each session has its own token and CSRF token.
    let second = sessions.start(id, IDLE).await.expect("start");
    assert_ne!(second, token);
    let other = sessions
        .find(&second)
        .await
        .expect("find")
        .expect("a session");
    assert_ne!(other.csrf, user.csrf);
});

tillwire_testkit::both_backends!(sessions_expire_and_end, |db| async move {
    let store = open(&db).await;
    let id = create(&store, "alice", Role::Admin).await;
    let sessions = Sessions(&store);

    let expiring = sessions.start(id, IDLE).await.expect("start");
    let kept = sessions.start(id, IDLE).await.expect("start");
    assert!(sessions.find(&expiring).await.expect("find").is_some());
    // Let the first one run out.
    tillwire_platform::write!(&store, db => sqlx::query("UPDATE sessions SET expires_ms = $1 WHERE token_hash = $2")
        .bind(now_ms() - 1)
        .bind(sha256_hex(&expiring))
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
    .expect("expire");
    assert!(
        sessions.find(&expiring).await.expect("find").is_none(),
        "an expired session is gone"
    );
    assert!(sessions.find(&kept).await.expect("find").is_some());

    // A session in use slides: one a minute from its idle end is renewed for a whole idle period on use...
    let set = |column: &'static str, value: i64, token: &str| {
        let sql = if column == "expires_ms" {
            "UPDATE sessions SET expires_ms = $1 WHERE token_hash = $2"
        } else {
            "UPDATE sessions SET created_ms = $1 WHERE token_hash = $2"
        };
        let hash = sha256_hex(token);
        let store = &store;
        async move {
            tillwire_platform::write!(store, db => sqlx::query(sql)
                .bind(value)
                .bind(hash)
                .execute(db)
                .await
                .map(|r| r.rows_affected()))
            .expect("update the session")
        }
    };
    set("expires_ms", now_ms() + 60_000, &kept).await;
    assert!(sessions.find(&kept).await.expect("find").is_some());
    let renewed = sessions_rows(&store)
        .await
        .into_iter()
        .find(|row| row.0 == sha256_hex(&kept))
        .expect("the kept session")
        .4;
    let idle_ms = IDLE.as_millis() as i64;
    assert!(
        renewed > now_ms() + idle_ms - 60_000,
        "not renewed: ends {} ms from now",
        renewed - now_ms()
    );
    // ...but none outlives its absolute lifetime, however busy.
    let lifetime_ms = tillwire_platform::auth::SESSION_LIFETIME.as_millis() as i64;
    set("created_ms", now_ms() - lifetime_ms - 1, &kept).await;
    assert!(sessions.find(&kept).await.expect("find").is_none());
    set("created_ms", now_ms(), &kept).await;

    // Logout ends the session (and sweeps expired ones).
    let third = sessions.start(id, IDLE).await.expect("start");
    sessions.end(&kept).await.expect("end");
    assert!(sessions.find(&kept).await.expect("find").is_none());
    assert!(sessions.find(&third).await.expect("find").is_some());
    let remaining = sessions_rows(&store).await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].0, sha256_hex(&third));

    // Deactivating a user ends every session of theirs at once.
    let users = Users(&store);
    assert!(
        users
            .update(id, Role::Admin, false, None)
            .await
            .expect("update")
    );
    assert!(sessions.find(&third).await.expect("find").is_none());
    assert!(sessions_rows(&store).await.is_empty());
    // And a session of an inactive user would not count anyway.
    assert!(
        users
            .update(id, Role::Admin, true, None)
            .await
            .expect("update")
    );
    let fourth = sessions.start(id, IDLE).await.expect("start");
    exec(&store, "UPDATE users SET active = FALSE WHERE id = $1", id).await;
    assert!(sessions.find(&fourth).await.expect("find").is_none());
});

/// The login form and a page that needs a session, served in process.
async fn serve(store: Store) -> (String, tokio::task::JoinHandle<()>) {
    let platform = Platform::new(store, Settings::for_database("sqlite://unused"));
    let whoami = Router::new()
        .route(
            "/whoami",
            get(|user: CurrentUser| async move { user.username }),
        )
        .with_state(platform.clone());
    let router = tillwire_platform::web::shell_router(platform).merge(whoami);
    tillwire_testkit::serve_router(router).await
}

fn session_token(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|cookie| cookie.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
}

tillwire_testkit::both_backends!(login_and_logout_over_http, |db| async move {
    let store = open(&db).await;
    let id = create(&store, "alice", Role::Viewer).await;
    let (base, server) = serve(store.clone()).await;
    let client = tillwire_testkit::http_client();

    // A wrong password: the form again, no cookie.
    let response = client
        .post(format!("{base}/users/login/"))
        .form(&[
            ("username", "alice"),
            ("password", "wrong password"),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("POST login");
    assert_eq!(response.status(), 401);
    assert_eq!(session_token(&response), None);
    assert!(sessions_rows(&store).await.is_empty());

    // The right one: a redirect and an HttpOnly cookie whose token the database does not hold.
    let response = client
        .post(format!("{base}/users/login/"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("next", "/whoami"),
        ])
        .send()
        .await
        .expect("POST login");
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/whoami");
    let cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let token = session_token(&response).expect("a session cookie");
    let rows = sessions_rows(&store).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, id);
    assert_eq!(rows[0].0, sha256_hex(&token));
    assert!(
        rows.iter()
            .all(|r| !r.0.contains(&token) && !r.2.contains(&token))
    );

    let response = client
        .get(format!("{base}/whoami"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "alice");

    // An open redirect is not followed.
    let response = client
        .post(format!("{base}/users/login/"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("POST login");
    assert_eq!(response.headers()["location"], "/");
    let second = session_token(&response).expect("a session cookie");

    // Logout ends the session on the server, not only in the browser.
    let response = client
        .post(format!("{base}/users/logout/"))
        .send()
        .await
        .expect("POST logout");
    assert!(response.status().is_redirection());
    assert_eq!(
        session_token(&response).as_deref(),
        Some(""),
        "the cookie is cleared"
    );
    let replay = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = replay
        .get(format!("{base}/whoami"))
        .header("cookie", format!("{SESSION_COOKIE}={second}"))
        .send()
        .await
        .expect("GET");
    assert_ne!(response.status(), 200, "a logged-out token no longer works");
    // The first login's session is independent and still valid until it ends.
    let response = replay
        .get(format!("{base}/whoami"))
        .header("cookie", format!("{SESSION_COOKIE}={token}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    server.abort();
});

#[test]
fn login_limiter_throttles_an_account_per_address_and_an_address_in_all() {
    let limiter = LoginLimiter::default();
    let client: IpAddr = "192.0.2.10".parse().expect("address");
    let neighbour: IpAddr = "192.0.2.11".parse().expect("address");
    for attempt in 1..=10 {
        assert!(
            limiter.check("anna", client).is_ok(),
            "attempt {attempt} is within the burst"
        );
    }
    for _ in 0..5 {
        let wait = limiter.check("anna", client).expect_err("throttled");
        assert!((1..=6).contains(&wait), "wait {wait} s");
    }
    // The name is compared as a person would type it.
    assert!(limiter.check(" ANNA ", client).is_err());
    // The same account from another address is not affected, and neither is IPv6 loopback.
    assert!(limiter.check("anna", neighbour).is_ok());
    assert!(
        limiter
            .check("anna", "::1".parse().expect("address"))
            .is_ok()
    );
    // Another account from the same address is, until the address's own allowance (30 in all) is spent.
    for attempt in 17..=30 {
        assert!(
            limiter.check(&format!("staff{attempt}"), client).is_ok(),
            "attempt {attempt} from the address"
        );
    }
    assert!(limiter.check("boris", client).is_err());
    // Clones share the state (the platform hands one limiter to every request).
    let shared = limiter.clone();
    assert!(shared.check("anna", client).is_err());
    // A fresh limiter (another process) starts with a full burst.
    assert!(LoginLimiter::default().check("anna", client).is_ok());
}
