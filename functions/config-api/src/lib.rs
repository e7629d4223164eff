//! The config and business API (`/v1/...`) and its OpenAPI document.

pub mod auth;
pub mod routes;

use board_hubspot::app::{Services, connection_status};
use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Request;
use lambda_http::http::StatusCode;

use auth::{AuthError, Caller, Verifier};
use routes::Op;

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
    let verifier = Verifier::from_settings(&services.settings);
    let caller = match verifier.verify(edge::header(request.headers(), "authorization")) {
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
    Ok(dispatch(services, &caller, route.op).await)
}

fn unauthorized(error: &AuthError) -> HttpResponse {
    let code = match error {
        AuthError::Missing => "missing_token",
        AuthError::Invalid(_) | AuthError::MissingPermissions => "invalid_token",
    };
    edge::problem(StatusCode::UNAUTHORIZED, code, error.to_string())
}

async fn dispatch(services: &Services, caller: &Caller, op: Op) -> HttpResponse {
    let result = match op {
        Op::ConnectionStatus => connection_status::status(services, &caller.account_id)
            .await
            .map(|status| edge::json(StatusCode::OK, &status)),
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, account = %caller.account_id, "store unavailable");
        edge::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "try again shortly",
        )
    })
}
