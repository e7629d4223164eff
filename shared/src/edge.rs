//! The HTTP edge shared by the HTTP functions: reading requests and writing
//! JSON, `application/problem+json` and redirects, on `lambda_http`'s types so
//! the same handler runs in Lambda and in the local stack.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

pub type HttpResponse = Response<Body>;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    let body = serde_json::to_vec(value).expect("responses serialize");
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("valid response")
}

/// An RFC 9457 problem with a stable `code`: the body of every 4xx and 5xx the
/// HTTP functions answer (`application/problem+json`).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:board-hubspot:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// The stable code clients switch on (a catalog code, `invalid_field`, `not_connected`, …).
    pub code: String,
    pub detail: String,
    /// The body field or query parameter at fault (`invalid_field`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub field: Option<String>,
    /// board's own message, when board refused a registration (`board_api_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub board_message: Option<String>,
    /// board's errors per field, when board refused a registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub errors: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:board-hubspot:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail: detail.into(),
            field: None,
            board_message: None,
            errors: None,
        }
    }

    pub fn response(&self) -> HttpResponse {
        Response::builder()
            .status(self.status)
            .header(CONTENT_TYPE, "application/problem+json")
            .header(CACHE_CONTROL, "no-store")
            .body(Body::from(
                serde_json::to_vec(self).expect("problem serializes"),
            ))
            .expect("valid response")
    }
}

pub fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> HttpResponse {
    Problem::new(status, code, detail).response()
}

pub fn redirect(location: &str) -> HttpResponse {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(LOCATION, location)
        .header(CACHE_CONTROL, "no-store")
        .body(Body::Empty)
        .expect("valid response")
}

pub fn empty(status: StatusCode) -> HttpResponse {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .expect("valid response")
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request's query parameters, decoded, in order.
pub fn query_pairs(request: &Request) -> Vec<(String, String)> {
    request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

pub fn query_param(request: &Request, name: &str) -> Option<String> {
    query_pairs(request)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The URI HubSpot called, as it signs it: our public base, the path, the raw query.
pub fn public_uri(public_base_url: &str, request: &Request) -> String {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    format!("{public_base_url}{path_and_query}")
}

pub fn body_bytes(request: &Request) -> &[u8] {
    request.body().as_ref()
}
