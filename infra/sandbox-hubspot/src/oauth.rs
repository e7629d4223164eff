//! OAuth as HubSpot does it: the consent page (「アプリを接続」), the `2026-03`
//! token endpoint (authorization_code, refresh_token), introspection, revocation,
//! and uninstalling the app from a portal.

use std::collections::HashMap;

use axum::Form;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use crate::HubSpotSandbox;
use crate::errors::ApiResult;
use crate::gate::authorize;
use crate::model::{AccessToken, AuthCode, RefreshGrant, now_ms};
use crate::seeds::PORTAL_ID;

pub const ACCESS_TOKEN_SECONDS: i64 = 1800;
const CODE_SECONDS: i64 = 600;

fn new_token(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn oauth_error(status: &str, error: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "status": status,
            "message": message,
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "error": error,
            "error_description": message,
        })),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn scopes_of(params: &HashMap<String, String>, name: &str) -> Vec<String> {
    params
        .get(name)
        .map(|s| {
            s.split([' ', '+', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub async fn consent_page(
    State(sandbox): State<HubSpotSandbox>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let client_id = sandbox
        .inner
        .config
        .lock()
        .expect("config")
        .client_id
        .clone();
    if params.get("client_id") != Some(&client_id) {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Authorization failed</h1><p>Unknown client_id.</p>".to_owned()),
        )
            .into_response();
    }
    if params.get("redirect_uri").is_none_or(|r| r.is_empty()) {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Authorization failed</h1><p>redirect_uri is required.</p>".to_owned()),
        )
            .into_response();
    }
    let (domain, portal) = {
        let state = sandbox.inner.state.lock().expect("state");
        let portal = &state.portals[&PORTAL_ID];
        (portal.domain.clone(), portal.id)
    };
    let scopes: String = scopes_of(&params, "scope")
        .iter()
        .chain(scopes_of(&params, "optional_scope").iter())
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    Html(format!(
        r#"<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>HubSpot — アプリを接続</title></head>
<body>
<h1>アプリを接続</h1>
<p>アカウント: <strong>{domain}</strong> (ID <span id="portal-id">{portal}</span>)</p>
<p>このアプリは次の権限を求めています:</p>
<ul id="scopes">{scopes}</ul>
<form method="post">
  <button type="submit" name="decision" value="approve">アプリを接続</button>
  <button type="submit" name="decision" value="deny">キャンセル</button>
</form>
</body></html>"#
    ))
    .into_response()
}

/// `decision=approve|deny`; optional `scopes` grants fewer than requested (a
/// portal whose plan or user lacks one), as HubSpot may.
pub async fn consent_decision(
    State(sandbox): State<HubSpotSandbox>,
    Query(params): Query<HashMap<String, String>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(redirect_uri) = params.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let state_param = params.get("state").cloned();
    match form.get("decision").map(String::as_str) {
        Some("approve") => {
            let mut scopes = scopes_of(&params, "scope");
            scopes.extend(scopes_of(&params, "optional_scope"));
            if form.contains_key("scopes") {
                scopes = scopes_of(&form, "scopes");
            }
            // The admin may pick another of their HubSpot accounts, as HubSpot's account selector allows.
            let portal_id = form
                .get("portal")
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(PORTAL_ID);
            if !sandbox
                .inner
                .state
                .lock()
                .expect("state")
                .portals
                .contains_key(&portal_id)
            {
                return (StatusCode::BAD_REQUEST, "unknown portal").into_response();
            }
            let code = new_token("sbx-code");
            let app_id = sandbox.inner.config.lock().expect("config").app_id;
            {
                let mut state = sandbox.inner.state.lock().expect("state");
                state.codes.insert(
                    code.clone(),
                    AuthCode {
                        portal: portal_id,
                        scopes,
                        redirect_uri: redirect_uri.clone(),
                        used: false,
                        expires_ms: now_ms() + CODE_SECONDS * 1000,
                    },
                );
                let portal = state.portals.get_mut(&portal_id).expect("checked above");
                if !portal.installed {
                    portal.installed = true;
                    crate::journal::record_lifecycle(&mut state, app_id, portal_id, "APP_INSTALL");
                }
            }
            target.query_pairs_mut().append_pair("code", &code);
            if let Some(s) = &state_param {
                target.query_pairs_mut().append_pair("state", s);
            }
        }
        Some("deny") => {
            target
                .query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "The user denied access to the app.");
            if let Some(s) = &state_param {
                target.query_pairs_mut().append_pair("state", s);
            }
        }
        _ => return (StatusCode::BAD_REQUEST, "decision must be approve or deny").into_response(),
    }
    // HubSpot answers the consent form with a 302.
    (
        StatusCode::FOUND,
        [(axum::http::header::LOCATION, target.as_str().to_owned())],
    )
        .into_response()
}

fn client_ok(sandbox: &HubSpotSandbox, form: &HashMap<String, String>) -> Result<(), Response> {
    let config = sandbox.inner.config.lock().expect("config");
    if form.get("client_id") != Some(&config.client_id) {
        return Err(oauth_error(
            "BAD_CLIENT_ID",
            "invalid_client",
            "missing or invalid client_id",
        ));
    }
    if form.get("client_secret") != Some(&config.client_secret) {
        return Err(oauth_error(
            "BAD_CLIENT_SECRET",
            "invalid_client",
            "missing or invalid client_secret",
        ));
    }
    Ok(())
}

fn issue(
    sandbox: &HubSpotSandbox,
    portal: u64,
    scopes: Vec<String>,
    user_id: u64,
    email: String,
    refresh: String,
) -> Value {
    let access = new_token("sbx-at");
    let mut state = sandbox.inner.state.lock().expect("state");
    state.access_tokens.insert(
        access.clone(),
        AccessToken {
            portal,
            scopes: scopes.clone(),
            user_id,
            user_email: email,
            expires_ms: now_ms() + ACCESS_TOKEN_SECONDS * 1000,
            refresh_token: refresh.clone(),
        },
    );
    // `token_use` is always present in the token response (the refresh-token
    // reference page,
    // https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/refresh-oauth-token).
    json!({
        "token_use": "access_token",
        "token_type": "bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": ACCESS_TOKEN_SECONDS,
        "hub_id": portal,
        "user_id": user_id,
        "scopes": scopes,
    })
}

pub async fn token(
    State(sandbox): State<HubSpotSandbox>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(response) = client_ok(&sandbox, &form) {
        return response;
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let granted = {
                let mut state = sandbox.inner.state.lock().expect("state");
                let grant = match state.codes.get_mut(&code) {
                    Some(g) if !g.used && g.expires_ms > now_ms() => g,
                    _ => {
                        return oauth_error(
                            "BAD_AUTH_CODE",
                            "invalid_grant",
                            "missing or unknown auth code",
                        );
                    }
                };
                if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                    return oauth_error(
                        "BAD_REDIRECT_URI",
                        "invalid_grant",
                        "redirect_uri does not match the authorization",
                    );
                }
                grant.used = true;
                let grant = grant.clone();
                let portal = state.portals[&grant.portal].clone();
                // One refresh token per app, portal and user, as HubSpot issues them.
                let existing = state
                    .refresh_tokens
                    .iter()
                    .find(|(_, r)| {
                        r.portal == grant.portal && r.user_id == portal.admin_user_id && !r.revoked
                    })
                    .map(|(t, _)| t.clone());
                let refresh = existing.unwrap_or_else(|| {
                    let t = new_token("sbx-rt");
                    state.refresh_tokens.insert(
                        t.clone(),
                        RefreshGrant {
                            portal: grant.portal,
                            scopes: grant.scopes.clone(),
                            user_id: portal.admin_user_id,
                            user_email: portal.admin_email.clone(),
                            revoked: false,
                        },
                    );
                    t
                });
                if let Some(r) = state.refresh_tokens.get_mut(&refresh) {
                    r.scopes = grant.scopes.clone();
                }
                (grant, portal, refresh)
            };
            let (grant, portal, refresh) = granted;
            Json(issue(
                &sandbox,
                grant.portal,
                grant.scopes,
                portal.admin_user_id,
                portal.admin_email,
                refresh,
            ))
            .into_response()
        }
        Some("refresh_token") => {
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            let grant = {
                let state = sandbox.inner.state.lock().expect("state");
                match state.refresh_tokens.get(&refresh) {
                    Some(r)
                        if !r.revoked
                            && state.portals.get(&r.portal).is_some_and(|p| p.installed) =>
                    {
                        r.clone()
                    }
                    _ => {
                        return oauth_error(
                            "BAD_REFRESH_TOKEN",
                            "invalid_grant",
                            "missing or unknown refresh token",
                        );
                    }
                }
            };
            Json(issue(
                &sandbox,
                grant.portal,
                grant.scopes,
                grant.user_id,
                grant.user_email,
                refresh,
            ))
            .into_response()
        }
        Some("client_credentials") => {
            // An app-level token (no portal, no refresh token) for app-wide APIs such as the journal.
            let access = new_token("sbx-app");
            let scopes: Vec<String> = scopes_of(&form, "scope");
            sandbox
                .inner
                .state
                .lock()
                .expect("state")
                .access_tokens
                .insert(
                    access.clone(),
                    AccessToken {
                        portal: 0,
                        scopes: scopes.clone(),
                        user_id: 0,
                        user_email: String::new(),
                        expires_ms: now_ms() + ACCESS_TOKEN_SECONDS * 1000,
                        refresh_token: String::new(),
                    },
                );
            Json(json!({"token_use": "access_token", "token_type": "bearer", "access_token": access, "expires_in": ACCESS_TOKEN_SECONDS, "scopes": scopes}))
                .into_response()
        }
        _ => oauth_error(
            "BAD_GRANT_TYPE",
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        ),
    }
}

/// Guessed where the documentation shows only `active`: the metadata fields are
/// those of HubSpot's access-token metadata endpoint.
pub async fn introspect(
    State(sandbox): State<HubSpotSandbox>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(response) = client_ok(&sandbox, &form) {
        return response;
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let (client_id, app_id) = {
        let config = sandbox.inner.config.lock().expect("config");
        (config.client_id.clone(), config.app_id)
    };
    let state = sandbox.inner.state.lock().expect("state");
    let describe = |portal: u64,
                    scopes: &[String],
                    user_id: u64,
                    email: &str,
                    kind: &str,
                    expires_in: Option<i64>| {
        let domain = state
            .portals
            .get(&portal)
            .map(|p| p.domain.clone())
            .unwrap_or_default();
        let mut body = json!({
            "active": true, "token_type": kind, "client_id": client_id, "app_id": app_id,
            "hub_id": portal, "hub_domain": domain, "user_id": user_id, "user": email,
            // `is_private_distribution`: named by the 2026-03 reference as we were
            // told; the field list was not found in the docs (README, guesses).
            "scopes": scopes, "scope": scopes.join(" "), "is_private_distribution": false,
        });
        if let Some(seconds) = expires_in {
            body["expires_in"] = json!(seconds);
            body["exp"] = json!(now_ms() / 1000 + seconds);
        }
        body
    };
    if let Some(a) = state
        .access_tokens
        .get(&token)
        .filter(|a| a.expires_ms > now_ms())
    {
        let live = state
            .refresh_tokens
            .get(&a.refresh_token)
            .is_some_and(|r| !r.revoked);
        if live {
            let left = (a.expires_ms - now_ms()) / 1000;
            return Json(describe(
                a.portal,
                &a.scopes,
                a.user_id,
                &a.user_email,
                "access",
                Some(left),
            ))
            .into_response();
        }
    }
    if let Some(r) = state.refresh_tokens.get(&token).filter(|r| !r.revoked) {
        return Json(describe(
            r.portal,
            &r.scopes,
            r.user_id,
            &r.user_email,
            "refresh",
            None,
        ))
        .into_response();
    }
    Json(json!({"active": false})).into_response()
}

pub async fn revoke(
    State(sandbox): State<HubSpotSandbox>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(response) = client_ok(&sandbox, &form) {
        return response;
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let mut state = sandbox.inner.state.lock().expect("state");
    match state.refresh_tokens.get_mut(&token) {
        // HubSpot documents no body for a revoke: 200 with none (harder than
        // a 204, which clients treat as empty by definition).
        Some(r) => {
            r.revoked = true;
            StatusCode::OK.into_response()
        }
        None => oauth_error(
            "BAD_REFRESH_TOKEN",
            "invalid_grant",
            "missing or unknown refresh token",
        ),
    }
}

/// Marks the app uninstalled from a portal: its grants are revoked and an
/// `APP_LIFECYCLE_EVENT` lands in the webhooks journal.
pub(crate) fn uninstall_portal(sandbox: &HubSpotSandbox, portal: u64) -> bool {
    let app_id = sandbox.inner.config.lock().expect("config").app_id;
    let mut state = sandbox.inner.state.lock().expect("state");
    let Some(p) = state.portals.get_mut(&portal) else {
        return false;
    };
    if !p.installed {
        return false;
    }
    p.installed = false;
    for r in state
        .refresh_tokens
        .values_mut()
        .filter(|r| r.portal == portal)
    {
        r.revoked = true;
    }
    crate::journal::record_lifecycle(&mut state, app_id, portal, "APP_UNINSTALL");
    true
}

pub async fn uninstall(
    State(sandbox): State<HubSpotSandbox>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let caller = authorize(&sandbox, &headers, &["oauth"])?;
    uninstall_portal(&sandbox, caller.portal);
    Ok(StatusCode::NO_CONTENT)
}
