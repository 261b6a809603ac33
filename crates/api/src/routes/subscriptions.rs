//! `/v1/subscriptions`: manage subscriptions (their deliveries and replays are in `deliveries`).

use super::Err;
use crate::ApiError;
use crate::auth::Principal;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tributary_core::Timestamp;
use tributary_engine::subscription::SubscriptionConfig;
use tributary_engine::{BrokenSubscription, ManageError, Node, Origin, SubscriptionHandle};
use tributary_plugin::Path;
use utoipa::ToSchema;

/// A subscription as the API shows it (secrets redacted).
#[derive(Serialize, ToSchema)]
pub struct SubscriptionView {
    /// Its name.
    pub name: String,
    /// `config` (read-only through the API) or `api`.
    #[schema(value_type = String)]
    pub origin: Origin,
    /// Its tenant.
    pub tenant: Option<String>,
    /// Where deliveries go.
    pub sink: String,
    /// The full config, secrets replaced by `***`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Events behind its cursor.
    pub backlog: u64,
    /// Live counters since the node started: `events_delivered`, `attempts` by outcome,
    /// `events_dead_lettered`; and now: `dead_letters`, in flight, pending, cursor, paused, breaker.
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
    /// Why the subscription is not running, when it could not be started (its stored record does not load
    /// or no longer validates): it stays paused until fixed with `PUT` or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The list.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Subscriptions the caller may see.
    pub subscriptions: Vec<SubscriptionView>,
}

/// The config as shown: secrets, URL passwords and custom header values replaced by `***`.
fn redacted(mut config: serde_json::Value) -> serde_json::Value {
    if let Some(sink) = config.get_mut("sink").and_then(|s| s.as_object_mut()) {
        if sink.get("secret").is_some_and(|v| !v.is_null()) {
            sink.insert("secret".into(), "***".into());
        }
        if let Some(prev) = sink.get_mut("previous_secrets").and_then(|p| p.as_array_mut()) {
            for p in prev.iter_mut().filter_map(|p| p.as_object_mut()) {
                p.insert("secret".into(), "***".into());
            }
        }
        if let Some(headers) = sink.get_mut("headers").and_then(|h| h.as_object_mut()) {
            for v in headers.values_mut() {
                *v = "***".into();
            }
        }
        if let Some(url) = sink.get("url").and_then(|u| u.as_str()) {
            let shown = redact_url(url);
            sink.insert("url".into(), shown.into());
        }
        // A password of a sink's nested settings (the kafka sink's `sasl.password`).
        for nested in sink.values_mut().filter_map(|v| v.as_object_mut()) {
            if nested.get("password").is_some_and(|p| p.is_string()) {
                nested.insert("password".into(), "***".into());
            }
        }
    }
    config
}

/// `https://user:pass@host/…` as `https://user:***@host/…` (and `https://token@host` as `https://***@host`).
pub(crate) fn redact_url(url: &str) -> String {
    tributary_sinks::url::redacted_url(url, tributary_sinks::url::LoneUserinfo::Token)
}

fn broken_view(p: &Principal, b: &BrokenSubscription) -> SubscriptionView {
    SubscriptionView {
        name: shown(p, &b.name),
        origin: b.origin,
        tenant: b.tenant.clone(),
        sink: "not running".into(),
        config: b.record.clone().map(redacted).unwrap_or(serde_json::Value::Null),
        backlog: 0,
        status: serde_json::json!({"state": "failed", "paused": true}),
        problem: Some(b.problem.clone()),
    }
}

fn sees_broken(p: &Principal, b: &BrokenSubscription) -> bool {
    match p {
        Principal::Admin => true,
        Principal::Tenant(t) => b.tenant.as_deref() == Some(t),
    }
}

/// A subscription that could not start, if the caller may see it.
fn visible_broken(node: &Node, p: &Principal, name: &str) -> Option<BrokenSubscription> {
    node.broken_subscription(name).filter(|b| sees_broken(p, b))
}

pub(crate) fn view(node: &Node, p: &Principal, h: &SubscriptionHandle) -> SubscriptionView {
    let s = h.status.snapshot();
    let mut config = redacted(serde_json::to_value(&h.config).unwrap_or_default());
    config["name"] = shown(p, &h.config.name).into();
    SubscriptionView {
        name: shown(p, &h.config.name),
        origin: h.origin,
        tenant: h.config.tenant.clone(),
        sink: h.sink.describe(),
        config,
        backlog: node.store.last_seq().saturating_sub(s.cursor),
        status: serde_json::to_value(s).unwrap_or_default(),
        problem: None,
    }
}

/// The name the store knows the subscription by that the caller calls `name`: for a tenant, its API
/// subscription `{tenant}:{name}` (names are per tenant), else `name` as given.
pub(crate) fn internal(node: &Node, p: &Principal, name: &str) -> String {
    match p {
        // The admin names a tenant's subscription in full (`acme:orders`), or by its short name while
        // only one subscription has it.
        Principal::Admin => {
            if node.subscription(name).is_some() || node.broken_subscription(name).is_some() {
                return name.to_owned();
            }
            let mut same = node
                .subscription_list()
                .into_iter()
                .filter(|h| h.config.display_name() == name)
                .map(|h| h.config.name.clone());
            match (same.next(), same.next()) {
                (Some(only), None) => only,
                _ => name.to_owned(),
            }
        }
        Principal::Tenant(t) => node
            .subscription_for(t, name)
            .map(|h| h.config.name.clone())
            .or_else(|| node.broken_for(t, name).map(|b| b.name))
            .unwrap_or_else(|| name.to_owned()),
    }
}

/// A subscription's name as the caller knows it: a tenant sees its own names without the `{tenant}:`
/// prefix; the admin sees the full name.
pub(crate) fn shown(p: &Principal, name: &str) -> String {
    match p {
        Principal::Tenant(t) => name
            .strip_prefix(t.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(name)
            .to_owned(),
        Principal::Admin => name.to_owned(),
    }
}

/// The subscription if the caller may see it, else 404.
pub(crate) fn visible(node: &Node, p: &Principal, name: &str) -> Result<Arc<SubscriptionHandle>, ApiError> {
    node.subscription(name)
        .filter(|h| p.sees_subscription(h))
        .ok_or_else(|| ApiError::not_found(format!("no subscription named {name:?}")))
}

/// Subscriptions the caller may see.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionList), (status = 401, body = Err)))]
pub async fn list_subscriptions(State(node): State<Arc<Node>>, p: Principal) -> Json<SubscriptionList> {
    let mut subscriptions: Vec<SubscriptionView> = node
        .subscription_list()
        .iter()
        .filter(|h| p.sees_subscription(h))
        .map(|h| view(&node, &p, h))
        .collect();
    subscriptions.extend(
        node.broken_subscriptions()
            .iter()
            .filter(|b| sees_broken(&p, b))
            .map(|b| broken_view(&p, b)),
    );
    subscriptions.sort_by(|a, b| a.name.cmp(&b.name));
    Json(SubscriptionList { subscriptions })
}

fn parse_config(
    p: &Principal,
    node: &Node,
    body: serde_json::Value,
    name: Option<&str>,
) -> Result<SubscriptionConfig, ApiError> {
    let mut body = body;
    if let (Some(name), Some(obj)) = (name, body.as_object_mut()) {
        obj.entry("name").or_insert_with(|| name.into());
    }
    let mut config: SubscriptionConfig = serde_json::from_value(body)
        .map_err(|e| ApiError::unprocessable("invalid_subscription", format!("subscription: {e}")))?;
    if let Principal::Tenant(t) = p {
        if config.tenant.as_deref().is_some_and(|given| given != t) {
            return Err(ApiError::unprocessable(
                "invalid_subscription",
                format!("tenant: a tenant key can only create subscriptions of its own tenant {t:?}"),
            ));
        }
        config.tenant = Some(t.clone());
        for (i, s) in config.filter.sources.iter().enumerate() {
            if !p.sees_source(node, s) {
                return Err(ApiError::unprocessable(
                    "invalid_subscription",
                    format!("filter.sources[{i}]: no source named {s:?}"),
                ));
            }
        }
        if let Some((field, why)) = config.sink.tenant_refusal() {
            let sink = config.sink.type_name();
            let granted = field == "type" && node.config.limits.grants_sink(t, sink);
            if !granted {
                let advice = if field == "type" {
                    format!(" (the operator can grant it: [limits.tenant_sinks] {t} = [\"{sink}\"])")
                } else {
                    String::new()
                };
                return Err(ApiError::unprocessable(
                    "invalid_subscription",
                    format!("sink.{field}: {why}{advice}"),
                ));
            }
        }
        // Every delivery to it would be refused by the SSRF guard, with advice only the admin can apply.
        if let Some((field, host, why)) = config.sink.refused_destination() {
            return Err(ApiError::unprocessable(
                "invalid_subscription",
                format!(
                    "sink.{field}: address {host} is {why}, and a tenant cannot deliver to private networks; use a public http:// or https:// endpoint"
                ),
            ));
        }
    }
    Ok(config)
}

/// Creates a subscription (kept across restarts). Without `sink.secret`, one is generated.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", security(("bearer" = [])),
    request_body(content = Object, description = "a subscription as in the config file: name, filter, sink, retry, ordering, ..."),
    responses((status = 201, body = SubscriptionView), (status = 401, body = Err), (status = 409, body = Err), (status = 422, body = Err)))]
pub async fn create_subscription(
    State(node): State<Arc<Node>>,
    p: Principal,
    tributary_plugin::Json(body): tributary_plugin::Json<serde_json::Value>,
) -> Result<
    (
        StatusCode,
        axum::Extension<crate::idempotency::SecretAnswer>,
        Json<SubscriptionView>,
    ),
    ApiError,
> {
    let config = parse_config(&p, &node, body, None)?;
    let h = node.create_subscription(config).await?;
    // A sink config can hold credentials (a generated secret, URL userinfo, headers): not kept for
    // Idempotency-Key replays.
    Ok((
        StatusCode::CREATED,
        axum::Extension(crate::idempotency::SecretAnswer),
        Json(view(&node, &p, &h)),
    ))
}

/// One subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{name}", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = SubscriptionView), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn get_subscription(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let name = internal(&node, &p, &name);
    if let Some(b) = visible_broken(&node, &p, &name) {
        return Ok(Json(broken_view(&p, &b)));
    }
    let h = visible(&node, &p, &name)?;
    Ok(Json(view(&node, &p, &h)))
}

/// Replaces an API-created subscription's config (its cursor and delivery state carry over). Without
/// `sink.secret`, the current secret (and any previous ones still in their overlap) are kept.
#[utoipa::path(put, path = "/v1/subscriptions/{name}", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)), request_body(content = Object),
    responses((status = 200, body = SubscriptionView), (status = 401, body = Err), (status = 404, body = Err), (status = 409, body = Err), (status = 422, body = Err)))]
pub async fn update_subscription(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    tributary_plugin::Json(body): tributary_plugin::Json<serde_json::Value>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let name = internal(&node, &p, &name);
    if visible_broken(&node, &p, &name).is_none() {
        visible(&node, &p, &name)?;
    }
    let config = parse_config(&p, &node, body, Some(&name))?;
    let h = node.update_subscription(&name, config).await?;
    Ok(Json(view(&node, &p, &h)))
}

/// Deletes an API-created subscription.
#[utoipa::path(delete, path = "/v1/subscriptions/{name}", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = Err), (status = 404, body = Err), (status = 409, body = Err)))]
pub async fn delete_subscription(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = internal(&node, &p, &name);
    if visible_broken(&node, &p, &name).is_none() {
        visible(&node, &p, &name)?;
    }
    node.delete_subscription(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signing secrets.
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    /// The subscription.
    pub subscription: String,
    /// The current secret (`whsec_…`).
    pub secret: Option<String>,
    /// Earlier secrets still signing, with their expiry.
    #[schema(value_type = Vec<Object>)]
    pub previous: Vec<serde_json::Value>,
}

/// The webhook signing secret(s).
#[utoipa::path(get, path = "/v1/subscriptions/{name}/secret", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = SecretView), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn subscription_secret(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let name = internal(&node, &p, &name);
    let h = visible(&node, &p, &name)?;
    let Some((current, previous)) = h.config.sink.secrets() else {
        return Err(ManageError::NoSecret(h.config.sink.type_name()).into());
    };
    let secret = match current {
        Some(s) => Some(s.to_owned()),
        None => (node.store.record(tributary_core::RecordKind::SinkSecret, &name).await?).map(|r| r.value),
    };
    let previous = previous
        .iter()
        .map(|p| serde_json::json!({"secret": p.secret, "expires_at": p.expires_at}))
        .collect();
    Ok(Json(SecretView {
        subscription: shown(&p, &name),
        secret,
        previous,
    }))
}

/// How long the old secret keeps signing.
#[derive(Deserialize, ToSchema, Default)]
pub struct RotateRequest {
    /// Seconds the old secret stays valid (default 86,400; at most 30 days).
    pub overlap_seconds: Option<u64>,
}

/// The new secret.
#[derive(Serialize, ToSchema)]
pub struct Rotated {
    /// The new secret (`whsec_…`): deliveries carry both signatures until `previous_expires_at`.
    pub secret: String,
    /// When the old secret stops signing.
    #[schema(value_type = String)]
    pub previous_expires_at: Timestamp,
}

/// Rotates the signing secret of an API-created webhook subscription; the old one keeps signing for the overlap.
#[utoipa::path(post, path = "/v1/subscriptions/{name}/rotate-secret", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)), request_body(content = RotateRequest, description = "optional"),
    responses((status = 200, body = Rotated), (status = 401, body = Err), (status = 404, body = Err), (status = 409, body = Err)))]
pub async fn rotate_secret(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(axum::Extension<crate::idempotency::SecretAnswer>, Json<Rotated>), ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?;
    let req: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::unprocessable("invalid_body", format!("body: {e}")))?
    };
    let overlap = req.overlap_seconds.unwrap_or(86_400);
    if overlap > 30 * 86_400 {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "overlap_seconds: at most 2,592,000 (30 days)",
        ));
    }
    let (secret, previous_expires_at) = node.rotate_secret(&name, Duration::from_secs(overlap)).await?;
    // The new secret is never kept for Idempotency-Key replays.
    Ok((
        axum::Extension(crate::idempotency::SecretAnswer),
        Json(Rotated {
            secret,
            previous_expires_at,
        }),
    ))
}

/// What was asked of the worker.
#[derive(Serialize, ToSchema)]
pub struct Requested {
    /// The subscription.
    pub subscription: String,
    /// `pause` or `resume`.
    pub requested: String,
}

/// Stops starting deliveries (in-flight ones finish).
#[utoipa::path(post, path = "/v1/subscriptions/{name}/pause", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = Requested), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn pause(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<Requested>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?.set_paused(true).await?;
    Ok(Json(Requested {
        subscription: shown(&p, &name),
        requested: "pause".into(),
    }))
}

/// Starts delivering again; waiting retries become due now.
#[utoipa::path(post, path = "/v1/subscriptions/{name}/resume", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = Requested), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn resume(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<Requested>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?.set_paused(false).await?;
    Ok(Json(Requested {
        subscription: shown(&p, &name),
        requested: "resume".into(),
    }))
}

/// The outcome of a test delivery.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    /// `delivered`, `retriable` or `rejected`.
    pub outcome: String,
    /// The receiver's status code.
    pub status: Option<u16>,
    /// How long it took.
    pub latency_ms: f64,
    /// What went wrong.
    pub error: Option<String>,
}

/// Sends a `tributary.test` event to the subscription's endpoint now (not stored, not retried). Answers
/// 200 with the attempt's `outcome` whether or not the endpoint accepted it.
#[utoipa::path(post, path = "/v1/subscriptions/{name}/test", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = TestResult), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn send_test(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<TestResult>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?;
    let r = node.send_test_event(&name).await?;
    Ok(Json(TestResult {
        outcome: format!("{:?}", r.status).to_lowercase(),
        status: r.code,
        latency_ms: r.latency.as_secs_f64() * 1000.0,
        error: r.error,
    }))
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(redact_url("https://u:p@h.example/x?y"), "https://u:***@h.example/x?y");
        assert_eq!(redact_url("https://tok@h.example"), "https://***@h.example");
        assert_eq!(redact_url("https://h.example/a@b"), "https://h.example/a@b");
        assert_eq!(redact_url("not a url"), "not a url");
        let shown = redacted(
            serde_json::json!({"sink": {"url": "http://a:b@c", "headers": {"X-Key": "s3cret"}, "secret": "whsec_x"}}),
        );
        assert_eq!(shown["sink"]["url"], "http://a:***@c");
        assert_eq!(shown["sink"]["headers"]["X-Key"], "***");
        assert_eq!(shown["sink"]["secret"], "***");
        let shown = redacted(serde_json::json!({"sink": {"sasl": {"username": "u", "password": "hunter2"}}}));
        assert_eq!(
            shown["sink"]["sasl"],
            serde_json::json!({"username": "u", "password": "***"})
        );
    }
}
