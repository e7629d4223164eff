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
