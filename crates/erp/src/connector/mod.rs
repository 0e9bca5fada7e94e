//! The browser connectors: add an OilMat order's line to a case in the workshop's ERP by driving the ERP's pages
//! in a real Chromium (spec §3), with explicit waits instead of the original's sleeps, a look for the order's
//! marker before adding (a replay never adds a second line, §8), a read-back after saving, and a reason code for
//! every failure with a screenshot and the DOM of the page it happened on.
//!
//! [`Connector`] keeps one logged-in browser between tasks. The steps both ERPs share (logging in, waiting,
//! navigating, reading and checking lines) live here; `admanager` and `au2office` hold each ERP's own steps, and
//! [`Script`] everything they look for on a page.

mod admanager;
mod au2office;
pub mod browser;
pub mod script;

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;
use thirtyfour::error::WebDriverErrorInner;
use thirtyfour::prelude::*;
use tracing::instrument::WithSubscriber;

pub use browser::BrowserConfig;
pub use script::{
    AdManagerLocators, Au2OfficeLocators, ErpLocators, LineLocators, LoginLocators, Script, Waits,
};

use crate::model::{Credentials, ErpType, LineOrder, Reason};
use browser::Browser;

/// Where a task starts when the browser is logged in already: the ERP's start page, as after a login.
const HOME: &str = "/";

/// One integration's connection to its ERP: one browser, logged in once and kept between tasks.
pub struct Connector {
    erp: ErpType,
    base_url: String,
    script: Script,
    browser: BrowserConfig,
    session: Option<Session>,
}

struct Session {
    browser: Browser,
    /// False until a login went through, and again once the ERP shows its login page.
    logged_in: bool,
}

/// The order's line is on its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The line was there already (a replay): nothing was typed.
    pub already_present: bool,
}

/// Why a line was not added, and what the page looked like then.
#[derive(Debug)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
    pub evidence: Option<Evidence>,
}

/// The page at the failing step.
pub struct Evidence {
    pub step: String,
    pub screenshot_png: Vec<u8>,
    pub dom: String,
}

impl fmt::Debug for Evidence {
    /// Sizes only: a screenshot and a DOM do not belong in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evidence")
            .field("step", &self.step)
            .field("screenshot_png_bytes", &self.screenshot_png.len())
            .field("dom_chars", &self.dom.len())
            .finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Failure {}

/// How a step ended when it did not go on.
enum Stop {
    Failed {
        reason: Reason,
        step: String,
        message: String,
    },
    /// The ERP showed its login page: the session ended, and the task can log in again and start over.
    SessionLost { step: String },
}

impl Stop {
    fn failed(reason: Reason, step: &str, message: impl Into<String>) -> Stop {
        Stop::Failed {
            reason,
            step: step.to_owned(),
            message: message.into(),
        }
    }
}

/// What an attempt already did in the ERP, for the attempt after a new login to carry on from.
#[derive(Default)]
struct Progress {
    /// Au2Office stores a line, without marker, as soon as its item number is typed.
    item_line_added: bool,
}

impl Connector {
    /// A connector to the ERP at `base_url` (`http://…`, no trailing path); nothing starts until a line is added.
    /// `script` must be for `erp`; one for the other ERP fails every task with a message saying so.
    pub fn new(
        erp: ErpType,
        base_url: String,
        script: Script,
        browser: BrowserConfig,
    ) -> Connector {
        Connector {
            erp,
            base_url: base_url.trim_end_matches('/').to_owned(),
            script,
            browser,
            session: None,
        }
    }

    /// Adds `order`'s line to its case once, and verifies it. Before adding, reads the case's lines and looks for
    /// the order's marker (`erp.marker(&order.unique_id)`, spec §3.3): when present, returns
    /// `Ok(Added { already_present: true })` without adding. After saving, reads the lines back and checks item
    /// number, marker and amount before `Ok`. Starts the browser on first use; logs in when there is no session
    /// or the ERP sent it to the login page (a session that expired mid-task: log in again and carry on, at most
    /// once per task).
    #[tracing::instrument(skip_all, fields(
        erp = %self.erp, order = %order.unique_id, case = %order.case_nr, item = %order.product_nr
    ))]
    pub async fn add_line(
        &mut self,
        credentials: &Credentials,
        order: &LineOrder,
    ) -> Result<Added, Failure> {
        let started = Instant::now();
        match self.run(credentials, order).await {
            Ok(added) => {
                tracing::info!(
                    already_present = added.already_present,
                    ms = started.elapsed().as_millis() as u64,
                    "order line in place"
                );
                Ok(added)
            }
            Err(stop) => {
                let failure = self.failure(stop, &credentials.password).await;
                tracing::warn!(
                    reason = %failure.reason,
                    message = %failure.message,
                    ms = started.elapsed().as_millis() as u64,
                    "order line failed"
                );
                Err(failure)
            }
        }
    }

    /// Quits the browser session and chromedriver; the next `add_line` starts afresh.
    #[tracing::instrument(skip_all, fields(erp = %self.erp))]
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.browser.quit().await;
        }
    }

    async fn run(&mut self, credentials: &Credentials, order: &LineOrder) -> Result<Added, Stop> {
        let marker = self.erp.marker(&order.unique_id);
        refuse_key_codes(credentials, order, &marker)?;
        if self.script.erp() != self.erp {
            return Err(Stop::failed(
                Reason::BrowserStartFailed,
                "check the script",
                format!(
                    "the script is for {}, but this integration drives {}",
                    self.script.erp(),
                    self.erp
                ),
            ));
        }
        if self.session.is_none() {
            let waits = &self.script.waits;
            let browser = Browser::start(
                &self.browser,
                window_size(self.erp),
                Duration::from_millis(waits.page_timeout_ms),
            )
            .await
            .map_err(|message| {
                Stop::failed(Reason::BrowserStartFailed, "start the browser", message)
            })?;
            self.session = Some(Session {
                browser,
                logged_in: false,
            });
        }
        let session = self.session.as_mut().expect("started above");
        let mut page = Page::new(
            session.browser.driver().clone(),
            &self.base_url,
            self.erp,
            &self.script.waits,
        );
        let mut progress = Progress::default();
        let mut logged_in_again = false;
        loop {
            let attempt = attempt(
                &mut page,
                &self.script,
                &mut session.logged_in,
                credentials,
                order,
                &marker,
                &mut progress,
            )
            .await;
            match attempt {
                Err(Stop::SessionLost { step }) => {
                    session.logged_in = false;
                    if logged_in_again {
                        return Err(Stop::failed(
                            Reason::LoginFailed,
                            &step,
                            format!(
                                "{step}: the ERP asked for the login again right after a new login"
                            ),
                        ));
                    }
                    logged_in_again = true;
                    tracing::info!(step, "the ERP ended the session; logging in again");
                }
                other => return other,
            }
        }
    }

    /// The failure as the caller sees it: evidence from the page, the password nowhere, and the browser closed when
    /// what it shows can no longer be trusted.
    async fn failure(&mut self, stop: Stop, password: &str) -> Failure {
        let (reason, step, message) = match stop {
            Stop::Failed {
                reason,
                step,
                message,
            } => (reason, step, message),
            // `run` turns a second lost session into a failure; this is the first, which cannot reach here.
            Stop::SessionLost { step } => (
                Reason::LoginFailed,
                step.clone(),
                format!("{step}: the ERP ended the session"),
            ),
        };
        let redact = |text: &str| {
            if password.is_empty() {
                text.to_owned()
            } else {
                text.replace(password, "[hidden]")
            }
        };
        let limit = Duration::from_millis(self.script.waits.step_timeout_ms);
        let evidence = match &self.session {
            Some(session) => {
                capture(session.browser.driver(), &step, limit)
                    .await
                    .map(|evidence| Evidence {
                        step: redact(&evidence.step),
                        dom: redact(&evidence.dom),
                        ..evidence
                    })
            }
            None => None,
        };
        // After these the page may still be loading, on an error page or gone: the next task starts clean.
        if matches!(
            reason,
            Reason::Timeout | Reason::ErpUnreachable | Reason::BrowserStartFailed
        ) {
            self.close().await;
        }
        Failure {
            reason,
            message: redact(&message),
            evidence,
        }
    }
}

/// One try at the task: log in when needed, then the ERP's own steps.
async fn attempt(
    page: &mut Page,
    script: &Script,
    logged_in: &mut bool,
    credentials: &Credentials,
    order: &LineOrder,
    marker: &str,
    progress: &mut Progress,
) -> Result<Added, Stop> {
    if *logged_in {
        // A session that ended between tasks shows as the login page here: that is a login, not a lost session.
        let path = page.goto(HOME, "open the ERP's start page").await?;
        *logged_in = !page.is_login(&path);
    }
    if !*logged_in {
        page.logging_in = true;
        let login = log_in(page, &script.login, credentials).await;
        page.logging_in = false;
        login?;
        *logged_in = true;
    }
    match &script.erp {
        ErpLocators::AdManager(at) => {
            admanager::add_line(page, &script.lines, at, order, marker).await
        }
        ErpLocators::Au2Office(at) => {
            au2office::add_line(page, &script.lines, at, order, marker, progress).await
        }
    }
}

/// Spec §3.1 step 3 and §3.2 step 2: each field clicked and typed into, then the button; the ERP's own words
/// when it refuses.
async fn log_in(
    page: &mut Page,
    at: &LoginLocators,
    credentials: &Credentials,
) -> Result<(), Stop> {
    page.stage = Reason::LoginFailed;
    let login_path = page.login_path;
    page.goto(login_path, "open the login page").await?;
    let what = "type the username";
    let username = page.find(&at.username, what).await?;
    username.click().await.map_err(|e| page.error(what, e))?;
    username.clear().await.map_err(|e| page.error(what, e))?;
    username
        .send_keys(credentials.username.as_str())
        .await
        .map_err(|e| page.error(what, e))?;
    let what = "type the password";
    let password = page.find(&at.password, what).await?;
    password.click().await.map_err(|e| page.error(what, e))?;
    password.clear().await.map_err(|e| page.error(what, e))?;
    // thirtyfour logs each request's body at debug level: no subscriber hears the one that carries the password.
    password
        .send_keys(credentials.password.as_str())
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await
        .map_err(|e| page.error(what, e))?;
    let what = "log in";
    let submit = page.find(&at.submit, what).await?;
    page.navigate(what, submit.click()).await?;
    let path = page.here(what).await?;
    if page.is_login(&path) {
        let said = page
            .shown_text(&at.error)
            .await
            .map_err(|e| page.error(what, e))?
            .unwrap_or_else(|| "it stayed on its login page".to_owned());
        return Err(Stop::failed(
            Reason::LoginFailed,
            what,
            format!(
                "the ERP refused the login for {}: {said}",
                credentials.username
            ),
        ));
    }
    Ok(())
}

/// Spec §3.1 and §3.2's window sizes.
fn window_size(erp: ErpType) -> (u32, u32) {
    match erp {
        ErpType::AdManager => (1683, 517),
        ErpType::Au2Office => (1728, 1055),
    }
}

/// WebDriver types U+E000..U+F8FF as keys (ENTER, TAB, …). `OrderRef` already refuses them; this holds even if
/// a value ever arrives some other way.
fn refuse_key_codes(
    credentials: &Credentials,
    order: &LineOrder,
    marker: &str,
) -> Result<(), Stop> {
    let is_key = |text: &str| text.chars().any(|c| ('\u{E000}'..='\u{F8FF}').contains(&c));
    let amount = order.amount.to_string();
    let values = [
        order.unique_id.as_str(),
        order.case_nr.as_str(),
        order.product_nr.as_str(),
        marker,
        amount.as_str(),
    ];
    if let Some(value) = values.into_iter().find(|value| is_key(value)) {
        return Err(Stop::failed(
            Reason::ProductEntryFailed,
            "check the values",
            format!("{value:?} holds a WebDriver key code (U+E000..U+F8FF); it is not typed"),
        ));
    }
    if is_key(&credentials.username) || is_key(&credentials.password) {
        return Err(Stop::failed(
            Reason::LoginFailed,
            "check the login",
            "the username or the password holds a WebDriver key code (U+E000..U+F8FF); it is not typed",
        ));
    }
    Ok(())
}

/// A screenshot and the DOM, whatever of them the browser still gives within `limit`.
async fn capture(driver: &WebDriver, step: &str, limit: Duration) -> Option<Evidence> {
    let taken = tokio::time::timeout(limit, async {
        let screenshot_png = driver.screenshot_as_png().await.unwrap_or_default();
        let dom = driver.source().await.unwrap_or_default();
        (screenshot_png, dom)
    })
    .await;
    match taken {
        Ok((screenshot_png, dom)) if !(screenshot_png.is_empty() && dom.is_empty()) => {
            Some(Evidence {
                step: step.to_owned(),
                screenshot_png,
                dom,
            })
        }
        _ => None,
    }
}

/// A line as a work card shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct SeenLine {
    item: String,
    name: String,
    amount: String,
}

/// The marker in a line's name, not followed by more of an order id (`OilMat:7` is not in `OilMat:70`). The
/// marker's leading space is not required: the name cell's text may be trimmed.
fn has_marker(name: &str, marker: &str) -> bool {
    let marker = marker.trim_start();
    name.match_indices(marker).any(|(at, _)| {
        !name[at + marker.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    })
}

/// The amount as the ERP shows it (`3`, `3,00`, `3.0`) is the ordered one.
fn same_amount(shown: &str, amount: u32) -> bool {
    shown
        .trim()
        .replace(',', ".")
        .parse::<f64>()
        .is_ok_and(|shown| shown == f64::from(amount))
}

/// Finds the line carrying `marker` and checks it is the order's.
fn check_line(lines: &[SeenLine], order: &LineOrder, marker: &str) -> Result<(), String> {
    let Some(line) = lines.iter().find(|line| has_marker(&line.name, marker)) else {
        return Err(format!(
            "no line with the marker {:?} after saving; the case shows {} line(s)",
            marker.trim_start(),
            lines.len()
        ));
    };
    if line.item != order.product_nr.as_str() {
        return Err(format!(
            "the line with the marker has item {:?}, not {}",
            line.item, order.product_nr
        ));
    }
    if !same_amount(&line.amount, order.amount.get()) {
        return Err(format!(
            "the line with the marker has amount {:?}, not {}",
            line.amount, order.amount
        ));
    }
    Ok(())
}

/// Finds elements by a [`Script`] locator in the page or inside an element, CSS or XPath as the Rust side reads
/// them ([`script::is_xpath`]).
const FIND_JS: &str = "const all = (locator, context) => {\
  if (/^(\\/|\\(|\\.\\.?\\/)/.test(locator)) {\
    const found = document.evaluate(locator, context, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);\
    return Array.from({length: found.snapshotLength}, (_, i) => found.snapshotItem(i));\
  }\
  return Array.from(context.querySelectorAll(locator));\
};\
const text = (locator, context) => { const found = all(locator, context)[0]; return found ? found.innerText.trim() : ''; };";

/// The lines: item, name and amount of each row whose item is not empty.
const LINES_JS: &str = "const [row, item, name, amount] = arguments;\
return all(row, document)\
  .map(line => ({item: text(item, line), name: text(name, line), amount: text(amount, line)}))\
  .filter(line => line.item !== '');";

/// Marks the document, so that a new one (a navigation, a reload) can be told from it.
const MARK_PAGE_JS: &str = "window.__tillwireLeft = true; return location.href;";
const PAGE_STATE_JS: &str =
    "return [window.__tillwireLeft === true, location.href, document.readyState];";

/// Counts the page's requests (fetch and XMLHttpRequest) from now on. A fetch is settled once its answer's body
/// has been read, so the page's reaction to it (an error shown) is in place by the time a poll sees it settled.
const WATCH_REQUESTS_JS: &str = "const state = window.__tillwireRequests || (window.__tillwireRequests = (() => {\
  const state = {started: 0, pending: 0};\
  const done = () => { state.pending -= 1; };\
  const fetch = window.fetch;\
  window.fetch = function (...args) {\
    state.started += 1; state.pending += 1;\
    return fetch.apply(this, args).then(\
      answer => { answer.clone().text().then(done, done); return answer; },\
      error => { done(); throw error; });\
  };\
  const send = XMLHttpRequest.prototype.send;\
  XMLHttpRequest.prototype.send = function (...args) {\
    state.started += 1; state.pending += 1;\
    this.addEventListener('loadend', done, {once: true});\
    return send.apply(this, args);\
  };\
  return state;\
})());\
state.started = 0;";
const REQUESTS_JS: &str = "const state = window.__tillwireRequests; return state ? [state.started, state.pending] : null;";

/// The browser as the steps use it: waits bounded by the script, WebDriver's errors turned into reasons.
struct Page {
    driver: WebDriver,
    base_url: String,
    login_path: &'static str,
    step_timeout: Duration,
    page_timeout: Duration,
    poll: Duration,
    /// The reason a WebDriver error stands for at this point of the task when it says nothing more specific
    /// (a field that will not take a click while entering the item is a product entry failure).
    stage: Reason,
    /// On the login page on purpose: not a lost session.
    logging_in: bool,
}

impl Page {
    fn new(driver: WebDriver, base_url: &str, erp: ErpType, waits: &Waits) -> Page {
        Page {
            driver,
            base_url: base_url.to_owned(),
            login_path: erp.login_path(),
            step_timeout: Duration::from_millis(waits.step_timeout_ms),
            page_timeout: Duration::from_millis(waits.page_timeout_ms),
            poll: Duration::from_millis(waits.poll_ms),
            stage: Reason::LoginFailed,
            logging_in: false,
        }
    }

    /// The reason a WebDriver error stands for: Chromium's network errors, timeouts and a browser gone have
    /// their own; anything else is the stage's.
    fn error(&self, what: &str, error: WebDriverError) -> Stop {
        let text = error.to_string();
        let says = |words: &[&str]| words.iter().any(|word| text.contains(word));
        let reason = if says(&["net::ERR_", "chrome-error://"]) {
            Reason::ErpUnreachable
        } else {
            match error.as_inner() {
                WebDriverErrorInner::WebDriverTimeout(_)
                | WebDriverErrorInner::Timeout(_)
                | WebDriverErrorInner::ScriptTimeout(_) => Reason::Timeout,
                WebDriverErrorInner::InvalidSessionId(_)
                | WebDriverErrorInner::NoSuchWindow(_)
                | WebDriverErrorInner::RequestFailed(_)
                | WebDriverErrorInner::HttpError(_)
                | WebDriverErrorInner::IoError(_)
                | WebDriverErrorInner::FatalError(_)
                | WebDriverErrorInner::CommandSendError(_)
                | WebDriverErrorInner::CommandRecvError(_) => Reason::BrowserStartFailed,
                _ if says(&["chrome not reachable", "disconnected", "session deleted"]) => {
                    Reason::BrowserStartFailed
                }
                _ => self.stage,
            }
        };
        let first_line = text.lines().next().unwrap_or_default();
        Stop::failed(reason, what, format!("{what}: {first_line}"))
    }

    /// The page's path, once it is not Chromium's error page (the ERP did not answer).
    async fn here(&self, what: &str) -> Result<String, Stop> {
        let url = self
            .driver
            .current_url()
            .await
            .map_err(|e| self.error(what, e))?;
        if url.scheme() == "chrome-error" {
            return Err(Stop::failed(
                Reason::ErpUnreachable,
                what,
                format!("{what}: the ERP at {} did not answer", self.base_url),
            ));
        }
        Ok(url.path().to_owned())
    }

    fn is_login(&self, path: &str) -> bool {
        path == self.login_path
    }

    /// Fails when the ERP did not answer or, unless logging in, sent the browser to its login page.
    async fn check_here(&self, what: &str) -> Result<(), Stop> {
        let path = self.here(what).await?;
        if self.is_login(&path) && !self.logging_in {
            return Err(Stop::SessionLost {
                step: what.to_owned(),
            });
        }
        Ok(())
    }

    /// Opens a page of the ERP (waiting at most the page timeout); the path it ended on.
    async fn goto(&self, path: &str, what: &str) -> Result<String, Stop> {
        self.driver
            .goto(format!("{}{path}", self.base_url))
            .await
            .map_err(|e| self.error(what, e))?;
        self.here(what).await
    }

    /// Polls `probe` every `poll_ms` until it gives a value. Errors a page in motion gives (an element gone
    /// stale, a script run while the page changes) are polled through; when the time runs out the last of them
    /// is the failure, or else a timeout.
    async fn wait<T, F, Fut>(&self, what: &str, limit: Duration, mut probe: F) -> Result<T, Stop>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = WebDriverResult<Option<T>>>,
    {
        let deadline = Instant::now() + limit;
        let mut last;
        loop {
            match probe().await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => last = None,
                Err(error) => {
                    let broken_locator = matches!(
                        error.as_inner(),
                        WebDriverErrorInner::InvalidSelector(_)
                            | WebDriverErrorInner::InvalidArgument(_)
                    );
                    let stop = self.error(what, error);
                    let passing =
                        matches!(&stop, Stop::Failed { reason, .. } if *reason == self.stage);
                    if broken_locator || !passing {
                        return Err(stop);
                    }
                    last = Some(stop);
                }
            }
            self.check_here(what).await?;
            if Instant::now() >= deadline {
                return Err(last.unwrap_or_else(|| {
                    Stop::failed(
                        Reason::Timeout,
                        what,
                        format!("{what}: not done within {} ms", limit.as_millis()),
                    )
                }));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    fn by(locator: &str) -> By {
        if script::is_xpath(locator) {
            By::XPath(locator.to_owned())
        } else {
            By::Css(locator.to_owned())
        }
    }

    /// The first element `locator` finds that is displayed, once there is one.
    async fn find(&self, locator: &str, what: &str) -> Result<WebElement, Stop> {
        self.wait(what, self.step_timeout, || async {
            for element in self.driver.find_all(Self::by(locator)).await? {
                if element.is_displayed().await? {
                    return Ok(Some(element));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Waits until `locator` finds something, shown or not (an empty list has no size, yet it is there).
    async fn present(&self, locator: &str, what: &str) -> Result<(), Stop> {
        self.wait(what, self.step_timeout, || async {
            let found = self.driver.find_all(Self::by(locator)).await?;
            Ok((!found.is_empty()).then_some(()))
        })
        .await
    }

    /// The first element `locator` finds now, if any.
    async fn find_now(&self, locator: &str, what: &str) -> Result<Option<WebElement>, Stop> {
        self.driver
            .find_all(Self::by(locator))
            .await
            .map(|found| found.into_iter().next())
            .map_err(|e| self.error(what, e))
    }

    /// The text of the first displayed element `locator` finds (an ERP's message), if any.
    async fn shown_text(&self, locator: &str) -> WebDriverResult<Option<String>> {
        for element in self.driver.find_all(Self::by(locator)).await? {
            if element.is_displayed().await? {
                return Ok(Some(element.text().await?.trim().to_owned()));
            }
        }
        Ok(None)
    }

    async fn js(&self, what: &str, script: &str, args: Vec<Value>) -> Result<ScriptRet, Stop> {
        self.driver
            .execute(script, args)
            .await
            .map_err(|e| self.error(what, e))
    }

    /// Runs `action`, which leaves the page (a click on a link, a submit, a reload), and waits for the next page:
    /// a new document that has loaded, or a new URL (an ERP that routes in the page).
    async fn navigate(
        &self,
        what: &str,
        action: impl Future<Output = WebDriverResult<()>>,
    ) -> Result<(), Stop> {
        let before = self.js(what, MARK_PAGE_JS, Vec::new()).await?;
        let before: String = before.convert().map_err(|e| self.error(what, e))?;
        action.await.map_err(|e| self.error(what, e))?;
        self.wait(what, self.page_timeout, || async {
            let state = self.driver.execute(PAGE_STATE_JS, Vec::new()).await?;
            let (marked, url, ready): (bool, String, String) = state.convert()?;
            Ok(((!marked && ready == "complete") || url != before).then_some(()))
        })
        .await?;
        self.check_here(what).await
    }

    /// Waits for the ERP to take a value: `accepted` holds, or the ERP shows `refusal` (then its words are the
    /// product entry failure).
    async fn wait_accepted<F, Fut>(
        &self,
        what: &str,
        refusal: &str,
        mut accepted: F,
    ) -> Result<(), Stop>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = WebDriverResult<bool>>,
    {
        let outcome = self
            .wait(what, self.step_timeout, || {
                let accepted = accepted();
                async move {
                    if let Some(said) = self.shown_text(refusal).await? {
                        return Ok(Some(Err(said)));
                    }
                    Ok(accepted.await?.then_some(Ok(())))
                }
            })
            .await?;
        outcome.map_err(|said| {
            Stop::failed(
                Reason::ProductEntryFailed,
                what,
                format!("{what}: the ERP said {said:?}"),
            )
        })
    }

    /// Fails with the ERP's words when it shows `refusal` now.
    async fn refused(&self, what: &str, refusal: &str) -> Result<(), Stop> {
        match self.shown_text(refusal).await {
            Ok(None) => Ok(()),
            Ok(Some(said)) => Err(Stop::failed(
                Reason::ProductEntryFailed,
                what,
                format!("{what}: the ERP said {said:?}"),
            )),
            Err(error) => Err(self.error(what, error)),
        }
    }

    /// The case's lines, once the work card has drawn them.
    async fn read_lines(&self, at: &LineLocators, what: &str) -> Result<Vec<SeenLine>, Stop> {
        self.present(&at.ready, what).await?;
        let args = [&at.row, &at.item, &at.name, &at.amount]
            .map(|locator| Value::from(locator.as_str()))
            .to_vec();
        let lines = self.js(what, &format!("{FIND_JS}{LINES_JS}"), args).await?;
        lines.convert().map_err(|e| self.error(what, e))
    }

    /// The order's line when it is on the case already (spec §8: a replay adds nothing). A line with the marker
    /// but another item or amount (Au2Office saves the name before the amount, so a crash between the two leaves
    /// one) is not the order's: it fails the order for a person to put right, and nothing is added.
    async fn existing(
        &mut self,
        at: &LineLocators,
        order: &LineOrder,
        marker: &str,
    ) -> Result<Option<Added>, Stop> {
        self.stage = Reason::VerifyFailed;
        let what = "read the case's lines";
        let lines = self.read_lines(at, what).await?;
        if !lines.iter().any(|line| has_marker(&line.name, marker)) {
            return Ok(None);
        }
        check_line(&lines, order, marker).map_err(|message| {
            Stop::failed(
                Reason::VerifyFailed,
                what,
                format!("{what}: the order's line is there already, but {message}; put it right in the ERP"),
            )
        })?;
        Ok(Some(Added {
            already_present: true,
        }))
    }

    /// Reads the lines back after saving and checks the order's is there as ordered.
    async fn verify(
        &mut self,
        at: &LineLocators,
        order: &LineOrder,
        marker: &str,
    ) -> Result<Added, Stop> {
        self.stage = Reason::VerifyFailed;
        let what = "read the line back";
        let lines = self.read_lines(at, what).await?;
        check_line(&lines, order, marker).map_err(|message| {
            Stop::failed(Reason::VerifyFailed, what, format!("{what}: {message}"))
        })?;
        Ok(Added {
            already_present: false,
        })
    }

    /// Starts counting the page's requests (see [`WATCH_REQUESTS_JS`]).
    async fn watch_requests(&self, what: &str) -> Result<(), Stop> {
        self.js(what, WATCH_REQUESTS_JS, Vec::new()).await.map(drop)
    }

    /// Waits until the page has sent a request since [`Page::watch_requests`] and all have been answered.
    async fn requests_settled(&self, what: &str) -> Result<(), Stop> {
        self.wait(what, self.step_timeout, || async {
            let state = self.driver.execute(REQUESTS_JS, Vec::new()).await?;
            let state: Option<(u32, u32)> = state.convert()?;
            Ok(state
                .is_some_and(|(started, pending)| started > 0 && pending == 0)
                .then_some(()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Amount, OrderRef};

    fn order(id: &str, item: &str, amount: u32) -> LineOrder {
        LineOrder {
            unique_id: OrderRef::parse(id).unwrap(),
            case_nr: OrderRef::parse("1001").unwrap(),
            product_nr: OrderRef::parse(item).unwrap(),
            amount: Amount::new(amount).unwrap(),
        }
    }

    fn line(item: &str, name: &str, amount: &str) -> SeenLine {
        SeenLine {
            item: item.into(),
            name: name.into(),
            amount: amount.into(),
        }
    }

    #[test]
    fn a_marker_is_not_the_start_of_a_longer_id() {
        assert!(has_marker("Olie -- OilMat:7", " -- OilMat:7"));
        assert!(has_marker("Olie -- OilMat: 7 (rettet)", " -- OilMat: 7"));
        assert!(has_marker("-- OilMat: 7", " -- OilMat: 7"));
        assert!(!has_marker("Olie -- OilMat:70", " -- OilMat:7"));
        assert!(!has_marker("Olie -- OilMat:7-2", " -- OilMat:7"));
        assert!(!has_marker("Olie", " -- OilMat:7"));
    }

    #[test]
    fn a_line_is_checked_for_item_and_amount() {
        let order = order("7", "10", 3);
        let marker = ErpType::AdManager.marker(&order.unique_id);
        assert!(check_line(&[line("10", "Olie -- OilMat:7", "3,00")], &order, &marker).is_ok());
        assert!(check_line(&[line("11", "Olie -- OilMat:7", "3")], &order, &marker).is_err());
        assert!(check_line(&[line("10", "Olie -- OilMat:7", "1")], &order, &marker).is_err());
        assert!(check_line(&[line("10", "Olie", "3")], &order, &marker).is_err());
    }

    #[test]
    fn key_codes_are_never_typed() {
        let order = order("7", "10", 3);
        let reason = |username: &str, password: &str, marker: &str| {
            let credentials = Credentials {
                username: username.into(),
                password: password.into(),
            };
            match refuse_key_codes(&credentials, &order, marker) {
                Err(Stop::Failed {
                    reason, message, ..
                }) => {
                    assert!(!message.contains(password), "{message}");
                    Some(reason)
                }
                _ => None,
            }
        };
        assert_eq!(reason("u", "hunter2", " -- OilMat:7"), None);
        assert_eq!(
            reason("u", "hunter2", " -- OilMat:7\u{E007}"),
            Some(Reason::ProductEntryFailed)
        );
        assert_eq!(
            reason("u", "se\u{E004}cret", " -- OilMat:7"),
            Some(Reason::LoginFailed)
        );
    }
}
