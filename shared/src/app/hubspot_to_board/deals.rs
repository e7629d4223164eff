//! Deals read again in batches (with their companies, contacts and names) and handed to the
//! linked-deal sync or the draft decision; deleted deals end their drafts and links.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use secrecy::ExposeSecret;
use tracing::{debug, warn};

use super::decisions::*;
use super::lease::{LEASE_SPREAD, LEASE_STEP, Lease};
use crate::app::Services;
use crate::app::budgeted_hubspot::BudgetedHubSpot;
use crate::app::failure::SyncFailure;
use crate::app::tokens::{TokenError, access_token};
use crate::domain::config::AccountConfig;
use crate::domain::connection::Connection;
use crate::domain::draft::{DraftCompany, DraftContact, DraftState};
use crate::domain::{HubSpotObjectType, HubSpotRef};
use crate::ports::{CrmObject, Decision};

/// deal → company "primary" association type.
pub(super) const PRIMARY_COMPANY: u32 = 5;

/// Reads the deals, their associations, companies and contacts in batches and
/// decides each deal for one board account.
pub async fn sync_deals(
    services: &Services,
    connection: &Connection,
    deals: &BTreeMap<u64, BTreeSet<String>>,
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    let account = &connection.account_id;
    // One invocation at a time paces an account through a large batch: a
    // second would only sleep beside it on the same board budget. When
    // another holds the account, this batch waits in the queue instead and
    // the poller moves on to other tenants. Asked before anything is read, so
    // a batch waiting its turn costs one conditional write each time it comes.
    let mut lease = Lease::new();
    if (deals.len() > SMALL_BATCH || lease.inherited)
        && let Err(wait) = lease.keep(services, account).await
    {
        let spread = deals.keys().next().copied().unwrap_or_default() % LEASE_SPREAD;
        let after = wait + LEASE_STEP * u32::try_from(spread).unwrap_or(0);
        debug!(account = %account, after_ms = after.as_millis() as u64, "another invocation paces this account; deferred");
        return Err(SyncFailure::Deferred { after });
    }
    let own = match own_deals(services, connection, deals).await {
        Ok(own) => own,
        Err(failure) => {
            lease.release(services, account).await;
            return Err(failure);
        }
    };
    let deals = &own;
    if deals.len() <= SMALL_BATCH {
        lease.release(services, account).await;
    }
    if deals.is_empty() {
        return Ok(());
    }
    let result = paced_deals(services, connection, deals, last_attempt, &mut lease).await;
    if !lease.handed_on {
        lease.release(services, account).await;
    }
    result
}

/// `sync_deals` once the deals are the account's own and, for a large batch, the lease is held.
async fn paced_deals(
    services: &Services,
    connection: &Connection,
    deals: &BTreeMap<u64, BTreeSet<String>>,
    last_attempt: bool,
    lease: &mut Lease,
) -> Result<(), SyncFailure> {
    let account = &connection.account_id;
    let token = match access_token(services, account).await {
        Ok(t) => t,
        Err(TokenError::Suspended | TokenError::NotConnected) => return Ok(()),
        Err(TokenError::AuthInvalid) => {
            warn!(account = %account, "HubSpot refused the refresh token; counted toward suspension");
            return Ok(());
        }
        Err(TokenError::Unavailable(e)) => {
            return Err(SyncFailure::retry(
                crate::domain::Code::HubspotUnavailable,
                e,
            ));
        }
        Err(TokenError::Store(e)) => return Err(e.into()),
    };
    let token = token.expose_secret();
    let ids: Vec<u64> = deals.keys().copied().collect();
    debug!(deals = ids.len(), "reading deals with their associations");
    // Deals and their two association reads belong together: three calls per
    // 100 deals taken at once. Companies' and contacts' names (often none, or
    // copies younger than a minute) take their own turns when they are read.
    let calls = 3 * ids.len().div_ceil(100) as u32;
    let hubspot = BudgetedHubSpot::new(services, connection, token);
    hubspot.reserve(calls).await.map_err(SyncFailure::from)?;
    let mut read_wall = services.clock.now();
    let (found, missing) = hubspot
        .batch_read(HubSpotObjectType::Deal, &ids, &DEAL_PROPERTIES)
        .await
        .map_err(SyncFailure::from)?;
    let with_companies = hubspot
        .batch_associations(HubSpotObjectType::Deal, HubSpotObjectType::Company, &ids)
        .await
        .map_err(SyncFailure::from)?;
    let with_contacts = hubspot
        .batch_associations(HubSpotObjectType::Deal, HubSpotObjectType::Contact, &ids)
        .await
        .map_err(SyncFailure::from)?;
    let company_ids: BTreeSet<u64> = with_companies.values().flatten().map(|a| a.id).collect();
    let contact_ids: BTreeSet<u64> = with_contacts.values().flatten().map(|a| a.id).collect();
    let companies = read_names(
        &hubspot,
        HubSpotObjectType::Company,
        &company_ids,
        &["name"],
    )
    .await?;
    let contacts = read_names(
        &hubspot,
        HubSpotObjectType::Contact,
        &contact_ids,
        &["lastname", "firstname", "email"],
    )
    .await?;
    let config = services.configs.config(account).await?;

    // board's writes are paced (about 2.4 a second): when going through the
    // deals has taken a while, the rest are read again so a deal changed
    // meanwhile is written once, as it is now, not twice.
    let mut found = found;
    let started = std::time::Instant::now();
    let mut read_at = std::time::Instant::now();
    for i in 0..found.len() {
        // This account's share of the invocation is spent (board's pacing):
        // the rest of its deals go back as a job of their own, so the poller
        // moves on to other tenants instead of pacing here for minutes.
        if started.elapsed() > ACCOUNT_SLICE {
            // The rest goes on under a new holder of the lease: a redelivery
            // of this message can no longer pace beside it as the old one.
            let next = lease.hand_over(services, account).await;
            if hand_on(
                services,
                connection,
                &found[i..],
                Duration::ZERO,
                next.clone(),
            )
            .await
            {
                lease.handed_on = true;
                break;
            }
            if let Some(next) = next {
                // Not handed on: this invocation goes on, holding the lease anew.
                lease.holder = next;
                lease.taken = Some(std::time::Instant::now());
            }
        }
        // The lease is held while the batch goes on; lost (another took it
        // while one deal took longer than the lease), the rest waits.
        if lease.taken.is_some()
            && let Err(wait) = lease.keep(services, account).await
        {
            let spread = found[i].id % LEASE_SPREAD;
            let after = wait + LEASE_STEP * u32::try_from(spread).unwrap_or(0);
            lease.taken = None;
            if hand_on(services, connection, &found[i..], after, None).await {
                lease.handed_on = true;
                break;
            }
        }
        // Read again only on a turn free now: a wait for HubSpot's budget
        // (a portal busy with board's changes) would leave board's idle, and
        // the earlier read is still a read (its time goes with it).
        if read_at.elapsed() > REREAD_AFTER && i + 1 < found.len() {
            let wall = services.clock.now();
            if crate::app::budget::handing_back(refresh(&hubspot, &mut found[i..]))
                .await
                .is_ok()
            {
                read_wall = wall;
                read_at = std::time::Instant::now();
            }
        }
        let deal = &found[i];
        let trigger: Vec<String> = deals
            .get(&deal.id)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let draft_companies = with_companies
            .get(&deal.id)
            .into_iter()
            .flatten()
            .map(|a| DraftCompany {
                id: a.id,
                name: companies
                    .get(&a.id)
                    .and_then(|c| c.get("name"))
                    .unwrap_or_default()
                    .to_owned(),
                primary: a.type_ids.contains(&PRIMARY_COMPANY),
            })
            .collect();
        let draft_contacts = with_contacts
            .get(&deal.id)
            .into_iter()
            .flatten()
            .map(|a| {
                let c = contacts.get(&a.id);
                let field = |name: &str| c.and_then(|c| c.get(name)).unwrap_or_default().to_owned();
                DraftContact {
                    id: a.id,
                    last_name: field("lastname"),
                    first_name: field("firstname"),
                    email: field("email"),
                }
            })
            .collect();
        let decided = decide(
            services,
            connection,
            &config,
            deal,
            draft_companies,
            draft_contacts,
            Occasion {
                trigger,
                read_at: read_wall,
                last_attempt,
            },
        );
        // The lease's holder paces the account (sleeps for its turns); in
        // any other batch each deal is a unit: a wait before it has spent a
        // turn is handed back (the batch deferred), once it has read it
        // finishes.
        if lease.taken.is_some() {
            crate::app::budget::pacing(decided).await?;
        } else {
            crate::app::budget::unit(decided).await?;
        }
    }
    for id in missing {
        let trigger: Vec<String> = deals
            .get(&id)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        deal_gone(services, connection, &config, id, trigger).await?;
    }
    Ok(())
}

/// In a portal shared by several accounts every account hears of every deal:
/// the deals another account has registered (of which this one holds no
/// draft) are that account's business, dropped here before anything is read
/// from HubSpot or paced for this one (a large batch asks for the account's
/// lease first: waiting its turn then costs one conditional write, not two
/// store reads per deal).
async fn own_deals(
    services: &Services,
    connection: &Connection,
    deals: &BTreeMap<u64, BTreeSet<String>>,
) -> Result<BTreeMap<u64, BTreeSet<String>>, SyncFailure> {
    if crate::app::budget::accounts_on(services, connection.portal_id).await < 2 {
        return Ok(deals.clone());
    }
    let account = &connection.account_id;
    let portal = connection.portal_id;
    let checks = futures_util::future::join_all(deals.keys().map(|id| async move {
        let claimed = services.links.deal_claimed_by(portal, *id).await?;
        if claimed.as_ref().is_none_or(|a| a == account) {
            return Ok::<_, crate::ports::StoreError>(true);
        }
        Ok(services.drafts.draft(account, portal, *id).await?.is_some())
    }))
    .await;
    let mut own = BTreeMap::new();
    for ((id, triggers), keep) in deals.iter().zip(checks) {
        if keep? {
            own.insert(*id, triggers.clone());
        }
    }
    Ok(own)
}

/// How long one account's deals may take of an invocation before the rest is handed on.
pub const ACCOUNT_SLICE: std::time::Duration = std::time::Duration::from_secs(5);

/// Deals board's budget writes within about a second: a batch this small
/// runs wherever it is received, beside a running one.
const SMALL_BATCH: usize = 2;

/// Sends `rest` back to the work queue as a job for this account alone (one
/// property-change event per deal: it is read again there); whether it was
/// sent (when not, the caller goes on with them).
async fn hand_on(
    services: &Services,
    connection: &Connection,
    rest: &[CrmObject],
    after: Duration,
    lease: Option<String>,
) -> bool {
    use crate::domain::hubspot_event::{ChangeOrigin, EventKind, ObjectRef};
    let events: Vec<crate::app::jobs::WebhookEvent> = rest
        .iter()
        .map(|deal| crate::app::jobs::WebhookEvent {
            portal_id: connection.portal_id,
            event_id: None,
            occurred_at: None,
            kind: EventKind::PropertyChange,
            object: ObjectRef {
                object_type: HubSpotObjectType::Deal,
                id: deal.id,
            },
            property: None,
            merged: Vec::new(),
            new_object_id: None,
            association: None,
            origin: ChangeOrigin::default(),
        })
        .collect();
    let body = crate::app::jobs::QueueMessage::to_body(&crate::app::jobs::Job::HubspotEvents {
        portal_id: connection.portal_id,
        events,
        carried: true,
        account_id: Some(connection.account_id.clone()),
        lease,
    });
    match services
        .queue
        .send_delayed(&[body], after.min(crate::app::failure::MAX_DEFER))
        .await
    {
        Ok(()) => {
            debug!(account = %connection.account_id, deals = rest.len(), after_ms = after.as_millis() as u64, "the rest handed on");
            true
        }
        Err(error) => {
            warn!(%error, "the rest not handed on; going on here");
            false
        }
    }
}

/// How old a read of deals may get before the rest of a batch is read again.
pub(super) const REREAD_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Companies' or contacts' names for drafts: copies younger than a minute
/// (`directory`), the rest read in batches.
pub(super) async fn read_names(
    hubspot: &BudgetedHubSpot<'_>,
    kind: HubSpotObjectType,
    ids: &BTreeSet<u64>,
    properties: &[&str],
) -> Result<BTreeMap<u64, CrmObject>, SyncFailure> {
    let names = &hubspot.services().directory.crm_names;
    let portal = hubspot.connection().portal_id;
    let key = |id: u64| crate::app::directory::crm_key(portal, kind, id);
    let mut out = BTreeMap::new();
    let mut missing: Vec<u64> = Vec::new();
    for id in ids {
        match names.fresh(&key(*id)) {
            Some(copy) => {
                out.insert(*id, (*copy).clone());
            }
            None => missing.push(*id),
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let (found, _) = hubspot
        .batch_read(kind, &missing, properties)
        .await
        .map_err(SyncFailure::from)?;
    for object in found {
        names.put(&key(object.id), object.clone());
        out.insert(object.id, object);
    }
    Ok(out)
}

/// A deal HubSpot no longer has: its open draft is withdrawn.
pub(super) async fn deal_gone(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    deal: u64,
    trigger: Vec<String>,
) -> Result<(), SyncFailure> {
    let now = services.clock.now();
    let deal_ref = HubSpotRef {
        object_type: HubSpotObjectType::Deal,
        id: deal,
    };
    if let Some(link) = services
        .links
        .link_by_hubspot(&connection.account_id, connection.portal_id, deal_ref)
        .await?
    {
        let result = super::linked_deals::deal_deleted(services, link, config).await?;
        let decision = Decision {
            at: now,
            trigger,
            outcome: result.outcome.into(),
            reason: result.reason,
            config_version: config.version,
        };
        return log_decision(services, connection, deal, decision).await;
    }
    let reason = "HubSpotで取引が削除されました".to_owned();
    if let Some(mut draft) = services
        .drafts
        .draft(&connection.account_id, connection.portal_id, deal)
        .await?
        && draft.state == DraftState::Open
    {
        draft.state = DraftState::Withdrawn;
        draft.reason = Some(reason.clone());
        draft.updated_at = now;
        save(services, &draft).await?;
    }
    let decision = Decision {
        at: now,
        trigger,
        outcome: "deleted".into(),
        reason,
        config_version: config.version,
    };
    log_decision(services, connection, deal, decision).await
}
