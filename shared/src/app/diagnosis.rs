//! "Why is this deal (not) in board?" (SPEC §5, §8): every gate with the value
//! that decided it, the link or draft, and the decisions of the last 30 days.

use serde::Serialize;
use serde_json::{Value, json};

use super::Services;
use super::hubspot_to_board::{DEAL_PROPERTIES, facts_of};
use super::settings::SettingsError;
use super::tokens::access_token;
use crate::domain::gates::{GateReport, evaluate_gates};
use crate::domain::{AccountId, DealId, HubSpotObjectType, HubSpotRef};
use crate::ports::Decision;

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnosis {
    pub deal_id: String,
    /// The deal as HubSpot has it now, or null if HubSpot does not have it.
    pub deal: Option<Value>,
    pub gates: Option<GateReport>,
    /// Whether an unlinked deal would become (or stay) a draft now.
    pub qualifies: Option<bool>,
    pub link: Option<Value>,
    pub draft: Option<Value>,
    pub decisions: Vec<Decision>,
    pub config_version: u64,
}

pub async fn deal(
    services: &Services,
    account: &AccountId,
    raw_id: &str,
) -> Result<Diagnosis, SettingsError> {
    let id = raw_id
        .parse::<DealId>()
        .map_err(|_| SettingsError::Invalid {
            field: "deal_id".into(),
            message: "not a HubSpot deal id".into(),
        })?;
    let connection = services
        .connections
        .get_connection(account)
        .await?
        .ok_or(SettingsError::NotConnected)?;
    let token = access_token(services, account).await?;
    use secrecy::ExposeSecret;
    let token = token.expose_secret();
    let (found, _) = services
        .batch
        .batch_read(
            token,
            HubSpotObjectType::Deal,
            &[id.get()],
            &DEAL_PROPERTIES,
        )
        .await?
        .value;
    let pipelines = services.crm.pipelines(token).await?;
    let config = services.configs.config(account).await?;
    let portal = connection.portal_id;
    let link = services
        .links
        .link_by_hubspot(
            account,
            portal,
            HubSpotRef {
                object_type: HubSpotObjectType::Deal,
                id: id.get(),
            },
        )
        .await?;
    let draft = services.drafts.draft(account, portal, id.get()).await?;
    let decisions = services
        .decisions
        .decisions(account, portal, id.get(), 50)
        .await?;
    let (deal, gates) = match found.first() {
        None => (None, None),
        Some(object) => {
            let mut facts = facts_of(object);
            facts.claimed_by = services
                .links
                .deal_claimed_by(portal, id.get())
                .await?
                .filter(|a| a != account);
            let pipeline = facts
                .pipeline
                .as_ref()
                .and_then(|p| pipelines.iter().find(|x| x.id == *p));
            let stage_label = |stage: &crate::domain::StageId| {
                pipeline
                    .and_then(|p| p.stages.iter().find(|s| s.id == *stage))
                    .map(|s| s.label.clone())
                    .unwrap_or_else(|| stage.to_string())
            };
            let report = evaluate_gates(&config, &facts, stage_label);
            let deal = json!({
                "id": id.to_string(),
                "properties": object.properties,
                "pipeline": facts.pipeline.as_ref().map(|p| json!({"id": p, "label": pipeline.map(|x| x.label.clone())})),
                "stage": facts.stage.as_ref().map(|s| json!({"id": s, "label": stage_label(s)})),
            });
            (Some(deal), Some(report))
        }
    };
    Ok(Diagnosis {
        deal_id: id.to_string(),
        qualifies: gates.as_ref().map(|g| g.passed() && link.is_none()),
        deal,
        gates,
        link: link.map(|l| json!({"board": l.board, "state": l.state, "last_synced_at": l.last_synced_at.map(|t| t.to_string())})),
        draft: draft.map(|d| serde_json::to_value(super::drafts::view(d)).expect("serializes")),
        decisions,
        config_version: config.version,
    })
}
