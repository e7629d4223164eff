//! Preview before saving (issue 19): what a stage-mapping or filter-rule
//! change would do, computed on a copy of the configuration and written
//! nowhere (the configuration version stays).
//!
//! Mapping changes are not retroactive (SPEC §4): nothing moves when the
//! settings are saved. What changes is how each deal is treated on its next
//! HubSpot change: an open or withdrawn draft's deal passes the entry gates
//! (SPEC §5) where it did not, or no longer does, or would be drafted with
//! another order status; a linked deal's project would get another order
//! status the next time the deal's stage changes to the one it is in.

use std::collections::HashMap;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{SettingsError, invalid};
use crate::app::Services;
use crate::app::budget;
use crate::app::hubspot_to_board::{DEAL_PROPERTIES, facts_of, stage_label};
use crate::app::tokens::access_token;
use crate::domain::OrderStatus;
use crate::domain::connection::ConnectionState;
use crate::domain::draft::DraftState;
use crate::domain::gates::evaluate_gates;
use crate::domain::{AccountId, HubSpotObjectType};
use crate::ports::{Cursor, HUBSPOT_BATCH_LIMIT};

/// Deals one preview looks at, at most (drafts first, then links): 10 batch
/// reads, half of people's HubSpot share for 10 s.
pub const PREVIEW_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// One pipeline's change, as `PUT /pipelines/{pipeline_id}/status-mapping`
    /// takes it, with the pipeline's id: `{"pipeline_id", "stages": {…}}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub status_mapping: Option<Value>,
    /// The rules as `PUT /filter-rules` takes them: `{"rules": […]}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub filter_rules: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Would become a draft on its next change (its draft is withdrawn now).
    NewlyQualifying,
    /// Its draft would be withdrawn on its next change.
    NoLongerQualifying,
    /// Another 受注ステータス (or none: a linked project keeps its status).
    StatusChanged,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewItem {
    pub deal_id: String,
    pub name: String,
    /// `draft` (open or withdrawn) or `linked`.
    pub kind: &'static str,
    pub draft_state: Option<DraftState>,
    pub project_id: Option<u64>,
    pub effect: Effect,
    pub order_status_before: Option<OrderStatus>,
    pub order_status_after: Option<OrderStatus>,
    /// Why, in words (the gate that decides after the change, or before it).
    pub reason: String,
    pub reason_en: String,
}

#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewCounts {
    pub newly_qualifying: usize,
    pub no_longer_qualifying: usize,
    pub status_changed: usize,
    pub unchanged: usize,
    /// Deals HubSpot no longer has (their next change never comes).
    pub not_in_hubspot: usize,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    /// The configuration version now: unchanged by the preview.
    pub config_version: u64,
    /// Deals looked at: open and withdrawn drafts, then linked deals.
    pub checked: usize,
    /// False when the account has more than `PREVIEW_LIMIT` such deals.
    pub complete: bool,
    pub counts: PreviewCounts,
    pub items: Vec<PreviewItem>,
}

/// One deal the preview looks at.
struct Candidate {
    deal: u64,
    draft_state: Option<DraftState>,
    project_id: Option<u64>,
    name: String,
}

pub async fn preview(
    services: &Services,
    account: &AccountId,
    body: &Value,
) -> Result<Preview, SettingsError> {
    let body: PreviewBody =
        serde_json::from_value(body.clone()).map_err(|e| invalid("body", e.to_string()))?;
    if body.status_mapping.is_none() && body.filter_rules.is_none() {
        return Err(invalid(
            "body",
            "status_mapping and/or filter_rules is required",
        ));
    }
    let connection = services
        .connections
        .get_connection(account)
        .await?
        .ok_or(SettingsError::NotConnected)?;
    match connection.state {
        ConnectionState::Active => {}
        ConnectionState::Suspended => return Err(SettingsError::Suspended),
        _ => return Err(SettingsError::NotConnected),
    }
    let current = services.configs.config(account).await?;
    let mut proposed = current.clone();
    if let Some(mapping) = &body.status_mapping {
        let pipeline = mapping
            .get("pipeline_id")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("status_mapping.pipeline_id", "a pipeline id is required"))?;
        let change = super::pipelines::mapping_change(services, account, pipeline, mapping)
            .await
            .map_err(|e| prefixed(e, "status_mapping"))?;
        change(&mut proposed);
    }
    if let Some(rules) = &body.filter_rules {
        let rules = match rules {
            Value::Array(_) => serde_json::json!({ "rules": rules }),
            other => other.clone(),
        };
        proposed.filter_rules = super::filters::checked_rules(services, account, &rules)
            .await
            .map_err(|e| prefixed(e, "filter_rules"))?;
    }

    let (candidates, complete) = candidates(services, account, connection.portal_id).await?;
    let token = access_token(services, account).await?;
    let token = token.expose_secret();
    let ids: Vec<u64> = candidates.iter().map(|c| c.deal).collect();
    // The reads, the pipelines, and the validation's (pipelines; teams, owners
    // and the filter key's property).
    let validation =
        u32::from(body.status_mapping.is_some()) + 3 * u32::from(body.filter_rules.is_some());
    let calls =
        u32::try_from(ids.len().div_ceil(HUBSPOT_BATCH_LIMIT) + 1).unwrap_or(u32::MAX) + validation;
    budget::people(services, connection.portal_id, calls).await;
    let pipelines = services.crm.pipelines(token).await?;
    let mut deals = HashMap::new();
    for chunk in ids.chunks(HUBSPOT_BATCH_LIMIT) {
        let (found, _) = services
            .batch
            .batch_read(token, HubSpotObjectType::Deal, chunk, &DEAL_PROPERTIES)
            .await?
            .value;
        for object in found {
            deals.insert(object.id, object);
        }
    }

    let mut counts = PreviewCounts::default();
    let mut items = Vec::new();
    for candidate in &candidates {
        let Some(object) = deals.get(&candidate.deal) else {
            counts.not_in_hubspot += 1;
            continue;
        };
        let mut facts = facts_of(object);
        // Another account of the portal linking it keeps it out (gate 4).
        if candidate.project_id.is_none() {
            facts.claimed_by = services
                .links
                .deal_claimed_by(connection.portal_id, candidate.deal)
                .await?
                .filter(|a| a != account);
        }
        let label = stage_label(&pipelines, &facts);
        let before = evaluate_gates(&current, &facts, label);
        let after = evaluate_gates(&proposed, &facts, label);
        let name = object
            .get("dealname")
            .map(str::to_owned)
            .unwrap_or_else(|| candidate.name.clone());
        let (effect, reason) = if candidate.project_id.is_some() {
            // Linked: only the mapping counts, on the deal's next stage change.
            (before.order_status != after.order_status)
                .then_some((Effect::StatusChanged, after.gates.first()))
        } else {
            match (before.passed(), after.passed()) {
                (false, true) => Some((Effect::NewlyQualifying, before.first_failure())),
                (true, false) => Some((Effect::NoLongerQualifying, after.first_failure())),
                (true, true) if before.order_status != after.order_status => {
                    Some((Effect::StatusChanged, after.gates.first()))
                }
                _ => None,
            }
        }
        .map_or((None, None), |(e, r)| (Some(e), r));
        let Some(effect) = effect else {
            counts.unchanged += 1;
            continue;
        };
        match effect {
            Effect::NewlyQualifying => counts.newly_qualifying += 1,
            Effect::NoLongerQualifying => counts.no_longer_qualifying += 1,
            Effect::StatusChanged => counts.status_changed += 1,
        }
        items.push(PreviewItem {
            deal_id: candidate.deal.to_string(),
            name,
            kind: if candidate.project_id.is_some() {
                "linked"
            } else {
                "draft"
            },
            draft_state: candidate.draft_state,
            project_id: candidate.project_id,
            effect,
            order_status_before: before.order_status,
            order_status_after: after.order_status,
            reason: reason.map(|g| g.detail.clone()).unwrap_or_default(),
            reason_en: reason.map(|g| g.detail_en.clone()).unwrap_or_default(),
        });
    }
    Ok(Preview {
        config_version: current.version,
        checked: candidates.len(),
        complete,
        counts,
        items,
    })
}

/// A field error of a part of the body, named from the body's root.
fn prefixed(error: SettingsError, part: &str) -> SettingsError {
    match error {
        SettingsError::Invalid { field, message } => SettingsError::Invalid {
            field: format!("{part}.{field}"),
            message,
        },
        other => other,
    }
}

/// Open and withdrawn drafts, then the account's linked deals, up to
/// `PREVIEW_LIMIT`; whether that was all of them.
async fn candidates(
    services: &Services,
    account: &AccountId,
    portal: crate::domain::PortalId,
) -> Result<(Vec<Candidate>, bool), SettingsError> {
    let mut out = Vec::new();
    for state in [DraftState::Open, DraftState::Withdrawn] {
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = services
                .drafts
                .drafts(account, state, 200, cursor.as_ref())
                .await?;
            for draft in page.items {
                out.push(Candidate {
                    deal: draft.deal_id.get(),
                    draft_state: Some(draft.state),
                    project_id: None,
                    name: draft.content.name.clone(),
                });
                if out.len() >= PREVIEW_LIMIT {
                    return Ok((out, false));
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = services
            .links
            .links_of_account(account, portal, 500, cursor.as_ref())
            .await?;
        for link in page.items {
            if link.hubspot.object_type != HubSpotObjectType::Deal
                || link.state != crate::domain::link::LinkState::Enabled
            {
                continue;
            }
            out.push(Candidate {
                deal: link.hubspot.id,
                draft_state: None,
                project_id: Some(link.board.id),
                name: String::new(),
            });
            if out.len() >= PREVIEW_LIMIT {
                return Ok((out, false));
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok((out, true)),
        }
    }
}
