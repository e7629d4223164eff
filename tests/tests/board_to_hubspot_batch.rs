//! 500 project changes at once (SPEC §6, §11): HubSpot writes go in batch calls
//! within the portal's 110 requests per 10 s, and the one refused record of a
//! batch is found by bisection while the other 99 land.

use board_hubspot::domain::{BoardObjectKind, BoardRef};
use board_hubspot::ports::ReceivedMessage;
use serde_json::{Value, json};
use tests::stack::Run;

const N: usize = 500;
const FAULTY: usize = 250;

#[tokio::test]
async fn five_hundred_changes_are_batched_under_the_limit_and_bisected() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_test_writer()
        .try_init();
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

    // 500 deals (their stage maps to no status: no drafts).
    let mut deals: Vec<u64> = Vec::new();
    for chunk in 0..N / 100 {
        let inputs: Vec<Value> = (0..100)
            .map(|i| {
                json!({"properties": {"dealname": format!("一括{}", chunk * 100 + i),
                                       "pipeline": "default", "dealstage": "appointmentscheduled"}})
            })
            .collect();
        let created = run
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals/batch/create",
                Some(json!({"inputs": inputs})),
            )
            .await;
        let mut ids: Vec<(String, u64)> = created["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["properties"]["dealname"].as_str().unwrap().to_owned(),
                    r["id"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        ids.sort_by_key(|(name, _)| name.trim_start_matches("一括").parse::<usize>().unwrap());
        deals.extend(ids.into_iter().map(|(_, id)| id));
    }
    // Each linked to a project, as registration would have left them.
    for (i, deal) in deals.iter().enumerate() {
        let link = tests::registered_deal_link(
            &account,
            portal,
            *deal,
            10_000 + i as u64,
            &format!("一括{i}"),
        );
        services.links.claim_deal(&link).await.unwrap();
    }
    // The portal allows deal names of at most 20 characters; one project has 30.
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/validation", run.base))
        .json(&json!({"objectType": "deals", "property": "dealname", "maxCharacters": 20}))
        .send()
        .await
        .unwrap();
    run.settle().await;
    run.clear_hubspot_requests().await;

    // board's producer sends 500 changes; Lambda hands them over 100 at a time.
    let messages: Vec<ReceivedMessage> = (0..N)
        .map(|i| {
            let name = if i == FAULTY {
                "長".repeat(30)
            } else {
                format!("一括{i}(改)")
            };
            let event = json!({"event_id": format!("bulk-{i}"), "account_id": "acct-a",
                "type": "project.updated", "occurred_at": "2026-11-30T10:00:00+09:00", "version": 2,
                "object": {"id": 10_000 + i, "name": name, "order_status": 1}});
            ReceivedMessage {
                message_id: format!("m-{i}"),
                receipt: format!("r-{i}"),
                body: event.to_string(),
                receive_count: 1,
                attributes: Vec::new(),
            }
        })
        .collect();
    let probe = services
        .links
        .link_by_board(
            &account,
            portal,
            BoardRef {
                kind: BoardObjectKind::Project,
                id: 10_000,
            },
        )
        .await
        .unwrap();
    assert!(probe.is_some(), "link stored");
    // What the budget defers goes back to the queue and comes again (as SQS would).
    let mut done = 0;
    let mut pending = messages;
    for round in 0..20 {
        let mut again = Vec::new();
        for batch in pending.chunks(100) {
            let outcome = board_hubspot::app::worker::process_batch(
                services,
                services.board_queue.as_ref(),
                batch,
            )
            .await;
            done += outcome.done.len();
            again.extend(
                batch
                    .iter()
                    .filter(|m| outcome.retry.contains(&m.message_id))
                    .map(|m| ReceivedMessage {
                        receive_count: m.receive_count + 1,
                        ..m.clone()
                    }),
            );
        }
        if again.is_empty() {
            println!("all applied after {} round(s)", round + 1);
            break;
        }
        pending = again;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    assert_eq!(done, N);

    let log = run.hubspot_requests().await;
    let ours: Vec<&Value> = log.iter().filter(|r| r["token"] == "app").collect();
    let updates: Vec<&&Value> = ours
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/deals/batch/update"))
        .collect();
    let inputs: u64 = updates.iter().map(|r| r["inputs"].as_u64().unwrap()).sum();
    let refused = updates.iter().filter(|r| r["status"] == 400).count();
    println!(
        "500 changes: {} batch update calls ({} refused while bisecting), {} inputs sent",
        updates.len(),
        refused,
        inputs
    );
    assert!(
        updates.len() <= 5 + 2 * 7,
        "batched: {} calls",
        updates.len()
    );
    assert!((1..=8).contains(&refused), "bisection depth: {refused}");
    // No rolling 10-second window holds more than HubSpot's 110 of our requests.
    let times: Vec<i64> = ours.iter().map(|r| r["at_ms"].as_i64().unwrap()).collect();
    let busiest = times
        .iter()
        .map(|t| {
            times
                .iter()
                .filter(|u| **u >= *t && **u < t + 10_000)
                .count()
        })
        .max()
        .unwrap_or(0);
    println!("busiest 10 s window: {busiest} requests");
    assert!(busiest <= 110, "{busiest} requests in 10 s");

    // 499 deals renamed, the faulty one unchanged and named in one error.
    let mut renamed = 0;
    for chunk in deals.chunks(100) {
        let read = run
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/deals/batch/read",
                Some(json!({"inputs": chunk.iter().map(|d| json!({"id": d.to_string()})).collect::<Vec<_>>(),
                            "properties": ["dealname"]})),
            )
            .await;
        let results = read["results"].as_array().unwrap();
        assert_eq!(results.len(), chunk.len(), "{read}");
        for r in results {
            if r["properties"]["dealname"]
                .as_str()
                .unwrap()
                .ends_with("(改)")
            {
                renamed += 1;
            } else {
                println!("not renamed: {r}");
            }
        }
    }
    assert_eq!(renamed, N - 1);
    let (_, errors) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/history?status=error&limit=200",
            "acct-a",
            None,
        )
        .await;
    let errors = errors["items"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "hubspot_api_error");
    assert_eq!(errors[0]["board_id"], 10_000 + FAULTY);
    assert_eq!(errors[0]["hubspot_id"], deals[FAULTY].to_string());
    assert!(errors[0]["detail"].as_str().unwrap().contains("too long"));
    run.stack.shutdown().await;
}

/// A deal deleted in HubSpot, between the service's read and its write, among
/// a batch of project changes: HubSpot answers
/// the batch update 207, writing the others. The deleted one is recorded as
/// `deal_not_found` (not as synced), the others sync, and no call is spent
/// looking for the culprit.
#[tokio::test]
async fn a_partly_failed_batch_write_records_each_input_as_it_went() {
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
    let created = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals/batch/create",
            Some(json!({"inputs": (0..3).map(|i| json!({"properties": {"dealname": format!("部分{i}"),
                "pipeline": "default", "dealstage": "appointmentscheduled"}})).collect::<Vec<_>>()})),
        )
        .await;
    let mut deals: Vec<(String, u64)> = created["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["properties"]["dealname"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    deals.sort();
    for (i, (name, deal)) in deals.iter().enumerate() {
        let link = tests::registered_deal_link(&account, portal, *deal, 20_000 + i as u64, name);
        services.links.claim_deal(&link).await.unwrap();
    }
    // Deleted by a person after the service read it, before its write arrives.
    let gone = deals[1].1;
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
        .json(&json!({"delete_before_write": [gone]}))
        .send()
        .await
        .unwrap();
    run.settle().await;
    run.clear_hubspot_requests().await;

    let messages: Vec<ReceivedMessage> = (0..3)
        .map(|i| {
            let event = json!({"event_id": format!("part-{i}"), "account_id": "acct-a",
                "type": "project.updated", "occurred_at": "2026-11-30T10:00:00+09:00", "version": 2,
                "object": {"id": 20_000 + i, "name": format!("部分{i}(改)"), "order_status": 1}});
            ReceivedMessage {
                message_id: format!("p-{i}"),
                receipt: format!("rp-{i}"),
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
    assert_eq!(outcome.done.len(), 3, "{outcome:?}");

    let updates: Vec<Value> = run
        .hubspot_requests()
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/deals/batch/update"))
        .collect();
    assert_eq!(updates.len(), 1, "one call, no bisection: {updates:?}");
    assert_eq!(updates[0]["status"], 207);

    let history = run.history("acct-a").await;
    let not_found: Vec<&Value> = history
        .iter()
        .filter(|e| e["code"] == "deal_not_found")
        .collect();
    assert_eq!(not_found.len(), 1, "{history:?}");
    assert_eq!(not_found[0]["board_id"], 20_001);
    let synced: Vec<&Value> = history
        .iter()
        .filter(|e| e["status"] == "success" && e["direction"] == "board_to_hubspot")
        .collect();
    assert!(
        synced.iter().all(|e| e["board_id"] != 20_001),
        "the deleted deal is not recorded as synced: {synced:?}"
    );
    for (i, (_, deal)) in deals.iter().enumerate() {
        if *deal == gone {
            continue;
        }
        let read = run
            .hubspot(
                reqwest::Method::GET,
                &format!("/crm/objects/2026-03/deals/{deal}?properties=dealname"),
                None,
            )
            .await;
        assert_eq!(read["properties"]["dealname"], format!("部分{i}(改)"));
    }
    run.stack.shutdown().await;
}
