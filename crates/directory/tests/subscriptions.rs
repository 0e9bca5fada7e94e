//! The bot's side of the directory (`subscriptions`): registering a chat, redeeming access codes under the
//! limiter, what a role offers, and idempotent "ensure" / remove of a chat's routes, on both backends.

mod common;

use std::net::IpAddr;

use common::Harness;
use tillwire_directory::subscriptions::{NewChat, Subscriptions};
use tillwire_directory::{ChatType, CodeLimiter, DirectoryError};

fn subs(t: &Harness) -> Subscriptions {
    Subscriptions(t.platform.store.clone())
}

fn pairs(list: &[tillwire_directory::subscriptions::Subscription]) -> Vec<(i64, i64)> {
    list.iter().map(|s| (s.report_type_id, s.unit_id)).collect()
}

tillwire_testkit::both_backends!(a_chat_registers_and_redeems_a_code, |db| async move {
    let t = Harness::new(db).await;
    let s = subs(&t);
    let chat = NewChat {
        chat_id: 333,
        kind: ChatType::Private,
        title: "Новый".into(),
        username: None,
    };
    assert!(s.register(&chat, "bot").await.expect("register"));
    assert!(
        !s.register(&chat, "bot").await.expect("again"),
        "registering twice is not an error"
    );
    assert_eq!(s.role(333).await.expect("role"), None);
    assert_eq!(s.role(9999).await.expect("unknown chat"), None);
    assert_eq!(s.role(111).await.expect("role"), Some(1));

    let limiter = CodeLimiter::default();
    let bot: IpAddr = "127.0.0.1".parse().expect("address");
    for _ in 0..5 {
        let wrong = s.redeem(&limiter, bot, 333, "guess", "bot").await;
        assert!(
            matches!(&wrong, Err(e) if tillwire_directory::subscriptions::is_wrong_code(e)),
            "{wrong:?}"
        );
    }
    let throttled = s.redeem(&limiter, bot, 333, "secret-one", "bot").await;
    assert!(
        matches!(throttled, Err(DirectoryError::Throttled)),
        "{throttled:?}"
    );
    assert_eq!(s.role(333).await.expect("role"), None);
    // Another chat relayed by the same bot is not locked out.
    s.redeem(&limiter, bot, 222, "secret-one", "bot")
        .await
        .expect("right code");
    assert_eq!(s.role(222).await.expect("role"), Some(1));
});

tillwire_testkit::both_backends!(ensure_and_remove_are_idempotent, |db| async move {
    let t = Harness::new(db).await;
    let s = subs(&t);
    let role = s.role(111).await.expect("role").expect("has one");
    let offered: Vec<i64> = s
        .report_types(role)
        .await
        .expect("types")
        .iter()
        .map(|t| t.id)
        .collect();
    // By priority; STATISTICS is a heading and STREET_STOP_SALES (3) is inactive.
    assert_eq!(offered, vec![2, 10]);
    let units: Vec<i64> = s
        .units(role)
        .await
        .expect("units")
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(units, vec![1, 2, 3]);
    let regions: Vec<i64> = s
        .regions(role)
        .await
        .expect("regions")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(regions, vec![1, 2]);

    assert_eq!(s.ensure(111, 2, &[1, 2], "bot").await.expect("ensure"), 2);
    assert_eq!(
        s.ensure(111, 2, &[1, 2, 3], "bot").await.expect("again"),
        1,
        "existing routes are kept, not refused"
    );
    assert_eq!(s.ensure(111, 10, &[3], "bot").await.expect("ensure"), 1);
    let listed = s.of_chat(111).await.expect("list");
    assert_eq!(pairs(&listed), vec![(2, 1), (2, 2), (2, 3), (10, 3)]);
    assert_eq!(listed[0].report_type, "INGREDIENTS_STOP_SALES");
    assert_eq!(listed[0].unit, "Москва 1-1");

    let inactive = s.ensure(111, 3, &[1], "bot").await;
    assert!(
        matches!(inactive, Err(DirectoryError::Forbidden(_))),
        "{inactive:?}"
    );
    let not_granted = s.ensure(111, 2, &[4], "bot").await;
    assert!(
        matches!(not_granted, Err(DirectoryError::Forbidden(_))),
        "{not_granted:?}"
    );
    let no_role = s.ensure(222, 2, &[1], "bot").await;
    assert!(
        matches!(no_role, Err(DirectoryError::Forbidden(_))),
        "{no_role:?}"
    );
    assert_eq!(pairs(&s.of_chat(111).await.expect("list")).len(), 4);

    assert_eq!(s.remove(111, 2, &[1, 4], "bot").await.expect("remove"), 1);
    assert_eq!(s.remove(111, 2, &[1], "bot").await.expect("again"), 0);
    assert_eq!(
        pairs(&s.of_chat(111).await.expect("list")),
        vec![(2, 2), (2, 3), (10, 3)]
    );

    // A new role prunes what it does not grant.
    let limiter = CodeLimiter::default();
    s.redeem(
        &limiter,
        "127.0.0.1".parse().expect("address"),
        111,
        "secret-two",
        "bot",
    )
    .await
    .expect("other role");
    assert!(s.of_chat(111).await.expect("list").is_empty());
});
