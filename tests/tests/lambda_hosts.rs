//! The same handlers as Lambda runs them: API Gateway and SQS event fixtures
//! parsed exactly as the runtime does, against DynamoDB and SQS on moto.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use board_hubspot::adapters::clock::SystemClock;
use board_hubspot::app::Services;
use board_hubspot::config::Settings;
use board_hubspot::ports::WorkQueue;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_gateway_card_request_keeps_its_raw_query_for_the_signature() {
    let (services, _queue) = services_on_moto().await;
    let ts = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let uri = format!(
        "{PUBLIC_BASE}/hubspot/card?portalId=999&objectId=42&objectType=DEAL&userId=1&userEmail=a%40b.jp"
    );
    let fixture = include_str!("../fixtures/apigw-card-request.json")
        .replace(
            "__SIGNATURE__",
            &tests::hubspot_signature("GET", &uri, "", ts),
        )
        .replace("__TIMESTAMP__", &ts.to_string());
    let request = lambda_http::request::from_str(&fixture).expect("API Gateway v2 event");
    let response = crm_card::handle(&services, request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body, serde_json::json!({"sections": []}));

    let tampered = include_str!("../fixtures/apigw-card-request.json")
        .replace(
            "__SIGNATURE__",
            &tests::hubspot_signature("GET", &uri.replace("objectId=42", "objectId=43"), "", ts),
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
