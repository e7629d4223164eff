//! History entries: one sync attempt each, in either direction (SPEC §8).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, BoardRef, Class, Code, HistoryId, HubSpotRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HubspotToBoard,
    BoardToHubspot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Skip,
    Error,
}

impl Status {
    /// A catalog code decides the status: skips are skips, everything else an error.
    pub fn for_code(code: Option<Code>) -> Self {
        match code.map(Code::class) {
            None => Self::Success,
            Some(Class::Skip) => Self::Skip,
            Some(_) => Self::Error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: HistoryId,
    pub account_id: AccountId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub direction: Direction,
    pub hubspot: Option<HubSpotRef>,
    pub board: Option<BoardRef>,
    pub name: Option<String>,
    pub status: Status,
    pub code: Option<Code>,
    /// HubSpot's or board's own error text.
    pub detail: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What was done on success (`draft_created`, `draft_updated`, `project_updated`, …).
    #[serde(default)]
    pub action: Option<String>,
    pub config_version: u64,
}

impl HistoryEntry {
    pub fn object_type(&self) -> Option<&'static str> {
        self.hubspot
            .map(|h| h.object_type.as_str())
            .or(self.board.map(|b| b.kind.as_str()))
    }
}
