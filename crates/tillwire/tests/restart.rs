//! A clean restart with the real binary: SIGTERM while 50 board and kitchen screens are open and a ticket is being
//! sent to a printer that does not answer. Every stream is told to reconnect and ends, the process exits 0 within
//! its grace period, the unfinished ticket's lease ends at once, and after the restart it prints, once, while the
//! tickets printed before are not printed again.

mod common;

use std::time::Duration;

use common::{DEVICE_KEY, eventually};
use futures::StreamExt;
use tillwire_printing::sim::{EscPosSink, decode};
use tillwire_testkit::reqwest::{self, StatusCode};
use tillwire_testkit::{http_client, login};

const GRACE_SECS: &str = "3";
/// Bounds a broken server only: a working one does all of this in seconds.
const LIMIT: Duration = Duration::from_secs(60);
const STREAMS: usize = 50;

/// A port that accepts TCP handshakes no more: its listener never accepts and its backlog is full, so a connect
/// hangs (the kernel drops the SYNs) and a ticket sent there stays in flight.
async fn unanswering_port() -> (tokio::net::TcpListener, Vec<tokio::net::TcpStream>, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = socket.local_addr().expect("address").port();
    let listener = socket.listen(1).expect("listen");
    let mut held = Vec::new();
    loop {
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        match tokio::time::timeout(Duration::from_millis(300), connect).await {
            Ok(Ok(stream)) => held.push(stream),
            _ => break,
        }
        assert!(held.len() < 64, "the backlog never filled");
    }
    (listener, held, port)
}

/// Opens an event stream and waits for its first event (the snapshot); the response is kept open.
async fn open_stream(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let response = client.get(url).send().await.expect("open a stream");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response
}

/// Reads a stream to its end and returns what it said.
async fn read_to_end(response: reqwest::Response) -> String {
    let mut text = String::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Err(_) => break,
        }
    }
    text
}

tillwire_testkit::both_backends!(
    sigterm_with_open_screens_and_a_ticket_in_flight,
    |db| async move {
        let data = common::data_dir();
        let envs = [
            ("API_KEY", DEVICE_KEY),
            ("TILLWIRE_SHUTDOWN_GRACE_SECS", GRACE_SECS),
            // The attempt at the silent printer outlasts the grace period.
            ("TILLWIRE_PRINT_TIMEOUT_SECS", "30"),
        ];
        let mut server = common::serve(&db, data.path(), &envs).await;
        let base = server.base_url();
        let day = common::today();
        let admin = http_client();
        let user = common::admin_username(&server.output());
        let csrf = login(&admin, &base, &user, &common::admin_password(&server)).await;
        let client = http_client();

        // Two tickets print and are done.
        let sink = EscPosSink::start(tillwire_testkit::free_port())
            .await
            .expect("a printer");
        let saved =
            common::save_printer(&admin, &base, &csrf, "Принтер", &sink.printer_address()).await;
        assert_eq!(saved, StatusCode::SEE_OTHER);
        let mut numbers = Vec::new();
        for check in 1..=2 {
            numbers.push(common::import(&client, &base, DEVICE_KEY, check, &day).await);
        }
        eventually("two tickets print", LIMIT, || async {
            let printed = sink.received().len();
            (printed == 2)
                .then_some(())
                .ok_or(format!("{printed} printed"))
        })
        .await;

        // The third goes to a printer that does not answer: its job is in flight.
        let (silent, held, silent_port) = unanswering_port().await;
        let saved = common::save_printer(
            &admin,
            &base,
            &csrf,
            "Принтер",
            &format!("tcp://127.0.0.1:{silent_port}"),
        )
        .await;
        assert_eq!(saved, StatusCode::SEE_OTHER);
        numbers.push(common::import(&client, &base, DEVICE_KEY, 3, &day).await);
        eventually("the third ticket is being sent", LIMIT, || async {
        let rows = common::query_pairs(
            &db,
            "SELECT COUNT(*), COALESCE(MAX(attempts), 0) FROM jobs WHERE queue = 'print.ticket' AND state = 'running'",
        )
        .await;
        (rows == [(1, 1)]).then_some(()).ok_or(format!("{rows:?}"))
    })
    .await;

        // 50 screens: boards (public) and kitchen screens (signed in).
        let mut streams = Vec::new();
        for index in 0..STREAMS {
            let stream = if index % 2 == 0 {
                open_stream(&client, &format!("{base}/dashboard/events?unit=1")).await
            } else {
                open_stream(&admin, &format!("{base}/screens/events?unit=1")).await
            };
            streams.push(tokio::spawn(read_to_end(stream)));
        }

        // SIGTERM: a clean exit, within the grace period (the helper SIGKILLs after 10 s, which would fail this).
        let status = server.terminate();
        assert!(
            status.success(),
            "exit status {status:?}\n{}",
            server.output()
        );
        for stream in streams {
            let said = tokio::time::timeout(LIMIT, stream)
                .await
                .expect("every stream ended")
                .expect("reader");
            assert!(
                said.contains("event: reconnect") && said.contains("retry: 1000"),
                "each screen was told to reconnect: {said}"
            );
        }
        // The ticket in flight kept its attempt and its lease ended at the stop, so nothing waits out a minute.
        let lease = common::query_pairs(
        &db,
        "SELECT attempts, CAST(CASE WHEN locked_until_ms < (SELECT MAX(updated_ms) + 1 FROM jobs) THEN 1 ELSE 0 END AS BIGINT)
         FROM jobs WHERE queue = 'print.ticket' AND state = 'running'",
    )
    .await;
        assert_eq!(lease, [(1, 1)], "one running ticket, its lease over");

        // Restarted with the printer back: the third ticket prints, once; the first two are not printed again. (The
        // silent port now refuses at once, so an attempt made before the address is fixed fails fast.)
        drop((silent, held));
        let server = common::serve_on_port(&db, data.path(), server.port(), &envs).await;
        let saved =
            common::save_printer(&admin, &base, &csrf, "Принтер", &sink.printer_address()).await;
        assert_eq!(saved, StatusCode::SEE_OTHER);
        let woken = admin
            .post(format!("{base}/admin/printers/1/wake"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .expect("POST /admin/printers/1/wake");
        assert_eq!(woken.status(), StatusCode::SEE_OTHER);
        eventually(
            "the third ticket prints after the restart",
            LIMIT,
            || async {
                let printed = sink.received().len();
                (printed >= 3)
                    .then_some(())
                    .ok_or(format!("{printed} printed"))
            },
        )
        .await;
        // A moment for a duplicate to show up, were there one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let printed_numbers: Vec<String> = sink
            .received()
            .iter()
            .flat_map(|job| decode(&job.bytes).expect("ESC/POS").numbers())
            .collect();
        let expected: Vec<String> = numbers.iter().map(|n| format!("№ {n}")).collect();
        assert_eq!(printed_numbers, expected, "each ticket once, in order");
        drop(server);
    }
);
