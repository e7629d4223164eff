//! The console's dev sign-in (`/console/dev/sign-in`): picks a board account,
//! a role and a user, and mints the HS256 JWT board's web app would present.
//! Mounted only by the local stack and only while the dev JWT secret is the one
//! in use: anyone who can reach it could mint any account's token, which with
//! the published dev secret they could do anyway. Lambda never serves it (the
//! config API function's console has no sign-in of its own).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use board_hubspot::config::{JwtAlgorithm, Settings, dev};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

/// How long a dev token lasts: a working day.
const LIFETIME: time::Duration = time::Duration::hours(8);
const ROLES: &[&str] = &["master", "admin", "manager", "leader", "staff"];

/// Whether the stack may offer it.
pub fn enabled(settings: &Settings) -> bool {
    settings.board_jwt_algorithm == JwtAlgorithm::Hs256
        && settings.board_jwt_secret.expose_secret() == dev::BOARD_JWT_SECRET
}

#[derive(Clone)]
pub struct DevSignIn {
    pub board: sandbox_board::BoardSandbox,
}

/// `GET`: what the form offers.
pub async fn offer(State(state): State<DevSignIn>) -> Response {
    Json(json!({"accounts": state.board.account_ids(), "roles": ROLES})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    account_id: String,
    role: String,
    user_id: u64,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

fn refused(detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/problem+json")],
        Json(json!({"status": 400, "code": "invalid_field", "detail": detail})),
    )
        .into_response()
}

/// `POST {account_id, role, user_id[, permissions]}` → `{token, expires_at}`.
pub async fn mint(State(state): State<DevSignIn>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Request>(&body) else {
        return refused("body: {account_id, role, user_id[, permissions]}");
    };
    if !state.board.account_ids().contains(&request.account_id) {
        return refused("account_id: not an account of the board emulator");
    }
    if !ROLES.contains(&request.role.as_str()) && request.role != "custom" {
        return refused("role: master, admin, manager, leader, staff or custom");
    }
    if request.role == "custom" && request.permissions.is_none() {
        return refused("permissions: a custom role names its permissions");
    }
    if request.user_id == 0 {
        return refused("user_id: board's user ids start at 1");
    }
    let expires = time::OffsetDateTime::now_utc() + LIFETIME;
    let mut claims = json!({
        "iss": "board",
        "aud": "board-hubspot",
        "account_id": request.account_id,
        "account_name": format!("{} (sandbox)", request.account_id),
        "user_id": request.user_id,
        "role": request.role,
        "exp": expires.unix_timestamp(),
    });
    if let Some(permissions) = request.permissions {
        claims["permissions"] = json!(permissions);
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(dev::BOARD_JWT_SECRET.as_bytes()),
    )
    .expect("HS256 signs any claims");
    Json(json!({"token": token, "expires_at": expires.unix_timestamp()})).into_response()
}
