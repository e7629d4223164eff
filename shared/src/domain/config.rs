//! A board account's configuration (SPEC §4), versioned: history entries
//! record the version they were evaluated under.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AccountLabel, BoardUserId, OrderStatus, PipelineId, StageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FilterField {
    /// `hubspot_team_id`
    Team,
    /// `hubspot_owner_id`
    Owner,
    /// `board_custom_filter_key` (option values)
    FilterKey,
}

impl FilterField {
    pub fn property(self) -> &'static str {
        match self {
            Self::Team => "hubspot_team_id",
            Self::Owner => "hubspot_owner_id",
            Self::FilterKey => "board_custom_filter_key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Condition {
    pub field: FilterField,
    pub values: Vec<String>,
}

/// All conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FilterRule {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AmountBasis {
    #[default]
    ExcludingTax,
    IncludingTax,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountConfig {
    /// Per pipeline, the stages that map to a status (unmapped stages are absent).
    #[serde(default)]
    pub status_mapping: BTreeMap<PipelineId, BTreeMap<StageId, OrderStatus>>,
    #[serde(default)]
    pub filter_rules: Vec<FilterRule>,
    #[serde(default)]
    pub label: Option<AccountLabel>,
    /// Administrator overrides of the owner ↔ person-in-charge table
    /// (`None`: explicitly no board user for that owner).
    #[serde(default)]
    pub owner_overrides: BTreeMap<String, Option<BoardUserId>>,
    #[serde(default)]
    pub amount_basis: AmountBasis,
    #[serde(default)]
    pub two_way_customer_names: bool,
    /// The configuration version (the store's revision); 0 before any change.
    #[serde(default)]
    pub version: u64,
}

impl AccountConfig {
    pub fn status_of(&self, pipeline: &PipelineId, stage: &StageId) -> Option<OrderStatus> {
        self.status_mapping
            .get(pipeline)
            .and_then(|m| m.get(stage))
            .copied()
    }
}
