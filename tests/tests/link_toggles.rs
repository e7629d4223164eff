//! A user's per-record toggle is recorded (SPEC §9: `link_disabled`,
//! `link_enabled`), turning sync back on applies what changed meanwhile, and a
//! customer deleted in board ends its link with `customer_not_found`, after
//! which it cannot be turned back on.

use serde_json::{Value, json};
use tests::stack::Run;

async fn entries_with_action(run: &Run, action: &str) -> Vec<Value> {
    run.history("acct-a")
        .await
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

async fn toggle(run: &Run, kind: &str, id: u64, on: bool) -> (u16, Value) {
    run.api(
        reqwest::Method::PUT,
        &format!("/v1/hubspot/links/{kind}/{id}"),
        "acct-a",
        Some(json!({"sync_enabled": on})),
    )
    .await
}

#[tokio::test]
async fn toggles_are_recorded_turning_on_resyncs_and_a_deleted_customer_stays_off() {
    let run = Run::connected("acct-a").await;
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社トグル"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "トグル案件", "pipeline": "default", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let deal = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &deal, "open").await;
    let project = run.register_draft("acct-a", &deal).await;
    run.settle().await;

    // Off: recorded once, with the catalog's words; a second "off" changes nothing.
    let (status, body) = toggle(&run, "project", project, false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "off");
    assert_eq!(toggle(&run, "project", project, false).await.0, 200);
    let off = entries_with_action(&run, "link_disabled").await;
    assert_eq!(off.len(), 1, "{off:?}");
    assert_eq!(off[0]["status"], "success");
    assert_eq!(off[0]["message"], "ユーザーが連携を無効にしました");
    assert_eq!(off[0]["board_id"], project);

    // A rename while off does not reach board; turning on applies it at once.
    run.update_deal(&deal, json!({"dealname": "停止中の改名"}))
        .await;
    run.settle().await;
    assert_eq!(run.inspect_project(project).await["name"], "トグル案件");
    let (status, body) = toggle(&run, "project", project, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "enabled");
    let on = entries_with_action(&run, "link_enabled").await;
    assert_eq!(on.len(), 1, "{on:?}");
    assert_eq!(on[0]["message"], "ユーザーが連携を有効にしました");
    assert_eq!(run.inspect_project(project).await["name"], "停止中の改名");

    // The project deleted in board: its link ends (project_not_found) and cannot be
    // turned back on. Then its customer, no longer in use, is deleted: its link ends
    // with customer_not_found, once, and cannot be turned back on either.
    let customer = run.inspect_project(project).await["client_id"]
        .as_u64()
        .unwrap();
    let (status, body) = run
        .board(
            reqwest::Method::DELETE,
            &format!("/projects/{project}"),
            "acct-a",
            None,
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let gone = tests::eventually!(
        run.api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/project/{project}"),
            "acct-a",
            None
        )
        .await
        .1,
        |link| link["state"] == "deleted"
    );
    assert_eq!(gone["state"], "deleted", "{gone}");
    assert_eq!(toggle(&run, "project", project, true).await.0, 409);

    // The deal does not re-draft by itself, even when it changes in HubSpot...
    run.update_deal(&deal, json!({"dealname": "削除後の改名"}))
        .await;
    run.settle().await;
    assert!(
        run.drafts("acct-a", "open")
            .await
            .iter()
            .all(|d| d["id"] != deal.as_str()),
        "re-drafted by itself"
    );
    // ...until a user re-drafts it: link and claim end, the deal is a draft again.
    let redraft = format!("/v1/hubspot/deals/{deal}/redraft");
    let (status, body) = run
        .api(reqwest::Method::POST, &redraft, "acct-a", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "open", "{body}");
    assert_eq!(body["name"], "削除後の改名");
    assert!(body["project_id"].is_null(), "{body}");
    let (status, _) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/project/{project}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 404, "the old link is gone");
    let portal = board_hubspot::domain::PortalId::new(1_000_001).unwrap();
    assert_eq!(
        run.stack
            .services
            .links
            .deal_claimed_by(portal, deal.parse().unwrap())
            .await
            .unwrap(),
        None
    );
    // Only a deal whose project was deleted can be re-drafted.
    let (status, body) = run
        .api(reqwest::Method::POST, &redraft, "acct-a", None)
        .await;
    assert_eq!(status, 404, "no link any more: {body}");
    let (status, _) = run
        .board(
            reqwest::Method::DELETE,
            &format!("/clients/{customer}"),
            "acct-a",
            None,
        )
        .await;
    assert!((200..300).contains(&status), "{status}");
    let ended = tests::eventually!(
        run.history("acct-a")
            .await
            .into_iter()
            .filter(|e| e["code"] == "customer_not_found")
            .collect::<Vec<_>>(),
        |found| !found.is_empty()
    );
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        ended[0]["message"],
        "対応する顧客がboardに存在しないため同期は無効になりました"
    );
    let (_, link) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/customer/{customer}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(link["state"], "deleted", "{link}");
    assert_eq!(link["reason_code"], "customer_not_found", "{link}");
    let (status, body) = toggle(&run, "customer", customer, true).await;
    assert_eq!(status, 409, "{body}");
    run.stack.shutdown().await;
}
