//! HubSpot → board for linked deals, end to end (SPEC §5, §11): renames and
//! stage changes reach the project field by field, never 5 → 4, the ordered
//! date as a Tokyo date, locked projects skipped, exclusion and deletion
//! disabling the link once, association changes skipped.

use std::time::Duration;

use serde_json::{Value, json};
use tests::stack::Run;

async fn project(run: &Run, id: u64) -> Value {
    run.http
        .get(format!(
            "{}/_sandbox/board/_inspect/v1/projects/{id}",
            run.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the project satisfies `check`.
async fn wait_project(run: &Run, id: u64, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let p = project(run, id).await;
        if check(&p) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "project {id} never reached the expected state: {}",
        project(run, id).await
    );
}

async fn entries_with_code(run: &Run, code: &str) -> Vec<Value> {
    run.history("acct-a")
        .await
        .into_iter()
        .filter(|e| e["code"] == code)
        .collect()
}

async fn wait_entry(run: &Run, code: &str, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found = entries_with_code(run, code).await;
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {count}× {code} in the history");
}

#[tokio::test]
async fn a_linked_deal_drives_its_project_field_by_field() {
    let run = Run::start().await;
    run.connect("acct-a", None).await;
    run.api(
        reqwest::Method::PUT,
        "/v1/hubspot/pipelines/default/status-mapping",
        "acct-a",
        Some(json!({"stages": {"decisionmakerboughtin": 4}})),
    )
    .await;
    let a = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社エー"}})),
        )
        .await;
    let b = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社ビー"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "連携案件", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": a["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{id}/register"),
            "acct-a",
            Some(json!({"client_id": null, "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let pid = body["project_id"].as_u64().unwrap();
    assert_eq!(project(&run, pid).await["order_status"], 1);

    // A rename reaches the project.
    run.update_deal(&id, json!({"dealname": "連携案件(改)"}))
        .await;
    wait_project(&run, pid, |p| p["name"] == "連携案件(改)").await;
    let updated: Vec<Value> = run
        .history("acct-a")
        .await
        .into_iter()
        .filter(|e| e["action"] == "project_updated")
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["detail"], "案件名");

    // Closing: status 4 and the ordered date as the Tokyo calendar date (23:30 JST).
    run.update_deal(
        &id,
        json!({"dealstage": "closedwon", "closedate": "2026-12-24T14:30:00Z"}),
    )
    .await;
    let closed = wait_project(&run, pid, |p| p["order_status"] == 4).await;
    assert_eq!(closed["order_date"], "2026-12-24");

    // board's user sets 受注済; a move to another stage mapped to 4 keeps it at 5.
    let (status, _) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/order_status/{pid}"),
            "acct-a",
            Some(json!({"order_status": 5})),
        )
        .await;
    assert_eq!(status, 200);
    run.update_deal(
        &id,
        json!({"dealstage": "decisionmakerboughtin", "dealname": "連携案件(第2期)"}),
    )
    .await;
    let kept = wait_project(&run, pid, |p| p["name"] == "連携案件(第2期)").await;
    assert_eq!(kept["order_status"], 5, "never 5 → 4");

    // Locked: skipped with the catalog's words; after unlocking the next change applies.
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/lock_flg/{pid}"),
        "acct-a",
        Some(json!({"lock_flg": 1})),
    )
    .await;
    run.update_deal(&id, json!({"dealname": "ロック中の変更"}))
        .await;
    let skipped = wait_entry(&run, "project_locked", 1).await;
    assert_eq!(skipped[0]["status"], "skip");
    assert_eq!(
        skipped[0]["message"],
        "案件がロックされているため更新をスキップしました"
    );
    assert_eq!(project(&run, pid).await["name"], "連携案件(第2期)");
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/lock_flg/{pid}"),
        "acct-a",
        Some(json!({"lock_flg": 0})),
    )
    .await;
    run.update_deal(&id, json!({"amount": "100"})).await;
    wait_project(&run, pid, |p| p["name"] == "ロック中の変更").await;

    // The deal's company changes: the customer stays, recorded as a skip.
    let path = format!(
        "/crm/objects/2026-03/deals/{id}/associations/default/companies/{}",
        b["id"].as_str().unwrap()
    );
    run.hubspot(reqwest::Method::PUT, &path, None).await;
    run.hubspot(
        reqwest::Method::POST,
        "/crm/associations/2026-03/deals/companies/batch/create",
        Some(json!({"inputs": [{"from": {"id": id}, "to": {"id": b["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
    )
    .await;
    let changed = wait_entry(&run, "association_changed", 1).await;
    assert_eq!(
        changed[0]["message"],
        "取引の会社が変更されましたが、案件の顧客は変更していません"
    );
    assert_eq!(project(&run, pid).await["client"]["name"], "株式会社エー");

    // Excluded: the link is disabled once; changes meanwhile are silent; いいえ resumes.
    run.update_deal(&id, json!({"exclude_from_board_integration": "true"}))
        .await;
    let excluded = wait_entry(&run, "deal_excluded", 1).await;
    assert_eq!(
        excluded[0]["message"],
        "HubSpot側で「board連携対象外」に設定されたため同期は無効になりました"
    );
    run.update_deal(&id, json!({"dealname": "除外中の変更"}))
        .await;
    run.settle().await;
    assert_eq!(project(&run, pid).await["name"], "ロック中の変更");
    assert_eq!(entries_with_code(&run, "deal_excluded").await.len(), 1);
    run.update_deal(&id, json!({"exclude_from_board_integration": "false"}))
        .await;
    wait_project(&run, pid, |p| p["name"] == "除外中の変更").await;

    // Deleted in HubSpot: disabled, recorded once; a restore does not re-enable silently.
    run.hubspot(
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{id}"),
        None,
    )
    .await;
    let gone = wait_entry(&run, "deal_not_found", 1).await;
    assert_eq!(gone[0]["status"], "error");
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/restore", run.base))
        .json(&json!({"objectType": "deals", "objectId": id.parse::<u64>().unwrap()}))
        .send()
        .await
        .unwrap();
    run.update_deal(&id, json!({"dealname": "復元後の変更"}))
        .await;
    run.settle().await;
    assert_eq!(project(&run, pid).await["name"], "除外中の変更");
    assert_eq!(
        entries_with_code(&run, "deal_not_found").await.len(),
        1,
        "recorded once"
    );
    run.stack.shutdown().await;
}
