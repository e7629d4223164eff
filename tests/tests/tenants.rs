//! Many tenants on one service: on-call pauses one tenant's background work
//! (`PAUSED_TENANTS`) and the others go on; a paused tenant's changes wait in
//! the queue (never in the dead-letter queue) until it is resumed.

use std::time::Duration;

use serde_json::{Value, json};
use tests::stack::Run;

async fn deal_name(run: &Run, id: &str) -> Value {
    run.hubspot(
        reqwest::Method::GET,
        &format!("/crm/objects/2026-03/deals/{id}?properties=dealname"),
        None,
    )
    .await["properties"]["dealname"]
        .clone()
}

#[tokio::test]
async fn a_paused_tenant_waits_in_the_queue_while_the_others_sync() {
    let run = Run::start_with(&[("PAUSED_TENANTS", "account:acct-b")]).await;
    run.connect("acct-a", None).await;
    let a = run.linked_deal("acct-a", "稼働中").await;
    run.settle().await;
    for (account, project, name) in [
        ("acct-a", a.project, "稼働中(改)"),
        ("acct-b", 12_345, "停止中(改)"),
    ] {
        let event = json!({"event_id": format!("pause-{account}"), "account_id": account,
            "type": "project.updated", "occurred_at": "2026-12-07T10:00:00+09:00", "version": 1_000,
            "object": {"id": project, "name": name, "order_status": 1}});
        run.stack
            .services
            .board_queue
            .send_batch(&[event.to_string()])
            .await
            .unwrap();
    }
    let renamed = tests::eventually!(deal_name(&run, &a.deal).await, |n| n == "稼働中(改)");
    assert_eq!(renamed, "稼働中(改)", "the running tenant syncs");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dead = run
        .stack
        .services
        .board_queue
        .receive_dead_letters(10)
        .await
        .unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    let waiting = run
        .stack
        .services
        .board_queue
        .receive(10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(
        waiting.is_empty(),
        "the paused tenant's change is put back for later, not retried now"
    );
    run.stack.shutdown().await;
}

/// A tenant whose HubSpot budget is held (HubSpot said its window is nearly
/// spent) waits its turn: its message goes back as a fresh one, on its last
/// receive too, and nothing is recorded as a failure nor dead-lettered.
#[tokio::test]
async fn a_change_over_its_tenants_budget_waits_its_turn_without_counting_as_a_failure() {
    let run = Run::connected("acct-a").await;
    let linked = run.linked_deal("acct-a", "順番待ち").await;
    run.settle().await;
    let services = &run.stack.services;
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let portal = services
        .connections
        .get_connection(&account)
        .await
        .unwrap()
        .unwrap()
        .portal_id;
    // HubSpot's headers said 0 of 110 left: the portal's background work is held for 3 s.
    let held: Result<(), _> = board_hubspot::app::budget::metered(
        services,
        portal,
        Ok(board_hubspot::ports::Metered {
            value: (),
            rate: Some(board_hubspot::ports::RateWindow {
                max: 110,
                remaining: 0,
                interval_ms: 3_000,
            }),
        }),
    )
    .await;
    assert!(held.is_ok());
    let errors_before = run.entries("acct-a", "status", "error").await.len();
    let event = json!({"event_id": "over-budget", "account_id": "acct-a", "type": "project.updated",
        "occurred_at": "2026-12-07T10:00:00+09:00", "version": 1_000,
        "object": {"id": linked.project, "name": "順番待ち(改)", "order_status": 1}});
    let message = board_hubspot::ports::ReceivedMessage {
        message_id: "m-over-budget".into(),
        receipt: "r-over-budget".into(),
        body: event.to_string(),
        // Its last receive: a failure would now be recorded, a wait must not be.
        receive_count: board_hubspot::app::services::MAX_RECEIVES,
        attributes: Vec::new(),
    };
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        std::slice::from_ref(&message),
    )
    .await;
    assert_eq!(outcome.done, ["m-over-budget"], "{outcome:?}");
    assert!(outcome.retry.is_empty() && outcome.dead_lettered == 0);
    assert_eq!(
        run.entries("acct-a", "status", "error").await.len(),
        errors_before,
        "waiting is not a failure"
    );
    assert_ne!(deal_name(&run, &linked.deal).await, "順番待ち(改)");
    // The fresh copy comes back after the hold and applies.
    let renamed = tests::eventually!(deal_name(&run, &linked.deal).await, |n| n == "順番待ち(改)");
    assert_eq!(renamed, "順番待ち(改)");
    run.stack.shutdown().await;
}

/// One account's share of an invocation is bounded: deals its board budget
/// would take half a minute to write are handed on as a job of their own after
/// `ACCOUNT_SLICE`, so the poller moves on; every deal still reaches board.
#[tokio::test]
async fn an_accounts_long_run_is_handed_on_instead_of_holding_the_invocation() {
    // board allows this account 1 call a second: 6 deals × (read + update) ≈ 15 s of pacing.
    let run = Run::start_with(&[("BOARD_RATE_PER_SECOND", "1")]).await;
    run.connect("acct-a", None).await;
    let mut linked = Vec::new();
    for n in 0..6 {
        linked.push(run.linked_deal("acct-a", &format!("分割{n}")).await);
    }
    run.settle().await;
    run.webhooks(false).await;
    for (n, deal) in linked.iter().enumerate() {
        run.update_deal(&deal.deal, json!({"dealname": format!("分割{n}(改)")}))
            .await;
    }
    let services = &run.stack.services;
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let connection = services
        .connections
        .get_connection(&account)
        .await
        .unwrap()
        .unwrap();
    let deals: std::collections::BTreeMap<u64, std::collections::BTreeSet<String>> = linked
        .iter()
        .map(|l| (l.deal.parse().unwrap(), ["test".to_owned()].into()))
        .collect();
    let started = std::time::Instant::now();
    board_hubspot::app::hubspot_to_board::sync_deals(services, &connection, &deals, false)
        .await
        .unwrap();
    let took = started.elapsed();
    let slice = board_hubspot::app::hubspot_to_board::deals::ACCOUNT_SLICE;
    assert!(
        took < slice + Duration::from_secs(3),
        "one account held the invocation for {took:?}"
    );
    // The stack's own pollers take the handed-on job and finish the rest.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    for (n, l) in linked.iter().enumerate() {
        let wanted = format!("分割{n}(改)");
        loop {
            let name = run.inspect_project(l.project).await["name"].clone();
            if name == wanted.as_str() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deal {n} never reached board: {name}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    run.stack.shutdown().await;
}

/// Pausing a portal pauses its work handed on for one of its accounts too.
#[tokio::test]
async fn pausing_a_portal_pauses_the_jobs_handed_on_for_its_accounts() {
    let paused = format!("portal:{}", sandbox_hubspot::PORTAL_ID);
    let run = Run::start_with(&[("PAUSED_TENANTS", paused.as_str())]).await;
    run.connect("acct-a", None).await;
    let services = &run.stack.services;
    use board_hubspot::domain::hubspot_event::{ChangeOrigin, EventKind, ObjectRef};
    let portal = board_hubspot::domain::PortalId::new(sandbox_hubspot::PORTAL_ID).unwrap();
    let job = board_hubspot::app::jobs::QueueMessage::to_body(
        &board_hubspot::app::jobs::Job::HubspotEvents {
            portal_id: portal,
            events: vec![board_hubspot::app::jobs::WebhookEvent {
                portal_id: portal,
                event_id: None,
                occurred_at: None,
                kind: EventKind::PropertyChange,
                object: ObjectRef {
                    object_type: board_hubspot::domain::HubSpotObjectType::Deal,
                    id: 42,
                },
                property: None,
                merged: Vec::new(),
                new_object_id: None,
                association: None,
                origin: ChangeOrigin::default(),
            }],
            carried: true,
            account_id: Some("acct-a".parse().unwrap()),
            lease: None,
        },
    );
    let message = board_hubspot::ports::ReceivedMessage {
        message_id: "m-handed-on".into(),
        receipt: "r-handed-on".into(),
        body: job,
        receive_count: 1,
        attributes: Vec::new(),
    };
    let parsed = board_hubspot::app::jobs::QueueMessage::parse(&message.body);
    assert!(parsed.is_ok(), "{parsed:?}");
    // The queue it came from: a paused tenant's message is put back there.
    let source =
        board_hubspot::adapters::queue::memory::MemoryQueue::new(Duration::from_secs(30), 5);
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        &source,
        std::slice::from_ref(&message),
    )
    .await;
    assert_eq!(outcome.done, ["m-handed-on"], "{outcome:?}");
    assert_eq!(source.depth(), 1, "put back for later, not run");
    run.stack.shutdown().await;
}
