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
    received_messages_hide_until_retried => VISIBILITY, 5;
    poison_messages_go_to_the_dlq_with_their_reason => VISIBILITY, 5;
    after_max_receives_a_message_moves_to_the_dlq_and_redrives => Duration::from_secs(1), 2;
);
