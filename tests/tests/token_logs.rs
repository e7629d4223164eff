//! Tokens never reach the logs: a full connect plus a refresh, with every log
//! line captured at DEBUG, contains none of the tokens HubSpot issued.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use board_hubspot::adapters::clock::ManualClock;
use board_hubspot::app::Services;
use board_hubspot::config::Settings;
use board_hubspot::domain::AccountId;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn connect_and_refresh_log_no_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .json()
        .init();

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
    let (mut services, queue) = Services::in_memory(settings);
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    services.clock = clock.clone();
    let stack = local_stack::start_with(services, Some(queue), addr)
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jwt = encode(
        &Header::default(),
        &json!({"iss": "board", "aud": "board-hubspot", "account_id": "acct-a", "user_id": 1, "role": "admin",
                "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600}),
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap();

    let authorize: Value = http
        .post(format!("{base}/v1/hubspot/connection/authorize"))
        .bearer_auth(&jwt)
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
    let settings_url = callback.headers()["location"].to_str().unwrap().to_owned();
    let confirmation = url::Url::parse(&settings_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "confirmation")
        .unwrap()
        .1
        .into_owned();
    let confirmed = http
        .post(format!("{base}/v1/hubspot/connection/confirm"))
        .bearer_auth(&jwt)
        .json(&json!({"confirmation": confirmation}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    clock.advance(time::Duration::minutes(26));
    board_hubspot::app::tokens::access_token(&stack.services, &AccountId::new("acct-a").unwrap())
        .await
        .unwrap();

    let issued: Value = http
        .get(format!("{base}/_sandbox/hubspot/_control/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut secrets: Vec<String> = issued["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    secrets.extend(
        issued["refresh"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["token"].as_str().unwrap().to_owned()),
    );
    assert!(
        secrets.len() >= 3,
        "an exchange and a refresh issued tokens: {secrets:?}"
    );
    stack.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 10, "logs were captured");
    assert!(
        logs.contains("access token refreshed"),
        "the refresh happened and was logged"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a token leaked into the logs"
        );
    }
    assert!(
        !logs.contains("sandbox-client-secret"),
        "the client secret leaked into the logs"
    );
}
