//! Existing deals on first connection (issue 20, SPEC §4: a backfill is
//! explicit): the administrator, once the mapping is set, first previews how
//! many of HubSpot's deals (optionally only those modified since a date) pass
//! the entry gates of SPEC §5, then starts the run: each page of deals goes
//! through the same path as a webhook's deals (`sync_deals`: drafts for the
//! qualifying unlinked ones, within the budgets).
//!
//! Like the matching job it runs in the worker in slices (`Job::Backfill`),
//! its state and HubSpot's `after` saved after every page of 100, so a crash
//! or a deploy resumes where it was.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::info;

use super::Services;
use super::budgeted_hubspot::BudgetedHubSpot;
use super::failure::SyncFailure;
use super::hubspot_to_board::{DEAL_PROPERTIES, facts_of, stage_label, sync_deals};
use super::jobs::{Job, QueueMessage};
use super::matching::MatchingError;
use super::tokens::access_token;
use crate::domain::connection::ConnectionState;
use crate::domain::gates::evaluate_gates;
use crate::domain::{AccountId, HubSpotObjectType, HubSpotRef};
use crate::ports::StoreError;

const SLICE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Counts only: nothing is written.
    Preview,
    /// Qualifying deals become drafts.
    Run,
}

/// Deals seen, by what the gates say of them now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DealCounts {
    /// Deals read from HubSpot.
    pub read: usize,
    /// Modified before `modified_since`: left alone.
    pub older: usize,
    /// Already linked to a board project of this account.
    pub linked: usize,
    /// Passing every entry gate, not linked: drafted by a run (or already a draft).
    pub qualifying: usize,
    /// Of which already a draft of this account.
    pub already_drafts: usize,
    /// Failing a gate (unmapped stage, filter rules, excluded, another account's).
    pub not_qualifying: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackfillState {
    pub run: String,
    pub mode: Mode,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub reason: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub modified_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub counts: DealCounts,
    /// HubSpot's `after` for the next page.
    #[serde(default)]
    pub after: Option<String>,
}

fn key(account: &AccountId) -> String {
    format!("deal-backfill#{account}")
}

pub async fn state(
    services: &Services,
    account: &AccountId,
) -> Result<Option<BackfillState>, StoreError> {
    let raw = services.watermarks.watermark(&key(account)).await?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

async fn save(
    services: &Services,
    state: &BackfillState,
    account: &AccountId,
) -> Result<(), StoreError> {
    services
        .watermarks
        .set_watermark(
            &key(account),
            &serde_json::to_string(state).expect("state serializes"),
        )
        .await
}

/// `POST /backfill`: starts a preview or a run (one at a time per account).
pub async fn start(
    services: &Services,
    account: &AccountId,
    mode: Mode,
    modified_since: Option<OffsetDateTime>,
) -> Result<BackfillState, MatchingError> {
    match services.connections.get_connection(account).await? {
        Some(c) if c.state == ConnectionState::Active => {}
        _ => return Err(MatchingError::NotConnected),
    }
    if let Some(current) = state(services, account).await?
        && current.state == "running"
    {
        return Err(MatchingError::Running);
    }
    let config = services.configs.config(account).await?;
    if config.status_mapping.is_empty() {
        return Err(MatchingError::Invalid(
            "受注ステータスのマッピングを先に設定してください。".into(),
        ));
    }
    let state = BackfillState {
        run: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        mode,
        state: "running".into(),
        reason: None,
        modified_since,
        started_at: services.clock.now(),
        finished_at: None,
        counts: DealCounts::default(),
        after: None,
    };
    save(services, &state, account).await?;
    queue(services, account, &state.run).await?;
    info!(account = %account, run = %state.run, ?mode, "deal backfill started");
    Ok(state)
}

async fn queue(services: &Services, account: &AccountId, run: &str) -> Result<(), StoreError> {
    let body = QueueMessage::to_body(&Job::Backfill {
        account_id: account.clone(),
        run: run.to_owned(),
    });
    services.queue.send_batch(&[body]).await
}

/// The worker's side: pages of deals until the slice is spent.
pub async fn run_slice(
    services: &Services,
    account: &AccountId,
    run: &str,
) -> Result<(), SyncFailure> {
    let Some(mut state) = state(services, account).await? else {
        return Ok(());
    };
    if state.run != run || state.state != "running" {
        return Ok(());
    }
    let connection = match services.connections.get_connection(account).await? {
        Some(c) if c.state == ConnectionState::Active => c,
        _ => {
            state.state = "failed".into();
            state.reason = Some("HubSpotとの連携が有効ではありません".into());
            state.finished_at = Some(services.clock.now());
            save(services, &state, account).await?;
            return Ok(());
        }
    };
    let token = access_token(services, account)
        .await
        .map_err(|e| SyncFailure::retry(crate::domain::Code::HubspotUnavailable, e.to_string()))?;
    let hubspot = BudgetedHubSpot::new(
        services,
        &connection,
        secrecy::ExposeSecret::expose_secret(&token),
    );
    let config = services.configs.config(account).await?;
    let pipelines = services
        .crm
        .pipelines(secrecy::ExposeSecret::expose_secret(&token))
        .await
        .map_err(SyncFailure::from)?;
    let mut properties: Vec<&str> = DEAL_PROPERTIES.to_vec();
    properties.push("hs_lastmodifieddate");
    let began = std::time::Instant::now();
    loop {
        let (deals, next) = hubspot
            .list_page(HubSpotObjectType::Deal, &properties, state.after.as_deref())
            .await
            .map_err(SyncFailure::from)?;
        let mut to_sync: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for deal in &deals {
            state.counts.read += 1;
            let modified = deal.get("hs_lastmodifieddate").and_then(|m| {
                OffsetDateTime::parse(m, &time::format_description::well_known::Rfc3339).ok()
            });
            if let (Some(since), Some(modified)) = (state.modified_since, modified)
                && modified < since
            {
                state.counts.older += 1;
                continue;
            }
            let reference = HubSpotRef {
                object_type: HubSpotObjectType::Deal,
                id: deal.id,
            };
            if services
                .links
                .link_by_hubspot(account, connection.portal_id, reference)
                .await?
                .is_some()
            {
                state.counts.linked += 1;
                continue;
            }
            let mut facts = facts_of(deal);
            facts.claimed_by = services
                .links
                .deal_claimed_by(connection.portal_id, deal.id)
                .await?
                .filter(|a| a != account);
            if !evaluate_gates(&config, &facts, stage_label(&pipelines, &facts)).passed() {
                state.counts.not_qualifying += 1;
                continue;
            }
            state.counts.qualifying += 1;
            if services
                .drafts
                .draft(account, connection.portal_id, deal.id)
                .await?
                .is_some()
            {
                state.counts.already_drafts += 1;
            }
            to_sync.insert(deal.id, BTreeSet::from(["backfill".to_owned()]));
        }
        if state.mode == Mode::Run && !to_sync.is_empty() {
            // As a webhook's deals: drafts for the qualifying, in the budgets.
            sync_deals(services, &connection, &to_sync, false).await?;
        }
        state.after = next;
        if state.after.is_none() {
            state.state = "done".into();
            state.finished_at = Some(services.clock.now());
        }
        save(services, &state, account).await?;
        if state.state == "done" {
            info!(account = %account, run = %state.run, read = state.counts.read,
                  qualifying = state.counts.qualifying, "deal backfill done");
            return Ok(());
        }
        if began.elapsed() >= SLICE {
            queue(services, account, run).await?;
            return Ok(());
        }
    }
}
