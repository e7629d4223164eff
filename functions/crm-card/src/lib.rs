//! `GET /hubspot/card`: the data behind the deal record's app card, requested by
//! the card's `hubspot.fetch` and signed by HubSpot (v3); `POST
//! /hubspot/card/resync` runs 「今すぐ同期」 for one board account.

use board_hubspot::app::card::{self, Locale};
use board_hubspot::app::{Services, links};
use board_hubspot::domain::signature::{SignedRequest, verify_v3};
use board_hubspot::domain::{AccountId, DealId, HubSpotObjectType, HubSpotRef, PortalId};
use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Request;
use lambda_http::http::{Method, StatusCode};

pub async fn handle(
    services: &Services,
    request: Request,
) -> Result<HttpResponse, lambda_http::Error> {
    let resync = request.uri().path().ends_with("/resync");
    let expected = if resync { Method::POST } else { Method::GET };
    if request.method() != expected {
        return Ok(edge::problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("use {expected}"),
        ));
    }
    let uri = edge::public_uri(&services.settings.public_base_url, &request);
    let signed = SignedRequest {
        method: expected.as_str(),
        uri: &uri,
        body: edge::body_bytes(&request),
    };
    let headers = request.headers();
    let now_ms = services.now_ms();
    if let Err(reason) = services.settings.verify_signed(|secret| {
        verify_v3(
            secret,
            &signed,
            edge::header(headers, "x-hubspot-signature-v3"),
            edge::header(headers, "x-hubspot-request-timestamp"),
            now_ms,
        )
    }) {
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
    let locale = Locale::parse(edge::query_param(&request, "locale").as_deref());
    if resync {
        let Some(account) =
            edge::query_param(&request, "accountId").and_then(|a| AccountId::new(a).ok())
        else {
            return Ok(edge::problem(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "accountId is required",
            ));
        };
        // Only a board account connected to this very portal can be resynced from its card.
        let connection = match services.connections.get_connection(&account).await {
            Ok(Some(c)) if c.portal_id == portal && c.tokens.is_some() => c,
            Ok(_) => {
                return Ok(edge::problem(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such board account on this portal",
                ));
            }
            Err(e) => return Ok(unavailable(e)),
        };
        let object = HubSpotRef {
            object_type: HubSpotObjectType::Deal,
            id: deal.get(),
        };
        // `hubspot.fetch` retries a 5xx once by itself, and people double-click:
        // one resync per account and deal in any RESYNC_WINDOW; a repeat only
        // reads the card (HubSpot's "Fetching data" guide on the retry).
        if already_resynced(services, &account, deal).await {
            tracing::info!(account = %account, deal = %deal, "resync ran moments ago; card only");
        } else if let Err(e) =
            links::resync_object(services, &connection, object, "card_resync").await
        {
            tracing::warn!(error = %e, account = %account, "card resync failed");
            return Ok(edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "今すぐ同期できませんでした。しばらくしてから再度お試しください",
            ));
        }
    }
    Ok(match card::card(services, portal, deal, locale).await {
        Ok(card) => edge::json(StatusCode::OK, &card),
        Err(e) => unavailable(e),
    })
}

/// How long a card resync of one deal and account stands for the next.
pub const RESYNC_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// True when the same resync ran within `RESYNC_WINDOW` (the shared rate
/// store keeps the times; if it is unreachable the resync runs).
async fn already_resynced(services: &Services, account: &AccountId, deal: DealId) -> bool {
    let bucket = format!("card-resync#{account}#{deal}");
    matches!(
        services
            .budget
            .take(&bucket, 1, RESYNC_WINDOW, 1, services.clock.now())
            .await,
        Ok(Some(_))
    )
}

fn unavailable(error: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(%error, "card data unavailable");
    edge::problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again")
}
