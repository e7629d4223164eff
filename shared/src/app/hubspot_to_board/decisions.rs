//! The draft decision for an unlinked deal: the entry gates decide whether it becomes, stays or
//! stops being a draft; every decision goes to the decision log (the diagnosis reads it).

use std::collections::BTreeMap;

use tracing::{debug, info, warn};

use crate::app::Services;
use crate::app::budgeted_hubspot::BudgetedHubSpot;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::domain::config::AccountConfig;
use crate::domain::connection::Connection;
use crate::domain::draft::{Draft, DraftCompany, DraftContact, DraftContent, DraftState};
use crate::domain::gates::DealFacts;
use crate::domain::gates::{GateReport, evaluate_gates};
use crate::domain::history::Direction;
use crate::domain::{DealId, HubSpotObjectType, HubSpotRef};
use crate::domain::{PipelineId, StageId};
use crate::ports::{CrmObject, Decision, StoreError};

pub(super) async fn log_decision(
    services: &Services,
    connection: &Connection,
    deal: u64,
    decision: Decision,
) -> Result<(), SyncFailure> {
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

/// Reads `deals` again (within the budget; on any failure they stay as read).
/// Reads `deals` again in place; on an error they stay as they were read.
pub(super) async fn refresh(
    hubspot: &BudgetedHubSpot<'_>,
    deals: &mut [CrmObject],
) -> Result<(), crate::ports::HubSpotError> {
    let ids: Vec<u64> = deals.iter().map(|d| d.id).collect();
    match hubspot
        .batch_read(HubSpotObjectType::Deal, &ids, &DEAL_PROPERTIES)
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
            Ok(())
        }
        Err(error) => {
            debug!(%error, "deals not read again");
            Err(error)
        }
    }
}

/// Why and when a deal is decided: what triggered it, when its values were
/// read from HubSpot, and whether this is the message's last attempt.
pub(super) struct Occasion {
    pub trigger: Vec<String>,
    pub read_at: time::OffsetDateTime,
    pub last_attempt: bool,
}

pub(super) async fn decide(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    deal: &CrmObject,
    companies: Vec<DraftCompany>,
    contacts: Vec<DraftContact>,
    occasion: Occasion,
) -> Result<(), SyncFailure> {
    let Occasion {
        trigger,
        read_at,
        last_attempt,
    } = occasion;
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
        let mut deal_now = deal.clone();
        let mut read_at = read_at;
        let result = loop {
            attempts += 1;
            // The link was saved after this deal was read (board → HubSpot wrote
            // it meanwhile): the read may predate that write, and its values
            // would pass for HubSpot changes. Read the deal again first.
            if link.last_synced_at.is_some_and(|saved| saved >= read_at) {
                // Without a token the deal cannot be read again either: it waits.
                let token = crate::app::tokens::access_token(services, account)
                    .await
                    .map_err(SyncFailure::from)?;
                let reading = services.clock.now();
                let mut fresh = [deal_now.clone()];
                let token = secrecy::ExposeSecret::expose_secret(&token);
                // Not read again, the earlier values would pass for changes
                // made after the link was saved: this waits instead.
                refresh(
                    &BudgetedHubSpot::new(services, connection, token),
                    &mut fresh,
                )
                .await
                .map_err(SyncFailure::from)?;
                read_at = reading;
                let [fresh] = fresh;
                deal_now = fresh;
            }
            match super::linked_deals::apply(
                services,
                connection,
                config,
                link,
                &deal_now,
                primary,
                last_attempt,
            )
            .await
            {
                Ok(result) => break result,
                Err(SyncFailure::Conflict) if attempts < 3 => {
                    match services
                        .links
                        .link_by_hubspot(account, portal, deal_ref)
                        .await?
                    {
                        Some(again) => link = again,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
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
    let mut report: GateReport = evaluate_gates(config, &facts, |s| s.to_string());
    if !report.passed() {
        // Explanations name stages by their labels, as people see them in HubSpot.
        let labels = stage_labels(services, connection).await;
        report = evaluate_gates(config, &facts, |s| {
            labels.get(s).cloned().unwrap_or_else(|| s.to_string())
        });
    }
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

pub(super) async fn save(services: &Services, draft: &Draft) -> Result<(), SyncFailure> {
    match services.drafts.save_draft(draft).await {
        Ok(_) => Ok(()),
        // Another worker changed it meanwhile: retry the message; we re-read then.
        Err(StoreError::Conflict) => Err(SyncFailure::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// A stage's label in the deal's pipeline (its id when HubSpot does not have
/// it): what the gates' explanations name.
pub fn stage_label<'a>(
    pipelines: &'a [crate::ports::HsPipeline],
    facts: &'a DealFacts,
) -> impl Fn(&StageId) -> String + Copy + 'a {
    move |stage: &StageId| {
        facts
            .pipeline
            .as_ref()
            .and_then(|p| pipelines.iter().find(|x| x.id == *p))
            .and_then(|p| p.stages.iter().find(|s| s.id == *stage))
            .map(|s| s.label.clone())
            .unwrap_or_else(|| stage.to_string())
    }
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

/// HubSpot's deal pipelines of the connection's portal, kept a minute per
/// portal; `None` when HubSpot cannot be asked now.
pub async fn pipelines_of(
    services: &Services,
    connection: &Connection,
) -> Option<std::sync::Arc<Vec<crate::ports::HsPipeline>>> {
    let token = crate::app::tokens::access_token(services, &connection.account_id)
        .await
        .ok()?;
    let key = connection.portal_id.to_string();
    services
        .directory
        .pipelines
        .get_or_load(&key, || {
            services
                .crm
                .pipelines(secrecy::ExposeSecret::expose_secret(&token))
        })
        .await
        .inspect_err(|error| warn!(%error, "HubSpot's pipelines unavailable"))
        .ok()
}

/// The portal's stage labels by stage id; empty when HubSpot cannot be asked
/// (ids are shown then).
pub async fn stage_labels(
    services: &Services,
    connection: &Connection,
) -> std::collections::HashMap<StageId, String> {
    pipelines_of(services, connection)
        .await
        .map(|pipelines| {
            pipelines
                .iter()
                .flat_map(|p| p.stages.iter())
                .map(|s| (s.id.clone(), s.label.clone()))
                .collect()
        })
        .unwrap_or_default()
}
