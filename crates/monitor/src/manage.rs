//! Changing registers, whoever asks (the admin page, the API): one rule for registers declared in
//! `tillwire.toml` (their name, address, unit, zone and region come from the file, which wins at every start, so
//! only their enabled flag and thresholds change elsewhere), and the poller and live pages told at once.

use tillwire_platform::{Event, Platform};

use crate::model::RegisterId;
use crate::storage::{MonitorError, NewRegister, Register, Registers};

pub async fn create(platform: &Platform, new: &NewRegister) -> Result<Register, MonitorError> {
    let registers = Registers(platform.store.clone());
    let id = registers.create(new).await?;
    let created = registers.get(id).await?;
    told(platform, &[created.unit_id]).await;
    Ok(created)
}

/// The register as it was, and as it is now.
pub async fn update(
    platform: &Platform,
    id: RegisterId,
    new: &NewRegister,
) -> Result<(Register, Register), MonitorError> {
    let registers = Registers(platform.store.clone());
    let before = registers.get(id).await?;
    let from_file = (
        before.name.as_str(),
        before.url.as_str(),
        before.unit_id,
        before.timezone.as_deref(),
        before.region.as_str(),
    );
    let asked = (
        new.name.as_str(),
        new.url.as_str(),
        new.unit_id,
        new.zone.map(|zone| zone.name()),
        new.region.as_str(),
    );
    if before.declared && from_file != asked {
        return Err(MonitorError::Declared(before.name));
    }
    registers.update(id, new).await?;
    let after = registers.get(id).await?;
    told(platform, &[before.unit_id, after.unit_id]).await;
    Ok((before, after))
}

/// The register removed, with its state, incidents and history.
pub async fn delete(platform: &Platform, id: RegisterId) -> Result<Register, MonitorError> {
    let registers = Registers(platform.store.clone());
    let register = registers.get(id).await?;
    if register.declared {
        return Err(MonitorError::Declared(register.name));
    }
    registers.delete(id).await?;
    told(platform, &[register.unit_id]).await;
    Ok(register)
}

/// Tells the poller (it rereads registers, thresholds and windows) and the live pages (they fetch their page
/// again) that something of these units changed.
pub async fn told(platform: &Platform, units: &[i64]) {
    let mut units = units.to_vec();
    units.sort_unstable();
    units.dedup();
    for unit_id in units {
        platform
            .events
            .publish(Event {
                topic: crate::TOPIC_REGISTERS_CHANGED.into(),
                unit_id,
                payload: serde_json::Value::Null,
            })
            .await;
    }
}
