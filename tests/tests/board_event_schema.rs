//! The board change event contract (SPEC §10): `schemas/board-change-event.schema.json`
//! and the worker's parser accept and refuse exactly the same messages, and every
//! event the board emulator emits matches the schema.

use board_hubspot::app::jobs::QueueMessage;
use serde_json::{Value, json};
use tests::stack::Run;

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/board-change-event.schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn project_event() -> Value {
    json!({"event_id": "ev-1", "account_id": "acct-a", "type": "project.updated",
           "occurred_at": "2026-11-30T10:00:00+09:00", "version": 3,
           "object": {"id": 12, "name": "案件", "order_status": 4}})
}

fn document_event() -> Value {
    json!({"event_id": "ev-2", "account_id": "acct-a", "type": "document.sent",
           "occurred_at": "2026-11-30T10:00:00+09:00", "version": 1,
           "object": {"project_id": 12, "document_type": "invoice", "document_number": "INV-000012",
                      "issue_date": "2026-11-30", "total": "100000", "tax": "10000",
                      "total_with_tax": "110000", "method": "email", "resend": false}})
}

fn with(mut event: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut event
    } else {
        event.pointer_mut(parent).unwrap()
    };
    match value {
        Some(v) => {
            target[key] = v;
        }
        None => {
            target.as_object_mut().unwrap().remove(key);
        }
    }
    event
}

#[test]
fn the_schema_and_the_worker_agree_on_every_case() {
    let schema = validator();
    let valid = vec![
        project_event(),
        document_event(),
        with(project_event(), "/type", Some(json!("customer.created"))),
        with(project_event(), "/type", Some(json!("contact.deleted"))),
        with(document_event(), "/object/method", Some(json!("post"))),
        with(document_event(), "/object/total", None),
        with(
            project_event(),
            "/occurred_at",
            Some(json!("2026-11-30T01:00:00Z")),
        ),
    ];
    let invalid = vec![
        ("missing event_id", with(project_event(), "/event_id", None)),
        (
            "empty event_id",
            with(project_event(), "/event_id", Some(json!(""))),
        ),
        (
            "long event_id",
            with(project_event(), "/event_id", Some(json!("e".repeat(129)))),
        ),
        (
            "account with #",
            with(project_event(), "/account_id", Some(json!("a#b"))),
        ),
        (
            "unknown type",
            with(project_event(), "/type", Some(json!("project.renamed"))),
        ),
        (
            "version 0",
            with(project_event(), "/version", Some(json!(0))),
        ),
        (
            "version text",
            with(project_event(), "/version", Some(json!("3"))),
        ),
        (
            "bad time",
            with(project_event(), "/occurred_at", Some(json!("yesterday"))),
        ),
        (
            "object array",
            with(project_event(), "/object", Some(json!([1]))),
        ),
        ("no id", with(project_event(), "/object/id", None)),
        ("id 0", with(project_event(), "/object/id", Some(json!(0)))),
        (
            "id text",
            with(project_event(), "/object/id", Some(json!("12"))),
        ),
        (
            "no project",
            with(document_event(), "/object/project_id", None),
        ),
        (
            "bad document type",
            with(
                document_event(),
                "/object/document_type",
                Some(json!("memo")),
            ),
        ),
        (
            "empty number",
            with(document_event(), "/object/document_number", Some(json!(""))),
        ),
        (
            "bad date",
            with(
                document_event(),
                "/object/issue_date",
                Some(json!("30/11/2026")),
            ),
        ),
        (
            "bad method",
            with(document_event(), "/object/method", Some(json!("fax"))),
        ),
        (
            "amount number",
            with(document_event(), "/object/total", Some(json!(100000))),
        ),
        (
            "amount text",
            with(document_event(), "/object/tax", Some(json!("1万"))),
        ),
        (
            "resend text",
            with(document_event(), "/object/resend", Some(json!("no"))),
        ),
    ];
    for event in &valid {
        assert!(schema.is_valid(event), "schema refused {event}");
        let parsed = QueueMessage::parse(&event.to_string());
        assert!(
            matches!(parsed, Ok(QueueMessage::BoardEvent(_))),
            "worker refused {event}: {:?}",
            parsed.err()
        );
    }
    for (case, event) in &invalid {
        assert!(!schema.is_valid(event), "{case}: schema accepted {event}");
        let reason = QueueMessage::parse(&event.to_string())
            .err()
            .unwrap_or_else(|| panic!("{case}: worker accepted {event}"));
        assert!(
            reason.starts_with("invalid board event") || reason.starts_with("unknown message"),
            "{case}: {reason}"
        );
    }
}

#[tokio::test]
async fn every_event_the_board_emulator_emits_matches_the_schema() {
    let schema = validator();
    let run = Run::start().await;
    let (status, created) = run
        .board(
            reqwest::Method::POST,
            "/clients",
            "acct-a",
            Some(json!({"name": "株式会社スキーマ", "name_disp": "スキーマ", "title": "御中"})),
        )
        .await;
    assert!(status < 300, "{created}");
    let client = created["id"].as_u64().unwrap();
    let (_, contact) = run
        .board(
            reqwest::Method::POST,
            "/contacts",
            "acct-a",
            Some(json!({"client_id": client, "last_name": "山田", "first_name": "太郎", "honorific_title": "様"})),
        )
        .await;
    let (status, project) = run
        .board(
            reqwest::Method::POST,
            "/projects",
            "acct-a",
            Some(
                json!({"name": "スキーマ案件", "client_id": client, "user_id": 1, "order_status": 1,
                        "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"}),
            ),
        )
        .await;
    assert!(status < 300, "{project}");
    let pid = project["id"].as_u64().unwrap();
    run.board(
        reqwest::Method::PATCH,
        &format!("/projects/{pid}"),
        "acct-a",
        Some(json!({"name": "スキーマ案件(改)"})),
    )
    .await;
    run.send_invoice("acct-a", pid).await;
    run.board(
        reqwest::Method::DELETE,
        &format!("/contacts/{}", contact["id"]),
        "acct-a",
        None,
    )
    .await;
    let events = run.board_events().await;
    let types: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in [
        "customer.created",
        "contact.created",
        "project.created",
        "project.updated",
        "document.sent",
        "contact.deleted",
    ] {
        assert!(types.contains(expected), "no {expected} in {types:?}");
    }
    for event in &events {
        let errors: Vec<String> = schema.iter_errors(event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{event}: {errors:?}");
        assert!(QueueMessage::parse(&event.to_string()).is_ok(), "{event}");
    }
    run.stack.shutdown().await;
}
