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
    // HubSpot's proxy appends the caller's identity to the card's own query
    // and signs it all; the card's code builds the rest in the user's browser.
    // A second value of an identity parameter can only come from that code:
    // refuse, so identity is only ever what HubSpot appended.
    if let Some(name) = IDENTITY_PARAMETERS.iter().find(|name| {
        edge::query_pairs(&request)
            .iter()
            .filter(|(k, _)| k == *name)
            .count()
            > 1
    }) {
        tracing::warn!(parameter = name, "card request names an identity twice");
        return Ok(edge::problem(
            StatusCode::BAD_REQUEST,
            "ambiguous_identity",
            format!("{name} appears more than once"),
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
        // One board account (`boardAccountId`, the section's button) or, when
        // none is named, every board account connected to this very portal.
        let connections = match edge::query_param(&request, "boardAccountId") {
            Some(raw) => {
                let Ok(account) = AccountId::new(raw) else {
                    return Ok(edge::problem(
                        StatusCode::BAD_REQUEST,
                        "invalid_query",
                        "boardAccountId is not a board account id",
                    ));
                };
                match services.connections.get_connection(&account).await {
                    Ok(Some(c)) if c.portal_id == portal && c.tokens.is_some() => vec![c],
                    Ok(_) => {
                        return Ok(edge::problem(
                            StatusCode::NOT_FOUND,
                            "not_found",
                            "no such board account on this portal",
                        ));
                    }
                    Err(e) => return Ok(unavailable(e)),
                }
            }
            None => match services.connections.connections_of_portal(portal).await {
                Ok(all) => all.into_iter().filter(|c| c.tokens.is_some()).collect(),
                Err(e) => return Ok(unavailable(e)),
            },
        };
        let object = HubSpotRef {
            object_type: HubSpotObjectType::Deal,
            id: deal.get(),
        };
        for connection in connections {
            let account = connection.account_id.clone();
            // `hubspot.fetch` retries a 5xx once by itself, and people
            // double-click: one resync per account and deal in any
            // RESYNC_WINDOW; a repeat only reads the card (HubSpot's
            // "Fetching data" guide on the retry).
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
    }
    Ok(match card::card(services, portal, deal, locale).await {
        Ok(card) => edge::json(StatusCode::OK, &card),
        Err(e) => unavailable(e),
    })
}

/// The query parameters HubSpot appends to a `hubspot.fetch` request.
const IDENTITY_PARAMETERS: [&str; 4] = ["portalId", "userId", "appId", "accountId"];

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
