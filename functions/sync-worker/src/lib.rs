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

/// Which of the worker's event sources a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Work,
    /// board's ordinary lane: a person's changes, 10 at most per invocation, no window.
    Board,
    /// board's bulk lane: imports and mass updates, 100 per invocation.
    BoardBulk,
}

/// The queue named by an event source ARN (`arn:aws:sqs:region:account:name`):
/// one of board's lanes by its URL's last part, else our work queue.
fn source_of(services: &Services, source_arn: Option<&str>) -> Source {
    let name = source_arn
        .and_then(|arn| arn.rsplit(':').next())
        .unwrap_or_default();
    let named = |url: &Option<String>| {
        !name.is_empty() && url.as_deref().and_then(|u| u.rsplit('/').next()) == Some(name)
    };
    if named(&services.settings.board_events_queue_url) {
        Source::Board
    } else if named(&services.settings.board_bulk_events_queue_url) {
        Source::BoardBulk
    } else {
        Source::Work
    }
}

/// Lambda's SQS event sources (our work queue and board's two lanes):
/// handled messages are deleted by Lambda, the ones we return are retried after
/// the visibility we set; poison ones go to their own queue's DLQ.
pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let (mut work, mut board, mut bulk) = (Vec::new(), Vec::new(), Vec::new());
    for record in event.payload.records {
        let source = source_of(services, record.event_source_arn.as_deref());
        if let Some(message) = received(record) {
            match source {
                Source::Work => work.push(message),
                Source::Board => board.push(message),
                Source::BoardBulk => bulk.push(message),
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    for (queue, messages) in [
        (&services.queue, work),
        (&services.board_queue, board),
        (&services.board_bulk_queue, bulk),
    ] {
        if messages.is_empty() {
            continue;
        }
        let outcome = process_batch(services, queue.as_ref(), &messages).await;
        for id in outcome.retry {
            response.add_failure(id);
        }
    }
    Ok(response)
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

    /// board's ordinary lane (`BoardEvents` in the template): a person's
    /// changes, at once: 10 at most, no window.
    pub const BOARD: Self = Self {
        size: 10,
        window: Duration::ZERO,
    };

    /// board's bulk lane (`BoardBulkEvents`): 100 per invocation, so their
    /// HubSpot writes share a call. AWS requires a window of at least 1 s for
    /// batches over 10; the local stack defaults to none
    /// (`BOARD_EVENTS_WINDOW_MS`) to stay snappy.
    pub fn board_bulk(window: Duration) -> Self {
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

/// Time this process's pollers spent working on batches (what Lambda would bill
/// as duration): the load harness turns it into GB-seconds.
pub static BUSY_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `poll_once` with the event source's batching.
pub async fn poll_batch(
    services: &Services,
    queue: &dyn WorkQueue,
    batching: Batching,
    wait: Duration,
) -> anyhow::Result<BatchOutcome> {
    let messages = gather(queue, batching, wait).await?;
    let started = std::time::Instant::now();
    let outcome = process_batch(services, queue, &messages).await;
    if !messages.is_empty() {
        BUSY_NANOS.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    // Handled messages go 10 per request, as Lambda's event source deletes them.
    let handled: Vec<&str> = messages
        .iter()
        .filter(|m| outcome.done.contains(&m.message_id))
        .map(|m| m.receipt.as_str())
        .collect();
    queue.delete_batch(&handled).await?;
    Ok(outcome)
}
