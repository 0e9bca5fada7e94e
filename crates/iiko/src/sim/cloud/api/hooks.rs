//! Webhook settings (B.9) and the status of commands (B.8).

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, check_organizations, parse};
use crate::sim::cloud::state::{Inner, WebhookSettings};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateSettingsRequest {
    organization_id: String,
    web_hooks_uri: String,
    auth_token: Option<String>,
    web_hooks_filter: Option<Value>,
}

pub(super) fn update_settings(
    inner: &mut Inner,
    login: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: UpdateSettingsRequest = parse(body)?;
    let stored: Value = parse(body)?;
    check_organizations(inner, std::slice::from_ref(&request.organization_id))?;
    if !(request.web_hooks_uri.starts_with("http://")
        || request.web_hooks_uri.starts_with("https://"))
    {
        return Err(ApiError::bad("webHooksUri must be an http(s) URL"));
    }
    inner.webhooks.insert(
        request.organization_id,
        WebhookSettings {
            uri: request.web_hooks_uri,
            auth_token: request.auth_token,
            filter: request.web_hooks_filter.unwrap_or(Value::Null),
            login: login.to_owned(),
            stored,
        },
    );
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationRequest {
    organization_id: String,
}

pub(super) fn settings(inner: &mut Inner, login: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: OrganizationRequest = parse(body)?;
    check_organizations(inner, std::slice::from_ref(&request.organization_id))?;
    Ok(match inner.webhooks.get(&request.organization_id) {
        Some(settings) => json!({
            "apiLoginName": settings.login,
            "webHooksUri": settings.uri,
            "authToken": settings.auth_token,
            "webHooksFilter": settings.filter,
        }),
        None => json!({
            "apiLoginName": login,
            "webHooksUri": null,
            "authToken": null,
            "webHooksFilter": null,
        }),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommandStatusRequest {
    organization_id: String,
    correlation_id: String,
}

/// Success for an operation the sim answered within the last hour; 410 for any other.
pub(super) fn command_status(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: CommandStatusRequest = parse(body)?;
    check_organizations(inner, std::slice::from_ref(&request.organization_id))?;
    if !inner.knows_correlation(&request.correlation_id) {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!(
                "Operation {} is no longer supported",
                request.correlation_id
            ),
        ));
    }
    Ok(json!({"state": "Success"}))
}
