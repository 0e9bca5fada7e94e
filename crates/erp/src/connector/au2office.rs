//! Au2Office's steps after the login (spec §3.2 steps 3 to 8): customer management, the case from its list, the
//! grid's lines read for the marker, the item number typed in the empty row with TAB (the ERP stores a line with
//! amount 1 at once), a reload, then one chain on the new line: a double-click on its name, the marker, TABs to
//! the amount, the amount, TAB. A reload reads it back.

use serde_json::Value;
use thirtyfour::prelude::*;

use super::script::{Au2OfficeLocators, LineLocators, fill};
use super::{Added, FIND_JS, Page, Progress, SeenLine, Stop};
use crate::model::{LineOrder, OrderRef, Reason};

/// What every OilMat marker holds, whichever order it is for.
const OILMAT: &str = "-- OilMat:";

/// The element `target` finds inside the last line's row.
const LAST_LINE_JS: &str = "const [row, item, target] = arguments;\
const lines = all(row, document).filter(line => text(item, line) !== '');\
const last = lines[lines.length - 1];\
return (last && all(target, last)[0]) || null;";

pub(super) async fn add_line(
    page: &mut Page,
    lines: &LineLocators,
    at: &Au2OfficeLocators,
    order: &LineOrder,
    marker: &str,
    progress: &mut Progress,
) -> Result<Added, Stop> {
    open_case(page, at, &order.case_nr).await?;
    if let Some(there) = page.existing(lines, order, marker).await? {
        return Ok(there);
    }
    // After a new login mid-task the line stored from the item number may be there already, still unmarked.
    let resumable =
        progress.item_line_added && is_new_line(last_line(page, lines).await?.as_ref(), order);
    if !resumable {
        add_item(page, at, order).await?;
        progress.item_line_added = true;
        reload(page).await?;
        let what = "find the item's new line";
        let last = last_line(page, lines).await?;
        if !is_new_line(last.as_ref(), order) {
            return Err(Stop::failed(
                Reason::VerifyFailed,
                what,
                format!(
                    "{what}: the last line after saving is {last:?}, not item {} without a marker",
                    order.product_nr
                ),
            ));
        }
    }
    edit_new_line(page, lines, at, order, marker).await?;
    reload(page).await?;
    page.verify(lines, order, marker).await
}

/// The link to customer management, then the case's entry in its list once the list has loaded.
async fn open_case(page: &mut Page, at: &Au2OfficeLocators, case: &OrderRef) -> Result<(), Stop> {
    page.stage = Reason::CaseNotFound;
    let what = "open customer management";
    let link = page.find(&at.customer_management_link, what).await?;
    page.navigate(what, link.click()).await?;
    let what = format!("look for case {case} in the list");
    let entry = fill(&at.case_link, case.as_str());
    let found = page
        .wait(&what, page.step_timeout, || async {
            if let Some(found) = page
                .driver
                .find_all(Page::by(&entry))
                .await?
                .into_iter()
                .next()
            {
                return Ok(Some(Some(found)));
            }
            let listed = !page
                .driver
                .find_all(Page::by(&at.case_list_item))
                .await?
                .is_empty();
            Ok(listed.then_some(None))
        })
        .await?;
    let Some(found) = found else {
        return Err(Stop::failed(
            Reason::CaseNotFound,
            &what,
            format!("case {case} is not in customer management's list"),
        ));
    };
    page.navigate(&format!("open case {case}"), found.click())
        .await
}

/// Spec §3.2 step 6: the item number in the empty row's input and TAB; the ERP shows the item's name in that
/// row once it has stored the line, or its refusal.
async fn add_item(page: &mut Page, at: &Au2OfficeLocators, order: &LineOrder) -> Result<(), Stop> {
    page.stage = Reason::ProductEntryFailed;
    let what = "type the item number in the empty row";
    let input = page.find(&at.new_item_input, what).await?;
    input
        .send_keys(order.product_nr.as_str().to_owned() + Key::Tab)
        .await
        .map_err(|e| page.error(what, e))?;
    let what = "wait for the item to be stored";
    page.wait_accepted(what, &at.error, || async {
        let names = page.driver.find_all(Page::by(&at.new_item_name)).await?;
        Ok(match names.first() {
            Some(name) => !name.text().await?.trim().is_empty(),
            None => false,
        })
    })
    .await
}

/// Spec §3.2 step 8 as one action chain; then waits until the ERP has answered the changes it sent.
async fn edit_new_line(
    page: &mut Page,
    lines: &LineLocators,
    at: &Au2OfficeLocators,
    order: &LineOrder,
    marker: &str,
) -> Result<(), Stop> {
    page.stage = Reason::ProductEntryFailed;
    let what = "edit the new line's name and amount";
    let args = [&lines.row, &lines.item, &at.name_edit]
        .map(|locator| Value::from(locator.as_str()))
        .to_vec();
    let target = page
        .js(what, &format!("{FIND_JS}{LAST_LINE_JS}"), args)
        .await?;
    if target.json().is_null() {
        return Err(Stop::failed(
            Reason::ProductEntryFailed,
            what,
            format!(
                "{what}: the new line has no name cell to double-click ({})",
                at.name_edit
            ),
        ));
    }
    let target = target.element().map_err(|e| page.error(what, e))?;
    page.watch_requests(what).await?;
    let mut chain = page
        .driver
        .action_chain()
        .double_click_element(&target)
        .send_keys(marker);
    for _ in 0..at.tabs_to_amount {
        chain = chain.send_keys(Key::Tab);
    }
    chain
        .send_keys(order.amount.to_string() + Key::Tab)
        .perform()
        .await
        .map_err(|e| page.error(what, e))?;
    page.requests_settled(what).await?;
    page.refused(what, &at.error).await
}

/// Spec §3.2 step 7: the grid shows a stored line only after a reload.
async fn reload(page: &Page) -> Result<(), Stop> {
    page.navigate("reload the case", page.driver.refresh())
        .await
}

async fn last_line(page: &mut Page, lines: &LineLocators) -> Result<Option<SeenLine>, Stop> {
    page.stage = Reason::VerifyFailed;
    Ok(page.read_lines(lines, "read the case's lines").await?.pop())
}

/// The line the item number stored: the order's item, marked for no OilMat order yet.
fn is_new_line(line: Option<&SeenLine>, order: &LineOrder) -> bool {
    line.is_some_and(|line| line.item == order.product_nr.as_str() && !line.name.contains(OILMAT))
}
