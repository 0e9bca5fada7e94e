//! What the erp area's tests share: a migrated platform with the areas the ERP bridge needs.

use tillwire_platform::{Area, Platform, Settings, Store, area};
use tillwire_testkit::TestDatabase;

pub const AREAS: [&Area; 3] = [
    &tillwire_platform::AREA,
    &tillwire_units::AREA,
    &tillwire_erp::AREA,
];

/// A platform on `db` with the default unit, its data directory (where the secret key is made) a fresh one;
/// `configure` sets what a test needs before it starts.
pub async fn platform(
    db: &TestDatabase,
    configure: impl FnOnce(&mut Settings),
) -> (Platform, tempfile::TempDir) {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&area::migrations(&AREAS))
        .await
        .expect("migrate");
    let data = tempfile::tempdir().expect("data dir");
    let mut settings = Settings::for_database(db.url());
    settings.data_dir = data.path().to_owned();
    configure(&mut settings);
    let platform = Platform::new(store, settings);
    tillwire_units::Units(&platform.store)
        .ensure_default("Главный")
        .await
        .expect("the default unit");
    (platform, data)
}
