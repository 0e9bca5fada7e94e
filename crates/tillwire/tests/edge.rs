//! The HTTP edge of the real binary under the abuse an attacker on loopback can do: a thousand silent
//! connections, more connections than the cap, a request body that stalls, and `X-Forwarded-For` from a client
//! that is not a trusted proxy. Open screens' event streams outlive every timeout.

mod common;

use std::time::Duration;

use common::DEVICE_KEY;
use futures::StreamExt;
use tillwire_testkit::reqwest::{StatusCode, header};
use tillwire_testkit::{Backend, TestDatabase, http_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds a broken server only: a working one answers at once.
const ANSWER: Duration = Duration::from_secs(10);

async fn sqlite() -> TestDatabase {
    TestDatabase::new(Backend::Sqlite).await
}

/// Connects and sends nothing.
async fn silent(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect")
}

/// What the server says on `stream` until it closes it (empty when it closes without a word); `None` when it
/// neither says anything nor closes within `limit`.
async fn heard(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut said = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => said.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&said).into_owned())
}

/// Opens `cap` silent connections the server has accepted. A connection the harness made before (its health
/// check) may still hold a place for a moment, so the one it displaced is told to come back; such a refused
/// connection is replaced until all `cap` are held.
async fn hold_every_place(port: u16, cap: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _round in 0..20 {
        while held.len() < cap {
            held.push(silent(port).await);
        }
        // Give the server a moment to accept, or refuse, each of them.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut accepted = Vec::new();
        for mut stream in held {
            // An accepted silent connection hears nothing until its header timeout; a refused one is answered at
            // once.
            if heard(&mut stream, Duration::from_millis(50))
                .await
                .is_none()
            {
                accepted.push(stream);
            }
        }
        held = accepted;
        if held.len() == cap {
            return held;
        }
    }
    panic!("the server never accepted {cap} connections at once");
}

async fn healthy(base: &str) -> StatusCode {
    let client = http_client();
    let response = tokio::time::timeout(ANSWER, client.get(format!("{base}/healthz")).send())
        .await
        .expect("/healthz answered in time")
        .expect("/healthz");
    response.status()
}

#[tokio::test]
async fn a_thousand_silent_connections_neither_block_others_nor_stay() {
    // The test holds 1,100 sockets too.
    let (_, hard) = rlimit::Resource::NOFILE
        .get()
        .expect("the open-files limit");
    rlimit::increase_nofile_limit(hard).expect("raise the open-files limit");
    let db = sqlite().await;
    let data = common::data_dir();
    let server = common::serve(
        &db,
        data.path(),
        &[("TILLWIRE_HTTP_HEADER_TIMEOUT_SECS", "3")],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..1100 {
        held.push(silent(server.port()).await);
    }
    assert_eq!(healthy(&server.base_url()).await, StatusCode::OK);
    // A connection that sends no request within the header timeout is closed without a word.
    let closed = heard(&mut held[0], ANSWER).await;
    assert_eq!(
        closed.as_deref(),
        Some(""),
        "a silent connection stayed open"
    );
    // So is one that stalls in the middle of its headers.
    let mut slow = silent(server.port()).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let answer = heard(&mut slow, ANSWER).await.expect("closed in time");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_are_told_to_come_back() {
    let db = sqlite().await;
    let data = common::data_dir();
    let server = common::serve(
        &db,
        data.path(),
        &[
            ("TILLWIRE_HTTP_MAX_CONNECTIONS", "20"),
            // Long enough that none of the twenty times out before the one over the cap arrives, even on a busy
            // machine.
            ("TILLWIRE_HTTP_HEADER_TIMEOUT_SECS", "5"),
        ],
    )
    .await;
    let held = hold_every_place(server.port(), 20).await;
    let mut over = silent(server.port()).await;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = heard(&mut over, ANSWER).await.expect("answered in time");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("retry-after: 1"),
        "{answer}"
    );
    // The silent ones time out and free their places.
    for mut stream in held {
        assert_eq!(heard(&mut stream, ANSWER).await.as_deref(), Some(""));
    }
    assert_eq!(healthy(&server.base_url()).await, StatusCode::OK);
}

#[tokio::test]
async fn a_stalled_body_times_out_while_event_streams_stay() {
    let db = sqlite().await;
    let data = common::data_dir();
    let server = common::serve(
        &db,
        data.path(),
        &[
            ("API_KEY", DEVICE_KEY),
            ("TILLWIRE_HTTP_HEADER_TIMEOUT_SECS", "1"),
            ("TILLWIRE_HTTP_BODY_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let base = server.base_url();
    let client = http_client();
    let stream = client
        .get(format!("{base}/dashboard/events?unit=1"))
        .send()
        .await
        .expect("open the board's stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let mut events = stream.bytes_stream();

    // A body announced as 100 bytes that brings 2 is answered with an error, not waited for forever.
    let mut stalled = silent(server.port()).await;
    stalled
        .write_all(
            b"POST /users/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\nus",
        )
        .await
        .expect("write");
    let answer = heard(&mut stalled, ANSWER).await.expect("answered in time");
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "a stalled body got: {answer:?}"
    );

    // The board's stream, older than both timeouts, still delivers a new order.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let number = common::import(&client, &base, DEVICE_KEY, 1, &common::today()).await;
    let mut said = String::new();
    let delivered = tokio::time::timeout(ANSWER, async {
        while let Some(Ok(chunk)) = events.next().await {
            said.push_str(&String::from_utf8_lossy(&chunk));
            if said.contains(&format!("\"number\":{number}")) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        delivered.ok(),
        Some(true),
        "the stream did not deliver order {number}: {said}"
    );
}

/// Wrong passwords for `admin` sent as from `forwarded` until throttled; how many were answered 401 first.
async fn guess_until_throttled(base: &str, forwarded: &str) -> usize {
    let client = http_client();
    for attempt in 0..40 {
        let reply = client
            .post(format!("{base}/users/login/"))
            .header("x-forwarded-for", forwarded)
            .form(&[("username", "admin"), ("password", "wrong-password")])
            .send()
            .await
            .expect("POST login");
        match reply.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => return attempt,
            other => panic!("unexpected {other}"),
        }
    }
    panic!("40 wrong passwords were never throttled");
}

async fn sign_in_from(base: &str, forwarded: &str, password: &str) -> StatusCode {
    http_client()
        .post(format!("{base}/users/login/"))
        .header("x-forwarded-for", forwarded)
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .expect("POST login")
        .status()
}

#[tokio::test]
async fn guessing_from_one_address_never_locks_out_another() {
    let db = sqlite().await;
    let data = common::data_dir();
    // Behind a trusted proxy (loopback here), the address it forwards is the client.
    let server = common::serve(
        &db,
        data.path(),
        &[("TILLWIRE_TRUSTED_PROXIES", "127.0.0.1, ::1")],
    )
    .await;
    let base = server.base_url();
    let password = common::admin_password(&server);
    let guesses = guess_until_throttled(&base, "203.0.113.5").await;
    assert!(guesses >= 5, "throttled after {guesses}");
    assert_eq!(
        sign_in_from(&base, "203.0.113.5", &password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address may not try the right password either"
    );
    assert_eq!(
        sign_in_from(&base, "203.0.113.6", &password).await,
        StatusCode::SEE_OTHER,
        "the admin, elsewhere, is let in"
    );
    drop(server);

    // Without trusted proxies the header is the client's own claim, and ignored: both "addresses" are one.
    let db = sqlite().await;
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[]).await;
    let base = server.base_url();
    let password = common::admin_password(&server);
    guess_until_throttled(&base, "203.0.113.5").await;
    let reply = http_client()
        .post(format!("{base}/users/login/"))
        .header("x-forwarded-for", "203.0.113.6")
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .expect("POST login");
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers().get(header::RETRY_AFTER).is_some());
}
