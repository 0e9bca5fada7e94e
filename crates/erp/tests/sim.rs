//! The ERP simulators in a real headless Chromium, driven the way oilmat-erp's scripts drive the real ERPs
//! (spec `oilmat.md` §3.1 and §3.2: the same URLs, locators, TAB/ENTER and name suffix), with explicit waits
//! where the scripts slept; then each fault, seen from the browser.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tillwire_erp::sim::{DEFAULT_PASSWORD, DEFAULT_USERNAME, ErpSim, ErpType, Faults, Line};
use tillwire_testkit::Browser;
use tillwire_testkit::reqwest::{self, Method};
use tillwire_testkit::thirtyfour::common::command::{Command, ExtensionCommand};
use tillwire_testkit::thirtyfour::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

/// Polls `probe` until it succeeds; panics with its last complaint after [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {WAIT:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The first element `by` finds, once there is one.
async fn wait_for(driver: &WebDriver, by: By) -> WebElement {
    eventually(&format!("an element {by:?}"), || async {
        driver.find(by.clone()).await.map_err(|e| e.to_string())
    })
    .await
}

async fn path(driver: &WebDriver) -> String {
    driver
        .current_url()
        .await
        .expect("the current URL")
        .path()
        .to_owned()
}

async fn wait_for_path(driver: &WebDriver, wanted: &str) {
    eventually(&format!("the browser at {wanted}"), || async {
        let url = driver.current_url().await.map_err(|e| e.to_string())?;
        if url.path() == wanted {
            Ok(())
        } else {
            Err(url.to_string())
        }
    })
    .await
}

async fn text(element: &WebElement) -> String {
    element.text().await.expect("an element's text")
}

/// W3C *Get Computed Label*, which au2office's script reads as Selenium's `accessible_name` and thirtyfour lacks.
#[derive(Debug)]
struct ComputedLabel(String);

impl ExtensionCommand for ComputedLabel {
    fn parameters_json(&self) -> Option<Value> {
        None
    }

    fn method(&self) -> Method {
        Method::GET
    }

    fn endpoint(&self) -> Arc<str> {
        format!("/element/{}/computedlabel", self.0).into()
    }
}

async fn accessible_name(element: &WebElement) -> String {
    let command = ComputedLabel(element.element_id().to_string());
    element
        .handle
        .cmd(Command::ExtensionCommand(Box::new(command)))
        .await
        .expect("the computed label")
        .value()
        .expect("a computed label is a string")
}

async fn serve(sim: &ErpSim) -> String {
    sim.serve_on_loopback().await.expect("serve the simulator")
}

// ---- AD Manager, spec §3.1 ----

/// Step 2 and 3: the login page, the two `formcontrolname` fields and the button's label.
async fn admanager_login(driver: &WebDriver, base: &str, username: &str, password: &str) {
    driver
        .goto(format!("{base}/login"))
        .await
        .expect("open the login page");
    wait_for(driver, By::Css("[formcontrolname='email']"))
        .await
        .click()
        .await
        .expect("click the e-mail field");
    wait_for(driver, By::Id("mat-input-0"))
        .await
        .send_keys(username)
        .await
        .expect("type the username");
    wait_for(driver, By::Css("[formcontrolname='password']"))
        .await
        .click()
        .await
        .expect("click the password field");
    wait_for(driver, By::Id("mat-input-1"))
        .await
        .send_keys(password)
        .await
        .expect("type the password");
    wait_for(driver, By::Css("[class='mdc-button__label']"))
        .await
        .click()
        .await
        .expect("click the login button's label");
}

/// Step 5, over every page: the first `td` of each `tr` of the first table's `tbody`, compared exactly; the page
/// it was on, after clicking it (step 6).
async fn admanager_open_case(driver: &WebDriver, case: &str) -> usize {
    for page in 1.. {
        let table = wait_for(driver, By::Tag("table")).await;
        let body = table.find(By::Tag("tbody")).await.expect("the tbody");
        for row in body.find_all(By::Tag("tr")).await.expect("the rows") {
            let first = row.find(By::Tag("td")).await.expect("a first cell");
            if text(&first).await == case {
                first.click().await.expect("click the case's first cell");
                wait_for_path(driver, &format!("/worksheet/{case}")).await;
                return page;
            }
        }
        let Ok(next) = driver
            .find(By::Css(".mat-mdc-paginator-navigation-next"))
            .await
        else {
            panic!("case {case} is on none of the {page} pages");
        };
        next.click().await.expect("click the next page");
        let wanted = format!("page={}", page + 1);
        eventually("the next page", || async {
            let url = driver.current_url().await.map_err(|e| e.to_string())?;
            match url.query() {
                Some(query) if query == wanted => Ok(()),
                _ => Err(url.to_string()),
            }
        })
        .await;
    }
    unreachable!("the loop returns or panics")
}

/// Step 7: number, name and amount of each `worksheet-line-row` in the `worksheet-line-list`.
async fn admanager_existing_lines(driver: &WebDriver) -> Vec<Line> {
    let list = wait_for(driver, By::Tag("worksheet-line-list")).await;
    let mut lines = Vec::new();
    for row in list
        .find_all(By::Tag("worksheet-line-row"))
        .await
        .expect("the rows")
    {
        let field = |class: &'static str| {
            let row = row.clone();
            async move {
                let element = row
                    .find(By::Css(format!("[class='{class}']")))
                    .await
                    .unwrap_or_else(|e| panic!("no {class} in a row: {e}"));
                text(&element).await
            }
        };
        lines.push(Line::new(
            &field("product-number").await,
            &field("product-name").await,
            &field("product-amount-amount").await,
        ));
    }
    lines
}

/// The entry row's input in the first element with exactly `class`.
async fn admanager_entry(driver: &WebDriver, class: &str) -> WebElement {
    wait_for(driver, By::Css(format!("[class='{class}']")))
        .await
        .find(By::Tag("input"))
        .await
        .unwrap_or_else(|e| panic!("no input in the first [class='{class}']: {e}"))
}

/// Step 8: item number and TAB, then (where the script slept) a wait for the autocompleted name, or with no
/// `expect_name` for the field's "unknown item" error; the marker appended to the name, TAB, the amount, then
/// ENTER as a keyboard action on the focused element.
async fn admanager_enter_line(
    driver: &WebDriver,
    item: &str,
    expect_name: Option<&str>,
    unique_id: &str,
    amount: &str,
) {
    let number = admanager_entry(driver, "product-number").await;
    number.clear().await.expect("clear the item number");
    number
        .send_keys(item.to_owned() + Key::Tab)
        .await
        .expect("type the item number and TAB");
    let name = admanager_entry(driver, "product-name").await;
    match expect_name {
        Some(expected) => {
            eventually("the name autocompleted", || async {
                match name.value().await.map_err(|e| e.to_string())? {
                    Some(value) if value == expected => Ok(()),
                    other => Err(format!("the name field holds {other:?}")),
                }
            })
            .await
        }
        None => {
            let error = driver
                .find(By::Css(".autocomplete-error"))
                .await
                .expect("the entry row's error");
            eventually("the item refused by the autocompletion", || async {
                if error.is_displayed().await.map_err(|e| e.to_string())? {
                    Ok(())
                } else {
                    Err("the error is hidden".into())
                }
            })
            .await;
            assert_eq!(
                name.value().await.expect("the name's value").as_deref(),
                Some(""),
                "no name for an unknown item"
            );
        }
    }
    name.click().await.expect("click the name");
    name.send_keys(format!(" -- OilMat:{unique_id}") + Key::Tab)
        .await
        .expect("type the marker and TAB");
    let quantity = admanager_entry(driver, "product-amount").await;
    quantity.click().await.expect("click the amount");
    quantity.clear().await.expect("clear the amount");
    quantity.send_keys(amount).await.expect("type the amount");
    driver
        .action_chain()
        .send_keys(Key::Enter)
        .perform()
        .await
        .expect("ENTER on the focused element");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admanager_line_is_added_on_a_case_of_page_two_as_the_script_does() {
    let sim = ErpSim::new(ErpType::AdManager);
    let case = "1025";
    let present = Line::new("30", "Oliefilter", "1");
    sim.seed_line(case, present.clone());
    let base = serve(&sim).await;
    let browser = Browser::start().await;
    let driver = browser.driver();

    admanager_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    wait_for(driver, By::Css("[routerlink='/worksheet']"))
        .await
        .click()
        .await
        .expect("click the worksheet menu link");
    assert_eq!(
        admanager_open_case(driver, case).await,
        2,
        "case {case} is the 25th of 20 a page"
    );
    assert_eq!(
        admanager_existing_lines(driver).await,
        vec![present.clone()],
        "the line already present, as step 7 reads it"
    );

    admanager_enter_line(driver, "10", Some("Motorolie 5W-30"), "7001", "3").await;
    let added = Line::new("10", "Motorolie 5W-30 -- OilMat:7001", "3");
    eventually("the line stored", || async {
        match sim.lines(case) {
            lines if lines == vec![present.clone(), added.clone()] => Ok(()),
            lines => Err(format!("{lines:?}")),
        }
    })
    .await;
    eventually("the worksheet listing the new line", || async {
        let lines = admanager_existing_lines(driver).await;
        if lines.last() == Some(&added) {
            Ok(())
        } else {
            Err(format!("{lines:?}"))
        }
    })
    .await;
    assert_eq!(sim.dropped_saves(), 0);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admanager_unknown_item_gets_no_name_and_is_not_saved() {
    let sim = ErpSim::new(ErpType::AdManager);
    let base = serve(&sim).await;
    let browser = Browser::start().await;
    let driver = browser.driver();
    admanager_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    wait_for_path(driver, "/").await;
    driver
        .goto(format!("{base}/worksheet/1001"))
        .await
        .expect("open a worksheet");

    admanager_enter_line(driver, "999", None, "7003", "2").await;
    let alert = wait_for(driver, By::Css("[role='alert']")).await;
    assert_eq!(text(&alert).await, "Varenummer 999 findes ikke");
    let name = admanager_entry(driver, "product-name").await;
    assert_eq!(
        name.value().await.expect("the name's value").as_deref(),
        Some(""),
        "the page after the refusal starts over"
    );
    assert!(sim.lines("1001").is_empty(), "{:?}", sim.all_lines());
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admanager_dropped_save_looks_fine_and_stores_nothing() {
    let sim = ErpSim::new(ErpType::AdManager);
    sim.set_drop_saves(true);
    let base = serve(&sim).await;
    let browser = Browser::start().await;
    let driver = browser.driver();
    admanager_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    wait_for_path(driver, "/").await;
    driver
        .goto(format!("{base}/worksheet/1001"))
        .await
        .expect("open a worksheet");

    admanager_enter_line(driver, "11", Some("Motorolie 5W-40"), "7004", "2").await;
    eventually("the save received and dropped", || async {
        match sim.dropped_saves() {
            1 => Ok(()),
            n => Err(format!("{n} dropped")),
        }
    })
    .await;
    // The redirect after the save shows the worksheet again, with no error and no line.
    eventually("the worksheet reloaded empty", || async {
        let number = admanager_entry(driver, "product-number").await;
        match number.value().await.map_err(|e| e.to_string())? {
            Some(value) if value.is_empty() => Ok(()),
            other => Err(format!("the item number holds {other:?}")),
        }
    })
    .await;
    assert!(driver.find(By::Css("[role='alert']")).await.is_err());
    assert!(admanager_existing_lines(driver).await.is_empty());
    assert!(sim.all_lines().is_empty(), "{:?}", sim.all_lines());
    browser.quit().await;
}

// ---- Au2Office, spec §3.2 ----

/// Steps 1 to 3: the login, then the link to customer management.
async fn au2office_login(driver: &WebDriver, base: &str, username: &str, password: &str) {
    driver
        .goto(format!("{base}/Account/Login"))
        .await
        .expect("open the login page");
    wait_for(driver, By::Id("inputEmail"))
        .await
        .send_keys(username)
        .await
        .expect("type the username");
    let password_field = wait_for(driver, By::Id("inputPassword")).await;
    password_field
        .click()
        .await
        .expect("click the password field");
    password_field
        .send_keys(password)
        .await
        .expect("type the password");
    wait_for(driver, By::Css(".btn"))
        .await
        .click()
        .await
        .expect("click the first .btn");
}

/// Step 4: the case's span, with its leading `#` and trailing space, clicked once the list has loaded.
async fn au2office_open_case(driver: &WebDriver, case: &str) {
    wait_for(driver, By::LinkText("Åben kundestyring"))
        .await
        .click()
        .await
        .expect("open customer management");
    wait_for(
        driver,
        By::XPath(format!("//span[@class='font-bold' and text()='#{case} ']")),
    )
    .await
    .click()
    .await
    .expect("click the case");
    wait_for_path(driver, &format!("/kundestyring/worksheet/{case}")).await;
}

/// Step 5: the productnumber cells by computed label, the header skipped; the index of the first empty one.
async fn au2office_new_row(driver: &WebDriver) -> (usize, Vec<WebElement>) {
    eventually("the grid with its empty row", || async {
        let numbers = driver
            .find_all(By::Css("[col-id='productnumber']"))
            .await
            .map_err(|e| e.to_string())?;
        let mut labels = Vec::new();
        for cell in &numbers {
            labels.push(accessible_name(cell).await);
        }
        let start = usize::from(labels.first().map(String::as_str) == Some("Varenummer"));
        match labels.iter().skip(start).position(String::is_empty) {
            Some(empty) => Ok((start + empty, numbers)),
            None => Err(format!("labels {labels:?}")),
        }
    })
    .await
}

/// Step 6: the item number in the empty row's `child-cell/input`, then TAB.
async fn au2office_type_item(driver: &WebDriver, item: &str) -> usize {
    let (new_row, numbers) = au2office_new_row(driver).await;
    numbers[new_row]
        .find(By::XPath(".//child-cell/input"))
        .await
        .expect("the empty row's input")
        .send_keys(item.to_owned() + Key::Tab)
        .await
        .expect("type the item number and TAB");
    new_row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn au2office_line_is_added_and_edited_as_the_script_does() {
    let sim = ErpSim::new(ErpType::Au2Office);
    let case = "1030";
    let present = Line::new("30", "Oliefilter", "1");
    sim.seed_line(case, present.clone());
    let base = serve(&sim).await;
    let browser = Browser::start().await;
    let driver = browser.driver();

    au2office_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    au2office_open_case(driver, case).await;
    let new_row = au2office_type_item(driver, "20").await;
    assert_eq!(
        new_row, 2,
        "the header, the line already present, then the empty row"
    );
    // Where the script slept a second: the grid shows the saved line's name in the empty row.
    eventually("the new line's name shown", || async {
        let names = driver
            .find_all(By::Css(".ag-row-new [col-id='productname']"))
            .await
            .map_err(|e| e.to_string())?;
        let name = names.first().ok_or("no name cell")?;
        match name.text().await.map_err(|e| e.to_string())?.as_str() {
            "Gearolie 75W-90" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        sim.lines(case),
        vec![present.clone(), Line::new("20", "Gearolie 75W-90", "1")]
    );

    // Step 7 and 8: reload, the new line is the last non-empty row; edit its name and amount in one chain.
    driver.refresh().await.expect("refresh");
    let (empty_row, _) = au2office_new_row(driver).await;
    assert_eq!(
        empty_row,
        new_row + 1,
        "the new line moved above the empty row"
    );
    let names = driver
        .find_all(By::Css("[col-id='productname']"))
        .await
        .expect("the name cells");
    let target = names[empty_row - 1]
        .find(By::XPath(".//div/div"))
        .await
        .expect("the name cell's div/div");
    driver
        .action_chain()
        .double_click_element(&target)
        .send_keys(" -- OilMat: 7002")
        .send_keys(Key::Tab)
        .send_keys(Key::Tab)
        .send_keys(Key::Tab)
        .send_keys("4")
        .send_keys(Key::Tab)
        .perform()
        .await
        .expect("edit the name and the amount");

    let added = Line::new("20", "Gearolie 75W-90 -- OilMat: 7002", "4");
    eventually("the edited line stored", || async {
        match sim.lines(case) {
            lines if lines == vec![present.clone(), added.clone()] => Ok(()),
            lines => Err(format!("{lines:?}")),
        }
    })
    .await;
    driver.refresh().await.expect("refresh");
    let (_, numbers) = au2office_new_row(driver).await;
    assert_eq!(
        accessible_name(&numbers[empty_row - 1]).await,
        "20",
        "the grid after a reload"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn au2office_unknown_item_dropped_save_and_missing_case() {
    let sim = ErpSim::new(ErpType::Au2Office);
    sim.set_cases(["1001", "1002"]);
    let base = serve(&sim).await;
    let browser = Browser::start().await;
    let driver = browser.driver();
    au2office_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    au2office_open_case(driver, "1001").await;

    // An item the catalogue does not know: an error, nothing stored, no line after a reload.
    au2office_type_item(driver, "999").await;
    let toast = wait_for(driver, By::Css(".toast")).await;
    eventually("the error shown", || async {
        match toast.text().await.map_err(|e| e.to_string())?.as_str() {
            "Varenummer 999 findes ikke" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    driver.refresh().await.expect("refresh");
    assert_eq!(
        au2office_new_row(driver).await.0,
        1,
        "no line above the empty row"
    );

    // A save dropped: no error, nothing stored.
    sim.set_drop_saves(true);
    au2office_type_item(driver, "10").await;
    eventually("the save received and dropped", || async {
        match sim.dropped_saves() {
            1 => Ok(()),
            n => Err(format!("{n} dropped")),
        }
    })
    .await;
    let toast = driver.find(By::Css(".toast")).await.expect("the toast");
    assert!(!toast.is_displayed().await.expect("the toast's display"));
    driver.refresh().await.expect("refresh");
    assert_eq!(
        au2office_new_row(driver).await.0,
        1,
        "no line above the empty row"
    );
    assert!(sim.all_lines().is_empty(), "{:?}", sim.all_lines());

    // A case that does not exist is not listed, and its worksheet is not found.
    driver
        .goto(format!("{base}/kundestyring"))
        .await
        .expect("open customer management");
    let listed = eventually("the list of cases", || async {
        let spans = driver
            .find_all(By::XPath("//span[@class='font-bold']"))
            .await
            .map_err(|e| e.to_string())?;
        let mut texts = Vec::new();
        for span in &spans {
            texts.push(span.text().await.map_err(|e| e.to_string())?);
        }
        if texts.is_empty() {
            Err("no cases yet".into())
        } else {
            Ok(texts)
        }
    })
    .await;
    assert_eq!(listed, ["#1001", "#1002"]);
    driver
        .goto(format!("{base}/kundestyring/worksheet/1003"))
        .await
        .expect("open a case that does not exist");
    let error = wait_for(driver, By::Css(".text-danger")).await;
    assert_eq!(text(&error).await, "Arbejdskort 1003 findes ikke");
    browser.quit().await;
}

// ---- Both ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_with_no_session() {
    let browser = Browser::start().await;
    let driver = browser.driver();

    let admanager = ErpSim::new(ErpType::AdManager);
    let base = serve(&admanager).await;
    admanager_login(driver, &base, DEFAULT_USERNAME, "wrong").await;
    let error = wait_for(driver, By::Css("mat-error")).await;
    assert_eq!(text(&error).await, "Forkert e-mail eller adgangskode");
    driver
        .goto(format!("{base}/worksheet"))
        .await
        .expect("try the worksheets");
    assert_eq!(
        path(driver).await,
        "/login",
        "no session after a refused login"
    );

    let au2office = ErpSim::new(ErpType::Au2Office);
    let base = serve(&au2office).await;
    au2office_login(driver, &base, DEFAULT_USERNAME, "wrong").await;
    let error = wait_for(driver, By::Css(".validation-summary-errors")).await;
    assert_eq!(text(&error).await, "Ugyldigt loginforsøg.");
    driver
        .goto(format!("{base}/kundestyring"))
        .await
        .expect("try customer management");
    assert_eq!(path(driver).await, "/Account/Login");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_sends_to_the_login_page() {
    let browser = Browser::start().await;
    let driver = browser.driver();

    // AD Manager: the start page is the session's first request, the overview its second, page 2 one too many.
    let admanager = ErpSim::new(ErpType::AdManager);
    let base = serve(&admanager).await;
    admanager_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    wait_for_path(driver, "/").await;
    admanager.expire_sessions_after(Some(2));
    wait_for(driver, By::Css("[routerlink='/worksheet']"))
        .await
        .click()
        .await
        .expect("click the worksheet menu link");
    wait_for_path(driver, "/worksheet").await;
    wait_for(driver, By::Css(".mat-mdc-paginator-navigation-next"))
        .await
        .click()
        .await
        .expect("click the next page");
    wait_for_path(driver, "/login").await;
    wait_for(driver, By::Id("mat-input-0")).await;

    // Au2Office: the portal is the first request, customer management the second, its list's fetch the third.
    let au2office = ErpSim::new(ErpType::Au2Office);
    let base = serve(&au2office).await;
    au2office_login(driver, &base, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    wait_for_path(driver, "/").await;
    au2office.expire_sessions_after(Some(2));
    wait_for(driver, By::LinkText("Åben kundestyring"))
        .await
        .click()
        .await
        .expect("open customer management");
    wait_for_path(driver, "/Account/Login").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_pages_are_slow() {
    let sim = ErpSim::new(ErpType::AdManager);
    let base = serve(&sim).await;
    let browser = Browser::start().await;
    let driver = browser.driver();
    let delay = Duration::from_millis(1200);
    sim.set_page_delay(delay);

    let started = Instant::now();
    driver
        .goto(format!("{base}/login"))
        .await
        .expect("open the login page");
    let took = started.elapsed();
    assert!(took >= delay, "the login page came in {took:?}");
    wait_for(driver, By::Id("mat-input-0")).await;
    browser.quit().await;
}

#[tokio::test]
async fn the_sim_door_sets_faults_and_data_and_shows_lines() {
    let sim = ErpSim::new(ErpType::Au2Office);
    let base = serve(&sim).await;
    let client = reqwest::Client::new();

    let answer = client
        .post(format!("{base}/sim/faults"))
        .json(&json!({"page_delay_ms": 5, "session_requests": 3, "drop_saves": true}))
        .send()
        .await
        .expect("set the faults");
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(
        sim.faults(),
        Faults {
            page_delay_ms: 5,
            session_requests: Some(3),
            drop_saves: true
        }
    );
    let refused = client
        .post(format!("{base}/sim/faults"))
        .json(&json!({"slow": true}))
        .send()
        .await
        .expect("an unknown fault");
    assert!(refused.status().is_client_error(), "{}", refused.status());

    client
        .post(format!("{base}/sim/cases"))
        .json(&json!(["A-1", "A-2"]))
        .send()
        .await
        .expect("set the cases");
    assert_eq!(sim.cases(), ["A-1", "A-2"]);
    client
        .post(format!("{base}/sim/catalogue"))
        .json(
            &json!([{"item": "X", "name": "Xolie", "unit": "L", "group": "Olie", "price": "1,00"}]),
        )
        .send()
        .await
        .expect("set the catalogue");
    assert_eq!(sim.catalogue().len(), 1);
    client
        .post(format!("{base}/sim/lines"))
        .json(&json!({"case": "A-2", "item": "X", "name": "Xolie -- OilMat: 9", "amount": "2,5"}))
        .send()
        .await
        .expect("seed a line");
    assert_eq!(
        sim.lines("A-2"),
        [Line::new("X", "Xolie -- OilMat: 9", "2,5")]
    );

    let lines: Value = client
        .get(format!("{base}/sim/lines"))
        .send()
        .await
        .expect("the lines")
        .json()
        .await
        .expect("JSON lines");
    assert_eq!(
        lines,
        json!({"A-2": [{"item": "X", "name": "Xolie -- OilMat: 9", "amount": "2,5"}]})
    );
    let page = client
        .get(format!("{base}/sim/"))
        .send()
        .await
        .expect("the page")
        .text()
        .await
        .expect("the page's text");
    assert!(
        page.contains("Xolie -- OilMat: 9") && page.contains("au2office"),
        "{page}"
    );
}
