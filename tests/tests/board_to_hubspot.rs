//! board → HubSpot, end to end (SPEC §6, §11): a person changes a linked
//! project in board; the deal follows field by field; our own writes do not
//! come back; a deal deleted in HubSpot is one error, then silence.

use std::time::Duration;

use serde_json::{Value, json};
use tests::stack::Run;

async fn deal(run: &Run, id: &str) -> Value {
    run.hubspot(
        reqwest::Method::GET,
        &format!(
            "/crm/objects/2026-03/deals/{id}?properties=dealname,dealstage,closedate,amount,hubspot_owner_id"
        ),
        None,
    )
    .await
}

async fn wait_deal(run: &Run, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let d = deal(run, id).await;
        if check(&d["properties"]) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deal {id} never reached the expected state: {}",
        deal(run, id).await
    );
}

async fn entries(run: &Run, key: &str, value: &str) -> Vec<Value> {
    run.history("acct-a")
        .await
        .into_iter()
        .filter(|e| e[key] == value)
        .collect()
}

/// A deal registered as a project of acct-a: (deal id, project id).
async fn linked_project(run: &Run, name: &str) -> (String, u64) {
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": format!("株式会社{name}")}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": name, "dealstage": "contractsent"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
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
    (id, body["project_id"].as_u64().unwrap())
}

#[tokio::test]
async fn a_linked_project_drives_its_deal_without_echoes() {
    let run = Run::start().await;
    run.connect("acct-a", None).await;
    let (status, body) = run
        .api(
            reqwest::Method::PUT,
            "/v1/hubspot/pipelines/default/status-mapping",
            "acct-a",
            Some(json!({"stages": {"appointmentscheduled": 1, "contractsent": 1, "decisionmakerboughtin": 4, "closedwon": 5, "closedlost": 9}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (id, pid) = linked_project(&run, "双方向案件").await;
    run.settle().await;
    assert!(
        entries(&run, "direction", "board_to_hubspot")
            .await
            .is_empty(),
        "registration's own project.created is an echo"
    );

    // A rename in board reaches the deal; HubSpot's webhook for it is our echo.
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/{pid}"),
            "acct-a",
            Some(json!({"name": "双方向案件(改)"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_deal(&run, &id, |p| p["dealname"] == "双方向案件(改)").await;

    // 受注確定 with an ordered date: the first stage mapped to 4, midnight in Tokyo.
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/order_status/{pid}"),
            "acct-a",
            Some(json!({"order_status": 4, "order_date": "2026-12-01"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let closed = wait_deal(&run, &id, |p| p["dealstage"] == "decisionmakerboughtin").await;
    assert_eq!(
        closed["properties"]["closedate"],
        "2026-11-30T15:00:00.000Z"
    );

    // Back to 見積中(高): the deal's stage does not map to 1, so the first
    // stage mapped to 1 in display order.
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/order_status/{pid}"),
        "acct-a",
        Some(json!({"order_status": 1})),
    )
    .await;
    wait_deal(&run, &id, |p| p["dealstage"] == "appointmentscheduled").await;
    // A move in HubSpot to another stage mapped to 1 reaches board as nothing
    // (same status), and board's silence means the deal keeps that stage.
    run.update_deal(&id, json!({"dealstage": "contractsent"}))
        .await;
    run.settle().await;
    run.settle().await;
    assert_eq!(
        deal(&run, &id).await["properties"]["dealstage"],
        "contractsent"
    );

    run.settle().await;
    let to_hubspot = entries(&run, "direction", "board_to_hubspot").await;
    let details: Vec<&str> = to_hubspot
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        details.len(),
        3,
        "one entry per real change, none for echoes: {details:?}"
    );
    assert!(details.iter().any(|d| d.contains("dealname")));
    assert!(
        details
            .iter()
            .any(|d| d.contains("dealstage") && d.contains("closedate"))
    );
    assert!(
        entries(&run, "action", "project_updated").await.is_empty(),
        "no ping-pong: our writes to HubSpot never come back to board"
    );

    // Deleted in HubSpot: one error, then silence while the link stays disabled.
    run.hubspot(
        reqwest::Method::DELETE,
        &format!("/crm/objects/2026-03/deals/{id}"),
        None,
    )
    .await;
    for name in ["削除後の変更1", "削除後の変更2"] {
        run.board(
            reqwest::Method::PATCH,
            &format!("/projects/{pid}"),
            "acct-a",
            Some(json!({"name": name})),
        )
        .await;
        run.settle().await;
    }
    assert_eq!(entries(&run, "code", "deal_not_found").await.len(), 1);
    run.stack.shutdown().await;
}

#[tokio::test]
async fn a_deleted_project_marks_its_link_and_hubspot_refusals_are_recorded() {
    let run = Run::start().await;
    run.connect("acct-a", None).await;
    let (id, pid) = linked_project(&run, "長い名前の案件").await;

    // HubSpot refuses the value: hubspot_api_error with HubSpot's message; nothing else changes.
    // The portal's administrator allows deal names of at most 20 characters.
    let rule = run
        .http
        .post(format!("{}/_sandbox/hubspot/_control/validation", run.base))
        .json(&json!({"objectType": "deals", "property": "dealname", "maxCharacters": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(rule.status(), 204);
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/{pid}"),
        "acct-a",
        Some(json!({"name": "長".repeat(30)})),
    )
    .await;
    let mut refused = Vec::new();
    for _ in 0..100 {
        refused = entries(&run, "code", "hubspot_api_error").await;
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["direction"], "board_to_hubspot");
    assert!(
        refused[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("too long"),
        "HubSpot's own message: {}",
        refused[0]
    );
    assert_eq!(
        deal(&run, &id).await["properties"]["dealname"],
        "長い名前の案件"
    );

    // Deleted in board: the link is marked deleted (once); the deal is not re-drafted.
    let (status, _) = run
        .board(
            reqwest::Method::DELETE,
            &format!("/projects/{pid}"),
            "acct-a",
            None,
        )
        .await;
    assert!(status < 300, "{status}");
    let mut gone = Vec::new();
    for _ in 0..100 {
        gone = entries(&run, "code", "project_not_found").await;
        if !gone.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gone.len(), 1);
    run.update_deal(&id, json!({"dealname": "削除後の取引"}))
        .await;
    run.settle().await;
    assert!(
        run.drafts("acct-a", "open")
            .await
            .iter()
            .all(|d| d["deal_id"] != id.as_str()),
        "not silently re-drafted"
    );
    assert_eq!(entries(&run, "code", "project_not_found").await.len(), 1);
    run.stack.shutdown().await;
}
