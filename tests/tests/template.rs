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

/// The worker's event sources in the template, as (logical name, batch size, window s).
fn event_sources() -> Vec<(String, u64, u64)> {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let events = &template["Resources"]["SyncWorkerFunction"]["Properties"]["Events"];
    events
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, event)| {
            let p = &event["Properties"];
            (
                name.as_str().unwrap().to_owned(),
                p["BatchSize"].as_u64().unwrap(),
                p["MaximumBatchingWindowInSeconds"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_local_pollers_batch_as_the_templates_event_sources() {
    use sync_worker::Batching;
    let as_declared = |b: Batching| (b.size as u64, b.window.as_secs());
    let declared = event_sources();
    let of = |name: &str| {
        declared
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, size, window)| (*size, *window))
            .unwrap_or_else(|| panic!("event source {name}"))
    };
    assert_eq!(declared.len(), 2, "{declared:?}");
    assert_eq!(of("Work"), as_declared(Batching::WORK));
    // board's events: 1 s in AWS (its minimum for batches over 10); the local
    // stack's window is `BOARD_EVENTS_WINDOW_MS`.
    assert_eq!(
        of("BoardEvents"),
        as_declared(Batching::board_events(std::time::Duration::from_secs(1)))
    );
}
