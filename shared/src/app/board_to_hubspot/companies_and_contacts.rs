//! A board customer or customer contact's change event onto its HubSpot company or contact:
//! the fields that differ from the baselines, planned here and sent by the batch writer (read
//! against HubSpot's current values there, later wins).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::app::Services;
use crate::app::history::{Attempt, record};
use crate::domain::connection::ConnectionState;
use crate::domain::{
    AccountId, BoardObjectKind, BoardRef, Code, HubSpotObjectType, LinkState, customer_mapping,
};

use super::batch_writer::{PendingWrite, write_batch};
use super::outcome::*;
use super::projects::{Plan, text};
use crate::app::failure::SyncFailure;

/// `customer.*` / `contact.*`: the linked company or contact follows, field by field.
pub async fn customer_or_contact_event(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    deleted: bool,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, SyncFailure> {
    match plan_customer_or_contact(services, account, kind, deleted, object).await? {
        Plan::Done(applied) => Ok(applied),
        Plan::Write(pending) => {
            let mut results = write_batch(services, vec![(*pending, last_attempt)]).await;
            results.pop().expect("one result per write")
        }
    }
}

/// Everything of a customer or contact event up to the HubSpot write: the
/// fields that moved away from their baselines (SPEC §6), in the baseline keys
/// HubSpot → board uses, so each side's echo is recognised by the other.
pub async fn plan_customer_or_contact(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    deleted: bool,
    object: &Value,
) -> Result<Plan, SyncFailure> {
    let Some(id) = object["id"].as_u64() else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let Some(mut link) = services
        .links
        .link_by_board(account, connection.portal_id, BoardRef { kind, id })
        .await?
        .filter(|link| link.state == LinkState::Enabled)
    else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let config = services.configs.config(account).await?;
    if deleted {
        // SPEC §9: the link ends, recorded once (a disabled link records nothing more).
        let code = match kind {
            BoardObjectKind::CustomerContact => Code::CustomerContactNotFound,
            _ => Code::CustomerNotFound,
        };
        link.state = LinkState::Deleted;
        save(services, &link).await?;
        record(
            services,
            Attempt {
                code: Some(code),
                ..attempt(&link, text(object, "name"), config.version)
            },
        )
        .await;
        return Ok(Plan::Done(Applied::Recorded(code)));
    }
    let name = text(object, "name").or_else(|| {
        let full = format!(
            "{} {}",
            text(object, "last_name").unwrap_or_default(),
            text(object, "first_name").unwrap_or_default()
        );
        Some(full.trim().to_owned()).filter(|n| !n.is_empty())
    });
    if matches!(connection.state, ConnectionState::Suspended) {
        record(
            services,
            Attempt {
                code: Some(Code::IntegrationSuspended),
                ..attempt(&link, name, config.version)
            },
        )
        .await;
        return Ok(Plan::Done(Applied::Recorded(Code::IntegrationSuspended)));
    }
    let (wanted, warnings) =
        customer_mapping::from_board((link.hubspot.object_type, link.board.kind), object);
    let mut properties = BTreeMap::new();
    let mut fields = Vec::new();
    let mut baselines = Vec::new();
    let mut two_way = Vec::new();
    let mut bookkeeping = false;
    for (key, board, props) in wanted {
        if link.is_board_echo(key, board.as_ref()) {
            // Ours (possibly still being saved by the other direction).
            continue;
        }
        if link.baseline.get(key).is_some_and(|b| b.board == board) {
            continue;
        }
        if props.is_empty() {
            // Empty in board: HubSpot keeps its value; the baseline follows board.
            link.baseline.entry(key.to_owned()).or_default().board = board;
            bookkeeping = true;
            continue;
        }
        for (property, value) in &props {
            properties.insert((*property).to_owned(), value.clone());
        }
        fields.push(key);
        baselines.push((key, board.clone(), board));
        two_way.push((
            key,
            customer_mapping::label_ja(key),
            props.iter().map(|(property, _)| *property).collect(),
        ));
    }
    if properties.is_empty() {
        if bookkeeping {
            save(services, &link).await?;
        }
        return Ok(Plan::Done(Applied::Nothing));
    }
    let action = match link.hubspot.object_type {
        HubSpotObjectType::Company => "company_updated",
        _ => "contact_updated",
    };
    Ok(Plan::Write(Box::new(PendingWrite {
        connection,
        link,
        properties,
        fields,
        warnings,
        baselines,
        name,
        config_version: config.version,
        action,
        two_way,
        occurred_at: None,
        conflicts: Vec::new(),
    })))
}
