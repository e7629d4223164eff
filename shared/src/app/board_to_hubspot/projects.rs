//! A project's change event planned against its deal: the values board holds (name, status as
//! stage, ordered date, amount by the account's basis, person in charge as owner) that differ from the
//! baselines, later-wins against what HubSpot changed since.

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::info;

use crate::app::Services;
use crate::app::history::{Attempt, record};
use crate::domain::connection::ConnectionState;
use crate::domain::mapping::{CLOSE_DATE, NAME, STAGE};
use crate::domain::normalize::nfkc;
use crate::domain::status_mapping::stage_for_status;
use crate::domain::{
    AccountId, BoardObjectKind, BoardRef, Code, LinkState, OrderStatus, PipelineId, StageId,
};

use crate::domain::mapping::{AMOUNT, ORDER_STATUS, OWNER};

use super::batch_writer::*;
use super::outcome::*;
use crate::app::failure::SyncFailure;

/// The project snapshot fields this direction reads (board API v1 names).
pub(super) struct Project {
    id: u64,
    name: Option<String>,
    status: Option<OrderStatus>,
    order_date: Option<String>,
    total: Option<String>,
    tax: Option<String>,
    user_id: Option<u64>,
}

pub(super) fn text(object: &Value, name: &str) -> Option<String> {
    match &object[name] {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Project {
    fn from_snapshot(object: &Value) -> Option<Self> {
        Some(Self {
            id: object["id"].as_u64()?,
            name: text(object, "name").map(|n| nfkc(&n)),
            status: object["order_status"]
                .as_i64()
                .and_then(|c| OrderStatus::from_code(c).ok()),
            order_date: text(object, "order_date"),
            total: text(object, "total"),
            tax: text(object, "tax"),
            user_id: object["user_id"].as_u64(),
        })
    }
}

/// A decimal amount as HubSpot stores it: no trailing zeros; `None` for 0 or empty.
pub(super) fn amount(
    total: Option<&str>,
    tax: Option<&str>,
    including_tax: bool,
) -> Option<String> {
    let parse = |v: Option<&str>| v.and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let mut value = parse(total);
    if including_tax {
        value += parse(tax);
    }
    if value == 0.0 || !value.is_finite() {
        return None;
    }
    let formatted = format!("{value:.2}");
    Some(
        formatted
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned(),
    )
}

/// What a project event comes to before anything is written to HubSpot.
pub enum Plan {
    Done(Applied),
    Write(Box<PendingWrite>),
}

/// Applies one project event. `last_attempt`: transient failures are recorded
/// as `hubspot_unavailable` instead of retried.
pub async fn project_event(
    services: &Services,
    account: &AccountId,
    deleted: bool,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, SyncFailure> {
    match plan_project(services, account, deleted, object).await? {
        Plan::Done(applied) => Ok(applied),
        Plan::Write(pending) => {
            let mut results = write_batch(services, vec![(*pending, last_attempt)]).await;
            results.pop().expect("one result per write")
        }
    }
}

/// Everything of a project event up to the deal write.
pub async fn plan_project(
    services: &Services,
    account: &AccountId,
    deleted: bool,
    object: &Value,
) -> Result<Plan, SyncFailure> {
    let Some(project) = Project::from_snapshot(object) else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let board = BoardRef {
        kind: BoardObjectKind::Project,
        id: project.id,
    };
    let Some(mut link) = services
        .links
        .link_by_board(account, connection.portal_id, board)
        .await?
    else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    if link.state != LinkState::Enabled {
        // Disabled links record nothing more (the first error was recorded).
        return Ok(Plan::Done(Applied::Nothing));
    }
    let config = services.configs.config(account).await?;
    if deleted {
        link.state = LinkState::Deleted;
        save(services, &link).await?;
        record(
            services,
            Attempt {
                code: Some(Code::ProjectNotFound),
                ..attempt(&link, project.name.clone(), config.version)
            },
        )
        .await;
        info!(
            project = project.id,
            "project deleted in board: link marked deleted"
        );
        return Ok(Plan::Done(Applied::Recorded(Code::ProjectNotFound)));
    }
    if matches!(connection.state, ConnectionState::Suspended) {
        record(
            services,
            Attempt {
                code: Some(Code::IntegrationSuspended),
                ..attempt(&link, project.name.clone(), config.version)
            },
        )
        .await;
        return Ok(Plan::Done(Applied::Recorded(Code::IntegrationSuspended)));
    }

    let mut properties: BTreeMap<String, String> = BTreeMap::new();
    let mut fields: Vec<&'static str> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    // (baseline key, board value, HubSpot value) to store once HubSpot accepted.
    let mut baselines: Vec<(&'static str, Option<String>, Option<String>)> = Vec::new();
    let board_base = |key: &str| link.baseline.get(key).and_then(|b| b.board.clone());

    if let Some(name) = &project.name
        && !link.is_board_echo(NAME, Some(name))
    {
        properties.insert("dealname".into(), name.clone());
        fields.push("dealname");
        baselines.push((NAME, Some(name.clone()), Some(name.clone())));
    }

    let status_code = project.status.map(|s| s.code().to_string());
    if status_code.is_some() && !link.is_board_echo(ORDER_STATUS, status_code.as_ref()) {
        let status = project.status.expect("checked");
        let current = link
            .baseline
            .get(STAGE)
            .and_then(|b| b.hubspot.clone())
            .and_then(|key| {
                let (p, s) = key.split_once(':')?;
                Some((PipelineId::new(p).ok()?, StageId::new(s).ok()?))
            });
        let mut new_stage = None;
        if let Some((pipeline, stage)) = &current
            && config.status_of(pipeline, stage) != Some(status)
        {
            let mapping = config
                .status_mapping
                .get(pipeline)
                .cloned()
                .unwrap_or_default();
            let candidates: Vec<StageId> = mapping
                .iter()
                .filter(|(_, s)| **s == status)
                .map(|(id, _)| id.clone())
                .collect();
            // The display order is read from HubSpot only when several stages map to the status.
            let order = if candidates.len() > 1 {
                stage_order(services, account, pipeline).await?
            } else {
                candidates
            };
            match stage_for_status(&order, &mapping, Some(stage), status) {
                Some(s) if s != stage => new_stage = Some((pipeline.clone(), s.clone())),
                Some(_) => {}
                None => warnings.push(format!(
                    "受注ステータス「{}」に対応するステージがないため、ステージは変更していません",
                    status.label_ja()
                )),
            }
        }
        if let Some((pipeline, stage)) = new_stage {
            properties.insert("dealstage".into(), stage.to_string());
            fields.push("dealstage");
            let key = format!("{pipeline}:{stage}");
            baselines.push((STAGE, Some(key.clone()), Some(key)));
        }
        baselines.push((ORDER_STATUS, status_code.clone(), None));
    }

    if project
        .status
        .is_some_and(OrderStatus::carries_ordered_date)
        && let Some(date) = &project.order_date
        && !link.is_board_echo(CLOSE_DATE, Some(date))
        && let Some(ms) = crate::domain::dates::midnight_ms(date, connection.zone())
    {
        properties.insert("closedate".into(), ms);
        fields.push("closedate");
        baselines.push((CLOSE_DATE, Some(date.clone()), Some(date.clone())));
    }

    let including = config.amount_basis == crate::domain::config::AmountBasis::IncludingTax;
    if let Some(value) = amount(project.total.as_deref(), project.tax.as_deref(), including)
        && link.baseline.get(AMOUNT).and_then(|b| b.hubspot.clone()) != Some(value.clone())
    {
        properties.insert("amount".into(), value.clone());
        fields.push("amount");
        baselines.push((AMOUNT, Some(value.clone()), Some(value)));
    }

    if let Some(user) = project.user_id.map(|u| u.to_string())
        && board_base(OWNER).as_ref() != Some(&user)
    {
        match owner_of(services, account, &config, project.user_id.expect("some")).await? {
            Some(owner) => {
                properties.insert("hubspot_owner_id".into(), owner.clone());
                fields.push("hubspot_owner_id");
                baselines.push((OWNER, Some(user), Some(owner)));
            }
            None => {
                warnings.push(
                    "担当者に対応するHubSpotの所有者がいないため、所有者は変更していません".into(),
                );
                baselines.push((OWNER, Some(user), None));
            }
        }
    }

    if properties.is_empty() {
        // Echo or nothing HubSpot needs: bookkeeping only, nothing recorded.
        if !baselines.is_empty() {
            apply_baselines(&mut link, baselines);
            save(services, &link).await?;
        }
        return Ok(Plan::Done(Applied::Nothing));
    }

    Ok(Plan::Write(Box::new(PendingWrite {
        connection,
        link,
        properties,
        fields,
        warnings,
        baselines,
        name: project.name,
        config_version: config.version,
        action: "deal_updated",
        two_way: deal_two_way(),
        occurred_at: None,
        conflicts: Vec::new(),
    })))
}

/// The pipeline's stages in display order (one HubSpot read, only when a status changed).
pub(super) async fn stage_order(
    services: &Services,
    account: &AccountId,
    pipeline: &PipelineId,
) -> Result<Vec<StageId>, SyncFailure> {
    let token = bearer(services, account).await?;
    let pipelines = services
        .crm
        .pipelines(&token)
        .await
        .map_err(SyncFailure::from)?;
    Ok(pipelines
        .into_iter()
        .find(|p| &p.id == pipeline)
        .map(|p| {
            let mut stages = p.stages;
            stages.sort_by_key(|s| s.display_order);
            stages.into_iter().map(|s| s.id).collect()
        })
        .unwrap_or_default())
}

/// The HubSpot owner of a board user: an administrator's override, else the same e-mail.
pub(super) async fn owner_of(
    services: &Services,
    account: &AccountId,
    config: &crate::domain::config::AccountConfig,
    user: u64,
) -> Result<Option<String>, SyncFailure> {
    for (owner, choice) in &config.owner_overrides {
        if choice.map(|c| c.get()) == Some(user) {
            return Ok(Some(owner.clone()));
        }
    }
    let users = services
        .directory
        .board_users
        .get_or_load(account.as_str(), || services.board.users(account))
        .await
        .map_err(SyncFailure::from)?;
    let Some(email) = users
        .iter()
        .find(|u| u.id.get() == user)
        .map(|u| u.email.clone())
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let token = bearer(services, account).await?;
    let owners = services
        .directory
        .hubspot_owners
        .get_or_load(account.as_str(), || services.crm.owners(&token))
        .await
        .map_err(SyncFailure::from)?;
    Ok(owners
        .iter()
        .find(|o| o.email.eq_ignore_ascii_case(&email))
        .map(|o| o.id.to_string())
        // An owner chosen for nobody by an override is not matched by e-mail either.
        .filter(|o| !matches!(config.owner_overrides.get(o), Some(None))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_never_zero_and_follow_the_basis() {
        assert_eq!(amount(Some("0"), Some("0"), false), None);
        assert_eq!(amount(None, None, true), None);
        assert_eq!(
            amount(Some("100000"), Some("10000"), false).as_deref(),
            Some("100000")
        );
        assert_eq!(
            amount(Some("100000"), Some("10000"), true).as_deref(),
            Some("110000")
        );
        assert_eq!(
            amount(Some("1234.50"), None, false).as_deref(),
            Some("1234.5")
        );
    }

    #[test]
    fn ordered_dates_are_midnight_in_tokyo() {
        // 2026-12-01T00:00:00+09:00 = 2026-11-30T15:00:00Z
        assert_eq!(
            crate::domain::dates::midnight_ms("2026-12-01", crate::domain::dates::TOKYO).as_deref(),
            Some("1796050800000")
        );
        assert_eq!(
            crate::domain::dates::midnight_ms("12/01/2026", crate::domain::dates::TOKYO),
            None
        );
    }
}
