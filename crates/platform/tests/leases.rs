//! Named leases: one holder at a time across instances, renewed by its holder, taken over once it runs out,
//! given up at once on a clean stop.

mod common;

use common::open;
use std::time::Duration;

use tillwire_platform::Leases;

tillwire_testkit::both_backends!(one_holder_at_a_time, |db| async move {
    let store = open(&db).await;
    let (first, second) = (Leases::new(store.clone()), Leases::new(store.clone()));
    assert_ne!(first.holder(), second.holder());
    let long = Duration::from_secs(60);
    assert!(first.hold("register a", long).await.expect("hold"));
    assert!(
        !second.hold("register a", long).await.expect("hold"),
        "held by the first"
    );
    assert!(
        first.hold("register a", long).await.expect("renew"),
        "its holder renews it"
    );
    assert!(
        second.hold("register b", long).await.expect("hold"),
        "another name is free"
    );
    assert_eq!(
        second
            .holder_of("register a")
            .await
            .expect("holder")
            .as_deref(),
        Some(first.holder())
    );

    // The first instance dies: its short lease runs out and the second takes over.
    assert!(
        first
            .hold("register c", Duration::from_millis(50))
            .await
            .expect("hold")
    );
    assert!(!second.hold("register c", long).await.expect("hold"));
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(second.hold("register c", long).await.expect("take over"));
    assert!(
        !first.hold("register c", long).await.expect("hold"),
        "the old holder lost it"
    );

    // A clean stop gives it up at once; releasing someone else's lease does nothing.
    second.release("register a").await.expect("release");
    assert!(!second.hold("register a", long).await.expect("hold"));
    first.release("register a").await.expect("release");
    assert_eq!(second.holder_of("register a").await.expect("holder"), None);
    assert!(second.hold("register a", long).await.expect("hold"));
});
