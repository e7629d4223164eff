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

/// An RFC 9457 problem with a stable `code`.
pub fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> HttpResponse {
    let body = serde_json::json!({
        "type": format!("urn:board-hubspot:problem:{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail.into(),
    });
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/problem+json")
        .header(CACHE_CONTROL, "no-store")
        .body(Body::from(
            serde_json::to_vec(&body).expect("problem serializes"),
        ))
        .expect("valid response")
}

/// A problem with extra members (e.g. the `field` a validation error names).
pub fn problem_with(
    status: StatusCode,
    code: &str,
    detail: impl Into<String>,
    extra: serde_json::Value,
) -> HttpResponse {
    let mut response = problem(status, code, detail);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_ref()).expect("our own JSON");
    let mut body = body;
    if let (Some(target), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        target.extend(extra);
    }
    *response.body_mut() = lambda_http::Body::from(serde_json::to_vec(&body).expect("serializes"));
    response
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
