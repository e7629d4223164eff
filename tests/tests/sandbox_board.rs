//! The board emulator through HTTP: auth, resources, required fields per
//! invoicing timing, paging and filters, locks, limits, change events, the
//! send-document action, the inspect view, the settings screen and bulk loads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use sandbox_board::{BoardSandbox, Config};
use serde_json::{Value, json};

struct Board {
    base: String,
    http: reqwest::Client,
    sink: Arc<Mutex<Vec<String>>>,
    sandbox: BoardSandbox,
}

impl Board {
    async fn start(per_second: usize) -> Self {
        let sandbox = BoardSandbox::new(Config {
            per_second,
            ..Config::default()
        });
        let sink: Arc<Mutex<Vec<String>>> = Arc::default();
        let store = sink.clone();
        sandbox.set_event_sink(Arc::new(move |bodies| store.lock().unwrap().extend(bodies)));
        let base = tests::serve(sandbox.router()).await;
        Self {
            base,
            http: reqwest::Client::new(),
            sink,
            sandbox,
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        account: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", format!("sandbox-key-{account}"))
            .bearer_auth(format!("sandbox-token-{account}"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.request(method, path, "acct-a");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self.send(reqwest::Method::PATCH, path, Some(body)).await;
        (s, b)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.send(reqwest::Method::GET, path, None).await
    }

    fn events(&self) -> Vec<Value> {
        self.sink
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// Accounts added for many tenants get the fixed credential pattern; an
/// account never added stays refused; bad ids are refused.
#[tokio::test]
async fn accounts_can_be_added_for_many_tenants() {
    let board = Board::start(3).await;
    let response = board
        .request(reqwest::Method::GET, "/v1/users", "t0001")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "not an account yet"
    );
    let response = board
        .http
        .post(format!("{}/_control/accounts", board.base))
        .json(&json!({"ids": ["t0001", "t0002", "acct-a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let added: Value = response.json().await.unwrap();
    assert_eq!(added["added"], 2, "acct-a was there already");
    let response = board
        .request(reqwest::Method::GET, "/v1/users", "t0001")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = board
        .http
        .post(format!("{}/_control/accounts", board.base))
        .json(&json!({"ids": ["no spaces"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn credentials_are_checked_per_account() {
    let board = Board::start(100).await;
    let none = board
        .http
        .get(format!("{}/v1/clients", board.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.json::<Value>().await.unwrap()["message"].is_string());
    let crossed = board
        .http
        .get(format!("{}/v1/clients", board.base))
        .header("x-api-key", "sandbox-key-acct-a")
        .bearer_auth("sandbox-token-acct-b")
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), StatusCode::FORBIDDEN);
    let person = board
        .http
        .get(format!("{}/v1/clients", board.base))
        .header("x-api-key", "sandbox-key-acct-b")
        .bearer_auth("sandbox-user-acct-b")
        .send()
        .await
        .unwrap();
    assert_eq!(person.status(), StatusCode::OK);
    let (status, users, headers) = board
        .get("/v1/users?email_eq=suzuki@sandbox.example.jp")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["id"], 2);
    assert_eq!(headers["x-total-count"], "1");
}

#[tokio::test]
async fn projects_need_boards_fields_and_show_nested_records() {
    let board = Board::start(100).await;
    let (status, missing) = board
        .post("/v1/clients", json!({"name": "株式会社テスト"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(missing["errors"]["name_disp"].is_array(), "{missing}");
    let (status, client) = board.post("/v1/clients", json!({"name": "株式会社テスト", "name_disp": "テスト", "title": "御中", "custom_no": "hubspot:company:9"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let client_id = client["id"].as_u64().unwrap();
    let (status, bad_contact) = board
        .post(
            "/v1/contacts",
            json!({"client_id": 999999, "last_name": "山田"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad_contact["errors"]["client_id"].is_array());
    let (_, contact) = board.post("/v1/contacts", json!({"client_id": client_id, "last_name": "山田", "email": "yamada@example.jp", "honorific_title": "様"})).await;

    let base = json!({"name": "基幹システム刷新", "client_id": client_id, "contact_id": contact["id"], "user_id": 1, "order_status": 4});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, field) in [
        (json!({"invoice_timing_kbn": 1}), "invoice_date"),
        (
            json!({"invoice_timing_kbn": 2, "contract_start_date": "2026-12-01"}),
            "contract_end_date",
        ),
        (
            json!({"invoice_timing_kbn": 3, "invoice_dates": []}),
            "invoice_dates",
        ),
        (
            json!({"invoice_timing_kbn": 1, "invoice_date": "2026-12-31", "order_status": 6}),
            "order_status",
        ),
        (
            json!({"invoice_timing_kbn": 1, "invoice_date": "2026-12-31", "user_id": 77}),
            "user_id",
        ),
    ] {
        let (status, body) = board.post("/v1/projects", with(extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["errors"][field].is_array(), "{field}: {body}");
    }
    let (status, project) = board
        .post("/v1/projects", with(json!({"invoice_timing_kbn": 1, "invoice_date": "2026-12-31", "management_no": "hubspot:deal:42"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let id = project["id"].as_u64().unwrap();
    let (_, read, _) = board.get(&format!("/v1/projects/{id}")).await;
    assert_eq!(read["client"]["name"], "株式会社テスト");
    assert_eq!(read["contact"]["last_name"], "山田");
    assert_eq!(read["user"]["email"], "sato@sandbox.example.jp");
    assert_eq!(read["total"], "0", "amounts are strings");
    let (_, found, _) = board
        .get("/v1/projects?management_no_eq=hubspot:deal:42")
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, by_custom_no, _) = board
        .get("/v1/clients?custom_no_eq=hubspot:company:9")
        .await;
    assert_eq!(by_custom_no[0]["id"], client_id);
    let (_, by_email, _) = board
        .get(&format!(
            "/v1/contacts?client_id_eq={client_id}&email_eq=yamada@example.jp"
        ))
        .await;
    assert_eq!(by_email.as_array().unwrap().len(), 1);

    let (status, moved) = board
        .patch(
            &format!("/v1/projects/order_status/{id}"),
            json!({"order_status": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(moved["order_status"], 5);
    let (status, _) = board
        .patch(
            &format!("/v1/projects/lock_flg/{id}"),
            json!({"lock_flg": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = board
        .patch(&format!("/v1/projects/{id}"), json!({"name": "変更"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["message"].as_str().unwrap().contains("ロック"));
    let (status, _) = board
        .patch(
            &format!("/v1/projects/order_status/{id}"),
            json!({"order_status": 9}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "locked projects refuse status changes too"
    );
    board
        .patch(
            &format!("/v1/projects/lock_flg/{id}"),
            json!({"lock_flg": 0}),
        )
        .await;
    let (status, renamed) = board
        .patch(&format!("/v1/projects/{id}"), json!({"name": "変更"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "変更");

    let (status, _, _) = board.get("/v1/projects/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let other = board
        .http
        .get(format!("{}/v1/projects/{id}", board.base))
        .header("x-api-key", "sandbox-key-acct-b")
        .bearer_auth("sandbox-token-acct-b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "another account's project does not exist for acct-b"
    );
}

#[tokio::test]
async fn lists_page_and_filter() {
    let board = Board::start(1000).await;
    for i in 0..25 {
        board
            .post(
                "/v1/clients",
                json!({"name": format!("会社{i:02}"), "name_disp": format!("会社{i:02}")}),
            )
            .await;
    }
    let (_, page, headers) = board.get("/v1/clients?page=2&per_page=10").await;
    assert_eq!(headers["x-total-count"], "25");
    assert_eq!(page.as_array().unwrap().len(), 10);
    assert_eq!(page[0]["name"], "会社10");
    let (_, last, _) = board.get("/v1/clients?page=3&per_page=10").await;
    assert_eq!(last.as_array().unwrap().len(), 5);
    let (status, _, _) = board.get("/v1/clients?per_page=101").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, filtered, headers) = board
        .get(&format!(
            "/v1/clients?name_cont={}",
            url::form_urlencoded::byte_serialize("会社2".as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(headers["x-total-count"], "5", "{filtered}");
}

#[tokio::test]
async fn about_three_requests_a_second_per_account() {
    let board = Board::start(3).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let response = board
            .request(reqwest::Method::GET, "/v1/users", "acct-a")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let other = board
        .request(reqwest::Method::GET, "/v1/users", "acct-b")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK, "limits are per account");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let later = board
        .request(reqwest::Method::GET, "/v1/users", "acct-a")
        .send()
        .await
        .unwrap();
    assert_eq!(later.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_change_emits_an_event_and_documents_can_be_sent() {
    let board = Board::start(100).await;
    let (_, client) = board
        .post(
            "/v1/clients",
            json!({"name": "株式会社イベント", "name_disp": "イベント"}),
        )
        .await;
    let client_id = client["id"].as_u64().unwrap();
    let (_, project) = board
        .post("/v1/projects", json!({"name": "P", "client_id": client_id, "user_id": 1, "order_status": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"}))
        .await;
    let id = project["id"].as_u64().unwrap();
    board
        .patch(&format!("/v1/projects/{id}"), json!({"name": "P2"}))
        .await;
    let response = board
        .http
        .post(format!("{}/_actions/send-document", board.base))
        .json(&json!({"account_id": "acct-a", "project_id": id, "document_type": "estimate", "method": "email", "total": "100000", "tax": "10000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    board
        .http
        .post(format!("{}/_actions/send-document", board.base))
        .json(&json!({"account_id": "acct-a", "project_id": id, "document_type": "estimate", "method": "post"}))
        .send()
        .await
        .unwrap();
    let delete = board
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/projects/{id}"),
            "acct-a",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);

    let events = board.events();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "project.created",
            "project.updated",
            "project.updated",
            "document.sent",
            "document.sent",
            "project.deleted"
        ]
    );
    for e in &events {
        assert!(
            e["event_id"].is_string() && e["account_id"] == "acct-a" && e["object"].is_object()
        );
        assert!(
            time::OffsetDateTime::parse(
                e["occurred_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }
    let project_versions: Vec<u64> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("project."))
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        project_versions,
        [1, 2, 3, 4],
        "versions increase per object"
    );
    assert_eq!(events[3]["object"]["total"], "100000");
    assert_eq!(events[4]["object"]["document_type"], "estimate");
    assert_eq!(events[4]["object"]["resend"], false);
    assert_eq!(events[4]["object"]["total_with_tax"], "110000");
    assert_eq!(events[5]["object"]["resend"], true);
    assert_eq!(events[5]["object"]["method"], "post");
}

#[tokio::test]
async fn inspect_bulk_and_the_settings_screen() {
    let board = Board::start(1).await;
    let response = board
        .http
        .post(format!("{}/_control/bulk", board.base))
        .json(&json!({"account_id": "acct-b",
            "clients": (0..30).map(|i| json!({"name": format!("C{i}"), "name_disp": format!("C{i}")})).collect::<Vec<_>>(),
            "contacts": [{"client_ref": 0, "last_name": "佐藤"}],
            "projects": (0..20).map(|i| json!({"name": format!("P{i}"), "client_ref": i, "user_id": 11, "order_status": 2,
                                                "invoice_timing_kbn": 2, "contract_start_date": "2027-01-01", "contract_end_date": "2027-12-31"})).collect::<Vec<_>>()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["projects"].as_array().unwrap().len(),
        20,
        "unthrottled although the API allows 1/s"
    );
    let project = created["projects"][0].as_u64().unwrap();
    let inspected: Value = board
        .http
        .get(format!("{}/_inspect/v1/projects/{project}", board.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inspected["name"], "P0");
    assert_eq!(inspected["client"]["name"], "C0");
    assert_eq!(board.events().len(), 51);

    let error_page = board
        .http
        .get(format!(
            "{}/settings/integrations?hubspot=error&code=oauth_denied",
            board.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        error_page.contains("data-code=\"oauth_denied\"")
            && error_page.contains("許可されませんでした")
    );
    let confirm_page = board
        .http
        .get(format!(
            "{}/settings/integrations?hubspot=confirm&confirmation=abc",
            board.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        confirm_page.contains("name=\"confirmation\" value=\"abc\"")
            && confirm_page.contains("連携を確定")
    );
}

/// board's two lanes (SPEC §10): an import's changes (`/_control/bulk`) go to
/// the bulk lane's sink, a person's edits (`/_control/edits`) and API changes
/// to the ordinary one; with no bulk sink, everything goes to the ordinary one.
#[tokio::test]
async fn imports_go_to_the_bulk_lane_and_peoples_edits_to_the_ordinary_one() {
    let board = Board::start(100).await;
    let (status, client) = board
        .post("/v1/clients", json!({"name": "Lane", "name_disp": "Lane"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let client = client["id"].as_u64().unwrap();
    let control = |route: &str, name: &str| {
        board
            .http
            .post(format!("{}/_control/{route}", board.base))
            .json(&json!({"account_id": "acct-a", "updates": [
                {"resource": "clients", "id": client, "fields": {"name": name}}
            ]}))
            .send()
    };
    // No bulk sink yet: the import's event takes the ordinary lane.
    assert_eq!(
        control("bulk", "A").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(board.events().len(), 2);

    let sandbox_bulk: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = sandbox_bulk.clone();
    // The router was built from a clone of the same sandbox: set its bulk sink.
    board
        .sandbox
        .set_bulk_event_sink(Arc::new(move |bodies| store.lock().unwrap().extend(bodies)));
    assert_eq!(
        control("bulk", "B").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        control("edits", "C").await.unwrap().status(),
        StatusCode::CREATED
    );
    let (status, _) = board
        .patch(&format!("/v1/clients/{client}"), json!({"name": "D"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let names = |bodies: Vec<Value>| -> Vec<String> {
        bodies
            .iter()
            .map(|e| e["object"]["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let bulk: Vec<Value> = sandbox_bulk
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(names(bulk), ["B"], "the import, on the bulk lane");
    assert_eq!(
        names(board.events())[1..],
        ["A", "C", "D"],
        "the rest on the ordinary lane"
    );
    // The same event contract on both lanes: versions go on across them.
    let versions: Vec<u64> = board
        .events()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}
