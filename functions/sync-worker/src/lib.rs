//! The sync worker: consumes the work queue (webhook events made durable, board
//! change events) and reports partial batch failures.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use board_hubspot::app::Services;
use board_hubspot::app::worker::{BatchOutcome, process_batch};
use board_hubspot::ports::{ReceivedMessage, WorkQueue};
use lambda_runtime::LambdaEvent;

fn received(message: SqsMessage) -> Option<ReceivedMessage> {
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let mut attributes: Vec<(String, String)> = message
        .message_attributes
        .into_iter()
        .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
        .collect();
    attributes.sort();
    Some(ReceivedMessage {
        message_id: message.message_id?,
        receipt: message.receipt_handle?,
        body: message.body.unwrap_or_default(),
        receive_count,
        attributes,
    })
}

/// Lambda's SQS event source: handled messages are deleted by Lambda, the ones
/// we return are retried after the visibility we set.
pub async fn handle(services: &Services, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let messages: Vec<ReceivedMessage> = event.payload.records.into_iter().filter_map(received).collect();
    let outcome = process_batch(services, &messages).await;
    let mut response = SqsBatchResponse::default();
    for id in outcome.retry {
        response.add_failure(id);
    }
    Ok(response)
}

/// A host that polls (the local stack): receive, process, delete what is handled.
pub async fn poll_once(services: &Services, queue: &dyn WorkQueue, wait: Duration) -> anyhow::Result<BatchOutcome> {
    let messages = queue.receive(10, wait).await?;
    let outcome = process_batch(services, &messages).await;
    for message in messages.iter().filter(|m| outcome.done.contains(&m.message_id)) {
        queue.delete(&message.receipt).await?;
    }
    Ok(outcome)
}
