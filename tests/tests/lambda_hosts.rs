//! The same handlers as Lambda runs them: API Gateway and SQS event fixtures
//! parsed exactly as the runtime does, against DynamoDB and SQS on moto.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use base64::Engine as _;
use board_hubspot::adapters::clock::SystemClock;
use board_hubspot::app::Services;
use board_hubspot::config::Settings;
use board_hubspot::ports::WorkQueue;
use hmac::{Hmac, Mac};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use sha2::Sha256;

const PUBLIC_BASE: &str = "https://hooks.example.jp";

async fn services_on_moto() -> (Services, board_hubspot::adapters::queue::sqs::SqsQueue) {
    let settings = Settings::from_lookup(
        |name| (name == "PUBLIC_BASE_URL").then(|| PUBLIC_BASE.to_owned()),
        true,
    )
    .unwrap();
    let queue = tests::sqs_queue(Duration::from_secs(30), 5).await;
    let services = Services::with_store(
        settings,
        tests::dynamo_store().await,
        Arc::new(queue.clone()),
        Arc::new(SystemClock),
    );
    (services, queue)
}

fn sign(method: &str, uri: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"sandbox-client-secret").unwrap();
    mac.update(format!("{method}{uri}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_gateway_card_request_keeps_its_raw_query_for_the_signature() {
    let (services, _queue) = services_on_moto().await;
    let ts = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let uri = format!(
        "{PUBLIC_BASE}/hubspot/card?portalId=999&objectId=42&objectType=DEAL&userId=1&userEmail=a%40b.jp"
    );
    let fixture = include_str!("../fixtures/apigw-card-request.json")
        .replace("__SIGNATURE__", &sign("GET", &uri, ts))
        .replace("__TIMESTAMP__", &ts.to_string());
    let request = lambda_http::request::from_str(&fixture).expect("API Gateway v2 event");
    let response = crm_card::handle(&services, request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body, serde_json::json!({"sections": []}));

    let tampered = include_str!("../fixtures/apigw-card-request.json")
        .replace(
            "__SIGNATURE__",
            &sign("GET", &uri.replace("objectId=42", "objectId=43"), ts),
        )
        .replace("__TIMESTAMP__", &ts.to_string());
    let response = crm_card::handle(
        &services,
        lambda_http::request::from_str(&tampered).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_batch_dead_letters_the_poison_message_and_completes_the_rest() {
    let (services, queue) = services_on_moto().await;
    // Put the fixture's two bodies on the real queue to get real receipt handles.
    let fixture: Value = serde_json::from_str(include_str!("../fixtures/sqs-event.json")).unwrap();
    let bodies: Vec<String> = fixture["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .collect();
    queue.send_batch(&bodies).await.unwrap();
    let mut received = Vec::new();
    for _ in 0..10 {
        received.extend(queue.receive(10, Duration::from_secs(1)).await.unwrap());
        if received.len() == 2 {
            break;
        }
    }
    let receipt_of = |body: &str| {
        received
            .iter()
            .find(|m| m.body == body)
            .unwrap()
            .receipt
            .clone()
    };
    let event_json = include_str!("../fixtures/sqs-event.json")
        .replace("__RECEIPT_GOOD__", &receipt_of(&bodies[0]))
        .replace("__RECEIPT_POISON__", &receipt_of(&bodies[1]));
    let event: SqsEvent = serde_json::from_str(&event_json).unwrap();

    let response = sync_worker::handle(&services, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let response = serde_json::to_value(&response).unwrap();
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "nothing to retry"
    );

    let dead = queue.receive_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, bodies[1]);
    let reason = dead[0]
        .attributes
        .iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(reason.starts_with("malformed JSON"), "{reason}");
}

/// An SQS event as Lambda delivers it from `queue` (its ARN names the queue).
fn sqs_event(queue: &board_hubspot::adapters::queue::sqs::SqsQueue, bodies: &[String]) -> SqsEvent {
    let name = queue.url().rsplit('/').next().unwrap();
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            serde_json::json!({
                "messageId": format!("m-{i}"), "receiptHandle": format!("r-{i}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "awsRegion": "ap-northeast-1",
                "eventSourceARN": format!("arn:aws:sqs:ap-northeast-1:123456789012:{name}"),
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_of_board_events_goes_on_to_the_burst_queue_a_smaller_one_is_handled() {
    let work = tests::sqs_queue(Duration::from_secs(30), 5).await;
    let board = tests::sqs_queue(Duration::from_secs(30), 5).await;
    let burst = tests::sqs_queue(Duration::from_secs(30), 5).await;
    let urls = [
        ("BOARD_EVENTS_QUEUE_URL", board.url().to_owned()),
        ("BOARD_BURST_QUEUE_URL", burst.url().to_owned()),
    ];
    let settings = Settings::from_lookup(
        |name| {
            urls.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, url)| url.clone())
                .or_else(|| (name == "PUBLIC_BASE_URL").then(|| PUBLIC_BASE.to_owned()))
        },
        true,
    )
    .unwrap();
    let mut services = Services::with_store(
        settings,
        tests::dynamo_store().await,
        Arc::new(work),
        Arc::new(SystemClock),
    );
    services.board_queue = Arc::new(board.clone());
    services.board_burst_queue = Arc::new(burst.clone());
    let events = |n: usize, from: u64| -> Vec<String> {
        (0..n as u64)
            .map(|i| {
                serde_json::json!({"event_id": format!("burst-{from}-{i}"), "account_id": "acct-z",
                    "type": "project.updated", "occurred_at": "2026-11-30T10:00:00+09:00",
                    "version": 1, "object": {"id": from + i}})
                .to_string()
            })
            .collect()
    };
    let handle = |event: SqsEvent| {
        let services = &services;
        async move {
            let response =
                sync_worker::handle(services, LambdaEvent::new(event, Context::default()))
                    .await
                    .unwrap();
            serde_json::to_value(&response).unwrap()["batchItemFailures"].clone()
        }
    };

    // Ten at once from board's events queue: sent on unchanged, done here.
    let ten = events(10, 100);
    assert_eq!(handle(sqs_event(&board, &ten)).await, serde_json::json!([]));
    let mut sent_on = Vec::new();
    for _ in 0..10 {
        sent_on.extend(burst.receive(10, Duration::from_secs(1)).await.unwrap());
        if sent_on.len() == 10 {
            break;
        }
    }
    let mut bodies: Vec<String> = sent_on.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    let mut expected = ten.clone();
    expected.sort();
    assert_eq!(bodies, expected);

    // Three: handled at once (a single change is not held for a burst's window).
    assert_eq!(
        handle(sqs_event(&board, &events(3, 200))).await,
        serde_json::json!([])
    );
    assert!(
        burst.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "nothing sent on"
    );

    // The burst queue's own deliveries are handled, never sent on again.
    assert_eq!(handle(sqs_event(&burst, &ten)).await, serde_json::json!([]));
    assert!(burst.receive(10, Duration::ZERO).await.unwrap().is_empty());
}
