//! Per-record link status and toggle, resync, and history retry (business and
//! settings API, SPEC §5, §8).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::Services;
use super::hubspot_to_board::{SyncFailure, sync_deals, sync_others};
use crate::domain::connection::Connection;
use crate::domain::history::Direction;
use crate::domain::{
    AccountId, BoardObjectKind, BoardRef, HistoryId, HubSpotObjectType, HubSpotRef, Link,
    LinkState, UserId,
};
use crate::ports::{BoardResource, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("HubSpot is not connected")]
    NotConnected,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SyncFailure> for LinkError {
    fn from(e: SyncFailure) -> Self {
        match e {
            SyncFailure::Store(s) => Self::Store(s),
            SyncFailure::Conflict => Self::Store(StoreError::Conflict),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

pub fn kind(raw: &str) -> Option<BoardObjectKind> {
    match raw {
        "project" => Some(BoardObjectKind::Project),
        "customer" => Some(BoardObjectKind::Customer),
        "contact" => Some(BoardObjectKind::CustomerContact),
        _ => None,
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkView {
    pub hubspot_id: String,
    pub hubspot_object_type: HubSpotObjectType,
    pub sync_enabled: bool,
    /// `enabled`, `disabled`, `deleted`, `archived`, `off`.
    pub state: &'static str,
    pub reason_code: Option<&'static str>,
    pub reason: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_synced_at: Option<time::OffsetDateTime>,
}

pub fn view(link: &Link) -> LinkView {
    let (state, code) = match &link.state {
        LinkState::Enabled => ("enabled", None),
        LinkState::Disabled { reason } => ("disabled", Some(*reason)),
        LinkState::Deleted => (
            "deleted",
            Some(match link.board.kind {
                BoardObjectKind::Project => crate::domain::Code::ProjectNotFound,
                BoardObjectKind::Customer => crate::domain::Code::CustomerNotFound,
                BoardObjectKind::CustomerContact => crate::domain::Code::CustomerContactNotFound,
            }),
        ),
        LinkState::Archived => ("archived", None),
        LinkState::Off => ("off", None),
    };
    LinkView {
        hubspot_id: link.hubspot.id.to_string(),
        hubspot_object_type: link.hubspot.object_type,
        sync_enabled: link.state == LinkState::Enabled,
        state,
        reason_code: code.map(|c| c.as_str()),
        reason: code.map(|c| c.entry().message_ja),
        last_synced_at: link.last_synced_at,
    }
}

async fn connection(services: &Services, account: &AccountId) -> Result<Connection, LinkError> {
    services
        .connections
        .get_connection(account)
        .await?
        .filter(|c| c.tokens.is_some())
        .ok_or(LinkError::NotConnected)
}

async fn find(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    board_id: u64,
) -> Result<(Connection, Link), LinkError> {
    let connection = connection(services, account).await?;
    let link = services
        .links
        .link_by_board(
            account,
            connection.portal_id,
            BoardRef { kind, id: board_id },
        )
        .await?
        .ok_or(LinkError::NotFound)?;
    Ok((connection, link))
}

pub async fn get(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    board_id: u64,
) -> Result<LinkView, LinkError> {
    Ok(view(&find(services, account, kind, board_id).await?.1))
}

/// Turns sync on or off for one record; `staff` only for their own projects.
pub async fn set_enabled(
    services: &Services,
    account: &AccountId,
    user: Option<&UserId>,
    kind: BoardObjectKind,
    board_id: u64,
    enabled: bool,
) -> Result<LinkView, LinkError> {
    let (_, mut link) = find(services, account, kind, board_id).await?;
    if let Some(user) = user {
        if kind != BoardObjectKind::Project {
            return Err(LinkError::Forbidden(
                "担当者権限では自分が担当の案件のみ変更できます".into(),
            ));
        }
        let project = services
            .board
            .get(account, BoardResource::Projects, board_id)
            .await
            .map_err(|e| LinkError::Unavailable(e.to_string()))?;
        if project
            .fields
            .get("user_id")
            .and_then(Value::as_u64)
            .map(|u| u.to_string())
            .as_deref()
            != Some(user.as_str())
        {
            return Err(LinkError::Forbidden(
                "担当者権限では自分が担当の案件のみ変更できます".into(),
            ));
        }
    }
    if link.state == LinkState::Archived {
        return Err(LinkError::Conflict(
            "以前のHubSpotアカウントの連携です".into(),
        ));
    }
    if link.state == LinkState::Deleted {
        return Err(LinkError::Conflict(
            "board側で削除されたレコードのため、連携を有効にできません".into(),
        ));
    }
    let was_enabled = link.state == LinkState::Enabled;
    if was_enabled == enabled {
        return Ok(view(&link));
    }
    link.state = if enabled {
        LinkState::Enabled
    } else {
        LinkState::Off
    };
    services
        .links
        .update_link(&link)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                LinkError::Conflict("同時に更新されました。もう一度お試しください".into())
            }
            other => other.into(),
        })?;
    let config_version = services.configs.config(account).await?.version;
    crate::app::history::record(
        services,
        crate::app::history::Attempt {
            account,
            direction: Direction::BoardToHubspot,
            hubspot: Some(link.hubspot),
            board: Some(link.board),
            name: None,
            code: None,
            action: Some(if enabled {
                crate::app::history::LINK_ENABLED
            } else {
                crate::app::history::LINK_DISABLED
            }),
            detail: user.map(|u| format!("user {u}")),
            warnings: Vec::new(),
            config_version,
        },
    )
    .await;
    if enabled {
        // Turned back on: what changed meanwhile is read again and applied now.
        if let Err(error) = resync(services, account, kind, board_id).await {
            tracing::warn!(%error, "resync after turning sync on failed; the next change applies it");
        }
        let (_, after) = find(services, account, kind, board_id).await?;
        return Ok(view(&after));
    }
    Ok(view(&link))
}

/// Re-reads the HubSpot object and applies it now.
pub async fn resync_object(
    services: &Services,
    connection: &Connection,
    object: HubSpotRef,
    trigger: &str,
) -> Result<(), LinkError> {
    match object.object_type {
        HubSpotObjectType::Deal => {
            let deals = BTreeMap::from([(object.id, BTreeSet::from([trigger.to_owned()]))]);
            sync_deals(services, connection, &deals, false).await?
        }
        HubSpotObjectType::Company => {
            sync_others(
                services,
                connection,
                &BTreeSet::from([object.id]),
                &BTreeSet::new(),
                false,
            )
            .await?
        }
        HubSpotObjectType::Contact => {
            sync_others(
                services,
                connection,
                &BTreeSet::new(),
                &BTreeSet::from([object.id]),
                false,
            )
            .await?
        }
    }
    Ok(())
}

pub async fn resync(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    board_id: u64,
) -> Result<LinkView, LinkError> {
    let (connection, link) = find(services, account, kind, board_id).await?;
    resync_object(services, &connection, link.hubspot, "resync").await?;
    let (_, after) = find(services, account, kind, board_id).await?;
    Ok(view(&after))
}

/// Retries what an error or skip entry was about: the object is read again and applied.
pub async fn retry(
    services: &Services,
    account: &AccountId,
    id: &HistoryId,
) -> Result<(), LinkError> {
    let entry = services
        .history
        .entry(account, id)
        .await?
        .ok_or(LinkError::NotFound)?;
    if entry.status == crate::domain::history::Status::Success {
        return Err(LinkError::Conflict("成功した履歴は再実行できません".into()));
    }
    if entry.direction == crate::domain::history::Direction::BoardToHubspot
        && let Some(board) = entry.board
    {
        return retry_from_board(services, account, board).await;
    }
    let object = entry
        .hubspot
        .ok_or_else(|| LinkError::Conflict("再実行できる対象がありません".into()))?;
    let connection = connection(services, account).await?;
    resync_object(services, &connection, object, "retry").await
}

/// Re-reads the board object and applies it to HubSpot as a change event would;
/// a failure is recorded again (a new entry), not retried in the background.
async fn retry_from_board(
    services: &Services,
    account: &AccountId,
    board: crate::domain::BoardRef,
) -> Result<(), LinkError> {
    use crate::domain::BoardObjectKind as K;
    use crate::ports::{BoardError, BoardResource};
    connection(services, account).await?;
    let resource = match board.kind {
        K::Project => BoardResource::Projects,
        K::Customer => BoardResource::Clients,
        K::CustomerContact => BoardResource::Contacts,
    };
    let record = match services.board.get(account, resource, board.id).await {
        Ok(r) => r,
        Err(BoardError::NotFound) => {
            return Err(LinkError::Conflict(
                "boardのデータが削除されています".into(),
            ));
        }
        Err(e) => return Err(LinkError::Unavailable(e.to_string())),
    };
    let mut snapshot = record.fields;
    snapshot.insert("id".into(), serde_json::json!(record.id));
    let snapshot = serde_json::Value::Object(snapshot);
    let result = match board.kind {
        K::Project => {
            super::board_to_hubspot::project_event(services, account, false, &snapshot, true).await
        }
        kind => {
            super::board_to_hubspot::customer_or_contact_event(
                services, account, kind, false, &snapshot, true,
            )
            .await
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err(SyncFailure::Store(e)) => Err(e.into()),
        Err(SyncFailure::Conflict) => Err(StoreError::Conflict.into()),
        Err(other) => Err(LinkError::Unavailable(other.to_string())),
    }
}
