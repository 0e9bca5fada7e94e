//! The API matches its OpenAPI document: schemathesis (installed by `scripts/test.sh`) generates requests from
//! `/api/openapi.json` against the real binary, with every check on (`--checks all`: documented status codes,
//! response bodies matching their schemas, content types, no 5xx, schema-valid data accepted and invalid data
//! refused), and must find nothing.

mod common;

use common::DEVICE_KEY;
use tillwire_testkit::http_client;

tillwire_testkit::both_backends!(the_api_answers_as_its_document_says, |db| async move {
    let schemathesis = std::env::var("TILLWIRE_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!("TILLWIRE_SCHEMATHESIS is not set: run the tests with ./scripts/test.sh, which installs schemathesis")
    });
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[("API_KEY", DEVICE_KEY)]).await;
    let base = server.base_url();
    // A few orders, so the operations on one have something to find.
    let client = http_client();
    for check in 1..=5 {
        common::import(&client, &base, DEVICE_KEY, check, &common::today()).await;
    }
    // The kitchen's operations with a device key; the monitor's and the ERP bridge's with a service token of their
    // scope (they refuse device keys), so each operation is exercised past its authentication.
    let store = tillwire_platform::Store::connect(db.url())
        .await
        .expect("connect");
    let token = |name: &'static str, scope: &'static str| {
        let store = store.clone();
        async move {
            tillwire_platform::tokens::Tokens(&store)
                .issue(
                    &tillwire_platform::tokens::TokenName::parse(name).expect("name"),
                    &tillwire_platform::tokens::Scope::area(scope),
                    None,
                    "test",
                )
                .await
                .expect("a token")
                .plain
        }
    };
    let monitor_token = token("schemathesis", "monitor").await;
    let erp_token = token("schemathesis-erp", "erp").await;
    let iiko_token = token("schemathesis-iiko", "iiko").await;
    for (token, paths) in [
        (
            DEVICE_KEY.to_owned(),
            &["--exclude-path-regex", "^/api/v1/(monitor|erp|iiko)/"],
        ),
        (
            monitor_token,
            &["--include-path-regex", "^/api/v1/monitor/"],
        ),
        (erp_token, &["--include-path-regex", "^/api/v1/erp/"]),
        (iiko_token, &["--include-path-regex", "^/api/v1/iiko/"]),
    ] {
        run_schemathesis(&schemathesis, &base, data.path(), &token, paths).await;
    }
});

/// Runs schemathesis against the server's document with `token`; fails the test on any finding.
async fn run_schemathesis(
    schemathesis: &str,
    base: &str,
    dir: &std::path::Path,
    token: &str,
    filter: &[&str],
) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let output = tokio::process::Command::new(schemathesis)
        .args(["--config-file", config, "run"])
        .arg(format!("{base}/api/openapi.json"))
        .args([
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--no-color",
        ])
        .args(filter)
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // It keeps a cache in its working directory: not in the source tree.
        .current_dir(dir)
        .output()
        .await
        .unwrap_or_else(|error| panic!("could not run {schemathesis}: {error}"));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis ({filter:?}) found the API and its document disagree:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains(" passed"),
        "schemathesis ({filter:?}) tested nothing:\n{report}"
    );
}
