//! `POST /hubspot/webhooks`: HubSpot's webhook deliveries.

use board_hubspot::app::Services;
use board_hubspot::app::webhook::{self, SignatureHeaders, WebhookError};
use board_hubspot::domain::signature::SignedRequest;
use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Request;
use lambda_http::http::{Method, StatusCode};

pub async fn handle(
    services: &Services,
    request: Request,
) -> Result<HttpResponse, lambda_http::Error> {
    if request.method() != Method::POST {
        return Ok(edge::problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
        ));
    }
    let headers = request.headers();
    let signature = SignatureHeaders {
        v3: edge::header(headers, "x-hubspot-signature-v3"),
        timestamp: edge::header(headers, "x-hubspot-request-timestamp"),
        v1: edge::header(headers, "x-hubspot-signature"),
        version: edge::header(headers, "x-hubspot-signature-version"),
    };
    let uri = edge::public_uri(&services.settings.public_base_url, &request);
    let signed = SignedRequest {
        method: "POST",
        uri: &uri,
        body: edge::body_bytes(&request),
    };
    Ok(
        match webhook::receive(services, &signature, &signed).await {
            Ok(received) => edge::json(StatusCode::OK, &received),
            Err(WebhookError::Unauthorized(reason)) => {
                tracing::warn!(%reason, "webhook signature rejected");
                edge::problem(
                    StatusCode::UNAUTHORIZED,
                    "invalid_signature",
                    reason.to_string(),
                )
            }
            Err(WebhookError::TooLarge(bytes)) => edge::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "{bytes} bytes; the limit is {}",
                    services.settings.max_webhook_bytes
                ),
            ),
            Err(WebhookError::Malformed(reason)) => {
                edge::problem(StatusCode::BAD_REQUEST, "malformed_body", reason)
            }
            Err(WebhookError::Unavailable(_)) => edge::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "events not accepted; retry",
            ),
        },
    )
}
