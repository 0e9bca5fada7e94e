//! The webhook emitter (B.9): POSTs the outbox's events as JSON arrays to each organization's registered URL with
//! `Authorization: <authToken>` (the bare token, as iiko sends it), shaped by [`WebhookBehaviour`]. One
//! deliverer runs at a time, so batches leave in the order their events happened (unless told to reorder).

use tokio::time::sleep;

use super::state::Batch;
use super::{CloudSim, WebhookAttempt, WebhookBehaviour};

impl CloudSim {
    /// What `webhooks/update_settings` stored for the organization (its request body), if anything.
    pub fn webhook_settings(&self, organization: &str) -> Option<serde_json::Value> {
        self.with(|inner| {
            inner
                .webhooks
                .get(organization)
                .map(|settings| settings.stored.clone())
        })
    }

    /// How events are sent from now on (events queued already included).
    pub fn set_webhooks(&self, behaviour: WebhookBehaviour) {
        self.with(|inner| inner.behaviour = behaviour);
    }

    /// Delivers everything queued, retries included, and returns once every answer (or give-up) is in; a
    /// delivery already under way is waited for.
    pub async fn flush_webhooks(&self) {
        let _deliverer = self.delivery.lock().await;
        self.drain().await;
    }

    /// Every POST made so far, oldest first.
    pub fn webhook_log(&self) -> Vec<WebhookAttempt> {
        self.with(|inner| inner.webhook_log.clone())
    }

    /// After a change: when an event was queued and sending is automatic, a deliverer is started (if there is a
    /// runtime to run it; otherwise the event waits for a flush).
    pub(super) fn queued(&self, queued: bool) {
        if !queued || !self.with(|inner| inner.behaviour.auto) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let sim = self.clone();
            runtime.spawn(async move { sim.flush_webhooks().await });
        }
    }

    /// Sends batches until the outbox is empty. The delay comes before a batch is taken, so events that happen
    /// meanwhile can join it.
    async fn drain(&self) {
        loop {
            let (empty, behaviour) =
                self.with(|inner| (inner.outbox_is_empty(), inner.behaviour.clone()));
            if empty {
                return;
            }
            sleep(behaviour.delay).await;
            let Some(batch) = self.with(|inner| inner.take_batch()) else {
                return;
            };
            self.deliver(&batch, &behaviour).await;
            if behaviour.duplicate {
                sleep(behaviour.delay).await;
                self.deliver(&batch, &behaviour).await;
            }
        }
    }

    /// POSTs the batch, then again after each retry interval while the answer is not 2xx; after the last one the
    /// events are dropped, as iiko does after an hour.
    async fn deliver(&self, batch: &Batch, behaviour: &WebhookBehaviour) {
        if self.post(batch, 0).await {
            return;
        }
        for (retry, interval) in behaviour.retry_intervals.iter().enumerate() {
            sleep(*interval + behaviour.delay).await;
            if self.post(batch, retry + 1).await {
                return;
            }
        }
        tracing::info!(url = %batch.uri, events = batch.events.len(), "iikoCloud sim: webhook given up");
    }

    /// One POST, logged; true for a 2xx answer.
    async fn post(&self, batch: &Batch, retry: usize) -> bool {
        let mut request = self.http.post(&batch.uri).json(&batch.events);
        if let Some(token) = &batch.auth_token {
            request = request.header(reqwest::header::AUTHORIZATION, token);
        }
        let (status, error) = match request.send().await {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(error.to_string())),
        };
        self.with(|inner| {
            inner.webhook_log.push(WebhookAttempt {
                organization_id: batch.organization.clone(),
                url: batch.uri.clone(),
                events: batch.events.clone(),
                status,
                error,
                retry,
            })
        });
        status.is_some_and(|status| (200..300).contains(&status))
    }
}
