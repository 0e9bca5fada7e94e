//! The kitchen and the print worker in process, on a real database; printers are real sockets on loopback.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tillwire_kitchen::Kitchen;
use tillwire_kitchen::ReceiptKey;
use tillwire_kitchen::import::{ImportOutcome, Receipt};
use tillwire_kitchen::model::{OrderView, Quantity};
use tillwire_platform::jobs::JobRegistry;
use tillwire_platform::{Platform, Settings, Store, read, write};
use tillwire_printing::Printing;
use tillwire_testkit::TestDatabase;
use tillwire_units::{UnitId, Units};

pub const PIZZA: &str = "48566"; // Пиццерия, "Пицца 4 сыра"
pub const WOK_SAUCE: &str = "51356"; // Вок, "Вок остр. пр. соус"
pub const WOK_BUCKWHEAT: &str = "51358"; // Вок, "Вок остр. греча"
pub const SALAD: &str = "12356"; // Салаты, "Салат оливье"

pub struct App {
    pub platform: Platform,
    pub kitchen: Kitchen,
    pub unit: UnitId,
    worker: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

pub async fn start(db: &TestDatabase, configure: impl FnOnce(&mut Settings)) -> App {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&[
            tillwire_platform::MIGRATIONS,
            tillwire_units::MIGRATIONS,
            tillwire_kitchen::MIGRATIONS,
            tillwire_printing::MIGRATIONS,
        ])
        .await
        .expect("migrate");
    let mut settings = Settings::for_database(db.url());
    configure(&mut settings);
    let platform = Platform::new(store, settings);
    tillwire_kitchen::seed::init(&platform).await.expect("seed");
    tillwire_kitchen::seed::load_demo(&platform)
        .await
        .expect("demo wares");
    let kitchen = Kitchen::new(platform.clone()).expect("kitchen settings");
    let mut registry = JobRegistry::default();
    Printing::new(kitchen.clone())
        .expect("print settings")
        .register_jobs(&mut registry);
    let worker = tokio::spawn(platform.jobs.clone().run(
        Arc::new(registry),
        4,
        std::future::pending(),
    ));
    let unit = Units(&platform.store)
        .default_unit()
        .await
        .unwrap()
        .unwrap()
        .unit_id();
    App {
        platform,
        kitchen,
        unit,
        worker,
    }
}

impl App {
    /// Points the seeded printer (registers 1–5 print on it) at `address`.
    pub async fn set_printer_address(&self, address: &str) -> i64 {
        let (id,): (i64,) = write!(&self.platform.store, db => sqlx::query_as(
            "UPDATE printers SET address = $1 RETURNING id",
        )
        .bind(address)
        .fetch_one(db)
        .await)
        .expect("set the printer's address");
        id
    }

    pub async fn import(&self, cash: i64, check: i64, wares: &[(&str, f64)]) -> OrderView {
        let key = ReceiptKey {
            unit: self.unit,
            cash_number: cash,
            shift_id: 1,
            check_date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            check_id: check,
        };
        let context = self
            .kitchen
            .receipt_context(self.unit, cash, Some(&key))
            .await
            .expect("context")
            .expect("a known register");
        let receipt = Receipt {
            business_day: key.check_date,
            key,
            lines: wares
                .iter()
                .map(|(code, count)| ((*code).to_owned(), Quantity::parse(*count).unwrap()))
                .collect(),
        };
        match self
            .kitchen
            .import_receipt(&receipt, &context)
            .await
            .expect("import")
        {
            ImportOutcome::Registered(r) => self.kitchen.order_view(r.order_id).await.unwrap(),
            other => panic!("not registered: {other:?}"),
        }
    }

    pub async fn exec(&self, sql: &'static str) {
        write!(&self.platform.store, db => sqlx::query(sql).execute(db).await.map(|_| ()))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        let (n,): (i64,) =
            read!(&self.platform.store, db => sqlx::query_as(sql).fetch_one(db).await)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        n
    }
}

/// Polls `probe` until it gives `Some`; the limit only bounds a broken system.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
