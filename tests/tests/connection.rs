//! The connection lifecycle end to end on the local stack, as board's web app,
//! the admin's browser and HubSpot (the emulator) drive it (SPEC §3).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use board_hubspot::adapters::clock::ManualClock;
use board_hubspot::app::Services;
use board_hubspot::app::tokens::{self, TokenError};
use board_hubspot::config::Settings;
use board_hubspot::domain::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

struct Run {
    stack: local_stack::Stack,
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
}

async fn start() -> Run {
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
    Run {
        stack,
        base,
        http,
        clock,
    }
}

fn jwt(account: &str, user: &str, role: &str) -> String {
    let claims = json!({"iss": "board", "aud": "board-hubspot", "account_id": account, "user_id": user, "role": role,
                        "account_name": format!("{account} 株式会社"), "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 3600});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap()
}

fn query_of(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl Run {
    fn services(&self) -> &Services {
        &self.stack.services
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self, account: &str) -> Value {
        self.api(
            reqwest::Method::GET,
            "/v1/hubspot/connection",
            &jwt(account, "1", "admin"),
            None,
        )
        .await
        .1
    }

    async fn authorize_url(&self, account: &str, user: &str) -> String {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/v1/hubspot/connection/authorize",
                &jwt(account, user, "admin"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["authorize_url"].as_str().unwrap().to_owned()
    }

    /// The admin's browser on HubSpot's consent page; returns where HubSpot redirects.
    async fn consent(&self, authorize_url: &str, form: &[(&str, &str)]) -> String {
        let response = self
            .http
            .post(authorize_url)
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Follows HubSpot's redirect to our callback; returns where we send the browser.
    async fn callback(&self, location: &str) -> String {
        let response = self.http.get(location).send().await.unwrap();
        assert_eq!(response.status(), 302, "callback always redirects");
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    async fn confirm(
        &self,
        account: &str,
        user: &str,
        confirmation: &str,
        archive: bool,
    ) -> (u16, Value) {
        let body = json!({"confirmation": confirmation, "archive_previous_portal": archive});
        self.api(
            reqwest::Method::POST,
            "/v1/hubspot/connection/confirm",
            &jwt(account, user, "admin"),
            Some(body),
        )
        .await
    }

    /// The whole happy path up to the confirmation token.
    async fn confirmation(&self, account: &str, form: &[(&str, &str)]) -> String {
        let authorize = self.authorize_url(account, "1").await;
        let back = self.consent(&authorize, form).await;
        let settings = self.callback(&back).await;
        assert_eq!(
            param(&settings, "hubspot").as_deref(),
            Some("confirm"),
            "{settings}"
        );
        param(&settings, "confirmation").unwrap()
    }

    async fn connect(&self, account: &str) -> Value {
        let confirmation = self.confirmation(account, &[("decision", "approve")]).await;
        let (status, body) = self.confirm(account, "1", &confirmation, false).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn sandbox(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/_sandbox/hubspot{path}", self.base))
            .bearer_auth("pat-sandbox-user")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The events of the journal's latest entry, read as the app does: its
    /// client-credentials token, then the entry's pre-signed file.
    async fn journal_latest(&self) -> Value {
        let token: Value = self
            .http
            .post(format!(
                "{}/_sandbox/hubspot/oauth/2026-03/token",
                self.base
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "sandbox-client-id"),
                ("client_secret", "sandbox-client-secret"),
                ("scope", "developer.webhooks_journal.read"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pointer: Value = self
            .http
            .get(format!(
                "{}/_sandbox/hubspot/webhooks-journal/journal/2026-03/latest",
                self.base
            ))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            pointer["currentOffset"].is_string() && pointer["expiresAt"].is_string(),
            "{pointer}"
        );
        self.http
            .get(pointer["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn token_requests(&self, grant: &str) -> usize {
        let log = self.sandbox("/_control/requests").await;
        let _ = grant;
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == "/oauth/2026-03/token")
            .count()
    }
}

#[tokio::test]
async fn connect_confirm_and_the_exclusion_property() {
    let run = start().await;
    assert_eq!(run.status("acct-a").await["state"], "not_connected");
    let authorize = run.authorize_url("acct-a", "1").await;
    assert!(authorize.starts_with(&format!("{}/_sandbox/hubspot/oauth/authorize?", run.base)));
    let scopes = param(&authorize, "scope").unwrap();
    for scope in board_hubspot::config::HUBSPOT_SCOPES {
        assert!(scopes.split(' ').any(|s| s == scope), "{scope} requested");
    }
    assert_eq!(
        param(&authorize, "redirect_uri").unwrap(),
        format!("{}/oauth/callback", run.base)
    );

    let back = run.consent(&authorize, &[("decision", "approve")]).await;
    let settings = run.callback(&back).await;
    assert!(settings.starts_with(&format!(
        "{}/_sandbox/board/settings/integrations?hubspot=confirm&confirmation=",
        run.base
    )));
    assert_eq!(run.status("acct-a").await["state"], "pending");

    // board's settings screen confirms as user 1 of acct-a (its button signs that JWT).
    let page = run
        .http
        .get(&settings)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("連携を確定"));
    let confirmation = param(&settings, "confirmation").unwrap();
    let confirmed = run
        .http
        .post(format!(
            "{}/_sandbox/board/settings/integrations/confirm",
            run.base
        ))
        .form(&[
            ("confirmation", confirmation.as_str()),
            ("account_id", "acct-a"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        confirmed.contains("data-outcome=\"connected\""),
        "{confirmed}"
    );

    let status = run.status("acct-a").await;
    assert_eq!(status["state"], "active");
    assert_eq!(status["portal_id"], "1000001");
    assert_eq!(status["hub_domain"], "sandbox-1000001.hubspot.test");
    assert_eq!(status["authorized_by"]["email"], "admin@sandbox.example.jp");
    assert_eq!(status["account_name"], "acct-a (sandbox)");
    assert_eq!(status["exclusion_property"]["state"], "ready");
    assert!(status["connected_at"].is_string());
    assert!(
        status["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["item"] == "exclusion_property" && c["done"] == true)
    );
    let text = status.to_string();
    assert!(
        !text.contains("sbx-at-") && !text.contains("sbx-rt-") && !text.contains("v1:"),
        "no tokens in responses"
    );

    let property = run
        .sandbox("/crm/properties/2026-03/deals/exclude_from_board_integration")
        .await;
    assert_eq!(property["type"], "bool");
    assert_eq!(property["label"], "board連携から除外");
    let options: Vec<(String, String)> = property["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["label"].as_str().unwrap().to_owned(),
                o["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        options,
        [
            ("はい".to_owned(), "true".to_owned()),
            ("いいえ".to_owned(), "false".to_owned())
        ]
    );

    // A second board account on the same portal: the property is already there (409 is fine).
    let second = run.connect("acct-b").await;
    assert_eq!(second["state"], "active");
    assert_eq!(second["exclusion_property"]["state"], "ready");
    assert_eq!(second["other_accounts_on_portal"], json!(["acct-a"]));
    run.stack.shutdown().await;
}

#[tokio::test]
async fn every_failure_of_the_flow_ends_on_boards_screen_with_its_code() {
    let run = start().await;
    let code_of = |location: &str| param(location, "code").unwrap_or_default();

    // Consent denied.
    let authorize = run.authorize_url("acct-a", "1").await;
    let back = run.consent(&authorize, &[("decision", "deny")]).await;
    assert_eq!(code_of(&run.callback(&back).await), "oauth_denied");

    // Reused state.
    let authorize = run.authorize_url("acct-a", "1").await;
    let back = run.consent(&authorize, &[("decision", "approve")]).await;
    assert_eq!(
        param(&run.callback(&back).await, "hubspot").as_deref(),
        Some("confirm")
    );
    assert_eq!(
        code_of(&run.callback(&back).await),
        "oauth_state_invalid",
        "a state works once"
    );
    assert_eq!(
        run.status("acct-a").await["state"],
        "pending",
        "the successful callback waits for confirmation"
    );

    // Forged state: same shape, wrong signature.
    let authorize = run.authorize_url("acct-a", "1").await;
    let back = run.consent(&authorize, &[("decision", "approve")]).await;
    let state = param(&back, "state").unwrap();
    let forged = back.replace(
        &state,
        &format!("{}.AAAA", state.split('.').next().unwrap()),
    );
    assert_eq!(code_of(&run.callback(&forged).await), "oauth_state_invalid");

    // Expired state.
    let authorize = run.authorize_url("acct-a", "1").await;
    let back = run.consent(&authorize, &[("decision", "approve")]).await;
    run.clock.advance(time::Duration::minutes(11));
    assert_eq!(code_of(&run.callback(&back).await), "oauth_state_invalid");

    // Missing scope.
    let authorize = run.authorize_url("acct-a", "1").await;
    let back = run
        .consent(
            &authorize,
            &[
                ("decision", "approve"),
                ("scopes", "oauth crm.objects.deals.read"),
            ],
        )
        .await;
    assert_eq!(code_of(&run.callback(&back).await), "oauth_scope_missing");

    // Token exchange failure.
    let authorize = run.authorize_url("acct-a", "1").await;
    let back = run.consent(&authorize, &[("decision", "approve")]).await;
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&json!({"error_rates": [[503, 1.0]], "path_prefix": "/oauth/2026-03/token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(&run.callback(&back).await), "oauth_exchange_failed");
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    assert_eq!(
        run.status("acct-a").await["state"],
        "not_connected",
        "the unconfirmed result expired"
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn confirmations_bind_to_the_account_and_user_that_started() {
    let run = start().await;
    let confirmation = run.confirmation("acct-a", &[("decision", "approve")]).await;
    let (status, body) = run.confirm("acct-b", "1", &confirmation, false).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "confirmation_invalid");
    let (status, _) = run.confirm("acct-a", "1", &confirmation, false).await;
    assert_eq!(status, 400, "refused once means discarded");
    assert_eq!(run.status("acct-a").await["state"], "not_connected");

    let confirmation = run.confirmation("acct-a", &[("decision", "approve")]).await;
    let (status, _) = run.confirm("acct-a", "2", &confirmation, false).await;
    assert_eq!(status, 400, "another user of the same account");

    let confirmation = run.confirmation("acct-a", &[("decision", "approve")]).await;
    run.clock.advance(time::Duration::minutes(11));
    let (status, _) = run.confirm("acct-a", "1", &confirmation, false).await;
    assert_eq!(status, 400, "too late");

    let (status, body) = run.confirm("acct-a", "1", "made-up", false).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("confirmation_invalid"))
    );
    let (status, _) = run
        .api(
            reqwest::Method::POST,
            "/v1/hubspot/connection/confirm",
            &jwt("acct-a", "1", "admin"),
            Some(json!({"nope": 1})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(run.status("acct-a").await["state"], "not_connected");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn another_portal_needs_an_explicit_switch_that_archives_old_links() {
    let run = start().await;
    run.connect("acct-a").await;
    let account = AccountId::new("acct-a").unwrap();
    let old_link = Link {
        account_id: account.clone(),
        portal_id: PortalId::new(1_000_001).unwrap(),
        hubspot: HubSpotRef {
            object_type: HubSpotObjectType::Deal,
            id: 42,
        },
        board: BoardRef {
            kind: BoardObjectKind::Project,
            id: 7,
        },
        state: LinkState::Enabled,
        last_synced_at: None,
        baseline: Default::default(),
        revision: 0,
    };
    run.services().links.claim_deal(&old_link).await.unwrap();

    let confirmation = run
        .confirmation("acct-a", &[("decision", "approve"), ("portal", "1000002")])
        .await;
    let (status, body) = run.confirm("acct-a", "1", &confirmation, false).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "portal_conflict");
    assert_eq!(
        run.status("acct-a").await["portal_id"],
        "1000001",
        "nothing changed"
    );

    let (status, body) = run.confirm("acct-a", "1", &confirmation, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["portal_id"], "1000002");
    let link = run
        .services()
        .links
        .link_by_hubspot(&account, old_link.portal_id, old_link.hubspot)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.state, LinkState::Archived);
    run.stack.shutdown().await;
}

#[tokio::test]
async fn concurrent_callers_near_expiry_share_one_refresh() {
    let run = start().await;
    run.connect("acct-a").await;
    let account = AccountId::new("acct-a").unwrap();
    let before = run.token_requests("").await;
    let fresh = tokens::access_token(run.services(), &account)
        .await
        .unwrap();
    assert_eq!(
        run.token_requests("").await,
        before,
        "a fresh token is not refreshed"
    );

    run.clock.advance(time::Duration::minutes(26));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let services = run.services().clone();
        let account = account.clone();
        tasks.push(tokio::spawn(async move {
            tokens::access_token(&services, &account)
                .await
                .map(|t| t.expose_secret().to_owned())
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap().expect("a token"));
    }
    assert_eq!(seen.len(), 1, "every caller got the one refreshed token");
    assert!(!seen.contains(fresh.expose_secret()));
    assert_eq!(
        run.token_requests("").await,
        before + 1,
        "one refresh call for 8 callers"
    );
    let (status, _) = (
        run.http
            .get(format!(
                "{}/_sandbox/hubspot/crm/objects/2026-03/deals",
                run.base
            ))
            .bearer_auth(seen.iter().next().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(status, 200, "the refreshed token works");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn refused_refreshes_suspend_the_connection_once_per_ten_minutes() {
    let run = start().await;
    run.connect("acct-a").await;
    let account = AccountId::new("acct-a").unwrap();
    // HubSpot stops accepting the refresh token (e.g. the authorizing user was removed).
    let tokens_list = run.sandbox("/_control/tokens").await;
    let refresh = tokens_list["refresh"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    run.http
        .post(format!(
            "{}/_sandbox/hubspot/oauth/2026-03/token/revoke",
            run.base
        ))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
            ("token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();

    for attempt in 1..=5u32 {
        run.clock.advance(time::Duration::minutes(26));
        let error = tokens::access_token(run.services(), &account)
            .await
            .unwrap_err();
        if attempt < 5 {
            assert!(
                matches!(error, TokenError::AuthInvalid),
                "{attempt}: {error}"
            );
            // A second failure inside the window does not count.
            run.clock.advance(time::Duration::minutes(1));
            assert!(
                tokens::access_token(run.services(), &account)
                    .await
                    .is_err()
            );
            assert_eq!(
                run.status("acct-a").await["consecutive_auth_failures"],
                attempt
            );
        }
    }
    let status = run.status("acct-a").await;
    assert_eq!(status["state"], "suspended");
    assert_eq!(status["consecutive_auth_failures"], 5);
    assert_eq!(status["message"], "HubSpot連携が一時停止されています。");
    let error = tokens::access_token(run.services(), &account)
        .await
        .unwrap_err();
    assert!(matches!(error, TokenError::Suspended));
    assert_eq!(
        error.code().entry().message_ja,
        "HubSpot連携が一時停止されています。"
    );
    let (_, notices) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/notifications",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(notices["items"][0]["kind"], "suspended");

    // Only disconnect + reconnect clears it.
    let (status, _) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let reconnected = run.connect("acct-a").await;
    assert_eq!(reconnected["state"], "active");
    assert_eq!(reconnected["consecutive_auth_failures"], 0);
    run.stack.shutdown().await;
}

#[tokio::test]
async fn disconnect_revokes_keeps_the_property_and_reconnect_resumes() {
    let run = start().await;
    run.connect("acct-a").await;
    let account = AccountId::new("acct-a").unwrap();
    let link = Link {
        account_id: account.clone(),
        portal_id: PortalId::new(1_000_001).unwrap(),
        hubspot: HubSpotRef {
            object_type: HubSpotObjectType::Company,
            id: 5,
        },
        board: BoardRef {
            kind: BoardObjectKind::Customer,
            id: 9,
        },
        state: LinkState::Enabled,
        last_synced_at: None,
        baseline: Default::default(),
        revision: 0,
    };
    run.services().links.create_link(&link).await.unwrap();

    let (status, body) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"state": "disconnected", "revoked": true, "uninstalled": false})
    );
    let tokens_list = run.sandbox("/_control/tokens").await;
    assert!(
        tokens_list["refresh"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["revoked"] == true),
        "revoked at HubSpot"
    );
    let property = run
        .sandbox("/crm/properties/2026-03/deals/exclude_from_board_integration")
        .await;
    assert_eq!(
        property["name"], "exclude_from_board_integration",
        "never deleted by us"
    );
    assert_eq!(run.status("acct-a").await["state"], "disconnected");
    assert!(matches!(
        tokens::access_token(run.services(), &account).await,
        Err(TokenError::NotConnected)
    ));
    let (status, body) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_connected"))
    );

    let resumed = run.connect("acct-a").await;
    assert_eq!(resumed["state"], "active");
    let kept = run
        .services()
        .links
        .link_by_hubspot(&account, link.portal_id, link.hubspot)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.state,
        LinkState::Enabled,
        "links survive a disconnect of the same portal"
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn uninstall_is_refused_while_shared_and_noticed_when_done_in_hubspot() {
    let run = start().await;
    // The first poll creates the app's lifecycle subscription: HubSpot journals
    // installs and uninstalls only from then on.
    board_hubspot::app::lifecycle::poll(run.services())
        .await
        .unwrap();
    run.connect("acct-a").await;
    run.connect("acct-b").await;
    let (status, body) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection?uninstall=true",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "portal_shared");
    assert!(body["detail"].as_str().unwrap().contains("acct-b"));

    // acct-b shares acct-a's refresh token (same HubSpot user): not revoked.
    let (status, body) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection",
            &jwt("acct-b", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["revoked"], false, "still held by acct-a");
    assert!(
        run.sandbox("/_control/tokens").await["refresh"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["revoked"] == false)
    );

    let (status, body) = run
        .api(
            reqwest::Method::DELETE,
            "/v1/hubspot/connection?uninstall=true",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "uninstalled");
    let journal = run.journal_latest().await;
    assert_eq!(
        journal.as_array().unwrap().last().unwrap()["action"],
        "APP_UNINSTALL"
    );

    // Reconnect, then an admin uninstalls inside HubSpot: the journal tells us.
    run.connect("acct-a").await;
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/uninstall", run.base))
        .json(&json!({"portalId": 1000001}))
        .send()
        .await
        .unwrap();
    let changed = board_hubspot::app::lifecycle::poll(run.services())
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let status = run.status("acct-a").await;
    assert_eq!(status["state"], "uninstalled");
    assert_eq!(status["message"], "HubSpot側でアンインストールされました");
    let (_, notices) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/notifications",
            &jwt("acct-a", "1", "admin"),
            None,
        )
        .await;
    assert_eq!(notices["items"][0]["kind"], "uninstalled");
    assert_eq!(
        board_hubspot::app::lifecycle::poll(run.services())
            .await
            .unwrap(),
        0,
        "read once"
    );

    // Reconnected; then the stored offset is one HubSpot no longer keeps (over
    // 3 days old): the poll reads again from the earliest entry, and the old
    // uninstall does not undo the newer connection. (This test's clock stands
    // still; the reconnection is later than HubSpot's uninstall.)
    run.clock.advance(time::Duration::minutes(1));
    run.connect("acct-a").await;
    run.services()
        .watermarks
        .set_watermark(
            "hubspot-journal-offset",
            "00000000-0000-0000-0000-000000000000",
        )
        .await
        .unwrap();
    assert_eq!(
        board_hubspot::app::lifecycle::poll(run.services())
            .await
            .unwrap(),
        0,
        "a replayed uninstall older than the connection changes nothing"
    );
    assert_eq!(run.status("acct-a").await["state"], "active");
    tokio::time::sleep(Duration::from_millis(10)).await;
    run.stack.shutdown().await;
}
