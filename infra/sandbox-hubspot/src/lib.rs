//! HubSpot emulator. It shares no code with the service: a misreading of
//! HubSpot's API must not hide by being on both sides of a test.

use axum::Router;
use axum::routing::get;
use serde_json::json;

pub const PORTAL_ID: u64 = 1_000_001;

/// The emulator's routes, to be served standalone or nested under `/_sandbox/hubspot`.
pub fn router() -> Router {
    Router::new().route(
        "/",
        get(|| async { axum::Json(json!({"emulates": "HubSpot", "portal_id": PORTAL_ID})) }),
    )
}
