//! What the platform's tests share: a store on the test database with the platform's schema.

use tillwire_platform::Store;
use tillwire_testkit::TestDatabase;

/// Connects to `db` and applies the platform's migrations.
pub async fn open(db: &TestDatabase) -> Store {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&[tillwire_platform::MIGRATIONS])
        .await
        .expect("migrate");
    store
}
