//! The iikoCloud client against the simulator: tokens renewed on expiry and once on a 401, one renewal shared
//! by concurrent callers, v2 keys, 429s waited out as asked, and both error shapes.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tillwire_iiko::cloud::{Auth, CloudClient, CloudError};
use tillwire_iiko::sim::cloud::Fault;
use tillwire_platform::config::Secret;

fn organizations() -> Value {
    json!({"organizationIds": null, "returnAdditionalInfo": false, "includeDisabled": false})
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_and_shared_by_concurrent_callers() {
    let (sim, url) = simulator("Russian Standard Time").await;
    let client = CloudClient::new(&url, Auth::ApiLogin(Secret::new(API_LOGIN)));
    let answer: Value = client
        .call("/api/1/organizations", &organizations())
        .await
        .unwrap();
    assert_eq!(answer["organizations"][0]["id"], ORG);
    assert_eq!(sim.tokens_issued(), 1);
    assert!(client.token_age().is_some());

    // Revoked (or expired early): each of four concurrent calls gets a 401, and one renewal serves them all.
    // (Four: with their retries that is nine calls, within the method's budget of ten a minute.)
    sim.revoke_tokens();
    let calls = (0..4).map(|_| {
        let client = client.clone();
        async move {
            client
                .call::<_, Value>("/api/1/organizations", &organizations())
                .await
        }
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap()["organizations"][0]["id"], ORG);
    }
    assert_eq!(sim.tokens_issued(), 2, "one renewal for four callers");

    // A 401 that persists after the renewal is the caller's error, not a loop.
    sim.fail_next("/api/1/terminal_groups", Fault::Unauthorized, 2);
    let refused = client
        .call::<_, Value>(
            "/api/1/terminal_groups",
            &json!({"organizationIds": [ORG], "includeDisabled": false}),
        )
        .await;
    assert!(
        matches!(refused, Err(CloudError::Refused { status: 401, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_v2_key_gets_a_jwt_that_is_renewed_before_it_expires() {
    let (sim, url) = simulator("Russian Standard Time").await;
    sim.add_api_key("the-key", "the-app", "the-secret");
    sim.set_token_ttl(Duration::from_secs(2));
    let client = CloudClient::new(
        &url,
        Auth::ApiKey {
            api_key: Secret::new("the-key"),
            app_id: "the-app".into(),
            client_secret: Secret::new("the-secret"),
        },
    );
    client
        .call::<_, Value>("/api/1/organizations", &organizations())
        .await
        .unwrap();
    assert_eq!(sim.tokens_issued(), 1);
    // Past half its life the token is renewed before use, with no 401 on the way.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    client
        .call::<_, Value>("/api/1/organizations", &organizations())
        .await
        .unwrap();
    assert_eq!(sim.tokens_issued(), 2);
    assert_eq!(
        sim.requests("/api/1/organizations"),
        2,
        "no request was refused"
    );

    let wrong = CloudClient::new(
        &url,
        Auth::ApiKey {
            api_key: Secret::new("the-key"),
            app_id: "the-app".into(),
            client_secret: Secret::new("not-the-secret"),
        },
    );
    let refused = wrong
        .call::<_, Value>("/api/1/organizations", &organizations())
        .await;
    assert!(
        matches!(refused, Err(CloudError::Credentials(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn too_many_requests_are_waited_out_as_asked() {
    let (sim, url) = simulator("Russian Standard Time").await;
    let client = CloudClient::new(&url, Auth::ApiLogin(Secret::new(API_LOGIN)));
    sim.fail_next(
        "/api/1/terminal_groups",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    let answer: Value = client
        .call(
            "/api/1/terminal_groups",
            &json!({"organizationIds": [ORG], "includeDisabled": false}),
        )
        .await
        .unwrap();
    assert_eq!(
        answer["terminalGroups"][0]["items"][0]["timeZone"],
        "Russian Standard Time"
    );
    assert_eq!(
        sim.requests("/api/1/terminal_groups"),
        2,
        "asked again once, after the wait"
    );

    // A wait longer than a minute is not sat out: the caller's own backoff decides.
    sim.fail_next(
        "/api/1/terminal_groups",
        Fault::TooManyRequests {
            retry_after_secs: 600,
        },
        1,
    );
    let limited = client
        .call::<_, Value>(
            "/api/1/terminal_groups",
            &json!({"organizationIds": [ORG], "includeDisabled": false}),
        )
        .await;
    assert!(
        matches!(limited, Err(CloudError::RateLimited(wait)) if wait == Duration::from_secs(600)),
        "{limited:?}"
    );
    assert!(limited.unwrap_err().is_transient());
}

#[tokio::test]
async fn errors_are_read_with_their_code_and_correlation_id() {
    let (sim, url) = simulator("Russian Standard Time").await;
    let client = CloudClient::new(&url, Auth::ApiLogin(Secret::new(API_LOGIN)));
    sim.fail_next("/api/1/order/by_table", Fault::Status(500), 1);
    let failed = client
        .call::<_, Value>(
            "/api/1/order/by_table",
            &json!({"organizationIds": [ORG], "tableIds": [TABLE]}),
        )
        .await
        .unwrap_err();
    match &failed {
        CloudError::Refused {
            status: 500,
            correlation_id: Some(id),
            description,
            ..
        } => {
            assert!(!id.is_empty() && !description.is_empty());
        }
        other => panic!("expected a 500 with its correlation id, got {other:?}"),
    }
    assert!(failed.is_transient());
    sim.fail_next("/api/1/order/by_table", Fault::Status(408), 1);
    let timeout = client
        .call::<_, Value>(
            "/api/1/order/by_table",
            &json!({"organizationIds": [ORG], "tableIds": [TABLE]}),
        )
        .await;
    assert_eq!(timeout.unwrap_err(), CloudError::Timeout);
    let unknown_login = CloudClient::new(&url, Auth::ApiLogin(Secret::new("nobody")));
    let refused = unknown_login
        .call::<_, Value>("/api/1/organizations", &organizations())
        .await;
    assert!(
        matches!(refused, Err(CloudError::Credentials(_))),
        "{refused:?}"
    );
}
