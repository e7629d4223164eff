//! `GET /hubspot/card`: the data behind the deal record's app card, requested by
//! the card's `hubspot.fetch` and signed by HubSpot (v3).

use board_hubspot::app::{Services, card};
use board_hubspot::domain::signature::{SignedRequest, verify_v3};
use board_hubspot::domain::{DealId, PortalId};
use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Request;
use lambda_http::http::{Method, StatusCode};

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
    let uri = edge::public_uri(&services.settings.public_base_url, &request);
    let signed = SignedRequest {
        method: "GET",
        uri: &uri,
        body: edge::body_bytes(&request),
    };
    let headers = request.headers();
    if let Err(reason) = verify_v3(
        services.settings.client_secret_bytes(),
        &signed,
        edge::header(headers, "x-hubspot-signature-v3"),
        edge::header(headers, "x-hubspot-request-timestamp"),
        services.now_ms(),
    ) {
        tracing::warn!(%reason, "card request signature rejected");
        return Ok(edge::problem(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            reason.to_string(),
        ));
    }
    let portal = edge::query_param(&request, "portalId").and_then(|p| p.parse::<PortalId>().ok());
    let deal = edge::query_param(&request, "objectId").and_then(|d| d.parse::<DealId>().ok());
    let (Some(portal), Some(deal)) = (portal, deal) else {
        return Ok(edge::problem(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "portalId and objectId are required",
        ));
    };
    Ok(match card::card(services, portal, deal).await {
        Ok(card) => edge::json(StatusCode::OK, &card),
        Err(e) => {
            tracing::error!(error = %e, "card data unavailable");
            edge::problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again")
        }
    })
}
