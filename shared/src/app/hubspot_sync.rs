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
use super::history::{Attempt, record};
use super::jobs::HubSpotEvent;
use super::tokens::{TokenError, access_token};
use crate::domain::config::AccountConfig;
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::draft::{Draft, DraftCompany, DraftContact, DraftContent, DraftState};
use crate::domain::gates::{DealFacts, GateReport, evaluate_gates};
use crate::domain::history::Direction;
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

pub fn coalesce(events: &[HubSpotEvent]) -> Coalesced {
    let mut out = Coalesced::default();
    for event in events {
        let kind = event.subscription_type.as_deref().unwrap_or_default();
        let Some((object, _)) = kind.split_once('.') else {
            continue;
        };
        if kind == "deal.merge"
            && let Some(primary) = event.primary_object_id.or(event.object_id)
        {
            let merged: Vec<u64> = event
                .merged_object_ids
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| *m != primary)
                .collect();
            out.merges.push((primary, merged));
        }
        let mut ids: Vec<u64> = event.object_id.into_iter().collect();
        ids.extend(event.primary_object_id);
        ids.extend(event.new_object_id);
        for id in ids.into_iter().filter(|id| *id > 0) {
            match object {
                "deal" => {
                    out.deals.entry(id).or_default().insert(kind.to_owned());
                }
                "company" => {
                    out.companies.insert(id);
                }
                "contact" => {
                    out.contacts.insert(id);
                }
                _ => {}
            }
        }
    }
    out
}

/// A property change our own app made (HubSpot stamps it with our app id as
/// `sourceId`): the echo of a write we already hold the baseline of, so it is
/// not worth a re-read. Creations, deletions, merges and association changes
/// are always re-read.
pub fn is_own_write(event: &HubSpotEvent, own_app: &str) -> bool {
    event
        .subscription_type
        .as_deref()
        .is_some_and(|t| t.ends_with(".propertyChange"))
        && event.change_source.as_deref() == Some("INTEGRATION")
        && event.source_id.as_deref() == Some(own_app)
}

/// Applies one batch of events to every connection of the portal.
#[instrument(skip_all, fields(portal = %connections.first().map(|c| c.portal_id.to_string()).unwrap_or_default()))]
pub async fn apply(
    services: &Services,
    connections: &[Connection],
    events: &[HubSpotEvent],
) -> Result<(), SyncError> {
    for connection in connections {
        note_webhook(services, connection).await;
    }
    let own_app = services.settings.hubspot_app_id.to_string();
    let theirs: Vec<HubSpotEvent> = events
        .iter()
        .filter(|e| !is_own_write(e, &own_app))
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
    let (found, missing) = services
        .batch
        .batch_read(token, HubSpotObjectType::Deal, &ids, &DEAL_PROPERTIES)
        .await
        .map_err(transient)?;
    let with_companies = services
        .batch
        .batch_associations(
            token,
            HubSpotObjectType::Deal,
            HubSpotObjectType::Company,
            &ids,
        )
        .await
        .map_err(transient)?;
    let with_contacts = services
        .batch
        .batch_associations(
            token,
            HubSpotObjectType::Deal,
            HubSpotObjectType::Contact,
            &ids,
        )
        .await
        .map_err(transient)?;
    let company_ids: BTreeSet<u64> = with_companies.values().flatten().map(|a| a.id).collect();
    let contact_ids: BTreeSet<u64> = with_contacts.values().flatten().map(|a| a.id).collect();
    let companies = read_names(
        services,
        token,
        HubSpotObjectType::Company,
        &company_ids,
        &["name"],
    )
    .await?;
    let contacts = read_names(
        services,
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
    match services
        .batch
        .batch_read(token, HubSpotObjectType::Deal, &ids, &DEAL_PROPERTIES)
        .await
    {
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

async fn read_names(
    services: &Services,
    token: &str,
    kind: HubSpotObjectType,
    ids: &BTreeSet<u64>,
    properties: &[&str],
) -> Result<BTreeMap<u64, CrmObject>, SyncError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<u64> = ids.iter().copied().collect();
    let (found, _) = services
        .batch
        .batch_read(token, kind, &ids, properties)
        .await
        .map_err(transient)?;
    Ok(found.into_iter().map(|o| (o.id, o)).collect())
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
        let (found, missing) = services
            .batch
            .batch_read(token, kind, &ids, properties)
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

    fn event(kind: &str, change_source: &str, source_id: &str) -> HubSpotEvent {
        serde_json::from_value(serde_json::json!({
            "portalId": 1000001, "objectId": 42, "subscriptionType": kind,
            "changeSource": change_source, "sourceId": source_id}))
        .unwrap()
    }

    #[test]
    fn only_our_own_property_changes_are_skipped_as_echoes() {
        assert!(is_own_write(
            &event("deal.propertyChange", "INTEGRATION", "777"),
            "777"
        ));
        for other in [
            event("deal.propertyChange", "INTEGRATION", "888"),
            event("deal.propertyChange", "CRM_UI", "userId:1"),
            event("deal.creation", "INTEGRATION", "777"),
            event("deal.associationChange", "INTEGRATION", "777"),
        ] {
            assert!(!is_own_write(&other, "777"), "{other:?}");
        }
    }
}
