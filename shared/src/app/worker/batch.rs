//! One batch from a queue: each message parsed once, project, customer and contact events planned
//! together and their HubSpot records written in batches, every message settled (deleted, delayed or dead-lettered).

use tracing::{instrument, warn};

use crate::app::Services;
use crate::app::jobs::{BoardEvent, BoardEventType, Job, QueueMessage};
use crate::app::services::MAX_RECEIVES;
use crate::ports::{ReceivedMessage, WorkQueue};

use super::board_events::*;
use super::failure::*;
use super::hubspot_jobs::*;
use crate::app::failure::SyncFailure;

/// How often a paused tenant's messages come back to look whether it still is.
pub const PAUSE_RECHECK: std::time::Duration = std::time::Duration::from_secs(900);
pub use crate::app::failure::MAX_DEFER;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Message ids to report as failures (their visibility was already set).
    pub retry: Vec<String>,
    /// Message ids handled: a host that polls deletes these (Lambda does it itself).
    pub done: Vec<String>,
    pub dead_lettered: usize,
}

/// Whether `source` is one of the services' board-events lanes (the very instance:
/// the Lambda handler and the local pollers pass the services' own queues),
/// and a queue of its own (services built on one queue for both carry jobs).
pub(super) fn is_board_queue(services: &Services, source: &dyn WorkQueue) -> bool {
    let same = |queue| is(source, queue);
    (same(&services.board_queue) || same(&services.board_bulk_queue)) && !same(&services.queue)
}

/// Whether `source` is that very queue instance.
fn is(source: &dyn WorkQueue, queue: &std::sync::Arc<dyn WorkQueue>) -> bool {
    std::ptr::addr_eq(
        source as *const dyn WorkQueue,
        std::sync::Arc::as_ptr(queue),
    )
}

/// Whether `source` is board's bulk lane (imports and mass updates: every
/// tenant's part of its batches is a backlog), a queue of its own.
fn is_bulk_lane(services: &Services, source: &dyn WorkQueue) -> bool {
    let same = |queue| is(source, queue);
    same(&services.board_bulk_queue) && !same(&services.queue) && !same(&services.board_queue)
}

/// Processes messages received from `source`, the queue that dead letters and
/// delayed retries go back through. Messages from board's events queue must be
/// board change events: a job there is poison.
///
/// Each tenant's messages (board's account, HubSpot's portal: the queue's
/// `MessageGroupId`) are worked on concurrently with the other tenants': a
/// tenant pacing on its spent budget never holds another tenant's change that
/// came in the same batch.
#[instrument(skip_all, fields(messages = messages.len()))]
pub async fn process_batch(
    services: &Services,
    source: &dyn WorkQueue,
    messages: &[ReceivedMessage],
) -> BatchOutcome {
    let mut tenants: std::collections::BTreeMap<String, Vec<ReceivedMessage>> = Default::default();
    for message in messages {
        tenants
            .entry(crate::ports::tenant_of(&message.body))
            .or_default()
            .push(message.clone());
    }
    let bulk_lane = is_bulk_lane(services, source);
    let outcomes = futures_util::future::join_all(tenants.iter().map(|(tenant, messages)| async {
        if paused(services, tenant, messages) {
            put_back(source, tenant, messages).await
        } else if bulk_lane || messages.len() > BACKLOG_SHARE {
            // board's bulk lane, or most of a batch one tenant's: a backlog,
            // paced here (its waits slept) within the window less the margin
            // it leaves others, rather than deferred a message at a time only
            // to be received again; the other tenants of the batch go on beside it.
            crate::app::budget::bulk(process_tenant(services, source, tenant, messages)).await
        } else {
            crate::app::budget::handing_back(process_tenant(services, source, tenant, messages))
                .await
        }
    }))
    .await;
    let mut outcome = BatchOutcome::default();
    for part in outcomes {
        outcome.retry.extend(part.retry);
        outcome.done.extend(part.done);
        outcome.dead_lettered += part.dead_lettered;
    }
    outcome
}

/// More messages of one tenant in a batch than this (board's events come 100
/// at a time, jobs 10) make a backlog that is paced rather than deferred.
const BACKLOG_SHARE: usize = 10;

/// Whether on-call paused these messages' tenant (`PAUSED_TENANTS`): the group,
/// or for a job handed on for one account of a portal, the portal as well.
fn paused(services: &Services, tenant: &str, messages: &[ReceivedMessage]) -> bool {
    let paused = &services.settings.paused_tenants;
    if paused.is_empty() {
        return false;
    }
    paused.contains(tenant)
        || messages.iter().any(|m| {
            serde_json::from_str::<serde_json::Value>(&m.body)
                .ok()
                .and_then(|v| match &v["portal_id"] {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .is_some_and(|portal| paused.contains(&format!("portal:{portal}")))
        })
}

/// A paused tenant's messages (`PAUSED_TENANTS`) wait in the queue, received
/// again every 15 minutes, their receive counts starting over each time.
async fn put_back(
    source: &dyn WorkQueue,
    tenant: &str,
    messages: &[ReceivedMessage],
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for message in messages {
        match source.defer(message, PAUSE_RECHECK).await {
            Ok(()) => outcome.done.push(message.message_id.clone()),
            Err(error) => {
                warn!(%tenant, %error, "paused tenant's message not put back; retried later");
                if let Err(e) = source.retry_after(&message.receipt, PAUSE_RECHECK).await {
                    warn!(error = %e, "could not delay the retry either");
                }
                outcome.retry.push(message.message_id.clone());
            }
        }
    }
    tracing::info!(%tenant, messages = messages.len(), "tenant paused: messages put back");
    outcome
}

/// One tenant's messages of a batch.
async fn process_tenant(
    services: &Services,
    source: &dyn WorkQueue,
    tenant: &str,
    messages: &[ReceivedMessage],
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut oldest: Option<i64> = None;
    // Project, customer and contact changes are gathered so their HubSpot
    // writes share batch calls;
    // webhook events of one portal likewise, so a deal named by several
    // deliveries is read once and the reads go 100 at a time.
    let mut planned: Vec<(&ReceivedMessage, BoardEvent)> = Vec::new();
    type Events = Vec<crate::app::jobs::WebhookEvent>;
    // Per portal: the messages, events carried over before, fresh events.
    let mut webhooks: std::collections::BTreeMap<
        crate::domain::PortalId,
        (Vec<&ReceivedMessage>, Events, Events),
    > = Default::default();
    let from_board = is_board_queue(services, source);
    for message in messages {
        let parsed = QueueMessage::parse(&message.body);
        if let Some(at) = parsed
            .as_ref()
            .ok()
            .and_then(super::backlog::oldest_change_ms)
        {
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
        let result = match parsed {
            Err(reason) => Err(SyncFailure::Poison(reason)),
            // board's account may send to its queue; our jobs never travel there.
            Ok(QueueMessage::Job(_)) if from_board => Err(SyncFailure::Poison(
                "a job on board's events queue: only board change events are taken there".into(),
            )),
            Ok(QueueMessage::Job(Job::HubspotEvents {
                portal_id,
                events,
                carried,
                account_id: None,
                lease: None,
            })) => {
                let (from, before, fresh) = webhooks.entry(portal_id).or_default();
                from.push(message);
                if carried {
                    before.extend(events);
                } else {
                    fresh.extend(events);
                }
                continue;
            }
            Ok(QueueMessage::Job(job)) => {
                run_job(services, job, message.receive_count >= MAX_RECEIVES).await
            }
            Ok(QueueMessage::BoardEvent(event))
                if matches!(
                    event.event_type,
                    BoardEventType::ProjectCreated
                        | BoardEventType::ProjectUpdated
                        | BoardEventType::CustomerCreated
                        | BoardEventType::CustomerUpdated
                        | BoardEventType::ContactCreated
                        | BoardEventType::ContactUpdated
                ) =>
            {
                planned.push((message, event));
                continue;
            }
            Ok(QueueMessage::BoardEvent(event)) => {
                board_event(services, &event, message.receive_count).await
            }
        };
        settle(source, message, result, &mut outcome).await;
    }
    for (portal_id, (from, before, fresh)) in webhooks {
        let events = carry_over(source, portal_id, before, fresh).await;
        // Coalesced from several messages: when any is on its last receive, what
        // cannot be applied now is recorded rather than left to the DLQ.
        let last_attempt = from.iter().any(|m| m.receive_count >= MAX_RECEIVES);
        let result = run_job(
            services,
            Job::HubspotEvents {
                portal_id,
                events,
                carried: false,
                account_id: None,
                lease: None,
            },
            last_attempt,
        )
        .await;
        for message in from {
            let copy = match &result {
                Ok(()) => Ok(()),
                Err(failure) => Err(failure.duplicate()),
            };
            settle(source, message, copy, &mut outcome).await;
        }
    }
    for (message, result) in planned_events(services, planned).await {
        settle(source, message, result, &mut outcome).await;
    }
    if let Some(at) = oldest {
        let now = services.now_ms();
        let age = std::time::Duration::from_millis(u64::try_from(now - at).unwrap_or(0));
        super::backlog::report(&services.settings.metrics_namespace, tenant, age, now);
    }
    outcome
}

pub(super) async fn settle(
    source: &dyn WorkQueue,
    message: &ReceivedMessage,
    result: Result<(), SyncFailure>,
    outcome: &mut BatchOutcome,
) {
    match result {
        Ok(()) => outcome.done.push(message.message_id.clone()),
        Err(SyncFailure::Poison(reason)) => {
            warn!(message_id = %message.message_id, %reason, "moving message to the dead-letter queue");
            match source.dead_letter(message, &reason).await {
                Ok(()) => outcome.dead_lettered += 1,
                Err(e) => {
                    warn!(message_id = %message.message_id, error = %e, "dead-lettering failed; SQS's redrive policy will");
                    outcome.retry.push(message.message_id.clone());
                }
            }
        }
        Err(SyncFailure::Deferred { after }) => {
            // The tenant waits its turn: back as a fresh message (its receive
            // count starts over), and the rest of the batch goes on.
            let delay = after.clamp(CONFLICT_RETRY, MAX_DEFER);
            match source.defer(message, delay).await {
                Ok(()) => outcome.done.push(message.message_id.clone()),
                Err(e) => {
                    warn!(error = %e, "could not defer; retried after a visibility delay");
                    if let Err(e) = source.retry_after(&message.receipt, delay).await {
                        warn!(error = %e, "could not delay the retry either");
                    }
                    outcome.retry.push(message.message_id.clone());
                }
            }
        }
        Err(failure) => {
            // A lost conditional write (the link or ledger changed meanwhile)
            // is redone soon; a wait the other side asked for is honoured (at
            // least a second); anything else backs off.
            let delay = match &failure {
                SyncFailure::Conflict => CONFLICT_RETRY,
                SyncFailure::Retry {
                    after: Some(after), ..
                } => (*after).max(CONFLICT_RETRY),
                _ => retry_delay(message.receive_count),
            };
            let code = failure.code();
            warn!(message_id = %message.message_id, error = %failure, %code, delay_s = delay.as_secs(), "retrying later");
            if let Err(e) = source.retry_after(&message.receipt, delay).await {
                warn!(error = %e, "could not delay the retry; it comes back after the visibility timeout");
            }
            outcome.retry.push(message.message_id.clone());
        }
    }
}
