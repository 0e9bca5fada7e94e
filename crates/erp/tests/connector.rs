//! The connectors against the ERP simulators in a real headless Chromium: a line added and read back, a replay
//! that adds nothing, one login for many lines, each fault with its reason, and the scripts. What the ERP holds is
//! checked in the simulator, not only in what the connector answers.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tillwire_erp::connector::{BrowserConfig, Connector, ErpLocators, Failure, Script};
use tillwire_erp::model::{Amount, Credentials, ErpType, LineOrder, OrderRef, Reason};
use tillwire_erp::sim::{DEFAULT_PASSWORD, DEFAULT_USERNAME, ErpSim, Line};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Chromium is heavy on a small machine: two at a time keeps every test's waits honest.
static BROWSERS: Semaphore = Semaphore::const_new(2);

async fn browser_slot() -> SemaphorePermit<'static> {
    BROWSERS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

fn credentials() -> Credentials {
    Credentials {
        username: DEFAULT_USERNAME.to_owned(),
        password: DEFAULT_PASSWORD.to_owned(),
    }
}

fn order(id: &str, case: &str, item: &str, amount: u32) -> LineOrder {
    LineOrder {
        unique_id: OrderRef::parse(id).expect("an order id"),
        case_nr: OrderRef::parse(case).expect("a case number"),
        product_nr: OrderRef::parse(item).expect("an item number"),
        amount: Amount::new(amount).expect("an amount"),
    }
}

/// The line the ERP should hold for `order`: the catalogue's name followed by the ERP's marker (spec §3.3).
fn expected(sim: &ErpSim, order: &LineOrder) -> Line {
    let item = order.product_nr.as_str();
    let product = sim
        .catalogue()
        .into_iter()
        .find(|product| product.item == item)
        .expect("an item the catalogue knows");
    let name = format!("{}{}", product.name, sim.kind().marker(&order.unique_id));
    Line::new(item, &name, &order.amount.to_string())
}

async fn serve(erp: ErpType) -> (ErpSim, String) {
    let sim = ErpSim::new(erp);
    let base = sim.serve_on_loopback().await.expect("serve the simulator");
    (sim, base)
}

fn connector(erp: ErpType, base: &str, script: Script) -> Connector {
    Connector::new(erp, base.to_owned(), script, BrowserConfig::default())
}

fn reason(result: Result<impl std::fmt::Debug, Failure>) -> (Reason, Failure) {
    let failure = result.expect_err("the task should fail");
    (failure.reason, failure)
}

/// Evidence from the page the failure happened on: a PNG and the DOM.
fn assert_evidence(failure: &Failure, dom_holds: &str) {
    let evidence = failure
        .evidence
        .as_ref()
        .unwrap_or_else(|| panic!("no evidence for {failure}"));
    assert!(
        evidence.screenshot_png.starts_with(b"\x89PNG"),
        "{evidence:?}"
    );
    assert!(
        evidence.dom.contains(dom_holds),
        "{evidence:?}: {}",
        evidence.dom
    );
    assert!(!evidence.step.is_empty());
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Adds, verifies and replays; several lines on one login, on cases of the overview's pages 1, 2 and 3.
async fn lines_are_added_once_on_one_login(erp: ErpType) {
    let _slot = browser_slot().await;
    let (sim, base) = serve(erp).await;
    let mut connector = connector(erp, &base, Script::default_for(erp));

    // 1042 is the 42nd case: page 3 of AD Manager's overview of 20 a page.
    let first = order("7001", "1042", "20", 4);
    let started = Instant::now();
    let added = connector.add_line(&credentials(), &first).await;
    let cold = started.elapsed();
    assert!(!added.expect("the first line").already_present);
    assert_eq!(sim.lines("1042"), vec![expected(&sim, &first)]);

    // A replay after a crash: the marker is found, nothing is typed.
    let replayed = connector.add_line(&credentials(), &first).await;
    assert!(replayed.expect("the replay").already_present);
    assert_eq!(sim.lines("1042"), vec![expected(&sim, &first)]);

    // A line with the order's marker that was there before tillwire ever saw the order.
    let seeded = order("7002", "1025", "10", 2);
    sim.seed_line("1025", expected(&sim, &seeded));
    let found = connector.add_line(&credentials(), &seeded).await;
    assert!(found.expect("the seeded line").already_present);
    assert_eq!(sim.lines("1025"), vec![expected(&sim, &seeded)]);

    // A line with the marker but not the order's amount (a crash between saving the name and the amount) is not
    // taken for the order's, and no second line is added.
    let half = order("7003", "1010", "10", 3);
    let mut saved_half = expected(&sim, &half);
    saved_half.amount = "1".into();
    sim.seed_line("1010", saved_half.clone());
    let refused = connector
        .add_line(&credentials(), &half)
        .await
        .expect_err("a half-saved line");
    assert_eq!(refused.reason, Reason::VerifyFailed, "{}", refused.message);
    assert!(
        refused.message.contains("put it right"),
        "{}",
        refused.message
    );
    assert_eq!(sim.lines("1010"), vec![saved_half.clone()]);

    // More lines on the same login, among other lines (case 1025 holds the seeded one), timed.
    let mut warm = Vec::new();
    for (n, case) in ["1001", "1025", "1001", "1010", "1042"]
        .into_iter()
        .enumerate()
    {
        let next = order(
            &format!("71{n:02}"),
            case,
            ["10", "11", "30"][n % 3],
            n as u32 + 1,
        );
        let before = sim.lines(case);
        let started = Instant::now();
        let added = connector.add_line(&credentials(), &next).await;
        warm.push(started.elapsed());
        assert!(!added.expect("a later line").already_present);
        let mut wanted = before;
        wanted.push(expected(&sim, &next));
        assert_eq!(sim.lines(case), wanted, "case {case}");
    }
    assert_eq!(sim.sessions_opened(), 1, "one login for every line");
    // Reported, never asserted: the bar (2 s a line) is measured by `tillwire-bench erp`.
    let median = median(warm.clone());
    eprintln!(
        "{erp}: first line (browser start and login) {cold:?}; later lines {warm:?}, median {median:?}"
    );
    assert_eq!(sim.dropped_saves(), 0);
    connector.close().await;
}

/// The session ends mid-task: AD Manager at the save (the ENTER lands on the login page), Au2Office at the reload
/// after its item number stored an unmarked line, which the second login carries on from.
fn session_requests(erp: ErpType) -> u32 {
    match erp {
        // First task: start page, overview, case, item lookup, save, reloaded case (6); then the start page and
        // overview of the second task, and its case page is the 9th request.
        ErpType::AdManager => 10,
        // First task: start page, customer management, its list, case, item, reload, two edits, reload (9); the
        // second task's item number is the 14th request and its reload the 15th.
        ErpType::Au2Office => 14,
    }
}

/// Every fault with its reason, on one connector that carries on after each.
async fn faults_have_their_reasons(erp: ErpType) {
    let _slot = browser_slot().await;
    let (sim, base) = serve(erp).await;
    let mut connector = connector(erp, &base, Script::default_for(erp));

    let wrong = Credentials {
        username: DEFAULT_USERNAME.to_owned(),
        password: "not-the-Password-42".to_owned(),
    };
    let (why, failure) = reason(
        connector
            .add_line(&wrong, &order("7201", "1001", "10", 1))
            .await,
    );
    assert_eq!(why, Reason::LoginFailed, "{failure}");
    assert_evidence(&failure, "password");
    let shown = format!(
        "{failure} {failure:?} {}",
        failure.evidence.as_ref().map_or("", |e| e.dom.as_str())
    );
    assert!(
        !shown.contains(&wrong.password),
        "the password leaked: {shown}"
    );

    let (why, failure) = reason(
        connector
            .add_line(&credentials(), &order("7202", "9999", "10", 1))
            .await,
    );
    assert_eq!(why, Reason::CaseNotFound, "{failure}");
    assert!(failure.message.contains("9999"), "{failure}");
    assert_evidence(&failure, "Arbejdskort");

    let (why, failure) = reason(
        connector
            .add_line(&credentials(), &order("7203", "1001", "999", 1))
            .await,
    );
    assert_eq!(why, Reason::ProductEntryFailed, "{failure}");
    assert!(
        failure.message.contains("findes ikke"),
        "the ERP's words: {failure}"
    );
    assert_evidence(&failure, "findes ikke");
    assert!(sim.all_lines().is_empty(), "{:?}", sim.all_lines());

    let dropped = order("7204", "1001", "11", 3);
    sim.set_drop_saves(true);
    let (why, failure) = reason(connector.add_line(&credentials(), &dropped).await);
    assert_eq!(why, Reason::VerifyFailed, "{failure}");
    assert_eq!(sim.dropped_saves(), 1);
    assert!(sim.all_lines().is_empty(), "{:?}", sim.all_lines());
    sim.set_drop_saves(false);
    let retried = connector.add_line(&credentials(), &dropped).await;
    assert!(!retried.expect("the retry").already_present);
    assert_eq!(sim.lines("1001"), vec![expected(&sim, &dropped)]);
    assert_eq!(sim.sessions_opened(), 1, "the failures kept the session");

    // A fresh session for a count from its login.
    connector.close().await;
    sim.expire_sessions_after(Some(session_requests(erp)));
    let one = order("7205", "1002", "10", 2);
    let two = order("7206", "1003", "20", 5);
    connector
        .add_line(&credentials(), &one)
        .await
        .expect("the first line of the session");
    connector
        .add_line(&credentials(), &two)
        .await
        .expect("a line through a new login");
    assert_eq!(sim.lines("1002"), vec![expected(&sim, &one)]);
    assert_eq!(sim.lines("1003"), vec![expected(&sim, &two)]);
    assert_eq!(sim.sessions_opened(), 3, "one login more, mid-task");
    connector.close().await;
}

/// Pages slower than the script's short step timeout time out; the browser is closed, and the next task starts
/// clean. The page timeout stays long: a freshly started Chromium's first page can take seconds on a busy machine.
async fn slow_pages_time_out(erp: ErpType) {
    let _slot = browser_slot().await;
    let (sim, base) = serve(erp).await;
    let mut script = Script::default_for(erp);
    script.waits.step_timeout_ms = 1_000;
    let mut connector = connector(erp, &base, script);
    // Pages still load within the page timeout; the ERP's own requests (AD Manager's item lookup, Au2Office's list
    // of cases) are awaited by a step, which runs out.
    sim.set_page_delay(Duration::from_millis(2_000));
    let slow = order("7301", "1001", "10", 1);
    let (why, failure) = reason(connector.add_line(&credentials(), &slow).await);
    assert_eq!(why, Reason::Timeout, "{failure}");
    assert!(failure.message.contains("1000 ms"), "{failure}");
    assert!(sim.all_lines().is_empty());

    sim.set_page_delay(Duration::ZERO);
    connector
        .add_line(&credentials(), &slow)
        .await
        .expect("the same order once pages are quick");
    assert_eq!(sim.lines("1001"), vec![expected(&sim, &slow)]);
    assert_eq!(sim.sessions_opened(), 2, "a new browser, a new login");
    connector.close().await;
}

/// A port nobody listens on: Chromium's connection refused.
async fn an_unreachable_erp(erp: ErpType) {
    let _slot = browser_slot().await;
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a port");
    let base = format!("http://{}", closed.local_addr().expect("its address"));
    drop(closed);
    let mut connector = connector(erp, &base, Script::default_for(erp));
    let (why, failure) = reason(
        connector
            .add_line(&credentials(), &order("7401", "1001", "10", 1))
            .await,
    );
    assert_eq!(why, Reason::ErpUnreachable, "{failure}");
    connector.close().await;
}

async fn a_missing_chromedriver(erp: ErpType) {
    let browser = BrowserConfig {
        chromedriver: PathBuf::from("/nonexistent/chromedriver"),
        ..BrowserConfig::default()
    };
    let mut connector = Connector::new(
        erp,
        "http://127.0.0.1:9".to_owned(),
        Script::default_for(erp),
        browser,
    );
    let (why, failure) = reason(
        connector
            .add_line(&credentials(), &order("7501", "1001", "10", 1))
            .await,
    );
    assert_eq!(why, Reason::BrowserStartFailed, "{failure}");
    assert!(
        failure.message.contains("/nonexistent/chromedriver"),
        "{failure}"
    );
    assert!(failure.evidence.is_none());
}

macro_rules! for_both_erps {
    ($($test:ident),* $(,)?) => {
        mod admanager {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::ErpType::AdManager).await
                }
            )*
        }
        mod au2office {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::ErpType::Au2Office).await
                }
            )*
        }
    };
}

for_both_erps!(
    lines_are_added_once_on_one_login,
    faults_have_their_reasons,
    slow_pages_time_out,
    an_unreachable_erp,
    a_missing_chromedriver,
);

#[test]
fn the_default_scripts_are_valid_and_round_trip_as_json() {
    for erp in ErpType::ALL {
        let script = Script::default_for(erp);
        assert_eq!(script.erp(), erp);
        assert_eq!(script.validate(), Ok(()));
        let json = script.to_json_pretty();
        assert_eq!(Script::from_json(&json), Ok(script), "{json}");
    }
}

#[test]
fn a_broken_script_lists_every_problem() {
    let mut script = Script::default_for(ErpType::Au2Office);
    script.waits.step_timeout_ms = 50;
    script.waits.page_timeout_ms = 600_000;
    script.login.submit = " ".to_owned();
    script.lines.name = "//div[@col-id='productname']".to_owned();
    let ErpLocators::Au2Office(at) = &mut script.erp else {
        unreachable!("an Au2Office script")
    };
    at.case_link = "//span[@class='font-bold']".to_owned();
    at.error = ".toast[role='alert'".to_owned();
    at.tabs_to_amount = 0;
    let problems = script.validate().expect_err("a broken script");
    for named in [
        "waits.step_timeout_ms",
        "waits.page_timeout_ms",
        "waits.poll_ms (50) must be shorter",
        "login.submit is empty",
        "lines.name is an XPath from the top of the page",
        "erp.au2office.case_link has no {case}",
        "erp.au2office.error",
        "erp.au2office.tabs_to_amount",
    ] {
        assert!(
            problems.iter().any(|problem| problem.contains(named)),
            "{named} not among {problems:#?}"
        );
    }
    assert_eq!(problems.len(), 8, "{problems:#?}");

    let json = script.to_json_pretty();
    assert_eq!(Script::from_json(&json), Err(problems));
    let unknown = Script::from_json(r#"{"waits": {"step_timeout_ms": 1000, "page_timeout_ms": 1000, "poll_ms": 50, "sleep_ms": 1}}"#)
        .expect_err("an unknown field");
    assert!(unknown[0].contains("sleep_ms"), "{unknown:?}");
}

#[test]
fn a_task_can_run_on_any_tokio_worker() {
    fn is_send<T: Send>(_: &T) {}
    let mut connector = Connector::new(
        ErpType::AdManager,
        "http://127.0.0.1:9".to_owned(),
        Script::default_for(ErpType::AdManager),
        BrowserConfig::default(),
    );
    let order = order("7601", "1001", "10", 1);
    let credentials = credentials();
    is_send(&connector.add_line(&credentials, &order));
}
