//! Recording and reading sync history (SPEC §8): every entry carries its id,
//! time, direction, objects, status, catalog code and the config version.

use serde::Serialize;
use time::OffsetDateTime;
use tracing::{debug, info, warn};

use super::Services;
use crate::domain::history::{Direction, HistoryEntry, Status};
use crate::domain::{AccountId, BoardRef, Code, HistoryId, HubSpotRef};

/// What to record; the rest (id, time, status) is derived.
pub struct Attempt<'a> {
    pub account: &'a AccountId,
    pub direction: Direction,
    pub hubspot: Option<HubSpotRef>,
    pub board: Option<BoardRef>,
    pub name: Option<String>,
    pub code: Option<Code>,
    pub action: Option<&'a str>,
    pub detail: Option<String>,
    pub warnings: Vec<String>,
    pub config_version: u64,
}

/// Appends an entry; a failure to record is logged, never raised (the sync itself went through).
pub async fn record(services: &Services, attempt: Attempt<'_>) -> HistoryId {
    let now = services.clock.now();
    let ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    let entry = HistoryEntry {
        id: HistoryId::generate(ms),
        account_id: attempt.account.clone(),
        occurred_at: now,
        direction: attempt.direction,
        hubspot: attempt.hubspot,
        board: attempt.board,
        name: attempt.name,
        status: Status::for_code(attempt.code),
        code: attempt.code,
        detail: attempt.detail,
        warnings: attempt.warnings,
        action: attempt.action.map(str::to_owned),
        config_version: attempt.config_version,
    };
    if let Err(error) = services
        .history
        .append(&entry, now + services.settings.history_retention)
        .await
    {
        warn!(%error, history_id = %entry.id, "history entry not stored");
    } else {
        // The runbook's way from a history id (shown in board's screen) to the
        // invocation that wrote it: this line carries both, and the spans' ids.
        info!(
            history_id = %entry.id,
            account = %entry.account_id,
            direction = ?entry.direction,
            status = ?entry.status,
            code = entry.code.map(|c| c.as_str()),
            hubspot_id = entry.hubspot.as_ref().map(|h| h.id),
            board_id = entry.board.as_ref().map(|b| b.id),
            "history entry recorded"
        );
        if entry.status == Status::Success {
            note_sync(services, &entry.account_id, entry.direction, now).await;
        }
    }
    entry.id
}

/// The connection's last sync time in `direction` (what the settings screen
/// shows): written at most once a minute per account and direction.
async fn note_sync(
    services: &Services,
    account: &AccountId,
    direction: Direction,
    at: OffsetDateTime,
) {
    let key = format!("{account}#{direction:?}");
    if services.directory.sync_noted.fresh(&key).is_some() {
        return;
    }
    let mut connection = match services.connections.get_connection(account).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return,
        Err(error) => {
            warn!(%error, "last sync time not recorded");
            return;
        }
    };
    let slot = match direction {
        Direction::HubspotToBoard => &mut connection.last_sync_to_board_at,
        Direction::BoardToHubspot => &mut connection.last_sync_to_hubspot_at,
    };
    if slot.is_some_and(|previous| previous >= at) {
        return;
    }
    *slot = Some(at);
    match services.connections.save_connection(&connection).await {
        Ok(_) => services.directory.sync_noted.put(&key, ()),
        // Changed meanwhile (a refresh, another note): the next success writes it.
        Err(error) => debug!(%error, "last sync time not recorded"),
    }
}

/// An entry as the API shows it: with the catalog's messages and guidance.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryView {
    pub id: HistoryId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub direction: Direction,
    pub object_type: Option<&'static str>,
    pub hubspot_id: Option<String>,
    pub board_id: Option<u64>,
    pub board_object_type: Option<&'static str>,
    pub name: Option<String>,
    pub status: Status,
    pub code: Option<Code>,
    pub message: Option<&'static str>,
    pub message_en: Option<&'static str>,
    pub guidance: Option<&'static str>,
    pub guidance_en: Option<&'static str>,
    pub action: Option<String>,
    pub detail: Option<String>,
    pub warnings: Vec<String>,
    pub config_version: u64,
}

/// What a success entry of a user's action says (SPEC §9), ja and en.
pub fn action_message(action: &str) -> Option<(&'static str, &'static str)> {
    match action {
        LINK_DISABLED => Some(("ユーザーが連携を無効にしました", "A user turned sync off.")),
        LINK_ENABLED => Some(("ユーザーが連携を有効にしました", "A user turned sync on.")),
        _ => None,
    }
}

/// A user's per-record toggle (SPEC §9), recorded as a success entry.
pub const LINK_DISABLED: &str = "link_disabled";
pub const LINK_ENABLED: &str = "link_enabled";

pub fn view(entry: HistoryEntry) -> EntryView {
    let catalog = entry.code.map(Code::entry);
    let said = entry.action.as_deref().and_then(action_message);
    EntryView {
        object_type: entry.object_type(),
        id: entry.id,
        occurred_at: entry.occurred_at.to_offset(time::macros::offset!(+9)),
        direction: entry.direction,
        hubspot_id: entry.hubspot.map(|h| h.id.to_string()),
        board_id: entry.board.map(|b| b.id),
        board_object_type: entry.board.map(|b| b.kind.as_str()),
        name: entry.name,
        status: entry.status,
        code: entry.code,
        message: catalog.map(|c| c.message_ja).or(said.map(|(ja, _)| ja)),
        message_en: catalog.map(|c| c.message_en).or(said.map(|(_, en)| en)),
        guidance: catalog.map(|c| c.guidance_ja),
        guidance_en: catalog.map(|c| c.guidance_en),
        action: entry.action,
        detail: entry.detail,
        warnings: entry.warnings,
        config_version: entry.config_version,
    }
}

/// Filters of the history list (all optional).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<Status>,
    pub direction: Option<Direction>,
    pub object_type: Option<String>,
    /// A catalog code.
    pub code: Option<Code>,
    /// Name, HubSpot id, board id or history id.
    pub q: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl Filter {
    pub(crate) fn matches(&self, e: &HistoryEntry) -> bool {
        self.status.is_none_or(|s| s == e.status)
            && self.code.is_none_or(|c| e.code == Some(c))
            && self.direction.is_none_or(|d| d == e.direction)
            && self.object_type.as_deref().is_none_or(|t| {
                e.hubspot.is_some_and(|h| h.object_type.as_str() == t)
                    || e.board.is_some_and(|b| b.kind.as_str() == t)
            })
            && self.from.is_none_or(|f| e.occurred_at >= f)
            && self.to.is_none_or(|t| e.occurred_at <= t)
            && self.q.as_deref().is_none_or(|q| {
                let q = q.trim();
                e.name.as_deref().is_some_and(|n| n.contains(q))
                    || e.id.as_str().eq_ignore_ascii_case(q)
                    || e.hubspot.is_some_and(|h| h.id.to_string() == q)
                    || e.board.is_some_and(|b| b.id.to_string() == q)
            })
    }
}

/// How many entries one listing request scans at most (a filter that matches
/// rarely returns a cursor to continue instead of scanning the whole history).
const SCAN_LIMIT: usize = 2000;

pub async fn list(
    services: &Services,
    account: &AccountId,
    filter: &Filter,
    limit: usize,
    cursor: Option<&crate::ports::Cursor>,
) -> Result<crate::ports::Page<EntryView>, crate::ports::StoreError> {
    let limit = limit.clamp(1, 200);
    let mut items = Vec::new();
    let mut position = cursor.cloned();
    let mut scanned = 0;
    loop {
        let page = services
            .history
            .entries(account, 200, position.as_ref())
            .await?;
        let exhausted = page.next.is_none();
        for entry in page.items {
            scanned += 1;
            position = Some(crate::ports::Cursor(entry.id.as_str().to_owned()));
            if filter.matches(&entry) {
                items.push(view(entry));
                if items.len() == limit {
                    return Ok(crate::ports::Page {
                        items,
                        next: position,
                    });
                }
            }
        }
        if exhausted {
            return Ok(crate::ports::Page { items, next: None });
        }
        if scanned >= SCAN_LIMIT {
            return Ok(crate::ports::Page {
                items,
                next: position,
            });
        }
    }
}
