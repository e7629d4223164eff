//! HubSpot → board for linked deals, end to end (SPEC §5, §11): renames and
//! stage changes reach the project field by field, never 5 → 4, the ordered
//! date as a Tokyo date, locked projects skipped, exclusion and deletion
//! disabling the link once, association changes skipped.

use serde_json::{Value, json};
use tests::stack::Run;

async fn project(run: &Run, id: u64) -> Value {
    run.inspect_project(id).await
}

/// Waits until the project satisfies `check`.
async fn wait_project(run: &Run, id: u64, check: impl Fn(&Value) -> bool) -> Value {
    let p = tests::eventually!(project(run, id).await, |p| check(&p));
    assert!(
        check(&p),
        "project {id} never reached the expected state: {p}"
    );
    p
}

async fn entries_with_code(run: &Run, code: &str) -> Vec<Value> {
    run.history("acct-a")
        .await
        .into_iter()
        .filter(|e| e["code"] == code)
        .collect()
}

async fn wait_entry(run: &Run, code: &str, count: usize) -> Vec<Value> {
    let found = tests::eventually!(entries_with_code(run, code).await, |found| found.len()
        >= count);
    assert!(found.len() >= count, "no {count}× {code} in the history");
    found
}

#[tokio::test]
async fn a_linked_deal_drives_its_project_field_by_field() {
    let run = Run::connected("acct-a").await;
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

#[tokio::test]
async fn companies_contacts_links_resync_and_retry() {
    let run = Run::connected("acct-a").await;
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社シー", "phone": "03-1111-2222"}})),
        )
        .await;
    let contact = run
        .hubspot(reqwest::Method::POST, "/crm/objects/2026-03/contacts", Some(json!({"properties": {"lastname": "高橋", "firstname": "一", "email": "t@example.jp"}})))
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "リンク案件", "dealstage": "contractsent"},
                        "associations": [
                            {"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]},
                            {"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let (_, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{id}/register"),
            "acct-a",
            Some(json!({"client_id": null, "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})),
        )
        .await;
    let pid = body["project_id"].as_u64().unwrap();
    let p = project(&run, pid).await;
    let client_id = p["client_id"].as_u64().unwrap();

    let (status, link) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/project/{pid}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (link["hubspot_id"].as_str(), link["sync_enabled"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    let (_, customer_link) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/customer/{client_id}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(customer_link["hubspot_id"], company["id"]);
    let (status, _) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/links/project/999999",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/project/{pid}"),
            "acct-b",
            None,
        )
        .await;
    assert_eq!(
        status, 409,
        "acct-b is not connected: nothing of acct-a's is visible"
    );

    // Company and contact fields reach the customer and the customer contact.
    run.hubspot(
        reqwest::Method::PATCH,
        &format!("/crm/objects/2026-03/companies/{}", company["id"].as_str().unwrap()),
        Some(json!({"properties": {"phone": "+81 6 9876 5432", "zip": "5300001", "state": "Osaka", "city": "大阪市", "address": "北区梅田1"}})),
    )
    .await;
    run.hubspot(
        reqwest::Method::PATCH,
        &format!(
            "/crm/objects/2026-03/contacts/{}",
            contact["id"].as_str().unwrap()
        ),
        Some(json!({"properties": {"email": "takahashi@example.jp", "jobtitle": "部長"}})),
    )
    .await;
    let p = wait_project(&run, pid, |p| {
        p["client"]["tel"] == "06-9876-5432" && p["contact"]["email"] == "takahashi@example.jp"
    })
    .await;
    assert_eq!(p["client"]["zip"], "530-0001");
    assert_eq!(p["client"]["pref"], "大阪府");
    assert_eq!(p["client"]["address1"], "大阪市北区梅田1");
    assert_eq!(
        p["client"]["name"], "株式会社シー",
        "the legal name stays board → HubSpot only by default"
    );
    assert_eq!(p["contact"]["title"], "部長");
    let actions: Vec<String> = run
        .history("acct-a")
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(
        actions.contains(&"customer_updated".to_owned())
            && actions.contains(&"customer_contact_updated".to_owned()),
        "{actions:?}"
    );

    // Sync off for the project: HubSpot changes wait; on again + resync applies them.
    let (status, off) = run
        .api(
            reqwest::Method::PUT,
            &format!("/v1/hubspot/links/project/{pid}"),
            "acct-a",
            Some(json!({"sync_enabled": false})),
        )
        .await;
    assert_eq!((status, off["state"].as_str()), (200, Some("off")));
    let staff = tests::stack::jwt("acct-a", "staff", 2);
    let (status, _) = run
        .api_as(
            reqwest::Method::PUT,
            &format!("/v1/hubspot/links/project/{pid}"),
            &staff,
            Some(json!({"sync_enabled": true})),
        )
        .await;
    assert_eq!(status, 403, "staff toggle only their own projects");
    run.update_deal(&id, json!({"dealname": "停止中の変更"}))
        .await;
    run.settle().await;
    assert_eq!(project(&run, pid).await["name"], "リンク案件");
    run.api(
        reqwest::Method::PUT,
        &format!("/v1/hubspot/links/project/{pid}"),
        "acct-a",
        Some(json!({"sync_enabled": true})),
    )
    .await;
    let (status, resynced) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/links/project/{pid}/resync"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{resynced}");
    assert_eq!(project(&run, pid).await["name"], "停止中の変更");

    // A skip retried from the history once the cause is gone.
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/lock_flg/{pid}"),
        "acct-a",
        Some(json!({"lock_flg": 1})),
    )
    .await;
    run.update_deal(&id, json!({"dealname": "再実行で反映"}))
        .await;
    let skipped = wait_entry(&run, "project_locked", 1).await;
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/lock_flg/{pid}"),
        "acct-a",
        Some(json!({"lock_flg": 0})),
    )
    .await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!(
                "/v1/hubspot/history/{}/retry",
                skipped[0]["id"].as_str().unwrap()
            ),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(project(&run, pid).await["name"], "再実行で反映");
    let success = run
        .history("acct-a")
        .await
        .into_iter()
        .find(|e| e["action"] == "project_updated")
        .unwrap();
    let (status, _) = run
        .api(
            reqwest::Method::POST,
            &format!(
                "/v1/hubspot/history/{}/retry",
                success["id"].as_str().unwrap()
            ),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 409, "successes are not retried");

    // The company deleted in HubSpot: the customer's link is disabled, once.
    run.hubspot(
        reqwest::Method::DELETE,
        &format!(
            "/crm/objects/2026-03/companies/{}",
            company["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let gone = wait_entry(&run, "company_not_found", 1).await;
    assert_eq!(
        gone[0]["message"],
        "対応する会社がHubSpotに存在しないため同期は無効になりました"
    );
    let (_, customer_link) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/customer/{client_id}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(customer_link["sync_enabled"], false);
    assert_eq!(customer_link["reason_code"], "company_not_found");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn a_merge_moves_the_link_to_the_surviving_deal() {
    let run = Run::connected("acct-a").await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "統合前", "dealstage": "contractsent"}})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    // No company and no contact: the draft is registered to an existing customer.
    let (_, client) = run
        .board(
            reqwest::Method::POST,
            "/clients",
            "acct-a",
            Some(json!({"name": "統合テスト", "name_disp": "統合テスト"})),
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
    let pid = body["project_id"].as_u64().unwrap();
    let survivor = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "統合後", "dealstage": "contractsent"}})),
        )
        .await;
    let survivor_id = survivor["id"].as_str().unwrap().to_owned();
    run.hubspot(
        reqwest::Method::POST,
        "/crm/objects/2026-03/deals/merge",
        Some(json!({"primaryObjectId": survivor_id, "objectIdToMerge": id})),
    )
    .await;
    let (_, link) = tests::eventually!(
        run.api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/project/{pid}"),
            "acct-a",
            None,
        )
        .await,
        |found| found.1["hubspot_id"] == survivor_id.as_str()
    );
    assert_eq!(
        link["hubspot_id"],
        survivor_id.as_str(),
        "the link follows the surviving deal"
    );
    assert_eq!(link["sync_enabled"], true);
    run.update_deal(&survivor_id, json!({"dealname": "統合後の変更"}))
        .await;
    wait_project(&run, pid, |p| p["name"] == "統合後の変更").await;
    assert!(
        run.history("acct-a")
            .await
            .iter()
            .any(|e| e["action"] == "link_moved")
    );
    assert!(
        entries_with_code(&run, "deal_not_found").await.is_empty(),
        "the merged deal is not reported as deleted"
    );
    run.stack.shutdown().await;
}

/// Companies merge as deals do: the customer's link follows the surviving
/// company, and the merged one is not reported as deleted.
#[tokio::test]
async fn a_company_merge_moves_the_customers_link() {
    let run = Run::connected("acct-a").await;
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社統合前"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "会社統合", "pipeline": "default", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let pid = run.register_draft("acct-a", &id).await;
    let customer = project(&run, pid).await["client_id"].as_u64().unwrap();
    let survivor = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社統合後"}})),
        )
        .await;
    let survivor_id = survivor["id"].as_str().unwrap().to_owned();
    run.hubspot(
        reqwest::Method::POST,
        "/crm/objects/2026-03/companies/merge",
        Some(json!({"primaryObjectId": survivor_id, "objectIdToMerge": company["id"]})),
    )
    .await;
    let (_, link) = tests::eventually!(
        run.api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/customer/{customer}"),
            "acct-a",
            None,
        )
        .await,
        |found| found.1["hubspot_id"] == survivor_id.as_str()
    );
    assert_eq!(
        link["hubspot_id"],
        survivor_id.as_str(),
        "the link follows the surviving company: {link}"
    );
    assert_eq!(link["state"], "enabled");
    assert!(
        run.history("acct-a")
            .await
            .iter()
            .any(|e| e["action"] == "link_moved" && e["hubspot_id"] == survivor_id.as_str())
    );
    assert!(
        entries_with_code(&run, "company_not_found")
            .await
            .is_empty(),
        "the merged company is not reported as deleted"
    );
    run.stack.shutdown().await;
}
