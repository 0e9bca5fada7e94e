//! `tillwire erp run PORT WORKSHOP TYPE [--erp-url URL]`, the drop-in for `python app.py PORT WORKSHOP TYPE`: the
//! workshop's integration is created or brought in line with the arguments (its other settings, such as a login
//! set on the page, are kept), and `/kill` ends the process, as the original's did.

use std::sync::atomic::{AtomicBool, Ordering};

use tillwire_platform::Platform;

use crate::integrations::{ErpUrl, Integration, IntegrationSpec, Integrations, Workshop};
use crate::model::ErpType;

/// Set by `erp run` before the areas are assembled: the process is one integration.
static STANDALONE: AtomicBool = AtomicBool::new(false);

pub fn is_standalone() -> bool {
    STANDALONE.load(Ordering::Relaxed)
}

pub async fn prepare(
    platform: &Platform,
    port: u16,
    workshop: &str,
    erp_type: ErpType,
    erp_url: Option<&str>,
) -> anyhow::Result<Integration> {
    let en = |text: tillwire_platform::Text| {
        anyhow::anyhow!(text.get(tillwire_platform::web::Lang::En).to_owned())
    };
    let workshop = Workshop::parse(workshop).map_err(en)?;
    let base_url = erp_url.map(ErpUrl::parse).transpose().map_err(en)?;
    let integrations =
        Integrations::new(platform.store.clone(), platform.settings.data_dir.clone());
    let integration = match integrations.by_workshop(workshop.as_str()).await {
        Ok(existing) => {
            let mut spec = IntegrationSpec::new(workshop, erp_type);
            spec.base_url = match (base_url, existing.erp_type == erp_type) {
                (Some(url), _) => url,
                (None, true) => existing.base_url.clone(),
                (None, false) => spec.base_url,
            };
            spec.unit_id = existing.unit_id;
            spec.username = existing.username.clone();
            spec.active = true;
            spec.autostart = existing.autostart;
            spec.port = Some(port);
            spec.max_attempts = existing.max_attempts;
            spec.task_timeout_secs = existing.task_timeout_secs;
            if existing.erp_type == erp_type {
                spec.script = existing.script.clone();
            }
            integrations.update(existing.id, &spec, "erp run").await?
        }
        Err(_) => {
            let mut spec = IntegrationSpec::new(workshop, erp_type);
            if let Some(url) = base_url {
                spec.base_url = url;
            }
            spec.port = Some(port);
            integrations.create(&spec, "erp run").await?
        }
    };
    // OilMat's worker starts parked (spec §1.6) unless autostart says otherwise.
    integrations
        .set_worker(integration.id, integration.autostart)
        .await?;
    STANDALONE.store(true, Ordering::Relaxed);
    Ok(integrations.get(integration.id).await?)
}
