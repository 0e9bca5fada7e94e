//! What the chain's bot asks of the directory for one chat, without going through HTTP: register the chat, redeem
//! an access code (throttled as the API throttles it), what the chat's role offers, and the chat's subscriptions
//! (its routes), added and removed idempotently as buttons need them. Writes invalidate the cached pages.

use std::net::IpAddr;

use tillwire_platform::{Store, read};

use crate::access::AccessCode;
use crate::error::messages;
use crate::input::Page;
use crate::storage::{Catalog, RouteRequest};
use crate::{CodeLimiter, DirectoryError};

pub use crate::storage::{NewChat, Region, ReportTypeItem, RoleUnitItem};

/// Every row of a role's lists at once: a role grants tens of units, not thousands.
const ALL: Page = Page {
    limit: 10_000,
    offset: 0,
};

/// One route of a chat, with the names the bot shows.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subscription {
    pub report_type_id: i64,
    pub report_type: String,
    pub unit_id: i64,
    pub unit: String,
}

#[derive(Clone)]
pub struct Subscriptions(pub Store);

impl Subscriptions {
    fn catalog(&self) -> Catalog<'_> {
        Catalog(&self.0)
    }

    /// Registers a chat unless it is known; whether it was new.
    pub async fn register(&self, chat: &NewChat, actor: &str) -> Result<bool, DirectoryError> {
        match self.catalog().create_chat(chat, actor).await {
            Ok(()) => {
                crate::cache::changed();
                Ok(true)
            }
            Err(DirectoryError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The chat's role; `None` for a chat without one or an unknown chat.
    pub async fn role(&self, chat_id: i64) -> Result<Option<i64>, DirectoryError> {
        match self.catalog().chat(chat_id).await {
            Ok(chat) => Ok(chat.role_id),
            Err(DirectoryError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Gives the chat the role of `code`, unless `address` has used up its wrong codes for the chat
    /// ([`DirectoryError::Throttled`]). A wrong code (`NotFound`) or one of the wrong length (`Validation`) is
    /// counted; a right one never is. The compatible API's `PATCH /roles/users/{id}/` comes here too.
    pub async fn redeem(
        &self,
        limiter: &CodeLimiter,
        address: IpAddr,
        chat_id: i64,
        code: &str,
        actor: &str,
    ) -> Result<(), DirectoryError> {
        limiter.admit(chat_id, address)?;
        let assigned = match AccessCode::parse(code) {
            Ok(code) => self.catalog().assign_role(chat_id, &code, actor).await,
            Err(error) => Err(error),
        };
        if matches!(
            assigned,
            Err(DirectoryError::NotFound(_) | DirectoryError::Validation(_))
        ) {
            limiter.wrong(chat_id, address);
        }
        if assigned.is_ok() {
            crate::cache::changed();
        }
        assigned
    }

    /// The report types a role offers to subscribe to: the active ones it grants, by priority, except headings
    /// (a type with sub-types, such as `STATISTICS`: reports go out under its sub-types).
    pub async fn report_types(&self, role_id: i64) -> Result<Vec<ReportTypeItem>, DirectoryError> {
        Ok(read!(&self.0, db => sqlx::query_as(
            "SELECT t.id, t.name, t.verbose_name FROM directory_role_report_types rt
             JOIN directory_report_types t ON t.id = rt.report_type_id
             WHERE rt.role_id = $1 AND t.is_active
               AND NOT EXISTS (SELECT 1 FROM directory_report_types c WHERE c.parent_id = t.id)
             ORDER BY t.priority DESC, t.id",
        )
        .bind(role_id)
        .fetch_all(db)
        .await)?)
    }

    /// The units a role grants, by id.
    pub async fn units(&self, role_id: i64) -> Result<Vec<RoleUnitItem>, DirectoryError> {
        self.catalog().role_units(role_id, None, ALL).await
    }

    /// The regions of a role's units, by id.
    pub async fn regions(&self, role_id: i64) -> Result<Vec<Region>, DirectoryError> {
        self.catalog().role_regions(role_id, ALL).await
    }

    /// Every route of a chat, by report type priority, then unit id.
    pub async fn of_chat(&self, chat_id: i64) -> Result<Vec<Subscription>, DirectoryError> {
        Ok(read!(&self.0, db => sqlx::query_as(
            "SELECT t.id AS report_type_id, t.name AS report_type, u.id AS unit_id, u.name AS unit
             FROM directory_routes r JOIN directory_chats c ON c.id = r.chat_id
             JOIN directory_report_types t ON t.id = r.report_type_id JOIN units u ON u.id = r.unit_id
             WHERE c.chat_id = $1 ORDER BY t.priority DESC, t.id, u.id",
        )
        .bind(chat_id)
        .fetch_all(db)
        .await)?)
    }

    /// Routes `report_type_id` for `unit_ids` to the chat, on the chat's own role; routes it has are kept. How many
    /// were added. Refused (`Forbidden`) when the role does not grant them or the type is inactive.
    pub async fn ensure(
        &self,
        chat_id: i64,
        report_type_id: i64,
        unit_ids: &[i64],
        actor: &str,
    ) -> Result<u64, DirectoryError> {
        let request = RouteRequest {
            report_type_id,
            chat_id,
            user_chat_id: chat_id,
            unit_ids: unit_ids.to_vec(),
        };
        let added = self.catalog().ensure_routes(&request, actor).await?;
        crate::cache::changed();
        Ok(added)
    }

    /// Removes the chat's routes of `report_type_id` for `unit_ids`; how many there were.
    pub async fn remove(
        &self,
        chat_id: i64,
        report_type_id: i64,
        unit_ids: &[i64],
        actor: &str,
    ) -> Result<u64, DirectoryError> {
        let removed = self
            .catalog()
            .delete_routes(chat_id, report_type_id, unit_ids, actor)
            .await?;
        crate::cache::changed();
        Ok(removed)
    }
}

/// Whether an error is the original's "no such role" (a wrong access code).
pub fn is_wrong_code(error: &DirectoryError) -> bool {
    matches!(
        error,
        DirectoryError::NotFound(messages::ROLE_NOT_FOUND) | DirectoryError::Validation(_)
    )
}
