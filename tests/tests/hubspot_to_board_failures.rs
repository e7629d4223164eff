//! HubSpot → board failures are visible as board → HubSpot's are: retried
//! quietly while attempts remain, recorded with their catalog code on the last
//! one (never left to the dead-letter queue unseen), retryable from the
//! history; and the connection shows when each direction last synced.

use board_hubspot::app::jobs::{Job, QueueMessage};
use board_hubspot::domain::PortalId;
use board_hubspot::domain::hubspot_event::WebhookEvent;
use board_hubspot::ports::ReceivedMessage;
use serde_json::{Value, json};
use tests::stack::Run;

/// A linked deal: created in HubSpot, drafted, registered in board.
async fn linked_deal(run: &Run) -> (String, u64) {
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社障害"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "障害テスト案件", "pipeline": "default", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let project = run.register_draft("acct-a", &id).await;
    (id, project)
}

async fn board_faults(run: &Run, rate: f64) {
    let status = run
        .http
        .post(format!("{}/_sandbox/board/_control/settings", run.base))
        .json(&json!({"fault_rate": rate}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
}

/// HubSpot's notification of the deal's rename, as the worker receives it
/// from the work queue on its `receive_count`-th delivery.
fn rename_message(deal: &str, receive_count: u32) -> ReceivedMessage {
    let event = WebhookEvent::parse(&json!({
        "eventId": 77, "subscriptionId": 1, "portalId": 1_000_001, "appId": 1,
        "occurredAt": (time::OffsetDateTime::now_utc().unix_timestamp() * 1000),
        "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
        "objectId": deal.parse::<u64>().unwrap(), "propertyName": "dealname",
        "propertyValue": "障害中の改名", "changeSource": "CRM_UI", "attemptNumber": 0
    }))
    .unwrap();
    ReceivedMessage {
        message_id: format!("m-{receive_count}"),
        receipt: format!("r-{receive_count}"),
        body: QueueMessage::to_body(&Job::HubspotEvents {
            portal_id: PortalId::new(1_000_001).unwrap(),
            events: vec![event],
            carried: false,
            account_id: None,
            lease: None,
        }),
        receive_count,
        attributes: Vec::new(),
    }
}

/// board's background budget window (3 calls in any 1.25 s), and a little.
const BOARD_WINDOW: std::time::Duration = std::time::Duration::from_millis(1_400);

async fn errors_to_board(run: &Run) -> Vec<Value> {
    let (status, body) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/history?status=error&direction=hubspot_to_board",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn board_down_on_the_last_attempt_is_recorded_and_retryable_and_last_sync_is_shown() {
    let run = Run::connected("acct-a").await;
    let (deal, project) = linked_deal(&run).await;

    // A rename reaching board shows as the last sync HubSpot → board.
    run.update_deal(&deal, json!({"dealname": "改名済み案件"}))
        .await;
    let renamed = tests::eventually!(run.inspect_project(project).await, |p| p["name"]
        == "改名済み案件");
    assert_eq!(renamed["name"], "改名済み案件");
    let (_, status) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/connection",
            "acct-a",
            None,
        )
        .await;
    assert!(
        status["last_sync_at"]["hubspot_to_board"].is_string(),
        "{status}"
    );
    assert!(
        status["last_sync_at"]["board_to_hubspot"].is_null(),
        "nothing went board → HubSpot yet: {status}"
    );

    // board answers 503 to everything. The rename in HubSpot, on a delivery
    // with attempts left, is retried without a history entry.
    run.update_deal(&deal, json!({"dealname": "障害中の改名"}))
        .await;
    board_faults(&run, 1.0).await;
    run.settle().await;
    let services = &run.stack.services;
    let before = errors_to_board(&run).await.len();
    // The account's board budget clear again (the retries above spent it): a
    // wait for it would defer the message rather than fail it.
    tokio::time::sleep(BOARD_WINDOW).await;
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.queue.as_ref(),
        &[rename_message(&deal, 1)],
    )
    .await;
    assert_eq!(outcome.retry.len(), 1, "{outcome:?}");
    assert_eq!(errors_to_board(&run).await.len(), before);

    // On the last attempt it is recorded with its catalog code and the message completes.
    tokio::time::sleep(BOARD_WINDOW).await;
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.queue.as_ref(),
        &[rename_message(
            &deal,
            board_hubspot::app::services::MAX_RECEIVES,
        )],
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    assert_eq!(outcome.dead_lettered, 0);
    let errors = errors_to_board(&run).await;
    let entry = errors
        .iter()
        .find(|e| e["code"] == "board_unavailable")
        .unwrap_or_else(|| panic!("no board_unavailable entry: {errors:?}"));
    assert_eq!(entry["hubspot_id"], deal.as_str());
    assert_eq!(entry["board_id"], project);
    assert_eq!(entry["status"], "error");

    // Retried from the history once board is back: the rename reaches the project.
    board_faults(&run, 0.0).await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!(
                "/v1/hubspot/history/{}/retry",
                entry["id"].as_str().unwrap()
            ),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let recovered = tests::eventually!(run.inspect_project(project).await, |p| p["name"]
        == "障害中の改名");
    assert_eq!(recovered["name"], "障害中の改名");
    run.stack.shutdown().await;
}

async fn hubspot_faults(run: &Run, faults: Value) {
    let status = run
        .http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
}

async fn auth_failures(run: &Run) -> u64 {
    let (_, status) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/connection",
            "acct-a",
            None,
        )
        .await;
    status["consecutive_auth_failures"].as_u64().unwrap()
}

/// SPEC §3.9: a refused token counts toward suspension on the HubSpot → board
/// path too, and a call that authenticates starts the count over.
#[tokio::test]
async fn a_refused_token_counts_and_an_authenticated_read_resets_the_count() {
    let run = Run::connected("acct-a").await;
    let (deal, _) = linked_deal(&run).await;
    run.settle().await;
    let services = &run.stack.services;

    hubspot_faults(
        &run,
        json!({"error_rates": [[401, 1.0]], "path_prefix": "/crm/objects/2026-03/deals/batch/read"}),
    )
    .await;
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.queue.as_ref(),
        &[rename_message(&deal, 1)],
    )
    .await;
    assert_eq!(outcome.retry.len(), 1, "{outcome:?}");
    assert_eq!(auth_failures(&run).await, 1);

    hubspot_faults(&run, json!({})).await;
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.queue.as_ref(),
        &[rename_message(&deal, 2)],
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    assert_eq!(auth_failures(&run).await, 0);
    run.stack.shutdown().await;
}
