//! Who may call the directory: service clients with an API token, or any client on an allow-listed network
//! (default loopback, so existing unauthenticated clients keep working where the operator allows it). Also the
//! access codes' hashing and their rate limits.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tillwire_platform::config::{ConfigError, EnvVar};
use tillwire_platform::server::Networks;
use tillwire_platform::tokens::{Scope, Tokens};
use tillwire_platform::web::ClientAddr;
use tillwire_platform::{HttpError, Settings, random_token, sha256_hex};

use crate::{Directory, DirectoryError};

const ALLOW_VAR: &str = "TILLWIRE_DIRECTORY_ALLOW";

/// The networks whose clients need no token.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub allow: Networks,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            allow: Networks::loopback(),
        }
    }
}

/// `[directory] allow`: a list of networks, or (as `TILLWIRE_DIRECTORY_ALLOW` gives it) one comma-separated text;
/// `none` stands for an empty list.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DirectorySettings {
    allow: Option<tillwire_platform::server::NetworkList>,
}

/// The directory's variable.
pub const ENV: &[EnvVar] = &[EnvVar::text("directory.allow", &[ALLOW_VAR])];

impl AccessConfig {
    /// `[directory] allow` (or `TILLWIRE_DIRECTORY_ALLOW`), else loopback.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let section: DirectorySettings = settings.section("directory")?;
        Ok(match section.allow {
            None => AccessConfig::default(),
            Some(list) => AccessConfig {
                allow: Networks::parse(&list.items())
                    .map_err(|message| settings.invalid("directory.allow", message))?,
            },
        })
    }

    pub fn allows(&self, address: IpAddr) -> bool {
        self.allow.contains(address)
    }
}

/// Who made a request, for the audit log: a token's name or the allow-listed address.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// DRF's words for a refused cross-site write.
const CROSS_SITE: &str =
    "CSRF Failed: Origin checking failed - does not match any trusted origins.";

/// Whether a browser sent this request from another site: `Sec-Fetch-Site` says so, or (from browsers without
/// it) an `Origin` that is not this host.
fn cross_site(headers: &axum::http::HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Middleware on the API: a presented token must be valid; without one, the address must be allow-listed.
pub async fn guard(
    State(directory): State<Directory>,
    ClientAddr(address): ClientAddr,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match presented_token(request.headers()) {
        Some(token) => match Tokens(&directory.platform.store).authenticate(token).await {
            Ok(Some(identity)) if identity.allows(crate::AREA.name) => {
                Caller(format!("token:{}", identity.name))
            }
            Ok(Some(identity)) => {
                tracing::warn!(%address, token = identity.id, scope = %identity.scope, "directory request with a token of another scope");
                return DirectoryError::Forbidden(NOT_PERMITTED.to_owned()).into_response();
            }
            Ok(None) => {
                tracing::warn!(%address, "directory request with an unknown token");
                return DirectoryError::BadToken.into_response();
            }
            Err(error) => return HttpError::from(error).into_response(),
        },
        // A browser on an allow-listed network must not be made to write by another site's page (a form posted
        // cross-site carries no token, and would pass the allow-list); programs send no such headers.
        None if !request.method().is_safe() && cross_site(request.headers()) => {
            tracing::warn!(%address, "cross-site browser write to the directory refused");
            return DirectoryError::Forbidden(CROSS_SITE.to_owned()).into_response();
        }
        None if directory.access.allows(address) => Caller(format!("address:{address}")),
        None => {
            tracing::warn!(%address, "directory request without a token from outside the allow-list");
            return DirectoryError::Unauthenticated.into_response();
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// DRF's answer to a credential that is valid but not for this.
const NOT_PERMITTED: &str = "You do not have permission to perform this action.";

/// `Authorization: Bearer <token>` (or DRF's `Token <token>`).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    tillwire_platform::tokens::presented(headers, &["bearer", "token"])
}

/// The scope of the directory's service tokens (the platform's tokens; `admin` ones are accepted too).
pub const SCOPE: Scope = Scope::area(crate::AREA.name);

/// Throttles access-code guessing by counting wrong codes only: per chat *from one address* (5 a minute), so
/// nobody elsewhere can lock a chat out of its own code, and per address in all (60 a minute: the bot relays
/// every user from one address). A right code is never counted. Memory is bounded: keys whose minute has passed
/// are dropped once there are many.
#[derive(Clone, Default)]
pub struct CodeLimiter {
    per_chat: Arc<FailureWindow<(i64, IpAddr)>>,
    per_address: Arc<FailureWindow<IpAddr>>,
}

const WRONG_CODES_PER_CHAT: u32 = 5;
const WRONG_CODES_PER_ADDRESS: u32 = 60;

impl CodeLimiter {
    /// Refuses an attempt while its chat (from this address) or its address has used up its wrong codes.
    pub fn admit(&self, chat_id: i64, address: IpAddr) -> Result<(), DirectoryError> {
        if self
            .per_chat
            .spent(&(chat_id, address), WRONG_CODES_PER_CHAT)
            || self.per_address.spent(&address, WRONG_CODES_PER_ADDRESS)
        {
            tracing::warn!(chat_id, %address, "access-code attempts throttled");
            return Err(DirectoryError::Throttled);
        }
        Ok(())
    }

    /// Counts a wrong code.
    pub fn wrong(&self, chat_id: i64, address: IpAddr) {
        self.per_chat.count(&(chat_id, address));
        self.per_address.count(&address);
    }
}

/// Failures per key within a fixed minute.
struct FailureWindow<K> {
    counts: std::sync::Mutex<std::collections::HashMap<K, (u32, std::time::Instant)>>,
}

impl<K> Default for FailureWindow<K> {
    fn default() -> Self {
        FailureWindow {
            counts: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Keys kept before the expired ones are swept (a few MB at most).
const MAX_KEYS: usize = 50_000;

impl<K: std::hash::Hash + Eq + Clone> FailureWindow<K> {
    fn spent(&self, key: &K, allowed: u32) -> bool {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .get(key)
            .is_some_and(|(failures, since)| *failures >= allowed && since.elapsed() < WINDOW)
    }

    fn count(&self, key: &K) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= MAX_KEYS && !counts.contains_key(key) {
            counts.retain(|_, (_, since)| since.elapsed() < WINDOW);
            if counts.len() >= MAX_KEYS {
                // Only a flood from tens of thousands of addresses gets here: forget the oldest half.
                let mut ages: Vec<std::time::Instant> =
                    counts.values().map(|(_, since)| *since).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                counts.retain(|_, (_, since)| *since > cutoff);
            }
        }
        let entry = counts
            .entry(key.clone())
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A role's access code: what a user types into the bot. Never logged, never echoed.
pub struct AccessCode(String);

impl AccessCode {
    pub fn parse(text: &str) -> Result<Self, DirectoryError> {
        match text.chars().count() {
            1..=64 => Ok(AccessCode(text.to_owned())),
            _ => Err(DirectoryError::field(
                "access_code",
                "Убедитесь, что это значение содержит не более 64 символов.",
            )),
        }
    }

    /// A fresh code of 12 characters from a 57-letter alphabet (about 70 bits), shown once.
    pub fn generate() -> Self {
        AccessCode(random_token(12))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `salt$sha256(salt + code)`: a per-code salt, so equal codes never look equal in the table.
    pub fn hash(&self) -> String {
        let salt = random_token(16);
        format!("{salt}${}", sha256_hex(&format!("{salt}{}", self.0)))
    }

    pub fn matches(&self, stored: &str) -> bool {
        stored.split_once('$').is_some_and(|(salt, digest)| {
            sha256_hex(&format!("{salt}{}", self.0))
                .as_bytes()
                .ct_eq(digest.as_bytes())
                .into()
        })
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn browsers_writing_from_another_site_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = axum::http::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().expect("header"));
            }
            map
        };
        assert!(!cross_site(&headers(&[])), "a program sends neither header");
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://dir.local:8000"),
            ("host", "dir.local:8000")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "dir.local:8000")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "null"),
            ("host", "dir.local:8000")
        ])));
    }

    #[test]
    fn memory_stays_bounded_whatever_is_tried() {
        let window: FailureWindow<(i64, IpAddr)> = FailureWindow::default();
        let address: IpAddr = "192.0.2.1".parse().expect("address");
        for chat in 0..(MAX_KEYS as i64 * 3) {
            window.count(&(chat, address));
        }
        assert!(window.len() <= MAX_KEYS, "{} keys", window.len());
    }

    #[test]
    fn only_wrong_codes_count_and_only_from_their_address() {
        let limiter = CodeLimiter::default();
        let bot: IpAddr = "10.0.0.1".parse().expect("address");
        let stranger: IpAddr = "203.0.113.7".parse().expect("address");
        for _ in 0..WRONG_CODES_PER_CHAT {
            assert!(limiter.admit(222, stranger).is_ok());
            limiter.wrong(222, stranger);
        }
        assert!(limiter.admit(222, stranger).is_err());
        // The chat's own user, through the bot, is not locked out by the stranger.
        assert!(limiter.admit(222, bot).is_ok());
        // Any number of right codes counts for nothing.
        for _ in 0..100 {
            assert!(limiter.admit(333, bot).is_ok());
        }
    }
}
