//! Webhooks: every change becomes an event delivered to the app's target URL in
//! batches of up to 100, signed (v3 over the URI decoded as HubSpot documents,
//! plus v1), retried with backoff on a non-2xx or a timeout with `attemptNumber`
//! counting, shuffled/dropped/duplicated when the faults say so. Events go to the
//! app only while it is installed in the portal. Also the webhooks journal, where
//! app install/uninstall appear as `APP_LIFECYCLE_EVENT`s.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::HubSpotSandbox;
use crate::errors::ApiResult;
use crate::gate::{Caller, authorize};
use crate::model::{ObjectType, TokenKind, now_ms};

#[derive(Debug, Clone)]
pub struct Event {
    pub subscription_type: String,
    pub object_id: u64,
    pub property_name: Option<String>,
    pub property_value: Option<String>,
    pub change_source: &'static str,
    pub source_id: String,
    pub occurred_at: i64,
    pub extra: Value,
}

impl Event {
    pub fn new(caller: &Caller, kind: ObjectType, id: u64, what: &str) -> Self {
        Self {
            subscription_type: format!("{}.{what}", kind.singular()),
            object_id: id,
            property_name: None,
            property_value: None,
            change_source: caller.change_source(),
            source_id: match caller.kind {
                TokenKind::App => String::new(),
                TokenKind::User => format!("userId:{}", caller.user_id),
            },
            occurred_at: now_ms(),
            extra: Value::Null,
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    body: Value,
    attempt: u32,
    due: Instant,
}

/// What one delivery attempt looked like (for tests).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub events: usize,
    pub attempt_numbers: Vec<u64>,
    pub status: Option<u16>,
    pub at_ms: i64,
}

#[derive(Default)]
pub struct Outbox {
    queue: Vec<Pending>,
    pub deliveries: Vec<Delivery>,
    next_event_id: u64,
}

/// Queues events for delivery if the app is installed in the portal.
pub fn emit(sandbox: &HubSpotSandbox, portal: u64, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let installed = sandbox
        .inner
        .state
        .lock()
        .expect("state")
        .portals
        .get(&portal)
        .is_some_and(|p| p.installed);
    if !installed {
        return;
    }
    let app_id = sandbox.inner.config.lock().expect("config").app_id;
    let mut outbox = sandbox.inner.outbox.lock().expect("outbox");
    let now = Instant::now();
    for event in events {
        outbox.next_event_id += 1;
        let mut body = json!({
            "eventId": outbox.next_event_id,
            "subscriptionId": subscription_id(&event.subscription_type),
            "portalId": portal,
            "appId": app_id,
            "occurredAt": event.occurred_at,
            "subscriptionType": event.subscription_type,
            "attemptNumber": 0,
            "objectId": event.object_id,
            "changeSource": event.change_source,
            "sourceId": if event.source_id.is_empty() { app_id.to_string() } else { event.source_id.clone() },
        });
        if let Some(name) = &event.property_name {
            body["propertyName"] = json!(name);
            body["propertyValue"] = json!(event.property_value.clone().unwrap_or_default());
        }
        if let Value::Object(extra) = &event.extra {
            for (k, v) in extra {
                body[k] = v.clone();
            }
        }
        outbox.queue.push(Pending {
            body,
            attempt: 0,
            due: now,
        });
    }
}

fn subscription_id(subscription_type: &str) -> u64 {
    // Stable per subscription type, as a HubSpot app's subscriptions are.
    let digest = Sha256::digest(subscription_type.as_bytes());
    1_000_000 + u64::from(u16::from_be_bytes([digest[0], digest[1]]))
}

/// HubSpot's documentation decodes these escapes in the URI before signing.
fn decode_uri(uri: &str) -> String {
    const TABLE: [(&str, char); 12] = [
        ("%3A", ':'),
        ("%2F", '/'),
        ("%3F", '?'),
        ("%40", '@'),
        ("%21", '!'),
        ("%24", '$'),
        ("%27", '\''),
        ("%28", '('),
        ("%29", ')'),
        ("%2A", '*'),
        ("%2C", ','),
        ("%3B", ';'),
    ];
    let mut out = String::new();
    let mut i = 0;
    let bytes = uri.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let code = uri[i..i + 3].to_ascii_uppercase();
            if let Some((_, c)) = TABLE.iter().find(|(e, _)| *e == code) {
                out.push(*c);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// The headers HubSpot sends with a signed request to `url`.
pub fn signature_headers(
    secret: &str,
    method: &str,
    url: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = now_ms().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{method}{}{body}{timestamp}", decode_uri(url)).as_bytes());
    let v3 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let v1: String = Sha256::digest(format!("{secret}{body}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![
        ("X-HubSpot-Signature-v3", v3),
        ("X-HubSpot-Request-Timestamp", timestamp),
        ("X-HubSpot-Signature", v1),
        ("X-HubSpot-Signature-Version", "v1".to_owned()),
    ]
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(6)).min(10_000))
}

const MAX_ATTEMPTS: u32 = 10;

pub fn spawn(sandbox: HubSpotSandbox) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            let (flush, url, secret, timeout) = {
                let c = sandbox.inner.config.lock().expect("config");
                (
                    c.webhook_flush,
                    c.webhook_url.clone(),
                    c.client_secret.clone(),
                    c.webhook_timeout,
                )
            };
            tokio::time::sleep(flush).await;
            let Some(url) = url else { continue };
            let faults = sandbox
                .inner
                .faults
                .lock()
                .expect("faults")
                .webhooks
                .clone();
            let mut batch: Vec<Pending> = {
                let mut outbox = sandbox.inner.outbox.lock().expect("outbox");
                let now = Instant::now();
                let mut due = Vec::new();
                let mut keep = Vec::new();
                for p in outbox.queue.drain(..) {
                    if p.due <= now && due.len() < 100 {
                        due.push(p)
                    } else {
                        keep.push(p)
                    }
                }
                outbox.queue = keep;
                due
            };
            if batch.is_empty() {
                continue;
            }
            {
                let mut rng = rand::rng();
                if faults.drop_rate > 0.0 {
                    batch.retain(|_| rand::random::<f64>() >= faults.drop_rate);
                }
                if faults.duplicate_rate > 0.0 {
                    let dupes: Vec<Pending> = batch
                        .iter()
                        .filter(|_| rand::random::<f64>() < faults.duplicate_rate)
                        .cloned()
                        .collect();
                    batch.extend(dupes);
                }
                if faults.shuffle {
                    batch.shuffle(&mut rng);
                }
            }
            if batch.is_empty() {
                continue;
            }
            let bodies: Vec<Value> = batch
                .iter()
                .map(|p| {
                    let mut b = p.body.clone();
                    b["attemptNumber"] = json!(p.attempt);
                    b
                })
                .collect();
            let payload = Value::Array(bodies).to_string();
            let mut request = client
                .post(&url)
                .timeout(timeout)
                .header("content-type", "application/json");
            for (name, value) in signature_headers(&secret, "POST", &url, &payload) {
                request = request.header(name, value);
            }
            let status = request
                .body(payload)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16());
            let ok = status.is_some_and(|s| (200..300).contains(&s));
            let mut outbox = sandbox.inner.outbox.lock().expect("outbox");
            outbox.deliveries.push(Delivery {
                events: batch.len(),
                attempt_numbers: batch.iter().map(|p| u64::from(p.attempt)).collect(),
                status,
                at_ms: now_ms(),
            });
            if !ok {
                for mut p in batch {
                    if p.attempt + 1 < MAX_ATTEMPTS {
                        p.attempt += 1;
                        p.due = Instant::now() + backoff(p.attempt);
                        outbox.queue.push(p);
                    }
                }
            }
        }
    })
}

/// Guessed shape (the journal API is new): entries after an offset, oldest first.
fn journal_page(sandbox: &HubSpotSandbox, after: u64, latest: bool) -> Value {
    let state = sandbox.inner.state.lock().expect("state");
    let entries: Vec<_> = if latest {
        state
            .journal
            .iter()
            .rev()
            .take(100)
            .rev()
            .cloned()
            .collect()
    } else {
        state
            .journal
            .iter()
            .filter(|e| e.offset > after)
            .take(100)
            .cloned()
            .collect()
    };
    let current = entries.last().map(|e| e.offset).unwrap_or(after);
    json!({"results": entries, "currentOffset": current.to_string()})
}

pub async fn journal_latest(
    State(sandbox): State<HubSpotSandbox>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&sandbox, &headers, &[])?;
    Ok(Json(journal_page(&sandbox, 0, true)))
}

pub async fn journal_next(
    State(sandbox): State<HubSpotSandbox>,
    Path(offset): Path<String>,
    Query(_params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&sandbox, &headers, &[])?;
    Ok(Json(journal_page(
        &sandbox,
        offset.parse().unwrap_or(0),
        false,
    )))
}
