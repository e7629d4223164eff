//! HubSpot → board for linked deals (SPEC §5, §11): field by field against the
//! baselines, so our own echoes are recognised and only real changes go to
//! board. Status only when the stage or pipeline changed, through the mapping,
//! never 5 → 4; ordered date only for 4/5, as a Tokyo calendar date; a locked
//! project is skipped; exclusion and deletion disable the link, recorded once.

use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::app::Services;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::domain::config::AccountConfig;
use crate::domain::connection::Connection;
use crate::domain::dates::{parse_instant, portal_date};
use crate::domain::gates::EXCLUDED_VALUE;
use crate::domain::history::Direction;
use crate::domain::later_wins::{self, Change, Side, Verdict};
use crate::domain::mapping::{
    CLOSE_DATE, COMPANY, NAME, ORDER_STATUS, STAGE, deal_label_ja, deal_values,
};
use crate::domain::normalize::nfkc;
use crate::domain::{Code, Link, LinkState, OrderStatus, PipelineId, StageId};
use crate::ports::{BoardError, BoardResource, CrmObject, StoreError};

/// What happened, for the decision log.
pub struct Outcome {
    pub outcome: &'static str,
    pub reason: String,
}

fn outcome(outcome: &'static str, reason: impl Into<String>) -> Outcome {
    Outcome {
        outcome,
        reason: reason.into(),
    }
}

async fn history(
    services: &Services,
    link: &Link,
    name: Option<String>,
    code: Option<Code>,
    action: Option<&str>,
    detail: Option<String>,
    config: &AccountConfig,
) {
    record(
        services,
        Attempt {
            account: &link.account_id,
            direction: Direction::HubspotToBoard,
            hubspot: Some(link.hubspot),
            board: Some(link.board),
            name,
            code,
            action,
            detail,
            warnings: Vec::new(),
            config_version: config.version,
        },
    )
    .await;
}

/// Saves the link; its new revision.
async fn save(services: &Services, link: &Link) -> Result<u64, SyncFailure> {
    match services.links.update_link(link).await {
        Ok(revision) => Ok(revision),
        Err(StoreError::Conflict) => Err(SyncFailure::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Disables the link with `code`, recording it once.
async fn disable(
    services: &Services,
    mut link: Link,
    code: Code,
    name: Option<String>,
    config: &AccountConfig,
) -> Result<Outcome, SyncFailure> {
    link.state = LinkState::Disabled { reason: code };
    save(services, &link).await?;
    history(services, &link, name, Some(code), None, None, config).await;
    info!(deal = link.hubspot.id, code = %code, "link disabled");
    Ok(outcome("link_disabled", code.entry().message_ja))
}

/// A linked deal HubSpot no longer has.
pub async fn deal_deleted(
    services: &Services,
    link: Link,
    config: &AccountConfig,
) -> Result<Outcome, SyncFailure> {
    match link.state {
        LinkState::Enabled => disable(services, link, Code::DealNotFound, None, config).await,
        _ => Ok(outcome("silent", "連携が無効なため記録しません")),
    }
}

/// Applies a linked deal's current state to its project.
pub async fn apply(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    mut link: Link,
    deal: &CrmObject,
    primary_company: Option<u64>,
    last_attempt: bool,
) -> Result<Outcome, SyncFailure> {
    let account = &connection.account_id;
    let name = deal.get("dealname").map(str::to_owned);
    let excluded = deal.get("exclude_from_board_integration") == Some(EXCLUDED_VALUE);
    let mut force = false;
    match &link.state {
        LinkState::Enabled if excluded => {
            return disable(services, link, Code::DealExcluded, name, config).await;
        }
        LinkState::Enabled => {}
        LinkState::Disabled {
            reason: Code::DealExcluded,
        } if !excluded => {
            // Back to いいえ: enabled again, and the deal synced as it is now.
            link.state = LinkState::Enabled;
            force = true;
        }
        _ => return Ok(outcome("silent", "連携が無効なため記録しません")),
    }
    // The deal's company changed: the project keeps its customer (documents may exist).
    if let Some(company) = primary_company.map(|c| c.to_string()) {
        let entry = link.baseline.entry(COMPANY.into()).or_default();
        let before = entry.hubspot.clone();
        if before.as_deref().is_some_and(|b| b != company) {
            entry.hubspot = Some(company.clone());
            save(services, &link).await?;
            let detail = format!("会社 {} → {}", before.unwrap_or_default(), company);
            history(
                services,
                &link,
                name.clone(),
                Some(Code::AssociationChanged),
                None,
                Some(detail),
                config,
            )
            .await;
            return Ok(outcome("association_changed", "取引の会社が変更されました"));
        }
        entry.hubspot.get_or_insert(company.clone());
        entry.board.get_or_insert(company);
    }
    let values = deal_values(
        deal.get("dealname"),
        deal.get("pipeline"),
        deal.get("dealstage"),
        deal.get("closedate"),
        connection.zone(),
    );
    let changed: Vec<(&str, Option<String>)> = values
        .into_iter()
        .filter(|(field, value)| force || !link.is_hubspot_echo(field, value.as_ref()))
        .collect();
    if changed.is_empty() {
        return Ok(outcome(
            "echo_or_unchanged",
            "前回の同期から変更はありません(自身の更新の反映を含む)",
        ));
    }
    let project = match services
        .board
        .get(account, BoardResource::Projects, link.board.id)
        .await
    {
        Ok(p) => p,
        Err(BoardError::NotFound) => {
            link.state = LinkState::Deleted;
            save(services, &link).await?;
            history(
                services,
                &link,
                name,
                Some(Code::ProjectNotFound),
                None,
                None,
                config,
            )
            .await;
            return Ok(outcome(
                "project_deleted",
                Code::ProjectNotFound.entry().message_ja,
            ));
        }
        Err(e) => return board_failure(services, &link, name, e, config, last_attempt).await,
    };
    if project.fields.get("lock_flg").and_then(Value::as_u64) == Some(1) {
        // Skipped, baselines untouched: a retry after unlocking applies it.
        history(
            services,
            &link,
            name,
            Some(Code::ProjectLocked),
            None,
            None,
            config,
        )
        .await;
        return Ok(outcome(
            "skipped_locked",
            Code::ProjectLocked.entry().message_ja,
        ));
    }
    let current_status = project
        .fields
        .get("order_status")
        .and_then(Value::as_i64)
        .and_then(|c| OrderStatus::from_code(c).ok());
    let mut fields = Map::new();
    let mut new_status: Option<OrderStatus> = None;
    let mut applied: Vec<String> = Vec::new();
    // Fields board also changed since the baseline, and later: HubSpot's value
    // is acknowledged but not written (board's change goes to HubSpot).
    let mut kept_in_board: Vec<&str> = Vec::new();
    let mut conflicts: Vec<String> = Vec::new();
    // SPEC §11: a field board also changed since its baseline goes to the later change.
    let board_at = project.text("updated_at").and_then(parse_instant);
    let hubspot_at = deal.get("hs_lastmodifieddate").and_then(parse_instant);
    let mut weigh = |key: &'static str, board_changed: bool| {
        let incoming = Change {
            side: Side::HubSpot,
            at: hubspot_at,
        };
        let board = Change {
            side: Side::Board,
            at: board_at,
        };
        match later_wins::decide(incoming, board_changed, board) {
            Verdict::Apply => true,
            Verdict::Overwrite => {
                conflicts.push(later_wins::note(deal_label_ja(key), Side::HubSpot));
                true
            }
            Verdict::Keep => {
                kept_in_board.push(key);
                conflicts.push(later_wins::note(deal_label_ja(key), Side::Board));
                false
            }
        }
    };
    let board_moved = |key: &str, now: Option<String>| link.board_moved(key, now.as_ref());
    for (field, value) in &changed {
        match *field {
            NAME => {
                let in_board = project.text("name").map(nfkc);
                if let Some(v) = value
                    && in_board.as_deref() != Some(v.as_str())
                    && weigh(NAME, board_moved(NAME, in_board.clone()))
                {
                    fields.insert("name".into(), json!(v));
                    applied.push("案件名".into());
                }
            }
            STAGE => {
                let status = value
                    .as_deref()
                    .and_then(|key| key.split_once(':'))
                    .and_then(|(p, s)| {
                        config.status_of(&PipelineId::new(p).ok()?, &StageId::new(s).ok()?)
                    });
                let board_changed =
                    board_moved(ORDER_STATUS, current_status.map(|c| c.code().to_string()));
                match (status, current_status) {
                    // A stage mapping to 受注確定 never moves a 受注済 project back.
                    (Some(OrderStatus::OrderConfirmed), Some(OrderStatus::Ordered)) => {}
                    (Some(s), current) if Some(s) != current && weigh(STAGE, board_changed) => {
                        new_status = Some(s);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let resulting = new_status.or(current_status);
    let board_date = project.text("order_date").map(str::to_owned);
    let close_date = match changed.iter().find(|(f, _)| *f == CLOSE_DATE) {
        Some((_, Some(date))) if board_date.as_ref() != Some(date) => {
            if weigh(CLOSE_DATE, board_moved(CLOSE_DATE, board_date.clone())) {
                Some(date.clone())
            } else {
                board_date.clone()
            }
        }
        Some((_, date)) => date.clone(),
        // A status just becoming 4/5 takes the deal's close date.
        None => new_status
            .filter(|s| s.carries_ordered_date())
            .and_then(|_| {
                deal.get("closedate")
                    .and_then(|d| portal_date(d, connection.zone()))
            }),
    };
    let order_date =
        close_date.filter(|_| resulting.is_some_and(OrderStatus::carries_ordered_date));
    if new_status.is_none()
        && let Some(date) = &order_date
        && project.text("order_date") != Some(date.as_str())
    {
        fields.insert("order_date".into(), json!(date));
    }
    if new_status.is_some() || !fields.is_empty() {
        // Saved before board is written: board's change event for these values
        // may be handled before the link is saved again, and is our echo.
        if let Some(v) = fields.get("name").and_then(Value::as_str) {
            link.sending_to_board(NAME, v.to_owned());
        }
        if let Some(s) = new_status {
            link.sending_to_board(ORDER_STATUS, s.code().to_string());
        }
        if let Some(date) = &order_date
            && (new_status.is_some() || fields.contains_key("order_date"))
        {
            link.sending_to_board(CLOSE_DATE, date.clone());
        }
        link.revision = save(services, &link).await?;
    }
    if let Some(s) = new_status {
        match services
            .board
            .set_order_status(account, link.board.id, s.code(), order_date.clone())
            .await
        {
            Ok(_) => applied.push(format!("受注ステータス({})", s.label_ja())),
            Err(e) => return board_failure(services, &link, name, e, config, last_attempt).await,
        }
    } else if fields.contains_key("order_date") {
        applied.push("受注日".into());
    }
    if !fields.is_empty()
        && let Err(e) = services
            .board
            .update(account, BoardResource::Projects, link.board.id, fields)
            .await
    {
        return board_failure(services, &link, name, e, config, last_attempt).await;
    }
    link.sent_to_board();
    for (field, value) in changed {
        let entry = link.baseline.entry(field.to_owned()).or_default();
        entry.hubspot = value.clone();
        entry.hubspot_sent = None;
        if !kept_in_board.contains(&field) {
            entry.board = value;
        }
    }
    if let Some(s) = new_status {
        // board's change event for this status is our echo.
        link.baseline
            .entry(ORDER_STATUS.to_owned())
            .or_default()
            .board = Some(s.code().to_string());
    }
    link.last_synced_at = Some(services.clock.now());
    save(services, &link).await?;
    if !conflicts.is_empty() {
        history(
            services,
            &link,
            name.clone(),
            Some(Code::ConflictOverwritten),
            None,
            Some(conflicts.join("、")),
            config,
        )
        .await;
    }
    if applied.is_empty() {
        return Ok(outcome("nothing_to_apply", "boardの案件は既に同じ内容です"));
    }
    let detail = applied.join("、");
    history(
        services,
        &link,
        name,
        None,
        Some("project_updated"),
        Some(detail.clone()),
        config,
    )
    .await;
    let _ = connection;
    Ok(outcome("project_updated", detail))
}

/// board refused or failed: recorded with the catalog code; transient failures retry.
async fn board_failure(
    services: &Services,
    link: &Link,
    name: Option<String>,
    error: BoardError,
    config: &AccountConfig,
    last_attempt: bool,
) -> Result<Outcome, SyncFailure> {
    match error {
        BoardError::Rejected { message, .. } => {
            history(
                services,
                link,
                name,
                Some(Code::BoardApiError),
                None,
                Some(message),
                config,
            )
            .await;
            Ok(outcome(
                "board_rejected",
                Code::BoardApiError.entry().message_ja,
            ))
        }
        BoardError::Unauthorized(message) => {
            history(
                services,
                link,
                name,
                Some(Code::BoardAuthInvalid),
                None,
                Some(message),
                config,
            )
            .await;
            Ok(outcome(
                "board_auth_invalid",
                Code::BoardAuthInvalid.entry().message_ja,
            ))
        }
        BoardError::NotFound => Ok(outcome("project_missing", "boardの案件が見つかりません")),
        // Our own budget: the change waits its turn, never recorded as a failure.
        BoardError::OverBudget { .. } => Err(SyncFailure::from(error)),
        BoardError::RateLimited { .. } | BoardError::Unavailable(_) if last_attempt => {
            // Given up: recorded as board → HubSpot records its last attempt,
            // so the user sees it and can retry it from the history.
            let failure = SyncFailure::from(error);
            history(
                services,
                link,
                name,
                Some(failure.code()),
                None,
                Some(failure.to_string()),
                config,
            )
            .await;
            Ok(outcome(
                "board_unavailable",
                failure.code().entry().message_ja,
            ))
        }
        BoardError::RateLimited { .. } | BoardError::Unavailable(_) => {
            warn!(error = %error, "board unavailable; retried later");
            Err(SyncFailure::from(error))
        }
    }
}
