//! Webhooks: every change becomes an event delivered to the app's target URL in
//! batches of up to 100, signed (v3 over the URI decoded as HubSpot documents,
//! plus v1), retried with backoff on a non-2xx or a timeout with `attemptNumber`
//! counting, shuffled/dropped/duplicated when the faults say so. Events go to the
//! app only while it is installed in the portal. Also the webhooks journal, where
//! app install/uninstall appear as `APP_LIFECYCLE_EVENT`s.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::HubSpotSandbox;
use crate::gate::Caller;
use crate::model::{ObjectType, TokenKind, now_ms};

/// One change in the CRM, before it is shaped by the subscription it falls under.
#[derive(Debug, Clone)]
pub struct Event {
    pub object_type: ObjectType,
    /// `creation`, `deletion`, `merge`, `restore`, `propertyChange`,
    /// `associationChange`: the suffix of the subscription type.
    pub action: &'static str,
    pub object_id: u64,
    pub property_name: Option<String>,
    pub property_value: Option<String>,
    pub association: Option<AssociationEnd>,
    pub change_source: &'static str,
    pub source_id: String,
    pub occurred_at: i64,
    /// Fields of the event's kind (a merge's `primaryObjectId`, …).
    pub extra: Value,
}

/// The other end of an association change, seen from the event's object.
#[derive(Debug, Clone)]
pub struct AssociationEnd {
    pub to_type: ObjectType,
    pub to_id: u64,
    pub type_id: u32,
    pub removed: bool,
    pub primary: bool,
}

impl Event {
    pub fn new(caller: &Caller, kind: ObjectType, id: u64, action: &'static str) -> Self {
        Self {
            object_type: kind,
            action,
            object_id: id,
            property_name: None,
            property_value: None,
            association: None,
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

/// The section of `webhooks-hsmeta.json` a subscription sits in, which decides
/// the format of its events.
/// <https://developers.hubspot.com/docs/apps/developer-platform/add-features/configure-webhooks>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Section {
    /// `object.creation` with `objectTypeId` (the generic format).
    CrmObjects,
    /// `deal.creation` and the like (the classic format).
    LegacyCrmObjects,
    /// `contact.privacyDeletion`, `conversation.*`: nothing here emits them.
    HubEvents,
}

#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub id: u64,
    pub section: Section,
    pub subscription_type: String,
    /// `crmObjects` only: `deal`, `company`, …
    pub object_type: Option<String>,
    pub property_name: Option<String>,
    pub active: bool,
}

/// The app's webhook subscriptions, read from our own HubSpot project at
/// start-up so the emulator sends what that project subscribes to, and nothing
/// else.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions(pub Vec<Subscription>, pub Throttling);

/// The component's `settings.maxConcurrentRequests`: how many webhook requests
/// HubSpot has in flight to the target URL at once
/// (https://developers.hubspot.com/docs/apps/developer-platform/add-features/configure-webhooks;
/// the settings API calls it `throttling.maxConcurrentRequests`:
/// https://developers.hubspot.com/docs/api-reference/latest/webhooks/subscriptions/update-webhook).
/// Missing, the emulator sends one request at a time (harder than any setting).
#[derive(Debug, Clone, Copy)]
pub struct Throttling {
    pub max_concurrent_requests: usize,
}

impl Default for Throttling {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 1,
        }
    }
}

impl Subscriptions {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file["type"] != "webhooks" {
            return Err("not a webhooks component (type must be \"webhooks\")".into());
        }
        let throttling = match &file["config"]["settings"]["maxConcurrentRequests"] {
            Value::Null => Throttling::default(),
            n => Throttling {
                max_concurrent_requests: n
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .ok_or("settings.maxConcurrentRequests must be a positive whole number")?
                    as usize,
            },
        };
        let sections = file["config"]["subscriptions"]
            .as_object()
            .ok_or("config.subscriptions is missing")?;
        let mut out = Vec::new();
        for (name, entries) in sections {
            let section = match name.as_str() {
                "crmObjects" => Section::CrmObjects,
                "legacyCrmObjects" => Section::LegacyCrmObjects,
                "hubEvents" => Section::HubEvents,
                other => return Err(format!("unknown subscription section {other}")),
            };
            for entry in entries.as_array().ok_or("a section must be a list")? {
                let text = |k: &str| entry[k].as_str().map(str::to_owned);
                let subscription_type =
                    text("subscriptionType").ok_or("subscriptionType missing")?;
                let object_type = text("objectType");
                if section == Section::CrmObjects {
                    // The generic format names the type beside `object.*`.
                    if !subscription_type.starts_with("object.") {
                        return Err(format!("{subscription_type} is not a crmObjects type"));
                    }
                    let Some(t) = &object_type else {
                        return Err(format!("{subscription_type} needs objectType"));
                    };
                    ObjectType::parse(t).map_err(|_| format!("unknown objectType {t}"))?;
                }
                if section == Section::LegacyCrmObjects && subscription_type.starts_with("object.")
                {
                    return Err(format!("{subscription_type} belongs under crmObjects"));
                }
                if subscription_type.ends_with(".propertyChange") && text("propertyName").is_none()
                {
                    return Err(format!("{subscription_type} needs propertyName"));
                }
                out.push(Subscription {
                    id: subscription_id(&format!("{name}/{entry}")),
                    section,
                    subscription_type,
                    object_type,
                    property_name: text("propertyName"),
                    active: entry["active"].as_bool().unwrap_or(true),
                });
            }
        }
        Ok(Self(out, throttling))
    }

    /// The active subscriptions `event` falls under.
    fn matching<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a Subscription> + 'a {
        self.0.iter().filter(move |s| {
            let kind_matches = match s.section {
                Section::CrmObjects => {
                    s.subscription_type == format!("object.{}", event.action)
                        && s.object_type
                            .as_deref()
                            .and_then(|t| ObjectType::parse(t).ok())
                            == Some(event.object_type)
                }
                Section::LegacyCrmObjects => {
                    s.subscription_type
                        == format!("{}.{}", event.object_type.singular(), event.action)
                }
                Section::HubEvents => false,
            };
            s.active
                && kind_matches
                && (event.action != "propertyChange" || s.property_name == event.property_name)
        })
    }
}

/// HubSpot's raw object type ids.
fn object_type_id(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Contacts => "0-1",
        ObjectType::Companies => "0-2",
        ObjectType::Deals => "0-3",
        ObjectType::Notes => "0-46",
    }
}

/// The event as HubSpot delivers it for `subscription`.
/// Generic format: <https://developers.hubspot.com/changelog/public-beta-generic-webhook-subscriptions>
/// (`objectTypeId` on creation, deletion, merge, restore and property change;
/// association changes carry `fromObjectTypeId`, `toObjectTypeId`,
/// `associationTypeId` and `associationCategory` instead). Merge and
/// association fields: <https://developers.hubspot.com/changelog/new-subscription-types-for-webhooks>.
/// `objectId` is not listed for association changes, so none is sent.
fn render(
    event: &Event,
    subscription: &Subscription,
    portal: u64,
    app_id: u64,
    event_id: u64,
) -> Value {
    let generic = subscription.section == Section::CrmObjects;
    let mut body = json!({
        "eventId": event_id,
        "subscriptionId": subscription.id,
        "portalId": portal,
        "appId": app_id,
        "occurredAt": event.occurred_at,
        "subscriptionType": subscription.subscription_type,
        "attemptNumber": 0,
        "changeSource": event.change_source,
        "sourceId": if event.source_id.is_empty() { app_id.to_string() } else { event.source_id.clone() },
    });
    match &event.association {
        Some(a) => {
            body["fromObjectId"] = json!(event.object_id);
            body["toObjectId"] = json!(a.to_id);
            body["associationType"] = json!(format!(
                "{}_TO_{}",
                event.object_type.upper(),
                a.to_type.upper()
            ));
            body["associationRemoved"] = json!(a.removed);
            body["isPrimaryAssociation"] = json!(a.primary);
            if generic {
                body["fromObjectTypeId"] = json!(object_type_id(event.object_type));
                body["toObjectTypeId"] = json!(object_type_id(a.to_type));
                body["associationTypeId"] = json!(a.type_id);
                body["associationCategory"] = json!("HUBSPOT_DEFINED");
            }
        }
        None => {
            body["objectId"] = json!(event.object_id);
            if generic {
                body["objectTypeId"] = json!(object_type_id(event.object_type));
            }
        }
    }
    if let Some(name) = &event.property_name {
        body["propertyName"] = json!(name);
        body["propertyValue"] = json!(event.property_value.clone().unwrap_or_default());
    }
    if let Value::Object(extra) = &event.extra {
        for (k, v) in extra {
            body[k] = v.clone();
        }
    }
    body
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

/// Queues the events the app's subscriptions ask for, if the app is installed
/// in the portal: one per matching subscription, in that subscription's format.
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
    let subscriptions = &sandbox.inner.subscriptions;
    let mut outbox = sandbox.inner.outbox.lock().expect("outbox");
    let now = Instant::now();
    for event in events {
        for subscription in subscriptions.matching(&event) {
            outbox.next_event_id += 1;
            let body = render(&event, subscription, portal, app_id, outbox.next_event_id);
            outbox.queue.push(Pending {
                body,
                attempt: 0,
                due: now,
            });
        }
    }
}

fn subscription_id(key: &str) -> u64 {
    // Stable per subscription, as a HubSpot app's subscriptions are.
    let digest = Sha256::digest(key.as_bytes());
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

/// Delivers due events every flush: up to the project's
/// `maxConcurrentRequests` requests at once (`Throttling`), each of up to 100
/// events, oldest first whatever their portal (a portal's burst goes ahead of
/// another portal's single change: how HubSpot orders an app's deliveries
/// across portals is not documented, so the emulator takes the harder reading).
pub fn spawn(sandbox: HubSpotSandbox) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let concurrent = sandbox.inner.subscriptions.1.max_concurrent_requests;
        loop {
            let flush = sandbox.inner.config.lock().expect("config").webhook_flush;
            tokio::time::sleep(flush).await;
            // Read after the wait: a target set meanwhile applies to this batch.
            let (url, secret, timeout) = {
                let c = sandbox.inner.config.lock().expect("config");
                (
                    c.webhook_url.clone(),
                    c.client_secret.clone(),
                    c.webhook_timeout,
                )
            };
            let Some(url) = url else { continue };
            let faults = sandbox
                .inner
                .faults
                .lock()
                .expect("faults")
                .webhooks
                .clone();
            let batches: Vec<Vec<Pending>> = {
                let mut outbox = sandbox.inner.outbox.lock().expect("outbox");
                let now = Instant::now();
                let mut due = Vec::new();
                let mut keep = Vec::new();
                for p in outbox.queue.drain(..) {
                    if p.due <= now && due.len() < 100 * concurrent {
                        due.push(p)
                    } else {
                        keep.push(p)
                    }
                }
                outbox.queue = keep;
                let mut batches = Vec::new();
                while !due.is_empty() {
                    let rest = due.split_off(due.len().min(100));
                    batches.push(std::mem::replace(&mut due, rest));
                }
                batches
            };
            let deliveries = batches
                .into_iter()
                .map(|batch| deliver(&client, &sandbox, &url, &secret, timeout, &faults, batch));
            futures_util::future::join_all(deliveries).await;
        }
    })
}

/// One request of up to 100 events (faults applied), retried with backoff
/// unless the target answered 2xx in time.
async fn deliver(
    client: &reqwest::Client,
    sandbox: &HubSpotSandbox,
    url: &str,
    secret: &str,
    timeout: Duration,
    faults: &crate::control::WebhookFaults,
    mut batch: Vec<Pending>,
) {
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
        return;
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
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json");
    for (name, value) in signature_headers(secret, "POST", url, &payload) {
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
