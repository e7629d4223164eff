//! The CRM card's data endpoint (SPEC §7), signed as HubSpot signs `hubspot.fetch`.

use serde_json::{Value, json};
use tests::stack::Run;

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

async fn card(run: &Run, method: reqwest::Method, query: &str, ts: Option<i64>) -> (u16, Value) {
    let path = if method == reqwest::Method::POST {
        "/hubspot/card/resync"
    } else {
        "/hubspot/card"
    };
    let url = format!("{}{path}?{query}", run.base);
    let mut request = run.http.request(method.clone(), &url);
    if let Some(ts) = ts {
        request = request
            .header(
                "X-HubSpot-Signature-v3",
                tests::hubspot_signature(method.as_str(), &url, "", ts),
            )
            .header("X-HubSpot-Request-Timestamp", ts.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn one_labelled_section_per_board_account_with_its_state() {
    let run = Run::start().await;
    run.connect("acct-a", Some("8000001")).await;
    run.connect("acct-b", Some("8000002")).await;
    run.api(
        reqwest::Method::PUT,
        "/v1/hubspot/account-label",
        "acct-a",
        Some(json!({"label": "A事業部"})),
    )
    .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "カード案件", "dealstage": "contractsent", "amount": "500000", "hubspot_team_id": "8000001"}})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let query = format!(
        "portalId=1000001&objectId={id}&objectType=DEAL&userId=1&userEmail=sato%40sandbox.example.jp"
    );

    let (status, body) = card(&run, reqwest::Method::GET, &query, Some(now_ms())).await;
    assert_eq!(status, 200, "{body}");
    let sections = body["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2);
    let a = sections
        .iter()
        .find(|s| s["account_label"] == "A事業部")
        .expect("the label");
    assert_eq!(a["state"], "draft");
    assert_eq!(a["title"], "カード案件");
    assert!(
        a["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["label"] == "受注ステータス" && p["value"] == "見積中(高)")
    );
    assert!(
        a["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["label"] == "金額" && p["value"] == "¥500,000")
    );
    let b = sections
        .iter()
        .find(|s| s["account_label"] == "acct-b")
        .expect("no label: the account");
    assert_eq!(b["state"], "not_in_board");
    assert!(
        b["properties"].as_array().unwrap().is_empty(),
        "no amounts or names"
    );
    assert!(
        b["reason"].as_str().unwrap().contains("フィルタールール"),
        "{}",
        b["reason"]
    );

    // Registered in acct-a (to a customer in board): a project there, linked elsewhere for acct-b.
    let (_, client) = run
        .board(
            reqwest::Method::POST,
            "/clients",
            "acct-a",
            Some(json!({"name": "カード顧客", "name_disp": "カード顧客"})),
        )
        .await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{id}/register"),
            "acct-a",
            Some(json!({"client_id": client["id"], "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = card(&run, reqwest::Method::GET, &query, Some(now_ms())).await;
    let sections = body["sections"].as_array().unwrap();
    let a = sections
        .iter()
        .find(|s| s["account_label"] == "A事業部")
        .unwrap();
    assert_eq!(a["state"], "project");
    assert_eq!(a["title"], "1 カード案件");
    assert_eq!(a["sync_enabled"], true);
    assert!(a["board_url"].as_str().unwrap().contains("/projects/"));
    assert!(
        a["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["label"] == "担当者" && p["value"] == "佐藤 太郎")
    );
    assert!(
        a["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["label"] == "同期" && p["value"] == "有効")
    );
    let b = sections
        .iter()
        .find(|s| s["account_label"] == "acct-b")
        .unwrap();
    assert_eq!(b["state"], "linked_elsewhere");
    assert_eq!(b["reason"], "他のboardアカウント(A事業部)と連携済み");

    let (_, english) = card(
        &run,
        reqwest::Method::GET,
        &format!("{query}&locale=en"),
        Some(now_ms()),
    )
    .await;
    let a = english["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "project")
        .unwrap()
        .clone();
    assert!(
        a["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["label"] == "Order status" && p["value"] == "Estimating (high)")
    );

    // 「今すぐ同期」: a rename whose webhook was lost is applied on request.
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&json!({"webhooks": {"drop_rate": 1.0}}))
        .send()
        .await
        .unwrap();
    run.update_deal(&id, json!({"dealname": "カード案件(改)"}))
        .await;
    run.settle().await;
    let (status, _) = card(
        &run,
        reqwest::Method::POST,
        &format!("{query}&boardAccountId=acct-a"),
        None,
    )
    .await;
    assert_eq!(status, 401, "resync is signed too");
    let (status, body) = card(
        &run,
        reqwest::Method::POST,
        &format!("{query}&boardAccountId=acct-a"),
        Some(now_ms()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let a = body["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "project")
        .unwrap()
        .clone();
    assert_eq!(a["title"], "1 カード案件(改)");

    // HubSpot retries a 5xx once by itself and people double-click: the same
    // resync moments later reads the card without syncing again.
    let calls = || async {
        run.hubspot_requests()
            .await
            .iter()
            .filter(|r| {
                r["token"] == "app" && r["path"].as_str().unwrap().contains("/deals/batch/read")
            })
            .count()
    };
    let before = calls().await;
    let (status, again) = card(
        &run,
        reqwest::Method::POST,
        &format!("{query}&boardAccountId=acct-a"),
        Some(now_ms()),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(calls().await, before, "no second sync within the window");
    let (status, _) = card(
        &run,
        reqwest::Method::POST,
        &format!("{query}&boardAccountId=acct-z"),
        Some(now_ms()),
    )
    .await;
    assert_eq!(status, 404);
    run.stack.shutdown().await;
}

/// The card's code builds its query in the user's browser and HubSpot appends
/// the trusted identity: a user of any portal could put another portal's id
/// first. A request naming an identity twice gets nothing and runs nothing.
#[tokio::test]
async fn a_second_portal_id_in_the_query_gets_nothing() {
    let run = Run::connected("acct-a").await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "他ポータル", "dealstage": "contractsent"}})),
        )
        .await;
    let id = deal["id"].as_str().unwrap();
    for (method, extra) in [
        (reqwest::Method::GET, ""),
        (reqwest::Method::POST, "&boardAccountId=acct-a"),
    ] {
        for twice in [
            "portalId=1000001",
            "userId=9",
            "appId=1",
            "accountId=1000001",
        ] {
            let query = format!(
                "{twice}&objectId={id}&objectType=DEAL{extra}&portalId=2000002&userId=1&appId=777&accountId=2000002"
            );
            let (status, body) = card(&run, method.clone(), &query, Some(now_ms())).await;
            assert_eq!(status, 400, "{method} {twice}: {body}");
            assert_eq!(body["code"], "ambiguous_identity");
        }
    }
    assert!(
        !run.hubspot_requests()
            .await
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/deals/batch/read")),
        "no resync ran"
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn unsigned_forged_and_stale_requests_get_nothing() {
    let run = Run::start().await;
    let query = "portalId=1000001&objectId=42&objectType=DEAL&userId=1&userEmail=a%40b.jp";
    let (status, _) = card(&run, reqwest::Method::GET, query, None).await;
    assert_eq!(status, 401);
    let (status, _) = card(
        &run,
        reqwest::Method::GET,
        query,
        Some(now_ms() - 6 * 60 * 1000),
    )
    .await;
    assert_eq!(status, 401, "stale");
    let url = format!("{}/hubspot/card?{query}", run.base);
    let forged = run
        .http
        .get(&url)
        .header(
            "X-HubSpot-Signature-v3",
            tests::hubspot_signature("GET", &url.replace("42", "43"), "", now_ms()),
        )
        .header("X-HubSpot-Request-Timestamp", now_ms().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let (status, body) = card(&run, reqwest::Method::GET, query, Some(now_ms())).await;
    assert_eq!(
        (status, body),
        (200, json!({"sections": []})),
        "no connection: an empty list"
    );
    run.stack.shutdown().await;
}
