//! The local stack driven as HubSpot, board and board's users would: shared by
//! the end-to-end suites.

use std::net::SocketAddr;
use std::time::Duration;

use board_hubspot::config::Settings;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

pub struct Run {
    pub stack: local_stack::Stack,
    pub base: String,
    pub http: reqwest::Client,
}

/// What `Run::linked_deal` made: HubSpot ids as strings, board ids as numbers.
pub struct Linked {
    pub deal: String,
    pub project: u64,
    pub company: String,
    pub customer: u64,
}

pub fn jwt(account: &str, role: &str, user: u64) -> String {
    let claims = json!({"iss": "board", "aud": "board-hubspot", "account_id": account, "user_id": user, "role": role,
                        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 3600});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"dev-only-secret"),
    )
    .unwrap()
}

impl Run {
    /// The stack on a free port with webhooks flushed every 20 ms.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The stack with these settings beside the defaults (e.g. `PAUSED_TENANTS`).
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        // `RUST_LOG=debug cargo test …` shows the stack's logs.
        if std::env::var_os("RUST_LOG").is_some() {
            board_hubspot::telemetry::init();
        }
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = probe.local_addr().unwrap();
        drop(probe);
        let base = format!("http://{addr}");
        let public = base.clone();
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let settings = Settings::from_lookup(
            move |n| {
                if n == "PUBLIC_BASE_URL" {
                    return Some(public.clone());
                }
                extra.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
            },
            true,
        )
        .unwrap();
        let stack = local_stack::start(settings, addr).await.unwrap();
        Self::on(stack).await
    }

    /// The stack with `account` connected (its admin, the default pipeline mapped).
    pub async fn connected(account: &str) -> Self {
        let run = Self::start().await;
        run.connect(account, None).await;
        run
    }

    /// Drives a stack started by the caller (webhooks flushed every 20 ms).
    pub async fn on(stack: local_stack::Stack) -> Self {
        let base = format!("http://{}", stack.addr);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let run = Self { stack, base, http };
        run.http
            .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
            .json(&json!({"webhook_flush_ms": 20}))
            .send()
            .await
            .unwrap();
        run
    }

    /// Our API as `account`'s admin (user 1).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        account: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_as(method, path, &jwt(account, "admin", 1), body)
            .await
    }

    pub async fn api_as(
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

    /// HubSpot's API as a person (the user token).
    pub async fn hubspot(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/_sandbox/hubspot{path}", self.base))
            .bearer_auth("pat-sandbox-user");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "HubSpot emulator: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// board's API as a person of `account`; like a person, waits and retries
    /// when board answers 429 (the account's 3 requests/s are shared with the service).
    pub async fn board(
        &self,
        method: reqwest::Method,
        path: &str,
        account: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        for _ in 0..10 {
            let mut request = self
                .http
                .request(
                    method.clone(),
                    format!("{}/_sandbox/board/v1{path}", self.base),
                )
                .header("x-api-key", format!("sandbox-key-{account}"))
                .bearer_auth(format!("sandbox-user-{account}"));
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            if status == 429 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            return (status, response.json().await.unwrap_or(Value::Null));
        }
        panic!("board kept answering 429");
    }

    /// Connects `account` (as its admin), maps the default pipeline and sets a
    /// team rule when `team` is given.
    pub async fn connect(&self, account: &str, team: Option<&str>) {
        self.connect_to(account, sandbox_hubspot::PORTAL_ID, team)
            .await;
    }

    /// Connects `account` to `portal` (the admin picks it on HubSpot's
    /// consent page) and maps the default pipeline's stages.
    pub async fn connect_to(&self, account: &str, portal: u64, team: Option<&str>) {
        let (_, authorize) = self
            .api(
                reqwest::Method::POST,
                "/v1/hubspot/connection/authorize",
                account,
                None,
            )
            .await;
        let consent = self
            .http
            .post(authorize["authorize_url"].as_str().unwrap())
            .form(&[("decision", "approve"), ("portal", &portal.to_string())])
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
            .api(
                reqwest::Method::POST,
                "/v1/hubspot/connection/confirm",
                account,
                Some(json!({"confirmation": confirmation})),
            )
            .await;
        assert_eq!(status, 200);
        let mapping = json!({"stages": {"contractsent": 1, "closedwon": 4, "closedlost": 9}});
        let (status, _) = self
            .api(
                reqwest::Method::PUT,
                "/v1/hubspot/pipelines/default/status-mapping",
                account,
                Some(mapping),
            )
            .await;
        assert_eq!(status, 200);
        if let Some(team) = team {
            let rules = json!({"rules": [{"conditions": [{"field": "team", "values": [team]}]}]});
            let (status, body) = self
                .api(
                    reqwest::Method::PUT,
                    "/v1/hubspot/filter-rules",
                    account,
                    Some(rules),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    pub async fn drafts(&self, account: &str, state: &str) -> Vec<Value> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/hubspot/drafts?state={state}"),
                account,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    /// Waits until `account`'s draft of `deal` is in `state` (webhooks are asynchronous).
    pub async fn wait_for_draft(&self, account: &str, deal: &str, state: &str) -> Value {
        let found = crate::eventually!(
            self.drafts(account, state)
                .await
                .into_iter()
                .find(|d| d["id"] == deal),
            |found| found.is_some()
        );
        found.unwrap_or_else(|| panic!("{account}: draft {deal} never became {state}"))
    }

    pub async fn history(&self, account: &str) -> Vec<Value> {
        let (_, body) = self
            .api(
                reqwest::Method::GET,
                "/v1/hubspot/history?limit=200",
                account,
                None,
            )
            .await;
        body["items"].as_array().unwrap().clone()
    }

    pub async fn update_deal(&self, id: &str, properties: Value) {
        self.hubspot(
            reqwest::Method::PATCH,
            &format!("/crm/objects/2026-03/deals/{id}"),
            Some(json!({"properties": properties})),
        )
        .await;
    }

    /// Lets queued webhooks and jobs settle.
    /// board's user sends an invoice for the project (as board's document screen would).
    pub async fn send_invoice(&self, account: &str, project: u64) {
        let sent = self
            .http
            .post(format!(
                "{}/_sandbox/board/_actions/send-document",
                self.base
            ))
            .json(
                &json!({"account_id": account, "project_id": project, "document_type": "invoice",
                          "method": "email", "total": "100000", "tax": "10000"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 202);
    }

    /// A board project as the emulator stores it (no API budget spent).
    pub async fn inspect_project(&self, id: u64) -> Value {
        self.http
            .get(format!(
                "{}/_sandbox/board/_inspect/v1/projects/{id}",
                self.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Registers the deal's open draft as a project of a new customer made from
    /// the deal's company or contact (person in charge: user 1); the project id.
    pub async fn register_draft(&self, account: &str, deal: &str) -> u64 {
        self.register_draft_as(account, 1, deal).await
    }

    /// The same, by board user `user` of the account (its person in charge).
    pub async fn register_draft_as(&self, account: &str, user: u64, deal: &str) -> u64 {
        let (status, body) = self
            .api_as(
                reqwest::Method::POST,
                &format!("/v1/hubspot/drafts/{deal}/register"),
                &jwt(account, "admin", user),
                Some(json!({"client_id": null, "user_id": user, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["project_id"].as_u64().unwrap()
    }

    /// A list an emulator's `/_control` answers (`{key: [...]}`).
    async fn control_list(&self, path: &str, key: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body[key].as_array().unwrap().clone()
    }

    /// Every change event the board emulator has emitted.
    pub async fn board_events(&self) -> Vec<Value> {
        self.control_list("/_sandbox/board/_control/events", "events")
            .await
    }

    /// The HubSpot emulator's request log (what tests count calls from).
    pub async fn hubspot_requests(&self) -> Vec<Value> {
        self.control_list("/_sandbox/hubspot/_control/requests", "requests")
            .await
    }

    /// Empties the HubSpot emulator's request log.
    pub async fn clear_hubspot_requests(&self) {
        self.http
            .delete(format!("{}/_sandbox/hubspot/_control/requests", self.base))
            .send()
            .await
            .unwrap();
    }

    /// Sets the HubSpot emulator's faults (`/_control/faults`).
    pub async fn hubspot_faults(&self, faults: Value) {
        let response = self
            .http
            .post(format!("{}/_sandbox/hubspot/_control/faults", self.base))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// HubSpot's webhook deliveries on or off (all dropped while off).
    pub async fn webhooks(&self, on: bool) {
        let rate = if on { 0.0 } else { 1.0 };
        self.hubspot_faults(json!({"webhooks": {"drop_rate": rate}}))
            .await;
    }

    /// `account`'s history entries whose `key` is `value`, newest first.
    pub async fn entries(&self, account: &str, key: &str, value: &str) -> Vec<Value> {
        self.history(account)
            .await
            .into_iter()
            .filter(|e| e[key] == value)
            .collect()
    }

    /// A HubSpot company with these properties; its id.
    pub async fn create_company(&self, properties: Value) -> String {
        self.create("companies", properties, &[]).await
    }

    /// A HubSpot contact with these properties; its id.
    pub async fn create_contact(&self, properties: Value) -> String {
        self.create("contacts", properties, &[]).await
    }

    /// A HubSpot deal with these properties, associated with `companies` (the
    /// first primary) and `contacts`; its id.
    pub async fn create_deal(
        &self,
        properties: Value,
        companies: &[&str],
        contacts: &[&str],
    ) -> String {
        let mut associations: Vec<(&str, u32)> = Vec::new();
        for (i, company) in companies.iter().enumerate() {
            // 5: the primary company; 341: any other (HubSpot's deal → company types).
            associations.push((company, if i == 0 { 5 } else { 341 }));
        }
        associations.extend(contacts.iter().map(|c| (*c, 3)));
        self.create("deals", properties, &associations).await
    }

    async fn create(
        &self,
        objects: &str,
        properties: Value,
        associations: &[(&str, u32)],
    ) -> String {
        let associations: Vec<Value> = associations
            .iter()
            .map(|(id, type_id)| {
                json!({"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]})
            })
            .collect();
        let created = self
            .hubspot(
                reqwest::Method::POST,
                &format!("/crm/objects/2026-03/{objects}"),
                Some(json!({"properties": properties, "associations": associations})),
            )
            .await;
        created["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{objects} not created: {created}"))
            .to_owned()
    }

    /// A deal with a new company 株式会社{name}, drafted and registered by
    /// `account`'s admin: the deal, project, company and customer it links.
    pub async fn linked_deal(&self, account: &str, name: &str) -> Linked {
        let company = self
            .create_company(json!({"name": format!("株式会社{name}")}))
            .await;
        let deal = self
            .create_deal(
                json!({"dealname": name, "dealstage": "contractsent"}),
                &[&company],
                &[],
            )
            .await;
        self.wait_for_draft(account, &deal, "open").await;
        let project = self.register_draft(account, &deal).await;
        let customer = self.inspect_project(project).await["client_id"]
            .as_u64()
            .expect("the project's customer");
        Linked {
            deal,
            project,
            company,
            customer,
        }
    }

    /// `updates` made in board outside its API (not on the account's limit),
    /// each with its change event: as an import makes them (`bulk`: board's
    /// bulk lane) or a person in board's screens (`edits`: the ordinary lane).
    pub async fn board_changes(&self, route: &str, account: &str, updates: Value) {
        let response = self
            .http
            .post(format!("{}/_sandbox/board/_control/{route}", self.base))
            .json(&json!({"account_id": account, "updates": updates}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
