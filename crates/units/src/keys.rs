//! Device keys: what a till or a screen presents to act for its unit. They are the platform's service tokens with
//! the `device` scope and the unit they act for, so issuing, hashing, revoking and the audit are the platform's.

use tillwire_platform::Store;
use tillwire_platform::tokens::{IssuedToken, Scope, TokenName, TokenRow, Tokens};

use crate::{UnitError, UnitId};

pub struct ApiKeys<'a>(pub &'a Store);

impl ApiKeys<'_> {
    pub async fn issue(
        &self,
        unit: UnitId,
        name: &str,
        actor: &str,
    ) -> Result<IssuedToken, UnitError> {
        let name = TokenName::parse(name)?;
        Ok(Tokens(self.0)
            .issue(&name, &Scope::DEVICE, Some(unit.0), actor)
            .await?)
    }

    /// The unit a presented key acts for, if it is a known, unrevoked device key.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<UnitId>, UnitError> {
        let identity = Tokens(self.0).authenticate(presented).await?;
        Ok(identity.and_then(|i| i.device_unit()).map(UnitId))
    }

    pub async fn list(&self) -> Result<Vec<TokenRow>, UnitError> {
        Ok(Tokens(self.0).list(Some(&Scope::DEVICE)).await?)
    }

    /// Revokes a device key (not another kind of token: this page only manages device keys).
    pub async fn revoke(&self, id: i64, actor: &str) -> Result<(), UnitError> {
        Ok(Tokens(self.0).revoke_of(&Scope::DEVICE, id, actor).await?)
    }
}
