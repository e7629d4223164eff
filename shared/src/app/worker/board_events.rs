//! board's change events: admitted once per event id and version (one store operation), then
//! applied by kind (project, customer/contact, document sent).

use std::collections::HashSet;

use tracing::{debug, warn};

use crate::app::Services;
use crate::app::jobs::{BoardEvent, BoardEventType};
use crate::domain::BoardObjectKind;
use crate::ports::{Admission, ReceivedMessage, StoreError};

use crate::app::jobs::EVENT_MEMORY;

use crate::app::failure::SyncFailure;

/// Project, customer and contact changes of one batch: the newest event per
/// board object (older ones in the same batch are covered by its full
/// snapshot), planned one by one, their HubSpot writes sent together.
pub(super) async fn planned_events<'m>(
    services: &Services,
    events: Vec<(&'m ReceivedMessage, BoardEvent)>,
) -> Vec<(&'m ReceivedMessage, Result<(), SyncFailure>)> {
    let mut results: Vec<(&'m ReceivedMessage, Result<(), SyncFailure>)> = Vec::new();
    let mut newest: std::collections::BTreeMap<(String, &'static str, u64), usize> =
        Default::default();
    for (i, (_, event)) in events.iter().enumerate() {
        let object = event.target;
        let key = (
            event.account_id.to_string(),
            object.kind.as_str(),
            object.id,
        );
        let keep = newest
            .get(&key)
            .is_none_or(|j| events[*j].1.version < event.version);
        if keep {
            newest.insert(key, i);
        }
    }
    let chosen: HashSet<usize> = newest.values().copied().collect();
    let mut pending = Vec::new();
    for (i, (message, event)) in events.iter().enumerate() {
        if !chosen.contains(&i) {
            debug!(event_id = %event.event_id, version = event.version, "superseded by a newer event in the same batch");
            results.push((message, Ok(())));
            continue;
        }
        let planned = async {
            if !admit(services, event, message.receive_count).await? {
                return Ok(None);
            }
            let snapshot = &event.object;
            let account = &event.account_id;
            match event.target.kind {
                BoardObjectKind::Project => {
                    crate::app::board_to_hubspot::plan_project(services, account, false, snapshot)
                        .await
                }
                kind => {
                    crate::app::board_to_hubspot::plan_customer_or_contact(
                        services, account, kind, false, snapshot,
                    )
                    .await
                }
            }
            .map(Some)
        };
        match planned.await {
            Ok(Some(crate::app::board_to_hubspot::Plan::Write(write))) => {
                let last = message.receive_count >= crate::app::services::MAX_RECEIVES;
                pending.push((i, (*write).with_occurred_at(Some(event.occurred_at)), last));
            }
            Ok(plan) => {
                debug!(event_id = %event.event_id, admitted = plan.is_some(), version = event.version, "board event needs no write");
                results.push((message, Ok(())));
            }
            Err(SyncFailure::Poison(reason)) => {
                results.push((message, Err(SyncFailure::Poison(reason))));
            }
            Err(failure) => {
                let failure = release(services, event, failure).await;
                results.push((message, Err(failure)));
            }
        }
    }
    let order: Vec<usize> = pending.iter().map(|(i, _, _)| *i).collect();
    let writes = pending.into_iter().map(|(_, w, last)| (w, last)).collect();
    let written = crate::app::board_to_hubspot::write_batch(services, writes).await;
    for (i, result) in order.into_iter().zip(written) {
        let (message, event) = &events[i];
        let result = match result {
            Ok(applied) => {
                debug!(event_id = %event.event_id, ?applied, "board event applied");
                Ok(())
            }
            Err(e) => Err(release(services, event, e).await),
        };
        results.push((message, result));
    }
    results
}

/// Forgets an event whose effect failed transiently, so its redelivery is
/// applied; the failure to settle the message on. A deferral goes back as a
/// fresh message, which `admit` would take for a duplicate of an event still
/// remembered: when the event could not be forgotten, the message is retried
/// as itself instead (a redelivery of this very message is applied again).
pub(super) async fn release(
    services: &Services,
    event: &BoardEvent,
    failure: SyncFailure,
) -> SyncFailure {
    let object = event.target;
    let version = if event.event_type == BoardEventType::DocumentSent {
        0
    } else {
        event.version
    };
    match services
        .board_events
        .release_event(&event.account_id, &event.event_id, object, version)
        .await
    {
        Ok(()) => failure,
        Err(e) => {
            warn!(error = %e, "board event not released; retried as this very message");
            failure.without_deferral()
        }
    }
}

/// Whether an event is to be applied: first sightings whose version moves
/// forward (admitted in one store operation, so a failure can never leave an
/// event seen without its version), and redeliveries of this very message
/// while no newer version was applied.
pub(super) async fn admit(
    services: &Services,
    event: &BoardEvent,
    receive_count: u32,
) -> Result<bool, SyncFailure> {
    let object = event.target;
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
            StoreError::Limit(reason) => {
                SyncFailure::Poison(format!("invalid board event: {reason}"))
            }
            other => other.into(),
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

pub(super) async fn board_event(
    services: &Services,
    event: &BoardEvent,
    receive_count: u32,
) -> Result<(), SyncFailure> {
    use crate::app::jobs::BoardEventType as T;
    let last_attempt = receive_count >= crate::app::services::MAX_RECEIVES;
    if !admit(services, event, receive_count).await? {
        return Ok(());
    }
    let result = match event.event_type {
        T::ProjectCreated | T::ProjectUpdated | T::ProjectDeleted => {
            crate::app::board_to_hubspot::project_event(
                services,
                &event.account_id,
                event.event_type == T::ProjectDeleted,
                &event.object,
                last_attempt,
            )
            .await
            .map(|applied| debug!(event_id = %event.event_id, ?applied, "project event applied"))
        }
        T::DocumentSent => crate::app::board_to_hubspot::document_sent(
            services,
            &event.account_id,
            &event.event_id,
            &event.object,
            last_attempt,
        )
        .await
        .map(|applied| debug!(event_id = %event.event_id, ?applied, "document event applied")),
        T::CustomerCreated
        | T::CustomerUpdated
        | T::CustomerDeleted
        | T::ContactCreated
        | T::ContactUpdated
        | T::ContactDeleted => crate::app::board_to_hubspot::customer_or_contact_event(
            services,
            &event.account_id,
            event.target.kind,
            event.event_type.is_deletion(),
            &event.object,
            last_attempt,
        )
        .await
        .map(|applied| debug!(event_id = %event.event_id, ?applied, "board event applied")),
    };
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err(release(services, event, error).await),
    }
}
