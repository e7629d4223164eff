//! `/_control`: what a test (or a HubSpot admin) does that no public API does:
//! inject faults, read the request log and webhook deliveries, uninstall the
//! app, restore a deleted record, set the webhook target and the rate limits.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::HubSpotSandbox;
use crate::errors::ApiError;
use crate::gate::Caller;
use crate::model::{ObjectType, TokenKind};
use crate::seeds::PORTAL_ID;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookFaults {
    #[serde(default)]
    pub drop_rate: f64,
    #[serde(default)]
    pub duplicate_rate: f64,
    #[serde(default)]
    pub shuffle: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Probability per status code (401, 429, 500, 502, 503) of answering it instead.
    #[serde(default)]
    pub error_rates: Vec<(u16, f64)>,
    /// Probability of not answering before `timeout_ms`.
    #[serde(default)]
    pub timeout_rate: f64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Probability of doing what was asked and then not answering before
    /// `timeout_ms` (the answer lost on the way: the caller cannot tell the
    /// write happened). Harder than a timeout that changes nothing, and what
    /// a caller must survive: HubSpot documents no idempotency for writes.
    #[serde(default)]
    pub lost_answer_rate: f64,
    /// Added to every API request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Only paths starting with this are affected (all when empty).
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default)]
    pub webhooks: WebhookFaults,
    /// The `policyName` of injected 429s (`SECONDLY`, `TEN_SECONDLY_ROLLING`,
    /// `DAILY`); `TEN_SECONDLY_ROLLING` when absent.
    #[serde(default)]
    pub policy_name: Option<String>,
    /// Objects deleted (as by a person) just before the next batch update
    /// arrives: the race between a caller's read and its write. Used once.
    #[serde(default)]
    pub delete_before_write: Vec<u64>,
    /// Objects CRM search has not indexed yet (left out of search results
    /// until the list no longer names them): a change indexed late.
    #[serde(default)]
    pub search_unindexed: Vec<u64>,
}

fn default_timeout() -> u64 {
    6_000
}

/// After the request was handled: whether its answer is lost (`lost_answer_rate`);
/// then the caller gets a 504 after `timeout_ms` instead.
pub async fn lost_answer(sandbox: &HubSpotSandbox, path: &str) -> Option<Response> {
    let faults = sandbox.inner.faults.lock().expect("faults").clone();
    if !path.starts_with(&faults.path_prefix)
        || faults.lost_answer_rate <= 0.0
        || rand::random::<f64>() >= faults.lost_answer_rate
    {
        return None;
    }
    tokio::time::sleep(std::time::Duration::from_millis(faults.timeout_ms)).await;
    Some(
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "TIMEOUT", "upstream timed out").into_response(),
    )
}

/// Applies latency and maybe answers with an injected failure instead.
pub async fn injected_fault(sandbox: &HubSpotSandbox, path: &str) -> Option<Response> {
    let faults = sandbox.inner.faults.lock().expect("faults").clone();
    if !path.starts_with(&faults.path_prefix) {
        return None;
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.timeout_rate > 0.0 && rand::random::<f64>() < faults.timeout_rate {
        tokio::time::sleep(std::time::Duration::from_millis(faults.timeout_ms)).await;
        return Some(
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "TIMEOUT", "upstream timed out")
                .into_response(),
        );
    }
    for (status, rate) in &faults.error_rates {
        if rand::random::<f64>() < *rate {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut error = match status {
                StatusCode::TOO_MANY_REQUESTS => {
                    let mut e = ApiError::new(
                        status,
                        "RATE_LIMITS",
                        "You have reached your ten_secondly_rolling limit.",
                    );
                    e.extra = Some(
                        json!({"errorType": "RATE_LIMIT", "policyName": faults.policy_name.as_deref().unwrap_or("TEN_SECONDLY_ROLLING")}),
                    );
                    e
                }
                // A token HubSpot stopped accepting, answered as its gate answers one.
                StatusCode::UNAUTHORIZED => ApiError::new(
                    status,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                ),
                _ => ApiError::new(status, "INTERNAL_ERROR", "Internal error (injected)"),
            };
            error.context = None;
            // HubSpot does not promise a `Retry-After`: none is sent, so the
            // service must go by `policyName` (the usage guidelines:
            // https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
            return Some(error.into_response());
        }
    }
    None
}

async fn set_faults(
    State(sandbox): State<HubSpotSandbox>,
    Json(faults): Json<Faults>,
) -> StatusCode {
    *sandbox.inner.faults.lock().expect("faults") = faults;
    StatusCode::NO_CONTENT
}

async fn get_faults(State(sandbox): State<HubSpotSandbox>) -> Json<Faults> {
    Json(sandbox.inner.faults.lock().expect("faults").clone())
}

#[derive(Deserialize)]
struct PortalQuery {
    portal: Option<u64>,
}

#[derive(Deserialize)]
struct NewPortals {
    count: usize,
}

/// `count` more portals like the demo one (many tenants in one emulator):
/// their ids; `pat-sandbox-user-<id>` acts as a person in each.
async fn add_portals(
    State(sandbox): State<HubSpotSandbox>,
    Json(body): Json<NewPortals>,
) -> Response {
    if body.count > 5_000 {
        return (StatusCode::BAD_REQUEST, "at most 5000 portals at once").into_response();
    }
    let mut state = sandbox.inner.state.lock().expect("state");
    let ids: Vec<u64> = (0..body.count)
        .map(|_| crate::seeds::add_portal(&mut state))
        .collect();
    Json(json!({"portals": ids})).into_response()
}

/// An object of a portal (`?portal=`, the demo one by default) as stored, all properties, archived too:
/// for tests and the load harness (no token, no rate limit, not logged).
async fn inspect(
    State(sandbox): State<HubSpotSandbox>,
    axum::extract::Path((raw_type, id)): axum::extract::Path<(String, u64)>,
    axum::extract::Query(at): axum::extract::Query<PortalQuery>,
) -> Response {
    let Ok(kind) = ObjectType::parse(&raw_type) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let state = sandbox.inner.state.lock().expect("state");
    match state
        .objects
        .get(&(at.portal.unwrap_or(PORTAL_ID), kind))
        .and_then(|m| m.get(&id))
    {
        Some(record) => {
            let mut body = crate::crm::render(record, kind, None);
            body["archived"] = json!(record.archived);
            Json(body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn requests(State(sandbox): State<HubSpotSandbox>) -> Json<Value> {
    let state = sandbox.inner.state.lock().expect("state");
    Json(json!({"requests": state.requests}))
}

async fn clear_requests(State(sandbox): State<HubSpotSandbox>) -> StatusCode {
    sandbox.inner.state.lock().expect("state").requests.clear();
    StatusCode::NO_CONTENT
}

async fn deliveries(State(sandbox): State<HubSpotSandbox>) -> Json<Value> {
    let outbox = sandbox.inner.outbox.lock().expect("outbox");
    Json(json!({"deliveries": outbox.deliveries}))
}

#[derive(Deserialize)]
struct PortalBody {
    #[serde(default = "default_portal", rename = "portalId")]
    portal_id: u64,
}

fn default_portal() -> u64 {
    PORTAL_ID
}

async fn uninstall(
    State(sandbox): State<HubSpotSandbox>,
    Json(body): Json<PortalBody>,
) -> Response {
    if crate::oauth::uninstall_portal(&sandbox, body.portal_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::CONFLICT,
            Json(json!({"message": "the app is not installed in that portal"})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestoreBody {
    object_type: String,
    object_id: u64,
}

async fn restore(State(sandbox): State<HubSpotSandbox>, Json(body): Json<RestoreBody>) -> Response {
    let Ok(kind) = ObjectType::parse(&body.object_type) else {
        return (StatusCode::BAD_REQUEST, "unknown object type").into_response();
    };
    let person = Caller {
        portal: PORTAL_ID,
        kind: TokenKind::User,
        scopes: vec![],
        user_id: 5_000_001,
    };
    if crate::crm::restore(&sandbox, &person, kind, body.object_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, "no archived object with that id").into_response()
    }
}

#[derive(Deserialize)]
struct Settings {
    /// `null` stops deliveries; absent leaves the target as it is.
    #[serde(default, deserialize_with = "present")]
    webhook_url: Option<Option<String>>,
    #[serde(default)]
    limit_per_ten_seconds: Option<usize>,
    #[serde(default)]
    search_per_second: Option<usize>,
    #[serde(default)]
    webhook_flush_ms: Option<u64>,
    #[serde(default)]
    journal_retention_ms: Option<u64>,
    #[serde(default)]
    journal_url_ttl_ms: Option<u64>,
    #[serde(default)]
    association_page_size: Option<usize>,
    #[serde(default)]
    search_lag_ms: Option<u64>,
    /// The portal's time zone as its account settings would set it:
    /// `{"time_zone": "America/New_York", "utc_offset_ms": -18000000}`.
    #[serde(default)]
    portal_time_zone: Option<PortalTimeZone>,
}

#[derive(Deserialize)]
struct PortalTimeZone {
    time_zone: String,
    utc_offset_ms: i64,
}

/// A field that is present, `null` included.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

async fn settings(State(sandbox): State<HubSpotSandbox>, Json(body): Json<Settings>) -> StatusCode {
    let mut config = sandbox.inner.config.lock().expect("config");
    if let Some(url) = body.webhook_url {
        config.webhook_url = url;
    }
    if let Some(n) = body.limit_per_ten_seconds {
        config.limit_per_ten_seconds = n;
    }
    if let Some(n) = body.search_per_second {
        config.search_per_second = n;
    }
    if let Some(ms) = body.webhook_flush_ms {
        config.webhook_flush = std::time::Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = body.journal_retention_ms {
        config.journal_retention = std::time::Duration::from_millis(ms);
    }
    if let Some(ms) = body.journal_url_ttl_ms {
        config.journal_url_ttl = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = body.association_page_size {
        config.association_page_size = n;
    }
    if let Some(ms) = body.search_lag_ms {
        config.search_lag = std::time::Duration::from_millis(ms);
    }
    drop(config);
    if let Some(zone) = body.portal_time_zone {
        let mut state = sandbox.inner.state.lock().expect("state");
        if let Some(portal) = state.portals.get_mut(&PORTAL_ID) {
            portal.time_zone = zone.time_zone;
            portal.utc_offset_ms = zone.utc_offset_ms;
        }
    }
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidationRule {
    object_type: String,
    property: String,
    /// `None` removes the rule.
    max_characters: Option<usize>,
}

/// A portal administrator's property validation rule (every portal of the emulator).
async fn validation(
    State(sandbox): State<HubSpotSandbox>,
    Json(rule): Json<ValidationRule>,
) -> StatusCode {
    let Ok(kind) = ObjectType::parse(&rule.object_type) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut state = sandbox.inner.state.lock().expect("state");
    let mut found = false;
    for ((_, k), defs) in state.properties.iter_mut() {
        if *k == kind
            && let Some(def) = defs.get_mut(&rule.property)
        {
            def.max_characters = rule.max_characters;
            found = true;
        }
    }
    if found {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// Expires every access token now (to exercise refresh paths without waiting 30 minutes).
async fn expire_tokens(State(sandbox): State<HubSpotSandbox>) -> StatusCode {
    let mut state = sandbox.inner.state.lock().expect("state");
    let now = crate::model::now_ms();
    for token in state.access_tokens.values_mut() {
        token.expires_ms = now - 1;
    }
    StatusCode::NO_CONTENT
}

/// Issued tokens (for tests that check nothing leaks them).
async fn tokens(State(sandbox): State<HubSpotSandbox>) -> Json<Value> {
    let state = sandbox.inner.state.lock().expect("state");
    let access: Vec<&String> = state.access_tokens.keys().collect();
    let refresh: Vec<Value> = state
        .refresh_tokens
        .iter()
        .map(|(t, r)| json!({"token": t, "revoked": r.revoked, "portal": r.portal}))
        .collect();
    Json(json!({"access": access, "refresh": refresh}))
}

pub fn router() -> Router<HubSpotSandbox> {
    Router::new()
        .route("/tokens", get(tokens))
        .route("/faults", post(set_faults).get(get_faults))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/webhooks/deliveries", get(deliveries))
        .route("/uninstall", post(uninstall))
        .route("/restore", post(restore))
        .route("/settings", post(settings))
        .route("/tokens/expire", post(expire_tokens))
        .route("/validation", post(validation))
        .route("/inspect/{object_type}/{id}", get(inspect))
        .route("/portals", post(add_portals))
}
