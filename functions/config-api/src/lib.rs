//! The config and business API (`/v1/...`) and its OpenAPI document.

pub mod auth;
pub mod routes;

use board_hubspot::app::connect::{self, ConfirmError, Starter};
use board_hubspot::app::disconnect::{self, DisconnectError};
use board_hubspot::app::{Services, connection_status};
use board_hubspot::domain::Code;
use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

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
        return Ok(edge::json(StatusCode::OK, &routes::openapi()));
    }
    let route = match routes::find(&method, &path) {
        Ok(found) => found.route,
        Err(routes::NoMatch::Method) => {
            return Ok(edge::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} {path}"),
            ));
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
    Ok(dispatch(services, &caller, route.op, &request).await)
}

fn unauthorized(error: &AuthError) -> HttpResponse {
    let code = match error {
        AuthError::Missing => "missing_token",
        AuthError::Invalid(_) | AuthError::MissingPermissions => "invalid_token",
    };
    edge::problem(StatusCode::UNAUTHORIZED, code, error.to_string())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    confirmation: String,
    #[serde(default)]
    archive_previous_portal: bool,
}

async fn dispatch(services: &Services, caller: &Caller, op: Op, request: &Request) -> HttpResponse {
    match op {
        Op::ConnectionStatus => match connection_status::status(services, &caller.account_id).await
        {
            Ok(status) => edge::json(StatusCode::OK, &status),
            Err(e) => unavailable(e, caller),
        },
        Op::Authorize => match connect::authorize_url(services, &starter(caller)).await {
            Ok(url) => edge::json(StatusCode::OK, &serde_json::json!({ "authorize_url": url })),
            Err(e) => unavailable(e, caller),
        },
        Op::Confirm => {
            let body: ConfirmBody = match body(request) {
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
                    &serde_json::json!({
                        "state": if done.uninstalled { "uninstalled" } else { "disconnected" },
                        "revoked": done.revoked,
                        "uninstalled": done.uninstalled,
                    }),
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
            Ok(items) => edge::json(StatusCode::OK, &serde_json::json!({ "items": items })),
            Err(e) => unavailable(e, caller),
        },
    }
}
