//! HubSpot → board for linked companies and contacts (SPEC §5, §6): company →
//! customer (phone, postal code, prefecture, address; the legal name only with
//! two-way names), contact → customer contact (names, e-mail, job title) or the
//! individual customer it is linked to. Field by field against the baselines.

use std::collections::BTreeSet;

use serde_json::{Map, json};
use tracing::info;

use super::linked_deals::Outcome;
use crate::app::Services;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::domain::config::AccountConfig;
use crate::domain::connection::Connection;
use crate::domain::history::Direction;
use crate::domain::normalize;
use crate::domain::{BoardObjectKind, Code, HubSpotObjectType, HubSpotRef, Link, LinkState};
use crate::ports::{BoardError, BoardResource, CrmObject, StoreError};

/// (baseline key, board field, value).
pub(crate) type Wanted = (&'static str, &'static str, Option<String>);

/// What a linked object should set in board, and warnings about what it cannot.
pub(crate) fn wanted(
    link: &Link,
    object: &CrmObject,
    config: &AccountConfig,
) -> (Vec<Wanted>, Vec<String>) {
    let get = |k: &str| object.get(k).map(normalize::nfkc).filter(|v| !v.is_empty());
    let mut warnings = Vec::new();
    let values = match (link.hubspot.object_type, link.board.kind) {
        (HubSpotObjectType::Company, _) => {
            let mut v = Vec::new();
            if config.two_way_customer_names {
                v.push(("name", "name", get("name")));
            }
            let phone = get("phone").map(|p| normalize::phone(&p).unwrap_or(p));
            v.push(("phone", "tel", phone));
            match get("zip") {
                Some(raw) => match normalize::zip(&raw) {
                    Some(zip) => v.push(("zip", "zip", Some(zip))),
                    None => warnings.push(format!(
                        "郵便番号「{raw}」は7桁の郵便番号ではないため連携しませんでした"
                    )),
                },
                None => v.push(("zip", "zip", None)),
            }
            if let Some(raw) = get("state") {
                match normalize::prefecture(&raw) {
                    Some(pref) => v.push(("state", "pref", Some(pref.to_owned()))),
                    None => warnings.push(format!(
                        "都道府県「{raw}」は日本の都道府県ではないため連携しませんでした"
                    )),
                }
            }
            let address1 = format!(
                "{}{}",
                get("city").unwrap_or_default(),
                get("address").unwrap_or_default()
            );
            v.push((
                "address1",
                "address1",
                Some(address1).filter(|a| !a.is_empty()),
            ));
            v.push(("address2", "address2", get("address2")));
            v
        }
        (HubSpotObjectType::Contact, BoardObjectKind::Customer) => {
            let name = format!(
                "{} {}",
                get("lastname").unwrap_or_default(),
                get("firstname").unwrap_or_default()
            )
            .trim()
            .to_owned();
            vec![("name", "name", Some(name).filter(|n| !n.is_empty()))]
        }
        (HubSpotObjectType::Contact, _) => {
            let (mut last, mut first) = (get("lastname"), get("firstname"));
            // A full name typed into one field: split at the space.
            if first.is_none()
                && let Some((l, f)) = last.clone().as_deref().and_then(|n| n.split_once(' '))
            {
                warnings.push(format!(
                    "氏名「{}」を姓と名に分割しました",
                    last.clone().unwrap_or_default()
                ));
                (last, first) = (Some(l.to_owned()), Some(f.trim().to_owned()));
            }
            vec![
                ("lastname", "last_name", last),
                ("firstname", "first_name", first),
                ("email", "email", get("email")),
                ("jobtitle", "title", get("jobtitle")),
            ]
        }
        _ => Vec::new(),
    };
    (values, warnings)
}

fn resource(kind: BoardObjectKind) -> BoardResource {
    match kind {
        BoardObjectKind::Project => BoardResource::Projects,
        BoardObjectKind::Customer => BoardResource::Clients,
        BoardObjectKind::CustomerContact => BoardResource::Contacts,
    }
}

/// What an entry about a link says.
#[derive(Default)]
struct Entry {
    name: Option<String>,
    code: Option<Code>,
    action: Option<&'static str>,
    detail: Option<String>,
    warnings: Vec<String>,
}

async fn entry(services: &Services, link: &Link, config: &AccountConfig, e: Entry) {
    record(
        services,
        Attempt {
            account: &link.account_id,
            direction: Direction::HubspotToBoard,
            hubspot: Some(link.hubspot),
            board: Some(link.board),
            name: e.name,
            code: e.code,
            action: e.action,
            detail: e.detail,
            warnings: e.warnings,
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

fn outcome(outcome: &'static str, reason: impl Into<String>) -> Outcome {
    Outcome {
        outcome,
        reason: reason.into(),
    }
}

/// A linked company or contact HubSpot no longer has: disabled, recorded once.
pub async fn deleted(
    services: &Services,
    mut link: Link,
    config: &AccountConfig,
) -> Result<Outcome, SyncFailure> {
    if link.state != LinkState::Enabled {
        return Ok(outcome("silent", "連携が無効なため記録しません"));
    }
    let code = if link.hubspot.object_type == HubSpotObjectType::Company {
        Code::CompanyNotFound
    } else {
        Code::ContactNotFound
    };
    link.state = LinkState::Disabled { reason: code };
    save(services, &link).await?;
    entry(
        services,
        &link,
        config,
        Entry {
            code: Some(code),
            ..Entry::default()
        },
    )
    .await;
    Ok(outcome("link_disabled", code.entry().message_ja))
}

/// board refused or failed: recorded with the catalog code; transient failures retry.
async fn board_failure(
    services: &Services,
    link: &Link,
    config: &AccountConfig,
    name: Option<String>,
    warnings: Vec<String>,
    error: BoardError,
    last_attempt: bool,
) -> Result<Outcome, SyncFailure> {
    let code = match &error {
        BoardError::Rejected { .. } => Code::BoardApiError,
        BoardError::Unauthorized(_) => Code::BoardAuthInvalid,
        // Given up: recorded as board → HubSpot records its last attempt.
        _ if last_attempt => SyncFailure::from(error.clone()).code(),
        _ => return Err(SyncFailure::from(error)),
    };
    let detail = match error {
        BoardError::Rejected { message, .. } | BoardError::Unauthorized(message) => Some(message),
        other => Some(other.to_string()),
    };
    entry(
        services,
        link,
        config,
        Entry {
            name,
            code: Some(code),
            detail,
            warnings,
            ..Entry::default()
        },
    )
    .await;
    Ok(outcome("board_failed", code.entry().message_ja))
}

pub async fn apply(
    services: &Services,
    config: &AccountConfig,
    mut link: Link,
    object: &CrmObject,
    last_attempt: bool,
) -> Result<Outcome, SyncFailure> {
    if link.state != LinkState::Enabled {
        return Ok(outcome("silent", "連携が無効なため記録しません"));
    }
    let (values, warnings) = wanted(&link, object, config);
    let changed: Vec<Wanted> = values
        .into_iter()
        .filter(|(key, _, v)| link.baseline.get(*key).map(|b| &b.hubspot) != Some(v))
        .collect();
    if changed.is_empty() {
        return Ok(outcome(
            "echo_or_unchanged",
            "前回の同期から変更はありません",
        ));
    }
    let account = link.account_id.clone();
    let name = object
        .get("name")
        .or(object.get("lastname"))
        .map(str::to_owned);
    let current = match services
        .board
        .get(&account, resource(link.board.kind), link.board.id)
        .await
    {
        Ok(r) => r,
        Err(BoardError::NotFound) => {
            link.state = LinkState::Deleted;
            save(services, &link).await?;
            return Ok(outcome(
                "board_object_deleted",
                "boardのデータが削除されています",
            ));
        }
        Err(e) => {
            return board_failure(services, &link, config, name, warnings, e, last_attempt).await;
        }
    };
    let mut fields = Map::new();
    let mut applied = BTreeSet::new();
    for (_, field, value) in &changed {
        // Never clear a board value from an empty HubSpot field.
        if let Some(v) = value
            && current.text(field) != Some(v.as_str())
        {
            fields.insert((*field).to_owned(), json!(v));
            applied.insert(*field);
        }
    }
    if !fields.is_empty() {
        // Saved before board is written: board's change event for these values
        // may be handled before the link is saved again, and is our echo.
        for (key, field, value) in &changed {
            if let Some(v) = value.clone().filter(|_| applied.contains(field)) {
                link.sending_to_board(key, v);
            }
        }
        link.revision = save(services, &link).await?;
        if let Err(e) = services
            .board
            .update(&account, resource(link.board.kind), link.board.id, fields)
            .await
        {
            return board_failure(services, &link, config, name, warnings, e, last_attempt).await;
        }
    }
    link.sent_to_board();
    for (key, _, value) in changed {
        let b = link.baseline.entry(key.to_owned()).or_default();
        b.hubspot = value.clone();
        b.board = value;
    }
    link.last_synced_at = Some(services.clock.now());
    save(services, &link).await?;
    if applied.is_empty() {
        return Ok(outcome("nothing_to_apply", "boardは既に同じ内容です"));
    }
    let action = if link.board.kind == BoardObjectKind::CustomerContact {
        "customer_contact_updated"
    } else {
        "customer_updated"
    };
    let detail = applied.into_iter().collect::<Vec<_>>().join(", ");
    info!(board = %link.board, %detail, "board updated from HubSpot");
    entry(
        services,
        &link,
        config,
        Entry {
            name,
            action: Some(action),
            detail: Some(detail.clone()),
            warnings,
            ..Entry::default()
        },
    )
    .await;
    Ok(outcome(action, detail))
}

/// Applies a batch of company or contact changes to every linked board object of one account.
pub async fn sync(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    object_type: HubSpotObjectType,
    found: &[CrmObject],
    missing: &[u64],
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    for object in found {
        let reference = HubSpotRef {
            object_type,
            id: object.id,
        };
        if let Some(link) = services
            .links
            .link_by_hubspot(&connection.account_id, connection.portal_id, reference)
            .await?
        {
            apply(services, config, link, object, last_attempt).await?;
        }
    }
    for id in missing {
        let reference = HubSpotRef {
            object_type,
            id: *id,
        };
        if let Some(link) = services
            .links
            .link_by_hubspot(&connection.account_id, connection.portal_id, reference)
            .await?
        {
            deleted(services, link, config).await?;
        }
    }
    Ok(())
}
