//! Signing in and switching the language follow only paths of this site: the payloads that used to leave it, and
//! a control character that answered 500 after setting the session cookie, all land on `/`.

use tillwire_platform::area;
use tillwire_platform::auth::{NewPassword, Role, Username, Users};
use tillwire_platform::{Area, Platform, Settings, Store};
use tillwire_testkit::reqwest::{self, StatusCode, redirect};

const AREAS: &[&Area] = &[&tillwire_platform::AREA];

tillwire_testkit::both_backends!(redirects_stay_on_the_site, |db| async move {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&area::migrations(AREAS))
        .await
        .expect("migrate");
    let platform = Platform::new(store, Settings::for_database(db.url()));
    Users(&platform.store)
        .create(
            &Username::parse("anna").expect("name"),
            &NewPassword::parse("correct horse battery").expect("password"),
            Role::Operator,
        )
        .await
        .expect("user");
    let app = area::assemble(AREAS, &platform).expect("assemble");
    let (base, server) = tillwire_testkit::serve_router(app.router).await;
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    for (next, lands) in [
        ("/kitchen/", "/kitchen/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/\u{1}x", "/"),
        ("https://evil.example/", "/"),
    ] {
        let reply = client
            .post(format!("{base}/users/login/"))
            .form(&[
                ("username", "anna"),
                ("password", "correct horse battery"),
                ("next", next),
            ])
            .send()
            .await
            .expect("sign in");
        assert_eq!(reply.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(reply.headers()["location"], lands, "{next:?}");
    }
    for (referer, lands) in [
        (format!("{base}/admin/jobs/"), "/admin/jobs/"),
        (format!("{base}//evil.example/"), "/"),
        ("http://x/\\evil.example".to_owned(), "/"),
    ] {
        let reply = client
            .get(format!("{base}/lang/en"))
            .header("referer", &referer)
            .send()
            .await
            .expect("switch the language");
        assert_eq!(reply.headers()["location"], lands, "{referer}");
    }
    server.abort();
});
