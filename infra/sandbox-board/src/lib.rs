//! board API v1 emulator. It shares no code with the service.

use axum::Router;
use axum::routing::get;
use serde_json::json;

pub const ACCOUNTS: [&str; 2] = ["acct-a", "acct-b"];

/// The emulator's routes, to be served standalone or nested under `/_sandbox/board`.
pub fn router() -> Router {
    Router::new().route(
        "/",
        get(|| async { axum::Json(json!({"emulates": "board API v1", "accounts": ACCOUNTS})) }),
    )
}
