//! AD Manager's steps after the login (spec §3.1 steps 4 to 8): the worksheet overview searched page by page for
//! the case, the work card's lines read for the marker, then the entry row: item number and TAB (the ERP fills
//! in the name), the marker after the name, the amount, and ENTER to the focused field, which saves and reloads
//! the work card with the new line.

use thirtyfour::prelude::*;

use super::script::{AdManagerLocators, LineLocators, fill};
use super::{Added, Page, Stop};
use crate::model::{LineOrder, OrderRef, Reason};

/// Enough for any workshop; a paginator that never ends is a fault, not a long list.
const MAX_PAGES: usize = 200;

pub(super) async fn add_line(
    page: &mut Page,
    lines: &LineLocators,
    at: &AdManagerLocators,
    order: &LineOrder,
    marker: &str,
) -> Result<Added, Stop> {
    open_case(page, at, &order.case_nr).await?;
    if let Some(there) = page.existing(lines, order, marker).await? {
        return Ok(there);
    }
    enter_line(page, at, order, marker).await?;
    page.verify(lines, order, marker).await
}

/// The overview from the menu, then each page in turn until one lists the case, whose cell opens it.
async fn open_case(page: &mut Page, at: &AdManagerLocators, case: &OrderRef) -> Result<(), Stop> {
    page.stage = Reason::CaseNotFound;
    let what = "open the worksheet overview";
    let link = page.find(&at.worksheet_link, what).await?;
    page.navigate(what, link.click()).await?;
    let cell = fill(&at.case_cell, case.as_str());
    for number in 1..=MAX_PAGES {
        let what = format!("look for case {case} on page {number} of the overview");
        page.present(&at.case_rows, &what).await?;
        if let Some(found) = page.find_now(&cell, &what).await? {
            return page
                .navigate(&format!("open case {case}"), found.click())
                .await;
        }
        let next = match page.find_now(&at.next_page, &what).await? {
            Some(next) if next.is_enabled().await.map_err(|e| page.error(&what, e))? => next,
            _ => {
                return Err(Stop::failed(
                    Reason::CaseNotFound,
                    &what,
                    format!("case {case} is on none of the overview's {number} page(s)"),
                ));
            }
        };
        page.navigate(
            &format!("open page {} of the overview", number + 1),
            next.click(),
        )
        .await?;
    }
    Err(Stop::failed(
        Reason::CaseNotFound,
        "look for the case",
        format!("case {case} is not on the overview's first {MAX_PAGES} pages"),
    ))
}

/// Spec §3.1 step 8, with waits for what the original slept through: the name filled in (or the ERP's refusal),
/// the marker appended to it, and after ENTER the reloaded work card (or the ERP's refusal).
async fn enter_line(
    page: &mut Page,
    at: &AdManagerLocators,
    order: &LineOrder,
    marker: &str,
) -> Result<(), Stop> {
    page.stage = Reason::ProductEntryFailed;
    let what = "type the item number";
    let item = page.find(&at.item_input, what).await?;
    item.clear().await.map_err(|e| page.error(what, e))?;
    item.send_keys(order.product_nr.as_str().to_owned() + Key::Tab)
        .await
        .map_err(|e| page.error(what, e))?;

    let what = "wait for the item's name";
    let name = page.find(&at.name_input, what).await?;
    page.wait_accepted(what, &at.item_error, || async {
        Ok(name.value().await?.is_some_and(|value| !value.is_empty()))
    })
    .await?;
    let filled = name
        .value()
        .await
        .map_err(|e| page.error(what, e))?
        .unwrap_or_default();

    let what = "type the marker after the name";
    name.click().await.map_err(|e| page.error(what, e))?;
    name.send_keys(marker.to_owned() + Key::Tab)
        .await
        .map_err(|e| page.error(what, e))?;
    let named = name
        .value()
        .await
        .map_err(|e| page.error(what, e))?
        .unwrap_or_default();
    if named != format!("{filled}{marker}") {
        return Err(Stop::failed(
            Reason::ProductEntryFailed,
            what,
            format!("{what}: the name reads {named:?}, not {filled:?} followed by the marker"),
        ));
    }

    let what = "type the amount";
    let amount = page.find(&at.amount_input, what).await?;
    amount.click().await.map_err(|e| page.error(what, e))?;
    amount.clear().await.map_err(|e| page.error(what, e))?;
    amount
        .send_keys(order.amount.to_string())
        .await
        .map_err(|e| page.error(what, e))?;

    // ENTER on the element itself did not submit (spec §3.1 step 8.4): a key action to the focused field does.
    let what = "save the line with ENTER";
    let enter = page.driver.action_chain().send_keys(Key::Enter);
    page.navigate(what, enter.perform()).await?;
    page.refused(what, &at.save_error).await
}
