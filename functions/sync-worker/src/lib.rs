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

/// Which of the worker's queues an event source ARN (`arn:aws:sqs:region:account:name`) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Work,
    BoardEvents,
    BoardBurst,
}

fn source_of(services: &Services, source_arn: Option<&str>) -> Source {
    let name = source_arn
        .and_then(|arn| arn.rsplit(':').next())
        .unwrap_or_default();
    let named = |url: &Option<String>| {
        !name.is_empty() && url.as_deref().unwrap_or_default().rsplit('/').next() == Some(name)
    };
    if named(&services.settings.board_events_queue_url) {
        Source::BoardEvents
    } else if named(&services.settings.board_burst_queue_url) {
        Source::BoardBurst
    } else {
        Source::Work
    }
}

/// Lambda's SQS event sources (our work queue, board's events queue and the
/// burst queue): handled messages are deleted by Lambda, the ones we return
/// are retried after the visibility we set; poison ones go to their own
/// queue's DLQ.
pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut work = Vec::new();
    let mut board = Vec::new();
    let mut burst = Vec::new();
    for record in event.payload.records {
        let source = source_of(services, record.event_source_arn.as_deref());
        if let Some(message) = received(record) {
            match source {
                Source::Work => work.push(message),
                Source::BoardEvents => board.push(message),
                Source::BoardBurst => burst.push(message),
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    let mut outcomes = Vec::new();
    if !work.is_empty() {
        outcomes.push(process_batch(services, services.queue.as_ref(), &work).await);
    }
    if !board.is_empty() {
        outcomes.push(board_events(services, &board).await);
    }
    if !burst.is_empty() {
        let queue = services.board_burst_queue.as_ref();
        outcomes.push(process_batch(services, queue, &burst).await);
    }
    for outcome in outcomes {
        for id in outcome.retry {
            response.add_failure(id);
        }
    }
    Ok(response)
}

/// Whether the host has a burst queue of its own (not one of the other two).
pub fn has_burst_queue(services: &Services) -> bool {
    let burst = &services.board_burst_queue;
    !std::sync::Arc::ptr_eq(burst, &services.board_queue)
        && !std::sync::Arc::ptr_eq(burst, &services.queue)
}

/// board's events queue is read 10 at a time without waiting, so a single
/// change reaches HubSpot in milliseconds. A full batch is a burst: it is sent
/// on, unchanged, to the burst queue, read 100 at a time over a 1 s window, so
/// the deal writes of a burst share batch calls (AWS allows batches over 10
/// only with a window of at least 1 s). If sending fails, the batch is handled here.
pub async fn board_events(services: &Services, messages: &[ReceivedMessage]) -> BatchOutcome {
    if has_burst_queue(services) && messages.len() >= Batching::BOARD_EVENTS.size {
        let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
        match services.board_burst_queue.send_batch(&bodies).await {
            Ok(()) => {
                tracing::debug!(events = bodies.len(), "a burst of board events sent on");
                return BatchOutcome {
                    done: messages.iter().map(|m| m.message_id.clone()).collect(),
                    ..BatchOutcome::default()
                };
            }
            Err(error) => tracing::warn!(%error, "burst not sent on; handled here"),
        }
    }
    process_batch(services, services.board_queue.as_ref(), messages).await
}

/// How Lambda's SQS event source hands messages over: up to `size` per
/// invocation, gathered for at most `window` (it invokes as soon as the batch
/// is full; with a zero window, with what is there now).
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub size: usize,
    pub window: Duration,
}

impl Batching {
    /// The work queue's event source in `template.yaml`.
    pub const WORK: Self = Self {
        size: 10,
        window: Duration::ZERO,
    };

    /// board's events queue: as few as the work queue, at once (see `board_events`).
    pub const BOARD_EVENTS: Self = Self::WORK;

    /// The burst queue: 100 per invocation, so their deal writes share a call.
    /// AWS requires a window of at least 1 s for batches over 10; the local
    /// stack defaults to none (`BOARD_EVENTS_WINDOW_MS`).
    pub fn board_burst(window: Duration) -> Self {
        Self { size: 100, window }
    }
}

/// Receives one batch as the event source would: waits up to `wait` for the
/// first message, then gathers until the batch is full or the window closes.
pub async fn gather(
    queue: &dyn WorkQueue,
    batching: Batching,
    wait: Duration,
) -> anyhow::Result<Vec<ReceivedMessage>> {
    const PER_RECEIVE: usize = 10;
    let mut messages = queue.receive(PER_RECEIVE.min(batching.size), wait).await?;
    if messages.is_empty() {
        return Ok(messages);
    }
    let deadline = tokio::time::Instant::now() + batching.window;
    while messages.len() < batching.size {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let want = PER_RECEIVE.min(batching.size - messages.len());
        let more = queue.receive(want, left).await?;
        if more.is_empty() {
            if left.is_zero() {
                break;
            }
            // SQS waits in whole seconds: do not spin through a shorter window.
            tokio::time::sleep(left.min(Duration::from_millis(20))).await;
            continue;
        }
        messages.extend(more);
    }
    Ok(messages)
}

/// A host that polls (the local stack): receive, process, delete what is handled.
pub async fn poll_once(
    services: &Services,
    queue: &dyn WorkQueue,
    wait: Duration,
) -> anyhow::Result<BatchOutcome> {
    poll_batch(services, queue, Batching::WORK, wait).await
}

/// Polls board's events queue as its event source does (see `board_events`).
pub async fn poll_board_events(
    services: &Services,
    wait: Duration,
) -> anyhow::Result<BatchOutcome> {
    let queue = services.board_queue.as_ref();
    let messages = gather(queue, Batching::BOARD_EVENTS, wait).await?;
    let outcome = board_events(services, &messages).await;
    delete_done(queue, &messages, outcome).await
}

/// What Lambda does after an invocation: deletes the messages handled.
async fn delete_done(
    queue: &dyn WorkQueue,
    messages: &[ReceivedMessage],
    outcome: BatchOutcome,
) -> anyhow::Result<BatchOutcome> {
    for message in messages
        .iter()
        .filter(|m| outcome.done.contains(&m.message_id))
    {
        queue.delete(&message.receipt).await?;
    }
    Ok(outcome)
}

/// `poll_once` with the event source's batching.
pub async fn poll_batch(
    services: &Services,
    queue: &dyn WorkQueue,
    batching: Batching,
    wait: Duration,
) -> anyhow::Result<BatchOutcome> {
    let messages = gather(queue, batching, wait).await?;
    let outcome = process_batch(services, queue, &messages).await;
    delete_done(queue, &messages, outcome).await
}
