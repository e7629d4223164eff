//! The settings screens over HTTP (SPEC §4): live pipelines and the status
//! mapping, filter rules and options, the label, the owner table, the options;
//! every change validated and versioned.

use std::net::SocketAddr;

use board_hubspot::config::Settings;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

struct Run {
    stack: local_stack::Stack,
    base: String,
    http: reqwest::Client,
}

fn jwt(account: &str) -> String {
    let claims = json!({"iss": "board", "aud": "board-hubspot", "account_id": account, "user_id": 1, "role": "admin",
                        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 3600});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap()
}

impl Run {
    async fn start() -> Self {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = probe.local_addr().unwrap();
        drop(probe);
        let base = format!("http://{addr}");
        let public = base.clone();
        let settings = Settings::from_lookup(
            move |n| (n == "PUBLIC_BASE_URL").then(|| public.clone()),
            true,
        )
        .unwrap();
        let stack = local_stack::start(settings, addr).await.unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { stack, base, http }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        account: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(jwt(account));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, "acct-a", None).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, "acct-a", Some(body))
            .await
    }

    async fn connect(&self, account: &str) {
        let (_, authorize) = self
            .call(
                reqwest::Method::POST,
                "/v1/hubspot/connection/authorize",
                account,
                None,
            )
            .await;
        let consent = self
            .http
            .post(authorize["authorize_url"].as_str().unwrap())
            .form(&[("decision", "approve")])
            .send()
            .await
            .unwrap();
        let back = self
            .http
            .get(consent.headers()["location"].to_str().unwrap())
            .send()
            .await
            .unwrap();
        let settings = back.headers()["location"].to_str().unwrap().to_owned();
        let confirmation = url::Url::parse(&settings)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "confirmation")
            .unwrap()
            .1
            .into_owned();
        let (status, _) = self
            .call(
                reqwest::Method::POST,
                "/v1/hubspot/connection/confirm",
                account,
                Some(json!({"confirmation": confirmation})),
            )
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn settings_need_a_connection() {
    let run = Run::start().await;
    let (status, body) = run.get("/v1/hubspot/pipelines").await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "not_connected");
    let (status, body) = run.get("/v1/hubspot/options").await;
    assert_eq!(
        status, 200,
        "stored settings are readable before connecting"
    );
    assert_eq!(
        body,
        json!({"amount_basis": "excluding_tax", "two_way_customer_names": false, "config_version": 0})
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn pipelines_and_the_status_mapping() {
    let run = Run::start().await;
    run.connect("acct-a").await;
    let (status, view) = run.get("/v1/hubspot/pipelines").await;
    assert_eq!(status, 200, "{view}");
    let default = &view["items"][0];
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
    assert_eq!(
        default["suggested_mapping"],
        json!({"closedlost": 9, "closedwon": 4, "contractsent": 1})
    );
    assert_eq!(
        default["problems"].as_array().unwrap().len(),
        7,
        "every stage unmapped"
    );
    assert_eq!(view["items"][1]["suggested_mapping"], Value::Null);
    assert_eq!(view["config_version"], 0);

    let (status, body) = run.put("/v1/hubspot/pipelines/default/status-mapping", json!({"stages": {"contractsent": 1, "closedwon": 4, "decisionmakerboughtin": 4, "closedlost": 9}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config_version"], 1);
    let default = &body["items"][0];
    let status_of = |id: &str| {
        default["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["order_status"]
            .clone()
    };
    assert_eq!(status_of("closedwon"), 4);
    assert_eq!(status_of("qualifiedtobuy"), Value::Null);
    assert_eq!(
        default["stage_for_status"]["4"], "decisionmakerboughtin",
        "the first stage in display order"
    );
    assert_eq!(default["stages"][5]["order_status_label"], "受注確定");

    let (status, body) = run
        .put(
            "/v1/hubspot/pipelines/default/status-mapping",
            json!({"stages": {"decisionmakerboughtin": null}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["config_version"], 2);
    assert_eq!(
        body["items"][0]["stage_for_status"]["4"], "closedwon",
        "null clears one stage, others stay"
    );

    for (body, field) in [
        (json!({"stages": {"nope": 4}}), "stages.nope"),
        (json!({"stages": {"closedwon": 6}}), "stages.closedwon"),
        (json!({"stages": {"closedwon": "4"}}), "stages.closedwon"),
        (json!({"stage": {}}), "stages"),
    ] {
        let (status, problem) = run
            .put("/v1/hubspot/pipelines/default/status-mapping", body.clone())
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(problem["field"], field);
        assert_eq!(problem["code"], "invalid_field");
    }
    let (status, _) = run
        .put(
            "/v1/hubspot/pipelines/9999/status-mapping",
            json!({"stages": {}}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, status_view) = run.get("/v1/hubspot/connection").await;
    assert_eq!(
        status_view["config_version"], 2,
        "failed changes do not bump the version"
    );
    // One mapping item per HubSpot pipeline, named by its label.
    let mappings: Vec<&Value> = status_view["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["item"] == "status_mapping")
        .collect();
    assert!(!mappings.is_empty(), "{status_view}");
    assert!(
        mappings.iter().all(|c| c["pipeline_id"].is_string()),
        "{mappings:?}"
    );
    let default = mappings
        .iter()
        .find(|c| c["pipeline_id"] == "default")
        .unwrap_or_else(|| panic!("{mappings:?}"));
    assert_eq!(default["done"], true);
    assert_eq!(default["pipeline_label"], "Sales Pipeline");
    assert!(
        default["message"]
            .as_str()
            .unwrap()
            .contains("Sales Pipeline"),
        "{default}"
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn filter_rules_options_label_owners_and_options() {
    let run = Run::start().await;
    run.connect("acct-a").await;
    let (status, options) = run.get("/v1/hubspot/filter-options").await;
    assert_eq!(status, 200);
    let teams: Vec<&str> = options["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(teams, ["テストチーム1", "テストチーム2"]);
    assert_eq!(options["owners"].as_array().unwrap().len(), 3);
    assert_eq!(options["filter_key"]["enumeration"], true);
    assert_eq!(
        options["filter_key"]["options"][0]["value"],
        "A事業部用boardアカウント"
    );

    let rules = json!({"rules": [{"conditions": [{"field": "team", "values": ["8000001"]}]},
                                  {"conditions": [{"field": "filter_key", "values": ["A事業部用boardアカウント"]}]}]});
    let (status, saved) = run.put("/v1/hubspot/filter-rules", rules.clone()).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["rules"], rules["rules"]);
    let (_, read) = run.get("/v1/hubspot/filter-rules").await;
    assert_eq!(read["rules"], rules["rules"]);
    for (body, field) in [
        (
            json!({"rules": [{"conditions": [{"field": "team", "values": ["424242"]}]}]}),
            "rules[0].conditions[0].values",
        ),
        (
            json!({"rules": [{"conditions": [{"field": "filter_key", "values": ["C事業部"]}]}]}),
            "rules[0].conditions[0].values",
        ),
        (
            json!({"rules": [{"conditions": []}]}),
            "rules[0].conditions",
        ),
        (
            json!({"rules": [{"conditions": [{"field": "stage", "values": ["x"]}]}]}),
            "rules",
        ),
    ] {
        let (status, problem) = run.put("/v1/hubspot/filter-rules", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(problem["field"], field, "{problem}");
    }

    let (status, label) = run
        .put("/v1/hubspot/account-label", json!({"label": "  A事業部 "}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(label["label"], "A事業部");
    let (status, problem) = run
        .put(
            "/v1/hubspot/account-label",
            json!({"label": "あ".repeat(51)}),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("label")));
    for bad in ["A\u{0}B", "A\u{202E}B"] {
        let (status, problem) = run
            .put("/v1/hubspot/account-label", json!({"label": bad}))
            .await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (400, Some("label")),
            "{bad:?}"
        );
    }
    let (_, kept) = run.get("/v1/hubspot/account-label").await;
    assert_eq!(kept["label"], "A事業部", "refused labels change nothing");
    let (status, problem) = run.get("/v1/hubspot/drafts?cursor=zzz").await;
    assert_eq!(status, 400, "a malformed cursor: {problem}");
    let (_, cleared) = run
        .put("/v1/hubspot/account-label", json!({"label": ""}))
        .await;
    assert_eq!(cleared["label"], Value::Null);

    let (status, owners) = run.get("/v1/hubspot/owner-mapping").await;
    assert_eq!(status, 200, "{owners}");
    let rows = owners["items"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|r| r["source"] == "email"),
        "pre-filled by e-mail"
    );
    let sato = rows
        .iter()
        .find(|r| r["owner_email"] == "sato@sandbox.example.jp")
        .unwrap();
    assert_eq!(sato["board_user_id"], 1);
    let (status, changed) = run
        .put(
            "/v1/hubspot/owner-mapping",
            json!({"overrides": {"6000001": 3}}),
        )
        .await;
    assert_eq!(status, 200);
    let sato = changed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["owner_id"] == "6000001")
        .unwrap()
        .clone();
    assert_eq!(
        (sato["board_user_id"].as_u64(), sato["source"].as_str()),
        (Some(3), Some("override"))
    );
    let (status, problem) = run
        .put(
            "/v1/hubspot/owner-mapping",
            json!({"overrides": {"6000001": 99}}),
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("overrides.6000001"))
    );
    let (status, problem) = run
        .put("/v1/hubspot/owner-mapping", json!({"overrides": {"1": 1}}))
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("overrides.1"))
    );
    let (_, reset) = run
        .put("/v1/hubspot/owner-mapping", json!({"reset": ["6000001"]}))
        .await;
    assert!(
        reset["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["source"] == "email")
    );

    let (status, opts) = run
        .put(
            "/v1/hubspot/options",
            json!({"amount_basis": "including_tax", "two_way_customer_names": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(opts["amount_basis"], "including_tax");
    let (status, problem) = run
        .put(
            "/v1/hubspot/options",
            json!({"amount_basis": "gross", "two_way_customer_names": true}),
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("amount_basis"))
    );
    let version = opts["config_version"].as_u64().unwrap();
    assert_eq!(
        version, 6,
        "each of the six changes bumped the version once"
    );

    // Another account's settings are its own.
    let (_, other) = run
        .call(reqwest::Method::GET, "/v1/hubspot/options", "acct-b", None)
        .await;
    assert_eq!(other["config_version"], 0);
    run.stack.shutdown().await;
}
