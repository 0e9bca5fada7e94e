//! Tickets over raw TCP to a real socket on loopback, through the durable print queue, on both backends.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{PIZZA, SALAD, WOK_BUCKWHEAT, WOK_SAUCE, eventually};
use tillwire_printing::sim::{EscPosSink, PrintedLine, decode};

const LIMIT: Duration = Duration::from_secs(30);

tillwire_testkit::both_backends!(escpos_ticket_reaches_the_printer, |db| async move {
    // ELQ's −1: one copy per station plus two.
    let app = common::start(&db, |s| s.set("print.copies", -1)).await;
    let sink = EscPosSink::start(0).await.unwrap();
    app.set_printer_address(&sink.printer_address()).await;

    let order = app
        .import(1, 1, &[(PIZZA, 4.0), (WOK_SAUCE, 1.0), (SALAD, 0.5 + 0.5)])
        .await;
    let job = eventually("the ticket arrives", LIMIT, || async {
        sink.received().pop()
    })
    .await;
    let printed = decode(&job.bytes).expect("a well-formed ESC/POS stream");

    assert_eq!(
        printed.code_page,
        Some(tillwire_printing::settings::CodePage::Cp866)
    );
    assert!(
        job.bytes.starts_with(&[0x1b, b'@', 0x1b, b't', 17]),
        "init, then ESC t 17 (PC866)"
    );
    // "Пицца" in CP866, byte for byte.
    assert!(
        job.bytes
            .windows(5)
            .any(|w| w == [0x8f, 0xa8, 0xe6, 0xe6, 0xa0])
    );
    assert_eq!(printed.slips.len(), 5, "3 stations + 2 copies, each cut");
    assert!(printed.uncut.is_empty(), "the last copy is cut too");
    let expected_number = format!("№ {}", order.number);
    assert_eq!(printed.numbers(), vec![expected_number; 5]);
    for slip in &printed.slips {
        let lines: Vec<&str> = slip.iter().map(|l| l.text.trim()).collect();
        assert_eq!(lines[0], "Электронная очередь");
        assert!(lines.contains(&"Пицца 4 сыра   4"), "{lines:?}");
        assert!(lines.contains(&"Вок остр. пр. соус   1"), "{lines:?}");
        assert!(
            lines.contains(&"Салат оливье   1"),
            "merged 0.5 + 0.5 prints as 1: {lines:?}"
        );
        assert!(lines.contains(&"Приятного аппетита :)"));
        assert_eq!(
            lines.last().unwrap().trim_start_matches('-'),
            "",
            "a rule closes the ticket"
        );
    }
    let done = eventually("the job is done", LIMIT, || async {
        (app.count("SELECT COUNT(*) FROM jobs WHERE state = 'done'")
            .await
            == 1)
            .then_some(())
    });
    done.await;
    assert_eq!(sink.received().len(), 1, "printed once");
});

tillwire_testkit::both_backends!(no_printer_prints_nothing, |db| async move {
    let app = common::start(&db, |_| {}).await;
    // The seeded printer has no address, and register 2 has no printer at all.
    app.exec("UPDATE cash_registers SET printer_id = NULL WHERE number = 2")
        .await;
    app.import(1, 1, &[(PIZZA, 1.0)]).await;
    app.import(2, 1, &[(PIZZA, 1.0)]).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM jobs").await, 0);
    let conflict = app
        .kitchen
        .reprint(1)
        .await
        .expect_err("nothing to reprint on");
    assert_eq!(tillwire_platform::HttpError::from(conflict).status(), 409);
});

tillwire_testkit::both_backends!(tickets_wait_for_a_printer_that_is_down, |db| async move {
    let app = common::start(&db, |_| {}).await;
    // A port nobody listens on yet.
    let port = tillwire_testkit::free_port();
    let printer = app
        .set_printer_address(&format!("tcp://127.0.0.1:{port}"))
        .await;
    let mut events = app.platform.events.subscribe();
    let mut orders = Vec::new();
    for check in 1..=3 {
        orders.push(
            app.import(1, check, &[(PIZZA, f64::from(check as u8))])
                .await,
        );
    }

    // The first attempt fails: an event, the order marked, the printer's error recorded, nothing lost.
    let failed = tokio::time::timeout(LIMIT, async {
        loop {
            let event = events.recv().await.expect("the event bus is open");
            if event.topic == tillwire_printing::PRINTER_FAILED {
                break event;
            }
        }
    })
    .await
    .expect("a printer.failed event");
    assert_eq!(failed.payload["printer_id"], printer);
    assert_eq!(failed.payload["order_id"], orders[0].id);
    assert_eq!(failed.unit_id, app.unit.0);
    assert!(
        app.kitchen
            .order_view(orders[0].id)
            .await
            .unwrap()
            .print_failed
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running')")
            .await,
        3
    );

    // The printer comes back; the backoff brings the jobs round again, in order.
    let sink = EscPosSink::start(port).await.unwrap();
    let received = eventually("all three tickets print", LIMIT, || async {
        let received = sink.received();
        (received.len() >= 3).then_some(received)
    })
    .await;
    let numbers: Vec<String> = received
        .iter()
        .flat_map(|job| decode(&job.bytes).unwrap().numbers())
        .collect();
    let expected: Vec<String> = orders.iter().map(|o| format!("№ {}", o.number)).collect();
    assert_eq!(numbers, expected, "each ticket once, oldest first");
    eventually("the failure mark clears", LIMIT, || async {
        (!app
            .kitchen
            .order_view(orders[0].id)
            .await
            .unwrap()
            .print_failed)
            .then_some(())
    })
    .await;

    // A reprint is one more ticket of the same order.
    app.kitchen.reprint(orders[1].id).await.expect("reprint");
    let again = eventually("the reprint", LIMIT, || async {
        sink.received().get(3).cloned()
    })
    .await;
    assert_eq!(
        decode(&again.bytes).unwrap().numbers(),
        vec![format!("№ {}", orders[1].number)]
    );

    // For whoever routes alerts, durably: the printer started failing once (however many attempts failed), and
    // recovered once.
    let batch = app
        .platform
        .outbox
        .next("test", 100)
        .await
        .expect("read events")
        .expect("held");
    let kinds: Vec<&str> = batch.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            tillwire_printing::PRINTER_FAILING,
            tillwire_printing::PRINTER_RECOVERED
        ]
    );
    let failing = batch.events[0].payload();
    assert_eq!(failing["printer_id"], printer);
    assert!(
        failing["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failing}"
    );
    assert_eq!(batch.events[0].unit_id, Some(app.unit.0));
});

tillwire_testkit::both_backends!(a_ticket_given_up_is_a_durable_event, |db| async move {
    let app = common::start(&db, |s| s.set("print.max_attempts", 1)).await;
    let port = tillwire_testkit::free_port();
    app.set_printer_address(&format!("tcp://127.0.0.1:{port}"))
        .await;
    let order = app.import(1, 1, &[(PIZZA, 1.0)]).await;
    let given_up = eventually("the ticket is given up", LIMIT, || async {
        let batch = app.platform.outbox.next("test", 100).await.ok()??;
        batch
            .events
            .into_iter()
            .find(|e| e.kind == tillwire_printing::TICKET_GIVEN_UP)
    })
    .await;
    assert_eq!(given_up.payload()["order_id"], order.id);
    // The event is recorded during the last attempt; the runner records the job's outcome just after.
    eventually("its job is dead", LIMIT, || async {
        (app.count("SELECT COUNT(*) FROM jobs WHERE state = 'dead'")
            .await
            == 1)
            .then_some(())
    })
    .await;
});

tillwire_testkit::both_backends!(qr_code_and_station_slips, |db| async move {
    let app = common::start(&db, |s| {
        s.set("print.qr_code", true);
        s.set("print.station_slips", true);
    })
    .await;
    let sink = EscPosSink::start(0).await.unwrap();
    app.set_printer_address(&sink.printer_address()).await;

    // Two wares of the wok station, one each of the pizza and salad stations.
    let order = app
        .import(
            1,
            1,
            &[
                (PIZZA, 2.0),
                (WOK_SAUCE, 1.0),
                (WOK_BUCKWHEAT, 3.0),
                (SALAD, 1.0),
            ],
        )
        .await;
    let job = eventually("the ticket arrives", LIMIT, || async {
        sink.received().pop()
    })
    .await;
    let printed = decode(&job.bytes).expect("a well-formed ESC/POS stream");
    let number = format!("№ {}", order.number);

    assert!(printed.uncut.is_empty(), "every slip is cut");
    assert_eq!(
        printed.slips.len(),
        4,
        "one ticket, then one slip per station"
    );
    assert_eq!(printed.numbers(), vec![number.clone(); 4]);
    for slip in &printed.slips {
        let big: Vec<&PrintedLine> = slip.iter().filter(|l| l.big).collect();
        assert_eq!(big.len(), 1, "{slip:?}");
        assert!(big[0].bold, "the number is bold as well as large");
    }
    let qr_codes: Vec<Vec<&str>> = printed
        .slips
        .iter()
        .map(|slip| slip.iter().filter_map(|l| l.qr.as_deref()).collect())
        .collect();
    let on_ticket = order.number.to_string();
    assert_eq!(
        qr_codes,
        [vec![on_ticket.as_str()], vec![], vec![], vec![]],
        "the ticket carries a QR code of the number, the station slips none"
    );

    // Each station slip: the station's name, the number, the time, a blank line, its wares, a rule.
    let mut by_station = BTreeMap::new();
    for slip in &printed.slips[1..] {
        let lines: Vec<&str> = slip.iter().map(|l| l.text.trim()).collect();
        assert_eq!(lines[1], number, "{lines:?}");
        assert_eq!(lines[3], "", "{lines:?}");
        let (rule, wares) = lines[4..].split_last().expect("a rule");
        assert_eq!(rule.trim_start_matches('-'), "", "{lines:?}");
        by_station.insert(lines[0], wares.to_vec());
    }
    let expected = BTreeMap::from([
        ("Вок", vec!["Вок остр. пр. соус   1", "Вок остр. греча   3"]),
        ("Пиццерия", vec!["Пицца 4 сыра   2"]),
        ("Салаты", vec!["Салат оливье   1"]),
    ]);
    assert_eq!(by_station, expected);
});
