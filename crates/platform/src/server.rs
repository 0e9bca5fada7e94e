//! The HTTP edge: accepting connections up to a cap, timeouts on slow or silent clients, the client's address
//! (through trusted proxies only) and a graceful stop.
//!
//! axum's own `serve` has none of the limits, so a thousand silent connections or one stalled request body could
//! hold the server; this accept loop drives hyper directly with them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::area::Shutdown;
use crate::web::ClientAddr;

/// The limits of the HTTP edge (settings `http_header_timeout_secs`, `http_body_timeout_secs`,
/// `http_max_connections`, `trusted_proxies`).
#[derive(Debug, Clone)]
pub struct Edge {
    /// A connection must send a request's headers within this long of opening or of its last response: it covers
    /// slow headers and idle keep-alive connections alike.
    pub header_timeout: Duration,
    /// A request body must arrive within this long. Event streams send no body, so this never ends them.
    pub body_timeout: Duration,
    /// Open connections at most (each open screen's event stream is one); more are answered 503 and closed.
    pub max_connections: usize,
    pub trusted_proxies: TrustedProxies,
}

impl Default for Edge {
    fn default() -> Self {
        Edge {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// A list of networks (`10.0.0.0/8`) and single addresses (`192.168.1.5`): trusted proxies, allow-lists.
#[derive(Debug, Clone, Default)]
pub struct Networks(Arc<[IpNet]>);

impl Networks {
    /// Loopback, IPv4 and IPv6: the default allow-list of the legacy contracts, whose clients ran on the host.
    pub fn loopback() -> Self {
        let loopback: [IpNet; 2] = [
            "127.0.0.0/8".parse().expect("the IPv4 loopback network"),
            "::1/128".parse().expect("the IPv6 loopback address"),
        ];
        Networks(loopback.into())
    }

    /// Addresses and networks; blank entries and `none` (an empty list said out loud) are skipped.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| entry.as_ref().trim())
            .filter(|entry| !entry.is_empty() && *entry != "none")
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{entry:?} is not an address or a network such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|networks| Networks(networks.into()))
    }

    /// Whether `address` is in one of the networks (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|network| network.contains(&address))
    }
}

/// A list of networks in a settings section: a TOML list, or one comma-separated text (from a variable).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum NetworkList {
    List(Vec<String>),
    Text(String),
}

impl NetworkList {
    pub fn items(&self) -> Vec<String> {
        match self {
            NetworkList::List(items) => items.clone(),
            NetworkList::Text(text) => text.split(',').map(str::to_owned).collect(),
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed. From anyone else the header is ignored, so a client
/// cannot pick the address its login attempts are throttled by or pass an allow-list.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Networks);

impl TrustedProxies {
    /// Addresses (`10.0.0.5`) and networks (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        Networks::parse(entries).map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.contains(address)
    }

    /// The client of a request that came from `peer`: when `peer` is a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not one (read from the right, since each proxy appends the address it saw).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for hop in forwarded.into_iter().rev() {
            let Ok(address) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// What is answered to a connection over the cap, before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Files the process keeps for itself (database connections, log and data files) beside its connections.
const RESERVED_FILES: usize = 128;

/// Serves `router` on `listener` within `edge`'s limits until `stopping` fires, then stops accepting and lets open
/// connections finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: &Edge,
    mut stopping: Shutdown,
    grace: Duration,
) {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        edge.body_timeout,
    ));
    let cap = connection_cap(edge.max_connections);
    let permits = Arc::new(tokio::sync::Semaphore::new(cap));
    let at_cap = Arc::new(AtomicBool::new(false));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: browsers speak it to a plain-HTTP server, and hyper's protocol detection would wait for a
    // silent connection's first bytes without any timeout.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of files, say: wait a moment rather than spin, and go on serving those already in.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping.wait() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !at_cap.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    cap,
                    "connection cap reached; new connections are answered 503"
                );
            }
            metrics::counter!("tillwire_http_connections_refused_total").increment(1);
            tokio::spawn(refuse(stream));
            continue;
        };
        at_cap.store(false, Ordering::Relaxed);
        let service = connection_service(router.clone(), peer, edge.trusted_proxies.clone());
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            metrics::gauge!("tillwire_http_connections").increment(1);
            // A client that goes away mid-request is its own affair, not the server's error.
            let _ = connection.await;
            metrics::gauge!("tillwire_http_connections").decrement(1);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("connections still open at the end of the grace period; stopping anyway");
        }
    }
}

/// The configured cap, within what the open-files limit leaves after the process's own files.
fn connection_cap(configured: usize) -> usize {
    let files = rlimit::Resource::NOFILE.get().map_or(1024, |(soft, _)| {
        usize::try_from(soft).unwrap_or(usize::MAX)
    });
    configured.min(files.saturating_sub(RESERVED_FILES)).max(1)
}

/// The router for one connection: each request learns the peer and the client behind any trusted proxy.
fn connection_service(
    router: Router,
    peer: SocketAddr,
    proxies: TrustedProxies,
) -> impl tower::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |mut request: Request<Incoming>| {
        let client = proxies.client(peer.ip(), request.headers());
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(ClientAddr(client));
        router.clone().oneshot(request)
    })
}

/// Tells a connection over the cap to come back in a second, and closes it.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(OVER_CAPACITY)).await;
    let _ = stream.shutdown().await;
}

/// Every connection and every open screen's stream holds a file: the soft limit (often 1,024) is raised to the
/// hard one at start, so a shop full of screens and tills does not stop the server accepting anyone.
/// Serves `router` on a free loopback port until the process ends (a simulator in a test or the demo); its base
/// URL, `http://127.0.0.1:PORT`.
pub async fn serve_on_loopback(router: axum::Router) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}"))
}

pub fn raise_open_files_limit() {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((0, 0));
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) if raised > soft => {
            tracing::info!(from = soft, to = raised, "raised the open-files limit")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, limit = soft, "could not raise the open-files limit"),
    }
}

/// Resolves at SIGTERM or Ctrl-C (SIGINT): how a service manager or a person stops a tillwire process.
pub async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.5".into()]).expect("valid");
        let proxy: IpAddr = "10.1.2.3".parse().expect("address");
        let stranger: IpAddr = "203.0.113.9".parse().expect("address");
        // From a stranger the header is ignored.
        assert_eq!(proxies.client(stranger, &forwarded("1.2.3.4")), stranger);
        // From a proxy, the nearest untrusted hop is the client, whatever the client itself claimed before it.
        assert_eq!(
            proxies.client(proxy, &forwarded("6.6.6.6, 198.51.100.7, 192.168.1.5")),
            "198.51.100.7".parse::<IpAddr>().expect("address")
        );
        // A proxy that forwards nothing, or garbage, is the client itself.
        assert_eq!(proxies.client(proxy, &HeaderMap::new()), proxy);
        assert_eq!(proxies.client(proxy, &forwarded("not-an-address")), proxy);
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }
}
