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
    let d = tests::eventually!(deal(run, id).await, |d| check(&d["properties"]));
    assert!(
        check(&d["properties"]),
        "deal {id} never reached the expected state: {d}"
    );
    d
}

/// A deal registered as a project of acct-a: (deal id, project id).
async fn linked_project(run: &Run, name: &str) -> (String, u64) {
    let linked = run.linked_deal("acct-a", name).await;
    (linked.deal, linked.project)
}

#[tokio::test]
async fn a_linked_project_drives_its_deal_without_echoes() {
    let run = Run::connected("acct-a").await;
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
        run.entries("acct-a", "direction", "board_to_hubspot")
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
    let to_hubspot = run.entries("acct-a", "direction", "board_to_hubspot").await;
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
        run.entries("acct-a", "action", "project_updated")
            .await
            .is_empty(),
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
    assert_eq!(
        run.entries("acct-a", "code", "deal_not_found").await.len(),
        1
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn a_deleted_project_marks_its_link_and_hubspot_refusals_are_recorded() {
    let run = Run::connected("acct-a").await;
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
    let refused = tests::eventually!(
        run.entries("acct-a", "code", "hubspot_api_error").await,
        |refused| !refused.is_empty()
    );
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
    let gone = tests::eventually!(
        run.entries("acct-a", "code", "project_not_found").await,
        |gone| !gone.is_empty()
    );
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
    assert_eq!(
        run.entries("acct-a", "code", "project_not_found")
            .await
            .len(),
        1
    );
    run.stack.shutdown().await;
}

async fn notes_of_deal(run: &Run, id: &str) -> Vec<String> {
    let found = run
        .hubspot(
            reqwest::Method::GET,
            &format!("/crm/objects/2026-03/deals/{id}/associations/notes"),
            None,
        )
        .await;
    found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["toObjectId"].to_string().trim_matches('"').to_owned())
        .collect()
}

async fn wait_notes(run: &Run, id: &str, count: usize) -> Vec<String> {
    let notes = tests::eventually!(notes_of_deal(run, id).await, |notes| notes.len() >= count);
    assert!(notes.len() >= count, "deal {id} never had {count} notes");
    notes
}

#[tokio::test]
async fn a_sent_document_becomes_one_note_even_when_redelivered_or_interrupted() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "請求案件").await;

    run.send_invoice("acct-a", pid).await;
    let notes = wait_notes(&run, &id, 1).await;
    let note = run
        .hubspot(
            reqwest::Method::GET,
            &format!(
                "/crm/objects/2026-03/notes/{}?properties=hs_note_body",
                notes[0]
            ),
            None,
        )
        .await;
    let body = note["properties"]["hs_note_body"]
        .as_str()
        .unwrap()
        .to_owned();
    for part in [
        "boardから請求書を送付しました",
        "書類番号: INV-",
        "金額(税抜): ¥100,000",
        "金額(税込): ¥110,000",
        "送付方法: メール",
        "[board-doc:",
    ] {
        assert!(body.contains(part), "{part} not in {body}");
    }
    assert!(!body.contains("再送"));
    let companies = run
        .hubspot(
            reqwest::Method::GET,
            &format!(
                "/crm/objects/2026-03/notes/{}/associations/companies",
                notes[0]
            ),
            None,
        )
        .await;
    assert_eq!(
        companies["results"].as_array().unwrap().len(),
        1,
        "on the deal's company too"
    );

    // The same event again (board's producer retried): one note.
    let event = run
        .board_events()
        .await
        .into_iter()
        .rfind(|e| e["type"] == "document.sent")
        .unwrap()
        .clone();
    let services = &run.stack.services;
    services
        .board_queue
        .send_batch(&[event.to_string()])
        .await
        .unwrap();
    run.settle().await;
    assert_eq!(notes_of_deal(&run, &id).await.len(), 1);

    // A worker died between HubSpot's create and our record: the redelivery finds
    // the note by its marker and adopts it.
    let intent = format!("note#{}", event["event_id"].as_str().unwrap());
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    services
        .board_events
        .set_intent(&account, &intent, "pending", later)
        .await
        .unwrap();
    let redelivered = board_hubspot::ports::ReceivedMessage {
        message_id: "m-redelivered".into(),
        receipt: "r-redelivered".into(),
        body: event.to_string(),
        receive_count: 2,
        attributes: Vec::new(),
    };
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &[redelivered],
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    assert_eq!(
        notes_of_deal(&run, &id).await.len(),
        1,
        "adopted, not duplicated"
    );
    assert_ne!(
        services
            .board_events
            .intent(&account, &intent, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .as_deref(),
        Some("pending")
    );

    // Sent again: a second note, marked 再送.
    run.send_invoice("acct-a", pid).await;
    let notes = wait_notes(&run, &id, 2).await;
    let mut bodies = Vec::new();
    for n in &notes {
        let note = run
            .hubspot(
                reqwest::Method::GET,
                &format!("/crm/objects/2026-03/notes/{n}?properties=hs_note_body"),
                None,
            )
            .await;
        bodies.push(
            note["properties"]["hs_note_body"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(bodies.iter().filter(|b| b.contains("(再送)")).count(), 1);
    let created = run.entries("acct-a", "action", "note_created").await;
    assert_eq!(created.len(), 2);
    run.stack.shutdown().await;
}

#[tokio::test]
async fn a_linked_customer_drives_its_company_normalised() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "顧客案件").await;
    let project: Value = run.inspect_project(pid).await;
    let client = project["client_id"].as_u64().expect("client_id");
    let companies = run
        .hubspot(
            reqwest::Method::GET,
            &format!("/crm/objects/2026-03/deals/{id}/associations/companies"),
            None,
        )
        .await;
    let company = companies["results"][0]["toObjectId"]
        .to_string()
        .trim_matches('"')
        .to_owned();
    run.settle().await;

    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/clients/{client}"),
            "acct-a",
            Some(
                json!({"tel": "０３（１２３４）５６７８", "zip": "〒100 0005", "pref": "東京",
                        "address1": "千代田区丸の内1-1", "address2": "丸の内ビル3F"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!(
        "/crm/objects/2026-03/companies/{company}?properties=phone,zip,state,city,address,address2,name"
    );
    let props = tests::eventually!(
        run.hubspot(reqwest::Method::GET, &path, None).await["properties"].clone(),
        |props| props["phone"].is_string()
    );
    assert_eq!(props["phone"], "03-1234-5678");
    assert_eq!(props["zip"], "100-0005");
    assert_eq!(props["state"], "東京都");
    assert_eq!(props["city"], "千代田区");
    assert_eq!(props["address"], "丸の内1-1");
    assert_eq!(props["address2"], "丸の内ビル3F");
    run.settle().await;
    run.settle().await;
    let updated = run.entries("acct-a", "action", "company_updated").await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert!(
        run.entries("acct-a", "action", "customer_updated")
            .await
            .is_empty(),
        "HubSpot's webhook for our write is an echo"
    );

    // A postal code board cannot mean: skipped with a warning, the rest goes through.
    run.board(
        reqwest::Method::PATCH,
        &format!("/clients/{client}"),
        "acct-a",
        Some(json!({"zip": "12345", "address2": "丸の内ビル5F"})),
    )
    .await;
    let warned = tests::eventually!(
        run.entries("acct-a", "action", "company_updated").await,
        |warned| warned.len() == 2
    );
    assert_eq!(warned.len(), 2);
    let newest = &warned[0];
    assert!(newest["warnings"].to_string().contains("12345"), "{newest}");
    let props = run.hubspot(reqwest::Method::GET, &path, None).await["properties"].clone();
    assert_eq!(props["zip"], "100-0005");
    assert_eq!(props["address2"], "丸の内ビル5F");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn hubspot_outages_are_retried_then_recorded_on_the_last_attempt() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "障害案件").await;
    run.settle().await;

    // HubSpot answers 429 or 500 to every write: the event goes back to the queue, nothing recorded.
    run.hubspot_faults(
        json!({"error_rates": [[429, 0.5], [500, 1.0]], "path_prefix": "/crm/objects/2026-03/deals/batch"}),
    )
    .await;
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/{pid}"),
        "acct-a",
        Some(json!({"name": "障害中の変更"})),
    )
    .await;
    run.settle().await;
    assert!(
        run.entries("acct-a", "direction", "board_to_hubspot")
            .await
            .is_empty()
    );
    assert_eq!(deal(&run, &id).await["properties"]["dealname"], "障害案件");

    // HubSpot is back: the retry (a delay of about ten seconds) applies it.
    run.hubspot_faults(json!({})).await;
    let renamed = {
        let mut found = Value::Null;
        // Polled gently: the person's token shares HubSpot's 110 requests per 10 s.
        for _ in 0..60 {
            let d = deal(&run, &id).await;
            if d["properties"]["dealname"] == "障害中の変更" {
                found = d;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        found
    };
    assert!(!renamed.is_null(), "the retry never applied the change");
    assert_eq!(
        run.entries("acct-a", "action", "deal_updated").await.len(),
        1
    );

    // Timing out on the last receive: recorded as hubspot_unavailable, retryable from the history.
    run.hubspot_faults(
        json!({"timeout_rate": 1.0, "timeout_ms": 300, "path_prefix": "/crm/objects/2026-03/deals/batch"}),
    )
    .await;
    let project = board_hubspot::domain::BoardRef {
        kind: board_hubspot::domain::BoardObjectKind::Project,
        id: pid,
    };
    let next_version = run
        .stack
        .services
        .board_events
        .applied_version(&"acct-a".parse().unwrap(), project)
        .await
        .unwrap()
        .unwrap_or(0)
        + 1;
    let event = json!({"event_id": "ev-last-attempt", "account_id": "acct-a", "type": "project.updated",
                       "occurred_at": "2026-11-30T10:00:00+09:00", "version": next_version,
                       "object": {"id": pid, "name": "最後の試行", "order_status": 1}});
    let message = board_hubspot::ports::ReceivedMessage {
        message_id: "m-last".into(),
        receipt: "r-last".into(),
        body: event.to_string(),
        receive_count: board_hubspot::app::services::MAX_RECEIVES,
        attributes: Vec::new(),
    };
    let services = &run.stack.services;
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &[message],
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    let unavailable = run.entries("acct-a", "code", "hubspot_unavailable").await;
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0]["status"], "error");
    assert_eq!(
        unavailable[0]["message"],
        "HubSpot APIが一時的に利用できない状況です。"
    );

    // Retried from the history once HubSpot is back: board's current project is applied.
    run.hubspot_faults(json!({})).await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!(
                "/v1/hubspot/history/{}/retry",
                unavailable[0]["id"].as_str().unwrap()
            ),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The event's snapshot was made up; board's project is what the retry applies,
    // and it is already on the deal: nothing more is written, nothing fails.
    assert_eq!(
        deal(&run, &id).await["properties"]["dealname"],
        "障害中の変更"
    );
    assert_eq!(
        run.entries("acct-a", "code", "hubspot_unavailable")
            .await
            .len(),
        1
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn when_both_sides_change_a_field_the_later_change_wins() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "競合案件").await;
    run.settle().await;

    // HubSpot's rename is not delivered yet when board's later rename arrives: board wins.
    run.webhooks(false).await;
    run.update_deal(&id, json!({"dealname": "HubSpotでの変更"}))
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/{pid}"),
        "acct-a",
        Some(json!({"name": "boardでの変更"})),
    )
    .await;
    run.settle().await;
    wait_deal(&run, &id, |p| p["dealname"] == "boardでの変更").await;
    let conflicts = run.entries("acct-a", "code", "conflict_overwritten").await;
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["status"], "skip");
    assert_eq!(
        conflicts[0]["message"],
        "boardとHubSpotの両方で変更されたため、後の変更を優先しました"
    );
    assert!(conflicts[0]["detail"].as_str().unwrap().contains("board"));

    // A board change older than HubSpot's: HubSpot's value stays, recorded once.
    run.update_deal(&id, json!({"dealname": "HubSpotの後の変更"}))
        .await;
    let project = board_hubspot::domain::BoardRef {
        kind: board_hubspot::domain::BoardObjectKind::Project,
        id: pid,
    };
    let services = &run.stack.services;
    let version = services
        .board_events
        .applied_version(&"acct-a".parse().unwrap(), project)
        .await
        .unwrap()
        .unwrap()
        + 100;
    let stale = json!({"event_id": "ev-older", "account_id": "acct-a", "type": "project.updated",
                       "occurred_at": "2026-01-01T00:00:00+09:00", "version": version,
                       "object": {"id": pid, "name": "古いboardの変更", "order_status": 1}});
    let message = board_hubspot::ports::ReceivedMessage {
        message_id: "m-older".into(),
        receipt: "r-older".into(),
        body: stale.to_string(),
        receive_count: 1,
        attributes: Vec::new(),
    };
    board_hubspot::app::worker::process_batch(services, services.board_queue.as_ref(), &[message])
        .await;
    assert_eq!(
        deal(&run, &id).await["properties"]["dealname"],
        "HubSpotの後の変更"
    );
    let conflicts = run.entries("acct-a", "code", "conflict_overwritten").await;
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts[0]["detail"].as_str().unwrap().contains("HubSpot"));
    run.webhooks(true).await;
    run.stack.shutdown().await;
}

async fn project_name(run: &Run, pid: u64) -> Value {
    run.inspect_project(pid).await["name"].clone()
}

/// Both sides edit the name while the link is off; turned on and resynced
/// (HubSpot → board), the later edit wins.
async fn edit_both_while_off(run: &Run, pid: u64, id: &str, hubspot_first: bool) {
    let link = format!("/v1/hubspot/links/project/{pid}");
    let (status, body) = run
        .api(
            reqwest::Method::PUT,
            &link,
            "acct-a",
            Some(json!({"sync_enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hubspot =
        |n: &'static str| async move { run.update_deal(id, json!({"dealname": n})).await };
    let board = |n: &'static str| async move {
        run.board(
            reqwest::Method::PATCH,
            &format!("/projects/{pid}"),
            "acct-a",
            Some(json!({"name": n})),
        )
        .await;
    };
    if hubspot_first {
        hubspot("HubSpotの先の変更").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        board("boardの後の変更").await;
    } else {
        board("boardの先の変更").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        hubspot("HubSpotの後の変更").await;
    }
    run.settle().await;
    let (status, body) = run
        .api(
            reqwest::Method::PUT,
            &link,
            "acct-a",
            Some(json!({"sync_enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("{link}/resync"),
            "acct-a",
            None,
        )
        .await;
    assert!(status < 300, "{status} {body}");
}

#[tokio::test]
async fn hubspot_to_board_also_lets_the_later_change_win() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "双方の変更").await;
    run.settle().await;

    edit_both_while_off(&run, pid, &id, true).await;
    assert_eq!(project_name(&run, pid).await, "boardの後の変更");
    let conflicts = run.entries("acct-a", "code", "conflict_overwritten").await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["direction"], "hubspot_to_board");
    assert!(
        conflicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("boardの後の変更を優先")
    );

    edit_both_while_off(&run, pid, &id, false).await;
    assert_eq!(project_name(&run, pid).await, "HubSpotの後の変更");
    let conflicts = run.entries("acct-a", "code", "conflict_overwritten").await;
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert!(
        conflicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("HubSpotの後の変更を優先")
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn person_in_charge_and_contact_fields_reach_hubspot() {
    let run = Run::connected("acct-a").await;
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社担当"}})),
        )
        .await;
    let contact = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/contacts",
            Some(json!({"properties": {"lastname": "山田", "firstname": "太郎", "email": "yamada@example.jp"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "担当案件", "dealstage": "contractsent"},
                        "associations": [
                            {"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]},
                            {"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let pid = run.register_draft("acct-a", &id).await;
    run.settle().await;

    // The person in charge becomes the owner with the same e-mail.
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/{pid}"),
        "acct-a",
        Some(json!({"user_id": 2})),
    )
    .await;
    wait_deal(&run, &id, |p| p["hubspot_owner_id"] == "6000002").await;

    // The project's contact: e-mail and 肩書 reach the HubSpot contact.
    let project: Value = run.inspect_project(pid).await;
    let board_contact = project["contact_id"]
        .as_u64()
        .expect("a contact on the project");
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/contacts/{board_contact}"),
            "acct-a",
            Some(json!({"email": "t.yamada@example.jp", "title": "部長"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!(
        "/crm/objects/2026-03/contacts/{}?properties=email,jobtitle,lastname,firstname",
        contact["id"].as_str().unwrap()
    );
    let props = tests::eventually!(
        run.hubspot(reqwest::Method::GET, &path, None).await["properties"].clone(),
        |props| props["jobtitle"] == "部長"
    );
    assert_eq!(props["jobtitle"], "部長");
    assert_eq!(props["email"], "t.yamada@example.jp");
    assert_eq!(props["lastname"], "山田");
    run.settle().await;
    assert_eq!(
        run.entries("acct-a", "action", "contact_updated")
            .await
            .len(),
        1
    );
    assert!(
        run.entries("acct-a", "action", "customer_contact_updated")
            .await
            .is_empty(),
        "no echo"
    );
    run.stack.shutdown().await;
}

#[tokio::test]
async fn an_individual_customer_renames_its_contact() {
    let run = Run::connected("acct-a").await;
    let contact = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/contacts",
            Some(json!({"properties": {"lastname": "個人", "firstname": "一郎", "email": "kojin@example.jp"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "個人案件", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let pid = run.register_draft("acct-a", &id).await;
    run.settle().await;
    let project: Value = run.inspect_project(pid).await;
    let client = project["client_id"].as_u64().unwrap();
    run.board(
        reqwest::Method::PATCH,
        &format!("/clients/{client}"),
        "acct-a",
        Some(json!({"name": "個人 次郎"})),
    )
    .await;
    let path = format!(
        "/crm/objects/2026-03/contacts/{}?properties=lastname,firstname",
        contact["id"].as_str().unwrap()
    );
    let props = tests::eventually!(
        run.hubspot(reqwest::Method::GET, &path, None).await["properties"].clone(),
        |props| props["firstname"] == "次郎"
    );
    assert_eq!(props["lastname"], "個人");
    assert_eq!(props["firstname"], "次郎");
    run.stack.shutdown().await;
}

// Under load this found a race (once in 18–30 runs with six copies in
// parallel): HubSpot → board read a deal, board → HubSpot then wrote it and
// saved the link, and HubSpot → board applied the stale read against the new
// baseline, writing an old HubSpot value over board's. A deal whose link was
// saved after the deal was read is now read again first (72 of 72 runs pass).
#[tokio::test]
async fn a_burst_of_changes_on_both_sides_settles() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "連打案件").await;
    run.settle().await;
    for i in 0..5 {
        run.update_deal(&id, json!({"dealname": format!("HubSpot{i}")}))
            .await;
        run.board(
            reqwest::Method::PATCH,
            &format!("/projects/{pid}"),
            "acct-a",
            Some(json!({"name": format!("board{i}")})),
        )
        .await;
    }
    // Both sides agree, and nothing more happens: no ping-pong.
    let mut agreed = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let in_hubspot = deal(&run, &id).await["properties"]["dealname"].clone();
        if in_hubspot == project_name(&run, pid).await {
            agreed = true;
            break;
        }
    }
    assert!(agreed, "the two sides never agreed");
    // Notifications still queued may be re-read after the sides agree (the two
    // queues are polled in parallel); what must not happen is ping-pong: the
    // calls and the history stop changing, and the sides still agree.
    // CRM calls only (the scheduled lifecycle poll may read the journal meanwhile).
    let log_url = format!("{}/_sandbox/hubspot/_control/requests", run.base);
    let activity = || async {
        let log: Value = run
            .http
            .get(&log_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let calls = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap_or_default().contains("/crm/"))
            .count();
        (run.history("acct-a").await.len(), calls)
    };
    let mut last = activity().await;
    let mut quiet = false;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = activity().await;
        if now == last {
            quiet = true;
            break;
        }
        last = now;
    }
    assert!(
        quiet,
        "still writing after 16 s (history, HubSpot calls): {last:?}"
    );
    assert_eq!(
        deal(&run, &id).await["properties"]["dealname"],
        project_name(&run, pid).await
    );
    run.stack.shutdown().await;
}

async fn set_state(run: &Run, state: board_hubspot::domain::connection::ConnectionState) {
    let services = &run.stack.services;
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let mut connection = services
        .connections
        .get_connection(&account)
        .await
        .unwrap()
        .unwrap();
    connection.state = state;
    services
        .connections
        .save_connection(&connection)
        .await
        .unwrap();
}

async fn rename_project(run: &Run, pid: u64, name: &str) {
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/{pid}"),
        "acct-a",
        Some(json!({ "name": name })),
    )
    .await;
    run.settle().await;
}

#[tokio::test]
async fn a_suspended_connection_records_and_a_disconnected_one_ignores() {
    use board_hubspot::domain::connection::ConnectionState;
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "停止案件").await;
    run.settle().await;

    set_state(&run, ConnectionState::Suspended).await;
    rename_project(&run, pid, "停止中の変更").await;
    let suspended = run.entries("acct-a", "code", "integration_suspended").await;
    assert_eq!(suspended.len(), 1);
    assert_eq!(
        suspended[0]["message"],
        "HubSpot連携が一時停止されています。"
    );
    assert_eq!(deal(&run, &id).await["properties"]["dealname"], "停止案件");

    set_state(&run, ConnectionState::Disconnected).await;
    rename_project(&run, pid, "切断中の変更").await;
    assert_eq!(
        run.entries("acct-a", "code", "integration_suspended")
            .await
            .len(),
        1
    );
    assert_eq!(
        run.entries("acct-a", "direction", "board_to_hubspot")
            .await
            .len(),
        1
    );
    assert_eq!(deal(&run, &id).await["properties"]["dealname"], "停止案件");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn a_later_status_in_board_beats_an_earlier_stage_in_hubspot() {
    let run = Run::connected("acct-a").await;
    run.api(
        reqwest::Method::PUT,
        "/v1/hubspot/pipelines/default/status-mapping",
        "acct-a",
        Some(json!({"stages": {"contractsent": 1, "decisionmakerboughtin": 4, "closedwon": 5, "closedlost": 9}})),
    )
    .await;
    let (id, pid) = linked_project(&run, "状態の競合").await;
    run.settle().await;
    let link = format!("/v1/hubspot/links/project/{pid}");
    run.api(
        reqwest::Method::PUT,
        &link,
        "acct-a",
        Some(json!({"sync_enabled": false})),
    )
    .await;
    run.update_deal(&id, json!({"dealstage": "decisionmakerboughtin"}))
        .await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/order_status/{pid}"),
        "acct-a",
        Some(json!({"order_status": 9})),
    )
    .await;
    run.settle().await;
    run.api(
        reqwest::Method::PUT,
        &link,
        "acct-a",
        Some(json!({"sync_enabled": true})),
    )
    .await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("{link}/resync"),
            "acct-a",
            None,
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let project: Value = run.inspect_project(pid).await;
    assert_eq!(project["order_status"], 9, "board's later 失注 stays");
    let conflicts = run.entries("acct-a", "code", "conflict_overwritten").await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(
        conflicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("受注ステータス: boardの後の変更を優先")
    );
    run.stack.shutdown().await;
}

/// A worker created a note and died moments ago; CRM search has not indexed
/// the note yet. The redelivery must not take "not found" for "not created":
/// it waits for the index rather than create a second note, then adopts it.
#[tokio::test]
async fn an_interrupted_note_is_not_created_twice_while_search_lags() {
    let run = Run::connected("acct-a").await;
    let (id, pid) = linked_project(&run, "索引待ち").await;
    let settings = |body: Value| {
        run.http
            .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
            .json(&body)
            .send()
    };
    settings(json!({"search_lag_ms": 60_000})).await.unwrap();
    run.send_invoice("acct-a", pid).await;
    wait_notes(&run, &id, 1).await;
    let event = run
        .board_events()
        .await
        .into_iter()
        .rfind(|e| e["type"] == "document.sent")
        .unwrap()
        .clone();
    // As the dead attempt left it: the create under way since just now.
    let services = &run.stack.services;
    let intent = format!("note#{}", event["event_id"].as_str().unwrap());
    let account: board_hubspot::domain::AccountId = "acct-a".parse().unwrap();
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    services
        .board_events
        .set_intent(&account, &intent, &format!("pending:{now_ms}"), later)
        .await
        .unwrap();
    let redelivered = |count: u32| board_hubspot::ports::ReceivedMessage {
        message_id: format!("m-again-{count}"),
        receipt: format!("r-again-{count}"),
        body: event.to_string(),
        receive_count: count,
        attributes: Vec::new(),
    };
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &[redelivered(2)],
    )
    .await;
    assert_eq!(outcome.retry.len(), 1, "looked again later: {outcome:?}");
    assert_eq!(notes_of_deal(&run, &id).await.len(), 1, "no second note");

    // Indexed now: the next redelivery adopts the note.
    settings(json!({"search_lag_ms": 0})).await.unwrap();
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        &[redelivered(3)],
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    assert_eq!(notes_of_deal(&run, &id).await.len(), 1, "adopted");
    run.stack.shutdown().await;
}

/// board's account may send to its events queue, so a job there (which would
/// run as one of ours: a sweep of every connection, say) is poison.
#[tokio::test]
async fn a_job_on_boards_queue_is_poison_not_run() {
    let run = Run::connected("acct-a").await;
    let services = &run.stack.services;
    let message = board_hubspot::ports::ReceivedMessage {
        message_id: "m-job".into(),
        receipt: "r-job".into(),
        body: r#"{"job":"catch_up_all"}"#.into(),
        receive_count: 1,
        attributes: Vec::new(),
    };
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.board_queue.as_ref(),
        std::slice::from_ref(&message),
    )
    .await;
    assert!(outcome.retry.is_empty(), "{outcome:?}");
    let dead = services.board_queue.receive_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "dead-lettered");
    let reason = dead[0]
        .attributes
        .iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(reason.contains("only board change events"), "{reason}");
    // The same job from our own work queue runs.
    let outcome = board_hubspot::app::worker::process_batch(
        services,
        services.queue.as_ref(),
        std::slice::from_ref(&message),
    )
    .await;
    assert_eq!(outcome.done.len(), 1, "{outcome:?}");
    run.stack.shutdown().await;
}
