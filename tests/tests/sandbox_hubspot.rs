//! The HubSpot emulator through HTTP: OAuth, CRM objects, batches, search,
//! schema, associations, errors, limits, webhooks and faults, checked against
//! HubSpot's documented behaviour (and signatures verified independently here).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sandbox_hubspot::{Config, HubSpotSandbox};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const USER: &str = "pat-sandbox-user";
const SCOPES: &str = "oauth crm.objects.deals.read crm.objects.deals.write crm.objects.companies.read \
crm.objects.companies.write crm.objects.contacts.read crm.objects.contacts.write crm.schemas.deals.read \
crm.schemas.deals.write crm.objects.owners.read settings.users.teams.read";

struct Hs {
    base: String,
    http: reqwest::Client,
    sandbox: HubSpotSandbox,
}

impl Hs {
    async fn start(config: Config) -> Self {
        let sandbox = HubSpotSandbox::new(config);
        let base = tests::serve(sandbox.router()).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            http,
            sandbox,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, reqwest::Method::GET, path, None).await
    }

    /// Consent (approve) and code exchange: the app's tokens.
    async fn connect(&self, scopes: &str, granted: Option<&str>) -> Value {
        let query = format!(
            "client_id=sandbox-client-id&redirect_uri={}&scope={}&state=st-1",
            urlencode("http://127.0.0.1:9/oauth/callback"),
            urlencode(scopes)
        );
        let mut form = vec![("decision", "approve")];
        if let Some(g) = granted {
            form.push(("scopes", g));
        }
        let response = self
            .http
            .post(self.url(&format!("/oauth/authorize?{query}")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let (status, tokens) = self
            .exchange(&[("grant_type", "authorization_code"), ("code", &code)])
            .await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    async fn exchange(&self, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
            ("redirect_uri", "http://127.0.0.1:9/oauth/callback"),
        ];
        form.extend_from_slice(fields);
        let response = self
            .http
            .post(self.url("/oauth/2026-03/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn quiet() -> Config {
    Config {
        webhook_flush: Duration::from_millis(20),
        ..Config::default()
    }
}

#[tokio::test]
async fn oauth_consent_token_refresh_introspect_and_revoke() {
    let hs = Hs::start(quiet()).await;
    let page = hs
        .http
        .get(hs.url(&format!("/oauth/authorize?client_id=sandbox-client-id&redirect_uri=http://x/cb&scope={}&state=s", urlencode(SCOPES))))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("アプリを接続")
            && html.contains("1000001")
            && html.contains("crm.schemas.deals.write")
    );
    let bad_client = hs
        .http
        .get(hs.url("/oauth/authorize?client_id=nope&redirect_uri=http://x/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_client.status(), StatusCode::BAD_REQUEST);

    let denied = hs
        .http
        .post(hs.url("/oauth/authorize?client_id=sandbox-client-id&redirect_uri=http://x/cb&scope=oauth&state=st-9"))
        .form(&[("decision", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FOUND);
    let location = denied.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://x/cb?error=access_denied") && location.ends_with("state=st-9"),
        "{location}"
    );

    let tokens = hs.connect(SCOPES, None).await;
    assert_eq!(tokens["expires_in"], 1800);
    assert_eq!(tokens["hub_id"], 1000001);
    assert_eq!(tokens["token_type"], "bearer");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    let introspect = |token: String| {
        let http = hs.http.clone();
        let url = hs.url("/oauth/2026-03/token/introspect");
        async move {
            http.post(url)
                .form(&[
                    ("client_id", "sandbox-client-id"),
                    ("client_secret", "sandbox-client-secret"),
                    ("token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let info = introspect(access.clone()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["hub_id"], 1000001);
    assert_eq!(info["user"], "admin@sandbox.example.jp");
    assert!(
        info["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "crm.schemas.deals.write")
    );

    let (status, again) = hs
        .exchange(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(again["access_token"], tokens["access_token"]);
    assert_eq!(
        again["refresh_token"], tokens["refresh_token"],
        "one refresh token per app, portal and user"
    );

    let (status, bad) = hs
        .exchange(&[("grant_type", "refresh_token"), ("refresh_token", "nope")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"], "invalid_grant");
    assert_eq!(bad["status"], "BAD_REFRESH_TOKEN");

    let (status, wrong_secret) = hs
        .http
        .post(hs.url("/oauth/2026-03/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "x"),
            ("refresh_token", &refresh),
        ])
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong_secret.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let revoked = hs
        .http
        .post(hs.url("/oauth/2026-03/token/revoke"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
            ("token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(
        revoked.text().await.unwrap().is_empty(),
        "no body is documented"
    );
    let (status, _) = hs
        .exchange(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "revoked");
    assert_eq!(
        introspect(access.clone()).await["active"],
        false,
        "access tokens of a revoked grant die with it"
    );
    let (status, body) = hs.get(&access, "/crm/objects/2026-03/deals").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
}

#[tokio::test]
async fn codes_are_single_use_and_scopes_are_enforced() {
    let hs = Hs::start(quiet()).await;
    let query = "client_id=sandbox-client-id&redirect_uri=http://127.0.0.1:9/oauth/callback&scope=oauth%20crm.objects.deals.read&state=s";
    let response = hs
        .http
        .post(hs.url(&format!("/oauth/authorize?{query}")))
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (first, _) = hs
        .exchange(&[("grant_type", "authorization_code"), ("code", &code)])
        .await;
    assert_eq!(first, StatusCode::OK);
    let (second, body) = hs
        .exchange(&[("grant_type", "authorization_code"), ("code", &code)])
        .await;
    assert_eq!(second, StatusCode::BAD_REQUEST, "a used code is refused");
    assert_eq!(body["error"], "invalid_grant");

    let tokens = hs
        .connect(SCOPES, Some("oauth crm.objects.deals.read"))
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let (status, _) = hs.get(access, "/crm/objects/2026-03/deals").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = hs.get(access, "/crm/objects/2026-03/companies").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["category"], "MISSING_SCOPES");
    assert!(
        body["correlationId"].is_string() && body["status"] == "error" && body["errors"].is_array()
    );

    let expire = hs
        .http
        .post(hs.url("/_control/tokens/expire"))
        .send()
        .await
        .unwrap();
    assert_eq!(expire.status(), StatusCode::NO_CONTENT);
    let (status, body) = hs.get(access, "/crm/objects/2026-03/deals").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["category"], "EXPIRED_AUTHENTICATION");
}

#[tokio::test]
async fn objects_are_created_read_updated_archived_with_hubspots_validation() {
    let hs = Hs::start(quiet()).await;
    let (status, deal) = hs
        .post(USER, "/crm/objects/2026-03/deals", json!({"properties": {
            "dealname": "基幹システム刷新", "amount": 1200000, "pipeline": "default", "dealstage": "contractsent",
            "board_custom_filter_key": "A事業部用boardアカウント", "hubspot_owner_id": "6000001"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let id = deal["id"].as_str().unwrap().to_owned();
    assert_eq!(
        deal["properties"]["amount"], "1200000",
        "values are strings"
    );
    assert_eq!(deal["properties"]["hs_object_id"], id.as_str());
    assert!(
        deal["properties"]["createdate"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let (_, read) = hs.get(USER, &format!("/crm/objects/2026-03/deals/{id}?properties=dealname,board_custom_filter_key,closedate")).await;
    assert_eq!(
        read["properties"]["board_custom_filter_key"],
        "A事業部用boardアカウント"
    );
    assert_eq!(
        read["properties"]["closedate"],
        Value::Null,
        "requested but unset"
    );

    let (status, updated) = hs
        .call(
            USER,
            reqwest::Method::PATCH,
            &format!("/crm/objects/2026-03/deals/{id}"),
            Some(json!({"properties": {"dealstage": "closedwon"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        updated["properties"]["closedate"].is_string(),
        "closing a deal sets closedate: {updated}"
    );
    assert_ne!(
        updated["properties"]["hs_lastmodifieddate"],
        deal["properties"]["hs_lastmodifieddate"]
    );

    for (properties, code) in [
        (json!({"nope": "x"}), "PROPERTY_DOESNT_EXIST"),
        (json!({"dealname": "x".repeat(65_537)}), "INVALID_LENGTH"),
        (
            json!({"board_custom_filter_key": "C事業部"}),
            "INVALID_OPTION",
        ),
        (json!({"amount": "many"}), "INVALID_DECIMAL"),
        (json!({"dealstage": "7000011"}), "INVALID_OPTION"),
        (json!({"hs_object_id": "1"}), "READ_ONLY_VALUE"),
    ] {
        let (status, body) = hs
            .call(
                USER,
                reqwest::Method::PATCH,
                &format!("/crm/objects/2026-03/deals/{id}"),
                Some(json!({"properties": properties})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{properties}");
        assert_eq!(body["category"], "VALIDATION_ERROR");
        assert_eq!(body["errors"][0]["code"], code, "{body}");
    }

    let (status, _) = hs
        .call(
            USER,
            reqwest::Method::DELETE,
            &format!("/crm/objects/2026-03/deals/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = hs
        .get(USER, &format!("/crm/objects/2026-03/deals/{id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["category"], "OBJECT_NOT_FOUND");
    let (status, _) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/deals/{id}?archived=true"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hs.get("wrong-token", "/crm/objects/2026-03/deals").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn batches_are_bounded_partial_on_read_and_all_or_nothing_on_write() {
    let hs = Hs::start(quiet()).await;
    let inputs: Vec<Value> = (0..5).map(|i| json!({"properties": {"name": format!("株式会社テスト{i}"), "phone": "03-1234-5678"}})).collect();
    let (status, created) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ids: Vec<String> = created["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);

    let mut read_inputs: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    read_inputs.push(json!({"id": "999"}));
    let (status, read) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/batch/read",
            json!({"inputs": read_inputs, "properties": ["name"]}),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(read["results"].as_array().unwrap().len(), 5);
    assert_eq!(read["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(read["errors"][0]["context"]["ids"], json!(["999"]));
    assert!(
        read["results"][0].get("associations").is_none(),
        "batch read carries no associations"
    );

    let too_many: Vec<Value> = (0..101).map(|i| json!({"id": i.to_string()})).collect();
    let (status, _) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/batch/read",
            json!({"inputs": too_many}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let mut updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "properties": {"city": "千代田区"}}))
        .collect();
    updates[3]["properties"]["name"] = json!("x".repeat(70_000));
    let (status, body) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/batch/update",
            json!({"inputs": updates}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["context"]["ids"],
        json!([ids[3]]),
        "the failing input is named: {body}"
    );
    let (_, one) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/companies/{}?properties=city", ids[0]),
        )
        .await;
    assert_eq!(one["properties"]["city"], Value::Null, "all or nothing");

    // An input naming an object that does not exist fails alone: 207.
    let (status, partial) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/batch/update",
            json!({"inputs": [{"id": ids[1], "properties": {"city": "港区"}},
                              {"id": "99999999", "properties": {"city": "港区"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS, "{partial}");
    assert_eq!(partial["numErrors"], 1);
    assert_eq!(partial["results"].as_array().unwrap().len(), 1);
    assert_eq!(partial["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(partial["errors"][0]["context"]["ids"], json!(["99999999"]));
    let (_, one) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/companies/{}?properties=city", ids[1]),
        )
        .await;
    assert_eq!(one["properties"]["city"], "港区", "the rest applied");

    let (status, upserted) = hs
        .post(USER, "/crm/objects/2026-03/contacts/batch/upsert", json!({"inputs": [
            {"id": "yamada@example.jp", "idProperty": "email", "properties": {"lastname": "山田"}}]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upserted["results"][0]["new"], true);
    let (_, again) = hs
        .post(USER, "/crm/objects/2026-03/contacts/batch/upsert", json!({"inputs": [
            {"id": "yamada@example.jp", "idProperty": "email", "properties": {"firstname": "花子"}}]}))
        .await;
    assert_eq!(again["results"][0]["new"], false);
    assert_eq!(again["results"][0]["id"], upserted["results"][0]["id"]);

    let (status, _) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/batch/archive",
            json!({"inputs": [{"id": ids[0]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = hs
        .get(USER, &format!("/crm/objects/2026-03/companies/{}", ids[0]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listing pages with `after`.
    let (_, page1) = hs.get(USER, "/crm/objects/2026-03/companies?limit=2").await;
    assert_eq!(page1["results"].as_array().unwrap().len(), 2);
    let after = page1["paging"]["next"]["after"].as_str().unwrap();
    let (_, page2) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/companies?limit=2&after={after}"),
        )
        .await;
    assert_ne!(page2["results"][0]["id"], page1["results"][0]["id"]);
}

#[tokio::test]
async fn search_filters_pages_and_has_its_own_limit() {
    let hs = Hs::start(quiet()).await;
    for (i, stage) in ["contractsent", "closedwon", "closedlost", "contractsent"]
        .iter()
        .enumerate()
    {
        hs.post(USER, "/crm/objects/2026-03/deals", json!({"properties": {"dealname": format!("D{i}"), "dealstage": stage, "amount": (i + 1) * 100}})).await;
    }
    let search = |body: Value| hs.post(USER, "/crm/objects/2026-03/deals/search", body);
    let (status, eq) = search(json!({"filterGroups": [{"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "contractsent"}]}]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(eq["total"], 2);
    let (_, in_) = search(json!({"filterGroups": [{"filters": [{"propertyName": "dealstage", "operator": "IN", "values": ["closedwon", "closedlost"]}]}]})).await;
    assert_eq!(in_["total"], 2);
    let (_, gt) = search(json!({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GT", "value": "250"}]}]})).await;
    assert_eq!(gt["total"], 2);
    let (_, has) = search(json!({"filterGroups": [{"filters": [{"propertyName": "closedate", "operator": "HAS_PROPERTY"}]}]})).await;
    assert_eq!(has["total"], 2, "closed deals got a closedate");
    let (_, or) = search(json!({"filterGroups": [
        {"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "D0"}]},
        {"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "D1"}]}]}))
    .await;
    assert_eq!(or["total"], 2, "groups are ORed");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, paged) = search(json!({"limit": 3, "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}], "properties": ["amount"]})).await;
    assert_eq!(paged["results"][0]["properties"]["amount"], "400");
    let after = paged["paging"]["next"]["after"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, rest) = search(json!({"limit": 3, "after": after, "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}]})).await;
    assert_eq!(rest["results"].as_array().unwrap().len(), 1);
    assert!(rest.get("paging").is_none());

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, body) = search(json!({})).await;
        statuses.push((status, body));
    }
    assert!(statuses[..5].iter().all(|(s, _)| *s == StatusCode::OK));
    assert_eq!(statuses[5].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses[5].1["policyName"], "SECONDLY");
}

/// Many tenants in one emulator: more portals, each its own person token,
/// objects and rate limits; an unknown portal's token is refused.
#[tokio::test]
async fn portals_added_for_many_tenants_keep_their_objects_and_limits_apart() {
    let hs = Hs::start(quiet()).await;
    let response = hs
        .http
        .post(hs.url("/_control/portals"))
        .json(&json!({"count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let added: Value = response.json().await.unwrap();
    let portals: Vec<u64> = added["portals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(portals, vec![1_000_003, 1_000_004]);
    let token = |portal: u64| format!("pat-sandbox-user-{portal}");
    let (status, created) = hs
        .call(
            &token(portals[0]),
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "別ポータル"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let path = format!("/crm/objects/2026-03/deals/{id}");
    let (status, _) = hs.get(&token(portals[0]), &path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hs.get(&token(portals[1]), &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another portal's deal");
    let (status, _) = hs.get(USER, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the demo portal's person");
    assert_eq!(
        hs.sandbox
            .property(portals[0], "deals", id.parse().unwrap(), "dealname")
            .as_deref(),
        Some("別ポータル")
    );
    let (status, _) = hs
        .get("pat-sandbox-user-999", "/crm/objects/2026-03/deals?limit=1")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no such portal");
    let (status, _) = hs
        .call(
            USER,
            reqwest::Method::POST,
            "/_control/portals",
            Some(json!({"count": 5001})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ten_secondly_limit_is_per_app_per_portal_with_headers() {
    let hs = Hs::start(quiet()).await;
    let tokens = hs.connect(SCOPES, None).await;
    let access = tokens["access_token"].as_str().unwrap();
    let mut last = None;
    for i in 1..=111 {
        let response = hs
            .http
            .get(hs.url("/crm/objects/2026-03/deals?limit=1"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        if i <= 110 {
            assert_eq!(response.status(), StatusCode::OK, "request {i}");
            assert_eq!(headers["x-hubspot-ratelimit-max"], "110");
            assert_eq!(
                headers["x-hubspot-ratelimit-remaining"].to_str().unwrap(),
                (110 - i).to_string()
            );
            assert_eq!(
                headers["x-hubspot-ratelimit-interval-milliseconds"],
                "10000"
            );
        } else {
            last = Some((
                response.status(),
                headers,
                response.json::<Value>().await.unwrap(),
            ));
        }
    }
    let (status, headers, body) = last.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(body["category"], "RATE_LIMITS");
    assert_eq!(headers["x-hubspot-ratelimit-remaining"], "0");
    let (status, _) = hs.get(USER, "/crm/objects/2026-03/deals?limit=1").await;
    assert_eq!(status, StatusCode::OK, "the user token has its own bucket");

    let (_, log) = hs.get(USER, "/_control/requests").await;
    let app_requests = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["token"] == "app")
        .count();
    assert_eq!(app_requests, 111);
}

#[tokio::test]
async fn schema_pipelines_owners_teams_and_account() {
    let hs = Hs::start(quiet()).await;
    let (_, props) = hs.get(USER, "/crm/properties/2026-03/deals").await;
    let names: Vec<&str> = props["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"board_custom_filter_key") && names.contains(&"dealstage"));
    let (_, key) = hs
        .get(
            USER,
            "/crm/properties/2026-03/deals/board_custom_filter_key",
        )
        .await;
    assert_eq!(key["type"], "enumeration");
    assert_eq!(key["options"][0]["value"], "A事業部用boardアカウント");
    assert_eq!(key["options"][0]["label"], "A事業部用boardアカウント");

    let exclusion = json!({"name": "exclude_from_board_integration", "label": "board連携から除外", "type": "bool",
        "fieldType": "booleancheckbox", "groupName": "dealinformation",
        "options": [{"label": "はい", "value": "true"}, {"label": "いいえ", "value": "false"}]});
    let (status, created) = hs
        .post(USER, "/crm/properties/2026-03/deals", exclusion.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, conflict) = hs
        .post(USER, "/crm/properties/2026-03/deals", exclusion)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["category"], "CONFLICT");
    let (status, _) = hs
        .post(
            USER,
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "x", "exclude_from_board_integration": "true"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "a custom property is writable");
    let (status, _) = hs
        .post(
            USER,
            "/crm/objects/2026-03/deals",
            json!({"properties": {"exclude_from_board_integration": "はい"}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "enumerations store option values, not labels"
    );
    let (status, _) = hs.get(USER, "/crm/properties/2026-03/deals/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, pipelines) = hs.get(USER, "/crm/pipelines/2026-03/deals").await;
    let default = &pipelines["results"][0];
    assert_eq!(default["id"], "default");
    let stages: Vec<&str> = default["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "appointmentscheduled",
            "qualifiedtobuy",
            "presentationscheduled",
            "decisionmakerboughtin",
            "contractsent",
            "closedwon",
            "closedlost"
        ]
    );
    assert_eq!(pipelines["results"].as_array().unwrap().len(), 2);

    let (_, owners) = hs.get(USER, "/crm/owners/2026-03").await;
    assert_eq!(owners["results"].as_array().unwrap().len(), 3);
    let (_, teams) = hs.get(USER, "/settings/users/2026-03/teams").await;
    let team_names: Vec<&str> = teams["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(team_names, ["テストチーム1", "テストチーム2"]);
    let (_, account) = hs.get(USER, "/account-info/2026-03/details").await;
    assert_eq!(account["timeZone"], "Asia/Tokyo");
}

#[tokio::test]
async fn associations_default_labelled_batch_and_per_object() {
    let hs = Hs::start(quiet()).await;
    let (_, company) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies",
            json!({"properties": {"name": "株式会社A"}}),
        )
        .await;
    let (_, contact) = hs
        .post(
            USER,
            "/crm/objects/2026-03/contacts",
            json!({"properties": {"lastname": "山田"}}),
        )
        .await;
    let company_id = company["id"].as_str().unwrap();
    let contact_id = contact["id"].as_str().unwrap();
    let (status, deal) = hs
        .post(USER, "/crm/objects/2026-03/deals", json!({"properties": {"dealname": "D"}, "associations": [
            {"to": {"id": company_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]},
            {"to": {"id": contact_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deal_id = deal["id"].as_str().unwrap();

    let (_, listed) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/deals/{deal_id}/associations/companies"),
        )
        .await;
    let types: Vec<u64> = listed["results"][0]["associationTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["typeId"].as_u64().unwrap())
        .collect();
    assert!(types.contains(&5) && types.contains(&341), "{listed}");
    let (_, read) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/deals/{deal_id}?associations=companies,contacts"),
        )
        .await;
    assert_eq!(
        read["associations"]["contacts"]["results"][0]["id"],
        contact_id
    );

    let (status, batch) = hs
        .post(
            USER,
            "/crm/associations/2026-03/deals/companies/batch/read",
            json!({"inputs": [{"id": deal_id}, {"id": "424242"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(
        batch["results"][0]["to"][0]["toObjectId"]
            .as_u64()
            .unwrap()
            .to_string(),
        company_id
    );
    assert_eq!(batch["errors"].as_array().unwrap().len(), 1);

    let (status, _) = hs
        .post(
            USER,
            "/crm/associations/2026-03/contacts/companies/batch/associate/default",
            json!({"inputs": [{"from": {"id": contact_id}, "to": {"id": company_id}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, back) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/companies/{company_id}/associations/contacts"),
        )
        .await;
    assert_eq!(
        back["results"][0]["associationTypes"][0]["typeId"], 280,
        "the inverse type"
    );

    let (status, _) = hs
        .post(USER, "/crm/associations/2026-03/deals/companies/batch/create", json!({"inputs": [{"from": {"id": deal_id}, "to": {"id": company_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "279 is contact→company, not deal→company"
    );
    let (status, _) = hs
        .post(
            USER,
            "/crm/associations/2026-03/deals/companies/batch/archive",
            json!({"inputs": [{"from": {"id": deal_id}, "to": [{"id": company_id}]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, none) = hs
        .get(
            USER,
            &format!("/crm/objects/2026-03/deals/{deal_id}/associations/companies"),
        )
        .await;
    assert!(none["results"].as_array().unwrap().is_empty());
}

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A webhook receiver that fails its first `fail_first` deliveries.
async fn receiver(fail_first: usize) -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let failures = Arc::new(Mutex::new(fail_first));
    let app = axum::Router::new().route(
        "/hooks/hubspot",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            let failures = failures.clone();
            async move {
                store.lock().unwrap().push((headers, body));
                let mut left = failures.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let base = tests::serve(app).await;
    (format!("{base}/hooks/hubspot"), received)
}

/// v3 as HubSpot documents it, written independently of both the sandbox and the service.
fn verify_v3(headers: &axum::http::HeaderMap, url: &str, body: &str) -> bool {
    let ts = headers["x-hubspot-request-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"sandbox-client-secret").unwrap();
    mac.update(format!("POST{url}{body}{ts}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers["x-hubspot-signature-v3"].to_str().unwrap() == expected
}

async fn wait_for(received: &Received, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let events: Vec<Value> = received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, body)| serde_json::from_str::<Vec<Value>>(body).unwrap())
            .collect();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} events arrived");
}

#[tokio::test]
async fn webhooks_are_signed_attributed_retried_and_only_sent_while_installed() {
    let (url, received) = receiver(1).await;
    let hs = Hs::start(Config {
        webhook_url: Some(url.clone()),
        ..quiet()
    })
    .await;
    hs.sandbox.spawn_webhook_delivery();

    hs.post(
        USER,
        "/crm/objects/2026-03/deals",
        json!({"properties": {"dealname": "before install"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "not installed: no events"
    );

    let tokens = hs.connect(SCOPES, None).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (_, deal) = hs
        .post(
            USER,
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "by a person"}}),
        )
        .await;
    let events = wait_for(&received, 2).await; // the first delivery failed and was retried
    let deliveries: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_str::<Vec<Value>>(b).unwrap()[0].clone())
        .collect();
    assert_eq!(deliveries[0]["attemptNumber"], 0);
    assert_eq!(
        deliveries[1]["attemptNumber"], 1,
        "retried after a 500 with attemptNumber counting"
    );
    let creation = &events[1];
    // Our project subscribes under crmObjects: the generic format.
    assert_eq!(creation["subscriptionType"], "object.creation");
    assert_eq!(creation["objectTypeId"], "0-3");
    assert_eq!(
        creation["objectId"].as_u64().unwrap().to_string(),
        deal["id"].as_str().unwrap()
    );
    assert_eq!(creation["changeSource"], "CRM_UI");
    assert_eq!(creation["portalId"], 1000001);
    assert_eq!(creation["appId"], 777);
    for (headers, body) in received.lock().unwrap().iter() {
        assert!(verify_v3(headers, &url, body), "v3 signature verifies");
        let v1: String = Sha256::digest(format!("sandbox-client-secret{body}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(headers["x-hubspot-signature"].to_str().unwrap(), v1);
    }

    let id = deal["id"].as_str().unwrap();
    hs.call(
        access,
        reqwest::Method::PATCH,
        &format!("/crm/objects/2026-03/deals/{id}"),
        Some(json!({"properties": {"dealname": "by the app", "amount": "5", "description": "not subscribed"}})),
    )
    .await;
    let events = wait_for(&received, 4).await;
    let changes: Vec<&Value> = events
        .iter()
        .filter(|e| e["subscriptionType"] == "object.propertyChange")
        .collect();
    assert_eq!(
        changes.len(),
        2,
        "one event per changed subscribed property (description is not subscribed): {changes:?}"
    );
    assert!(changes.iter().all(|e| e["objectTypeId"] == "0-3"));
    assert!(
        changes
            .iter()
            .all(|e| e["changeSource"] == "INTEGRATION" && e["sourceId"] == "777")
    );
    assert!(
        changes
            .iter()
            .any(|e| e["propertyName"] == "dealname" && e["propertyValue"] == "by the app")
    );

    hs.call(
        USER,
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{id}"),
        None,
    )
    .await;
    let events = wait_for(&received, 5).await;
    assert_eq!(events[4]["subscriptionType"], "object.deletion");
    let restore = hs
        .http
        .post(hs.url("/_control/restore"))
        .json(&json!({"objectType": "deals", "objectId": id.parse::<u64>().unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(restore.status(), StatusCode::NO_CONTENT);
    let events = wait_for(&received, 6).await;
    assert_eq!(events[5]["subscriptionType"], "object.restore");

    let uninstall = hs
        .http
        .post(hs.url("/_control/uninstall"))
        .json(&json!({"portalId": 1000001}))
        .send()
        .await
        .unwrap();
    assert_eq!(uninstall.status(), StatusCode::NO_CONTENT);
    hs.post(
        USER,
        "/crm/objects/2026-03/deals",
        json!({"properties": {"dealname": "after uninstall"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        wait_for(&received, 6).await.len(),
        6,
        "no events after uninstall"
    );
    let (status, _) = hs.get(access, "/crm/objects/2026-03/deals").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "uninstall revokes the app's tokens"
    );
}

/// The webhooks journal as HubSpot documents it: the app's client-credentials
/// token, `{currentOffset, expiresAt, url}`, the entry in a file behind a
/// pre-signed URL that expires, lifecycle entries only once subscribed, and
/// offsets that expire (404).
#[tokio::test]
async fn the_journal_serves_lifecycle_entries_as_files_behind_expiring_urls() {
    let hs = Hs::start(quiet()).await;
    let (_, app) = hs
        .exchange(&[
            ("grant_type", "client_credentials"),
            (
                "scope",
                "developer.webhooks_journal.read developer.webhooks_journal.subscriptions.read \
                 developer.webhooks_journal.subscriptions.write",
            ),
        ])
        .await;
    let app = app["access_token"].as_str().unwrap().to_owned();
    let latest = "/webhooks-journal/journal/2026-03/latest";
    let (status, _) = hs.get(USER, latest).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a portal's token is refused");
    let (status, _) = hs.get(&app, latest).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "nothing journaled yet");

    hs.connect(SCOPES, None).await;
    let (status, _) = hs.get(&app, latest).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "no lifecycle subscription yet: the install is not journaled"
    );
    let subscribe = json!({"subscriptionType": "APP_LIFECYCLE_EVENT", "actions": ["APP_INSTALL", "APP_UNINSTALL"]});
    let (status, created) = hs
        .post(
            &app,
            "/webhooks-journal/subscriptions/2026-03",
            subscribe.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, again) = hs
        .post(&app, "/webhooks-journal/subscriptions/2026-03", subscribe)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["id"], created["id"],
        "one lifecycle subscription per app"
    );
    let (_, listed) = hs
        .get(&app, "/webhooks-journal/subscriptions/2026-03")
        .await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 1);

    hs.http
        .post(hs.url("/_control/uninstall"))
        .json(&json!({"portalId": 1000001}))
        .send()
        .await
        .unwrap();
    let (status, pointer) = hs.get(&app, latest).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = pointer.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["currentOffset", "expiresAt", "url"]);
    let url = pointer["url"].as_str().unwrap();
    let file: Value = hs.http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(file[0]["subscriptionType"], "APP_LIFECYCLE_EVENT");
    assert_eq!(file[0]["action"], "APP_UNINSTALL");
    assert_eq!(file[0]["portalId"], 1000001);
    let tampered = hs
        .http
        .get(url.replace("signature=", "signature=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);

    let offset = pointer["currentOffset"].as_str().unwrap();
    let (_, earliest) = hs
        .get(&app, "/webhooks-journal/journal/2026-03/earliest")
        .await;
    assert_eq!(earliest["currentOffset"], offset, "one entry in all");
    let next = format!("/webhooks-journal/journal/2026-03/offset/{offset}/next");
    let (status, _) = hs.get(&app, &next).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "nothing after the latest");
    let (status, _) = hs
        .get(
            &app,
            "/webhooks-journal/journal/2026-03/offset/no-such-offset/next",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let settings = |body: Value| {
        hs.http
            .post(hs.url("/_control/settings"))
            .json(&body)
            .send()
    };
    settings(json!({"journal_url_ttl_ms": 0})).await.unwrap();
    let (_, pointer) = hs.get(&app, latest).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let expired = hs
        .http
        .get(pointer["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::FORBIDDEN, "the URL expired");
    settings(json!({"journal_retention_ms": 0})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, _) = hs.get(&app, &next).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the offset is no longer kept"
    );
}

#[tokio::test]
async fn merges_association_changes_shuffles_and_duplicates() {
    let (url, received) = receiver(0).await;
    let hs = Hs::start(Config {
        webhook_url: Some(url),
        ..quiet()
    })
    .await;
    hs.sandbox.spawn_webhook_delivery();
    hs.connect(SCOPES, None).await;
    let set = hs
        .http
        .post(hs.url("/_control/faults"))
        .json(&json!({"webhooks": {"duplicate_rate": 1.0, "shuffle": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let (_, a) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies",
            json!({"properties": {"name": "A"}}),
        )
        .await;
    let (_, b) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies",
            json!({"properties": {"name": "B", "phone": "1"}}),
        )
        .await;
    let (status, merged) = hs
        .post(
            USER,
            "/crm/objects/2026-03/companies/merge",
            json!({"primaryObjectId": a["id"], "objectIdToMerge": b["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(merged["properties"]["name"], "A");
    let events = wait_for(&received, 6).await;
    let merges: Vec<&Value> = events
        .iter()
        .filter(|e| e["subscriptionType"] == "object.merge" && e["objectTypeId"] == "0-2")
        .collect();
    assert_eq!(merges.len(), 2, "every event duplicated");
    assert_eq!(
        merges[0]["mergedObjectIds"][0]
            .as_u64()
            .unwrap()
            .to_string(),
        b["id"].as_str().unwrap()
    );
    let (status, _) = hs
        .get(
            USER,
            &format!(
                "/crm/objects/2026-03/companies/{}",
                b["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the merged object is gone");

    let (_, deal) = hs
        .post(
            USER,
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "D"}}),
        )
        .await;
    let path = format!(
        "/crm/objects/2026-03/deals/{}/associations/default/companies/{}",
        deal["id"].as_str().unwrap(),
        a["id"].as_str().unwrap()
    );
    let (status, _) = hs.call(USER, reqwest::Method::PUT, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    let events = wait_for(&received, 12).await;
    let change = events
        .iter()
        .find(|e| {
            e["subscriptionType"] == "object.associationChange" && e["fromObjectTypeId"] == "0-3"
        })
        .expect("association change");
    assert_eq!(change["associationType"], "DEAL_TO_COMPANY");
    assert_eq!(change["associationRemoved"], false);
    assert_eq!(change["toObjectTypeId"], "0-2");
    assert_eq!(change["associationCategory"], "HUBSPOT_DEFINED");
    assert!(change["associationTypeId"].as_u64().is_some());
    assert!(
        change.get("objectId").is_none() && change.get("objectTypeId").is_none(),
        "HubSpot lists neither for association changes: {change}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["subscriptionType"] == "object.associationChange"
                && e["fromObjectTypeId"] == "0-2"
                && e["toObjectId"].as_u64().map(|i| i.to_string()).as_deref()
                    == deal["id"].as_str()),
        "one event for each side"
    );
}

/// The emulator sends what the project's webhooks file subscribes to, in the
/// format of its section: a legacy subscription gets `deal.propertyChange`, an
/// unsubscribed property or kind gets nothing.
#[tokio::test]
async fn events_follow_the_subscriptions_file_and_its_sections() {
    let dir = std::env::temp_dir().join(format!("hsmeta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("webhooks-hsmeta.json");
    std::fs::write(
        &file,
        json!({"uid": "w", "type": "webhooks", "config": {"settings": {"targetUrl": "https://x"},
            "subscriptions": {
                "legacyCrmObjects": [
                    {"subscriptionType": "deal.propertyChange", "propertyName": "dealname", "active": true},
                    {"subscriptionType": "deal.deletion", "active": false}
                ],
                "crmObjects": [
                    {"subscriptionType": "object.creation", "objectType": "company", "active": true}
                ]
            }}})
        .to_string(),
    )
    .unwrap();
    let (url, received) = receiver(0).await;
    let hs = Hs::start(Config {
        webhook_url: Some(url),
        webhooks_hsmeta: file,
        ..quiet()
    })
    .await;
    hs.sandbox.spawn_webhook_delivery();
    hs.connect(SCOPES, None).await;
    let (_, deal) = hs
        .post(
            USER,
            "/crm/objects/2026-03/deals",
            json!({"properties": {"dealname": "D"}}),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    hs.call(
        USER,
        reqwest::Method::PATCH,
        &format!("/crm/objects/2026-03/deals/{id}"),
        Some(json!({"properties": {"dealname": "E", "amount": "3"}})),
    )
    .await;
    hs.call(
        USER,
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{id}"),
        None,
    )
    .await;
    hs.post(
        USER,
        "/crm/objects/2026-03/companies",
        json!({"properties": {"name": "C"}}),
    )
    .await;
    wait_for(&received, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = wait_for(&received, 2).await;
    assert_eq!(
        events.len(),
        2,
        "only the subscribed kinds and property: {events:?}"
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["subscriptionType"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"deal.propertyChange") && kinds.contains(&"object.creation"),
        "{kinds:?}"
    );
    let change = events
        .iter()
        .find(|e| e["subscriptionType"] == "deal.propertyChange")
        .unwrap();
    assert_eq!(change["propertyName"], "dealname");
    assert!(
        change.get("objectTypeId").is_none(),
        "the legacy format has no objectTypeId"
    );
    let creation = events
        .iter()
        .find(|e| e["subscriptionType"] == "object.creation")
        .unwrap();
    assert_eq!(creation["objectTypeId"], "0-2");
    std::fs::remove_dir_all(&dir).ok();
}

/// The file the emulator reads is our project's own, and every entry of it is
/// understood (a typo in the file fails here, not silently in production).
#[test]
fn the_emulator_reads_every_subscription_of_our_project() {
    let path = sandbox_hubspot::project_webhooks_hsmeta();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let loaded = sandbox_hubspot::Subscriptions::load(&path).unwrap();
    let entries: Vec<&Value> = file["config"]["subscriptions"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap())
        .collect();
    assert_eq!(loaded.0.len(), entries.len());
    for (entry, sub) in entries.iter().zip(&loaded.0) {
        assert_eq!(entry["subscriptionType"], sub.subscription_type.as_str());
        assert_eq!(entry["propertyName"].as_str(), sub.property_name.as_deref());
        assert_eq!(
            sub.section,
            sandbox_hubspot::Section::CrmObjects,
            "ours stay under crmObjects"
        );
    }
    assert!(sandbox_hubspot::Subscriptions::parse(
        r#"{"type":"webhooks","config":{"subscriptions":{"crmObjects":[{"subscriptionType":"deal.creation","active":true}]}}}"#
    )
    .is_err(), "a legacy type under crmObjects is refused");
}

#[tokio::test]
async fn injected_faults_answer_instead_of_the_api() {
    let hs = Hs::start(quiet()).await;
    for status in [429u16, 500, 502, 503] {
        hs.http
            .post(hs.url("/_control/faults"))
            .json(&json!({"error_rates": [[status, 1.0]]}))
            .send()
            .await
            .unwrap();
        let (got, body) = hs.get(USER, "/crm/objects/2026-03/deals").await;
        assert_eq!(got.as_u16(), status);
        assert_eq!(body["status"], "error");
    }
    // A 429 names its policy and, as HubSpot does not promise one, has no Retry-After.
    hs.http
        .post(hs.url("/_control/faults"))
        .json(&json!({"error_rates": [[429, 1.0]], "path_prefix": "/crm/objects/2026-03/deals", "policy_name": "DAILY"}))
        .send()
        .await
        .unwrap();
    let limited = hs
        .http
        .get(hs.url("/crm/objects/2026-03/deals"))
        .bearer_auth(USER)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get("retry-after").is_none());
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["policyName"], "DAILY");
    assert_eq!(body["errorType"], "RATE_LIMIT");
    hs.http
        .post(hs.url("/_control/faults"))
        .json(&json!({"timeout_rate": 1.0, "timeout_ms": 300}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, _) = hs.get(USER, "/crm/objects/2026-03/deals").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() >= Duration::from_millis(300));
    hs.http
        .post(hs.url("/_control/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, _) = hs.get(USER, "/crm/objects/2026-03/deals").await;
    assert_eq!(status, StatusCode::OK);
}

/// A receiver that answers after `delay`, counting the most requests it had
/// in flight at once.
async fn slow_receiver(delay: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>, Received) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let received: Received = Arc::default();
    let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (store, counter, peak) = (received.clone(), in_flight.clone(), most.clone());
    let app = axum::Router::new().route(
        "/hooks/hubspot",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (store, counter, peak) = (store.clone(), counter.clone(), peak.clone());
            async move {
                let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                store.lock().unwrap().push((headers, body));
                counter.fetch_sub(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let base = tests::serve(app).await;
    (format!("{base}/hooks/hubspot"), most, received)
}

/// HubSpot keeps up to the project's `settings.maxConcurrentRequests` webhook
/// requests in flight, each of up to 100 events; without the setting the
/// emulator sends one at a time.
#[tokio::test]
async fn deliveries_overlap_up_to_the_projects_max_concurrent_requests() {
    for (setting, expected) in [(Some(3), 3), (None, 1)] {
        let dir = std::env::temp_dir().join(format!(
            "hsmeta-concurrency-{}-{expected}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("webhooks-hsmeta.json");
        let mut settings = json!({"targetUrl": "https://x"});
        if let Some(n) = setting {
            settings["maxConcurrentRequests"] = json!(n);
        }
        std::fs::write(
            &file,
            json!({"uid": "w", "type": "webhooks", "config": {"settings": settings,
            "subscriptions": {"crmObjects": [
                {"subscriptionType": "object.creation", "objectType": "deal", "active": true}
            ]}}})
            .to_string(),
        )
        .unwrap();
        let (url, most, received) = slow_receiver(Duration::from_millis(400)).await;
        let hs = Hs::start(Config {
            webhook_url: Some(url),
            webhooks_hsmeta: file,
            ..quiet()
        })
        .await;
        hs.connect(SCOPES, None).await;
        for batch in 0..6 {
            let inputs: Vec<Value> = (0..100)
                .map(|i| json!({"properties": {"dealname": format!("D{batch}-{i}")}}))
                .collect();
            let (status, _) = hs
                .post(
                    USER,
                    "/crm/objects/2026-03/deals/batch/create",
                    json!({ "inputs": inputs }),
                )
                .await;
            assert!(status.is_success(), "{status}");
        }
        hs.sandbox.spawn_webhook_delivery();
        let events = wait_for(&received, 600).await;
        assert_eq!(events.len(), 600);
        let bodies = received.lock().unwrap().len();
        assert_eq!(bodies, 6, "100 events a request");
        assert_eq!(
            most.load(std::sync::atomic::Ordering::SeqCst),
            expected,
            "requests in flight at once with maxConcurrentRequests {setting:?}"
        );
    }
}
