//! What a connector looks for on an ERP's pages and how long it waits, as data (spec §7.8: "a GUI change does not
//! need a rebuild"). An admin edits it as JSON; [`Script::validate`] names every problem in words they can act on.
//!
//! A locator is CSS, or XPath when it starts with `/`, `(`, `./` or `../` (no CSS selector can). Locators "inside
//! a row" are searched within one line's row, so an XPath there must start with `./`. A template holds `{case}`
//! where the case number goes; case numbers are [`OrderRef`](crate::model::OrderRef)s (`[A-Za-z0-9._-]`), so they
//! never need quoting.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::model::ErpType;

/// Where a case number goes in a template.
pub const CASE_PLACEHOLDER: &str = "{case}";

const TIMEOUT_MS: RangeInclusive<u64> = 100..=120_000;
const POLL_MS: RangeInclusive<u64> = 10..=1_000;
const TABS: RangeInclusive<u8> = 1..=10;

/// Locators and waits for one ERP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub waits: Waits,
    pub login: LoginLocators,
    pub lines: LineLocators,
    /// The steps only one ERP has; the key (`admanager` or `au2office`) says which ERP the script drives.
    pub erp: ErpLocators,
}

/// Every wait polls its condition every `poll_ms` until it holds or its limit runs out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waits {
    /// For an element or a condition on a page that has loaded.
    pub step_timeout_ms: u64,
    /// For a page to load after a navigation, a click or a key that leaves the page.
    pub page_timeout_ms: u64,
    pub poll_ms: u64,
}

/// The login form (spec §3.1 step 3, §3.2 step 2): each field is clicked, then typed into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginLocators {
    pub username: String,
    pub password: String,
    pub submit: String,
    /// The ERP's message when it refuses the login.
    pub error: String,
}

/// How the lines already on a work card are read (spec §3.1 step 7, §3.2 step 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineLocators {
    /// Present once the work card's lines have been drawn.
    pub ready: String,
    /// One line's row; a row whose item text is empty (a header or the "new line" row) is not a line.
    pub row: String,
    /// Inside a row.
    pub item: String,
    /// Inside a row.
    pub name: String,
    /// Inside a row.
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErpLocators {
    AdManager(AdManagerLocators),
    Au2Office(Au2OfficeLocators),
}

/// AD Manager, spec §3.1 steps 4 to 8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdManagerLocators {
    /// The menu link to the worksheet overview.
    pub worksheet_link: String,
    /// Any row of the overview: the page has listed its cases.
    pub case_rows: String,
    /// Template: the case's cell in the overview, clicked to open its work card.
    pub case_cell: String,
    /// The overview's next-page button; absent or disabled on the last page.
    pub next_page: String,
    pub item_input: String,
    /// Autocompleted from the item number; the marker is typed after the name.
    pub name_input: String,
    pub amount_input: String,
    /// Shown when the autocompletion does not know the item.
    pub item_error: String,
    /// Shown when the ERP refuses the saved line.
    pub save_error: String,
}

/// Au2Office, spec §3.2 steps 3 to 8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Au2OfficeLocators {
    pub customer_management_link: String,
    /// Any case in customer management's list: the list has loaded.
    pub case_list_item: String,
    /// Template: the case in the list, clicked to open its work card.
    pub case_link: String,
    /// The empty "new line" row's item number input.
    pub new_item_input: String,
    /// The new line's name cell, which shows the item's name once the ERP has accepted it.
    pub new_item_name: String,
    /// Inside a row: what a double-click on the name cell edits.
    pub name_edit: String,
    /// TABs from the name cell to the amount cell (unit and group lie between).
    pub tabs_to_amount: u8,
    /// The grid's message when the ERP refuses a value.
    pub error: String,
}

impl Script {
    /// The spec's locators, with waits that suit the ERPs on a normal day.
    pub fn default_for(erp: ErpType) -> Script {
        let waits = Waits {
            step_timeout_ms: 10_000,
            page_timeout_ms: 30_000,
            poll_ms: 50,
        };
        match erp {
            ErpType::AdManager => Script {
                waits,
                login: LoginLocators {
                    username: "[formcontrolname='email']".into(),
                    password: "[formcontrolname='password']".into(),
                    submit: "[class='mdc-button__label']".into(),
                    error: "mat-error".into(),
                },
                lines: LineLocators {
                    ready: "worksheet-line-list".into(),
                    row: "worksheet-line-list worksheet-line-row".into(),
                    item: "[class='product-number']".into(),
                    name: "[class='product-name']".into(),
                    amount: "[class='product-amount-amount']".into(),
                },
                erp: ErpLocators::AdManager(AdManagerLocators {
                    worksheet_link: "[routerlink='/worksheet']".into(),
                    case_rows: "(//table)[1]/tbody/tr".into(),
                    case_cell: "(//table)[1]/tbody/tr/td[1][normalize-space(.)='{case}']".into(),
                    next_page: ".mat-mdc-paginator-navigation-next".into(),
                    item_input: "[class='product-number'] input".into(),
                    name_input: "[class='product-name'] input".into(),
                    amount_input: "[class='product-amount'] input".into(),
                    item_error: ".autocomplete-error".into(),
                    save_error: "[role='alert']".into(),
                }),
            },
            ErpType::Au2Office => Script {
                waits,
                login: LoginLocators {
                    username: "#inputEmail".into(),
                    password: "#inputPassword".into(),
                    submit: ".btn".into(),
                    error: ".validation-summary-errors".into(),
                },
                lines: LineLocators {
                    ready: "[col-id='productnumber'] child-cell > input".into(),
                    row: ".ag-row".into(),
                    item: "[col-id='productnumber']".into(),
                    name: "[col-id='productname']".into(),
                    amount: "[col-id='numberOfItems']".into(),
                },
                erp: ErpLocators::Au2Office(Au2OfficeLocators {
                    customer_management_link: "//a[normalize-space(.)='Åben kundestyring']".into(),
                    case_list_item: "//span[@class='font-bold']".into(),
                    case_link: "//span[@class='font-bold' and text()='#{case} ']".into(),
                    new_item_input: "[col-id='productnumber'] child-cell > input".into(),
                    new_item_name: ".ag-row-new [col-id='productname']".into(),
                    name_edit: ".//*[@col-id='productname']//div/div".into(),
                    tabs_to_amount: 3,
                    error: ".toast".into(),
                }),
            },
        }
    }

    /// The ERP this script drives.
    pub fn erp(&self) -> ErpType {
        match self.erp {
            ErpLocators::AdManager(_) => ErpType::AdManager,
            ErpLocators::Au2Office(_) => ErpType::Au2Office,
        }
    }

    /// Every problem, in words a person can fix (empty locator, XPath template without {case}, a wait outside
    /// 100 ms..120 s, …).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let waits = &self.waits;
        for (name, value) in [
            ("waits.step_timeout_ms", waits.step_timeout_ms),
            ("waits.page_timeout_ms", waits.page_timeout_ms),
        ] {
            if !TIMEOUT_MS.contains(&value) {
                problems.push(format!(
                    "{name} is {value}: a wait must be from {} ms to {} ms",
                    TIMEOUT_MS.start(),
                    TIMEOUT_MS.end()
                ));
            }
        }
        if !POLL_MS.contains(&waits.poll_ms) {
            problems.push(format!(
                "waits.poll_ms is {}: poll every {} to {} ms",
                waits.poll_ms,
                POLL_MS.start(),
                POLL_MS.end()
            ));
        } else if waits.poll_ms >= waits.step_timeout_ms {
            problems.push(format!(
                "waits.poll_ms ({}) must be shorter than waits.step_timeout_ms ({})",
                waits.poll_ms, waits.step_timeout_ms
            ));
        }

        let login = &self.login;
        let lines = &self.lines;
        let mut locators = vec![
            ("login.username", &login.username, Kind::Page),
            ("login.password", &login.password, Kind::Page),
            ("login.submit", &login.submit, Kind::Page),
            ("login.error", &login.error, Kind::Page),
            ("lines.ready", &lines.ready, Kind::Page),
            ("lines.row", &lines.row, Kind::Page),
            ("lines.item", &lines.item, Kind::InRow),
            ("lines.name", &lines.name, Kind::InRow),
            ("lines.amount", &lines.amount, Kind::InRow),
        ];
        match &self.erp {
            ErpLocators::AdManager(ad) => locators.extend([
                (
                    "erp.admanager.worksheet_link",
                    &ad.worksheet_link,
                    Kind::Page,
                ),
                ("erp.admanager.case_rows", &ad.case_rows, Kind::Page),
                ("erp.admanager.case_cell", &ad.case_cell, Kind::Template),
                ("erp.admanager.next_page", &ad.next_page, Kind::Page),
                ("erp.admanager.item_input", &ad.item_input, Kind::Page),
                ("erp.admanager.name_input", &ad.name_input, Kind::Page),
                ("erp.admanager.amount_input", &ad.amount_input, Kind::Page),
                ("erp.admanager.item_error", &ad.item_error, Kind::Page),
                ("erp.admanager.save_error", &ad.save_error, Kind::Page),
            ]),
            ErpLocators::Au2Office(au) => {
                locators.extend([
                    (
                        "erp.au2office.customer_management_link",
                        &au.customer_management_link,
                        Kind::Page,
                    ),
                    (
                        "erp.au2office.case_list_item",
                        &au.case_list_item,
                        Kind::Page,
                    ),
                    ("erp.au2office.case_link", &au.case_link, Kind::Template),
                    (
                        "erp.au2office.new_item_input",
                        &au.new_item_input,
                        Kind::Page,
                    ),
                    ("erp.au2office.new_item_name", &au.new_item_name, Kind::Page),
                    ("erp.au2office.name_edit", &au.name_edit, Kind::InRow),
                    ("erp.au2office.error", &au.error, Kind::Page),
                ]);
                if !TABS.contains(&au.tabs_to_amount) {
                    problems.push(format!(
                        "erp.au2office.tabs_to_amount is {}: from {} to {} TABs",
                        au.tabs_to_amount,
                        TABS.start(),
                        TABS.end()
                    ));
                }
            }
        }
        for (name, locator, kind) in locators {
            problems.extend(check_locator(name, locator, kind));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Parses and validates an admin's script.
    pub fn from_json(text: &str) -> Result<Script, Vec<String>> {
        let script: Script = serde_json::from_str(text)
            .map_err(|error| vec![format!("the script is not valid: {error}")])?;
        script.validate()?;
        Ok(script)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a script is plain data")
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Searched in the whole page.
    Page,
    /// Searched within one line's row.
    InRow,
    /// Searched in the whole page once `{case}` is filled in.
    Template,
}

/// CSS or XPath, by how the locator starts (see the module's notes).
pub(crate) fn is_xpath(locator: &str) -> bool {
    ["/", "(", "./", "../"]
        .iter()
        .any(|start| locator.starts_with(start))
}

/// The template with the case number in place of `{case}`.
pub(crate) fn fill(template: &str, case: &str) -> String {
    template.replace(CASE_PLACEHOLDER, case)
}

fn check_locator(name: &str, locator: &str, kind: Kind) -> Vec<String> {
    let trimmed = locator.trim();
    if trimmed.is_empty() {
        return vec![format!("{name} is empty: give a CSS selector or an XPath")];
    }
    let mut problems = Vec::new();
    if trimmed != locator {
        problems.push(format!(
            "{name} starts or ends with spaces: remove them, they decide whether it is read as CSS or XPath"
        ));
    }
    if locator.chars().any(char::is_control) {
        problems.push(format!(
            "{name} holds a line break or another control character"
        ));
    }
    let placeholders = locator.matches(CASE_PLACEHOLDER).count();
    match kind {
        Kind::Template if placeholders == 0 => problems.push(format!(
            "{name} has no {CASE_PLACEHOLDER}: put {CASE_PLACEHOLDER} where the case number goes"
        )),
        Kind::Page | Kind::InRow if placeholders > 0 => problems.push(format!(
            "{name} holds {CASE_PLACEHOLDER}, which is only filled in for the case's locator"
        )),
        _ => {}
    }
    if kind == Kind::InRow && (locator.starts_with('/') || locator.starts_with("(/")) {
        problems.push(format!(
            "{name} is an XPath from the top of the page; it is searched inside one row, so start it with ./"
        ));
    }
    if let Some(problem) = unbalanced(locator) {
        problems.push(format!("{name} ({locator}) {problem}"));
    }
    problems
}

/// Brackets and quotes that do not pair up, the typos that make a browser refuse a locator.
fn unbalanced(locator: &str) -> Option<String> {
    let mut open = Vec::new();
    let mut quote = None;
    for c in locator.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => open.push(c),
            (None, ')' | ']') => {
                let wanted = if c == ')' { '(' } else { '[' };
                if open.pop() != Some(wanted) {
                    return Some(format!("has a {c} that closes nothing"));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Some(format!("has a {q} that is never closed"));
    }
    open.pop()
        .map(|c| format!("has a {c} that is never closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_are_told_apart_by_their_start() {
        assert!(is_xpath("//span"));
        assert!(is_xpath("(//table)[1]"));
        assert!(is_xpath(".//div/div"));
        assert!(!is_xpath(".toast"));
        assert!(!is_xpath("[col-id='x']"));
        assert!(!is_xpath("#inputEmail"));
    }

    #[test]
    fn unbalanced_locators_are_named() {
        assert_eq!(unbalanced("[a='b']"), None);
        assert_eq!(unbalanced("//a[text()=')']"), None);
        assert!(unbalanced("[a='b'").is_some());
        assert!(unbalanced("[a='b]").is_some());
        assert!(unbalanced("a)").is_some());
    }
}
