//! Which unit a screen shows when its address names none: the only unit straight away, or, in a chain, a page
//! to pick one (with a search, since a chain may have hundreds). A paired screen opens its own unit.

use askama::Template;
use axum::response::Response;
use tillwire_platform::CurrentUser;
use tillwire_platform::web::{Lang, PageContext, render};

use crate::{Unit, UnitError, UnitId, Units};

/// The unit of a screen's page, or the picker page to answer instead.
pub enum Choice {
    Unit(UnitId),
    Pick(Response),
}

/// What a screen's page asks for: its own address (the picker's links come back to it with `?unit=`), the unit
/// asked for, and the picker's search text.
pub struct Screen<'a> {
    pub path: &'a str,
    pub unit: Option<i64>,
    pub search: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "unit_picker.html")]
struct PickerPage<'a> {
    page: PageContext,
    path: &'a str,
    search: &'a str,
    units: Vec<Unit>,
}

impl Units<'_> {
    /// The unit `screen` asked for; without one, the only unit, or a page to pick one of several.
    pub async fn choose(
        &self,
        screen: Screen<'_>,
        lang: Lang,
        user: Option<CurrentUser>,
    ) -> Result<Choice, UnitError> {
        // A paired screen opens its own unit.
        let paired = user
            .as_ref()
            .and_then(|u| u.screen.as_ref())
            .map(|s| s.unit_id);
        if let Some(id) = screen.unit.or(paired) {
            return Ok(Choice::Unit(self.get(UnitId(id)).await?.unit_id()));
        }
        let units = self.list().await?;
        if let [only] = units.as_slice() {
            return Ok(Choice::Unit(only.unit_id()));
        }
        let search = screen.search.unwrap_or("").trim();
        let wanted = search.to_lowercase();
        let units = units
            .into_iter()
            .filter(|unit| unit.name.to_lowercase().contains(&wanted))
            .collect();
        let title = lang.pick("Выберите подразделение", "Choose a unit");
        Ok(Choice::Pick(render(&PickerPage {
            page: PageContext::new(title, lang, user),
            path: screen.path,
            search,
            units,
        })))
    }
}
