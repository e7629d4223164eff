//! Receiving HubSpot webhooks: verify the signature on the raw body, then make
//! the events durable on the work queue before HubSpot gets its 2xx (SPEC §5).

use std::collections::BTreeMap;

use tracing::{debug, info, instrument, warn};

use super::Services;
use super::jobs::{Job, QueueMessage, WebhookEvent};
use crate::domain::PortalId;
use crate::domain::hubspot_event::EventError;
use crate::domain::signature::{SignatureError, SignedRequest, verify_v1, verify_v3};

/// Events per queued job; a job stays far below SQS's 256 KiB message limit.
pub const EVENTS_PER_JOB: usize = 100;

/// The signature headers HubSpot sent.
#[derive(Debug, Default, Clone)]
pub struct SignatureHeaders<'a> {
    pub v3: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub v1: Option<&'a str>,
    pub version: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature rejected: {0}")]
    Unauthorized(SignatureError),
    #[error("body of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed body: {0}")]
    Malformed(String),
    #[error("could not queue the events")]
    Unavailable(#[source] crate::ports::StoreError),
}

/// Which signature a delivery was accepted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// v3: timestamped, so a capture is stale after 5 minutes.
    V3,
    /// v1 only: no timestamp, so the events' own `occurredAt` bounds a replay.
    V1,
}

/// HubSpot's last retry of a delivery comes about 24 hours after the event:
/// an event older than this under a v1-only signature can only be a replay.
pub const V1_MAX_AGE_MS: i64 = 26 * 3600 * 1000;

/// Judges by v3 whenever HubSpot sent it; v1 only when v3 is absent (HubSpot
/// still signs some CRM object subscriptions with v1 only).
pub fn verify(
    services: &Services,
    headers: &SignatureHeaders<'_>,
    request: &SignedRequest<'_>,
) -> Result<Signed, SignatureError> {
    let settings = &services.settings;
    if headers.v3.is_some() {
        let now_ms = services.now_ms();
        return settings
            .verify_signed(|secret| {
                verify_v3(secret, request, headers.v3, headers.timestamp, now_ms)
            })
            .map(|()| Signed::V3);
    }
    match headers.version.map(str::trim) {
        None | Some("v1") => settings
            .verify_signed(|secret| verify_v1(secret, request.body, headers.v1))
            .map(|()| Signed::V1),
        Some(_) => Err(SignatureError::Missing),
    }
}

/// What became of a delivery's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    /// Events queued for the worker.
    pub accepted: usize,
    /// Well-formed events of a kind or object type we do not handle.
    pub unknown: usize,
    /// Events that could not be read (the rest of the delivery is kept).
    pub malformed: usize,
    /// Events of a v1-only delivery older than `V1_MAX_AGE_MS` (or without
    /// `occurredAt`): a replayed capture, since v1 has no timestamp.
    pub stale: usize,
    /// Deal property changes made by this app (our own writes coming back):
    /// never applied, so not queued.
    pub own_writes: usize,
}

/// Verifies, parses each event once into its typed form and queues them. An
/// event that cannot be read is logged and counted; the others are kept, since
/// HubSpot would otherwise retry and finally drop the whole delivery.
#[instrument(skip_all, fields(bytes = request.body.len()))]
pub async fn receive(
    services: &Services,
    headers: &SignatureHeaders<'_>,
    request: &SignedRequest<'_>,
) -> Result<Received, WebhookError> {
    if request.body.len() > services.settings.max_webhook_bytes {
        return Err(WebhookError::TooLarge(request.body.len()));
    }
    let signed = verify(services, headers, request).map_err(WebhookError::Unauthorized)?;
    let oldest_ms = services.now_ms() - V1_MAX_AGE_MS;
    let raw: Vec<serde_json::Value> =
        serde_json::from_slice(request.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let mut outcome = Received::default();
    let mut by_portal: BTreeMap<PortalId, Vec<WebhookEvent>> = BTreeMap::new();
    let own_app = services.settings.hubspot_app_id.to_string();
    for (index, value) in raw.iter().enumerate() {
        match WebhookEvent::parse(value) {
            Ok(event)
                if signed == Signed::V1 && event.occurred_at.is_none_or(|at| at < oldest_ms) =>
            {
                outcome.stale += 1;
                warn!(
                    event_id = event.event_id,
                    portal_id = %event.portal_id,
                    occurred_at = event.occurred_at,
                    "v1-signed event too old to be a delivery: dropped as a replay"
                );
            }
            // Our own deal writes coming back are never applied (the worker
            // drops them); queued, a backlog of them (an import written to
            // HubSpot) would take the queue's turns from other tenants. A
            // company's or contact's still goes on: it tells each instance to
            // read the name drafts show again.
            Ok(event)
                if event.object.object_type == crate::domain::HubSpotObjectType::Deal
                    && event.is_own_write(&own_app) =>
            {
                outcome.own_writes += 1;
            }
            Ok(event) => by_portal.entry(event.portal_id).or_default().push(event),
            Err(error) => {
                // The delivery's correlation data, to find it in HubSpot's logs.
                let field = |name: &str| value.get(name).map(ToString::to_string);
                let unknown = matches!(error, EventError::Unknown { .. });
                if unknown {
                    outcome.unknown += 1;
                } else {
                    outcome.malformed += 1;
                }
                warn!(
                    %error,
                    index,
                    event_id = field("eventId"),
                    portal_id = field("portalId"),
                    subscription_id = field("subscriptionId"),
                    attempt_number = field("attemptNumber"),
                    timestamp = headers.timestamp,
                    "webhook event not taken"
                );
            }
        }
    }
    if outcome.unknown + outcome.malformed + outcome.stale > 0 {
        // Read by the template's metric filters (UnknownWebhookEvents,
        // MalformedWebhookEvents, StaleWebhookEvents) and their alarm.
        warn!(
            unknown_events = outcome.unknown,
            malformed_events = outcome.malformed,
            stale_events = outcome.stale,
            "webhook events not taken"
        );
    }
    if by_portal.is_empty() && outcome.malformed > 0 {
        return Err(WebhookError::Malformed(format!(
            "none of the {} events could be read",
            raw.len()
        )));
    }
    let count: usize = by_portal.values().map(Vec::len).sum();
    let bodies: Vec<String> = by_portal
        .into_iter()
        .flat_map(|(portal_id, events)| {
            events
                .chunks(EVENTS_PER_JOB)
                .map(|chunk| {
                    QueueMessage::to_body(&Job::HubspotEvents {
                        portal_id,
                        events: chunk.to_vec(),
                        carried: false,
                        account_id: None,
                        lease: None,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if bodies.is_empty() {
        debug!(own_writes = outcome.own_writes, "nothing to queue");
        return Ok(outcome);
    }
    services.queue.send_batch(&bodies).await.map_err(|e| {
        warn!(error = %e, "webhook events could not be queued; HubSpot will retry");
        WebhookError::Unavailable(e)
    })?;
    info!(
        events = count,
        jobs = bodies.len(),
        own_writes = outcome.own_writes,
        "webhook events queued"
    );
    outcome.accepted = count;
    Ok(outcome)
}
