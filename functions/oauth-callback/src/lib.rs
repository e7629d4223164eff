//! `GET /oauth/callback`: where HubSpot sends the admin's browser after consent.
//! Every outcome is a redirect to board's settings screen, never a bare error.

use board_hubspot::app::Services;
use board_hubspot::app::connect::{self, CallbackOutcome};
use board_hubspot::domain::Code;
use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Request;
use lambda_http::http::{Method, StatusCode};

fn settings_redirect(services: &Services, outcome: &[(&str, &str)]) -> HttpResponse {
    let mut url = match url::Url::parse(&services.settings.board_settings_url) {
        Ok(url) => url,
        Err(_) => {
            return edge::problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "misconfigured",
                "BOARD_SETTINGS_URL is invalid",
            );
        }
    };
    url.query_pairs_mut().extend_pairs(outcome);
    edge::redirect(url.as_str())
}

fn failure(services: &Services, code: Code) -> HttpResponse {
    tracing::info!(code = %code, "OAuth flow ended with an error");
    settings_redirect(services, &[("hubspot", "error"), ("code", code.as_str())])
}

pub async fn handle(
    services: &Services,
    request: Request,
) -> Result<HttpResponse, lambda_http::Error> {
    if request.method() != Method::GET {
        return Ok(edge::problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        ));
    }
    let state = edge::query_param(&request, "state").unwrap_or_default();
    let code = edge::query_param(&request, "code");
    let error = edge::query_param(&request, "error");
    Ok(
        match connect::callback(services, &state, code.as_deref(), error.as_deref()).await {
            CallbackOutcome::Confirm { confirmation } => settings_redirect(
                services,
                &[("hubspot", "confirm"), ("confirmation", &confirmation)],
            ),
            CallbackOutcome::Failed(code) => failure(services, code),
        },
    )
}
