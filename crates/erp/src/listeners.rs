//! Each active integration with a port gets its own listener, where OilMat's clients call it as they called
//! `python app.py PORT …`. The supervisor follows the integrations: it opens a listener when one is added or
//! started, closes it when one is killed, deactivated or removed, and moves it when its port changes. A port it
//! cannot bind (taken by another process, or by another instance on this host) is tried again; one
//! integration's listener never stops another's. At start it turns on the worker of every active integration
//! with autostart.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tillwire_platform::area::Shutdown;

use crate::Erp;
use crate::integrations::IntegrationId;

/// How often the integrations are read again when no change was announced (another instance's, a lost event).
const RECHECK: Duration = Duration::from_secs(5);

struct Open {
    port: u16,
    stop: tokio::sync::watch::Sender<bool>,
    served: tokio::task::JoinHandle<()>,
}

/// Runs until `shutdown`: keeps the listeners in step with the integrations.
pub async fn run(erp: Erp, host: IpAddr, mut shutdown: Shutdown) -> anyhow::Result<()> {
    match erp.integrations.autostart().await {
        Ok(0) => {}
        Ok(started) => tracing::info!(started, "erp: workers started by autostart"),
        Err(error) => tracing::warn!(%error, "erp: could not autostart the workers"),
    }
    let mut events = erp.platform.events.subscribe();
    let mut open: HashMap<IntegrationId, Open> = HashMap::new();
    loop {
        reconcile(&erp, host, &mut open).await;
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(RECHECK) => {}
            event = events.recv() => {
                if let Ok(event) = event && event.topic != crate::integrations::TOPIC_INTEGRATIONS {
                    continue;
                }
            }
        }
    }
    for (id, listener) in open.drain() {
        close(listener).await;
        erp.listeners.set(id, None);
    }
    erp.worker.close_all().await;
    Ok(())
}

async fn close(listener: Open) {
    listener.stop.send_replace(true);
    let _ = listener.served.await;
}

async fn reconcile(erp: &Erp, host: IpAddr, open: &mut HashMap<IntegrationId, Open>) {
    let integrations = match erp.integrations.list().await {
        Ok(integrations) => integrations,
        Err(error) => {
            tracing::warn!(%error, "erp: could not read the integrations");
            return;
        }
    };
    let wanted: HashMap<IntegrationId, u16> = integrations
        .iter()
        .filter(|integration| integration.active)
        .filter_map(|integration| integration.port.map(|port| (integration.id, port)))
        .collect();
    let stale: Vec<IntegrationId> = open
        .iter()
        .filter(|(id, listener)| wanted.get(id) != Some(&listener.port))
        .map(|(id, _)| *id)
        .collect();
    for id in stale {
        if let Some(listener) = open.remove(&id) {
            tracing::info!(integration = %id, port = listener.port, "erp: listener closed");
            close(listener).await;
        }
    }
    erp.listeners.keep_only(&wanted);
    for (id, port) in wanted {
        if open.contains_key(&id) {
            continue;
        }
        let address = SocketAddr::new(host, port);
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => {
                erp.listeners.set(
                    id,
                    Some(ListenerState::Listening {
                        address: address.to_string(),
                    }),
                );
                tracing::info!(integration = %id, %address, "erp: listening for OilMat");
                let (stop, stopped) = Shutdown::channel();
                let router = crate::contract::own_listener(erp.clone(), id);
                let edge = erp.platform.settings.http.clone();
                let grace = erp.platform.settings.shutdown_grace;
                let served = tokio::spawn(async move {
                    tillwire_platform::server::serve(listener, router, &edge, stopped, grace).await;
                });
                open.insert(id, Open { port, stop, served });
            }
            Err(error) => {
                let refused = ListenerState::Refused {
                    address: address.to_string(),
                    error: error.to_string(),
                };
                // Said once per address and cause, not every few seconds: the state shown already says it.
                if erp.listeners.get(id).as_ref() != Some(&refused) {
                    tracing::warn!(integration = %id, %address, %error, "erp: cannot listen; trying again");
                    erp.listeners.set(id, Some(refused));
                }
            }
        }
    }
}

/// What this process's supervisor did about each integration's listener, for the pages and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ListenerState {
    Listening { address: String },
    Refused { address: String, error: String },
}

/// The listeners' states, shared with the pages.
#[derive(Clone, Default)]
pub struct Listeners(Arc<Mutex<HashMap<IntegrationId, ListenerState>>>);

impl Listeners {
    pub fn get(&self, id: IntegrationId) -> Option<ListenerState> {
        self.0
            .lock()
            .expect("the listeners lock is never poisoned")
            .get(&id)
            .cloned()
    }

    fn keep_only(&self, wanted: &HashMap<IntegrationId, u16>) {
        self.0
            .lock()
            .expect("the listeners lock is never poisoned")
            .retain(|id, _| wanted.contains_key(id));
    }

    fn set(&self, id: IntegrationId, state: Option<ListenerState>) {
        let mut states = self.0.lock().expect("the listeners lock is never poisoned");
        match state {
            Some(state) => states.insert(id, state),
            None => states.remove(&id),
        };
    }
}
