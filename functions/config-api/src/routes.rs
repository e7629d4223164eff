//! The route table: dispatch and the OpenAPI document both come from it, so the
//! document cannot describe an endpoint the code does not serve, or miss one;
//! each route names the Rust types its handler reads and writes, and the
//! document's schemas are derived from those types (utoipa), so a field added
//! to a view is documented the day it is served.

use std::borrow::Cow;

use board_hubspot::app::backfill::BackfillState;
use board_hubspot::app::budget_view::BudgetView;
use board_hubspot::app::connection_status::ConnectionStatus;
use board_hubspot::app::diagnosis::Diagnosis;
use board_hubspot::app::drafts::{DraftDetail, DraftView};
use board_hubspot::app::history::EntryView;
use board_hubspot::app::history_tools::{RetriesQueued, Summary};
use board_hubspot::app::links::LinkView;
use board_hubspot::app::matching::{Approved, MatchingState, Undone};
use board_hubspot::app::register::Registration;
use board_hubspot::app::settings::preview::{Preview, PreviewBody};
use board_hubspot::app::settings::{FilterOptions, OwnerMapping, RulesBody};
use board_hubspot::edge::Problem;
use serde_json::Value;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, KnownFormat, OpenApi, OpenApiBuilder,
    PathsBuilder, RefOr, Required, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::api::{
    AccountLabelBody, AccountLabelView, ApproveBody, AuthorizeUrl, BackfillBody, BulkRetryBody,
    ConfirmBody, Disconnected, DraftsPage, FilterRulesView, HistoryCsv, HistoryPage, Notifications,
    OptionsBody, OptionsView, OwnerMappingBody, Pipelines, ProposalsPage, Queued, Registered,
    Retried, SetLinkBody, StatusMappingBody, UndoBody,
};
use crate::auth::Access;

/// A Rust type as the document sees it: its name and schema, and the schemas
/// it refers to.
#[derive(Clone, Copy)]
pub struct Body {
    name: fn() -> Cow<'static, str>,
    schema: fn() -> RefOr<Schema>,
    refers_to: fn(&mut Vec<(String, RefOr<Schema>)>),
}

pub const fn body<T: ToSchema>() -> Body {
    Body {
        name: T::name,
        schema: <T as PartialSchema>::schema,
        refers_to: T::schemas,
    }
}

/// A query parameter a route reads.
#[derive(Clone, Copy)]
pub struct Query {
    pub name: &'static str,
    pub schema: fn() -> Schema,
    pub description: &'static str,
}

/// Every route's problem answers (`application/problem+json`). A client must
/// expect any of them: 409 when the account is not connected or is suspended,
/// 413 for an oversized body, 429/502/503 when HubSpot or board refuse or fail.
pub const PROBLEM_STATUSES: &[u16] = &[400, 401, 403, 404, 409, 413, 429, 502, 503];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ConnectionStatus,
    Authorize,
    Confirm,
    Disconnect,
    Notifications,
    Pipelines,
    SetStatusMapping,
    FilterRules,
    SetFilterRules,
    FilterOptions,
    AccountLabel,
    SetAccountLabel,
    OwnerMapping,
    SetOwnerMapping,
    Options,
    SetOptions,
    Drafts,
    Draft,
    DiscardDraft,
    RestoreDraft,
    Redraft,
    RegisterDraft,
    Link,
    SetLink,
    ResyncLink,
    RetryHistory,
    ResyncAll,
    History,
    HistoryEntry,
    HistorySummary,
    HistoryExport,
    BulkRetry,
    Budget,
    Preview,
    MatchingStart,
    MatchingStatus,
    MatchingProposals,
    MatchingApprove,
    MatchingUndo,
    BackfillStart,
    BackfillStatus,
    Diagnosis,
}

pub struct Route {
    pub method: &'static str,
    /// With `{name}` segments for path parameters.
    pub path: &'static str,
    pub op: Op,
    pub access: Access,
    pub summary: &'static str,
    /// The success status (200, or 202 for queued work).
    pub success: u16,
    pub response: Body,
    pub request: Option<Body>,
    pub query: &'static [Query],
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/hubspot/connection",
        op: Op::ConnectionStatus,
        access: Access::Settings,
        summary: "The board account's HubSpot connection: state, portal, authorizing user, scopes, activity, checklist.",
        success: 200,
        response: body::<ConnectionStatus>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/connection/authorize",
        op: Op::Authorize,
        access: Access::Settings,
        summary: "Starts connecting: HubSpot's authorize URL with a signed, single-use, 10-minute state.",
        success: 200,
        response: body::<AuthorizeUrl>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/connection/confirm",
        op: Op::Confirm,
        access: Access::Settings,
        summary: "Activates the connection the OAuth flow prepared; only the user who started, in the same account. Body {confirmation, archive_previous_portal?}.",
        success: 200,
        response: body::<ConnectionStatus>(),
        request: Some(body::<ConfirmBody>()),
        query: &[],
    },
    Route {
        method: "DELETE",
        path: "/v1/hubspot/connection",
        op: Op::Disconnect,
        access: Access::Settings,
        summary: "Disconnects: deletes the tokens (revoked unless shared), keeps configuration and links; ?uninstall=true also uninstalls the app.",
        success: 200,
        response: body::<Disconnected>(),
        request: None,
        query: UNINSTALL,
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/notifications",
        op: Op::Notifications,
        access: Access::Settings,
        summary: "Notices for administrators (suspension, uninstall), newest first.",
        success: 200,
        response: body::<Notifications>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/pipelines",
        op: Op::Pipelines,
        access: Access::Settings,
        summary: "HubSpot's deal pipelines and stages (live, display order) with each stage's mapped 受注ステータス, the stage used per status, problems, and a suggested mapping for the default pipeline.",
        success: 200,
        response: body::<Pipelines>(),
        request: None,
        query: &[],
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/pipelines/{pipeline_id}/status-mapping",
        op: Op::SetStatusMapping,
        access: Access::Settings,
        summary: "Sets or clears stage → status mappings of one pipeline: {\"stages\": {\"<stage_id>\": 4, \"<stage_id>\": null}}.",
        success: 200,
        response: body::<Pipelines>(),
        request: Some(body::<StatusMappingBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/filter-rules",
        op: Op::FilterRules,
        access: Access::Settings,
        summary: "The deal filter rules: a deal passes if all conditions of any rule hold; no rules, every deal.",
        success: 200,
        response: body::<FilterRulesView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/filter-rules",
        op: Op::SetFilterRules,
        access: Access::Settings,
        summary: "Replaces the filter rules: {\"rules\": [{\"conditions\": [{\"field\": \"team\"|\"owner\"|\"filter_key\", \"values\": [..]}]}]}.",
        success: 200,
        response: body::<FilterRulesView>(),
        request: Some(body::<RulesBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/filter-options",
        op: Op::FilterOptions,
        access: Access::Settings,
        summary: "HubSpot's teams, owners and the options of board_custom_filter_key (or why it cannot be used).",
        success: 200,
        response: body::<FilterOptions>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/account-label",
        op: Op::AccountLabel,
        access: Access::Settings,
        summary: "The label the CRM card shows for this board account.",
        success: 200,
        response: body::<AccountLabelView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/account-label",
        op: Op::SetAccountLabel,
        access: Access::Settings,
        summary: "Sets the label: {\"label\": \"…\"}, trimmed, at most 50 characters; empty clears.",
        success: 200,
        response: body::<AccountLabelView>(),
        request: Some(body::<AccountLabelBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/owner-mapping",
        op: Op::OwnerMapping,
        access: Access::Settings,
        summary: "HubSpot owners ↔ board persons in charge: matched by e-mail, overridden by administrators.",
        success: 200,
        response: body::<OwnerMapping>(),
        request: None,
        query: &[],
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/owner-mapping",
        op: Op::SetOwnerMapping,
        access: Access::Settings,
        summary: "Overrides entries: {\"overrides\": {\"<owner_id>\": <board user id>|null}, \"reset\": [\"<owner_id>\"]}.",
        success: 200,
        response: body::<OwnerMapping>(),
        request: Some(body::<OwnerMappingBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/options",
        op: Op::Options,
        access: Access::Settings,
        summary: "Amount basis (excluding_tax by default) and two-way customer names.",
        success: 200,
        response: body::<OptionsView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/options",
        op: Op::SetOptions,
        access: Access::Settings,
        summary: "Sets {\"amount_basis\": \"excluding_tax\"|\"including_tax\", \"two_way_customer_names\": bool}.",
        success: 200,
        response: body::<OptionsView>(),
        request: Some(body::<OptionsBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/drafts",
        op: Op::Drafts,
        access: Access::Business,
        summary: "Draft projects (?state=open|withdrawn|discarded|registered, default open; limit ≤ 200; cursor), most recently changed first.",
        success: 200,
        response: body::<DraftsPage>(),
        request: None,
        query: DRAFTS_QUERY,
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/drafts/{id}",
        op: Op::Draft,
        access: Access::Business,
        summary: "One draft (id = the HubSpot deal id) with the suggested person in charge.",
        success: 200,
        response: body::<DraftDetail>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/drafts/{id}/discard",
        op: Op::DiscardDraft,
        access: Access::Business,
        summary: "Discards a draft: later changes of the deal do not recreate it until it is restored.",
        success: 200,
        response: body::<DraftDetail>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/drafts/{id}/restore",
        op: Op::RestoreDraft,
        access: Access::Business,
        summary: "Restores a discarded or withdrawn draft if its deal qualifies now (409 with the reason otherwise).",
        success: 200,
        response: body::<DraftDetail>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/deals/{deal_id}/redraft",
        op: Op::Redraft,
        access: Access::Business,
        summary: "Brings back a deal whose board project was deleted: its link and claim end, and the deal is read again through the entry gates (a draft again when it qualifies, else withdrawn with the reason). 409 unless the deal's project was deleted in board.",
        success: 200,
        response: body::<DraftView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/history",
        op: Op::History,
        access: Access::Settings,
        summary: "Sync history, newest first: ?status=success|skip|error&direction=&object_type=&q=&from=&to=&limit=&cursor=.",
        success: 200,
        response: body::<HistoryPage>(),
        request: None,
        query: HISTORY_QUERY,
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/history/summary",
        op: Op::HistorySummary,
        access: Access::Settings,
        summary: "The errors dashboard: entries by result, skips and errors by catalog code and object type, and a trend (hourly up to two days, else daily), over ?from=&to= (default the last 7 days) with the history filters.",
        success: 200,
        response: body::<Summary>(),
        request: None,
        query: SUMMARY_QUERY,
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/history/export",
        op: Op::HistoryExport,
        access: Access::Settings,
        summary: "The filtered history as CSV for Excel: UTF-8 with a BOM, Japanese headers, cells starting with = + - @ neutralised, newest first, at most 10,000 rows (X-Export-Complete: false when cut).",
        success: 200,
        response: body::<HistoryCsv>(),
        request: None,
        query: EXPORT_QUERY,
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/history/retry",
        op: Op::BulkRetry,
        access: Access::Settings,
        summary: "Queues retries of the entries named ({\"ids\": [...]}, at most 500) or of every retryable entry of a catalog code ({\"code\": \"...\"}), one per object, skipping objects that synced since; answers how many were queued.",
        success: 202,
        response: body::<RetriesQueued>(),
        request: Some(body::<BulkRetryBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/budget",
        op: Op::Budget,
        access: Access::Settings,
        summary: "The API budgets of the account and its HubSpot portal: each share's room now (background, this account's part, people's), calls and 429s per minute over the last 15 minutes, and whether HubSpot's daily limit holds background work.",
        success: 200,
        response: body::<BudgetView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/preview",
        op: Op::Preview,
        access: Access::Settings,
        summary: "What a stage-mapping ({\"status_mapping\": {\"pipeline_id\", \"stages\"}}) and/or filter-rule ({\"filter_rules\": {\"rules\"}}) change would do to open and withdrawn drafts and linked deals on their next HubSpot change; writes nothing (the configuration version stays).",
        success: 200,
        response: body::<Preview>(),
        request: Some(body::<PreviewBody>()),
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/matching",
        op: Op::MatchingStart,
        access: Access::Settings,
        summary: "Starts first-connection matching: reads every board customer and customer contact and every HubSpot company and contact (paged, in the budgets, resumable) and proposes links. Writes nothing to board or HubSpot. 409 while a run is going.",
        success: 202,
        response: body::<MatchingState>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/matching",
        op: Op::MatchingStatus,
        access: Access::Settings,
        summary: "The last matching run: state (running, done, failed with a reason), phase, records read per source, proposals per group, seconds left (estimated).",
        success: 200,
        response: body::<MatchingState>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/matching/proposals",
        op: Op::MatchingProposals,
        access: Access::Settings,
        summary: "The last run's proposals: the board record, its HubSpot candidates (best first) with confidence and reasons, grouped sure / ambiguous / none; ?group=&kind=customer|contact&limit=&cursor=.",
        success: 200,
        response: body::<ProposalsPage>(),
        request: None,
        query: PROPOSALS_QUERY,
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/matching/approve",
        op: Op::MatchingApprove,
        access: Access::Settings,
        summary: "Creates the links of the approved proposals in one step, idempotently: {\"proposal_ids\": [...]} (each its best candidate), {\"group\": \"sure\"}, or {\"choices\": [{\"proposal_id\", \"hubspot_id\"}]}. Writes nothing to board or HubSpot.",
        success: 200,
        response: body::<Approved>(),
        request: Some(body::<ApproveBody>()),
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/matching/undo",
        op: Op::MatchingUndo,
        access: Access::Settings,
        summary: "Undoes an approval ({\"batch\": \"<the approval's batch>\"}): removes the links it created that nothing has synced through since; writes nothing to board or HubSpot.",
        success: 200,
        response: body::<Undone>(),
        request: Some(body::<UndoBody>()),
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/backfill",
        op: Op::BackfillStart,
        access: Access::Settings,
        summary: "Existing deals (SPEC §4: explicit, after the mapping is set): {\"mode\": \"preview\"} counts HubSpot's deals by what the entry gates say (nothing written); {\"mode\": \"run\"} makes the qualifying ones drafts as new deals become, in the budgets; optional \"modified_since\". 409 while one runs or before a mapping exists.",
        success: 202,
        response: body::<BackfillState>(),
        request: Some(body::<BackfillBody>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/backfill",
        op: Op::BackfillStatus,
        access: Access::Settings,
        summary: "The last backfill of existing deals: mode, state, counts (read, older, linked, qualifying, already drafts, not qualifying).",
        success: 200,
        response: body::<BackfillState>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/history/{id}",
        op: Op::HistoryEntry,
        access: Access::Settings,
        summary: "One history entry by its id (the id support asks for).",
        success: 200,
        response: body::<EntryView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/diagnosis/deals/{deal_id}",
        op: Op::Diagnosis,
        access: Access::Settings,
        summary: "Why a deal is or is not in board: each gate with the deciding value, link and draft state, decisions of the last 30 days.",
        success: 200,
        response: body::<Diagnosis>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/drafts/{id}/register",
        op: Op::RegisterDraft,
        access: Access::Business,
        summary: "Registers a draft as a board project: {client_id|null, contact_id|null, user_id, invoice_timing_kbn, invoice_date | contract_start_date+contract_end_date | invoice_dates, company_id?, contact_ids?} → {project_id}. Idempotent; staff only as their own person in charge.",
        success: 200,
        response: body::<Registered>(),
        request: Some(body::<Registration>()),
        query: &[],
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/links/{kind}/{board_id}",
        op: Op::Link,
        access: Access::Business,
        summary: "A board record's HubSpot link (kind: project|customer|contact): HubSpot id, sync enabled, reason, last sync.",
        success: 200,
        response: body::<LinkView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/links/{kind}/{board_id}",
        op: Op::SetLink,
        access: Access::Business,
        summary: "Turns sync on or off for one record: {\"sync_enabled\": bool}. Recorded in the history (link_disabled / link_enabled); turning it on applies what changed meanwhile; a record deleted in board cannot be turned on (409). Staff only for their own projects.",
        success: 200,
        response: body::<LinkView>(),
        request: Some(body::<SetLinkBody>()),
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/links/{kind}/{board_id}/resync",
        op: Op::ResyncLink,
        access: Access::Business,
        summary: "Re-reads the linked HubSpot object and applies it now.",
        success: 200,
        response: body::<LinkView>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/history/{id}/retry",
        op: Op::RetryHistory,
        access: Access::Settings,
        summary: "Retries an error or skip entry: the object is read again and applied (a new entry records the outcome).",
        success: 200,
        response: body::<Retried>(),
        request: None,
        query: &[],
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/resync-all",
        op: Op::ResyncAll,
        access: Access::Settings,
        summary: "Queues a catch-up sweep: deals, companies and contacts modified in HubSpot since the watermark are processed as if notified.",
        success: 202,
        response: body::<Queued>(),
        request: None,
        query: &[],
    },
];

/// A matched route and its path parameters.
pub struct Matched {
    pub route: &'static Route,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum NoMatch {
    /// The path exists with other methods (405, with these in `Allow`).
    Method(Vec<&'static str>),
    /// No such path (404).
    Path,
}

/// Finds the route for a method and path, with the path parameters.
pub fn find(method: &str, path: &str) -> Result<Matched, NoMatch> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for route in ROUTES {
        let pattern: Vec<&str> = route.path.split('/').collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = pattern.iter().zip(&segments).all(|(p, s)| {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                params.push((name.to_owned(), (*s).to_owned()));
                !s.is_empty()
            } else {
                p == s
            }
        });
        if matched {
            if route.method == method {
                return Ok(Matched { route, params });
            }
            allowed.push(route.method);
        }
    }
    Err(if allowed.is_empty() {
        NoMatch::Path
    } else {
        NoMatch::Method(allowed)
    })
}

fn string_enum(values: &'static [&'static str]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
        .into()
}

fn limit() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(200))
        .default(Some(50.into()))
        .build()
        .into()
}

fn text() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .build()
        .into()
}

fn date_time() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
        .into()
}

const CURSOR: Query = Query {
    name: "cursor",
    schema: text,
    description: "The `next_cursor` of the previous page, as given (opaque; anything else is 400).",
};
const LIMIT: Query = Query {
    name: "limit",
    schema: limit,
    description: "Items per page, 1 to 200.",
};

const CODE: Query = Query {
    name: "code",
    schema: code,
    description: "Only entries with this catalog code.",
};

fn code() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            board_hubspot::domain::Code::ALL.iter().map(|c| c.as_str()),
        ))
        .build()
        .into()
}

/// The history filters without paging (the summary and the export read the
/// whole period).
const SUMMARY_QUERY: &[Query] = HISTORY_QUERY.split_at(HISTORY_QUERY.len() - 2).0;

const EXPORT_QUERY: &[Query] = &[
    Query {
        name: "format",
        schema: || string_enum(&["csv"]),
        description: "`csv` (the default and only format).",
    },
    HISTORY_QUERY[0],
    HISTORY_QUERY[1],
    HISTORY_QUERY[2],
    HISTORY_QUERY[3],
    HISTORY_QUERY[4],
    HISTORY_QUERY[5],
    HISTORY_QUERY[6],
];

const PROPOSALS_QUERY: &[Query] = &[
    Query {
        name: "group",
        schema: || string_enum(&["sure", "ambiguous", "none"]),
        description: "Only proposals of this group.",
    },
    Query {
        name: "kind",
        schema: || string_enum(&["customer", "contact"]),
        description: "Only proposals for board customers or customer contacts.",
    },
    LIMIT,
    CURSOR,
];

const UNINSTALL: &[Query] = &[Query {
    name: "uninstall",
    schema: || string_enum(&["true", "false"]),
    description: "`true` also uninstalls the app from the HubSpot account (refused with 409 while another board account uses it).",
}];

const DRAFTS_QUERY: &[Query] = &[
    Query {
        name: "state",
        schema: || string_enum(&["open", "withdrawn", "discarded", "registered"]),
        description: "Which drafts (default `open`).",
    },
    LIMIT,
    CURSOR,
];

const HISTORY_QUERY: &[Query] = &[
    Query {
        name: "status",
        schema: || string_enum(&["success", "skip", "error"]),
        description: "Only entries with this outcome.",
    },
    Query {
        name: "direction",
        schema: || string_enum(&["hubspot_to_board", "board_to_hubspot"]),
        description: "Only entries of this direction.",
    },
    Query {
        name: "object_type",
        schema: text,
        description: "Only entries about this object type (`deal`, `company`, `contact`, …).",
    },
    CODE,
    Query {
        name: "q",
        schema: text,
        description: "Entries whose 案件名 (or object name) contains this text.",
    },
    Query {
        name: "from",
        schema: date_time,
        description: "Entries at or after this RFC 3339 time.",
    },
    Query {
        name: "to",
        schema: date_time,
        description: "Entries at or before this RFC 3339 time.",
    },
    LIMIT,
    CURSOR,
];

/// The schema of one path parameter, by its name in the route table.
fn path_parameter(name: &str) -> Parameter {
    let (schema, description): (Schema, &str) = match name {
        "kind" => (
            string_enum(&["project", "customer", "contact"]),
            "The board record's kind.",
        ),
        "board_id" => (
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build()
                .into(),
            "The board record's id.",
        ),
        "id" | "deal_id" => (
            text(),
            "A HubSpot deal id (a draft's id), or a history entry's id; anything unknown is 404.",
        ),
        _ => (text(), "A HubSpot pipeline id."),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// Content whose schema is a reference to the type's component.
fn content(body: &Body) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            (body.name)(),
        ))))
        .build()
}

/// The OpenAPI 3.1 document of the config and business API, from the route
/// table and the types the handlers serialize.
pub fn openapi() -> OpenApi {
    let mut components = ComponentsBuilder::new().security_scheme(
        "boardJwt",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut add = |body: &Body| {
        schemas.push(((body.name)().into_owned(), (body.schema)()));
        (body.refers_to)(&mut schemas);
    };
    add(&body::<Problem>());
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        add(&route.response);
        if let Some(request) = &route.request {
            add(request);
        }
        let mut parameters: Vec<Parameter> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(path_parameter)
            .collect();
        parameters.extend(route.query.iter().map(|q| {
            ParameterBuilder::new()
                .name(q.name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(q.description))
                .schema(Some((q.schema)()))
                .build()
        }));
        let access = match route.access {
            Access::Settings => "Settings: master, admin, or custom with hubspot_settings.",
            Access::Business => {
                "Business: master, admin, manager, leader, staff, or custom with hubspot_business."
            }
        };
        let mut operation = OperationBuilder::new()
            .operation_id(Some(format!("{:?}", route.op)))
            .summary(Some(route.summary))
            .description(Some(access))
            .parameters(Some(parameters))
            .security(SecurityRequirement::new("boardJwt", Vec::<String>::new()))
            .response(
                route.success.to_string(),
                ResponseBuilder::new()
                    .description(if route.success == 202 {
                        "Accepted"
                    } else {
                        "OK"
                    })
                    .content(
                        if route.op == Op::HistoryExport {
                            "text/csv"
                        } else {
                            "application/json"
                        },
                        content(&route.response),
                    ),
            );
        if let Some(request) = &route.request {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", content(request))
                    .build(),
            ));
        }
        for status in PROBLEM_STATUSES {
            let reason = lambda_http::http::StatusCode::from_u16(*status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Problem");
            operation = operation.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(reason)
                    .content("application/problem+json", content(&body::<Problem>())),
            );
        }
        let method = match route.method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "DELETE" => HttpMethod::Delete,
            other => unreachable!("route table method {other}"),
        };
        paths = paths.path(route.path, PathItem::new(method, operation.build()));
    }
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    // Two types under one name would make one of them undocumented.
    for pair in schemas.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[0].1 == pair[1].1,
            "two types are named {} in the OpenAPI document",
            pair[0].0
        );
    }
    schemas.dedup_by(|a, b| a.0 == b.0);
    components = components.schemas_from_iter(schemas);
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("board ⇄ HubSpot config and business API")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

/// The document as JSON (what `GET /openapi.json` serves).
pub fn openapi_json() -> Value {
    serde_json::to_value(openapi()).expect("the OpenAPI document serializes")
}
