//! Who may call what (SPEC §8): every config-API route × every role and
//! permission set, from the route table itself so no endpoint is missed; and the
//! account always comes from the token.

use std::net::SocketAddr;

use board_hubspot::config::Settings;
use config_api::auth::Access;
use config_api::routes::ROUTES;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

async fn start() -> (local_stack::Stack, String) {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = probe.local_addr().unwrap();
    drop(probe);
    let base = format!("http://{addr}");
    let public = base.clone();
    let settings = Settings::from_lookup(
        move |name| (name == "PUBLIC_BASE_URL").then(|| public.clone()),
        true,
    )
    .unwrap();
    (local_stack::start(settings, addr).await.unwrap(), base)
}

fn token(account: &str, role: &str, permissions: Option<&[&str]>) -> String {
    let mut claims = json!({"iss": "board", "aud": "board-hubspot", "account_id": account, "user_id": "7", "role": role,
                            "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600});
    if let Some(p) = permissions {
        claims["permissions"] = json!(p);
    }
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap()
}

/// (role, permissions, may use settings, may use business)
const PRINCIPALS: &[(&str, Option<&[&str]>, bool, bool)] = &[
    ("master", None, true, true),
    ("admin", None, true, true),
    ("manager", None, false, true),
    ("leader", None, false, true),
    ("staff", None, false, true),
    ("custom", Some(&[]), false, false),
    ("custom", Some(&["hubspot_settings"]), true, false),
    ("custom", Some(&["hubspot_business"]), false, true),
    (
        "custom",
        Some(&["hubspot_settings", "hubspot_business"]),
        true,
        true,
    ),
];

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_by_every_role() {
    let (stack, base) = start().await;
    let http = reqwest::Client::new();
    let mut checked = 0;
    for route in ROUTES {
        let url = format!("{base}{}", concrete(route.path));
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
        let anonymous = http
            .request(method.clone(), &url)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            anonymous.status(),
            401,
            "{} {} without a token",
            route.method,
            route.path
        );
        for (role, permissions, settings, business) in PRINCIPALS {
            let allowed = match route.access {
                Access::Settings => *settings,
                Access::Business => *business,
            };
            let response = http
                .request(method.clone(), &url)
                .bearer_auth(token("acct-a", role, *permissions))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{role} {permissions:?} may use {} {}: got {status} {body}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{role} {permissions:?} may not use {} {}",
                    route.method, route.path
                );
                assert_eq!(body["code"], "forbidden");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * PRINCIPALS.len());
    stack.shutdown().await;
}

#[tokio::test]
async fn a_token_for_one_account_never_reaches_another() {
    let (stack, base) = start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin_a = token("acct-a", "admin", None);
    let admin_b = token("acct-b", "admin", None);
    // acct-a starts connecting; acct-b cannot use acct-a's flow or see its state.
    let authorize: Value = http
        .post(format!("{base}/v1/hubspot/connection/authorize"))
        .bearer_auth(&admin_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let consent = http
        .post(authorize["authorize_url"].as_str().unwrap())
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    let callback = http
        .get(consent.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let settings = callback.headers()["location"].to_str().unwrap().to_owned();
    let confirmation = url::Url::parse(&settings)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "confirmation")
        .unwrap()
        .1
        .into_owned();

    let stolen = http
        .post(format!("{base}/v1/hubspot/connection/confirm"))
        .bearer_auth(&admin_b)
        .json(&json!({"confirmation": confirmation}))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
    let b: Value = http
        .get(format!("{base}/v1/hubspot/connection"))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["state"], "not_connected");
    let a: Value = http
        .get(format!("{base}/v1/hubspot/connection"))
        .bearer_auth(&admin_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        a["state"], "not_connected",
        "the stolen attempt discarded acct-a's pending result too"
    );
    let delete_b = http
        .delete(format!("{base}/v1/hubspot/connection"))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap();
    assert_eq!(delete_b.status(), 404);
    // An account id in the query or body changes nothing: the token decides.
    let sneaky: Value = http
        .get(format!("{base}/v1/hubspot/connection?account_id=acct-a"))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sneaky["state"], "not_connected");
    stack.shutdown().await;
}

#[tokio::test]
async fn production_verifies_rs256_against_boards_keys_and_nothing_else() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = probe.local_addr().unwrap();
    drop(probe);
    let base = format!("http://{addr}");
    let public = base.clone();
    let jwks = include_str!("../fixtures/jwt-test-jwks.json").to_owned();
    let settings = Settings::from_lookup(
        move |name| match name {
            "PUBLIC_BASE_URL" => Some(public.clone()),
            "BOARD_JWT_ALGORITHM" => Some("RS256".into()),
            "BOARD_JWKS" => Some(jwks.clone()),
            _ => None,
        },
        true,
    )
    .unwrap();
    let stack = local_stack::start(settings, addr).await.unwrap();
    let claims = json!({"iss": "board", "aud": "board-hubspot", "account_id": "acct-a", "user_id": 1, "role": "admin",
                        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600});
    let pem = include_bytes!("../fixtures/jwt-test-rsa.pem");
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("board-test-1".into());
    let good = encode(&header, &claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap();
    let hs256 = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap();
    // Algorithm confusion: HS256 keyed with the public JWKS text.
    let confused = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(include_bytes!("../fixtures/jwt-test-jwks.json")),
    )
    .unwrap();
    let mut unknown_kid = Header::new(jsonwebtoken::Algorithm::RS256);
    unknown_kid.kid = Some("someone-else".into());
    let wrong_kid = encode(
        &unknown_kid,
        &claims,
        &EncodingKey::from_rsa_pem(pem).unwrap(),
    )
    .unwrap();

    let http = reqwest::Client::new();
    let status_of = |token: String| {
        let http = http.clone();
        let url = format!("{base}/v1/hubspot/connection");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status_of(good).await, 200);
    assert_eq!(status_of(hs256).await, 401);
    assert_eq!(status_of(confused).await, 401);
    assert_eq!(status_of(wrong_kid).await, 401);
    stack.shutdown().await;
}
