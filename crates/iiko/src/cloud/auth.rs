//! The two ways to get an iikoCloud token (spec B.2), behind one interface: v1 `apiLogin` and v2 `apiKey` with
//! the application's id and secret. Only the token call differs; every other method is the same.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tillwire_platform::config::Secret;

use super::CloudError;

/// v1 tokens live an hour ("the standard token lifetime is 1 hour") and carry no expiry: renew after 50 minutes.
const V1_RENEW_AFTER: Duration = Duration::from_secs(50 * 60);
/// A JWT is renewed this long before its `exp`.
const V2_MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Debug)]
pub enum Auth {
    /// v1: the api login from iikoWeb.
    ApiLogin(Secret),
    /// v2: an API key from iikoWeb with the developer portal application's id and secret.
    ApiKey {
        api_key: Secret,
        app_id: String,
        client_secret: Secret,
    },
}

impl Auth {
    pub(super) fn method(&self) -> &'static str {
        match self {
            Auth::ApiLogin(_) => "/api/1/access_token",
            Auth::ApiKey { .. } => "/api/v2/access_token",
        }
    }

    pub(super) fn body(&self) -> Value {
        match self {
            Auth::ApiLogin(login) => json!({"apiLogin": login.expose()}),
            Auth::ApiKey {
                api_key,
                app_id,
                client_secret,
            } => {
                json!({"apiKey": api_key.expose(), "appId": app_id, "clientSecret": client_secret.expose()})
            }
        }
    }

    /// The token in an answer to the token call, with when to renew it.
    pub(super) fn read_token(&self, answer: &str) -> Result<Token, CloudError> {
        let value: Value = serde_json::from_str(answer)
            .map_err(|e| CloudError::Unexpected(format!("the token answer: {e}")))?;
        let secret = value
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CloudError::Unexpected("the token answer has no token".into()))?;
        let now = Instant::now();
        let renew_at = match self {
            Auth::ApiLogin(_) => now + V1_RENEW_AFTER,
            Auth::ApiKey { .. } => match jwt_lifetime(secret) {
                Some(left) => now + left.saturating_sub(V2_MARGIN.min(left / 2)),
                None => now + V1_RENEW_AFTER,
            },
        };
        Ok(Token {
            secret: Secret::new(secret),
            renew_at,
        })
    }
}

/// A token and when it should be renewed.
#[derive(Clone, Debug)]
pub struct Token {
    secret: Secret,
    renew_at: Instant,
}

impl Token {
    pub(super) fn secret(&self) -> &str {
        self.secret.expose()
    }

    pub(super) fn fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }

    pub(super) fn same(&self, other: &Token) -> bool {
        self.secret == other.secret
    }
}

/// How long a JWT has left, from its `exp` claim (seconds since the epoch). The signature is iiko's business.
fn jwt_lifetime(jwt: &str) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    let left = exp - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(left.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: i64) -> String {
        let encode =
            |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            encode(json!({"alg": "HS256", "typ": "JWT"})),
            encode(json!({"exp": exp}))
        )
    }

    #[test]
    fn a_jwt_is_renewed_before_its_exp_and_a_v1_token_after_50_minutes() {
        let key = Auth::ApiKey {
            api_key: Secret::new("k"),
            app_id: "app".into(),
            client_secret: Secret::new("s"),
        };
        let hour = key
            .read_token(&json!({"token": jwt(chrono::Utc::now().timestamp() + 3600)}).to_string())
            .unwrap();
        let left = hour.renew_at - Instant::now();
        assert!(left > Duration::from_secs(50 * 60) && left <= Duration::from_secs(55 * 60));
        // A short-lived one is renewed halfway rather than never.
        let short = key
            .read_token(&json!({"token": jwt(chrono::Utc::now().timestamp() + 4)}).to_string())
            .unwrap();
        assert!(short.renew_at - Instant::now() <= Duration::from_secs(2));
        let login = Auth::ApiLogin(Secret::new("l"));
        let v1 = login
            .read_token(r#"{"correlationId": "c", "token": "abc"}"#)
            .unwrap();
        assert!(v1.fresh());
        assert_eq!(v1.secret(), "abc");
        assert!(login.read_token(r#"{"correlationId": "c"}"#).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let key = Auth::ApiKey {
            api_key: Secret::new("the-key"),
            app_id: "app".into(),
            client_secret: Secret::new("the-secret"),
        };
        let shown = format!("{key:?} {:?}", Auth::ApiLogin(Secret::new("the-login")));
        assert!(
            !shown.contains("the-key")
                && !shown.contains("the-secret")
                && !shown.contains("the-login")
        );
    }
}
