//! The route table: dispatch and the OpenAPI document both come from it, so the
//! document cannot describe an endpoint the code does not serve, or miss one.

use serde_json::{Value, json};

use crate::auth::Access;

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
    RegisterDraft,
    Link,
    SetLink,
    ResyncLink,
    RetryHistory,
    ResyncAll,
    History,
    HistoryEntry,
    Diagnosis,
}

pub struct Route {
    pub method: &'static str,
    /// With `{name}` segments for path parameters.
    pub path: &'static str,
    pub op: Op,
    pub access: Access,
    pub summary: &'static str,
    pub response: &'static str,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/hubspot/connection",
        op: Op::ConnectionStatus,
        access: Access::Settings,
        summary: "The board account's HubSpot connection: state, portal, authorizing user, scopes, activity, checklist.",
        response: "ConnectionStatus",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/connection/authorize",
        op: Op::Authorize,
        access: Access::Settings,
        summary: "Starts connecting: HubSpot's authorize URL with a signed, single-use, 10-minute state.",
        response: "AuthorizeUrl",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/connection/confirm",
        op: Op::Confirm,
        access: Access::Settings,
        summary: "Activates the connection the OAuth flow prepared; only the user who started, in the same account. Body {confirmation, archive_previous_portal?}.",
        response: "ConnectionStatus",
    },
    Route {
        method: "DELETE",
        path: "/v1/hubspot/connection",
        op: Op::Disconnect,
        access: Access::Settings,
        summary: "Disconnects: deletes the tokens (revoked unless shared), keeps configuration and links; ?uninstall=true also uninstalls the app.",
        response: "Disconnected",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/notifications",
        op: Op::Notifications,
        access: Access::Settings,
        summary: "Notices for administrators (suspension, uninstall), newest first.",
        response: "Notifications",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/pipelines",
        op: Op::Pipelines,
        access: Access::Settings,
        summary: "HubSpot's deal pipelines and stages (live, display order) with each stage's mapped 受注ステータス, the stage used per status, problems, and a suggested mapping for the default pipeline.",
        response: "Pipelines",
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/pipelines/{pipeline_id}/status-mapping",
        op: Op::SetStatusMapping,
        access: Access::Settings,
        summary: "Sets or clears stage → status mappings of one pipeline: {\"stages\": {\"<stage_id>\": 4, \"<stage_id>\": null}}.",
        response: "Pipelines",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/filter-rules",
        op: Op::FilterRules,
        access: Access::Settings,
        summary: "The deal filter rules: a deal passes if all conditions of any rule hold; no rules, every deal.",
        response: "FilterRules",
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/filter-rules",
        op: Op::SetFilterRules,
        access: Access::Settings,
        summary: "Replaces the filter rules: {\"rules\": [{\"conditions\": [{\"field\": \"team\"|\"owner\"|\"filter_key\", \"values\": [..]}]}]}.",
        response: "FilterRules",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/filter-options",
        op: Op::FilterOptions,
        access: Access::Settings,
        summary: "HubSpot's teams, owners and the options of board_custom_filter_key (or why it cannot be used).",
        response: "FilterOptions",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/account-label",
        op: Op::AccountLabel,
        access: Access::Settings,
        summary: "The label the CRM card shows for this board account.",
        response: "AccountLabel",
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/account-label",
        op: Op::SetAccountLabel,
        access: Access::Settings,
        summary: "Sets the label: {\"label\": \"…\"}, trimmed, at most 50 characters; empty clears.",
        response: "AccountLabel",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/owner-mapping",
        op: Op::OwnerMapping,
        access: Access::Settings,
        summary: "HubSpot owners ↔ board persons in charge: matched by e-mail, overridden by administrators.",
        response: "OwnerMapping",
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/owner-mapping",
        op: Op::SetOwnerMapping,
        access: Access::Settings,
        summary: "Overrides entries: {\"overrides\": {\"<owner_id>\": <board user id>|null}, \"reset\": [\"<owner_id>\"]}.",
        response: "OwnerMapping",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/options",
        op: Op::Options,
        access: Access::Settings,
        summary: "Amount basis (excluding_tax by default) and two-way customer names.",
        response: "Options",
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/options",
        op: Op::SetOptions,
        access: Access::Settings,
        summary: "Sets {\"amount_basis\": \"excluding_tax\"|\"including_tax\", \"two_way_customer_names\": bool}.",
        response: "Options",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/drafts",
        op: Op::Drafts,
        access: Access::Business,
        summary: "Draft projects (?state=open|withdrawn|discarded|registered, default open; limit ≤ 200; cursor), most recently changed first.",
        response: "Drafts",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/drafts/{id}",
        op: Op::Draft,
        access: Access::Business,
        summary: "One draft (id = the HubSpot deal id) with the suggested person in charge.",
        response: "Draft",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/drafts/{id}/discard",
        op: Op::DiscardDraft,
        access: Access::Business,
        summary: "Discards a draft: later changes of the deal do not recreate it until it is restored.",
        response: "Draft",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/drafts/{id}/restore",
        op: Op::RestoreDraft,
        access: Access::Business,
        summary: "Restores a discarded or withdrawn draft if its deal qualifies now (409 with the reason otherwise).",
        response: "Draft",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/history",
        op: Op::History,
        access: Access::Settings,
        summary: "Sync history, newest first: ?status=success|skip|error&direction=&object_type=&q=&from=&to=&limit=&cursor=.",
        response: "History",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/history/{id}",
        op: Op::HistoryEntry,
        access: Access::Settings,
        summary: "One history entry by its id (the id support asks for).",
        response: "HistoryEntry",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/diagnosis/deals/{deal_id}",
        op: Op::Diagnosis,
        access: Access::Settings,
        summary: "Why a deal is or is not in board: each gate with the deciding value, link and draft state, decisions of the last 30 days.",
        response: "Diagnosis",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/drafts/{id}/register",
        op: Op::RegisterDraft,
        access: Access::Business,
        summary: "Registers a draft as a board project: {client_id|null, contact_id|null, user_id, invoice_timing_kbn, invoice_date | contract_start_date+contract_end_date | invoice_dates, company_id?, contact_ids?} → {project_id}. Idempotent; staff only as their own person in charge.",
        response: "Registered",
    },
    Route {
        method: "GET",
        path: "/v1/hubspot/links/{kind}/{board_id}",
        op: Op::Link,
        access: Access::Business,
        summary: "A board record's HubSpot link (kind: project|customer|contact): HubSpot id, sync enabled, reason, last sync.",
        response: "Link",
    },
    Route {
        method: "PUT",
        path: "/v1/hubspot/links/{kind}/{board_id}",
        op: Op::SetLink,
        access: Access::Business,
        summary: "Turns sync on or off for one record: {\"sync_enabled\": bool}. Staff only for their own projects.",
        response: "Link",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/links/{kind}/{board_id}/resync",
        op: Op::ResyncLink,
        access: Access::Business,
        summary: "Re-reads the linked HubSpot object and applies it now.",
        response: "Link",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/history/{id}/retry",
        op: Op::RetryHistory,
        access: Access::Settings,
        summary: "Retries an error or skip entry: the object is read again and applied (a new entry records the outcome).",
        response: "Retried",
    },
    Route {
        method: "POST",
        path: "/v1/hubspot/resync-all",
        op: Op::ResyncAll,
        access: Access::Settings,
        summary: "Queues a catch-up sweep: deals, companies and contacts modified in HubSpot since the watermark are processed as if notified.",
        response: "Queued",
    },
];

/// A matched route and its path parameters.
pub struct Matched {
    pub route: &'static Route,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum NoMatch {
    /// The path exists with another method (405).
    Method,
    /// No such path (404).
    Path,
}

/// Finds the route for a method and path, with the path parameters.
pub fn find(method: &str, path: &str) -> Result<Matched, NoMatch> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut path_matched = false;
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
            path_matched = true;
            if route.method == method {
                return Ok(Matched { route, params });
            }
        }
    }
    Err(if path_matched {
        NoMatch::Method
    } else {
        NoMatch::Path
    })
}

fn schemas() -> Value {
    json!({
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "code"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "code": {"type": "string"}, "detail": {"type": "string"}
            }
        },
        "Pipelines": {"type": "object", "required": ["items", "problems", "config_version"], "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "label": {"type": "string"},
                "stages": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "label": {"type": "string"}, "display_order": {"type": "integer"},
                    "order_status": {"type": ["integer", "null"]}, "order_status_label": {"type": ["string", "null"]}}}},
                "stage_for_status": {"type": "object"}, "suggested_mapping": {"type": ["object", "null"]},
                "problems": {"type": "array"}}}},
            "problems": {"type": "array"}, "config_version": {"type": "integer"}}},
        "FilterRules": {"type": "object", "required": ["rules", "config_version"], "properties": {
            "rules": {"type": "array", "items": {"type": "object", "properties": {"conditions": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string", "enum": ["team", "owner", "filter_key"]}, "values": {"type": "array", "items": {"type": "string"}}}}}}}},
            "config_version": {"type": "integer"}}},
        "FilterOptions": {"type": "object", "properties": {"teams": {"type": "array"}, "owners": {"type": "array"}, "filter_key": {"type": "object"}}},
        "AccountLabel": {"type": "object", "required": ["label", "config_version"], "properties": {"label": {"type": ["string", "null"]}, "config_version": {"type": "integer"}}},
        "OwnerMapping": {"type": "object", "required": ["items", "config_version"], "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
            "owner_id": {"type": "string"}, "owner_name": {"type": "string"}, "owner_email": {"type": "string"},
            "board_user_id": {"type": ["integer", "null"]}, "board_user_name": {"type": ["string", "null"]},
            "source": {"type": "string", "enum": ["email", "override", "none"]}}}}, "config_version": {"type": "integer"}}},
        "Options": {"type": "object", "required": ["amount_basis", "two_way_customer_names", "config_version"], "properties": {
            "amount_basis": {"type": "string", "enum": ["excluding_tax", "including_tax"]}, "two_way_customer_names": {"type": "boolean"},
            "config_version": {"type": "integer"}}},
                "Drafts": {"type": "object", "required": ["items", "next_cursor"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Draft"}}, "next_cursor": {"type": ["string", "null"]}}},
        "Draft": {"type": "object", "required": ["id", "deal_id", "name", "order_status", "state"], "properties": {
            "id": {"type": "string"}, "deal_id": {"type": "string"}, "name": {"type": "string"}, "order_status": {"type": "integer"},
            "order_status_label": {"type": "string"}, "state": {"type": "string", "enum": ["open", "withdrawn", "discarded", "registered"]},
            "reason": {"type": ["string", "null"]}, "amount": {"type": ["string", "null"]}, "close_date": {"type": ["string", "null"]},
            "owner_id": {"type": ["string", "null"]}, "companies": {"type": "array"}, "contacts": {"type": "array"},
            "project_id": {"type": ["integer", "null"]}, "suggested_user_id": {"type": ["integer", "null"]},
            "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}},
        "Link": {"type": "object", "required": ["hubspot_id", "sync_enabled", "state"], "properties": {
            "hubspot_id": {"type": "string"}, "hubspot_object_type": {"type": "string"}, "sync_enabled": {"type": "boolean"},
            "state": {"type": "string", "enum": ["enabled", "disabled", "deleted", "archived", "off"]},
            "reason_code": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]},
            "last_synced_at": {"type": ["string", "null"], "format": "date-time"}}},
        "Queued": {"type": "object", "required": ["queued"], "properties": {"queued": {"type": "boolean"}}},
        "Retried": {"type": "object", "required": ["retried"], "properties": {"retried": {"type": "boolean"}}},
        "Registered": {"type": "object", "required": ["project_id"], "properties": {"project_id": {"type": "integer"}}},
        "History": {"type": "object", "required": ["items", "next_cursor"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryEntry"}}, "next_cursor": {"type": ["string", "null"]}}},
        "HistoryEntry": {"type": "object", "required": ["id", "occurred_at", "direction", "status", "config_version"], "properties": {
            "id": {"type": "string"}, "occurred_at": {"type": "string", "format": "date-time"},
            "direction": {"type": "string", "enum": ["hubspot_to_board", "board_to_hubspot"]}, "object_type": {"type": ["string", "null"]},
            "hubspot_id": {"type": ["string", "null"]}, "board_id": {"type": ["integer", "null"]}, "name": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["success", "skip", "error"]}, "code": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]}, "message_en": {"type": ["string", "null"]}, "guidance": {"type": ["string", "null"]},
            "action": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]}, "warnings": {"type": "array", "items": {"type": "string"}},
            "config_version": {"type": "integer"}}},
        "Diagnosis": {"type": "object", "required": ["deal_id", "decisions"], "properties": {
            "deal_id": {"type": "string"}, "deal": {"type": ["object", "null"]}, "gates": {"type": ["object", "null"]},
            "qualifies": {"type": ["boolean", "null"]}, "link": {"type": ["object", "null"]}, "draft": {"type": ["object", "null"]},
            "decisions": {"type": "array"}, "config_version": {"type": "integer"}}},
        "AuthorizeUrl": {"type": "object", "required": ["authorize_url"], "properties": {"authorize_url": {"type": "string", "format": "uri"}}},
        "Disconnected": {"type": "object", "required": ["state", "revoked", "uninstalled"], "properties": {
            "state": {"type": "string"}, "revoked": {"type": "boolean"}, "uninstalled": {"type": "boolean"}}},
        "Notifications": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "occurred_at": {"type": "string", "format": "date-time"}, "kind": {"type": "string"},
            "message": {"type": "string"}, "message_en": {"type": "string"}}}}}},
        "ConnectionStatus": {
            "type": "object",
            "required": ["state", "scopes", "consecutive_auth_failures", "checklist"],
            "properties": {
                "state": {"type": "string", "enum": ["not_connected", "pending", "active", "suspended", "disconnected", "uninstalled"]},
                "hubspot_paused": {"type": ["object", "null"], "description": "Background HubSpot work of the portal held until `until` (HubSpot's daily limit, or its rate window nearly spent).",
                    "properties": {"until": {"type": "string", "format": "date-time"}, "reason": {"type": "string", "enum": ["daily_limit", "rate_limit"]}}},
                "portal_id": {"type": ["integer", "null"]},
                "hub_domain": {"type": ["string", "null"]},
                "authorized_by": {"type": ["object", "null"], "properties": {"user_id": {"type": "string"}, "email": {"type": "string"}}},
                "scopes": {"type": "array", "items": {"type": "string"}},
                "connected_at": {"type": ["string", "null"], "format": "date-time"},
                "last_webhook_at": {"type": ["string", "null"], "format": "date-time"},
                "last_sync_at": {"type": "object", "properties": {
                    "hubspot_to_board": {"type": ["string", "null"], "format": "date-time"},
                    "board_to_hubspot": {"type": ["string", "null"], "format": "date-time"}}},
                "consecutive_auth_failures": {"type": "integer"},
                "account_name": {"type": ["string", "null"]},
                "message": {"type": ["string", "null"]},
                "message_en": {"type": ["string", "null"]},
                "guidance": {"type": ["string", "null"]},
                "exclusion_property": {"type": ["object", "null"]},
                "other_accounts_on_portal": {"type": "array", "items": {"type": "string"}},
                "checklist": {"type": "array", "items": {"type": "object", "properties": {
                    "item": {"type": "string"}, "done": {"type": "boolean"}, "required": {"type": "boolean"}, "message": {"type": "string"}}}}
            }
        }
    })
}

pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let access = match route.access {
            Access::Settings => "Settings: master, admin, or custom with hubspot_settings.",
            Access::Business => {
                "Business: master, admin, manager, leader, staff, or custom with hubspot_business."
            }
        };
        let problem = json!({"description": "Problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
        let operation = json!({
            "summary": route.summary,
            "description": access,
            "operationId": format!("{:?}", route.op),
            "parameters": parameters,
            "security": [{"boardJwt": []}],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", route.response)}}}},
                "400": problem, "401": problem, "403": problem, "404": problem
            }
        });
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "board ⇄ HubSpot config and business API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"boardJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas()
        }
    })
}
