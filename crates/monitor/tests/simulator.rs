//! The register simulator over real HTTP on loopback, read with the monitor's parser: every body format gives the
//! same instants; the 200/204 table of spec A.1 holds through a receipt; faults look as the spec says they do to a
//! client; and the rate checker names a register polled twice within a second.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tillwire_monitor::parse::{self, Answer};
use tillwire_monitor::sim::{BODY_FORMATS, Fault, Simulator};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Yekaterinburg;

async fn start(sim: &Simulator) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let router = sim.router();
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    base
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client")
}

/// One status request, as the monitor reads it; `Err` for a transport failure (refused, cut, timed out).
async fn ask(base: &str, register: u32, endpoint: &str) -> Result<Answer, String> {
    let response = client()
        .get(format!("{base}/r/{register}/api/v1/status/{endpoint}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(Answer::from_response(status, &body))
}

fn value(answer: Answer) -> String {
    match answer {
        Answer::Value(value) => value,
        other => panic!("expected a 200 with a value, got {other:?}"),
    }
}

#[tokio::test]
async fn every_body_format_reads_as_the_same_instant() {
    let sim = Simulator::new(BODY_FORMATS.len() as u32, ZONE);
    let base = start(&sim).await;
    let closed = DateTime::parse_from_rfc3339("2024-05-01T07:30:15Z")
        .expect("time")
        .to_utc();
    for (index, format) in BODY_FORMATS.iter().enumerate() {
        let n = index as u32 + 1;
        sim.set_format(n, *format);
        sim.update(n, |state, _| {
            state.last_close = closed;
            state.ofd_pending = 7;
            state.user_id = Some("0042".into());
        });
        let idle_since = value(ask(&base, n, "downtime").await.expect("answer"));
        assert_eq!(
            parse::time(&idle_since, ZONE),
            Some(closed),
            "{format:?}: {idle_since:?}"
        );
        let ofd = value(ask(&base, n, "ofd").await.expect("answer"));
        assert_eq!(parse::count(&ofd), Some(7), "{format:?}: {ofd:?}");
        let user = value(ask(&base, n, "user_role_id").await.expect("answer"));
        assert_eq!(parse::id(&user).as_deref(), Some("0042"), "{format:?}");
    }
}

#[tokio::test]
async fn exactly_one_of_busy_and_idle_answers_200_through_a_receipt() {
    let sim = Simulator::new(1, ZONE);
    let base = start(&sim).await;
    let idle = [
        ask(&base, 1, "downtime").await.expect("answer"),
        ask(&base, 1, "last_receipt_time").await.expect("answer"),
        ask(&base, 1, "weight").await.expect("answer"),
    ];
    assert!(matches!(idle[0], Answer::Value(_)));
    assert_eq!(idle[1], Answer::NoContent);
    assert_eq!(parse::weight(&value(idle[2].clone())), Some(0.0));

    let opened: DateTime<Utc> = sim.now();
    sim.update(1, |state, now| state.receipt_activity = Some(now));
    sim.advance(Duration::from_secs(120));
    let busy = ask(&base, 1, "last_receipt_time").await.expect("answer");
    let activity = parse::time(&value(busy), ZONE).expect("a time");
    assert!(
        (activity - opened).abs() < TimeDelta::seconds(2),
        "{activity} vs {opened}"
    );
    assert_eq!(
        ask(&base, 1, "downtime").await.expect("answer"),
        Answer::NoContent
    );
    assert_eq!(
        ask(&base, 1, "weight").await.expect("answer"),
        Answer::NoContent
    );

    sim.update(1, |state, _| {
        state.paper = false;
        state.vision = false;
    });
    assert_eq!(
        ask(&base, 1, "paper").await.expect("answer"),
        Answer::NoContent
    );
    assert_eq!(
        ask(&base, 1, "vision").await.expect("answer"),
        Answer::NoContent
    );
    assert_eq!(
        ask(&base, 1, "user_role_id").await.expect("answer"),
        Answer::NoContent
    );
}

#[tokio::test]
async fn faults_look_to_a_client_as_the_spec_says() {
    let sim = Simulator::new(4, ZONE);
    let base = start(&sim).await;
    sim.set_fault(1, Fault::ServerError);
    sim.set_fault(2, Fault::Hang);
    sim.set_fault(3, Fault::Drop);
    sim.set_fault(4, Fault::Slow(Duration::from_millis(200)));
    assert_eq!(ask(&base, 1, "downtime").await, Ok(Answer::Unknown(500)));
    assert!(ask(&base, 2, "downtime").await.is_err(), "a hang times out");
    assert!(ask(&base, 3, "downtime").await.is_err(), "a cut connection");
    assert!(matches!(
        ask(&base, 4, "downtime").await,
        Ok(Answer::Value(_))
    ));
    assert!(
        ask(&base, 9, "downtime")
            .await
            .is_ok_and(|a| a == Answer::Unknown(404))
    );

    // Flapping: up for a period of the virtual clock, down for the next.
    sim.set_fault(4, Fault::Flapping(Duration::from_secs(60)));
    let first = ask(&base, 4, "downtime").await.is_ok();
    sim.advance(Duration::from_secs(60));
    let second = ask(&base, 4, "downtime").await.is_ok();
    sim.advance(Duration::from_secs(60));
    let third = ask(&base, 4, "downtime").await.is_ok();
    assert_ne!(first, second, "flapping alternates");
    assert_eq!(first, third);
}

#[tokio::test]
async fn the_rate_checker_names_a_register_polled_twice_within_a_second() {
    let sim = Simulator::new(2, ZONE);
    let base = start(&sim).await;
    ask(&base, 1, "downtime").await.expect("answer");
    ask(&base, 1, "ofd").await.expect("answer");
    ask(&base, 2, "downtime").await.expect("answer");
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    ask(&base, 2, "paper").await.expect("answer");
    let violations = sim.rate_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].0, 1);
    assert!(violations[0].1 < Duration::from_millis(1000));
    assert_eq!((sim.requests(1), sim.requests(2)), (2, 2));
}
