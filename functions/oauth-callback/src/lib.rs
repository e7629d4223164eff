//! `GET /oauth/callback`: where HubSpot sends the admin's browser after consent.
//! Every outcome is a redirect to board's settings screen, never a bare error.

use board_hubspot::app::Services;
use board_hubspot::domain::Code;
use board_hubspot::edge::{self, HttpResponse};
use board_hubspot::ports::OneTimeKind;
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
    // The state is single-use whatever happens next: take it first.
    let payload = if state.is_empty() {
        None
    } else {
        match services
            .one_time_tokens
            .take_token(OneTimeKind::OAuthState, &state, services.clock.now())
            .await
        {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "state store unavailable");
                return Ok(failure(services, Code::OauthExchangeFailed));
            }
        }
    };
    if payload.is_none() {
        return Ok(failure(services, Code::OauthStateInvalid));
    }
    if edge::query_param(&request, "error").is_some() {
        return Ok(failure(services, Code::OauthDenied));
    }
    if edge::query_param(&request, "code").is_none_or(|c| c.is_empty()) {
        return Ok(failure(services, Code::OauthExchangeFailed));
    }
    tracing::error!("no HubSpot OAuth client is wired into this build");
    Ok(failure(services, Code::OauthExchangeFailed))
}
