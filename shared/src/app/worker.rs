//! The sync worker's frame: decode each message, dead-letter what can never
//! succeed (with the reason), delay what may succeed later through the message's
//! visibility (never by sleeping), and report only those as batch failures.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tracing::{debug, info, instrument, warn};

use super::Services;
use super::jobs::{BoardEvent, BoardEventType, Job, QueueMessage};
use crate::domain::{BoardObjectKind, BoardRef, PortalId};
use crate::ports::{Admission, ReceivedMessage, StoreError, WorkQueue};

/// How long an event id is remembered: beyond SQS retention and a DLQ replay.
pub const EVENT_MEMORY: time::Duration = time::Duration::days(14);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Message ids to report as failures (their visibility was already set).
    pub retry: Vec<String>,
    /// Message ids handled: a host that polls deletes these (Lambda does it itself).
    pub done: Vec<String>,
    pub dead_lettered: usize,
}

/// How soon a message whose conditional write lost is tried again.
pub const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// Delay before the n-th retry: exponential from 10 s, capped at 15 minutes, with jitter.
pub fn retry_delay(receive_count: u32) -> Duration {
    let base = 10u64.saturating_mul(1 << receive_count.min(7)).min(900);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_secs(base - jitter)
}

#[derive(Debug)]
enum Failure {
    /// Will never succeed: dead-letter with this reason.
    Poison(String),
    /// May succeed later.
    Transient(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Transient(e)
    }
}

/// Whether `source` is the services' board-events queue (the very instance:
/// the Lambda handler and the local pollers pass the services' own queues),
/// and a queue of its own (services built on one queue for both carry jobs).
fn is_board_queue(services: &Services, source: &dyn WorkQueue) -> bool {
    let same = |queue: &std::sync::Arc<dyn WorkQueue>| {
        std::ptr::addr_eq(
            source as *const dyn WorkQueue,
            std::sync::Arc::as_ptr(queue),
        )
    };
    same(&services.board_queue) && !same(&services.queue)
}

/// Processes messages received from `source`, the queue that dead letters and
/// delayed retries go back through. Messages from board's events queue must be
/// board change events: a job there is poison.
#[instrument(skip_all, fields(messages = messages.len()))]
pub async fn process_batch(
    services: &Services,
    source: &dyn WorkQueue,
    messages: &[ReceivedMessage],
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    // Project changes are gathered so their deal writes share batch calls;
    // webhook events of one portal likewise, so a deal named by several
    // deliveries is read once and the reads go 100 at a time.
    let mut projects: Vec<(&ReceivedMessage, BoardEvent)> = Vec::new();
    type Events = Vec<super::jobs::WebhookEvent>;
    // Per portal: the messages, events carried over before, fresh events.
    let mut webhooks: std::collections::BTreeMap<
        crate::domain::PortalId,
        (Vec<&ReceivedMessage>, Events, Events),
    > = Default::default();
    let from_board = is_board_queue(services, source);
    for message in messages {
        let result = match QueueMessage::parse(&message.body) {
            Err(reason) => Err(Failure::Poison(reason)),
            // board's account may send to its queue; our jobs never travel there.
            Ok(QueueMessage::Job(_)) if from_board => Err(Failure::Poison(
                "a job on board's events queue: only board change events are taken there".into(),
            )),
            Ok(QueueMessage::Job(Job::HubspotEvents {
                portal_id,
                events,
                carried,
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
            Ok(QueueMessage::Job(job)) => run_job(services, job).await,
            Ok(QueueMessage::BoardEvent(event))
                if matches!(
                    event.event_type,
                    BoardEventType::ProjectCreated | BoardEventType::ProjectUpdated
                ) =>
            {
                projects.push((message, event));
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
        let result = run_job(
            services,
            Job::HubspotEvents {
                portal_id,
                events,
                carried: false,
            },
        )
        .await;
        for message in from {
            let copy = match &result {
                Ok(()) => Ok(()),
                Err(Failure::Poison(reason)) => Err(Failure::Poison(reason.clone())),
                Err(Failure::Transient(error)) => Err(Failure::Transient(StoreError::Unavailable(
                    anyhow::anyhow!(error.to_string()),
                ))),
            };
            settle(source, message, copy, &mut outcome).await;
        }
    }
    for (message, result) in project_events(services, projects).await {
        settle(source, message, result, &mut outcome).await;
    }
    outcome
}

async fn settle(
    source: &dyn WorkQueue,
    message: &ReceivedMessage,
    result: Result<(), Failure>,
    outcome: &mut BatchOutcome,
) {
    match result {
        Ok(()) => outcome.done.push(message.message_id.clone()),
        Err(Failure::Poison(reason)) => {
            warn!(message_id = %message.message_id, %reason, "moving message to the dead-letter queue");
            match source.dead_letter(message, &reason).await {
                Ok(()) => outcome.dead_lettered += 1,
                Err(e) => {
                    warn!(message_id = %message.message_id, error = %e, "dead-lettering failed; SQS's redrive policy will");
                    outcome.retry.push(message.message_id.clone());
                }
            }
        }
        Err(Failure::Transient(error)) => {
            // A lost conditional write (the link or ledger changed meanwhile)
            // is redone soon; anything else backs off.
            let delay = if matches!(error, StoreError::Conflict) {
                CONFLICT_RETRY
            } else {
                retry_delay(message.receive_count)
            };
            warn!(message_id = %message.message_id, %error, delay_s = delay.as_secs(), "retrying later");
            if let Err(e) = source.retry_after(&message.receipt, delay).await {
                warn!(error = %e, "could not delay the retry; it comes back after the visibility timeout");
            }
            outcome.retry.push(message.message_id.clone());
        }
    }
}

/// Project changes of one batch: the newest event per project (older ones in the
/// same batch are covered by its full snapshot), planned one by one, their deal
/// writes sent together.
async fn project_events<'m>(
    services: &Services,
    events: Vec<(&'m ReceivedMessage, BoardEvent)>,
) -> Vec<(&'m ReceivedMessage, Result<(), Failure>)> {
    let mut results: Vec<(&'m ReceivedMessage, Result<(), Failure>)> = Vec::new();
    let mut newest: std::collections::BTreeMap<(String, u64), usize> = Default::default();
    let mut objects = Vec::with_capacity(events.len());
    for (i, (message, event)) in events.iter().enumerate() {
        match board_object(event) {
            Ok(object) => {
                objects.push(Some(object));
                let key = (event.account_id.to_string(), object.id);
                let keep = newest
                    .get(&key)
                    .is_none_or(|j| events[*j].1.version < event.version);
                if keep {
                    newest.insert(key, i);
                }
            }
            Err(failure) => {
                objects.push(None);
                results.push((message, Err(failure)));
            }
        }
    }
    let chosen: HashSet<usize> = newest.values().copied().collect();
    let mut pending = Vec::new();
    for (i, (message, event)) in events.iter().enumerate() {
        if objects[i].is_none() {
            continue;
        }
        if !chosen.contains(&i) {
            debug!(event_id = %event.event_id, version = event.version, "superseded by a newer event in the same batch");
            results.push((message, Ok(())));
            continue;
        }
        let planned = async {
            if !admit(services, event, message.receive_count).await? {
                return Ok(None);
            }
            let snapshot: serde_json::Value = serde_json::from_str(event.object.get())
                .map_err(|e| Failure::Poison(format!("invalid board event: object: {e}")))?;
            super::board_sync::plan_project(services, &event.account_id, false, &snapshot)
                .await
                .map_err(sync_failure)
                .map(Some)
        };
        match planned.await {
            Ok(Some(super::board_sync::Plan::Write(write))) => {
                let last = message.receive_count >= super::services::MAX_RECEIVES;
                let at = time::OffsetDateTime::parse(
                    &event.occurred_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok();
                pending.push((i, (*write).with_occurred_at(at), last));
            }
            Ok(plan) => {
                debug!(event_id = %event.event_id, admitted = plan.is_some(), version = event.version, "project event needs no write");
                results.push((message, Ok(())));
            }
            Err(failure) => {
                if matches!(failure, Failure::Transient(_)) {
                    release(services, event).await;
                }
                results.push((message, Err(failure)));
            }
        }
    }
    let order: Vec<usize> = pending.iter().map(|(i, _, _)| *i).collect();
    let writes = pending.into_iter().map(|(_, w, last)| (w, last)).collect();
    let written = super::board_sync::write_deals(services, writes).await;
    for (i, result) in order.into_iter().zip(written) {
        let (message, event) = &events[i];
        let result = match result {
            Ok(applied) => {
                debug!(event_id = %event.event_id, ?applied, "project event applied");
                Ok(())
            }
            Err(e) => {
                release(services, event).await;
                Err(sync_failure(e))
            }
        };
        results.push((message, result));
    }
    results
}

fn sync_failure(error: super::board_sync::BoardSyncError) -> Failure {
    match error {
        super::board_sync::BoardSyncError::Store(s) => Failure::Transient(s),
        super::board_sync::BoardSyncError::Transient(m) => {
            Failure::Transient(StoreError::Unavailable(anyhow::anyhow!(m)))
        }
    }
}

/// Forgets an event whose effect failed transiently, so its redelivery is applied.
async fn release(services: &Services, event: &BoardEvent) {
    let Ok(object) = board_object(event) else {
        return;
    };
    let version = if event.event_type == BoardEventType::DocumentSent {
        0
    } else {
        event.version
    };
    if let Err(e) = services
        .board_events
        .release_event(&event.account_id, &event.event_id, object, version)
        .await
    {
        warn!(error = %e, "board event not released; its redelivery will be taken for a duplicate");
    }
}

/// Sends the events `hubspot_sync::carry_over` leaves for the next batch back
/// to the queue; returns the ones to handle now (all of them if sending fails).
async fn carry_over(
    queue: &dyn WorkQueue,
    portal_id: crate::domain::PortalId,
    before: Vec<super::jobs::WebhookEvent>,
    fresh: Vec<super::jobs::WebhookEvent>,
) -> Vec<super::jobs::WebhookEvent> {
    let (now, later) = super::hubspot_sync::carry_over(before, fresh);
    if later.is_empty() {
        return now;
    }
    let body = QueueMessage::to_body(&Job::HubspotEvents {
        portal_id,
        events: later.clone(),
        carried: true,
    });
    match queue.send_batch(std::slice::from_ref(&body)).await {
        Ok(()) => {
            debug!(
                events = later.len(),
                "events carried over to the next batch"
            );
            now
        }
        Err(error) => {
            warn!(%error, "events not carried over; handled now");
            [now, later].concat()
        }
    }
}

async fn run_job(services: &Services, job: Job) -> Result<(), Failure> {
    match job {
        Job::HubspotEvents {
            portal_id, events, ..
        } => {
            let connections = services
                .connections
                .connections_of_portal(portal_id)
                .await?;
            if connections.is_empty() {
                warn_unknown_portal_once(portal_id);
                return Ok(());
            }
            super::hubspot_sync::apply(services, &connections, &events)
                .await
                .map_err(|e| match e {
                    super::hubspot_sync::SyncError::Transient(m) => {
                        Failure::Transient(StoreError::Unavailable(anyhow::anyhow!(m)))
                    }
                    super::hubspot_sync::SyncError::Store(s) => Failure::Transient(s),
                })
        }
        Job::CatchUp { account_id } => super::catch_up::sweep(services, &account_id)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                super::hubspot_sync::SyncError::Transient(m) => {
                    Failure::Transient(StoreError::Unavailable(anyhow::anyhow!(m)))
                }
                super::hubspot_sync::SyncError::Store(s) => Failure::Transient(s),
            }),
        Job::CatchUpAll => super::catch_up::request_all(services)
            .await
            .map(|_| ())
            .map_err(Failure::Transient),
        Job::PollLifecycle => {
            // The schedule sends the next poll; a failed one is not worth retrying.
            match super::lifecycle::poll(services).await {
                Ok(changed) => debug!(changed, "lifecycle journal read"),
                Err(error) => warn!(%error, "lifecycle journal not read"),
            }
            Ok(())
        }
    }
}

/// A portal with no connection is logged once per process, not once per event.
fn warn_unknown_portal_once(portal: PortalId) {
    static SEEN: Mutex<Option<HashSet<PortalId>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(portal) {
        info!(portal = %portal, "webhook events for a portal with no connection are dropped");
    }
}

fn board_object(event: &BoardEvent) -> Result<BoardRef, Failure> {
    use super::jobs::BoardEventType as T;
    let kind = match event.event_type {
        T::ProjectCreated | T::ProjectUpdated | T::ProjectDeleted | T::DocumentSent => {
            BoardObjectKind::Project
        }
        T::CustomerCreated | T::CustomerUpdated | T::CustomerDeleted => BoardObjectKind::Customer,
        T::ContactCreated | T::ContactUpdated | T::ContactDeleted => {
            BoardObjectKind::CustomerContact
        }
    };
    #[derive(serde::Deserialize)]
    struct Snapshot {
        #[serde(default)]
        id: Option<u64>,
        #[serde(default)]
        project_id: Option<u64>,
    }
    let snapshot: Snapshot = serde_json::from_str(event.object.get())
        .map_err(|e| Failure::Poison(format!("invalid board event: object: {e}")))?;
    let id = if event.event_type == super::jobs::BoardEventType::DocumentSent {
        snapshot.project_id
    } else {
        snapshot.id
    };
    let id = id
        .filter(|id| *id > 0)
        .ok_or_else(|| Failure::Poison("invalid board event: object has no id".into()))?;
    Ok(BoardRef { kind, id })
}

/// Whether an event is to be applied: first sightings whose version moves
/// forward (admitted in one store operation, so a failure can never leave an
/// event seen without its version), and redeliveries of this very message
/// while no newer version was applied.
async fn admit(
    services: &Services,
    event: &BoardEvent,
    receive_count: u32,
) -> Result<bool, Failure> {
    let object = board_object(event)?;
    let now = services.clock.now();
    // Documents are events, not versions of the project.
    let versioned =
        (event.event_type != BoardEventType::DocumentSent).then_some((object, event.version));
    let admission = services
        .board_events
        .admit(
            &event.account_id,
            &event.event_id,
            versioned,
            now,
            now + EVENT_MEMORY,
        )
        .await
        .map_err(|e| match e {
            // A version the store cannot hold will never be admitted.
            StoreError::Limit(reason) => Failure::Poison(format!("invalid board event: {reason}")),
            other => Failure::Transient(other),
        })?;
    match admission {
        Admission::Admitted => Ok(true),
        Admission::Stale => {
            debug!(event_id = %event.event_id, %object, version = event.version, "older than what was applied");
            Ok(false)
        }
        Admission::Seen if receive_count <= 1 => {
            // Another copy of an event already taken (board's producer or SQS sent it twice).
            debug!(event_id = %event.event_id, "duplicate board event");
            Ok(false)
        }
        Admission::Seen
            if versioned.is_some()
                && services
                    .board_events
                    .applied_version(&event.account_id, object)
                    .await?
                    != Some(event.version) =>
        {
            debug!(event_id = %event.event_id, "redelivered, and a newer version was applied since");
            Ok(false)
        }
        Admission::Seen => {
            // This very message came back: the worker may have died mid-way. Applying
            // again is safe (baselines; notes are found by their marker).
            debug!(event_id = %event.event_id, receive_count, "redelivered board event applied again");
            Ok(true)
        }
    }
}

async fn board_event(
    services: &Services,
    event: &BoardEvent,
    receive_count: u32,
) -> Result<(), Failure> {
    use super::jobs::BoardEventType as T;
    let last_attempt = receive_count >= super::services::MAX_RECEIVES;
    let object = board_object(event)?;
    if !admit(services, event, receive_count).await? {
        return Ok(());
    }
    let result = match event.event_type {
        T::ProjectCreated | T::ProjectUpdated | T::ProjectDeleted => {
            let snapshot: serde_json::Value = serde_json::from_str(event.object.get())
                .map_err(|e| Failure::Poison(format!("invalid board event: object: {e}")))?;
            super::board_sync::project_event(
                services,
                &event.account_id,
                event.event_type == T::ProjectDeleted,
                &snapshot,
                last_attempt,
            )
            .await
            .map(|applied| debug!(event_id = %event.event_id, ?applied, "project event applied"))
        }
        T::DocumentSent => {
            let snapshot: serde_json::Value = serde_json::from_str(event.object.get())
                .map_err(|e| Failure::Poison(format!("invalid board event: object: {e}")))?;
            super::board_sync::document_sent(
                services,
                &event.account_id,
                &event.event_id,
                &snapshot,
                last_attempt,
            )
            .await
            .map(|applied| debug!(event_id = %event.event_id, ?applied, "document event applied"))
        }
        T::CustomerCreated
        | T::CustomerUpdated
        | T::CustomerDeleted
        | T::ContactCreated
        | T::ContactUpdated
        | T::ContactDeleted => {
            let snapshot: serde_json::Value = serde_json::from_str(event.object.get())
                .map_err(|e| Failure::Poison(format!("invalid board event: object: {e}")))?;
            super::board_sync::customer_or_contact_event(
                services,
                &event.account_id,
                object.kind,
                matches!(event.event_type, T::CustomerDeleted | T::ContactDeleted),
                &snapshot,
                last_attempt,
            )
            .await
            .map(|applied| debug!(event_id = %event.event_id, ?applied, "board event applied"))
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(error) => {
            release(services, event).await;
            Err(sync_failure(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        for count in 0..20 {
            let d = retry_delay(count).as_secs();
            assert!((7..=900).contains(&d), "{count}: {d}");
        }
        assert!(retry_delay(1).as_secs() <= 20);
        assert!(retry_delay(10).as_secs() >= 675);
    }
}
