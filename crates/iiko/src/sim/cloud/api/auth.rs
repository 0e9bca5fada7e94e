//! The token methods (B.2): v1 by apiLogin, v2 by API key, a JWT whose `exp` the client reads.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, parse};
use crate::sim::cloud::state::Inner;
use crate::sim::uuid;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginRequest {
    api_login: String,
}

pub(super) fn access_token(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: LoginRequest = parse(body)?;
    if !inner.logins.contains(&request.api_login) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("Login {:?} is not authorized", request.api_login),
        ));
    }
    Ok(json!({"token": inner.issue_token(&request.api_login)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyRequest {
    api_key: String,
    app_id: String,
    client_secret: String,
}

pub(super) fn access_token_v2(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: KeyRequest = parse(body)?;
    let known = inner.api_keys.iter().any(|key| {
        key.api_key == request.api_key
            && key.app_id == request.app_id
            && key.client_secret == request.client_secret
    });
    if !known {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unknown apiKey, appId or clientSecret",
        ));
    }
    // The client compares `exp` with its own clock, so it is the real one (tokens die on it too, see Inner).
    let issued = Utc::now();
    let expires = TimeDelta::from_std(inner.token_ttl)
        .ok()
        .and_then(|ttl| issued.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let part = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let signature: [u8; 32] = rand::random();
    let token = format!(
        "{}.{}.{}",
        part(json!({"alg": "HS256", "typ": "JWT"})),
        part(json!({
            "sub": request.app_id,
            "iss": "iikoCloud sim",
            "iat": issued.timestamp(),
            "exp": expires.timestamp(),
            "jti": uuid(),
        })),
        URL_SAFE_NO_PAD.encode(signature)
    );
    inner.remember_token(token.clone(), &request.app_id);
    Ok(json!({"token": token}))
}
