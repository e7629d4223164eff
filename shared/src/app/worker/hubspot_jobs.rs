//! Internal jobs: HubSpot event batches (the overflow carried to the next job), catch-up sweeps
//! and the hourly re-seal.

use std::collections::HashSet;
use std::sync::Mutex;

use tracing::{debug, info, warn};

use crate::app::Services;
use crate::app::jobs::{Job, QueueMessage};
use crate::domain::PortalId;
use crate::ports::WorkQueue;

use crate::app::failure::SyncFailure;

/// Sends the events `hubspot_to_board::carry_over` leaves for the next batch back
/// to the queue; returns the ones to handle now (all of them if sending fails).
pub(super) async fn carry_over(
    queue: &dyn WorkQueue,
    portal_id: crate::domain::PortalId,
    before: Vec<crate::app::jobs::WebhookEvent>,
    fresh: Vec<crate::app::jobs::WebhookEvent>,
) -> Vec<crate::app::jobs::WebhookEvent> {
    let (now, later) = crate::app::hubspot_to_board::carry_over(before, fresh);
    if later.is_empty() {
        return now;
    }
    let body = QueueMessage::to_body(&Job::HubspotEvents {
        portal_id,
        events: later.clone(),
        carried: true,
        account_id: None,
        lease: None,
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

/// Runs an internal job. `last_attempt`: this is the message's last receive, so
/// what cannot be applied now is recorded in the history instead of retried.
pub(super) async fn run_job(
    services: &Services,
    job: Job,
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    match job {
        Job::HubspotEvents {
            portal_id,
            events,
            account_id,
            lease,
            ..
        } => {
            let mut connections = services
                .connections
                .connections_of_portal(portal_id)
                .await?;
            if let Some(account) = &account_id {
                connections.retain(|c| &c.account_id == account);
            }
            if connections.is_empty() {
                warn_unknown_portal_once(portal_id);
                return Ok(());
            }
            let applied =
                crate::app::hubspot_to_board::apply(services, &connections, &events, last_attempt);
            match crate::app::hubspot_to_board::inheriting(lease, applied).await {
                Err(failure)
                    if last_attempt
                        && !matches!(
                            failure,
                            SyncFailure::Poison(_) | SyncFailure::Deferred { .. }
                        ) =>
                {
                    warn!(error = %failure, code = %failure.code(), "HubSpot events given up on their last attempt; recorded");
                    crate::app::hubspot_to_board::events::record_given_up(
                        services,
                        &connections,
                        &events,
                        &failure,
                    )
                    .await;
                    Ok(())
                }
                other => other,
            }
        }
        Job::CatchUp { account_id } => crate::app::catch_up::sweep(services, &account_id)
            .await
            .map(|_| ()),
        Job::Backfill { account_id, run } => {
            crate::app::backfill::run_slice(services, &account_id, &run).await
        }
        Job::Matching { account_id, run } => {
            crate::app::matching::run_slice(services, &account_id, &run).await
        }
        Job::Retry { account_id, ids } => {
            crate::app::history_tools::run_retries(services, &account_id, &ids).await
        }
        Job::CatchUpAll => crate::app::catch_up::request_all(services)
            .await
            .map(|_| ())
            .map_err(SyncFailure::from),
        Job::PollLifecycle => {
            // The schedule sends the next poll; a failed one is not worth retrying.
            match crate::app::lifecycle::poll(services).await {
                Ok(changed) => debug!(changed, "lifecycle journal read"),
                Err(error) => warn!(%error, "lifecycle journal not read"),
            }
            Ok(())
        }
    }
}

/// A portal with no connection is logged once per process, not once per event.
pub(super) fn warn_unknown_portal_once(portal: PortalId) {
    static SEEN: Mutex<Option<HashSet<PortalId>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(portal) {
        info!(portal = %portal, "webhook events for a portal with no connection are dropped");
    }
}
