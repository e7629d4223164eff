//! Later wins (SPEC §11) for every synced field, both ways: company fields and the ordered date
//! as the deal name and stage; and company writes board → HubSpot sent in batches by the writer
//! deals use (a read for conflicts and an update per 100 records).

use std::time::Duration;

use board_hubspot::domain::link::Baseline;
use board_hubspot::domain::{
    BoardObjectKind, BoardRef, HubSpotObjectType, HubSpotRef, Link, LinkState,
};
use board_hubspot::ports::ReceivedMessage;
use serde_json::{Value, json};
use tests::stack::Run;

/// Turns a link off, lets `first` and then `second` edit, turns it on (which
/// resyncs HubSpot → board).
async fn edit_both_while_off<F, G>(run: &Run, link: &str, first: F, second: G)
where
    F: std::future::Future<Output = ()>,
    G: std::future::Future<Output = ()>,
{
    let (status, body) = run
        .api(
            reqwest::Method::PUT,
            link,
            "acct-a",
            Some(json!({"sync_enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    first.await;
    // board's and HubSpot's clocks both count in milliseconds.
    tokio::time::sleep(Duration::from_millis(30)).await;
    second.await;
    run.settle().await;
    let (status, body) = run
        .api(
            reqwest::Method::PUT,
            link,
            "acct-a",
            Some(json!({"sync_enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn company_fields_go_to_the_later_change_in_both_directions() {
    let run = Run::connected("acct-a").await;
    let tests::stack::Linked {
        company,
        customer: client,
        ..
    } = run.linked_deal("acct-a", "電話").await;
    run.settle().await;
    let link = format!("/v1/hubspot/links/customer/{client}");
    let hubspot_phone = |phone: &'static str| {
        let path = format!("/crm/objects/2026-03/companies/{company}");
        let run = &run;
        async move {
            run.hubspot(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"properties": {"phone": phone}})),
            )
            .await;
        }
    };
    let board_tel = |tel: &'static str| {
        let run = &run;
        async move {
            let (status, body) = run
                .board(
                    reqwest::Method::PATCH,
                    &format!("/clients/{client}"),
                    "acct-a",
                    Some(json!({"tel": tel})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let customer_tel = || async {
        run.board(
            reqwest::Method::GET,
            &format!("/clients/{client}"),
            "acct-a",
            None,
        )
        .await
        .1["tel"]
            .clone()
    };

    // HubSpot → board: board edited later, so board's number stays.
    edit_both_while_off(
        &run,
        &link,
        hubspot_phone("06-1111-1111"),
        board_tel("06-2222-2222"),
    )
    .await;
    let conflicts = tests::eventually!(
        run.entries("acct-a", "code", "conflict_overwritten").await,
        |c| !c.is_empty()
    );
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["direction"], "hubspot_to_board");
    assert_eq!(conflicts[0]["detail"], "電話番号: boardの後の変更を優先");
    assert_eq!(customer_tel().await, "06-2222-2222");

    // HubSpot → board: HubSpot edited later, so its number overwrites board's.
    edit_both_while_off(
        &run,
        &link,
        board_tel("06-3333-3333"),
        hubspot_phone("06-4444-4444"),
    )
    .await;
    let conflicts = tests::eventually!(
        run.entries("acct-a", "code", "conflict_overwritten").await,
        |c| c.len() == 2
    );
    assert_eq!(conflicts[0]["detail"], "電話番号: HubSpotの後の変更を優先");
    assert_eq!(customer_tel().await, "06-4444-4444");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn the_ordered_date_goes_to_the_later_change() {
    let run = Run::connected("acct-a").await;
    let tests::stack::Linked {
        deal: id,
        project: pid,
        ..
    } = run.linked_deal("acct-a", "受注日").await;
    // Closed in HubSpot: 受注 with its close date.
    run.update_deal(
        &id,
        json!({"dealstage": "closedwon", "closedate": "2026-12-01T03:00:00Z"}),
    )
    .await;
    tests::eventually!(run.inspect_project(pid).await, |p| p["order_date"]
        == "2026-12-01");
    run.settle().await;
    let link = format!("/v1/hubspot/links/project/{pid}");
    let hubspot_date = |date: &'static str| {
        let (run, id) = (&run, id.clone());
        async move { run.update_deal(&id, json!({"closedate": date})).await }
    };
    let board_date = |date: &'static str| {
        let run = &run;
        async move {
            let (status, body) = run
                .board(
                    reqwest::Method::PATCH,
                    &format!("/projects/{pid}"),
                    "acct-a",
                    Some(json!({"order_date": date})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };

    edit_both_while_off(
        &run,
        &link,
        hubspot_date("2026-12-02T03:00:00Z"),
        board_date("2026-12-03"),
    )
    .await;
    let conflicts = tests::eventually!(
        run.entries("acct-a", "code", "conflict_overwritten").await,
        |c| !c.is_empty()
    );
    assert_eq!(conflicts[0]["detail"], "受注日: boardの後の変更を優先");
    assert_eq!(run.inspect_project(pid).await["order_date"], "2026-12-03");

    edit_both_while_off(
        &run,
        &link,
        board_date("2026-12-04"),
        hubspot_date("2026-12-05T03:00:00Z"),
    )
    .await;
    let conflicts = tests::eventually!(
        run.entries("acct-a", "code", "conflict_overwritten").await,
        |c| c.len() == 2
    );
    assert_eq!(conflicts[0]["detail"], "受注日: HubSpotの後の変更を優先");
    assert_eq!(run.inspect_project(pid).await["order_date"], "2026-12-05");
    run.stack.shutdown().await;
}

const COMPANIES: usize = 120;

#[tokio::test]
async fn customer_changes_of_one_batch_go_to_hubspot_in_batches_with_later_wins() {
    let run = Run::connected("acct-a").await;
    let services = &run.stack.services;
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let portal = services
        .connections
        .get_connection(&account)
        .await
        .unwrap()
        .unwrap()
        .portal_id;
    // Our own edits below must not come back as webhooks for customers board lacks.
    run.webhooks(false).await;
    let inputs: Vec<Value> = (0..COMPANIES)
        .map(|i| json!({"properties": {"name": format!("会社{i}"), "phone": "03-0000-0000"}}))
        .collect();
    let mut companies: Vec<(String, u64)> = Vec::new();
    for chunk in inputs.chunks(100) {
        let created = run
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/companies/batch/create",
                Some(json!({"inputs": chunk})),
            )
            .await;
        companies.extend(created["results"].as_array().unwrap().iter().map(|r| {
            (
                r["properties"]["name"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().parse().unwrap(),
            )
        }));
    }
    companies.sort_by_key(|(name, _)| name.trim_start_matches("会社").parse::<usize>().unwrap());
    let company = |i: usize| companies[i].1;
    for i in 0..COMPANIES {
        let link = Link {
            account_id: account.clone(),
            portal_id: portal,
            hubspot: HubSpotRef {
                object_type: HubSpotObjectType::Company,
                id: company(i),
            },
            board: BoardRef {
                kind: BoardObjectKind::Customer,
                id: 20_000 + i as u64,
            },
            state: LinkState::Enabled,
            last_synced_at: None,
            baseline: [
                ("name", format!("会社{i}")),
                ("phone", "03-0000-0000".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Baseline::both(Some(v))))
            .collect(),
            revision: 0,
        };
        services.links.create_link(&link).await.unwrap();
    }
    // HubSpot's users edit three of them after board's changes below happened.
    for (i, phone) in [
        (7, "03-7777-7777"),
        (8, "03-8888-8888"),
        (9, "06-1111-0009"),
    ] {
        run.hubspot(
            reqwest::Method::PATCH,
            &format!("/crm/objects/2026-03/companies/{}", company(i)),
            Some(json!({"properties": {"phone": phone}})),
        )
        .await;
    }
    run.clear_hubspot_requests().await;

    let messages: Vec<ReceivedMessage> = (0..COMPANIES)
        .map(|i| {
            // #8's change is dated after HubSpot's edit; the others before it.
            let occurred_at = if i == 8 {
                "2099-01-01T00:00:00+09:00"
            } else {
                "2026-01-01T00:00:00+09:00"
            };
            let event = json!({"event_id": format!("customer-{i}"), "account_id": "acct-a",
                "type": "customer.updated", "occurred_at": occurred_at, "version": 2,
                "object": {"id": 20_000 + i, "name": format!("会社{i}"), "tel": format!("06-1111-{i:04}")}});
            ReceivedMessage {
                message_id: format!("m-{i}"),
                receipt: format!("r-{i}"),
                body: event.to_string(),
                receive_count: 1,
                attributes: Vec::new(),
            }
        })
        .collect();
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &messages,
    )
    .await;
    assert_eq!(outcome.done.len(), COMPANIES, "{outcome:?}");

    let log = run.hubspot_requests().await;
    let calls = |suffix: &str| -> Vec<Value> {
        log.iter()
            .filter(|r| r["token"] == "app" && r["path"].as_str().unwrap().ends_with(suffix))
            .cloned()
            .collect()
    };
    let reads = calls("/companies/batch/read");
    let updates = calls("/companies/batch/update");
    assert_eq!(reads.len(), 2, "one read per 100 records: {reads:?}");
    assert_eq!(updates.len(), 2, "one update per 100 records: {updates:?}");
    let sent: u64 = updates.iter().map(|r| r["inputs"].as_u64().unwrap()).sum();
    assert_eq!(
        sent,
        COMPANIES as u64 - 2,
        "#7 keeps HubSpot's later edit, #9 already holds board's number"
    );
    let ours: Vec<&Value> = log
        .iter()
        .filter(|r| r["token"] == "app" && !r["path"].as_str().unwrap().starts_with("/oauth"))
        .collect();
    assert_eq!(ours.len(), 4, "no other call, none per record: {ours:?}");
    let phone = |i: usize| {
        let run = &run;
        let id = company(i);
        async move {
            run.hubspot(
                reqwest::Method::GET,
                &format!("/crm/objects/2026-03/companies/{id}?properties=phone"),
                None,
            )
            .await["properties"]["phone"]
                .clone()
        }
    };
    assert_eq!(phone(0).await, "06-1111-0000");
    assert_eq!(phone(119).await, "06-1111-0119");
    assert_eq!(phone(7).await, "03-7777-7777", "HubSpot's later edit stays");
    assert_eq!(phone(8).await, "06-1111-0008", "board's later change wins");
    let conflicts = run.entries("acct-a", "code", "conflict_overwritten").await;
    let mut details: Vec<&str> = conflicts
        .iter()
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    details.sort();
    assert_eq!(
        details,
        [
            "電話番号: HubSpotの後の変更を優先",
            "電話番号: boardの後の変更を優先"
        ]
    );
    assert_eq!(
        run.entries("acct-a", "action", "company_updated")
            .await
            .len(),
        COMPANIES - 2
    );
    run.webhooks(true).await;
    run.stack.shutdown().await;
}

/// HubSpot took a write whose answer was lost (so no baseline was saved),
/// and board had already changed the project again: that later board change
/// finds HubSpot holding our own earlier value, which is our echo (saved on
/// the link before the write), not a HubSpot change made after it. Before,
/// the later board change lost to "HubSpot's" change and the sides stayed
/// apart (the 10,000-event soak found it).
#[tokio::test]
async fn a_write_hubspot_took_without_answering_does_not_outrank_a_later_board_change() {
    let run = Run::connected("acct-a").await;
    let tests::stack::Linked { deal, project, .. } = run.linked_deal("acct-a", "応答消失").await;
    run.settle().await;
    // board's events are kept by the emulator but not queued: this test hands
    // them to the worker itself, in the order it needs.
    run.stack
        .sandboxes
        .board
        .set_event_sink(std::sync::Arc::new(|_| {}));
    let edit = |name: &'static str| {
        let rename = json!([{"resource": "projects", "id": project, "fields": {"name": name}}]);
        run.board_changes("edits", "acct-a", rename)
    };
    edit("応答消失A").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    edit("応答消失B").await;
    let events: Vec<Value> = run
        .board_events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "project.updated" && e["object"]["id"] == project)
        .collect();
    let (a, b) = (&events[events.len() - 2], &events[events.len() - 1]);
    assert_eq!(b["object"]["name"], "応答消失B");
    let message = |event: &Value, n: u32| ReceivedMessage {
        message_id: format!("m-lost-{n}"),
        receipt: format!("r-lost-{n}"),
        body: event.to_string(),
        receive_count: 1,
        attributes: Vec::new(),
    };
    let services = &run.stack.services;
    let name_in_hubspot = || async {
        run.hubspot(
            reqwest::Method::GET,
            &format!("/crm/objects/2026-03/deals/{deal}?properties=dealname"),
            None,
        )
        .await["properties"]["dealname"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // A's write: HubSpot takes it, the answer never comes.
    run.hubspot_faults(json!({"lost_answer_rate": 1.0, "timeout_ms": 50,
        "path_prefix": "/crm/objects/2026-03/deals/batch/update"}))
        .await;
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &[message(a, 1)],
    )
    .await;
    assert_eq!(outcome.retry.len(), 1, "A is retried later: {outcome:?}");
    assert_eq!(name_in_hubspot().await, "応答消失A", "yet HubSpot took it");
    run.hubspot_faults(json!({})).await;

    // B, made in board before A reached HubSpot, comes next.
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &[message(b, 2)],
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    assert_eq!(
        name_in_hubspot().await,
        "応答消失B",
        "board's later change reaches HubSpot"
    );
    let history = run.history("acct-a").await;
    assert!(
        !history.iter().any(|h| h["code"] == "conflict_overwritten"
            && h["detail"].as_str().unwrap_or_default().contains("HubSpot")),
        "no conflict with our own write: {history:?}"
    );
}
