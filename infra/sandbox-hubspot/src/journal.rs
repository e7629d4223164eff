//! The webhooks journal (2026-03) and its subscriptions, as HubSpot documents them.
//!
//! - Reads: `GET /webhooks-journal/journal/2026-03/{latest|earliest}` and
//!   `…/offset/{offset}/next` answer `{currentOffset, expiresAt, url}`; the entry
//!   itself is a JSON file at a pre-signed `url` that expires and is fetched
//!   without an Authorization header. An offset that expired or never existed
//!   answers 404. Entries are kept about 3 days. All of it takes the app's
//!   client-credentials token with `developer.webhooks_journal.read`; the
//!   journal is global to the app, across installs.
//!   <https://developers.hubspot.com/docs/api-reference/latest/webhooks-journal/journal-entries/guide>
//!   <https://developers.hubspot.com/docs/api-reference/2027-03-beta/webhooks-journal/journal-entries/local/get-journal-local-next>
//! - Subscriptions: `POST /webhooks-journal/subscriptions/2026-03` (scope
//!   `developer.webhooks_journal.subscriptions.write`), `GET` the same path
//!   (`…subscriptions.read`); app lifecycle entries appear only once an
//!   `APP_LIFECYCLE_EVENT` subscription exists.
//!   <https://developers.hubspot.com/docs/api-reference/latest/webhooks/webhooks-journal/create-subscription>
//!
//! Guesses (the docs are silent; listed in the README): the file holds a JSON
//! array of events, a lifecycle event being `{subscriptionType:
//! "APP_LIFECYCLE_EVENT", action: "APP_INSTALL"|"APP_UNINSTALL", portalId, appId,
//! occurredAt, eventId}`; nothing new after an offset (or an empty journal)
//! answers 204; creating a lifecycle subscription that exists returns it
//! (upsert); a lifecycle subscription takes `actions` and no portal; the
//! pre-signed URL lives 60 s (shorter than HubSpot's, to be harder).

use std::time::Duration;

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::HubSpotSandbox;
use crate::errors::{ApiError, ApiResult};
use crate::gate::resolve_bearer;
use crate::model::{JournalEntry, State as Model, TokenKind, iso_ms, now_ms};

const READ: &str = "developer.webhooks_journal.read";
const SUBSCRIPTIONS_READ: &str = "developer.webhooks_journal.subscriptions.read";
const SUBSCRIPTIONS_WRITE: &str = "developer.webhooks_journal.subscriptions.write";
pub const LIFECYCLE: &str = "APP_LIFECYCLE_EVENT";

/// Journal calls take an app-level (client credentials) token with `scope`.
fn app_caller(sandbox: &HubSpotSandbox, headers: &HeaderMap, scope: &str) -> ApiResult<()> {
    let caller = resolve_bearer(sandbox, headers)?;
    if caller.kind != TokenKind::App || caller.portal != 0 {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "MISSING_SCOPES",
            "The webhooks journal needs the app's client credentials token.",
        ));
    }
    if !caller.scopes.iter().any(|s| s == scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
        )
        .with_errors(vec![json!({"message": format!("One or more of the following scopes are required: [{scope}]"),
                                 "context": {"requiredGranularScopes": [scope]}})]));
    }
    Ok(())
}

/// Appends a lifecycle event for `portal` if the app subscribed to `action`.
pub fn record_lifecycle(state: &mut Model, app_id: u64, portal: u64, action: &str) {
    let subscribed = state.journal_subscriptions.iter().any(|s| {
        s["subscriptionType"] == LIFECYCLE
            && s["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == action))
    });
    if !subscribed {
        return;
    }
    state.journal_seq += 1;
    let seq = state.journal_seq;
    let at = now_ms();
    state.journal.push(JournalEntry {
        offset: uuid::Uuid::new_v4().to_string(),
        seq,
        at_ms: at,
        events: vec![json!({
            "eventId": seq,
            "subscriptionType": LIFECYCLE,
            "action": action,
            "portalId": portal,
            "appId": app_id,
            "occurredAt": at,
        })],
    });
}

/// Drops entries past the retention (about 3 days at HubSpot).
fn prune(state: &mut Model, retention: Duration) {
    let oldest = now_ms() - retention.as_millis() as i64;
    state.journal.retain(|e| e.at_ms >= oldest);
}

fn signature(secret: &str, offset: &str, expires: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{offset}:{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The emulator's own base as the caller reached it (it may be mounted under a prefix).
fn base_of(headers: &HeaderMap, uri: &OriginalUri) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let path = uri.0.path();
    let prefix = path
        .find("/webhooks-journal/")
        .map(|i| &path[..i])
        .unwrap_or("");
    format!("http://{host}{prefix}")
}

fn pointer(sandbox: &HubSpotSandbox, base: &str, entry: &JournalEntry) -> Value {
    let (secret, ttl) = {
        let c = sandbox.inner.config.lock().expect("config");
        (c.client_secret.clone(), c.journal_url_ttl)
    };
    let expires = now_ms() + ttl.as_millis() as i64;
    let sig = signature(&secret, &entry.offset, expires);
    json!({
        "currentOffset": entry.offset,
        "expiresAt": iso_ms(expires),
        "url": format!("{base}/_files/webhooks-journal/{}?expires={expires}&signature={sig}", entry.offset),
    })
}

enum Which {
    Latest,
    Earliest,
    After(String),
}

fn read(
    sandbox: &HubSpotSandbox,
    headers: &HeaderMap,
    uri: &OriginalUri,
    which: Which,
) -> ApiResult<Response> {
    app_caller(sandbox, headers, READ)?;
    let retention = sandbox
        .inner
        .config
        .lock()
        .expect("config")
        .journal_retention;
    let mut state = sandbox.inner.state.lock().expect("state");
    prune(&mut state, retention);
    let entry = match which {
        Which::Latest => state.journal.last(),
        Which::Earliest => state.journal.first(),
        Which::After(offset) => {
            let Some(i) = state.journal.iter().position(|e| e.offset == offset) else {
                return Err(ApiError::not_found(format!(
                    "Offset {offset} has expired or does not exist"
                )));
            };
            state.journal.get(i + 1)
        }
    };
    Ok(match entry {
        Some(entry) => Json(pointer(sandbox, &base_of(headers, uri), entry)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

pub async fn latest(
    State(sandbox): State<HubSpotSandbox>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read(&sandbox, &headers, &uri, Which::Latest)
}

pub async fn earliest(
    State(sandbox): State<HubSpotSandbox>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read(&sandbox, &headers, &uri, Which::Earliest)
}

pub async fn next(
    State(sandbox): State<HubSpotSandbox>,
    Path(offset): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read(&sandbox, &headers, &uri, Which::After(offset))
}

#[derive(Deserialize)]
pub struct FileQuery {
    #[serde(default)]
    expires: i64,
    #[serde(default)]
    signature: String,
}

/// The pre-signed file of one entry: no Authorization; refused once expired
/// or when the signature does not match (as a storage service answers: 403).
pub async fn file(
    State(sandbox): State<HubSpotSandbox>,
    Path(offset): Path<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let secret = sandbox
        .inner
        .config
        .lock()
        .expect("config")
        .client_secret
        .clone();
    let denied = |why: &str| {
        (
            StatusCode::FORBIDDEN,
            [("content-type", "application/xml")],
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>{why}</Message></Error>"),
        )
            .into_response()
    };
    if signature(&secret, &offset, q.expires) != q.signature {
        return denied("Request has invalid signature");
    }
    if now_ms() > q.expires {
        return denied("Request has expired");
    }
    let state = sandbox.inner.state.lock().expect("state");
    match state.journal.iter().find(|e| e.offset == offset) {
        Some(entry) => Json(Value::Array(entry.events.clone())).into_response(),
        None => (StatusCode::NOT_FOUND, "NoSuchKey").into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    subscription_type: Option<String>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    portal_id: Option<u64>,
    #[serde(default)]
    object_type_id: Option<String>,
}

const LIFECYCLE_ACTIONS: [&str; 2] = ["APP_INSTALL", "APP_UNINSTALL"];

pub async fn create_subscription(
    State(sandbox): State<HubSpotSandbox>,
    headers: HeaderMap,
    Json(body): Json<NewSubscription>,
) -> ApiResult<Response> {
    app_caller(&sandbox, &headers, SUBSCRIPTIONS_WRITE)?;
    let kind = body.subscription_type.unwrap_or_else(|| "OBJECT".into());
    if kind != LIFECYCLE {
        // The emulator journals app lifecycle events only.
        return Err(ApiError::validation(format!(
            "subscriptionType {kind} is not supported by this emulator"
        )));
    }
    if body.actions.is_empty()
        || body
            .actions
            .iter()
            .any(|a| !LIFECYCLE_ACTIONS.contains(&a.as_str()))
    {
        return Err(ApiError::validation(
            "actions must name APP_INSTALL and/or APP_UNINSTALL",
        ));
    }
    let app_id = sandbox.inner.config.lock().expect("config").app_id;
    let mut state = sandbox.inner.state.lock().expect("state");
    let now = iso_ms(now_ms());
    if let Some(existing) = state
        .journal_subscriptions
        .iter_mut()
        .find(|s| s["subscriptionType"] == LIFECYCLE)
    {
        existing["actions"] = json!(body.actions);
        existing["updatedAt"] = json!(now);
        return Ok(Json(existing.clone()).into_response());
    }
    state.journal_seq += 1;
    let created = json!({
        "id": 50_000 + state.journal_seq,
        "appId": app_id,
        "subscriptionType": LIFECYCLE,
        "actions": body.actions,
        "objectTypeId": body.object_type_id,
        "portalId": body.portal_id,
        "createdAt": now,
        "updatedAt": now,
    });
    state.journal_subscriptions.push(created.clone());
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list_subscriptions(
    State(sandbox): State<HubSpotSandbox>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    app_caller(&sandbox, &headers, SUBSCRIPTIONS_READ)?;
    let state = sandbox.inner.state.lock().expect("state");
    Ok(Json(json!({"results": state.journal_subscriptions})))
}
