//! In front of every API route: the request log, injected faults, and HubSpot's
//! rate limits (110 per rolling 10 s per app per portal, search 5/s), with the
//! `X-HubSpot-RateLimit-*` headers on every response. Authentication and scopes
//! are checked by each handler through [`authorize`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use crate::HubSpotSandbox;
use crate::errors::{ApiError, ApiResult};
use crate::model::{LoggedRequest, TokenKind, now_ms};

const TEN_SECONDS: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Limiter {
    windows: HashMap<(u64, &'static str), VecDeque<Instant>>,
    search: HashMap<(u64, &'static str), VecDeque<Instant>>,
}

fn admit(
    window: &mut VecDeque<Instant>,
    span: Duration,
    max: usize,
    now: Instant,
) -> Result<usize, ()> {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= span)
    {
        window.pop_front();
    }
    if window.len() >= max {
        return Err(());
    }
    window.push_back(now);
    Ok(max - window.len())
}

/// Who is calling: resolved from the bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub portal: u64,
    pub kind: TokenKind,
    pub scopes: Vec<String>,
    pub user_id: u64,
}

impl Caller {
    pub fn change_source(&self) -> &'static str {
        match self.kind {
            TokenKind::App => "INTEGRATION",
            TokenKind::User => "CRM_UI",
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

fn resolve(sandbox: &HubSpotSandbox, token: &str) -> ApiResult<Caller> {
    let user_token = sandbox
        .inner
        .config
        .lock()
        .expect("config")
        .user_token
        .clone();
    let state = sandbox.inner.state.lock().expect("state");
    if let Some(portal) = crate::seeds::user_token_portal(&user_token, token)
        .filter(|portal| state.portals.contains_key(portal))
    {
        return Ok(Caller {
            portal,
            kind: TokenKind::User,
            scopes: Vec::new(),
            user_id: 5_000_001,
        });
    }
    let Some(grant) = state.access_tokens.get(token) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        ));
    };
    let expired_for = now_ms() - grant.expires_ms;
    if expired_for >= 0 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "EXPIRED_AUTHENTICATION",
            format!(
                "The OAuth token used to make this call expired {} second(s) ago.",
                expired_for / 1000
            ),
        ));
    }
    if grant.portal == 0 {
        // App-level (client credentials): no portal behind it.
        return Ok(Caller {
            portal: 0,
            kind: TokenKind::App,
            scopes: grant.scopes.clone(),
            user_id: 0,
        });
    }
    let installed = state
        .portals
        .get(&grant.portal)
        .is_some_and(|p| p.installed);
    let refresh_live = state
        .refresh_tokens
        .get(&grant.refresh_token)
        .is_some_and(|r| !r.revoked);
    if !installed || !refresh_live {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "The access token is no longer valid: the app was uninstalled or the grant revoked.",
        ));
    }
    Ok(Caller {
        portal: grant.portal,
        kind: TokenKind::App,
        scopes: grant.scopes.clone(),
        user_id: grant.user_id,
    })
}

/// Authenticates the request and checks that the token holds `scopes` (all of them).
/// The caller behind the request's bearer token (401 without one).
pub fn resolve_bearer(sandbox: &HubSpotSandbox, headers: &HeaderMap) -> ApiResult<Caller> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )
    })?;
    resolve(sandbox, token)
}

pub fn authorize(
    sandbox: &HubSpotSandbox,
    headers: &HeaderMap,
    scopes: &[&str],
) -> ApiResult<Caller> {
    let caller = resolve_bearer(sandbox, headers)?;
    if caller.portal == 0 && !scopes.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "MISSING_SCOPES",
            "An app-level token cannot access a portal's data.",
        ));
    }
    if caller.kind == TokenKind::App && caller.portal != 0 {
        let missing: Vec<&str> = scopes
            .iter()
            .copied()
            .filter(|s| !caller.scopes.iter().any(|g| g == s))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call.",
            )
            .with_errors(vec![json!({"message": format!("One or more of the following scopes are required: {missing:?}"),
                                     "context": {"requiredGranularScopes": missing}})]));
        }
    }
    Ok(caller)
}

fn token_key(sandbox: &HubSpotSandbox, headers: &HeaderMap) -> Option<(u64, &'static str)> {
    let token = bearer(headers)?;
    let caller = resolve(sandbox, token).ok()?;
    Some((
        caller.portal,
        if caller.kind == TokenKind::App {
            "app"
        } else {
            "user"
        },
    ))
}

fn rate_limited(policy: &str, interval_ms: u64, max: usize) -> Response {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITS",
        format!(
            "You have reached your {} limit.",
            policy.to_ascii_lowercase()
        ),
    );
    error.extra = Some(
        json!({"errorType": "RATE_LIMIT", "policyName": policy, "groupName": "publicapi:app"}),
    );
    let mut response = error.into_response();
    let headers = response.headers_mut();
    headers.insert(
        "X-HubSpot-RateLimit-Interval-Milliseconds",
        HeaderValue::from(interval_ms),
    );
    headers.insert("X-HubSpot-RateLimit-Max", HeaderValue::from(max as u64));
    headers.insert("X-HubSpot-RateLimit-Remaining", HeaderValue::from(0u64));
    // No `Retry-After`: HubSpot does not promise one (usage guidelines,
    // https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
    response
}

fn count_inputs(body: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("inputs").and_then(|i| i.as_array()).map(Vec::len))
        .unwrap_or(0)
}

pub async fn gate(State(sandbox): State<HubSpotSandbox>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError::validation("request body too large").into_response();
    };
    let path = parts.uri.path().to_owned();
    let key = token_key(&sandbox, &parts.headers);
    let mut entry = LoggedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        at_ms: now_ms(),
        token: key.map(|(_, k)| k).unwrap_or("none"),
        portal: key.map(|(p, _)| p),
        status: 0,
        inputs: count_inputs(&bytes),
    };

    let response = match control::injected_fault(&sandbox, &path).await {
        Some(fault) => fault,
        None => {
            let (max, search_max) = {
                let config = sandbox.inner.config.lock().expect("config");
                (config.limit_per_ten_seconds, config.search_per_second)
            };
            let admitted = key.map(|key| {
                let mut limits = sandbox.inner.limits.lock().expect("limits");
                let now = Instant::now();
                if path.ends_with("/search") {
                    let search = limits.search.entry(key).or_default();
                    if admit(search, ONE_SECOND, search_max, now).is_err() {
                        return Err(rate_limited("SECONDLY", 1000, search_max));
                    }
                }
                admit(
                    limits.windows.entry(key).or_default(),
                    TEN_SECONDS,
                    max,
                    now,
                )
                .map_err(|_| rate_limited("TEN_SECONDLY_ROLLING", 10_000, max))
            });
            match admitted {
                Some(Err(limited)) => limited,
                other => {
                    let remaining = other.and_then(Result::ok);
                    let request = Request::from_parts(parts, Body::from(bytes));
                    let mut response = next.run(request).await;
                    if let Some(lost) = control::lost_answer(&sandbox, &path).await {
                        response = lost;
                    }
                    if let Some(remaining) = remaining {
                        let headers = response.headers_mut();
                        headers.insert(
                            "X-HubSpot-RateLimit-Interval-Milliseconds",
                            HeaderValue::from(10_000u64),
                        );
                        headers.insert("X-HubSpot-RateLimit-Max", HeaderValue::from(max as u64));
                        headers.insert(
                            "X-HubSpot-RateLimit-Remaining",
                            HeaderValue::from(remaining as u64),
                        );
                    }
                    response
                }
            }
        }
    };
    entry.status = response.status().as_u16();
    sandbox
        .inner
        .state
        .lock()
        .expect("state")
        .requests
        .push(entry);
    response
}

use crate::control;
