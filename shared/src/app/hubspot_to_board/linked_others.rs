//! HubSpot → board for linked companies and contacts (SPEC §5, §6): company →
//! customer (phone, postal code, prefecture, address; the legal name only with
//! two-way names), contact → customer contact (names, e-mail, job title) or the
//! individual customer it is linked to. Field by field against the baselines.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use tracing::info;

use super::linked_deals::Outcome;
use crate::app::Services;
use crate::app::budgeted_hubspot::BudgetedHubSpot;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::domain::config::AccountConfig;
use crate::domain::connection::Connection;
use crate::domain::customer_mapping::{self, FromHubSpot};
use crate::domain::history::Direction;
use crate::domain::later_wins::{self, Change, Side, Verdict};
use crate::domain::{BoardObjectKind, Code, HubSpotObjectType, HubSpotRef, Link, LinkState};
use crate::ports::{BoardError, BoardResource, CrmObject, StoreError};

/// What a linked object asks of board (SPEC §6), and warnings about what it cannot carry.
fn wanted(
    link: &Link,
    object: &CrmObject,
    config: &AccountConfig,
) -> (Vec<FromHubSpot>, Vec<String>) {
    customer_mapping::from_hubspot(
        (link.hubspot.object_type, link.board.kind),
        &object.properties,
        config.two_way_customer_names,
    )
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
        // Our own budget: the change waits its turn, never recorded as a failure.
        BoardError::OverBudget { .. } => return Err(SyncFailure::from(error)),
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
    let changed: Vec<FromHubSpot> = values
        .into_iter()
        .filter(|(key, _, v)| !link.is_hubspot_echo(key, v.as_ref()))
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
    // SPEC §11: a field board also changed since its baseline goes to the later change.
    let in_board = Value::Object(current.fields.clone());
    let board_now: std::collections::BTreeMap<&str, Option<String>> =
        customer_mapping::from_board((link.hubspot.object_type, link.board.kind), &in_board)
            .0
            .into_iter()
            .map(|(key, value, _)| (key, value))
            .collect();
    let incoming = Change {
        side: Side::HubSpot,
        at: customer_mapping::hubspot_modified_at(link.hubspot.object_type, &object.properties),
    };
    let board = Change {
        side: Side::Board,
        at: customer_mapping::board_modified_at(&in_board),
    };
    let mut kept_in_board = BTreeSet::new();
    let mut conflicts = Vec::new();
    for (key, field, value) in &changed {
        // Never clear a board value from an empty HubSpot field.
        let Some(v) = value else { continue };
        if current.text(field) == Some(v.as_str()) {
            continue;
        }
        let now = board_now.get(key).cloned().flatten();
        match later_wins::decide(incoming, link.board_moved(key, now.as_ref()), board) {
            Verdict::Apply => {}
            Verdict::Overwrite => {
                conflicts.push(later_wins::note(
                    customer_mapping::label_ja(key),
                    Side::HubSpot,
                ));
            }
            Verdict::Keep => {
                kept_in_board.insert(*key);
                conflicts.push(later_wins::note(
                    customer_mapping::label_ja(key),
                    Side::Board,
                ));
                continue;
            }
        }
        fields.insert((*field).to_owned(), json!(v));
        applied.insert(*field);
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
        b.hubspot_sent = None;
        if !kept_in_board.contains(key) {
            b.board = value;
        }
    }
    link.last_synced_at = Some(services.clock.now());
    save(services, &link).await?;
    if !conflicts.is_empty() {
        entry(
            services,
            &link,
            config,
            Entry {
                name: name.clone(),
                code: Some(Code::ConflictOverwritten),
                detail: Some(conflicts.join("、")),
                ..Entry::default()
            },
        )
        .await;
    }
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

/// Companies or contacts read from HubSpot at `read_at`, applied to every linked board object of
/// one account; those no longer in HubSpot end their links.
pub struct Read<'a> {
    pub object_type: HubSpotObjectType,
    pub found: &'a [CrmObject],
    pub missing: &'a [u64],
    pub read_at: time::OffsetDateTime,
}

/// Applies a batch of company or contact changes to every linked board object of one account.
pub async fn sync(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    hubspot: &BudgetedHubSpot<'_>,
    read: Read<'_>,
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    let object_type = read.object_type;
    for object in read.found {
        let reference = HubSpotRef {
            object_type,
            id: object.id,
        };
        let Some(link) = services
            .links
            .link_by_hubspot(&connection.account_id, connection.portal_id, reference)
            .await?
        else {
            continue;
        };
        // The link was saved after the object was read (board → HubSpot wrote
        // it meanwhile): the read may predate that write, and its values would
        // pass for HubSpot changes and overwrite board. Read it again first.
        let fresh = if link
            .last_synced_at
            .is_some_and(|saved| saved >= read.read_at)
        {
            match read_again(hubspot, reference).await? {
                Some(object) => Some(object),
                // Gone since: its deletion arrives as its own event; the stale
                // read must not be applied in its place.
                None => continue,
            }
        } else {
            None
        };
        apply(
            services,
            config,
            link,
            fresh.as_ref().unwrap_or(object),
            last_attempt,
        )
        .await?;
    }
    for id in read.missing {
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

/// One linked object read again, inside the portal's budget.
async fn read_again(
    hubspot: &BudgetedHubSpot<'_>,
    reference: HubSpotRef,
) -> Result<Option<CrmObject>, SyncFailure> {
    let (found, _) = hubspot
        .batch_read(
            reference.object_type,
            &[reference.id],
            &customer_mapping::read_properties(reference.object_type),
        )
        .await
        .map_err(SyncFailure::from)?;
    Ok(found.into_iter().next())
}
