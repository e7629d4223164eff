//! The admin console: three static files compiled into this function and
//! served at `/console/` on the API's own origin, so the screens call `/v1/...`
//! with board's JWT and no cross-origin rules are needed. No build step: the
//! files are plain HTML, CSS and JavaScript (`functions/config-api/console/`).
//!
//! The console holds no secret and mints nothing: in AWS board's web app opens
//! it with the user's JWT in the URL fragment (`#token=…`, never sent to a
//! server; kept for the tab in sessionStorage); locally the stack's dev sign-in
//! mints one (`local-stack`, only with the dev JWT secret).
//!
//! `GET /console` redirects to `/console/index.html` (not `/console/`: API
//! Gateway's greedy `/console/{proxy+}` route needs a file name).

use board_hubspot::edge::{self, HttpResponse};
use lambda_http::Body;
use lambda_http::http::{Response, StatusCode, header};

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// Same-origin scripts and styles only, no framing by other sites, no inline
/// code: deal names shown on these screens come from any HubSpot user. (A
/// deployment that embeds the console in board's pages adds board's origin
/// to `frame-ancestors` here.)
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'";

/// Whether `path` is the console's.
pub fn owns(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// `GET /console` → `/console/index.html`; the three files; anything else 404.
pub fn serve(method: &str, path: &str) -> HttpResponse {
    if method != "GET" && method != "HEAD" {
        return edge::problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} {path}"),
        );
    }
    let (body, content_type) = match path {
        "/console" => {
            return Response::builder()
                .status(StatusCode::PERMANENT_REDIRECT)
                .header(header::LOCATION, "/console/index.html")
                .body(Body::Empty)
                .expect("static response");
        }
        "/console/" | "/console/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/console/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/console/console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => {
            return edge::problem(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {path}"),
            );
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_SECURITY_POLICY, POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        // A deploy changes the files: revalidate rather than cache for a day.
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(if method == "HEAD" { "" } else { body }))
        .expect("static response")
}
