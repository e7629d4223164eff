//! HubSpot → board for unlinked deals, end to end on the local stack: a person
//! changes deals in HubSpot (the emulator), HubSpot's signed webhooks reach the
//! service, the worker applies the entry gates per board account, and board's
//! users see drafts appear, withdraw, come back (SPEC §5).

use std::time::Duration;

use serde_json::{Value, json};
use tests::stack::{Run, jwt};

#[tokio::test]
async fn deals_become_drafts_per_account_and_follow_the_gates() {
    let run = Run::start().await;
    run.connect("acct-a", Some("8000001")).await;
    run.connect("acct-b", Some("8000002")).await;

    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社サンプル"}})),
        )
        .await;
    let contact = run
        .hubspot(reqwest::Method::POST, "/crm/objects/2026-03/contacts", Some(json!({"properties": {"lastname": "山田", "firstname": "花子", "email": "yamada@example.jp"}})))
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({
                "properties": {"dealname": "基幹システム刷新", "pipeline": "default", "dealstage": "contractsent",
                               "amount": "1200000", "hubspot_team_id": "8000001", "hubspot_owner_id": "6000002"},
                "associations": [
                    {"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]},
                    {"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]
            })),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();

    let draft = run.wait_for_draft("acct-a", &id, "open").await;
    assert_eq!(draft["name"], "基幹システム刷新");
    assert_eq!(draft["order_status"], 1);
    assert_eq!(draft["order_status_label"], "見積中(高)");
    assert_eq!(draft["amount"], "1200000");
    assert_eq!(draft["companies"][0]["name"], "株式会社サンプル");
    assert_eq!(draft["companies"][0]["primary"], true);
    assert_eq!(draft["contacts"][0]["email"], "yamada@example.jp");
    run.settle().await;
    assert!(
        run.drafts("acct-b", "open").await.is_empty(),
        "acct-b's rule is team 2"
    );
    let (_, detail) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/drafts/{id}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(
        detail["suggested_user_id"], 2,
        "owner 6000002 is suzuki, board user 2"
    );
    let (_, status) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/connection",
            "acct-a",
            None,
        )
        .await;
    assert!(
        status["last_webhook_at"].is_string(),
        "the status shows when webhooks last arrived"
    );

    let created: Vec<Value> = run
        .history("acct-a")
        .await
        .into_iter()
        .filter(|e| e["hubspot_id"] == id.as_str())
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["action"], "draft_created");
    assert_eq!(created[0]["status"], "success");
    assert_eq!(created[0]["direction"], "hubspot_to_board");
    assert!(
        run.history("acct-b").await.is_empty(),
        "a failed gate records nothing"
    );

    let (status, diagnosis) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/diagnosis/deals/{id}"),
            "acct-b",
            None,
        )
        .await;
    assert_eq!(status, 200, "{diagnosis}");
    assert_eq!(diagnosis["qualifies"], false);
    let gates = diagnosis["gates"]["gates"].as_array().unwrap();
    assert_eq!(gates[0]["passed"], true);
    assert_eq!(
        gates[0]["detail"],
        "ステージ「Contract Sent」は受注ステータス「見積中(高)」にマッピングされています"
    );
    assert_eq!(gates[1]["gate"], "filter_rules");
    assert_eq!(gates[1]["passed"], false);
    assert!(
        gates[1]["detail"].as_str().unwrap().contains("8000001"),
        "the deciding value: {}",
        gates[1]["detail"]
    );
    assert!(
        diagnosis["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["outcome"] == "not_entered")
    );

    // Leaving the mapped stages withdraws the draft (not recorded in the history).
    run.update_deal(&id, json!({"dealstage": "qualifiedtobuy"}))
        .await;
    let withdrawn = run.wait_for_draft("acct-a", &id, "withdrawn").await;
    assert_eq!(
        withdrawn["reason"],
        "ステージ「Qualified To Buy」は受注ステータスにマッピングされていません"
    );
    // Back in a mapped stage: the draft returns with the new status.
    run.update_deal(&id, json!({"dealstage": "closedwon"}))
        .await;
    let back = run.wait_for_draft("acct-a", &id, "open").await;
    assert_eq!(back["order_status"], 4);
    assert!(
        back["close_date"].is_string(),
        "HubSpot set closedate when the deal closed"
    );

    // Excluded in HubSpot: withdrawn; cleared: back.
    run.update_deal(&id, json!({"exclude_from_board_integration": "true"}))
        .await;
    let excluded = run.wait_for_draft("acct-a", &id, "withdrawn").await;
    assert_eq!(
        excluded["reason"],
        "「board連携から除外」が「はい」に設定されています"
    );
    run.update_deal(&id, json!({"exclude_from_board_integration": "false"}))
        .await;
    run.wait_for_draft("acct-a", &id, "open").await;

    // Discarded drafts stay discarded until restored.
    let (status, _) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{id}/discard"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200);
    run.update_deal(&id, json!({"dealname": "基幹システム刷新(改)"}))
        .await;
    run.settle().await;
    assert!(run.drafts("acct-a", "open").await.is_empty());
    assert_eq!(run.drafts("acct-a", "discarded").await.len(), 1);
    let (status, restored) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{id}/restore"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["state"], "open");
    assert_eq!(
        restored["name"], "基幹システム刷新(改)",
        "restoring re-reads the deal"
    );

    // Duplicated and shuffled deliveries have one effect.
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&json!({"webhooks": {"duplicate_rate": 1.0, "shuffle": true}}))
        .send()
        .await
        .unwrap();
    let before = run.history("acct-a").await.len();
    run.update_deal(
        &id,
        json!({"dealname": "基幹システム刷新(第2期)", "amount": "1500000"}),
    )
    .await;
    let renamed = loop {
        let d = run.wait_for_draft("acct-a", &id, "open").await;
        if d["name"] == "基幹システム刷新(第2期)" && d["amount"] == "1500000" {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(renamed["amount"], "1500000");
    run.settle().await;
    let updates = run.history("acct-a").await.len() - before;
    assert_eq!(
        updates, 1,
        "two property changes, each delivered twice: one draft update"
    );

    // Deleted in HubSpot: withdrawn.
    run.hubspot(
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{id}"),
        None,
    )
    .await;
    let gone = run.wait_for_draft("acct-a", &id, "withdrawn").await;
    assert_eq!(gone["reason"], "HubSpotで取引が削除されました");

    // Business roles see drafts; the history is for settings roles.
    let staff = run
        .http
        .get(format!("{}/v1/hubspot/drafts?state=withdrawn", run.base))
        .bearer_auth(jwt("acct-a", "staff", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(staff.status(), 200);
    let (status, _) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/drafts/424242",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/drafts/{id}"),
            "acct-b",
            None,
        )
        .await;
    assert_eq!(status, 404, "acct-b has no draft of this deal");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn history_filters_and_paging() {
    let run = Run::start().await;
    run.connect("acct-a", Some("8000001")).await;
    for i in 0..5 {
        run.hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": format!("案件{i}"), "dealstage": "contractsent", "hubspot_team_id": "8000001"}})),
        )
        .await;
    }
    let all = tests::eventually!(run.history("acct-a").await, |all| all.len() == 5);
    assert_eq!(all.len(), 5);
    let (_, page1) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/history?limit=2",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/history?limit=2&cursor={cursor}"),
            "acct-a",
            None,
        )
        .await;
    assert_ne!(page2["items"][0]["id"], page1["items"][0]["id"]);
    let (_, found) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/history?q={}", url_encode("案件3")),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, by_id) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/history/{}", all[0]["id"].as_str().unwrap()),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(by_id["id"], all[0]["id"]);
    assert!(
        by_id["occurred_at"].as_str().unwrap().ends_with("+09:00"),
        "RFC 3339 with offset"
    );
    let (_, errors) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/history?status=error",
            "acct-a",
            None,
        )
        .await;
    assert!(errors["items"].as_array().unwrap().is_empty());
    let (status, problem) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/history?status=bad",
            "acct-a",
            None,
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("status")));
    let (status, _) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/history/{}", all[0]["id"].as_str().unwrap()),
            "acct-b",
            None,
        )
        .await;
    assert_eq!(status, 404, "another account's history id");
    run.stack.shutdown().await;
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_catch_up_finds_what_dropped_webhooks_missed() {
    let run = Run::connected("acct-a").await;
    // HubSpot's deliveries are lost (an outage longer than its retries).
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&json!({"webhooks": {"drop_rate": 1.0}}))
        .send()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let deal = run
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals",
                Some(json!({"properties": {"dealname": format!("見逃し{i}"), "dealstage": "contractsent"}})),
            )
            .await;
        ids.push(deal["id"].as_str().unwrap().to_owned());
    }
    run.settle().await;
    assert!(
        run.drafts("acct-a", "open").await.is_empty(),
        "no webhook arrived"
    );
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            "/v1/hubspot/resync-all",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for id in &ids {
        run.wait_for_draft("acct-a", id, "open").await;
    }
    let (status, _) = run
        .api(
            reqwest::Method::POST,
            "/v1/hubspot/resync-all",
            "acct-b",
            None,
        )
        .await;
    assert_eq!(status, 409, "acct-b is not connected");
    // The scheduled sweep (what EventBridge queues hourly) finds later gaps too.
    let late = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "見逃し(定期)", "dealstage": "contractsent"}})),
        )
        .await;
    run.settle().await;
    let queued = board_hubspot::app::catch_up::request_all(&run.stack.services)
        .await
        .unwrap();
    assert_eq!(queued, 1, "one active connection");
    run.wait_for_draft("acct-a", late["id"].as_str().unwrap(), "open")
        .await;
    run.stack.shutdown().await;
}

#[tokio::test]
async fn two_hundred_deals_are_read_in_batches() {
    let run = Run::connected("acct-a").await;
    run.clear_hubspot_requests().await;
    let mut ids = Vec::new();
    for chunk in 0..2 {
        let inputs: Vec<Value> = (0..100)
            .map(|i| json!({"properties": {"dealname": format!("一括{chunk}-{i}"), "dealstage": "contractsent"}}))
            .collect();
        let created = run
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals/batch/create",
                Some(json!({"inputs": inputs})),
            )
            .await;
        ids.extend(
            created["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
    }
    for _ in 0..200 {
        if !run.drafts("acct-a", "open").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every deal became a draft (pages of 200 at most).
    let mut open = 0;
    for _ in 0..100 {
        let (_, page) = run
            .api(
                reqwest::Method::GET,
                "/v1/hubspot/drafts?limit=200",
                "acct-a",
                None,
            )
            .await;
        open = page["items"].as_array().unwrap().len();
        if open == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 200);
    let log = run.hubspot_requests().await;
    let app: Vec<&Value> = log.iter().filter(|r| r["token"] == "app").collect();
    let deal_reads = app
        .iter()
        .filter(|r| r["path"] == "/crm/objects/2026-03/deals/batch/read")
        .count();
    assert!(
        deal_reads <= 4,
        "200 deals read in batches of ≤ 100: {deal_reads} reads"
    );
    assert!(
        app.len() <= 20,
        "far fewer HubSpot calls than the 200 events: {}",
        app.len()
    );
    assert!(app.iter().all(|r| r["status"] != 429), "no rate limit hit");
    assert!(
        app.iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/batch/read"))
            .all(|r| r["inputs"].as_u64().unwrap() <= 100)
    );
    let board: Value = run
        .http
        .get(format!("{}/_sandbox/board/_control/requests", run.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        board["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != 429),
        "board never over its limit"
    );
    run.stack.shutdown().await;
}

/// CRM search indexes changes late and out of order: a deal changed before the
/// newest one a sweep saw, but indexed after that sweep, is still found by the
/// next sweep (which looks back past its watermark).
#[tokio::test]
async fn a_sweep_finds_a_change_search_indexed_late() {
    let run = Run::connected("acct-a").await;
    run.settle().await;
    let faults = |unindexed: Value| {
        run.http
            .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
            .json(&json!({"webhooks": {"drop_rate": 1.0}, "search_unindexed": unindexed}))
            .send()
    };
    faults(json!([])).await.unwrap();
    let create = |name: &'static str| {
        run.hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": name, "dealstage": "contractsent"}})),
        )
    };
    let early = create("索引遅れ(先)").await;
    let early = early["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let later = create("索引遅れ(後)").await;
    let later = later["id"].as_str().unwrap().to_owned();
    // The earlier change is not in the index yet when the first sweep runs.
    faults(json!([early.parse::<u64>().unwrap()]))
        .await
        .unwrap();
    let sweep = || {
        run.api(
            reqwest::Method::POST,
            "/v1/hubspot/resync-all",
            "acct-a",
            None,
        )
    };
    assert_eq!(sweep().await.0, 202);
    run.wait_for_draft("acct-a", &later, "open").await;
    assert!(
        !run.drafts("acct-a", "open")
            .await
            .iter()
            .any(|d| d["id"] == early.as_str()),
        "not searchable yet"
    );
    // Indexed now; the next sweep's watermark is past it, yet it is found.
    faults(json!([])).await.unwrap();
    assert_eq!(sweep().await.0, 202);
    run.wait_for_draft("acct-a", &early, "open").await;
    run.stack.shutdown().await;
}
