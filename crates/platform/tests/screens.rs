//! Paired screens: a code pairs one screen once, within its time; the screen is then signed in as itself with its
//! unit, role and own CSRF token; a new code replaces its credential when used; revoking ends it at once.

mod common;

use common::open;
use tillwire_platform::screens::{NewScreen, Screens};
use tillwire_platform::tokens::{Scope, Tokens};
use tillwire_platform::{Role, now_ms};

tillwire_testkit::both_backends!(a_code_pairs_one_screen_once, |db| async move {
    let store = open(&db).await;
    let screens = Screens(&store);
    let new = NewScreen::parse("Табло в зале", 7, "operator", "/dashboard/").expect("valid");
    let (id, code) = screens.create(&new, "admin").await.expect("create");
    let shown = code.to_string();
    assert_eq!(shown.len(), 9, "{shown}");
    assert_eq!(&shown[4..5], "-");

    // Not yet paired: waiting for its code; a wrong code pairs nothing.
    let listed = screens.list().await.expect("list");
    assert!(listed[0].awaiting_pairing() && listed[0].paired_ms.is_none());
    assert!(screens.pair("ZZZZ-ZZZZ").await.expect("pair").is_none());

    // Typed in lower case with a space instead of the dash: still the code.
    let typed = format!(" {} {} ", &code.plain()[..4], &code.plain()[4..]).to_lowercase();
    let (token, opens) = screens.pair(&typed).await.expect("pair").expect("paired");
    assert_eq!(opens, "/dashboard/");
    assert!(
        screens.pair(code.plain()).await.expect("pair").is_none(),
        "a code works once"
    );
    let me = screens
        .identify(&token)
        .await
        .expect("identify")
        .expect("the screen");
    let screen = me.screen.as_ref().expect("a screen's identity");
    assert_eq!((screen.id, screen.unit_id), (id, 7));
    assert_eq!(me.role, Role::Operator);
    assert_eq!(me.username, "Табло в зале");
    assert!(me.csrf.len() >= 20);
    let listed = screens.list().await.expect("list");
    assert!(listed[0].paired_ms.is_some() && listed[0].last_seen_ms.is_some());
    // The credential is a service token of the screen scope, of its unit, and nothing else.
    let issued = Tokens(&store)
        .list(Some(&Scope::SCREEN))
        .await
        .expect("tokens");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].unit_id, Some(7));
    assert!(
        !Tokens(&store)
            .authenticate(&token)
            .await
            .expect("authenticate")
            .expect("valid")
            .allows("kitchen")
    );

    // A new code (a replaced tablet): the old credential works until the new code is used, then not.
    let again = screens.new_code(id, "admin").await.expect("new code");
    assert!(screens.identify(&token).await.expect("identify").is_some());
    let (second, _) = screens
        .pair(again.plain())
        .await
        .expect("pair")
        .expect("paired again");
    assert!(screens.identify(&token).await.expect("identify").is_none());
    assert!(screens.identify(&second).await.expect("identify").is_some());

    // A code past its time pairs nothing.
    let late = screens.new_code(id, "admin").await.expect("new code");
    tillwire_platform::write!(&store, db => sqlx::query("UPDATE screens SET pairing_expires_ms = $1")
        .bind(now_ms() - 1)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
    .expect("expire the code");
    assert!(screens.pair(late.plain()).await.expect("pair").is_none());

    // Revoked: the credential stops at once, and so does any code.
    let pending = screens.new_code(id, "admin").await.expect("new code");
    screens.revoke(id, "admin").await.expect("revoke");
    assert!(screens.identify(&second).await.expect("identify").is_none());
    assert!(screens.pair(pending.plain()).await.expect("pair").is_none());
    assert!(screens.new_code(id, "admin").await.is_err());
    assert!(screens.list().await.expect("list")[0].revoked_ms.is_some());
    // A person's token is not a screen.
    assert!(screens.identify("").await.expect("identify").is_none());
});

#[test]
fn a_screen_is_an_operator_or_a_viewer_that_opens_a_page_of_this_site() {
    assert!(NewScreen::parse("Касса", 1, "viewer", "/").is_ok());
    assert!(NewScreen::parse("Касса", 1, "admin", "/").is_err());
    assert!(NewScreen::parse("Касса", 1, "viewer", "//evil.example/").is_err());
    assert!(NewScreen::parse("Касса", 1, "viewer", "https://evil.example/").is_err());
    assert!(NewScreen::parse("", 1, "viewer", "/").is_err());
}
