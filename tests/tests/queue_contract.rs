//! One contract for every work-queue adapter: the embedded queue and SQS (moto).

use std::collections::HashSet;
use std::time::Duration;

use board_hubspot::adapters::queue::REASON_ATTRIBUTE;
use board_hubspot::adapters::queue::memory::MemoryQueue;
use board_hubspot::ports::{StoreError, WorkQueue};

const VISIBILITY: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(200);

async fn drain(queue: &dyn WorkQueue) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let batch = queue.receive(10, SHORT).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            bodies.push(m.body.clone());
            queue.delete(&m.receipt).await.unwrap();
        }
    }
    bodies
}

mod cases {
    use super::*;

    pub async fn batches_arrive_once_and_deleted_messages_stay_gone(queue: &dyn WorkQueue) {
        let bodies: Vec<String> = (0..25).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
        queue.send_batch(&bodies).await.unwrap();
        let got: HashSet<String> = drain(queue).await.into_iter().collect();
        assert_eq!(got, bodies.into_iter().collect::<HashSet<_>>());
        assert!(queue.receive(10, SHORT).await.unwrap().is_empty());
        assert!(
            matches!(queue.receive(11, SHORT).await, Err(StoreError::Limit(_))),
            "SQS takes at most 10"
        );
    }

    /// Handled messages deleted together (more than one request's worth) stay
    /// gone; the ones left out come back after their visibility.
    pub async fn a_batch_delete_removes_exactly_the_handled_messages(queue: &dyn WorkQueue) {
        let bodies: Vec<String> = (0..13).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
        queue.send_batch(&bodies).await.unwrap();
        let mut received = Vec::new();
        for _ in 0..10 {
            received.extend(queue.receive(10, SHORT).await.unwrap());
            if received.len() == 13 {
                break;
            }
        }
        assert_eq!(received.len(), 13);
        let (kept, handled) = received.split_at(1);
        let receipts: Vec<&str> = handled.iter().map(|m| m.receipt.as_str()).collect();
        queue.delete_batch(&receipts).await.unwrap();
        queue
            .retry_after(&kept[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        let again = drain(queue).await;
        assert_eq!(again, [kept[0].body.clone()], "only the one not deleted");
    }

    pub async fn received_messages_hide_until_retried(queue: &dyn WorkQueue) {
        queue.send_batch(&["one".to_owned()]).await.unwrap();
        let first = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);
        assert!(
            queue.receive(10, SHORT).await.unwrap().is_empty(),
            "invisible while worked on"
        );

        queue
            .retry_after(&first[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        let again = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].body, "one");
        assert_eq!(again[0].receive_count, 2, "counts receives");

        queue
            .retry_after(&again[0].receipt, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            queue.receive(10, SHORT).await.unwrap().is_empty(),
            "delayed retry not visible yet"
        );
        let later = queue.receive(10, Duration::from_secs(4)).await.unwrap();
        assert_eq!(later.len(), 1, "visible after the delay");
        queue.delete(&later[0].receipt).await.unwrap();
    }

    pub async fn a_deferred_message_comes_back_later_with_its_count_started_over(
        queue: &dyn WorkQueue,
    ) {
        queue.send_batch(&["later".to_owned()]).await.unwrap();
        let mut got = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        queue
            .retry_after(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        got = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(got[0].receive_count, 2);
        queue.defer(&got[0], Duration::from_secs(2)).await.unwrap();
        assert!(
            queue.receive(10, SHORT).await.unwrap().is_empty(),
            "not visible before its delay"
        );
        let back = queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(back.len(), 1, "visible after its delay");
        assert_eq!(back[0].body, "later");
        assert_eq!(back[0].receive_count, 1, "a fresh message");
        queue.delete(&back[0].receipt).await.unwrap();
        assert!(
            queue.receive(10, SHORT).await.unwrap().is_empty(),
            "the received one was deleted, not kept beside the copy"
        );
        assert!(matches!(
            queue.defer(&back[0], Duration::from_secs(901)).await,
            Err(StoreError::Limit(_))
        ));
    }

    pub async fn poison_messages_go_to_the_dlq_with_their_reason(queue: &dyn WorkQueue) {
        queue
            .send_batch(&["good".to_owned(), "{not json".to_owned()])
            .await
            .unwrap();
        let mut batch = Vec::new();
        for _ in 0..5 {
            batch.extend(queue.receive(10, Duration::from_secs(1)).await.unwrap());
            if batch.len() == 2 {
                break;
            }
        }
        assert_eq!(batch.len(), 2);
        for m in &batch {
            if m.body == "good" {
                queue.delete(&m.receipt).await.unwrap();
            } else {
                queue
                    .dead_letter(m, "malformed JSON: EOF while parsing")
                    .await
                    .unwrap();
            }
        }
        assert!(
            queue.receive(10, SHORT).await.unwrap().is_empty(),
            "the good one is not re-driven"
        );
        let dead = queue.receive_dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "{not json");
        assert!(
            dead[0]
                .attributes
                .iter()
                .any(|(k, v)| k == REASON_ATTRIBUTE && v.starts_with("malformed JSON")),
            "{:?}",
            dead[0].attributes
        );
    }

    pub async fn after_max_receives_a_message_moves_to_the_dlq_and_redrives(queue: &dyn WorkQueue) {
        // The queue under test allows 2 receives.
        queue.send_batch(&["flaky".to_owned()]).await.unwrap();
        for attempt in 1..=2 {
            let got = queue.receive(10, Duration::from_secs(2)).await.unwrap();
            assert_eq!(got.len(), 1, "attempt {attempt}");
            queue
                .retry_after(&got[0].receipt, Duration::ZERO)
                .await
                .unwrap();
        }
        assert!(
            queue
                .receive(10, Duration::from_millis(500))
                .await
                .unwrap()
                .is_empty(),
            "moved after 2 receives"
        );
        let mut dead = Vec::new();
        for _ in 0..10 {
            dead = queue.receive_dead_letters(10).await.unwrap();
            if !dead.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "flaky");
        assert_eq!(
            queue.receive_dead_letters(10).await.unwrap().len(),
            1,
            "looking does not take"
        );
        assert_eq!(queue.redrive(10).await.unwrap(), 1);
        assert_eq!(queue.redrive(10).await.unwrap(), 0);
        assert_eq!(drain(queue).await, vec!["flaky".to_owned()]);
    }
}

/// SQS fair queues' rule, kept by the embedded queue: once a tenant holds more
/// than 10 % of the in-flight messages and at least 30 of its own, another
/// tenant's message is delivered before the rest of its backlog. moto keeps
/// `MessageGroupId` but delivers in its own order, so the rule is held on the
/// embedded queue only; on SQS the group is checked (below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tenant_is_served_before_a_noisy_tenants_backlog() {
    let queue = MemoryQueue::new(VISIBILITY, 5);
    let event = |account: &str, n: usize| {
        format!(r#"{{"event_id":"{account}-{n}","account_id":"{account}"}}"#)
    };
    let backlog: Vec<String> = (0..200).map(|n| event("noisy", n)).collect();
    queue.send_batch(&backlog).await.unwrap();
    // Consumers take 40 of the noisy tenant's messages and work on them.
    let mut in_flight = Vec::new();
    for _ in 0..4 {
        in_flight.extend(queue.receive(10, SHORT).await.unwrap());
    }
    assert_eq!(in_flight.len(), 40);
    queue
        .send_batch(&[event("quiet", 0), event("quiet", 1)])
        .await
        .unwrap();
    let next = queue.receive(10, SHORT).await.unwrap();
    let bodies: Vec<&str> = next.iter().map(|m| m.body.as_str()).collect();
    assert!(
        bodies[0].contains("quiet-0") && bodies[1].contains("quiet-1"),
        "the quiet tenant comes first: {bodies:?}"
    );
    assert_eq!(next.len(), 10, "then the noisy backlog, not nothing");

    // Below 30 in flight, no tenant is noisy: arrival order.
    let queue = MemoryQueue::new(VISIBILITY, 5);
    queue.send_batch(&backlog[..50]).await.unwrap();
    let first = queue.receive(10, SHORT).await.unwrap();
    assert_eq!(first.len(), 10);
    queue.send_batch(&[event("quiet", 2)]).await.unwrap();
    let next = queue.receive(10, SHORT).await.unwrap();
    assert!(
        next.iter().all(|m| m.body.contains("noisy")),
        "10 in flight is no noisy neighbour"
    );
}

/// The fair queues' other measure: a tenant with more than 10 % of the recent
/// processing time is noisy even with few messages in flight (slow messages,
/// not many): another tenant's message is delivered before the rest of its.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_taking_most_of_the_processing_time_yields_to_a_quiet_one() {
    let queue = MemoryQueue::new(VISIBILITY, 5);
    let event = |account: &str, n: usize| {
        format!(r#"{{"event_id":"{account}-{n}","account_id":"{account}"}}"#)
    };
    let slow: Vec<String> = (0..20).map(|n| event("slow", n)).collect();
    queue.send_batch(&slow).await.unwrap();
    // Received and worked on for a while: all the processing time so far.
    let worked = queue.receive(5, SHORT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for message in &worked {
        queue.delete(&message.receipt).await.unwrap();
    }
    queue.send_batch(&[event("quiet", 0)]).await.unwrap();
    let next = queue.receive(10, SHORT).await.unwrap();
    assert!(
        next[0].body.contains("quiet-0"),
        "the quiet tenant first, though the slow one has nothing in flight: {:?}",
        next.iter().map(|m| &m.body).collect::<Vec<_>>()
    );
    assert_eq!(next.len(), 10, "then the slow tenant's, not nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_messages_carry_their_tenant_as_message_group_id() {
    let queue = tests::sqs_queue(VISIBILITY, 5).await;
    queue
        .send_batch(&[
            r#"{"event_id":"e1","account_id":"acct-a"}"#.to_owned(),
            r#"{"job":"hubspot_events","portal_id":7,"events":[]}"#.to_owned(),
        ])
        .await
        .unwrap();
    let client = aws_sdk_sqs::Client::new(&tests::aws_config().await);
    let received = client
        .receive_message()
        .queue_url(queue.url())
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
        )
        .send()
        .await
        .unwrap();
    let mut groups: Vec<String> = received
        .messages()
        .iter()
        .filter_map(|m| {
            m.attributes()?
                .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                .cloned()
        })
        .collect();
    groups.sort();
    assert_eq!(groups, ["account:acct-a", "portal:7"]);
}

macro_rules! contract_suite {
    ($($case:ident => $visibility:expr, $max:expr);* $(;)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let queue = MemoryQueue::new($visibility, $max);
                    super::cases::$case(&queue).await;
                }
            )*
        }
        mod sqs {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let queue = tests::sqs_queue($visibility, $max).await;
                    super::cases::$case(&queue).await;
                }
            )*
        }
    };
}

contract_suite!(
    batches_arrive_once_and_deleted_messages_stay_gone => VISIBILITY, 5;
    a_batch_delete_removes_exactly_the_handled_messages => VISIBILITY, 5;
    received_messages_hide_until_retried => VISIBILITY, 5;
    a_deferred_message_comes_back_later_with_its_count_started_over => VISIBILITY, 5;
    poison_messages_go_to_the_dlq_with_their_reason => VISIBILITY, 5;
    after_max_receives_a_message_moves_to_the_dlq_and_redrives => Duration::from_secs(1), 2;
);
