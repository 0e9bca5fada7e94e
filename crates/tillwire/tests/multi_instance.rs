//! Two tillwire processes on one PostgreSQL database serve one board: an order imported on one
//! instance reaches the live screens of the other (PostgreSQL `LISTEN/NOTIFY`). PostgreSQL only:
//! SQLite is a single-process database.

mod common;

use std::time::{Duration, Instant};

use common::{DEVICE_KEY, LIVE_UPDATE};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use sqlx::Connection;
use tillwire_testkit::reqwest::{self, StatusCode, header};
use tillwire_testkit::{Backend, TestDatabase, http_client};

/// One Server-Sent Event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    data: String,
}

/// Reads `event:`/`data:` blocks from a `text/event-stream` body.
struct SseReader {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    /// Raw bytes: a chunk may end inside a multi-byte character.
    buffer: Vec<u8>,
}

impl SseReader {
    async fn open(client: &reqwest::Client, url: &str) -> SseReader {
        let response = client.get(url).send().await.expect("open the event stream");
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET {url}: {content_type}"
        );
        SseReader {
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` if none arrives by `deadline`.
    async fn next_before(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("the event stream ended"),
                Ok(Some(Err(error))) => panic!("reading the event stream: {error}"),
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
            }
        }
    }

    /// Parses one complete block from the buffer; comments (keep-alives) are skipped.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.windows(2).position(|pair| pair == b"\n\n")?;
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let block = String::from_utf8(block).expect("the event stream is UTF-8");
            let mut event = String::from("message");
            let mut data = Vec::new();
            for line in block.lines().map(|line| line.trim_end_matches('\r')) {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim_start().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            if !data.is_empty() {
                return Some(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
    }

    /// Waits for the first event that `wanted` accepts, failing after `limit` with what came.
    async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut wanted: impl FnMut(&SseEvent) -> bool,
    ) -> SseEvent {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            match self.next_before(deadline).await {
                Some(event) if wanted(&event) => return event,
                Some(event) => seen.push(format!("{}: {}", event.event, event.data)),
                None => panic!(
                    "{what}: not within {limit:?}; events seen:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
}

/// Waits until `count` connections of this database are listening for events, so that no
/// notification is sent before an instance's relay can receive it.
async fn wait_for_listeners(db: &TestDatabase, count: i64) {
    common::eventually(
        &format!("{count} tillwire instances listening on PostgreSQL"),
        Duration::from_secs(30),
        || async {
            let mut conn = sqlx::PgConnection::connect(db.url())
                .await
                .map_err(|e| e.to_string())?;
            let listening: Result<(i64,), _> = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND query LIKE 'LISTEN %tillwire_events%'",
            )
            .fetch_one(&mut conn)
            .await;
            let _ = conn.close().await;
            match listening.map_err(|e| e.to_string())? {
                (n,) if n >= count => Ok(()),
                (n,) => Err(format!("{n} listening")),
            }
        },
    )
    .await;
}

fn is_order(event: &SseEvent, number: i64, status: i64) -> bool {
    event.event == "order"
        && serde_json::from_str::<Value>(&event.data)
            .is_ok_and(|order| order["number"] == number && order["status_id"] == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_only_board_on_instance_b_follows_imports_on_instance_a() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let (data_a, data_b) = (common::data_dir(), common::data_dir());
    let envs = [("API_KEY", DEVICE_KEY)];
    // One after the other: the second finds the schema and seed data in place.
    let a = common::serve(&db, data_a.path(), &envs).await;
    let b = common::serve(&db, data_b.path(), &envs).await;
    assert_ne!(a.port(), b.port());
    assert!(
        !b.output().contains("First admin created"),
        "instance B created a second admin:\n{}",
        b.output()
    );
    wait_for_listeners(&db, 2).await;

    // No overall timeout on this client: the stream stays open for the whole test.
    let stream_client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client for the event stream");
    let mut board_b = SseReader::open(
        &stream_client,
        &format!("{}/dashboard/events", b.base_url()),
    )
    .await;
    let first = board_b
        .wait_for(
            "the first event on B's board",
            Duration::from_secs(30),
            |_| true,
        )
        .await;
    assert_eq!(first.event, "snapshot", "{first:?}");
    let snapshot: Value = serde_json::from_str(&first.data).expect("the snapshot is JSON");
    assert_eq!(snapshot["orders"], serde_json::json!([]), "{snapshot}");
    assert_eq!(snapshot["day"], common::today(), "{snapshot}");

    // A receipt posted to A appears on B's board…
    let client = http_client();
    let day = common::today();
    let number = common::import(&client, &a.base_url(), DEVICE_KEY, 7001, &day).await;
    let event = board_b
        .wait_for(
            &format!("order {number} on B's board after an import on A"),
            LIVE_UPDATE,
            |event| is_order(event, number, 1),
        )
        .await;
    let order: Value = serde_json::from_str(&event.data).expect("an order as JSON");
    assert_eq!(order["business_day"], day);
    // …without what customers need not see.
    assert_eq!(order["lines"], serde_json::json!([]), "{order}");

    // So does a status change made on A.
    let id = order["id"].as_i64().expect("the order id");
    common::api_set_status(&client, &a.base_url(), DEVICE_KEY, id, 2).await;
    board_b
        .wait_for(
            &format!("order {number} ready on B's board after a change on A"),
            LIVE_UPDATE,
            |event| is_order(event, number, 2),
        )
        .await;

    // And the other way round: B numbers on from A's counter, and A's board hears of it.
    let mut board_a = SseReader::open(
        &stream_client,
        &format!("{}/dashboard/events", a.base_url()),
    )
    .await;
    board_a
        .wait_for(
            "the first event on A's board",
            Duration::from_secs(30),
            |event| event.event == "snapshot",
        )
        .await;
    let next = common::import(&client, &b.base_url(), DEVICE_KEY, 7002, &day).await;
    assert_eq!(next, number + 1, "the two instances share one numbering");
    board_a
        .wait_for(
            &format!("order {next} on A's board after an import on B"),
            LIVE_UPDATE,
            |event| is_order(event, next, 1),
        )
        .await;
}
