//! The local stack over HTTP, as HubSpot, board's web app and an operator use it.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use board_hubspot::config::Settings;
use hmac::{Hmac, Mac};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "sandbox-client-secret";

struct Running {
    stack: local_stack::Stack,
    base: String,
    http: reqwest::Client,
}

async fn start() -> Running {
    // Bind first so PUBLIC_BASE_URL (what signatures cover) names the real port.
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
    let stack = local_stack::start(settings, addr).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Running { stack, base, http }
}

/// HubSpot's v3 signature, written here independently of the service's code.
fn sign_v3(method: &str, uri: &str, body: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{method}{uri}{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn jwt(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap()
}

fn claims(role: &str) -> Value {
    json!({"iss": "board", "aud": "board-hubspot", "account_id": "acct-a", "user_id": 1,
           "role": role, "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600})
}

#[tokio::test]
async fn health_answers_and_the_stack_shuts_down_cleanly() {
    let run = start().await;
    let response = run
        .http
        .get(format!("{}/health", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");
    for sandbox in [
        "/_sandbox/hubspot/oauth/authorize?client_id=sandbox-client-id&redirect_uri=http://x/cb&scope=oauth",
        "/_sandbox/board/settings/integrations",
    ] {
        let response = run
            .http
            .get(format!("{}{sandbox}", run.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{sandbox} mounted");
    }
    let addr = run.stack.addr;
    tokio::time::timeout(Duration::from_secs(5), run.stack.shutdown())
        .await
        .expect("clean shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn webhooks_need_a_valid_signature_and_reach_the_queue() {
    let run = start().await;
    let url = format!("{}/hubspot/webhooks", run.base);
    let body = json!([
        {"eventId": 1, "portalId": 1000001, "subscriptionType": "deal.propertyChange", "objectId": 42,
         "propertyName": "dealname", "propertyValue": "x", "occurredAt": now_ms(), "attemptNumber": 0},
        {"eventId": 1, "portalId": 1000001, "eventType": "deal.creation", "objectId": 43, "occurredAt": now_ms()}
    ])
    .to_string();
    let post = |body: String, signature: Option<String>, timestamp: i64| {
        let mut request = run
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request
                .header("X-HubSpot-Signature-v3", signature)
                .header("X-HubSpot-Request-Timestamp", timestamp.to_string());
        }
        request.send()
    };

    let unsigned = post(body.clone(), None, 0).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(
        unsigned.headers()["content-type"],
        "application/problem+json"
    );

    let ts = now_ms();
    let forged = post(body.clone(), Some(sign_v3("POST", &url, "[]", ts)), ts)
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let stale_ts = ts - 6 * 60 * 1000;
    let stale = post(
        body.clone(),
        Some(sign_v3("POST", &url, &body, stale_ts)),
        stale_ts,
    )
    .await
    .unwrap();
    assert_eq!(stale.status(), 401);

    let ok = post(body.clone(), Some(sign_v3("POST", &url, &body, ts)), ts)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["accepted"], 2);

    let malformed = "{\"not\": \"an array\"}".to_owned();
    let bad = post(
        malformed.clone(),
        Some(sign_v3("POST", &url, &malformed, ts)),
        ts,
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "malformed_body");

    // One event that cannot be read does not cost the delivery its others.
    let mixed = json!([{"portalId": 1000001, "subscriptionType": "object.propertyChange"},
        {"portalId": 1000001, "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
         "objectId": 44, "propertyName": "amount", "propertyValue": "1"}])
    .to_string();
    let partly = post(mixed.clone(), Some(sign_v3("POST", &url, &mixed, ts)), ts)
        .await
        .unwrap();
    assert_eq!(partly.status(), 200);
    assert_eq!(
        partly.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "unknown": 0, "malformed": 1, "stale": 0, "own_writes": 0})
    );

    let huge = format!("[{}]", "0,".repeat(600_000) + "0");
    let too_big = post(huge.clone(), Some(sign_v3("POST", &url, &huge, ts)), ts)
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);

    // The worker drains what was queued: one job for the portal, processed and deleted.
    let depth = || run.stack.memory_queue.as_ref().unwrap().depth();
    for _ in 0..50 {
        if depth() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth(), 0, "the worker drained the queue");
    let dead = run
        .stack
        .services
        .queue
        .receive_dead_letters(10)
        .await
        .unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn the_config_api_checks_tokens_and_roles() {
    let run = start().await;
    let url = format!("{}/v1/hubspot/connection", run.base);
    let get = |token: Option<String>| {
        let mut request = run.http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let missing = get(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["code"],
        "missing_token"
    );

    let mut expired = claims("admin");
    expired["exp"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() - 3600);
    assert_eq!(get(Some(jwt(expired))).await.unwrap().status(), 401);
    let mut early = claims("admin");
    early["nbf"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() + 3600);
    let refused = get(Some(jwt(early))).await.unwrap();
    assert_eq!(refused.status(), 401, "not valid for another hour");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_token");
    assert_eq!(
        problem["detail"], "the token was not accepted",
        "no library internals in the answer"
    );

    let mut wrong_audience = claims("admin");
    wrong_audience["aud"] = json!("someone-else");
    assert_eq!(get(Some(jwt(wrong_audience))).await.unwrap().status(), 401);

    let forged = encode(
        &Header::default(),
        &claims("admin"),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(get(Some(forged)).await.unwrap().status(), 401);

    let none_alg = {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims("admin").to_string());
        format!("{header}.{payload}.")
    };
    assert_eq!(
        get(Some(none_alg)).await.unwrap().status(),
        401,
        "the header never picks the algorithm"
    );

    for role in ["manager", "leader", "staff"] {
        let response = get(Some(jwt(claims(role)))).await.unwrap();
        assert_eq!(response.status(), 403, "{role}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "forbidden");
    }
    let mut custom_without = claims("custom");
    custom_without["permissions"] = json!(["hubspot_business"]);
    assert_eq!(get(Some(jwt(custom_without))).await.unwrap().status(), 403);
    assert_eq!(
        get(Some(jwt(claims("custom")))).await.unwrap().status(),
        401,
        "custom needs permissions"
    );

    let mut custom_with = claims("custom");
    custom_with["permissions"] = json!(["hubspot_settings"]);
    for token in [
        jwt(claims("master")),
        jwt(claims("admin")),
        jwt(custom_with),
    ] {
        let response = get(Some(token)).await.unwrap();
        assert_eq!(response.status(), 200);
        let status: Value = response.json().await.unwrap();
        assert_eq!(status["state"], "not_connected");
    }

    let unknown = run
        .http
        .get(format!("{}/v1/hubspot/nothing", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let wrong_method = run.http.put(&url).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);

    let openapi: Value = run
        .http
        .get(format!("{}/openapi.json", run.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/v1/hubspot/connection"]["get"].is_object());
    run.stack.shutdown().await;
}

#[tokio::test]
async fn card_requests_are_signed_and_an_unknown_portal_gets_no_sections() {
    let run = start().await;
    let path = "/hubspot/card?portalId=999&objectId=42&objectType=DEAL&userId=1&userEmail=a%40b.jp";
    let url = format!("{}{path}", run.base);
    let unsigned = run.http.get(&url).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);

    let ts = now_ms();
    // HubSpot's documentation decodes %40 before signing; both forms are accepted.
    let decoded = url.replace("%40", "@");
    for signed_over in [&url, &decoded] {
        let response = run
            .http
            .get(&url)
            .header(
                "X-HubSpot-Signature-v3",
                sign_v3("GET", signed_over, "", ts),
            )
            .header("X-HubSpot-Request-Timestamp", ts.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"sections": []})
        );
    }
    run.stack.shutdown().await;
}

#[tokio::test]
async fn every_oauth_failure_ends_on_boards_settings_screen() {
    let run = start().await;
    for query in [
        "",
        "?code=abc",
        "?code=abc&state=forged",
        "?error=access_denied&state=forged",
    ] {
        let response = run
            .http
            .get(format!("{}/oauth/callback{query}", run.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{query}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!(
                "{}/_sandbox/board/settings/integrations?",
                run.base
            )),
            "{location}"
        );
        assert!(
            location.ends_with("hubspot=error&code=oauth_state_invalid"),
            "{location}"
        );
    }
    run.stack.shutdown().await;
}

#[tokio::test]
async fn sandbox_webhooks_pass_the_services_signature_check_and_board_events_are_consumed() {
    let run = start().await;
    // A HubSpot admin approves the app, so the portal's changes are sent to it.
    let approve = run
        .http
        .post(format!(
            "{}/_sandbox/hubspot/oauth/authorize?client_id=sandbox-client-id&redirect_uri={}/oauth/callback&scope=oauth&state=x",
            run.base, run.base
        ))
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 302);
    let created = run
        .http
        .post(format!(
            "{}/_sandbox/hubspot/crm/objects/2026-03/deals",
            run.base
        ))
        .bearer_auth("pat-sandbox-user")
        .json(&json!({"properties": {"dealname": "webhook e2e"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let deliveries: Value = run
            .http
            .get(format!(
                "{}/_sandbox/hubspot/_control/webhooks/deliveries",
                run.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        statuses = deliveries["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].clone())
            .collect();
        if !statuses.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        statuses.first(),
        Some(&json!(200)),
        "the service accepted the sandbox's signed delivery: {statuses:?}"
    );

    let response = run
        .http
        .post(format!("{}/_sandbox/board/v1/clients", run.base))
        .header("x-api-key", "sandbox-key-acct-a")
        .bearer_auth("sandbox-user-acct-a")
        .json(&json!({"name": "株式会社E2E", "name_disp": "E2E"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // The start-up lifecycle poll, one webhook job and one board event handled by the worker.
    let handled = || run.stack.handled.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..50 {
        if handled() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        handled(),
        3,
        "the start-up lifecycle poll, the webhook job and board's change event were consumed"
    );
    assert_eq!(run.stack.memory_queue.as_ref().unwrap().depth(), 0);
    assert!(
        run.stack
            .services
            .queue
            .receive_dead_letters(10)
            .await
            .unwrap()
            .is_empty()
    );
    run.stack.shutdown().await;
}
