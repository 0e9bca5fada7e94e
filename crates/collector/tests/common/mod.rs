//! What the collector's tests share: a kitchen platform on a fresh database, seeded with ELQ's demo wares.

use tillwire_platform::{Platform, Settings, Store};
use tillwire_testkit::TestDatabase;

/// Migrated for every area the collector touches, seeded with the demo wares, in UTC with the business day
/// starting at midnight (so test dates file where they read); `adjust` sets anything else first.
pub async fn demo_platform(db: &TestDatabase, adjust: impl FnOnce(&mut Settings)) -> Platform {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&[
            tillwire_platform::MIGRATIONS,
            tillwire_units::MIGRATIONS,
            tillwire_kitchen::MIGRATIONS,
            tillwire_collector::MIGRATIONS,
        ])
        .await
        .expect("migrate");
    let mut settings = Settings::for_database(db.url());
    settings.timezone = Some(chrono_tz::UTC);
    settings.set("kitchen.day_rollover_hour", 0);
    adjust(&mut settings);
    let platform = Platform::new(store, settings);
    tillwire_kitchen::seed::init(&platform).await.expect("seed");
    tillwire_kitchen::seed::load_demo(&platform)
        .await
        .expect("demo wares");
    platform
}
