//! The config and business API (`/v1/...`) and its OpenAPI document.
#![recursion_limit = "512"]

pub mod api;
pub mod auth;
pub mod console;
pub mod routes;

use board_hubspot::app::connect::{self, ConfirmError, Starter};
use board_hubspot::app::disconnect::{self, DisconnectError};
use board_hubspot::app::drafts::{self, DraftError};
use board_hubspot::app::links::{self, LinkError};
use board_hubspot::app::matching::{self, MatchingError};
use board_hubspot::app::register::{self, RegisterError, Registration};
use board_hubspot::app::settings::{self, SettingsError};
use board_hubspot::app::{Services, connection_status};
use board_hubspot::app::{budget, budget_view, history_tools};
use board_hubspot::app::{catch_up, diagnosis, history};
use board_hubspot::domain::Code;
use board_hubspot::domain::HistoryId;
use board_hubspot::domain::connection::ConnectionState;
use board_hubspot::domain::draft::DraftState;
use board_hubspot::domain::history::{Direction, Status};
use board_hubspot::edge::{self, HttpResponse, Problem};
use board_hubspot::ports::Cursor;
use board_hubspot::ports::{BoardError, HubSpotError};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use auth::{AuthError, Caller, Verifier};
use routes::Op;

/// Config API bodies are small; anything larger is refused with 413.
const MAX_BODY: usize = 64 * 1024;

pub async fn handle(
    services: &Services,
    request: Request,
) -> Result<HttpResponse, lambda_http::Error> {
    let path = request.uri().path().to_owned();
    let method = request.method().as_str().to_owned();
    if path == "/openapi.json" && method == "GET" {
        return Ok(edge::json(StatusCode::OK, &routes::openapi_json()));
    }
    if console::owns(&path) {
        return Ok(console::serve(&method, &path));
    }
    let matched = match routes::find(&method, &path) {
        Ok(found) => found,
        Err(routes::NoMatch::Method(allowed)) => {
            let mut response = edge::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} {path}"),
            );
            // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            if let Ok(value) = allowed.join(", ").parse() {
                response
                    .headers_mut()
                    .insert(lambda_http::http::header::ALLOW, value);
            }
            return Ok(response);
        }
        Err(routes::NoMatch::Path) => {
            return Ok(edge::problem(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {path}"),
            ));
        }
    };
    let verified = Verifier::from_settings(&services.settings)
        .and_then(|verifier| verifier.verify(edge::header(request.headers(), "authorization")));
    let caller = match verified {
        Ok(caller) => caller,
        Err(e) => return Ok(unauthorized(&e)),
    };
    let route = matched.route;
    if !caller.may(route.access) {
        return Ok(edge::problem(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this role may not use {} (needs {})",
                route.path,
                route.access.permission()
            ),
        ));
    }
    people_turn(services, &caller, route.op).await;
    Ok(dispatch(services, &caller, route.op, &matched.params, &request).await)
}

/// HubSpot calls a person's request makes, about (the people's share of the
/// portal's window counts them; SPEC §11 leaves people 20 %).
fn hubspot_calls(op: Op) -> u32 {
    match op {
        Op::Pipelines | Op::SetStatusMapping | Op::Draft => 1,
        // A record's resync and a retry go through the background's
        // budgeted port: counted there, not twice.
        Op::Diagnosis => 2,
        Op::FilterOptions | Op::SetFilterRules => 3,
        Op::RegisterDraft => 4,
        _ => 0,
    }
}

/// Counts the request's HubSpot calls on people's share of the portal (the
/// budget view shows it; nobody is refused for it).
async fn people_turn(services: &Services, caller: &Caller, op: Op) {
    let calls = hubspot_calls(op);
    if calls == 0 {
        return;
    }
    if let Ok(Some(c)) = services
        .connections
        .get_connection(&caller.account_id)
        .await
        && c.state == ConnectionState::Active
    {
        budget::people(services, c.portal_id, calls).await;
    }
}

/// 401 with a short reason of ours; the library's own words (which name its
/// internals) go to the log only.
fn unauthorized(error: &AuthError) -> HttpResponse {
    let (code, detail) = match error {
        AuthError::Missing => ("missing_token", "a board token is required"),
        AuthError::Invalid(_) => ("invalid_token", "the token was not accepted"),
        AuthError::MissingPermissions => (
            "invalid_token",
            "a custom role's token must carry its permissions",
        ),
    };
    tracing::info!(%error, "request refused");
    edge::problem(StatusCode::UNAUTHORIZED, code, detail)
}

fn unavailable(error: impl std::fmt::Display, caller: &Caller) -> HttpResponse {
    tracing::error!(%error, account = %caller.account_id, "request failed");
    edge::problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "try again shortly",
    )
}

fn body<T: DeserializeOwned>(request: &Request) -> Result<T, Box<HttpResponse>> {
    let bytes = edge::body_bytes(request);
    if bytes.len() > MAX_BODY {
        return Err(Box::new(edge::problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("at most {MAX_BODY} bytes"),
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(edge::problem(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            e.to_string(),
        ))
    })
}

fn starter(caller: &Caller) -> Starter {
    Starter {
        account_id: caller.account_id.clone(),
        user_id: caller.user_id.clone(),
        account_name: caller.account_name.clone(),
    }
}

async fn dispatch(
    services: &Services,
    caller: &Caller,
    op: Op,
    params: &[(String, String)],
    request: &Request,
) -> HttpResponse {
    let account = &caller.account_id;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    match op {
        Op::Link | Op::SetLink | Op::ResyncLink => {
            let Some(kind) = links::kind(param("kind")) else {
                return edge::problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "kind is project, customer or contact",
                );
            };
            let Ok(board_id) = param("board_id").parse::<u64>() else {
                return edge::problem(StatusCode::NOT_FOUND, "not_found", "no such link");
            };
            let result = match op {
                Op::Link => links::get(services, account, kind, board_id).await,
                Op::ResyncLink => links::resync(services, account, kind, board_id).await,
                _ => {
                    let enabled = match body::<api::SetLinkBody>(request) {
                        Ok(b) => b.sync_enabled,
                        Err(response) => return *response,
                    };
                    let staff = (caller.role == auth::Role::Staff).then_some(&caller.user_id);
                    links::set_enabled(services, account, staff, kind, board_id, enabled).await
                }
            };
            link_result(result, caller)
        }
        Op::RetryHistory => {
            let Ok(id) = HistoryId::new(param("id")) else {
                return edge::problem(StatusCode::NOT_FOUND, "not_found", "no such history entry");
            };
            link_result(
                links::retry(services, account, &id)
                    .await
                    .map(|()| api::Retried { retried: true }),
                caller,
            )
        }
        Op::ResyncAll => match services.connections.get_connection(account).await {
            Ok(Some(c)) if c.state == ConnectionState::Active => {
                match catch_up::request(services, account).await {
                    Ok(()) => edge::json(StatusCode::ACCEPTED, &api::Queued { queued: true }),
                    Err(e) => unavailable(e, caller),
                }
            }
            Ok(Some(c)) if c.state == ConnectionState::Suspended => {
                let entry = Code::IntegrationSuspended.entry();
                edge::problem(StatusCode::CONFLICT, entry.code, entry.message_ja)
            }
            Ok(_) => edge::problem(
                StatusCode::CONFLICT,
                "not_connected",
                "HubSpotと連携していません。",
            ),
            Err(e) => unavailable(e, caller),
        },
        Op::Drafts => {
            let state = match edge::query_param(request, "state") {
                None => DraftState::Open,
                Some(s) => match DraftState::parse(&s) {
                    Some(state) => state,
                    None => {
                        return invalid_query("state", "open, withdrawn, discarded or registered");
                    }
                },
            };
            let limit = match limit_param(request) {
                Ok(l) => l,
                Err(response) => return *response,
            };
            let cursor = edge::query_param(request, "cursor").map(Cursor);
            draft_result(
                drafts::list(services, account, state, limit, cursor.as_ref())
                    .await
                    .map(|page| api::DraftsPage {
                        items: page.items,
                        next_cursor: page.next.map(|c| c.0),
                    }),
                caller,
            )
        }
        Op::Draft => draft_result(drafts::show(services, account, param("id")).await, caller),
        Op::Redraft => draft_result(
            drafts::redraft(services, account, param("deal_id")).await,
            caller,
        ),
        Op::DiscardDraft => draft_result(
            drafts::discard(services, account, param("id")).await,
            caller,
        ),
        Op::RestoreDraft => draft_result(
            drafts::restore(services, account, param("id")).await,
            caller,
        ),
        Op::RegisterDraft => {
            let registration: Registration = match body(request) {
                Ok(b) => b,
                Err(response) => return *response,
            };
            let staff = caller.role == auth::Role::Staff;
            match register::register(
                services,
                account,
                &caller.user_id,
                staff,
                param("id"),
                registration,
            )
            .await
            {
                Ok(project_id) => edge::json(StatusCode::OK, &api::Registered { project_id }),
                Err(e) => register_error(e, caller),
            }
        }
        Op::History => {
            let filter = match history_filter(request) {
                Ok(f) => f,
                Err(response) => return *response,
            };
            let limit = match limit_param(request) {
                Ok(l) => l,
                Err(response) => return *response,
            };
            let cursor = edge::query_param(request, "cursor").map(Cursor);
            match history::list(services, account, &filter, limit, cursor.as_ref()).await {
                Ok(page) => edge::json(
                    StatusCode::OK,
                    &api::HistoryPage {
                        items: page.items,
                        next_cursor: page.next.map(|c| c.0),
                    },
                ),
                Err(board_hubspot::ports::StoreError::Limit(m)) => invalid_query("cursor", &m),
                Err(e) => unavailable(e, caller),
            }
        }
        Op::HistoryEntry => {
            let Ok(id) = HistoryId::new(param("id")) else {
                return edge::problem(StatusCode::NOT_FOUND, "not_found", "no such history entry");
            };
            match services.history.entry(account, &id).await {
                Ok(Some(entry)) => edge::json(StatusCode::OK, &history::view(entry)),
                Ok(None) => {
                    edge::problem(StatusCode::NOT_FOUND, "not_found", "no such history entry")
                }
                Err(e) => unavailable(e, caller),
            }
        }
        Op::HistorySummary => {
            let filter = match history_filter(request) {
                Ok(f) => f,
                Err(response) => return *response,
            };
            match history_tools::summary(services, account, filter).await {
                Ok(summary) => edge::json(StatusCode::OK, &summary),
                Err(e) => unavailable(e, caller),
            }
        }
        Op::HistoryExport => {
            if edge::query_param(request, "format").is_some_and(|f| f != "csv") {
                return invalid_query("format", "csv");
            }
            let filter = match history_filter(request) {
                Ok(f) => f,
                Err(response) => return *response,
            };
            match history_tools::csv(services, account, &filter).await {
                Ok((text, complete)) => csv_response(text, complete),
                Err(e) => unavailable(e, caller),
            }
        }
        Op::BulkRetry => {
            let request: api::BulkRetryBody = match body(request) {
                Ok(b) => b,
                Err(response) => return *response,
            };
            if request.ids.is_some()
                && (request.from.is_some() || request.to.is_some() || request.object_type.is_some())
            {
                return invalid_field("body", "from, to and object_type go with code");
            }
            let selection = match (request.ids, request.code) {
                (Some(ids), None) => {
                    if ids.is_empty() || ids.len() > history_tools::MAX_RETRY_IDS {
                        return invalid_field(
                            "ids",
                            &format!("1 to {} history ids", history_tools::MAX_RETRY_IDS),
                        );
                    }
                    let mut parsed = Vec::with_capacity(ids.len());
                    for id in ids {
                        match HistoryId::new(id.as_str()) {
                            Ok(id) => parsed.push(id),
                            Err(_) => {
                                return invalid_field("ids", &format!("{id} is not a history id"));
                            }
                        }
                    }
                    history_tools::Selection::Ids(parsed)
                }
                (None, Some(code)) => {
                    let Ok(code) = code.parse::<Code>() else {
                        return invalid_field("code", &format!("{code} is not a catalog code"));
                    };
                    let time = |raw: &Option<String>| {
                        raw.as_deref()
                            .map(|v| {
                                time::OffsetDateTime::parse(
                                    v,
                                    &time::format_description::well_known::Rfc3339,
                                )
                            })
                            .transpose()
                    };
                    let Ok(from) = time(&request.from) else {
                        return invalid_field("from", "an RFC 3339 time with offset");
                    };
                    let Ok(to) = time(&request.to) else {
                        return invalid_field("to", "an RFC 3339 time with offset");
                    };
                    history_tools::Selection::Code(
                        code,
                        history::Filter {
                            object_type: request.object_type,
                            from,
                            to,
                            ..history::Filter::default()
                        },
                    )
                }
                _ => return invalid_field("body", "either ids or code"),
            };
            match services.connections.get_connection(account).await {
                Ok(Some(c)) if c.state == ConnectionState::Active => {}
                Ok(Some(c)) if c.state == ConnectionState::Suspended => {
                    let entry = Code::IntegrationSuspended.entry();
                    return edge::problem(StatusCode::CONFLICT, entry.code, entry.message_ja);
                }
                Ok(_) => {
                    return edge::problem(
                        StatusCode::CONFLICT,
                        "not_connected",
                        "HubSpotと連携していません。",
                    );
                }
                Err(e) => return unavailable(e, caller),
            }
            match history_tools::queue_retries(services, account, selection).await {
                Ok(queued) => edge::json(StatusCode::ACCEPTED, &queued),
                Err(e) => unavailable(e, caller),
            }
        }
        Op::Budget => match budget_view::view(services, account).await {
            Ok(view) => edge::json(StatusCode::OK, &view),
            Err(e) => unavailable(e, caller),
        },
        Op::Preview => match body::<Value>(request) {
            Ok(b) => settings_result(
                board_hubspot::app::settings::preview::preview(services, account, &b).await,
                caller,
            ),
            Err(response) => *response,
        },
        Op::MatchingUndo => {
            let b: api::UndoBody = match body(request) {
                Ok(b) => b,
                Err(response) => return *response,
            };
            match matching::undo(services, account, &b.batch).await {
                Ok(done) => edge::json(StatusCode::OK, &done),
                Err(e) => matching_error(e, caller),
            }
        }
        Op::BackfillStart => {
            let b: api::BackfillBody = match body(request) {
                Ok(b) => b,
                Err(response) => return *response,
            };
            let since = match b.modified_since.as_deref().map(|v| {
                time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            }) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(_)) => {
                    return invalid_field("modified_since", "an RFC 3339 time with offset");
                }
            };
            match board_hubspot::app::backfill::start(services, account, b.mode, since).await {
                Ok(state) => edge::json(StatusCode::ACCEPTED, &state),
                Err(e) => matching_error(e, caller),
            }
        }
        Op::BackfillStatus => match board_hubspot::app::backfill::state(services, account).await {
            Ok(Some(state)) => edge::json(StatusCode::OK, &state),
            Ok(None) => edge::problem(StatusCode::NOT_FOUND, "not_found", "no backfill has run"),
            Err(e) => unavailable(e, caller),
        },
        Op::MatchingStart => match matching::start(services, account).await {
            Ok(state) => edge::json(StatusCode::ACCEPTED, &state),
            Err(e) => matching_error(e, caller),
        },
        Op::MatchingStatus => match matching::state(services, account).await {
            Ok(Some(state)) => edge::json(StatusCode::OK, &state),
            Ok(None) => edge::problem(StatusCode::NOT_FOUND, "not_found", "no matching has run"),
            Err(e) => unavailable(e, caller),
        },
        Op::MatchingProposals => {
            let group = match edge::query_param(request, "group").as_deref() {
                None => None,
                Some("sure") => Some(board_hubspot::domain::matching::Group::Sure),
                Some("ambiguous") => Some(board_hubspot::domain::matching::Group::Ambiguous),
                Some("none") => Some(board_hubspot::domain::matching::Group::None),
                Some(_) => return invalid_query("group", "sure, ambiguous or none"),
            };
            let kind = match edge::query_param(request, "kind").as_deref() {
                None => None,
                Some("customer") => Some(board_hubspot::domain::BoardObjectKind::Customer),
                Some("contact") => Some(board_hubspot::domain::BoardObjectKind::CustomerContact),
                Some(_) => return invalid_query("kind", "customer or contact"),
            };
            let limit = match limit_param(request) {
                Ok(l) => l,
                Err(response) => return *response,
            };
            let offset = match edge::query_param(request, "cursor") {
                None => 0,
                Some(c) => match c.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => return invalid_query("cursor", "the next_cursor given"),
                },
            };
            match matching::proposals(services, account).await {
                Ok((_, all)) => {
                    let matching: Vec<_> = all
                        .into_iter()
                        .map(|(_, p)| p)
                        .filter(|p| group.is_none_or(|g| p.matched.group == g))
                        .filter(|p| kind.is_none_or(|k| p.kind == k))
                        .collect();
                    let total = matching.len();
                    let items: Vec<api::ProposalView> = matching
                        .into_iter()
                        .skip(offset)
                        .take(limit)
                        .map(proposal_view)
                        .collect();
                    let next = offset + items.len();
                    edge::json(
                        StatusCode::OK,
                        &api::ProposalsPage {
                            items,
                            next_cursor: (next < total).then(|| next.to_string()),
                            total,
                        },
                    )
                }
                Err(e) => matching_error(e, caller),
            }
        }
        Op::MatchingApprove => {
            let b: api::ApproveBody = match body(request) {
                Ok(b) => b,
                Err(response) => return *response,
            };
            let approval = match (b.proposal_ids, b.group, b.choices) {
                (Some(ids), None, None) if !ids.is_empty() && ids.len() <= 5000 => {
                    matching::Approval::Ids(ids)
                }
                (None, Some(group), None) => matching::Approval::Group(group),
                (None, None, Some(choices)) if !choices.is_empty() && choices.len() <= 5000 => {
                    let mut parsed = Vec::with_capacity(choices.len());
                    for c in choices {
                        match c.hubspot_id.parse::<u64>() {
                            Ok(id) => parsed.push((c.proposal_id, id)),
                            Err(_) => {
                                return invalid_field("choices.hubspot_id", "a HubSpot id");
                            }
                        }
                    }
                    matching::Approval::Choices(parsed)
                }
                _ => {
                    return invalid_field(
                        "body",
                        "one of proposal_ids (1 to 5000), group, or choices (1 to 5000)",
                    );
                }
            };
            match matching::approve(services, account, approval).await {
                Ok(done) => edge::json(StatusCode::OK, &done),
                Err(e) => matching_error(e, caller),
            }
        }
        Op::Diagnosis => settings_result(
            diagnosis::deal(services, account, param("deal_id")).await,
            caller,
        ),
        Op::Pipelines => settings_result(settings::pipelines(services, account).await, caller),
        Op::SetStatusMapping => match body::<Value>(request) {
            Ok(b) => {
                match settings::set_status_mapping(services, account, param("pipeline_id"), &b)
                    .await
                {
                    Ok(_) => settings_result(settings::pipelines(services, account).await, caller),
                    Err(e) => settings_error(e, caller),
                }
            }
            Err(response) => *response,
        },
        Op::FilterRules => settings_result(
            settings::filter_rules(services, account)
                .await
                .map(|(rules, config_version)| api::FilterRulesView {
                    rules,
                    config_version,
                }),
            caller,
        ),
        Op::SetFilterRules => match body::<Value>(request) {
            Ok(b) => settings_result(
                async {
                    settings::set_filter_rules(services, account, &b).await?;
                    let (rules, config_version) = settings::filter_rules(services, account).await?;
                    Ok(api::FilterRulesView {
                        rules,
                        config_version,
                    })
                }
                .await,
                caller,
            ),
            Err(response) => *response,
        },
        Op::FilterOptions => {
            settings_result(settings::filter_options(services, account).await, caller)
        }
        Op::AccountLabel => settings_result(
            settings::account_label(services, account)
                .await
                .map(|(label, v)| label_view(label, v)),
            caller,
        ),
        Op::SetAccountLabel => match body::<Value>(request) {
            Ok(b) => settings_result(
                async {
                    settings::set_account_label(services, account, &b).await?;
                    let (label, v) = settings::account_label(services, account).await?;
                    Ok(label_view(label, v))
                }
                .await,
                caller,
            ),
            Err(response) => *response,
        },
        Op::OwnerMapping => {
            settings_result(settings::owner_mapping(services, account).await, caller)
        }
        Op::SetOwnerMapping => match body::<Value>(request) {
            Ok(b) => match settings::set_owner_mapping(services, account, &b).await {
                Ok(_) => settings_result(settings::owner_mapping(services, account).await, caller),
                Err(e) => settings_error(e, caller),
            },
            Err(response) => *response,
        },
        Op::Options => settings_result(
            settings::options(services, account)
                .await
                .map(|(o, v)| api::OptionsView::new(&o, v)),
            caller,
        ),
        Op::SetOptions => match body::<Value>(request) {
            Ok(b) => settings_result(
                async {
                    settings::set_options(services, account, &b).await?;
                    let (o, v) = settings::options(services, account).await?;
                    Ok(api::OptionsView::new(&o, v))
                }
                .await,
                caller,
            ),
            Err(response) => *response,
        },
        Op::ConnectionStatus => match connection_status::status(services, &caller.account_id).await
        {
            Ok(status) => edge::json(StatusCode::OK, &status),
            Err(e) => unavailable(e, caller),
        },
        Op::Authorize => match connect::authorize_url(services, &starter(caller)).await {
            Ok(authorize_url) => edge::json(StatusCode::OK, &api::AuthorizeUrl { authorize_url }),
            Err(e) => unavailable(e, caller),
        },
        Op::Confirm => {
            let body: api::ConfirmBody = match body(request) {
                Ok(b) => b,
                Err(response) => return *response,
            };
            match connect::confirm(
                services,
                &starter(caller),
                &body.confirmation,
                body.archive_previous_portal,
            )
            .await
            {
                Ok(_) => match connection_status::status(services, &caller.account_id).await {
                    Ok(status) => edge::json(StatusCode::OK, &status),
                    Err(e) => unavailable(e, caller),
                },
                Err(ConfirmError::Invalid) => {
                    let entry = Code::ConfirmationInvalid.entry();
                    edge::problem(StatusCode::BAD_REQUEST, entry.code, entry.message_ja)
                }
                Err(ConfirmError::PortalConflict(portal)) => {
                    let entry = Code::PortalConflict.entry();
                    edge::problem(
                        StatusCode::CONFLICT,
                        entry.code,
                        format!(
                            "{} (portal {portal}) {}",
                            entry.message_ja, entry.guidance_ja
                        ),
                    )
                }
                Err(ConfirmError::Store(e)) => unavailable(e, caller),
            }
        }
        Op::Disconnect => {
            let uninstall = edge::query_param(request, "uninstall").is_some_and(|v| v == "true");
            match disconnect::disconnect(services, &caller.account_id, uninstall).await {
                Ok(done) => edge::json(
                    StatusCode::OK,
                    &api::Disconnected {
                        state: if done.uninstalled {
                            "uninstalled"
                        } else {
                            "disconnected"
                        },
                        revoked: done.revoked,
                        uninstalled: done.uninstalled,
                    },
                ),
                Err(DisconnectError::NotConnected) => edge::problem(
                    StatusCode::NOT_FOUND,
                    "not_connected",
                    "this board account is not connected to HubSpot",
                ),
                Err(DisconnectError::PortalShared(accounts)) => edge::problem(
                    StatusCode::CONFLICT,
                    "portal_shared",
                    format!(
                        "他のboardアカウント({})がこのHubSpotアカウントを利用しているため、アプリをアンインストールできません。連携の解除のみ行えます。",
                        accounts
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Err(DisconnectError::UninstallFailed(reason)) => edge::problem(
                    StatusCode::BAD_GATEWAY,
                    "uninstall_failed",
                    format!("HubSpot did not uninstall the app: {reason}"),
                ),
                Err(DisconnectError::Store(e)) => unavailable(e, caller),
            }
        }
        Op::Notifications => match services
            .notifications
            .notifications(&caller.account_id, 50)
            .await
        {
            Ok(items) => edge::json(StatusCode::OK, &api::Notifications { items }),
            Err(e) => unavailable(e, caller),
        },
    }
}

fn proposal_view(p: matching::Proposal) -> api::ProposalView {
    api::ProposalView {
        id: p.id,
        group: p.matched.group,
        board: api::BoardSide {
            kind: p.kind.as_str(),
            id: p.matched.board_id,
            name: p.matched.board_name,
        },
        candidates: p
            .matched
            .candidates
            .into_iter()
            .map(|c| api::CandidateView {
                hubspot_id: c.hubspot_id.to_string(),
                name: c.name,
                confidence: c.confidence,
                reasons: c.reasons.iter().map(|r| r.words_ja().to_owned()).collect(),
                reason_codes: c.reasons,
                differs: c.differs,
            })
            .collect(),
        approved: p.approved.map(|h| h.to_string()),
    }
}

fn matching_error(error: MatchingError, caller: &Caller) -> HttpResponse {
    match error {
        MatchingError::NotConnected => edge::problem(
            StatusCode::CONFLICT,
            "not_connected",
            "HubSpotと連携していません。",
        ),
        MatchingError::Running => edge::problem(
            StatusCode::CONFLICT,
            "matching_running",
            "照合を実行中です。終わってからもう一度お試しください。",
        ),
        MatchingError::NotStarted => {
            edge::problem(StatusCode::NOT_FOUND, "not_found", "no matching has run")
        }
        MatchingError::Invalid(m) => edge::problem(StatusCode::CONFLICT, "matching_not_done", m),
        MatchingError::Store(e) => unavailable(e, caller),
    }
}

/// The CSV export: a download for Excel.
fn csv_response(text: String, complete: bool) -> HttpResponse {
    use lambda_http::http::header;
    lambda_http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"hubspot-history.csv\"",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-export-complete", if complete { "true" } else { "false" })
        .body(lambda_http::Body::from(text))
        .expect("static headers")
}

fn label_view(
    label: Option<board_hubspot::domain::AccountLabel>,
    config_version: u64,
) -> api::AccountLabelView {
    api::AccountLabelView {
        label: label.map(|l| l.as_str().to_owned()),
        config_version,
    }
}

fn settings_result<T: Serialize>(
    result: Result<T, SettingsError>,
    caller: &Caller,
) -> HttpResponse {
    match result {
        Ok(value) => edge::json(StatusCode::OK, &value),
        Err(e) => settings_error(e, caller),
    }
}

/// Settings failures as problems: what is wrong, and with which field.
fn settings_error(error: SettingsError, caller: &Caller) -> HttpResponse {
    match error {
        SettingsError::NotConnected => edge::problem(
            StatusCode::CONFLICT,
            "not_connected",
            "HubSpotと連携していません。先に連携を設定してください。",
        ),
        SettingsError::Suspended => {
            let entry = Code::IntegrationSuspended.entry();
            edge::problem(StatusCode::CONFLICT, entry.code, entry.message_ja)
        }
        SettingsError::Invalid { field, message } => invalid_field(&field, &message),
        SettingsError::NotFound(what) => edge::problem(StatusCode::NOT_FOUND, "not_found", what),
        SettingsError::HubSpot(HubSpotError::Forbidden(m)) => {
            let entry = Code::HubspotScopeInsufficient.entry();
            edge::problem(
                StatusCode::BAD_GATEWAY,
                entry.code,
                format!("{} {m}", entry.message_ja),
            )
        }
        SettingsError::HubSpot(HubSpotError::Unauthorized(m)) => {
            let entry = Code::HubspotAuthInvalid.entry();
            edge::problem(
                StatusCode::BAD_GATEWAY,
                entry.code,
                format!("{} {m}", entry.message_ja),
            )
        }
        SettingsError::HubSpot(e) => {
            tracing::warn!(error = %e, account = %caller.account_id, "HubSpot call failed");
            let entry = Code::HubspotUnavailable.entry();
            edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                entry.code,
                entry.message_ja,
            )
        }
        SettingsError::Board(BoardError::Unauthorized(_)) => {
            let entry = Code::BoardAuthInvalid.entry();
            edge::problem(StatusCode::BAD_GATEWAY, entry.code, entry.message_ja)
        }
        SettingsError::Board(e) => {
            tracing::warn!(error = %e, account = %caller.account_id, "board call failed");
            let entry = Code::BoardUnavailable.entry();
            edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                entry.code,
                entry.message_ja,
            )
        }
        SettingsError::Store(e) => unavailable(e, caller),
    }
}

fn invalid_query(field: &str, message: &str) -> HttpResponse {
    invalid_field(field, message)
}

/// 400 naming the body field or query parameter at fault.
fn invalid_field(field: &str, message: &str) -> HttpResponse {
    let mut problem = Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_field",
        format!("{field}: {message}"),
    );
    problem.field = Some(field.to_owned());
    problem.response()
}

fn limit_param(request: &Request) -> Result<usize, Box<HttpResponse>> {
    match edge::query_param(request, "limit") {
        None => Ok(50),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=200).contains(&n) => Ok(n),
            _ => Err(Box::new(invalid_query("limit", "1 to 200"))),
        },
    }
}

fn history_filter(request: &Request) -> Result<history::Filter, Box<HttpResponse>> {
    let time = |name: &str| -> Result<Option<time::OffsetDateTime>, Box<HttpResponse>> {
        edge::query_param(request, name)
            .map(|v| {
                time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| Box::new(invalid_query(name, "an RFC 3339 time with offset")))
            })
            .transpose()
    };
    let status = match edge::query_param(request, "status").as_deref() {
        None => None,
        Some("success") => Some(Status::Success),
        Some("skip") => Some(Status::Skip),
        Some("error") => Some(Status::Error),
        Some(_) => return Err(Box::new(invalid_query("status", "success, skip or error"))),
    };
    let direction = match edge::query_param(request, "direction").as_deref() {
        None => None,
        Some("hubspot_to_board") => Some(Direction::HubspotToBoard),
        Some("board_to_hubspot") => Some(Direction::BoardToHubspot),
        Some(_) => {
            return Err(Box::new(invalid_query(
                "direction",
                "hubspot_to_board or board_to_hubspot",
            )));
        }
    };
    let code = match edge::query_param(request, "code") {
        None => None,
        Some(raw) => match raw.parse::<Code>() {
            Ok(code) => Some(code),
            Err(_) => return Err(Box::new(invalid_query("code", "a catalog code"))),
        },
    };
    Ok(history::Filter {
        status,
        direction,
        code,
        object_type: edge::query_param(request, "object_type"),
        q: edge::query_param(request, "q").filter(|q| !q.trim().is_empty()),
        from: time("from")?,
        to: time("to")?,
    })
}

fn draft_result<T: Serialize>(result: Result<T, DraftError>, caller: &Caller) -> HttpResponse {
    match result {
        Ok(value) => edge::json(StatusCode::OK, &value),
        Err(DraftError::NotConnected) => edge::problem(
            StatusCode::CONFLICT,
            "not_connected",
            "HubSpotと連携していません。",
        ),
        Err(DraftError::NotFound(id)) => {
            edge::problem(StatusCode::NOT_FOUND, "not_found", format!("no draft {id}"))
        }
        Err(DraftError::Conflict(reason)) => {
            edge::problem(StatusCode::CONFLICT, "draft_conflict", reason)
        }
        Err(DraftError::Unavailable(m)) => {
            tracing::warn!(error = %m, account = %caller.account_id, "HubSpot unavailable");
            let entry = Code::HubspotUnavailable.entry();
            edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                entry.code,
                entry.message_ja,
            )
        }
        // A cursor that is not one of ours (the store cannot decode it).
        Err(DraftError::Store(board_hubspot::ports::StoreError::Limit(m))) => {
            invalid_query("cursor", &m)
        }
        Err(DraftError::Store(e)) => unavailable(e, caller),
    }
}

fn register_error(error: RegisterError, caller: &Caller) -> HttpResponse {
    match error {
        RegisterError::NotConnected => edge::problem(
            StatusCode::CONFLICT,
            "not_connected",
            "HubSpotと連携していません。",
        ),
        RegisterError::NotFound(id) => {
            edge::problem(StatusCode::NOT_FOUND, "not_found", format!("no draft {id}"))
        }
        RegisterError::Invalid { field, message } => invalid_field(&field, &message),
        RegisterError::Forbidden(message) => {
            edge::problem(StatusCode::FORBIDDEN, "forbidden", message)
        }
        RegisterError::NotQualifying(reason) => {
            edge::problem(StatusCode::CONFLICT, "draft_not_qualifying", reason)
        }
        RegisterError::Conflict(reason) => {
            edge::problem(StatusCode::CONFLICT, "draft_conflict", reason)
        }
        RegisterError::Board { message, fields } => {
            let entry = Code::BoardApiError.entry();
            let mut problem = Problem::new(
                StatusCode::BAD_REQUEST,
                entry.code,
                format!("{} {message}", entry.message_ja),
            );
            problem.board_message = Some(message);
            problem.errors = Some(fields.into_iter().map(|(k, v)| (k, json!(v))).collect());
            problem.response()
        }
        RegisterError::Unavailable(m) => {
            tracing::warn!(error = %m, account = %caller.account_id, "registration failed");
            edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "HubSpotまたはboardが一時的に利用できません。もう一度お試しください",
            )
        }
        RegisterError::Store(e) => unavailable(e, caller),
    }
}

fn link_result<T: Serialize>(result: Result<T, LinkError>, caller: &Caller) -> HttpResponse {
    match result {
        Ok(value) => edge::json(StatusCode::OK, &value),
        Err(LinkError::NotConnected) => edge::problem(
            StatusCode::CONFLICT,
            "not_connected",
            "HubSpotと連携していません。",
        ),
        Err(LinkError::NotFound) => {
            edge::problem(StatusCode::NOT_FOUND, "not_found", "no such link or entry")
        }
        Err(LinkError::Forbidden(m)) => edge::problem(StatusCode::FORBIDDEN, "forbidden", m),
        Err(LinkError::Conflict(m)) => edge::problem(StatusCode::CONFLICT, "conflict", m),
        Err(LinkError::Unavailable(m)) => {
            tracing::warn!(error = %m, account = %caller.account_id, "resync failed");
            edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "HubSpotまたはboardが一時的に利用できません。もう一度お試しください",
            )
        }
        Err(LinkError::Store(e)) => unavailable(e, caller),
    }
}
