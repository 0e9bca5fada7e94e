//! The collector in process, against real Set Retail register databases on PostgreSQL and a real kitchen on
//! each tillwire backend: filters, quantities, commit order, exactly once, downtime and a register going away.

mod common;

use std::time::Duration;

use tillwire_collector::config::{CashSource, Lookback, MainConfig, Overlap};
use tillwire_collector::status::Reporter;
use tillwire_collector::{
    Alerts, Collectors, Cursors, KitchenSink, Options, Parked, REGISTER_BEHIND, REGISTER_RECOVERED,
    Task,
};
use tillwire_kitchen::Kitchen;
use tillwire_platform::{Platform, read};
use tillwire_testkit::{Backend, Purchase, SetRetailDatabase, TestDatabase, eventually};
use tillwire_units::{UnitId, Units};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PIZZA: &str = "48566";
const SALAD: &str = "12356";

async fn kitchen(db: &TestDatabase) -> Kitchen {
    let platform = common::demo_platform(db, |_| {}).await;
    // Salad is sold by weight here: 0.1 kg and up counts.
    tillwire_platform::write!(&platform.store, db => sqlx::query("UPDATE wares SET catch_quantity = 0.1 WHERE code = $1")
        .bind(SALAD).execute(db).await.map(|_| ()))
    .expect("weighted salad");
    Kitchen::new(platform).expect("kitchen settings")
}

fn source(register: &SetRetailDatabase) -> CashSource {
    custom_source(register, "")
}

/// `register` with main.json's `sql` (empty: the built-in query).
fn custom_source(register: &SetRetailDatabase, sql: &str) -> CashSource {
    let json = serde_json::json!({"cashes": [{"sql_server": register.server(), "sql_database": register.database(),
        "sql_login": register.login(), "sql": sql}]});
    MainConfig::parse(&json.to_string())
        .expect("main.json")
        .cashes
        .remove(0)
}

async fn default_unit(kitchen: &Kitchen) -> UnitId {
    Units(&kitchen.platform.store)
        .default_unit()
        .await
        .expect("units")
        .expect("default unit")
        .unit_id()
}

/// Collectors for `registers`, feeding the default unit, reading `batch` sales per query.
async fn start(kitchen: &Kitchen, registers: &[&SetRetailDatabase], batch: u32) -> Collectors {
    start_sources(
        kitchen,
        registers.iter().map(|r| source(r)).collect(),
        batch,
        None,
    )
    .await
}

/// Collectors for `sources`, feeding the default unit; with `alert_after`, telling it when one is not collected.
async fn start_sources(
    kitchen: &Kitchen,
    sources: Vec<CashSource>,
    batch: u32,
    alert_after: Option<Duration>,
) -> Collectors {
    let unit = default_unit(kitchen).await;
    let options = Options {
        timer: MainConfig::parse(r#"{"timer": 0.2}"#).expect("timer").timer,
        // The test sales are in 2024.
        lookback: Lookback::hours(Some(24 * 365 * 10)),
        batch,
        zone: Some(chrono_tz::UTC),
        overlap: Overlap::default(),
    };
    let tasks = sources
        .into_iter()
        .map(|source| Task {
            key: format!("unit {}: {}", unit.0, source.name()),
            reporter: Reporter::new(&source.name(), "test"),
            sink: KitchenSink {
                kitchen: kitchen.clone(),
                unit,
            },
            cursors: Cursors(kitchen.platform.store.clone()),
            parked: Parked(kitchen.platform.store.clone()),
            leases: kitchen.platform.leases.clone(),
            options,
            source,
            alerts: alert_after.map(|after| Alerts {
                store: kitchen.platform.store.clone(),
                unit_id: unit.0,
                after,
            }),
        })
        .collect();
    Collectors::start(tasks)
}

/// `(register number, pizza count)` of every order with a pizza line, in the order the orders were created.
async fn pizzas(platform: &Platform) -> Vec<(i64, f64)> {
    read!(&platform.store, db => sqlx::query_as(
        "SELECT r.number, l.quantity FROM orders o JOIN cash_registers r ON r.id = o.cash_register_id
         JOIN order_lines l ON l.order_id = o.id AND l.code = $1 ORDER BY o.id",
    )
    .bind(PIZZA)
    .fetch_all(db)
    .await)
    .expect("orders")
}

async fn order_count(platform: &Platform) -> i64 {
    let (count,): (i64,) =
        read!(&platform.store, db => sqlx::query_as("SELECT COUNT(*) FROM orders")
        .fetch_one(db).await)
        .expect("count");
    count
}

async fn wait_for_pizzas(platform: &Platform, count: usize) -> Vec<(i64, f64)> {
    eventually(&format!("{count} pizza orders"), || async {
        pizzas(platform).await.len() >= count
    })
    .await;
    pizzas(platform).await
}

/// Waits until `register`'s task has finished a pass that found nothing new after `since_ms`.
async fn wait_idle(register: &SetRetailDatabase, since_ms: i64) {
    let state = Reporter::new(&source(register).name(), "test");
    eventually("an idle pass", || async {
        state
            .state()
            .last_success_ms
            .is_some_and(|ms| ms > since_ms)
            && state.state().backlog == 0
    })
    .await;
}

fn sale(id: i64, check: i64, commit: &str, pizzas: i64) -> Purchase {
    Purchase::sale(id, 1, check, commit, &[(PIZZA, pizzas * 1000, 1.0)])
}

tillwire_testkit::both_backends!(sales_arrive_once_in_commit_order, |db| async move {
    let kitchen = kitchen(&db).await;
    let (a, b) = (
        SetRetailDatabase::new().await,
        SetRetailDatabase::new().await,
    );
    a.open_shift(1, 1, 7, "2024-05-01 20:00:00").await;
    b.open_shift(1, 2, 3, "2024-05-01 08:00:00").await;
    let mut returned = sale(11, 2, "2024-05-01 21:00:01", 2);
    returned.operationtype = false;
    let mut cancelled = sale(12, 3, "2024-05-01 21:00:02", 3);
    cancelled.checkstatus = 2;
    let mut cash_in = sale(13, 4, "2024-05-01 21:00:03", 4);
    cash_in.cashoperation = 1;
    a.insert(&[
        sale(10, 1, "2024-05-01 21:00:00", 1),
        returned,
        cancelled,
        cash_in,
        // Weighted salad: 350 g at precision 0.001 is 0.35 kg.
        Purchase::sale(
            14,
            1,
            5,
            "2024-05-01 21:00:04",
            &[(PIZZA, 5000, 1.0), (SALAD, 350, 0.001)],
        ),
        // Committed out of id order: 16 before 15.
        sale(15, 6, "2024-05-01 21:00:09", 7),
        sale(16, 7, "2024-05-01 21:00:08", 6),
        // Two lines of one item are summed; the sale crosses midnight (shift opened the day before).
        Purchase::sale(
            17,
            1,
            8,
            "2024-05-02 00:30:00",
            &[(PIZZA, 3000, 1.0), (PIZZA, 5000, 1.0)],
        ),
    ])
    .await;
    b.insert(&[sale(1, 1, "2024-05-01 09:00:00", 9)]).await;

    let collectors = start(&kitchen, &[&a, &b], 3).await;
    let found = wait_for_pizzas(&kitchen.platform, 6).await;
    let from_a: Vec<f64> = found
        .iter()
        .filter(|(r, _)| *r == 1)
        .map(|(_, q)| *q)
        .collect();
    assert_eq!(
        from_a,
        vec![1.0, 5.0, 6.0, 7.0, 8.0],
        "sales only, in commit order"
    );
    assert!(found.contains(&(2, 9.0)));
    let salad: Vec<(f64,)> = read!(&kitchen.platform.store, db => sqlx::query_as(
        "SELECT quantity FROM order_lines WHERE code = $1").bind(SALAD).fetch_all(db).await)
    .expect("salad");
    assert_eq!(salad, vec![(0.35,)]);
    // The de-duplication key keeps ELQ's shift-open date; the order is filed under the sale's own day.
    let midnight: Vec<(String, String)> = read!(&kitchen.platform.store, db => sqlx::query_as(
        "SELECT o.business_day, i.check_date FROM orders o JOIN order_lines l ON l.order_id = o.id AND l.quantity = 8
         JOIN imported_receipts i ON i.check_id = 8 AND i.cash_number = 1")
        .fetch_all(db).await)
    .expect("midnight order");
    assert_eq!(
        midnight,
        vec![("2024-05-02".to_owned(), "2024-05-01".to_owned())]
    );

    // Restarted: the cursor says everything was delivered, nothing is sent again.
    let before = tillwire_platform::now_ms();
    collectors.stop().await;
    let collectors = start(&kitchen, &[&a, &b], 3).await;
    wait_idle(&a, before).await;
    wait_idle(&b, before).await;
    collectors.stop().await;
    assert_eq!(order_count(&kitchen.platform).await, 6);

    // Even with the cursors lost, the import's exact de-duplication is the second guard.
    for table in ["collector_cursors", "collector_delivered"] {
        tillwire_platform::write!(&kitchen.platform.store, db => sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(db).await.map(|_| ()))
        .expect("forget cursors");
    }
    let before = tillwire_platform::now_ms();
    let collectors = start(&kitchen, &[&a, &b], 3).await;
    wait_idle(&a, before).await;
    wait_idle(&b, before).await;
    collectors.stop().await;
    assert_eq!(order_count(&kitchen.platform).await, 6);
});

tillwire_testkit::both_backends!(
    ten_minutes_of_downtime_are_backfilled_in_order,
    |db| async move {
        let kitchen = kitchen(&db).await;
        let register = SetRetailDatabase::new().await;
        register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        register
            .insert(&[sale(1, 1, "2024-05-01 10:00:00", 1)])
            .await;
        let collectors = start(&kitchen, &[&register], 7).await;
        wait_for_pizzas(&kitchen.platform, 1).await;
        collectors.stop().await;

        // tillwire is down: 60 sales over 10 minutes, ids not in commit order.
        let mut sales = Vec::new();
        for n in 0..60_i64 {
            let id = 100 + (n * 37) % 60;
            let commit = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
                .and_then(|d| d.and_hms_opt(10, 1, 0))
                .expect("time")
                + chrono::TimeDelta::seconds(n * 10);
            sales.push(sale(id, id, &commit.to_string(), n + 2));
        }
        register.insert(&sales).await;

        let collectors = start(&kitchen, &[&register], 7).await;
        let found = wait_for_pizzas(&kitchen.platform, 61).await;
        let before = tillwire_platform::now_ms();
        wait_idle(&register, before).await;
        collectors.stop().await;
        let counts: Vec<f64> = pizzas(&kitchen.platform)
            .await
            .iter()
            .map(|(_, q)| *q)
            .collect();
        let expected: Vec<f64> = (1..=61).map(|n| n as f64).collect();
        assert_eq!(counts, expected, "every sale once, in commit order");
        assert_eq!(found.len(), 61);
    }
);

tillwire_testkit::both_backends!(
    a_register_that_is_down_does_not_hold_up_the_others,
    |db| async move {
        let kitchen = kitchen(&db).await;
        let (down, up) = (
            SetRetailDatabase::new().await,
            SetRetailDatabase::new().await,
        );
        down.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        up.open_shift(1, 2, 1, "2024-05-01 08:00:00").await;
        down.insert(&[sale(1, 1, "2024-05-01 10:00:00", 1)]).await;
        down.take_down().await;

        let collectors = start(&kitchen, &[&down, &up], 50).await;
        up.insert(&[sale(1, 1, "2024-05-01 10:00:00", 2)]).await;
        let found = wait_for_pizzas(&kitchen.platform, 1).await;
        assert_eq!(found, vec![(2, 2.0)]);
        up.insert(&[sale(2, 2, "2024-05-01 10:05:00", 3)]).await;
        wait_for_pizzas(&kitchen.platform, 2).await;
        let state = Reporter::new(&source(&down).name(), "test").state();
        assert!(
            state.last_error.is_some(),
            "the admin page shows why: {state:?}"
        );

        down.bring_up().await;
        down.insert(&[sale(2, 2, "2024-05-01 10:06:00", 4)]).await;
        let found = wait_for_pizzas(&kitchen.platform, 4).await;
        collectors.stop().await;
        let from_down: Vec<f64> = found
            .iter()
            .filter(|(r, _)| *r == 1)
            .map(|(_, q)| *q)
            .collect();
        assert_eq!(from_down, vec![1.0, 4.0], "caught up, in order");
        assert_eq!(order_count(&kitchen.platform).await, 4);
    }
);

/// ELQ's main.sql as spec §5 describes it: six columns read by position, the quantity named `ware_amount`,
/// summed per receipt and item, no ORDER BY and no cursor columns.
const ELQ_SQL: &str = "SELECT s.cashnum AS cash_id, s.numshift AS shift_id, p.numberfield AS check_id,
        to_char(s.shiftopen, 'YYYY-MM-DD') AS check_date, pos.item AS ware,
        SUM(CASE WHEN pos.precision < 1 THEN pos.qnty * pos.precision ELSE pos.qnty / 1000.0 END) AS ware_amount
    FROM ch_shift s JOIN ch_purchase p ON p.id_shift = s.id JOIN ch_position pos ON pos.id_purchase = p.id
    WHERE p.datecommit > timestamp '2024-05-01' -- ELQ: the last 3 minutes; the test sales are in 2024
      AND p.cashoperation = 0 AND p.operationtype = true AND p.checkstatus = 0
    GROUP BY s.cashnum, s.numshift, p.numberfield, s.shiftopen, pos.item";

tillwire_testkit::both_backends!(elq_custom_sql_is_read_by_position, |db| async move {
    let kitchen = kitchen(&db).await;
    let register = SetRetailDatabase::new().await;
    register.open_shift(1, 3, 2, "2024-05-01 08:00:00").await;
    let mut returned = sale(2, 2, "2024-05-01 10:00:02", 9);
    returned.operationtype = false;
    register
        .insert(&[
            sale(1, 1, "2024-05-01 10:00:01", 2),
            returned,
            Purchase::sale(
                3,
                1,
                3,
                "2024-05-01 10:00:03",
                &[(PIZZA, 1000, 1.0), (PIZZA, 3000, 1.0), (SALAD, 350, 0.001)],
            ),
        ])
        .await;
    let collectors =
        start_sources(&kitchen, vec![custom_source(&register, ELQ_SQL)], 50, None).await;
    let mut found = wait_for_pizzas(&kitchen.platform, 2).await;
    // Without cursor columns every pass re-sends the window, as ELQ did; de-duplication keeps one order each.
    let before = tillwire_platform::now_ms();
    wait_idle(&register, before).await;
    let before = tillwire_platform::now_ms();
    wait_idle(&register, before).await;
    collectors.stop().await;
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(
        found,
        vec![(3, 2.0), (3, 4.0)],
        "quantities by position, summed per item"
    );
    assert_eq!(order_count(&kitchen.platform).await, 2);
    let salad: Vec<(f64,)> = read!(&kitchen.platform.store, db => sqlx::query_as(
        "SELECT quantity FROM order_lines WHERE code = $1").bind(SALAD).fetch_all(db).await)
    .expect("salad");
    assert_eq!(salad, vec![(0.35,)]);
});

tillwire_testkit::both_backends!(
    a_custom_sql_without_a_quantity_fails_loudly_and_keeps_the_cursor,
    |db| async move {
        let kitchen = kitchen(&db).await;
        let register = SetRetailDatabase::new().await;
        register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        register
            .insert(&[sale(1, 1, "2024-05-01 10:00:00", 1)])
            .await;
        // Five of ELQ's columns, then the cursor's: the sixth is a time, not a quantity.
        let sql = "SELECT s.cashnum AS cash_id, s.numshift AS shift_id, p.numberfield AS check_id,
                to_char(s.shiftopen, 'YYYY-MM-DD') AS check_date, pos.item AS ware, p.datecommit, p.id AS purchase_id
            FROM ch_shift s JOIN ch_purchase p ON p.id_shift = s.id JOIN ch_position pos ON pos.id_purchase = p.id";
        let source = custom_source(&register, sql);
        let state = Reporter::new(&source.name(), "test");
        let collectors = start_sources(&kitchen, vec![source], 50, None).await;
        eventually("the error on the admin page", || async {
            state
                .state()
                .last_error
                .is_some_and(|e| e.contains("no usable quantity (column 6 `datecommit`)"))
        })
        .await;
        collectors.stop().await;
        assert_eq!(order_count(&kitchen.platform).await, 0);
        let (cursors,): (i64,) = read!(&kitchen.platform.store, db => sqlx::query_as(
            "SELECT COUNT(*) FROM collector_cursors").fetch_one(db).await)
        .expect("cursors");
        assert_eq!(cursors, 0, "nothing was read, so the cursor did not move");
    }
);

/// The cursor stored for `register` (in-process key), as `commit #purchase`.
async fn stored_cursor(kitchen: &Kitchen, register: &SetRetailDatabase) -> Option<String> {
    let key = format!(
        "unit {}: {}",
        default_unit(kitchen).await.0,
        source(register).name()
    );
    Cursors(kitchen.platform.store.clone())
        .load(&key)
        .await
        .expect("cursor")
        .map(|cursor| cursor.to_string())
}

/// The pizza counts of the orders, sorted (sales found behind the cursor arrive after the newer ones).
async fn sorted_counts(platform: &Platform) -> Vec<f64> {
    let mut counts: Vec<f64> = pizzas(platform).await.iter().map(|(_, q)| *q).collect();
    counts.sort_by(f64::total_cmp);
    counts
}

tillwire_testkit::both_backends!(
    a_register_clock_stepping_back_loses_nothing_and_repeats_nothing,
    |db| async move {
        let kitchen = kitchen(&db).await;
        let register = SetRetailDatabase::new().await;
        register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        register
            .insert(&[
                sale(1, 1, "2024-05-01 10:00:00", 1),
                sale(2, 2, "2024-05-01 10:01:00", 2),
                sale(3, 3, "2024-05-01 10:02:00", 3),
            ])
            .await;
        let collectors = start(&kitchen, &[&register], 50).await;
        wait_for_pizzas(&kitchen.platform, 3).await;

        // The register's clock steps back 5 minutes mid-shift: the next sales are stamped before the cursor.
        // One sale later the clock is ahead of the cursor again.
        register
            .insert(&[
                sale(4, 4, "2024-05-01 09:57:30", 4),
                sale(5, 5, "2024-05-01 09:58:00", 5),
                sale(6, 6, "2024-05-01 10:03:00", 6),
            ])
            .await;
        wait_for_pizzas(&kitchen.platform, 6).await;
        // Several more passes re-read the window: nothing is sent twice.
        for _ in 0..3 {
            wait_idle(&register, tillwire_platform::now_ms()).await;
        }
        collectors.stop().await;
        assert_eq!(
            sorted_counts(&kitchen.platform).await,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "every sale once"
        );
        assert_eq!(order_count(&kitchen.platform).await, 6);
        assert_eq!(
            stored_cursor(&kitchen, &register).await.as_deref(),
            Some("2024-05-01 10:03:00.000 #6"),
            "the cursor never moved back"
        );

        // A restart re-reads the window from the stored deliveries: still nothing twice.
        let collectors = start(&kitchen, &[&register], 50).await;
        wait_idle(&register, tillwire_platform::now_ms()).await;
        wait_idle(&register, tillwire_platform::now_ms()).await;
        collectors.stop().await;
        assert_eq!(order_count(&kitchen.platform).await, 6);
    }
);

tillwire_testkit::both_backends!(
    a_sale_committed_late_behind_a_newer_one_is_delivered,
    |db| async move {
        let kitchen = kitchen(&db).await;
        let register = SetRetailDatabase::new().await;
        register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        register
            .insert(&[
                sale(1, 1, "2024-05-01 10:00:00", 1),
                sale(3, 3, "2024-05-01 10:00:10", 3),
            ])
            .await;
        let collectors = start(&kitchen, &[&register], 50).await;
        wait_for_pizzas(&kitchen.platform, 2).await;
        wait_idle(&register, tillwire_platform::now_ms()).await;
        // Stamped 10:00:05 when it began, visible only now: the cursor is already at 10:00:10.
        register
            .insert(&[sale(2, 2, "2024-05-01 10:00:05", 2)])
            .await;
        wait_for_pizzas(&kitchen.platform, 3).await;
        for _ in 0..2 {
            wait_idle(&register, tillwire_platform::now_ms()).await;
        }
        collectors.stop().await;
        assert_eq!(sorted_counts(&kitchen.platform).await, vec![1.0, 2.0, 3.0]);
        assert_eq!(
            stored_cursor(&kitchen, &register).await.as_deref(),
            Some("2024-05-01 10:00:10.000 #3")
        );
    }
);

/// What the relay in front of a register does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Relay,
    /// Accepts connections and never answers; stops relaying on the ones already open (sockets stay open, bytes
    /// go nowhere): a cut cable.
    Swallow,
    /// Closes every connection at once: a register switched off.
    Refuse,
}

/// A loopback TCP relay to a register database that can turn into a black hole or refuse.
struct BlackHole {
    port: u16,
    mode: watch::Sender<Mode>,
}

impl BlackHole {
    async fn to(register: &SetRetailDatabase) -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (mode, watching) = watch::channel(Mode::Relay);
        let target = register.server();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (watching, target) = (watching.clone(), target.clone());
                tokio::spawn(async move {
                    let mode = *watching.borrow();
                    match mode {
                        Mode::Swallow => return std::future::pending::<()>().await,
                        Mode::Refuse => return,
                        Mode::Relay => {}
                    }
                    let server = TcpStream::connect(target).await.expect("the register");
                    let (client_in, client_out) = client.into_split();
                    let (server_in, server_out) = server.into_split();
                    tokio::join!(
                        relay(client_in, server_out, watching.clone()),
                        relay(server_in, client_out, watching)
                    );
                });
            }
        });
        BlackHole { port, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // Both directions end, so both sockets close.
            _ = mode.wait_for(|mode| *mode == Mode::Refuse) => return,
        };
        let Ok(read @ 1..) = read else { return };
        let swallowing = *mode.borrow() == Mode::Swallow;
        if swallowing {
            // Hold both sockets open forever, answering nothing.
            return std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Needs no second backend: what is tested is the register's connection, not tillwire's storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_black_holed_register_times_out_and_the_others_keep_flowing() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let kitchen = kitchen(&db).await;
    let (far, near) = (
        SetRetailDatabase::new().await,
        SetRetailDatabase::new().await,
    );
    far.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
    near.open_shift(1, 2, 1, "2024-05-01 08:00:00").await;
    far.insert(&[sale(1, 1, "2024-05-01 10:00:00", 1)]).await;
    near.insert(&[sale(1, 1, "2024-05-01 10:00:00", 2)]).await;
    let hole = BlackHole::to(&far).await;
    let mut through_hole = source(&far);
    through_hole.port = hole.port;
    let far_state = Reporter::new(&through_hole.name(), "test");
    let collectors = start_sources(&kitchen, vec![through_hole, source(&near)], 50, None).await;
    wait_for_pizzas(&kitchen.platform, 2).await;

    // The far register goes silent while its collector holds an open connection.
    hole.set(Mode::Swallow);
    far.insert(&[sale(2, 2, "2024-05-01 10:01:00", 3)]).await;
    near.insert(&[sale(2, 2, "2024-05-01 10:01:00", 4)]).await;
    let found = wait_for_pizzas(&kitchen.platform, 3).await;
    assert_eq!(
        found.last(),
        Some(&(2, 4.0)),
        "the near register kept flowing"
    );
    eventually("the far register's timeout", || async {
        far_state
            .state()
            .last_error
            .is_some_and(|e| e.contains("no answer within"))
    })
    .await;

    hole.set(Mode::Relay);
    let found = wait_for_pizzas(&kitchen.platform, 4).await;
    collectors.stop().await;
    let from_far: Vec<f64> = found
        .iter()
        .filter(|(r, _)| *r == 1)
        .map(|(_, q)| *q)
        .collect();
    assert_eq!(
        from_far,
        vec![1.0, 3.0],
        "caught up once the register answered"
    );
    assert_eq!(order_count(&kitchen.platform).await, 4);
}

/// The collector's alerts as stored: kind, unit and payload, in order.
async fn alert_events(platform: &Platform) -> Vec<(String, Option<i64>, serde_json::Value)> {
    let rows: Vec<(String, Option<i64>, String)> = read!(&platform.store, db => sqlx::query_as(
        "SELECT kind, unit_id, payload FROM domain_events WHERE kind LIKE 'collector.%' ORDER BY id",
    )
    .fetch_all(db)
    .await)
    .expect("events");
    rows.into_iter()
        .map(|(kind, unit, payload)| (kind, unit, serde_json::from_str(&payload).expect("payload")))
        .collect()
}

tillwire_testkit::both_backends!(
    a_register_not_collected_for_a_while_is_told_once_and_its_recovery_too,
    |db| async move {
        let kitchen = kitchen(&db).await;
        let unit = default_unit(&kitchen).await;
        let register = SetRetailDatabase::new().await;
        register.open_shift(1, 1, 1, "2024-05-01 08:00:00").await;
        register
            .insert(&[sale(1, 1, "2024-05-01 10:00:00", 1)])
            .await;
        let hole = BlackHole::to(&register).await;
        let mut through_hole = source(&register);
        through_hole.port = hole.port;
        let name = through_hole.name();
        let collectors = start_sources(
            &kitchen,
            vec![through_hole],
            50,
            Some(Duration::from_secs(1)),
        )
        .await;
        wait_for_pizzas(&kitchen.platform, 1).await;
        assert!(
            alert_events(&kitchen.platform).await.is_empty(),
            "all well: no alert"
        );

        hole.set(Mode::Refuse);
        eventually("the alert", || async {
            !alert_events(&kitchen.platform).await.is_empty()
        })
        .await;
        // Failing on, it is not told again.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let alerts = alert_events(&kitchen.platform).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].0, REGISTER_BEHIND);
        assert_eq!(alerts[0].1, Some(unit.0));
        assert_eq!(alerts[0].2["register"], name.as_str());
        assert!(!alerts[0].2["error"].as_str().unwrap_or_default().is_empty());

        hole.set(Mode::Relay);
        register
            .insert(&[sale(2, 2, "2024-05-01 10:01:00", 2)])
            .await;
        wait_for_pizzas(&kitchen.platform, 2).await;
        eventually("the recovery", || async {
            alert_events(&kitchen.platform).await.len() == 2
        })
        .await;
        collectors.stop().await;
        let alerts = alert_events(&kitchen.platform).await;
        assert_eq!(alerts[1].0, REGISTER_RECOVERED);
        assert_eq!(alerts[1].2["register"], name.as_str());
        assert!(
            alerts[1].2["duration_ms"].as_i64().unwrap_or_default() >= 1_000,
            "{alerts:?}"
        );
        assert_eq!(alerts.len(), 2, "{alerts:?}");
    }
);
