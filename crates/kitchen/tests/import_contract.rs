//! The ELQ receipt import contract (spec §2), case by case, against `POST /devices/import_receipt/`:
//! HTTP 200 always, `{"doc_number","count","error"}` in that order, −1 for errors, 0 for nothing to register,
//! with ELQ's bugs fixed (exact de-duplication, the real unknown-register message, printerless registers,
//! fractional counts, no internal error text).

mod common;

use common::*;
use tillwire_units::{ApiKeys, UnitName, Units};

const DAY: &str = "2022-11-17";

/// Posts `body` with `key`, expects the exact −1 reply carrying `error`, and checks nothing was written.
async fn assert_rejected(app: &TestApp, body: &str, key: Option<&str>, error: &str, orders: i64) {
    let text = app.post_legacy_raw(body.to_owned(), key).await;
    assert_eq!(text, legacy_text(-1, 0, error), "body: {body}");
    app.assert_no_writes(orders).await;
}

tillwire_testkit::both_backends!(valid_receipts_get_consecutive_numbers, |db| async move {
    let app = start(&db).await;
    let first = app
        .legacy(receipt(1, 1, DAY, &[(PIZZA, 4.0), (WOK_SAUCE, 1.0)]))
        .await;
    assert!(first.starts_with(r#"{"doc_number":"#), "{first}");
    assert_eq!(first, r#"{"doc_number":1,"count":2,"error":""}"#);
    let second = app.legacy(receipt(1, 2, DAY, &[(SHAWARMA, 1.0)])).await;
    assert_eq!(second, r#"{"doc_number":2,"count":1,"error":""}"#);
    // Another register shares the same per-day sequence; three stations in one receipt.
    let third = app
        .legacy(receipt(
            3,
            1,
            DAY,
            &[
                (SALAD, 1.0),
                (WOK_SAUCE, 2.0),
                (WOK_BUCKWHEAT, 1.0),
                (PIZZA, 1.0),
            ],
        ))
        .await;
    assert_eq!(third, r#"{"doc_number":3,"count":3,"error":""}"#);

    let order = app.order(DAY, 1).await;
    assert_eq!(order.business_day, DAY);
    assert_eq!(order.status_id, 1, "initial status");
    let lines: Vec<(&str, f64)> = order
        .lines
        .iter()
        .map(|l| (l.code.as_str(), l.quantity))
        .collect();
    assert_eq!(lines, [(PIZZA, 4.0), (WOK_SAUCE, 1.0)]);
    assert_eq!(order.stations.len(), 2);
    assert_eq!(app.count("orders").await, 3);
});

tillwire_testkit::both_backends!(collector_style_bodies_are_accepted, |db| async move {
    let app = start(&db).await;
    // curl --data sends form-urlencoded; ware codes may be JSON numbers; ids may be digit strings; counts floats.
    let body = r#"{"cash_id": "2", "shift_id": 7, "check_id": "15", "check_date": "2022-11-17",
                   "wares": [{"ware_code": 48566, "ware_count": 1.0}]}"#;
    let response = app
        .client
        .post(app.url(LEGACY_PATH))
        .header("key", API_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"doc_number":1,"count":1,"error":""}"#
    );
    // The header name is case-insensitive, and the path works without the trailing slash too.
    let response = app
        .client
        .post(app.url("/devices/import_receipt"))
        .header("KEY", API_KEY)
        .body(receipt(2, 16, DAY, &[(SHAWARMA, 1.0)]))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"doc_number":2,"count":1,"error":""}"#
    );
    // And the GET help page is still there.
    let help = app
        .client
        .get(app.url(LEGACY_PATH))
        .send()
        .await
        .expect("GET");
    assert_eq!(help.status(), 200);
    assert!(help.text().await.expect("body").contains("import_receipt"));
});

tillwire_testkit::both_backends!(repeated_receipt_is_rejected, |db| async move {
    let app = start(&db).await;
    let body = receipt(1, 7, DAY, &[(PIZZA, 1.0)]);
    assert_eq!(app.legacy(body.clone()).await, legacy_text(1, 1, ""));
    for _ in 0..2 {
        assert_rejected(
            &app,
            &body,
            Some(API_KEY),
            "Already have receipt with number 7 for cash 1 in 2022-11-17",
            1,
        )
        .await;
    }
    // Even with other wares the receipt's identity is what counts.
    assert_rejected(
        &app,
        &receipt(1, 7, DAY, &[(SHAWARMA, 3.0)]),
        Some(API_KEY),
        "Already have receipt with number 7 for cash 1 in 2022-11-17",
        1,
    )
    .await;
    // The same receipt number in another shift, register or day is another receipt.
    assert_eq!(
        app.legacy(receipt_in_shift(1, 2, 7, DAY, &[(PIZZA, 1.0)]))
            .await,
        legacy_text(2, 1, "")
    );
    assert_eq!(
        app.legacy(receipt(2, 7, DAY, &[(PIZZA, 1.0)])).await,
        legacy_text(3, 1, "")
    );
    assert_eq!(
        app.legacy(receipt(1, 7, "2022-11-18", &[(PIZZA, 1.0)]))
            .await,
        legacy_text(1, 1, "")
    );
    assert_eq!(app.count("orders").await, 4);
});

tillwire_testkit::both_backends!(
    lower_numbered_receipt_after_higher_registers,
    |db| async move {
        let app = start(&db).await;
        assert_eq!(
            app.legacy(receipt(1, 5, DAY, &[(PIZZA, 1.0)])).await,
            legacy_text(1, 1, "")
        );
        // ELQ kept a high-water mark and rejected this one forever.
        assert_eq!(
            app.legacy(receipt(1, 3, DAY, &[(PIZZA, 1.0)])).await,
            legacy_text(2, 1, "")
        );
        assert_eq!(
            app.legacy(receipt(1, 4, DAY, &[(SALAD, 1.0)])).await,
            legacy_text(3, 1, "")
        );
        // Both are now known exactly.
        assert_rejected(
            &app,
            &receipt(1, 3, DAY, &[(PIZZA, 1.0)]),
            Some(API_KEY),
            "Already have receipt with number 3 for cash 1 in 2022-11-17",
            3,
        )
        .await;
        assert_rejected(
            &app,
            &receipt(1, 5, DAY, &[(PIZZA, 1.0)]),
            Some(API_KEY),
            "Already have receipt with number 5 for cash 1 in 2022-11-17",
            3,
        )
        .await;
    }
);

tillwire_testkit::both_backends!(nothing_to_register_advances_nothing, |db| async move {
    let app = start(&db).await;
    let nothing = r#"{"doc_number":0,"count":0,"error":"Nothing to register"}"#;
    // Unknown codes.
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[("99999", 3.0), ("00001", 1.0)]))
            .await,
        nothing
    );
    app.assert_no_writes(0).await;
    // An empty list.
    assert_eq!(app.legacy(receipt(1, 2, DAY, &[])).await, nothing);
    app.assert_no_writes(0).await;
    // Counts below the catch quantity (1), zero and negative counts.
    assert_eq!(
        app.legacy(receipt(1, 3, DAY, &[(PIZZA, 0.5)])).await,
        nothing
    );
    assert_eq!(
        app.legacy(receipt(1, 4, DAY, &[(PIZZA, 0.0)])).await,
        nothing
    );
    assert_eq!(
        app.legacy(receipt(1, 5, DAY, &[(PIZZA, -2.0)])).await,
        nothing
    );
    app.assert_no_writes(0).await;
    // Re-sending the very same receipts is harmless and gives the same answer.
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[("99999", 3.0)])).await,
        nothing
    );
    // No watermark advanced: the same receipt numbers register once they carry a production ware, and the
    // numbering starts at 1 (no number was used up).
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[("99999", 3.0), (PIZZA, 1.0)]))
            .await,
        legacy_text(1, 1, "")
    );
    assert_eq!(
        app.legacy(receipt(1, 3, DAY, &[(PIZZA, 1.0)])).await,
        legacy_text(2, 1, "")
    );
    let order = app.order(DAY, 1).await;
    assert_eq!(order.lines.len(), 1, "unknown codes are not stored");
    assert_eq!(order.lines[0].code, PIZZA);
});

tillwire_testkit::both_backends!(catch_quantity_is_a_threshold, |db| async move {
    let app = start(&db).await;
    assert_eq!(
        app.exec(&format!(
            "UPDATE wares SET catch_quantity = 2 WHERE code = '{SHAWARMA}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[(SHAWARMA, 1.0)])).await,
        r#"{"doc_number":0,"count":0,"error":"Nothing to register"}"#
    );
    assert_eq!(
        app.legacy(receipt(1, 2, DAY, &[(SHAWARMA, 1.99)])).await,
        r#"{"doc_number":0,"count":0,"error":"Nothing to register"}"#
    );
    app.assert_no_writes(0).await;
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[(SHAWARMA, 2.0)])).await,
        legacy_text(1, 1, "")
    );
    assert_eq!(
        app.legacy(receipt(1, 3, DAY, &[(SHAWARMA, 5.0)])).await,
        legacy_text(2, 1, "")
    );
    // Within one receipt, a line below the threshold is ignored while another ware still counts.
    assert_eq!(
        app.legacy(receipt(1, 4, DAY, &[(SHAWARMA, 1.0), (PIZZA, 1.0)]))
            .await,
        legacy_text(3, 1, "")
    );
    let order = app.order(DAY, 3).await;
    assert_eq!(order.lines.len(), 1);
    assert_eq!(order.lines[0].code, PIZZA);
});

tillwire_testkit::both_backends!(duplicate_codes_are_merged, |db| async move {
    let app = start(&db).await;
    assert_eq!(
        app.legacy(receipt(
            1,
            1,
            DAY,
            &[(PIZZA, 1.0), (SALAD, 1.0), (PIZZA, 2.0)]
        ))
        .await,
        legacy_text(1, 2, "")
    );
    let order = app.order(DAY, 1).await;
    let lines: Vec<(&str, f64)> = order
        .lines
        .iter()
        .map(|l| (l.code.as_str(), l.quantity))
        .collect();
    assert_eq!(lines, [(PIZZA, 3.0), (SALAD, 1.0)]);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM order_lines WHERE code = '{PIZZA}'"
        ))
        .await,
        1
    );
});

tillwire_testkit::both_backends!(fractional_counts_are_kept, |db| async move {
    let app = start(&db).await;
    app.exec(&format!(
        "UPDATE wares SET catch_quantity = 0.25 WHERE code = '{SALAD}'"
    ))
    .await;
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[(SALAD, 0.5), (WOK_SAUCE, 1.5)]))
            .await,
        legacy_text(1, 2, "")
    );
    let order = app.order(DAY, 1).await;
    let lines: Vec<(&str, f64)> = order
        .lines
        .iter()
        .map(|l| (l.code.as_str(), l.quantity))
        .collect();
    assert_eq!(
        lines,
        [(SALAD, 0.5), (WOK_SAUCE, 1.5)],
        "ELQ truncated these to 0 and 1"
    );
    // Merged fractions add up exactly.
    assert_eq!(
        app.legacy(receipt(1, 2, DAY, &[(SALAD, 0.25), (SALAD, 0.5)]))
            .await,
        legacy_text(2, 1, "")
    );
    assert_eq!(app.order(DAY, 2).await.lines[0].quantity, 0.75);
});

tillwire_testkit::both_backends!(wrong_or_missing_key, |db| async move {
    let app = start(&db).await;
    let body = receipt(1, 1, DAY, &[(PIZZA, 1.0)]);
    assert_rejected(&app, &body, Some("wrong"), "Invalid api key.", 0).await;
    assert_rejected(&app, &body, Some(""), "Invalid api key.", 0).await;
    assert_rejected(&app, &body, None, "Invalid api key.", 0).await;
    assert_rejected(&app, &body, Some("SECRET_KEY_HERE"), "Invalid api key.", 0).await;
    assert_rejected(&app, &body, Some("secret_key_her"), "Invalid api key.", 0).await;
    // The key is checked first: a bad body with a bad key is a key error.
    assert_rejected(&app, "not json", None, "Invalid api key.", 0).await;
    // The key is not an Authorization header.
    let response = app
        .client
        .post(app.url(LEGACY_PATH))
        .header("authorization", format!("Bearer {API_KEY}"))
        .body(body.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        legacy_text(-1, 0, "Invalid api key.")
    );
    app.assert_no_writes(0).await;
});

tillwire_testkit::both_backends!(
    no_configured_key_rejects_a_missing_header,
    |db| async move {
        // ELQ compared None == None and let anyone in when API_KEY was unset.
        let app = start_with(&db, |settings| settings.api_key = None).await;
        let body = receipt(1, 1, DAY, &[(PIZZA, 1.0)]);
        assert_rejected(&app, &body, None, "Invalid api key.", 0).await;
        assert_rejected(&app, &body, Some(""), "Invalid api key.", 0).await;
        assert_rejected(&app, &body, Some(API_KEY), "Invalid api key.", 0).await;
    }
);

tillwire_testkit::both_backends!(invalid_json, |db| async move {
    let app = start(&db).await;
    for body in [
        "",
        "not json",
        "{",
        r#"{"cash_id": 1,}"#,
        "{'cash_id': 1}",
        "\u{feff}{}",
    ] {
        assert_rejected(&app, body, Some(API_KEY), "Invalid json", 0).await;
    }
    // Not UTF-8 at all.
    let text = app
        .post_legacy_raw(vec![0xff_u8, 0xfe, 0x00], Some(API_KEY))
        .await;
    assert_eq!(text, legacy_text(-1, 0, "Invalid json"));
    app.assert_no_writes(0).await;
});

tillwire_testkit::both_backends!(json_that_is_not_an_object, |db| async move {
    let app = start(&db).await;
    let valid = receipt(1, 1, DAY, &[(PIZZA, 1.0)]);
    let listed = format!("[{valid}]");
    for body in [listed.as_str(), "[]", r#""text""#, "42", "null", "true"] {
        assert_rejected(&app, body, Some(API_KEY), "Invalid json structure", 0).await;
    }
});

tillwire_testkit::both_backends!(unknown_cash_register, |db| async move {
    let app = start(&db).await;
    let message = "Invalid cash number, registered numbers are: [1, 2, 3, 4, 5]";
    assert_rejected(
        &app,
        &receipt(9, 1, DAY, &[(PIZZA, 1.0)]),
        Some(API_KEY),
        message,
        0,
    )
    .await;
    assert_rejected(
        &app,
        &receipt(-1, 1, DAY, &[(PIZZA, 1.0)]),
        Some(API_KEY),
        message,
        0,
    )
    .await;
    // cash_id defaults to 0 when absent, and there is no register 0.
    let body = format!(r#"{{"check_id": 1, "check_date": "{DAY}", "wares": []}}"#);
    assert_rejected(&app, &body, Some(API_KEY), message, 0).await;
    // The list follows the registers.
    app.exec("DELETE FROM cash_registers WHERE number = 4")
        .await;
    assert_rejected(
        &app,
        &receipt(4, 1, DAY, &[(PIZZA, 1.0)]),
        Some(API_KEY),
        "Invalid cash number, registered numbers are: [1, 2, 3, 5]",
        0,
    )
    .await;
});

tillwire_testkit::both_backends!(register_without_printer_registers, |db| async move {
    let app = start(&db).await;
    assert_eq!(
        app.exec("UPDATE cash_registers SET printer_id = NULL WHERE number = 2")
            .await,
        1
    );
    assert_eq!(
        app.legacy(receipt(2, 1, DAY, &[(PIZZA, 1.0), (SHAWARMA, 1.0)]))
            .await,
        r#"{"doc_number":1,"count":2,"error":""}"#
    );
    assert_eq!(app.count("orders").await, 1);
});

tillwire_testkit::both_backends!(structural_errors, |db| async move {
    let app = start(&db).await;
    let head = format!(r#""cash_id": 1, "shift_id": 1, "check_id": 1, "check_date": "{DAY}""#);
    let bodies = [
        // wares is not a list
        format!(r#"{{{head}, "wares": {{"ware_code": "{PIZZA}", "ware_count": 1}}}}"#),
        format!(r#"{{{head}, "wares": "{PIZZA}"}}"#),
        // an element is not an object
        format!(r#"{{{head}, "wares": ["{PIZZA}"]}}"#),
        format!(r#"{{{head}, "wares": [[ "{PIZZA}", 1 ]]}}"#),
        format!(r#"{{{head}, "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1}}, 5]}}"#),
        // a missing key
        format!(r#"{{{head}, "wares": [{{"ware_code": "{PIZZA}"}}]}}"#),
        // an extra key
        format!(
            r#"{{{head}, "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1, "price": 100}}]}}"#
        ),
        // a null or non-numeric count, a null code
        format!(r#"{{{head}, "wares": [{{"ware_code": "{PIZZA}", "ware_count": null}}]}}"#),
        format!(r#"{{{head}, "wares": [{{"ware_code": "{PIZZA}", "ware_count": "1"}}]}}"#),
        format!(r#"{{{head}, "wares": [{{"ware_code": null, "ware_count": 1}}]}}"#),
        // ids of the wrong type
        format!(r#"{{"cash_id": [1], "check_id": 1, "check_date": "{DAY}", "wares": []}}"#),
        format!(r#"{{"cash_id": 1, "check_id": "one", "check_date": "{DAY}", "wares": []}}"#),
        format!(
            r#"{{"cash_id": 1, "shift_id": 1.5, "check_id": 1, "check_date": "{DAY}", "wares": []}}"#
        ),
    ];
    for body in &bodies {
        assert_rejected(&app, body, Some(API_KEY), "Invalid json structure", 0).await;
    }
    // A structurally bad line spoils the whole receipt even when another line is fine.
    let mixed = format!(
        r#"{{{head}, "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1}}, {{"ware_code": "{SALAD}", "ware_count": null}}]}}"#
    );
    assert_rejected(&app, &mixed, Some(API_KEY), "Invalid json structure", 0).await;
});

tillwire_testkit::both_backends!(
    wares_absent_or_null_and_elements_without_a_code_are_empty,
    |db| async move {
        let app = start(&db).await;
        let head = format!(r#""cash_id": 1, "shift_id": 1, "check_date": "{DAY}""#);
        let nothing = legacy_text(0, 0, "Nothing to register");
        // As ELQ's code did: no wares, or null, or elements without a code are nothing to register.
        for (check, wares) in [
            (1, String::new()),
            (2, r#", "wares": null"#.to_owned()),
            (3, r#", "wares": [{"ware_count": 1}, {}]"#.to_owned()),
        ] {
            let body = format!(r#"{{{head}, "check_id": {check}{wares}}}"#);
            assert_eq!(app.post_legacy_raw(body, Some(API_KEY)).await, nothing);
        }
        app.assert_no_writes(0).await;
        // An element without a code is skipped beside real ones; a code may be a JSON number.
        let body = format!(
            r#"{{{head}, "check_id": 4, "wares": [{{"ware_count": 3}}, {{"ware_code": {PIZZA}, "ware_count": 2}}]}}"#
        );
        assert_eq!(
            app.post_legacy_raw(body, Some(API_KEY)).await,
            legacy_text(1, 1, "")
        );
        let order = app.order(DAY, 1).await;
        assert_eq!(order.lines.len(), 1);
        assert_eq!(
            (order.lines[0].code.as_str(), order.lines[0].quantity),
            (PIZZA, 2.0)
        );
    }
);

tillwire_testkit::both_backends!(the_quantity_cap_holds_for_merged_lines, |db| async move {
    let app = start(&db).await;
    // Each line is within the cap, their merged line would not be.
    let body = receipt(
        1,
        1,
        DAY,
        &[(PIZZA, 600_000.0), (SALAD, 1.0), (PIZZA, 400_001.0)],
    );
    assert_rejected(&app, &body, Some(API_KEY), "Invalid json structure", 0).await;
    // Exactly at the cap registers.
    assert_eq!(
        app.legacy(receipt(
            1,
            2,
            DAY,
            &[(PIZZA, 600_000.0), (PIZZA, 400_000.0)]
        ))
        .await,
        legacy_text(1, 1, "")
    );
});

tillwire_testkit::both_backends!(bad_check_dates, |db| async move {
    let app = start(&db).await;
    let message = "Invalid check_date, expected YYYY-MM-DD";
    for date in [
        "17.11.2022",
        "2022-13-01",
        "2022-02-30",
        "2022-11-17T10:00:00",
        "22-11-17",
        "",
    ] {
        assert_rejected(
            &app,
            &receipt(1, 1, date, &[(PIZZA, 1.0)]),
            Some(API_KEY),
            message,
            0,
        )
        .await;
    }
    let missing = format!(
        r#"{{"cash_id": 1, "check_id": 1, "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1}}]}}"#
    );
    assert_rejected(&app, &missing, Some(API_KEY), message, 0).await;
    let numeric = format!(
        r#"{{"cash_id": 1, "check_id": 1, "check_date": 20221117, "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1}}]}}"#
    );
    assert_rejected(&app, &numeric, Some(API_KEY), message, 0).await;
});

tillwire_testkit::both_backends!(huge_numbers_are_rejected_cleanly, |db| async move {
    let app = start(&db).await;
    let ware = format!(r#"[{{"ware_code": "{PIZZA}", "ware_count": 1}}]"#);
    let bodies = [
        format!(
            r#"{{"cash_id": 99999999999999999999, "check_id": 1, "check_date": "{DAY}", "wares": {ware}}}"#
        ),
        format!(
            r#"{{"cash_id": 1, "check_id": 99999999999999999999, "check_date": "{DAY}", "wares": {ware}}}"#
        ),
        format!(
            r#"{{"cash_id": 1, "shift_id": 1e300, "check_id": 1, "check_date": "{DAY}", "wares": {ware}}}"#
        ),
        format!(
            r#"{{"cash_id": 1, "check_id": 1, "check_date": "{DAY}", "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1e308}}]}}"#
        ),
        format!(
            r#"{{"cash_id": 1, "check_id": 1, "check_date": "{DAY}", "wares": [{{"ware_code": "{PIZZA}", "ware_count": 1e400}}]}}"#
        ),
        format!(r#"{{"cash_id": 1e400, "check_id": 1, "check_date": "{DAY}", "wares": {ware}}}"#),
        format!(
            r#"{{"cash_id": 1, "check_id": 1, "check_date": "{DAY}", "wares": [{{"ware_code": "{}", "ware_count": 1}}]}}"#,
            "9".repeat(100)
        ),
    ];
    for body in &bodies {
        let reply = app.post_legacy(body.clone(), Some(API_KEY)).await;
        let text = reply.to_string();
        assert!(
            text.starts_with(r#"{"doc_number":-1,"count":0,"error":"#),
            "{body} → {text}"
        );
        let error = reply["error"].as_str().expect("error text");
        assert!(!error.is_empty(), "{body} → {text}");
        assert!(
            [
                "Invalid json",
                "Invalid json structure",
                "Invalid cash number, registered numbers are: [1, 2, 3, 4, 5]"
            ]
            .contains(&error),
            "{body} → {text}"
        );
        app.assert_no_writes(0).await;
    }
    // Large but sane ids are fine.
    let body = format!(
        r#"{{"cash_id": 1, "shift_id": 9223372036854775807, "check_id": 9223372036854775807, "check_date": "{DAY}", "wares": {ware}}}"#
    );
    assert_eq!(app.legacy(body.clone()).await, legacy_text(1, 1, ""));
    assert_rejected(
        &app,
        &body,
        Some(API_KEY),
        "Already have receipt with number 9223372036854775807 for cash 1 in 2022-11-17",
        1,
    )
    .await;
});

tillwire_testkit::both_backends!(
    files_under_check_date_and_restarts_numbering,
    |db| async move {
        let app = start(&db).await;
        assert_eq!(
            app.legacy(receipt(1, 1, "2022-11-17", &[(PIZZA, 1.0)]))
                .await,
            legacy_text(1, 1, "")
        );
        assert_eq!(
            app.legacy(receipt(1, 2, "2022-11-17", &[(PIZZA, 1.0)]))
                .await,
            legacy_text(2, 1, "")
        );
        assert_eq!(
            app.legacy(receipt(1, 3, "2022-11-18", &[(PIZZA, 1.0)]))
                .await,
            legacy_text(1, 1, "")
        );
        assert_eq!(
            app.legacy(receipt(2, 1, "2022-11-18", &[(SALAD, 1.0)]))
                .await,
            legacy_text(2, 1, "")
        );
        // A receipt for an earlier day arriving late continues that day's sequence.
        assert_eq!(
            app.legacy(receipt(1, 4, "2022-11-17", &[(PIZZA, 1.0)]))
                .await,
            legacy_text(3, 1, "")
        );
        for (business_day, numbers) in [
            ("2022-11-17", [1, 2, 3].as_slice()),
            ("2022-11-18", &[1, 2]),
        ] {
            let views = app
                .kitchen
                .order_views(app.unit().await, day(business_day), false)
                .await
                .expect("orders of the day");
            let found: Vec<i64> = views.iter().map(|o| o.number).collect();
            assert_eq!(found, numbers, "{business_day}");
            assert!(views.iter().all(|o| o.business_day == business_day));
        }
    }
);

tillwire_testkit::both_backends!(device_keys_map_to_units, |db| async move {
    let app = start(&db).await;
    let store = &app.platform.store;
    let default_unit = app.unit().await;

    // The legacy API_KEY means the default unit.
    assert_eq!(
        app.legacy(receipt(1, 1, DAY, &[(PIZZA, 1.0)])).await,
        legacy_text(1, 1, "")
    );
    assert_eq!(app.order(DAY, 1).await.unit_id, default_unit.0);

    // A key issued in tillwire for the default unit works the same, sharing the sequence.
    let issued = ApiKeys(store)
        .issue(default_unit, "till 2", "test")
        .await
        .expect("issue a key");
    let reply = app
        .post_legacy_raw(receipt(2, 1, DAY, &[(PIZZA, 1.0)]), Some(&issued.plain))
        .await;
    assert_eq!(reply, legacy_text(2, 1, ""));

    // A key of another unit files into that unit, which has no registers yet.
    let other = Units(store)
        .create(&UnitName::parse("Второй магазин").expect("name"))
        .await
        .expect("create a unit");
    let other_key = ApiKeys(store)
        .issue(other, "till", "test")
        .await
        .expect("issue a key");
    assert_rejected(
        &app,
        &receipt(1, 2, DAY, &[(PIZZA, 1.0)]),
        Some(&other_key.plain),
        "Invalid cash number, registered numbers are: []",
        2,
    )
    .await;

    // A revoked key is refused.
    ApiKeys(store)
        .revoke(issued.id, "test")
        .await
        .expect("revoke");
    assert_rejected(
        &app,
        &receipt(2, 2, DAY, &[(PIZZA, 1.0)]),
        Some(&issued.plain),
        "Invalid api key.",
        2,
    )
    .await;
    // The settings key still works after a unit was added (the default unit stays the default).
    assert_eq!(
        app.legacy(receipt(1, 3, DAY, &[(PIZZA, 1.0)])).await,
        legacy_text(3, 1, "")
    );
    assert_ne!(other, default_unit);
});

tillwire_testkit::both_backends!(
    receipts_with_very_many_lines_answer_cleanly,
    |db| async move {
        let app = start(&db).await;
        // Far more lines than a till prints, still under the 2 MB body limit: a −1 reply, not an internal error.
        let wares: Vec<(String, f64)> = (0..40_000)
            .map(|i| (format!("{}", 100_000 + i), 1.0))
            .collect();
        let wares: Vec<(&str, f64)> = wares.iter().map(|(c, n)| (c.as_str(), *n)).collect();
        let body = receipt(1, 1, DAY, &wares);
        assert!(body.len() < 2 * 1024 * 1024, "{}", body.len());
        let reply = app.post_legacy(body, Some(API_KEY)).await;
        assert_eq!(reply["doc_number"], -1, "{reply}");
        assert_eq!(reply["error"], "Invalid json structure", "{reply}");
        app.assert_no_writes(0).await;
        // A long but plausible receipt (1000 lines, as the JSON API allows) is processed normally.
        let mut wares: Vec<(String, f64)> = (0..999)
            .map(|i| (format!("{}", 100_000 + i), 1.0))
            .collect();
        wares.push((PIZZA.to_owned(), 1.0));
        let wares: Vec<(&str, f64)> = wares.iter().map(|(c, n)| (c.as_str(), *n)).collect();
        assert_eq!(
            app.legacy(receipt(1, 1, DAY, &wares)).await,
            legacy_text(1, 1, "")
        );
    }
);

/// A zone where it is now between midnight and 04:00, so with the rollover at 04:00 the business day is still
/// yesterday's: the shop open past midnight that ELQ lost orders for.
fn zone_just_after_midnight() -> chrono_tz::Tz {
    use chrono::Timelike;
    let hour = chrono::Utc::now().hour() as i32;
    let offset = (-12..=14)
        .find(|offset| (hour + offset).rem_euclid(24) < 4)
        .expect("some zone is just after midnight");
    // `Etc/GMT+N` is UTC−N.
    let name = if offset > 0 {
        format!("Etc/GMT-{offset}")
    } else {
        format!("Etc/GMT+{}", -offset)
    };
    name.parse().expect("an Etc zone")
}

tillwire_testkit::both_backends!(
    orders_after_midnight_are_on_todays_screens,
    |db| async move {
        let zone = zone_just_after_midnight();
        let app = start_with(&db, |settings| {
            settings.timezone = Some(zone);
            settings.set("kitchen.day_rollover_hour", 4);
        })
        .await;
        let calendar = chrono::Utc::now().with_timezone(&zone).date_naive();
        let business_day = calendar.pred_opt().expect("a day before");
        let today = calendar.format("%Y-%m-%d").to_string();
        let shift_opened = business_day.format("%Y-%m-%d").to_string();
        // A till sending the calendar date, and the collector sending the shift-open date (yesterday's).
        assert_eq!(
            app.legacy(receipt(1, 1, &today, &[(PIZZA, 1.0)])).await,
            legacy_text(1, 1, "")
        );
        assert_eq!(
            app.legacy(receipt(2, 1, &shift_opened, &[(PIZZA, 1.0)]))
                .await,
            legacy_text(2, 1, "")
        );
        // Both are on the board of the business day, with their own numbers.
        let board: serde_json::Value = app
            .client
            .get(app.url("/dashboard/snapshot"))
            .send()
            .await
            .expect("GET /dashboard/snapshot")
            .json()
            .await
            .expect("JSON");
        assert_eq!(board["day"], shift_opened, "{board}");
        let mut numbers: Vec<i64> = board["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .filter_map(|order| order["number"].as_i64())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2], "{board}");
        // The same receipt sent again is still known by its own date.
        assert_eq!(
            app.legacy(receipt(1, 1, &today, &[(PIZZA, 1.0)])).await,
            legacy_text(
                -1,
                0,
                &format!("Already have receipt with number 1 for cash 1 in {today}")
            )
        );
    }
);
