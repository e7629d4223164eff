//! A batch of HubSpot events: coalesced per deal, the overflow carried to a later job, and
//! applied per board account of the portal.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{instrument, warn};

use super::deals::*;
use super::others::*;
use crate::app::Services;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::app::jobs::WebhookEvent;
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::history::Direction;
use crate::domain::hubspot_event::EventKind;
use crate::domain::{Code, HubSpotObjectType, HubSpotRef, LinkState};

/// The deals a batch of events is about, with what triggered each.
#[derive(Debug, Default)]
pub struct Coalesced {
    pub deals: BTreeMap<u64, BTreeSet<String>>,
    pub companies: BTreeSet<u64>,
    pub contacts: BTreeSet<u64>,
    /// Merges of deals, companies and contacts: (type, survivor, merged).
    pub merges: Vec<(HubSpotObjectType, u64, Vec<u64>)>,
}

pub fn coalesce(events: &[WebhookEvent]) -> Coalesced {
    let mut out = Coalesced::default();
    for event in events {
        if event.kind == EventKind::Merge {
            out.merges.push((
                event.object.object_type,
                event.object.id,
                event.merged.clone(),
            ));
        }
        for object in event.objects() {
            match object.object_type {
                HubSpotObjectType::Deal => {
                    out.deals
                        .entry(object.id)
                        .or_default()
                        .insert(event.label());
                }
                HubSpotObjectType::Company => {
                    out.companies.insert(object.id);
                }
                HubSpotObjectType::Contact => {
                    out.contacts.insert(object.id);
                }
            }
        }
    }
    out
}

/// The deal an event may be carried over for: events naming one deal and
/// nothing else (merges, companies and contacts are always handled at once).
pub(super) fn carriable_deal(event: &WebhookEvent) -> Option<u64> {
    if event.kind == EventKind::Merge {
        return None;
    }
    match event.objects().as_slice() {
        [only] if only.object_type == HubSpotObjectType::Deal => Some(only.id),
        _ => None,
    }
}

/// Under load, a batch naming more than 100 deals keeps a multiple of 100 and
/// carries the rest to the next batch, so HubSpot reads (100 per call) go full
/// instead of ending on a partial call each batch. `fresh` events may be
/// carried, `carried` ones (already carried once) never are; no deal is split
/// between the two halves. Returns (handle now, carry over).
pub fn carry_over(
    carried: Vec<WebhookEvent>,
    fresh: Vec<WebhookEvent>,
) -> (Vec<WebhookEvent>, Vec<WebhookEvent>) {
    let limit = crate::ports::HUBSPOT_BATCH_LIMIT;
    let mut now_deals: BTreeSet<u64> = coalesce(&carried).deals.into_keys().collect();
    let fresh_deals: BTreeSet<u64> = coalesce(&fresh).deals.into_keys().collect();
    let total = now_deals.union(&fresh_deals).count();
    let surplus = total % limit;
    if total <= limit || surplus == 0 {
        return ([carried, fresh].concat(), Vec::new());
    }
    // Deals some event must handle now (merges, events naming several objects).
    for event in &fresh {
        if carriable_deal(event).is_none() {
            let c = coalesce(std::slice::from_ref(event));
            now_deals.extend(c.deals.keys());
            for (kind, survivor, merged) in c.merges {
                if kind == HubSpotObjectType::Deal {
                    now_deals.insert(survivor);
                    now_deals.extend(merged);
                }
            }
        }
    }
    // The newest ids (new deals arrive last) go to the next batch.
    let later: BTreeSet<u64> = fresh_deals
        .iter()
        .rev()
        .filter(|d| !now_deals.contains(d))
        .take(surplus)
        .copied()
        .collect();
    if later.len() < surplus {
        // The reads would end on a partial call either way.
        return ([carried, fresh].concat(), Vec::new());
    }
    let (later_events, now_events): (Vec<WebhookEvent>, Vec<WebhookEvent>) = fresh
        .into_iter()
        .partition(|e| carriable_deal(e).is_some_and(|d| later.contains(&d)));
    ([carried, now_events].concat(), later_events)
}

/// Applies one batch of events to every connection of the portal.
#[instrument(skip_all, fields(portal = %connections.first().map(|c| c.portal_id.to_string()).unwrap_or_default()))]
pub async fn apply(
    services: &Services,
    connections: &[Connection],
    events: &[WebhookEvent],
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    for connection in connections {
        note_webhook(services, connection).await;
    }
    // Names drafts show are read again once HubSpot says they may have changed
    // (our own writes included); an association change leaves names alone.
    let renamed: Vec<WebhookEvent> = events
        .iter()
        .filter(|e| e.kind != EventKind::AssociationChange)
        .cloned()
        .collect();
    let named = coalesce(&renamed);
    for portal in connections.iter().map(|c| c.portal_id) {
        let names = &services.directory.crm_names;
        for id in &named.companies {
            names.forget(&crate::app::directory::crm_key(
                portal,
                HubSpotObjectType::Company,
                *id,
            ));
        }
        for id in &named.contacts {
            names.forget(&crate::app::directory::crm_key(
                portal,
                HubSpotObjectType::Contact,
                *id,
            ));
        }
    }
    let own_app = services.settings.hubspot_app_id.to_string();
    let theirs: Vec<WebhookEvent> = events
        .iter()
        .filter(|e| !e.is_own_write(&own_app))
        .cloned()
        .collect();
    let coalesced = coalesce(&theirs);
    if coalesced.deals.is_empty() && coalesced.companies.is_empty() && coalesced.contacts.is_empty()
    {
        return Ok(());
    }
    // Each account of the portal on its own: one account's board budget never
    // holds another's changes (they run side by side); the first failure is
    // the batch's (what succeeded is not redone: baselines make it an echo).
    let results = futures_util::future::join_all(
        connections
            .iter()
            .map(|connection| apply_to(services, connection, &coalesced, last_attempt)),
    )
    .await;
    let mut outcome: Result<(), SyncFailure> = Ok(());
    for (connection, result) in connections.iter().zip(results) {
        let failure = match result {
            Ok(()) => continue,
            // One account of several waits for its budget: it goes on alone,
            // so the others' work is neither redone with it nor given up.
            Err(SyncFailure::Deferred { after })
                if connections.len() > 1
                    && hand_on_account(services, connection, events, after).await =>
            {
                continue;
            }
            Err(failure) => failure,
        };
        // A real failure decides over a deferral (it counts toward the last attempt).
        if matches!(outcome, Ok(()) | Err(SyncFailure::Deferred { .. })) {
            outcome = Err(failure);
        }
    }
    outcome
}

/// The batch's events again, for one account of the portal alone, received
/// once its wait is over; whether they were sent.
async fn hand_on_account(
    services: &Services,
    connection: &Connection,
    events: &[WebhookEvent],
    after: std::time::Duration,
) -> bool {
    let body = crate::app::jobs::QueueMessage::to_body(&crate::app::jobs::Job::HubspotEvents {
        portal_id: connection.portal_id,
        events: events.to_vec(),
        carried: true,
        account_id: Some(connection.account_id.clone()),
        lease: None,
    });
    let delay = after.clamp(
        crate::app::worker::CONFLICT_RETRY,
        crate::app::failure::MAX_DEFER,
    );
    match services.queue.send_delayed(&[body], delay).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, account = %connection.account_id, "deferred account not handed on; the batch waits with it");
            false
        }
    }
}

/// The coalesced events of one batch, for one account of the portal.
async fn apply_to(
    services: &Services,
    connection: &Connection,
    coalesced: &Coalesced,
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    match connection.state {
        ConnectionState::Active => {
            for (kind, survivor, merged) in &coalesced.merges {
                move_merged_links(services, connection, *kind, *survivor, merged).await?;
            }
            if !coalesced.deals.is_empty() {
                sync_deals(services, connection, &coalesced.deals, last_attempt).await?;
            }
            if !coalesced.companies.is_empty() || !coalesced.contacts.is_empty() {
                sync_others(
                    services,
                    connection,
                    &coalesced.companies,
                    &coalesced.contacts,
                    last_attempt,
                )
                .await?;
            }
        }
        ConnectionState::Suspended => {
            // Each attempt on a suspended connection is recorded (SPEC §3.8).
            let config_version = services
                .configs
                .config(&connection.account_id)
                .await?
                .version;
            for deal in coalesced.deals.keys() {
                record(
                    services,
                    Attempt {
                        account: &connection.account_id,
                        direction: Direction::HubspotToBoard,
                        hubspot: Some(HubSpotRef {
                            object_type: HubSpotObjectType::Deal,
                            id: *deal,
                        }),
                        board: None,
                        name: None,
                        code: Some(Code::IntegrationSuspended),
                        action: None,
                        detail: None,
                        warnings: Vec::new(),
                        config_version,
                    },
                )
                .await;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A batch given up on its last attempt before it reached its objects (HubSpot
/// could not be read, the store failed): an error entry with the failure's
/// catalog code for each linked object the events name, in each account of
/// the portal, so nothing is retried into the dead-letter queue unseen; the
/// user retries it from the history.
pub async fn record_given_up(
    services: &Services,
    connections: &[Connection],
    events: &[WebhookEvent],
    failure: &SyncFailure,
) {
    let objects: BTreeSet<_> = events.iter().flat_map(WebhookEvent::objects).collect();
    for connection in connections {
        let account = &connection.account_id;
        let version = match services.configs.config(account).await {
            Ok(config) => config.version,
            Err(_) => 0,
        };
        for object in &objects {
            let reference = HubSpotRef {
                object_type: object.object_type,
                id: object.id,
            };
            let link = match services
                .links
                .link_by_hubspot(account, connection.portal_id, reference)
                .await
            {
                Ok(Some(link)) if link.state == LinkState::Enabled => link,
                Ok(_) => continue,
                Err(error) => {
                    warn!(%error, "given-up object not recorded");
                    continue;
                }
            };
            record(
                services,
                Attempt {
                    account,
                    direction: Direction::HubspotToBoard,
                    hubspot: Some(link.hubspot),
                    board: Some(link.board),
                    name: None,
                    code: Some(failure.code()),
                    action: None,
                    detail: Some(failure.to_string()),
                    warnings: Vec::new(),
                    config_version: version,
                },
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy-format event on `deal` (association changes to a line item,
    /// a type we do not sync, so they name the deal alone).
    fn on(kind: &str, deal: u64) -> WebhookEvent {
        WebhookEvent::parse(&serde_json::json!({
            "portalId": 1000001, "objectId": deal, "subscriptionType": kind,
            "propertyName": "amount", "fromObjectId": deal, "toObjectId": 9,
            "associationType": "DEAL_TO_LINE_ITEM"}))
        .unwrap()
    }

    fn deals(events: &[WebhookEvent]) -> BTreeSet<u64> {
        coalesce(events).deals.into_keys().collect()
    }

    #[test]
    fn a_batch_over_100_deals_keeps_a_multiple_of_100_and_carries_the_newest() {
        // 250 deals, two events each (creation and association).
        let fresh: Vec<WebhookEvent> = (1..=250)
            .flat_map(|d| [on("deal.creation", d), on("deal.associationChange", d)])
            .collect();
        let (now, later) = carry_over(Vec::new(), fresh);
        assert_eq!(deals(&now), (1..=200).collect());
        assert_eq!(deals(&later), (201..=250).collect());
        assert_eq!(later.len(), 100, "both events of each carried deal");

        // The carried ones come first next time and are never carried again.
        let carried = later;
        let fresh: Vec<WebhookEvent> = (251..=330).map(|d| on("deal.creation", d)).collect();
        let (now, later) = carry_over(carried, fresh);
        assert_eq!(deals(&now), (201..=300).collect());
        assert_eq!(deals(&later), (301..=330).collect());
    }

    #[test]
    fn small_batches_merges_and_carried_deals_are_handled_at_once() {
        let small: Vec<WebhookEvent> = (1..=99).map(|d| on("deal.creation", d)).collect();
        let (now, later) = carry_over(Vec::new(), small.clone());
        assert_eq!((now.len(), later.len()), (99, 0), "under 100: no waiting");
        let exact: Vec<WebhookEvent> = (1..=200).map(|d| on("deal.creation", d)).collect();
        assert!(carry_over(Vec::new(), exact).1.is_empty());

        // 101 deals where the newest is in a merge and another was carried before:
        // nothing else can fill the surplus without splitting, so all go now.
        let mut fresh: Vec<WebhookEvent> = (1..=100).map(|d| on("deal.creation", d)).collect();
        fresh.push(
            WebhookEvent::parse(&serde_json::json!({
                "portalId": 1000001, "objectId": 500, "primaryObjectId": 500,
                "mergedObjectIds": [7], "subscriptionType": "object.merge", "objectTypeId": "0-3"}))
            .unwrap(),
        );
        let (now, later) = carry_over(Vec::new(), fresh.clone());
        assert!(
            deals(&now).contains(&500),
            "a merge is never carried: {:?}",
            deals(&later)
        );
        assert_eq!(deals(&later).len(), 1);
        assert!(!deals(&later).contains(&7), "nor the deal merged away");

        let carried = vec![on("deal.propertyChange", 100)];
        let fresh: Vec<WebhookEvent> = (1..=100).map(|d| on("deal.creation", d)).collect();
        let (now, later) = carry_over(carried, [fresh, vec![on("deal.creation", 101)]].concat());
        assert!(
            deals(&now).contains(&100),
            "deal 100 was carried once already"
        );
        assert_eq!(deals(&later), BTreeSet::from([101]));
        assert_eq!(now.len() + later.len(), 102, "no event lost");
    }
}
