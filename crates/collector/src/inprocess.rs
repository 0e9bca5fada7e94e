//! In-process mode (inside `tillwire serve`): receipts go straight to the kitchen's import, no HTTP hop.
//! The de-duplication key keeps ELQ's `check_date` (the shift-open date), but the order is filed under the
//! business day of the sale's real commit time, so a shift that crosses midnight lands on today's screens.

use tillwire_kitchen::import::{ImportOutcome, Receipt};
use tillwire_kitchen::model::Quantity;
use tillwire_kitchen::{Kitchen, ReceiptKey};
use tillwire_units::UnitId;

use crate::reader::SaleReceipt;
use crate::run::{Ack, Refusal, Sink, to_utc};

#[derive(Clone)]
pub struct KitchenSink {
    pub kitchen: Kitchen,
    pub unit: UnitId,
}

impl Sink for KitchenSink {
    async fn deliver(&self, sale: &SaleReceipt) -> Result<Ack, Refusal> {
        let transient = |e: tillwire_kitchen::KitchenError| Refusal::Transient(e.to_string());
        let key = ReceiptKey {
            unit: self.unit,
            cash_number: sale.cash_id,
            shift_id: sale.shift_id,
            check_date: sale.check_date,
            check_id: sale.check_id,
        };
        let context = self
            .kitchen
            .receipt_context(self.unit, sale.cash_id, Some(&key))
            .await
            .map_err(transient)?
            .ok_or_else(|| {
                Refusal::Permanent(format!(
                    "register {} is not set up in this unit",
                    sale.cash_id
                ))
            })?;
        if context.seen {
            return Ok(Ack::AlreadyImported);
        }
        let zone = self.kitchen.platform.settings.timezone;
        let business_day = match sale.position {
            Some(position) => self.kitchen.business_day(to_utc(position.commit, zone)),
            None => sale.check_date,
        };
        // A count that cannot be an amount (zero, negative) matches no ware, as in the legacy import.
        let lines: Vec<_> = sale
            .wares
            .iter()
            .filter_map(|(code, count)| Quantity::parse(*count).map(|q| (code.clone(), q)))
            .collect();
        if let Some(code) = tillwire_kitchen::model::over_cap(&lines) {
            return Err(Refusal::Permanent(format!(
                "ware {code}: the quantity is over the limit of one line"
            )));
        }
        let receipt = Receipt {
            key,
            business_day,
            lines,
        };
        match self.kitchen.import_receipt(&receipt, &context).await {
            Ok(ImportOutcome::Registered(registered)) => Ok(Ack::Registered {
                number: registered.number,
            }),
            Ok(ImportOutcome::NothingToRegister) => Ok(Ack::NothingToRegister),
            Ok(ImportOutcome::AlreadyImported) => Ok(Ack::AlreadyImported),
            Err(error) => Err(transient(error)),
        }
    }
}
