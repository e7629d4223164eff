//! HubSpot → board (SPEC §5), deals: webhook events are notifications. Per
//! batch and board account the worker coalesces them per deal, re-reads the
//! deals and their associations in batches, and applies the entry gates:
//! a qualifying unlinked deal gets (or updates) its draft, one that stops
//! qualifying has its draft withdrawn — nothing recorded in the history then,
//! only in the decision log.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::ExposeSecret;
use tracing::{debug, info, instrument, warn};

use super::Services;
use super::budget::metered;
use super::history::{Attempt, record};
use super::jobs::WebhookEvent;
use super::tokens::{TokenError, access_token};
use crate::domain::config::AccountConfig;
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::draft::{Draft, DraftCompany, DraftContact, DraftContent, DraftState};
use crate::domain::gates::{DealFacts, GateReport, evaluate_gates};
use crate::domain::history::Direction;
use crate::domain::hubspot_event::EventKind;
use crate::domain::{Code, DealId, HubSpotObjectType, HubSpotRef, PipelineId, StageId};
use crate::ports::{CrmObject, Decision, HubSpotError, StoreError};

/// Deal properties the sync reads.
pub const DEAL_PROPERTIES: [&str; 11] = [
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "hubspot_owner_id",
    "hubspot_team_id",
    "board_custom_filter_key",
    "exclude_from_board_integration",
    "deal_currency_code",
    "hs_lastmodifieddate",
];
/// deal → company "primary" association type.
const PRIMARY_COMPANY: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Worth retrying later (HubSpot or the store unavailable, rate limited).
    #[error("transient: {0}")]
    Transient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The deals a batch of events is about, with what triggered each.
#[derive(Debug, Default)]
pub struct Coalesced {
    pub deals: BTreeMap<u64, BTreeSet<String>>,
    pub companies: BTreeSet<u64>,
    pub contacts: BTreeSet<u64>,
    /// Deal merges: (surviving deal, merged deals).
    pub merges: Vec<(u64, Vec<u64>)>,
}

pub fn coalesce(events: &[WebhookEvent]) -> Coalesced {
    let mut out = Coalesced::default();
    for event in events {
        if event.kind == EventKind::Merge && event.object.object_type == HubSpotObjectType::Deal {
            out.merges.push((event.object.id, event.merged.clone()));
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
fn carriable_deal(event: &WebhookEvent) -> Option<u64> {
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
    let limit = crate::adapters::hubspot::BATCH_LIMIT;
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
            for (survivor, merged) in c.merges {
                now_deals.insert(survivor);
                now_deals.extend(merged);
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
) -> Result<(), SyncError> {
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
            names.forget(&super::directory::crm_key(
                portal,
                HubSpotObjectType::Company,
                *id,
            ));
        }
        for id in &named.contacts {
            names.forget(&super::directory::crm_key(
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
    for connection in connections {
        match connection.state {
            ConnectionState::Active => {
                for (survivor, merged) in &coalesced.merges {
                    move_merged_links(services, connection, *survivor, merged).await?;
                }
                if !coalesced.deals.is_empty() {
                    sync_deals(services, connection, &coalesced.deals).await?;
                }
                if !coalesced.companies.is_empty() || !coalesced.contacts.is_empty() {
                    sync_others(
                        services,
                        connection,
                        &coalesced.companies,
                        &coalesced.contacts,
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
    }
    Ok(())
}

fn transient(e: HubSpotError) -> SyncError {
    SyncError::Transient(e.to_string())
}

/// Reads the deals, their associations, companies and contacts in batches and
/// decides each deal for one board account.
pub async fn sync_deals(
    services: &Services,
    connection: &Connection,
    deals: &BTreeMap<u64, BTreeSet<String>>,
) -> Result<(), SyncError> {
    let account = &connection.account_id;
    let token = match access_token(services, account).await {
        Ok(t) => t,
        Err(TokenError::Suspended | TokenError::NotConnected) => return Ok(()),
        Err(TokenError::AuthInvalid) => {
            warn!(account = %account, "HubSpot refused the refresh token; counted toward suspension");
            return Ok(());
        }
        Err(TokenError::Unavailable(e)) => return Err(SyncError::Transient(e)),
        Err(TokenError::Store(e)) => return Err(e.into()),
    };
    let token = token.expose_secret();
    let ids: Vec<u64> = deals.keys().copied().collect();
    debug!(deals = ids.len(), "reading deals with their associations");
    // Deals, two association reads, companies and contacts: five calls per 100 deals.
    let calls = 5 * ids.len().div_ceil(100) as u32;
    super::budget::hubspot(services, connection.portal_id, calls)
        .await
        .map_err(|wait| {
            SyncError::Transient(format!(
                "HubSpot budget spent; retry in {} ms",
                wait.as_millis()
            ))
        })?;
    let portal = connection.portal_id;
    let (found, missing) = metered(
        services,
        portal,
        services
            .batch
            .batch_read(token, HubSpotObjectType::Deal, &ids, &DEAL_PROPERTIES)
            .await,
    )
    .await
    .map_err(transient)?;
    let with_companies = metered(
        services,
        portal,
        services
            .batch
            .batch_associations(
                token,
                HubSpotObjectType::Deal,
                HubSpotObjectType::Company,
                &ids,
            )
            .await,
    )
    .await
    .map_err(transient)?;
    let with_contacts = metered(
        services,
        portal,
        services
            .batch
            .batch_associations(
                token,
                HubSpotObjectType::Deal,
                HubSpotObjectType::Contact,
                &ids,
            )
            .await,
    )
    .await
    .map_err(transient)?;
    let company_ids: BTreeSet<u64> = with_companies.values().flatten().map(|a| a.id).collect();
    let contact_ids: BTreeSet<u64> = with_contacts.values().flatten().map(|a| a.id).collect();
    let companies = read_names(
        services,
        connection.portal_id,
        token,
        HubSpotObjectType::Company,
        &company_ids,
        &["name"],
    )
    .await?;
    let contacts = read_names(
        services,
        connection.portal_id,
        token,
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
    let mut read_at = std::time::Instant::now();
    for i in 0..found.len() {
        if read_at.elapsed() > REREAD_AFTER && i + 1 < found.len() {
            refresh(services, connection, token, &mut found[i..]).await;
            read_at = std::time::Instant::now();
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
        decide(
            services,
            connection,
            &config,
            deal,
            draft_companies,
            draft_contacts,
            trigger,
        )
        .await?;
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

fn linked_failure(error: super::linked_deals::LinkedError) -> SyncError {
    use super::linked_deals::LinkedError;
    match error {
        LinkedError::Transient(m) => SyncError::Transient(m),
        LinkedError::Conflict => SyncError::Store(StoreError::Conflict),
        LinkedError::Store(s) => SyncError::Store(s),
    }
}

/// How old a read of deals may get before the rest of a batch is read again.
const REREAD_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads `deals` again (within the budget; on any failure they stay as read).
async fn refresh(
    services: &Services,
    connection: &Connection,
    token: &str,
    deals: &mut [CrmObject],
) {
    let ids: Vec<u64> = deals.iter().map(|d| d.id).collect();
    let calls = ids.len().div_ceil(100) as u32;
    if super::budget::hubspot(services, connection.portal_id, calls)
        .await
        .is_err()
    {
        return;
    }
    let read = services
        .batch
        .batch_read(token, HubSpotObjectType::Deal, &ids, &DEAL_PROPERTIES)
        .await;
    match metered(services, connection.portal_id, read).await {
        Ok((fresh, _)) => {
            let mut fresh: BTreeMap<u64, CrmObject> =
                fresh.into_iter().map(|o| (o.id, o)).collect();
            for deal in deals.iter_mut() {
                if let Some(now) = fresh.remove(&deal.id) {
                    *deal = now;
                }
            }
        }
        Err(error) => debug!(%error, "deals not read again; going on with the earlier read"),
    }
}

/// Companies' or contacts' names for drafts: copies younger than a minute
/// (`directory`), the rest read in batches.
async fn read_names(
    services: &Services,
    portal: crate::domain::PortalId,
    token: &str,
    kind: HubSpotObjectType,
    ids: &BTreeSet<u64>,
    properties: &[&str],
) -> Result<BTreeMap<u64, CrmObject>, SyncError> {
    let names = &services.directory.crm_names;
    let key = |id: u64| super::directory::crm_key(portal, kind, id);
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
    let (found, _) = metered(
        services,
        portal,
        services
            .batch
            .batch_read(token, kind, &missing, properties)
            .await,
    )
    .await
    .map_err(transient)?;
    for object in found {
        names.put(&key(object.id), object.clone());
        out.insert(object.id, object);
    }
    Ok(out)
}

pub fn facts_of(deal: &CrmObject) -> DealFacts {
    let text = |name: &str| deal.get(name).map(str::to_owned);
    DealFacts {
        pipeline: deal.get("pipeline").and_then(|p| PipelineId::new(p).ok()),
        stage: deal.get("dealstage").and_then(|s| StageId::new(s).ok()),
        team: text("hubspot_team_id"),
        owner: text("hubspot_owner_id"),
        filter_key: text("board_custom_filter_key"),
        exclusion: text("exclude_from_board_integration"),
        claimed_by: None,
    }
}

async fn log_decision(
    services: &Services,
    connection: &Connection,
    deal: u64,
    decision: Decision,
) -> Result<(), SyncError> {
    let expires = decision.at + services.settings.decision_retention;
    debug!(deal, outcome = %decision.outcome, "decision");
    services
        .decisions
        .record_decision(
            &connection.account_id,
            connection.portal_id,
            deal,
            &decision,
            expires,
        )
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    deal: &CrmObject,
    companies: Vec<DraftCompany>,
    contacts: Vec<DraftContact>,
    trigger: Vec<String>,
) -> Result<(), SyncError> {
    let account = &connection.account_id;
    let portal = connection.portal_id;
    let now = services.clock.now();
    let deal_ref = HubSpotRef {
        object_type: HubSpotObjectType::Deal,
        id: deal.id,
    };
    let decision = |outcome: &str, reason: String| Decision {
        at: now,
        trigger: trigger.clone(),
        outcome: outcome.to_owned(),
        reason,
        config_version: config.version,
    };
    if let Some(mut link) = services
        .links
        .link_by_hubspot(account, portal, deal_ref)
        .await?
    {
        let primary = companies.iter().find(|c| c.primary).map(|c| c.id);
        // The other direction may save the link meanwhile: redo with it, a few times.
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match super::linked_deals::apply(services, connection, config, link, deal, primary)
                .await
            {
                Ok(result) => break result,
                Err(super::linked_deals::LinkedError::Conflict) if attempts < 3 => {
                    match services
                        .links
                        .link_by_hubspot(account, portal, deal_ref)
                        .await?
                    {
                        Some(again) => link = again,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(linked_failure(e)),
            }
        };
        return log_decision(
            services,
            connection,
            deal.id,
            decision(result.outcome, result.reason),
        )
        .await;
    }
    let mut facts = facts_of(deal);
    facts.claimed_by = services
        .links
        .deal_claimed_by(portal, deal.id)
        .await?
        .filter(|a| a != account);
    let report: GateReport = evaluate_gates(config, &facts, |s| s.to_string());
    let existing = services.drafts.draft(account, portal, deal.id).await?;
    let Some(status) = report.order_status.filter(|_| report.passed()) else {
        let reason = report
            .first_failure()
            .map(|g| g.detail.clone())
            .unwrap_or_default();
        if let Some(mut draft) = existing.filter(|d| d.state == DraftState::Open) {
            draft.state = DraftState::Withdrawn;
            draft.reason = Some(reason.clone());
            draft.updated_at = now;
            save(services, &draft).await?;
            info!(account = %account, deal = deal.id, %reason, "draft withdrawn");
            return log_decision(services, connection, deal.id, decision("withdrawn", reason))
                .await;
        }
        return log_decision(
            services,
            connection,
            deal.id,
            decision("not_entered", reason),
        )
        .await;
    };
    let content = DraftContent {
        name: deal.get("dealname").unwrap_or_default().to_owned(),
        order_status: status,
        pipeline_id: facts.pipeline.clone().expect("mapped"),
        stage_id: facts.stage.clone().expect("mapped"),
        amount: deal.get("amount").map(str::to_owned),
        close_date: deal.get("closedate").map(str::to_owned),
        owner_id: facts.owner.clone(),
        companies,
        contacts,
    };
    let (draft, action) = match existing {
        Some(d) if d.state == DraftState::Discarded => {
            return log_decision(
                services,
                connection,
                deal.id,
                decision("kept_discarded", "ユーザーが破棄した下書き案件です".into()),
            )
            .await;
        }
        Some(d) if d.state == DraftState::Registered => {
            return log_decision(
                services,
                connection,
                deal.id,
                decision("registered", "案件として登録済みです".into()),
            )
            .await;
        }
        Some(d) if d.state == DraftState::Open && d.content == content => {
            return log_decision(
                services,
                connection,
                deal.id,
                decision("unchanged", "下書き案件に変更はありません".into()),
            )
            .await;
        }
        Some(mut d) => {
            let action = if d.state == DraftState::Withdrawn {
                "draft_restored"
            } else {
                "draft_updated"
            };
            d.content = content;
            d.state = DraftState::Open;
            d.reason = None;
            d.updated_at = now;
            (d, action)
        }
        None => (
            Draft {
                account_id: account.clone(),
                portal_id: portal,
                deal_id: DealId::new(deal.id).expect("HubSpot ids are positive"),
                content,
                state: DraftState::Open,
                reason: None,
                project_id: None,
                created_at: now,
                updated_at: now,
                revision: 0,
            },
            "draft_created",
        ),
    };
    save(services, &draft).await?;
    record(
        services,
        Attempt {
            account,
            direction: Direction::HubspotToBoard,
            hubspot: Some(deal_ref),
            board: None,
            name: Some(draft.content.name.clone()),
            code: None,
            action: Some(action),
            detail: None,
            warnings: Vec::new(),
            config_version: config.version,
        },
    )
    .await;
    log_decision(
        services,
        connection,
        deal.id,
        decision(action, format!("受注ステータス「{}」", status.label_ja())),
    )
    .await
}

async fn save(services: &Services, draft: &Draft) -> Result<(), SyncError> {
    match services.drafts.save_draft(draft).await {
        Ok(_) => Ok(()),
        // Another worker changed it meanwhile: retry the message; we re-read then.
        Err(StoreError::Conflict) => Err(SyncError::Transient("draft changed concurrently".into())),
        Err(e) => Err(e.into()),
    }
}

/// A deal HubSpot no longer has: its open draft is withdrawn.
async fn deal_gone(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    deal: u64,
    trigger: Vec<String>,
) -> Result<(), SyncError> {
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
        let result = super::linked_deals::deal_deleted(services, link, config)
            .await
            .map_err(linked_failure)?;
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

/// Linked companies and contacts of one account: read in batches, applied field by field.
pub async fn sync_others(
    services: &Services,
    connection: &Connection,
    companies: &BTreeSet<u64>,
    contacts: &BTreeSet<u64>,
) -> Result<(), SyncError> {
    let token = match access_token(services, &connection.account_id).await {
        Ok(t) => t,
        Err(TokenError::Unavailable(e)) => return Err(SyncError::Transient(e)),
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(_) => return Ok(()),
    };
    let token = token.expose_secret();
    // Only linked objects are synced: look the links up first (our store),
    // and spend HubSpot calls on those alone.
    let linked = |kind: HubSpotObjectType, ids: &BTreeSet<u64>| {
        let ids = ids.clone();
        async move {
            let mut out = BTreeSet::new();
            for id in ids {
                let reference = crate::domain::HubSpotRef {
                    object_type: kind,
                    id,
                };
                if services
                    .links
                    .link_by_hubspot(&connection.account_id, connection.portal_id, reference)
                    .await?
                    .is_some()
                {
                    out.insert(id);
                }
            }
            Ok::<_, StoreError>(out)
        }
    };
    let companies = &linked(HubSpotObjectType::Company, companies).await?;
    let contacts = &linked(HubSpotObjectType::Contact, contacts).await?;
    if companies.is_empty() && contacts.is_empty() {
        return Ok(());
    }
    let calls = (companies.len().div_ceil(100) + contacts.len().div_ceil(100)) as u32;
    super::budget::hubspot(services, connection.portal_id, calls.max(1))
        .await
        .map_err(|wait| {
            SyncError::Transient(format!(
                "HubSpot budget spent; retry in {} ms",
                wait.as_millis()
            ))
        })?;
    let config = services.configs.config(&connection.account_id).await?;
    for (kind, ids, properties) in [
        (
            HubSpotObjectType::Company,
            companies,
            &super::linked_others::COMPANY_PROPERTIES[..],
        ),
        (
            HubSpotObjectType::Contact,
            contacts,
            &super::linked_others::CONTACT_PROPERTIES[..],
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        let ids: Vec<u64> = ids.iter().copied().collect();
        let (found, missing) = metered(
            services,
            connection.portal_id,
            services
                .batch
                .batch_read(token, kind, &ids, properties)
                .await,
        )
        .await
        .map_err(transient)?;
        super::linked_others::sync(services, connection, &config, kind, &found, &missing)
            .await
            .map_err(linked_failure)?;
    }
    Ok(())
}

/// A merge moves the deal's link to the surviving deal (SPEC §5).
async fn move_merged_links(
    services: &Services,
    connection: &Connection,
    survivor: u64,
    merged: &[u64],
) -> Result<(), SyncError> {
    let account = &connection.account_id;
    let portal = connection.portal_id;
    let survivor_ref = HubSpotRef {
        object_type: HubSpotObjectType::Deal,
        id: survivor,
    };
    for id in merged {
        let old = HubSpotRef {
            object_type: HubSpotObjectType::Deal,
            id: *id,
        };
        let Some(link) = services.links.link_by_hubspot(account, portal, old).await? else {
            continue;
        };
        if link.state == crate::domain::LinkState::Archived
            || services
                .links
                .link_by_hubspot(account, portal, survivor_ref)
                .await?
                .is_some()
        {
            continue;
        }
        match services.links.move_deal_link(&link, survivor).await {
            Ok(()) => {
                let config_version = services.configs.config(account).await?.version;
                record(
                    services,
                    Attempt {
                        account,
                        direction: Direction::HubspotToBoard,
                        hubspot: Some(survivor_ref),
                        board: Some(link.board),
                        name: None,
                        code: None,
                        action: Some("link_moved"),
                        detail: Some(format!("取引 {id} は {survivor} に統合されました")),
                        warnings: Vec::new(),
                        config_version,
                    },
                )
                .await;
                info!(from = id, to = survivor, "link moved by a merge");
            }
            Err(crate::ports::ClaimError::Store(e)) => return Err(e.into()),
            Err(e) => warn!(error = %e, "merge: link not moved"),
        }
    }
    Ok(())
}

/// Records when the portal last sent webhooks (the status shows it); at most
/// once a minute per connection, so a burst of deliveries is not a burst of writes.
async fn note_webhook(services: &Services, connection: &Connection) {
    let now = services.clock.now();
    if connection
        .last_webhook_at
        .is_some_and(|at| now - at < time::Duration::minutes(1))
    {
        return;
    }
    let mut updated = connection.clone();
    updated.last_webhook_at = Some(now);
    if let Err(e) = services.connections.save_connection(&updated).await {
        debug!(error = %e, "last webhook time not recorded (changed meanwhile)");
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
