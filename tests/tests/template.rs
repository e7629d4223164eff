//! What `template.yaml` declares must match what the code expects: the table's
//! keys and TTL attribute, the queue's visibility, and the scheduled job body.

use board_hubspot::adapters::table::attr;
use board_hubspot::app::jobs::{Job, QueueMessage};
use board_hubspot::app::services::WORK_VISIBILITY;

const TEMPLATE: &str = include_str!("../../template.yaml");

#[test]
fn the_table_has_the_keys_indexes_and_ttl_the_code_uses() {
    for name in [
        attr::PK,
        attr::SK,
        attr::GSI1_PK,
        attr::GSI1_SK,
        attr::GSI2_PK,
        attr::GSI2_SK,
    ] {
        assert!(
            TEMPLATE.contains(&format!("AttributeName: {name}, AttributeType: S")),
            "{name} declared"
        );
    }
    assert!(TEMPLATE.contains("IndexName: gsi1") && TEMPLATE.contains("IndexName: gsi2"));
    assert!(
        TEMPLATE.contains(&format!(
            "AttributeName: {}\n        Enabled: true",
            attr::TTL
        )),
        "TTL on {}",
        attr::TTL
    );
}

#[test]
fn the_work_queue_visibility_is_six_times_the_worker_timeout() {
    assert!(TEMPLATE.contains(&format!("VisibilityTimeout: {}", WORK_VISIBILITY.as_secs())));
    assert!(TEMPLATE.contains("Timeout: 60\n"), "the worker's timeout");
    assert_eq!(WORK_VISIBILITY.as_secs(), 6 * 60);
}

#[test]
fn every_schedule_sends_a_job_the_worker_understands() {
    let inputs: Vec<&str> = TEMPLATE
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Input: '")
                .and_then(|r| r.strip_suffix('\''))
        })
        .collect();
    assert_eq!(inputs.len(), 2, "the lifecycle poll and the catch-up");
    assert!(matches!(
        QueueMessage::parse(inputs[0]),
        Ok(QueueMessage::Job(Job::PollLifecycle))
    ));
    assert!(matches!(
        QueueMessage::parse(inputs[1]),
        Ok(QueueMessage::Job(Job::CatchUpAll))
    ));
}
