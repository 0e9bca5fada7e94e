//! Who may call the directory: service clients with an API token, or any client on an allow-listed network
//! (default loopback, so existing unauthenticated clients keep working where the operator allows it). Also the
//! access codes' hashing and their rate limits.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use subtle::ConstantTimeEq;
use tillwire_platform::config::{ConfigError, EnvVar};
use tillwire_platform::tokens::{Scope, Tokens};
use tillwire_platform::web::ClientAddr;
use tillwire_platform::{HttpError, Settings, random_token, sha256_hex};

use crate::{Directory, DirectoryError};

const ALLOW_VAR: &str = "TILLWIRE_DIRECTORY_ALLOW";

/// The networks whose clients need no token.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub allow: Vec<IpNet>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            allow: vec![
                "127.0.0.0/8".parse().expect("loopback v4"),
                "::1/128".parse().expect("loopback v6"),
            ],
        }
    }
}

/// `[directory] allow`: a list of networks, or (as `TILLWIRE_DIRECTORY_ALLOW` gives it) one comma-separated text;
/// `none` stands for an empty list.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DirectorySettings {
    allow: Option<Networks>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum Networks {
    List(Vec<String>),
    Text(String),
}

/// The directory's variable.
pub const ENV: &[EnvVar] = &[EnvVar::text("directory.allow", &[ALLOW_VAR])];

impl AccessConfig {
    /// `[directory] allow` (or `TILLWIRE_DIRECTORY_ALLOW`), else loopback.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let section: DirectorySettings = settings.section("directory")?;
        let items: Vec<String> = match section.allow {
            None => return Ok(AccessConfig::default()),
            Some(Networks::List(items)) => items,
            Some(Networks::Text(text)) => text.split(',').map(str::to_owned).collect(),
        };
        Ok(AccessConfig {
            allow: items
                .iter()
                .map(|item| item.trim())
                .filter(|item| !item.is_empty() && *item != "none")
                .map(|item| {
                    parse_network(item)
                        .map_err(|message| settings.invalid("directory.allow", message))
                })
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn allows(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&address))
    }
}

/// A network (`10.0.0.0/8`) or a single address (`192.168.1.5`).
fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a network such as 10.0.0.0/8"))
}

/// Who made a request, for the audit log: a token's name or the allow-listed address.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

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
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then_some(token.trim())
}

/// The scope of the directory's service tokens (the platform's tokens; `admin` ones are accepted too).
pub const SCOPE: Scope = Scope::area(crate::AREA.name);

/// Throttles access-code attempts per chat and per client address.
#[derive(Clone)]
pub struct CodeLimiter {
    per_chat: Arc<DefaultKeyedRateLimiter<i64>>,
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Default for CodeLimiter {
    fn default() -> Self {
        let quota = |per_minute: u32| {
            let n = NonZeroU32::new(per_minute).expect("non-zero");
            Quota::per_minute(n).allow_burst(n)
        };
        CodeLimiter {
            // A person mistypes a few times; a guesser needs thousands of tries.
            per_chat: Arc::new(RateLimiter::keyed(quota(5))),
            // The bot relays every user's attempts from one address, so its allowance is larger.
            per_address: Arc::new(RateLimiter::keyed(quota(60))),
        }
    }
}

impl CodeLimiter {
    pub fn check(&self, chat_id: i64, address: IpAddr) -> Result<(), DirectoryError> {
        let chat_ok = self.per_chat.check_key(&chat_id).is_ok();
        let address_ok = self.per_address.check_key(&address).is_ok();
        if chat_ok && address_ok {
            Ok(())
        } else {
            tracing::warn!(chat_id, %address, "access-code attempts throttled");
            Err(DirectoryError::Throttled)
        }
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
