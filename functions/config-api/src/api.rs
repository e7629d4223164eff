//! The bodies the config API reads and writes that are its own (wrappers around
//! the use cases' views). The handlers serialize these very types, and the
//! OpenAPI document is derived from them (`routes::openapi`), so the two cannot
//! drift apart.

use std::collections::BTreeMap;

use board_hubspot::app::drafts::DraftView;
use board_hubspot::app::history::EntryView;
use board_hubspot::app::settings::{self, PipelinesView};
use board_hubspot::domain::OrderStatus;
use board_hubspot::domain::config::{AmountBasis, FilterRule};
use board_hubspot::ports::Notification;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One page of drafts, most recently changed first; `next_cursor` fetches the next.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftsPage {
    pub items: Vec<DraftView>,
    pub next_cursor: Option<String>,
}

/// One page of history, newest first; `next_cursor` fetches the next.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub items: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FilterRulesView {
    pub rules: Vec<FilterRule>,
    pub config_version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLabelView {
    /// The label the CRM card shows; null when none is set.
    pub label: Option<String>,
    pub config_version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionsView {
    pub amount_basis: AmountBasis,
    pub two_way_customer_names: bool,
    pub config_version: u64,
}

impl OptionsView {
    pub fn new(options: &settings::Options, config_version: u64) -> Self {
        Self {
            amount_basis: options.amount_basis,
            two_way_customer_names: options.two_way_customer_names,
            config_version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeUrl {
    /// HubSpot's install page with a signed, single-use, 10-minute `state`.
    #[schema(format = "uri")]
    pub authorize_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    /// `disconnected`, or `uninstalled` when the app was uninstalled too.
    pub state: &'static str,
    /// Whether HubSpot revoked the refresh token (not when another account shares it).
    pub revoked: bool,
    pub uninstalled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Notifications {
    pub items: Vec<Notification>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The board project created (or found, on a repeated request).
    pub project_id: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub queued: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    pub retried: bool,
}

// ---- request bodies ----

/// `POST /v1/hubspot/connection/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The `confirmation` board's settings page received from the OAuth callback.
    pub confirmation: String,
    /// Archive the links of the portal this account used before (SPEC §3.3).
    #[serde(default)]
    pub archive_previous_portal: bool,
}

/// Stage id → 受注ステータス code, or null to clear the stage's mapping.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusMappingBody {
    #[schema(value_type = BTreeMap<String, Option<u8>>)]
    pub stages: BTreeMap<String, Option<OrderStatus>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AccountLabelBody {
    /// Trimmed, at most 50 characters, no control or bidirectional-override
    /// characters; empty or null clears.
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OwnerMappingBody {
    /// HubSpot owner id → board user id, or null for "no person in charge".
    #[serde(default)]
    pub overrides: BTreeMap<String, Option<u64>>,
    /// Owners returned to e-mail matching.
    #[serde(default)]
    pub reset: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsBody {
    pub amount_basis: Option<AmountBasis>,
    pub two_way_customer_names: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetLinkBody {
    pub sync_enabled: bool,
}

/// What the pipelines screen reads; named here so the route table can point at it.
pub type Pipelines = PipelinesView;

/// `POST /history/retry`: the entries named, or every retryable entry of a
/// catalog code (one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetryBody {
    /// History ids (at most 500).
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// A catalog code, e.g. `hubspot_api_error`.
    #[serde(default)]
    pub code: Option<String>,
    /// With `code`: only entries about this object type (`deal`, `company`, …).
    #[serde(default)]
    pub object_type: Option<String>,
    /// With `code`: only entries at or after this RFC 3339 time.
    #[serde(default)]
    pub from: Option<String>,
    /// With `code`: only entries at or before this RFC 3339 time.
    #[serde(default)]
    pub to: Option<String>,
}

/// The filtered history as CSV (UTF-8 with a BOM, Japanese headers, CRLF).
#[derive(Debug, ToSchema)]
pub struct HistoryCsv(pub String);

/// `POST /matching/approve`: one of `proposal_ids` (each its best candidate),
/// `group` (`sure`: every sure proposal), or `choices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    pub proposal_ids: Option<Vec<String>>,
    #[serde(default)]
    pub group: Option<board_hubspot::domain::matching::Group>,
    #[serde(default)]
    pub choices: Option<Vec<Choice>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub proposal_id: String,
    /// The chosen candidate's HubSpot id.
    pub hubspot_id: String,
}

/// `POST /matching/undo`: the `batch` an approval answered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoBody {
    pub batch: String,
}

/// `POST /backfill`: a preview (counts, nothing written) or a run (drafts).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    pub mode: board_hubspot::app::backfill::Mode,
    /// Only deals HubSpot modified at or after this RFC 3339 time.
    #[serde(default)]
    pub modified_since: Option<String>,
}

/// A proposal as listed: the board record and its candidates, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalView {
    pub id: String,
    /// `sure`, `ambiguous` or `none`.
    pub group: board_hubspot::domain::matching::Group,
    pub board: BoardSide,
    pub candidates: Vec<CandidateView>,
    /// The HubSpot id approved, once approved.
    pub approved: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardSide {
    /// `customer` or `contact` (a customer contact), as `/links/{kind}/{id}` names them.
    pub kind: &'static str,
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateView {
    pub hubspot_id: String,
    pub name: String,
    /// 0 to 1.
    pub confidence: f64,
    /// In words (Japanese), e.g. 「名前が正規化後に一致」.
    pub reasons: Vec<String>,
    /// The same as codes (`name_equal`, `same_domain`, …).
    pub reason_codes: Vec<board_hubspot::domain::matching::Reason>,
    /// Fields both sides hold with different values (`name`, `email`, `domain`,
    /// `phone`, `address`): they sync on the next change after approval.
    pub differs: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalsPage {
    pub items: Vec<ProposalView>,
    pub next_cursor: Option<String>,
    pub total: usize,
}
