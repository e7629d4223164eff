//! Draft projects (下書き案件, SPEC §5): deals that qualify for board but are not
//! projects yet. One per deal per board account.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, DealId, OrderStatus, PipelineId, PortalId, StageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DraftState {
    Open,
    /// The deal stopped qualifying; restorable when it qualifies again.
    Withdrawn,
    /// A user discarded it; later changes do not recreate it.
    Discarded,
    Registered,
}

impl DraftState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Withdrawn => "withdrawn",
            Self::Discarded => "discarded",
            Self::Registered => "registered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Open,
            Self::Withdrawn,
            Self::Discarded,
            Self::Registered,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftCompany {
    #[serde(with = "crate::domain::link::string_u64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: u64,
    pub name: String,
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftContact {
    #[serde(with = "crate::domain::link::string_u64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: u64,
    pub last_name: String,
    pub first_name: String,
    pub email: String,
}

/// What a draft shows of its deal, compared to decide whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftContent {
    pub name: String,
    pub order_status: OrderStatus,
    pub pipeline_id: PipelineId,
    pub stage_id: StageId,
    pub amount: Option<String>,
    pub close_date: Option<String>,
    pub owner_id: Option<String>,
    pub companies: Vec<DraftCompany>,
    pub contacts: Vec<DraftContact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub account_id: AccountId,
    pub portal_id: PortalId,
    pub deal_id: DealId,
    #[serde(flatten)]
    pub content: DraftContent,
    pub state: DraftState,
    /// Why it was withdrawn (the failing gate), in Japanese.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub project_id: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default)]
    pub revision: u64,
}
