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
    assert_eq!(declared.len(), 3, "{declared:?}");
    assert_eq!(of("Work"), as_declared(Batching::WORK));
    // board's ordinary lane: a person's change goes at once, no window.
    assert_eq!(of("BoardEvents"), as_declared(Batching::BOARD));
    assert_eq!(Batching::BOARD.window, std::time::Duration::ZERO);
    // board's bulk lane: 1 s in AWS (its minimum for batches over 10); the
    // local stack's window is `BOARD_EVENTS_WINDOW_MS`.
    assert_eq!(
        of("BoardBulkEvents"),
        as_declared(Batching::board_bulk(std::time::Duration::from_secs(1)))
    );
}

/// CloudWatch can publish only to a topic whose key lets it: never the
/// AWS-managed `alias/aws/sns` key.
#[test]
fn alarms_can_be_delivered_to_the_encrypted_topic() {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let resources = &template["Resources"];
    let key_ref = &resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"];
    assert_ne!(key_ref.as_str(), Some("alias/aws/sns"));
    let serde_yaml::Value::Tagged(tagged) = key_ref else {
        panic!("KmsMasterKeyId is a !Ref: {key_ref:?}");
    };
    assert_eq!(tagged.value.as_str(), Some("AlarmTopicKey"));
    let statements = resources["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .unwrap();
    let cloudwatch = statements
        .iter()
        .find(|s| s["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com"))
        .expect("a statement for CloudWatch");
    let actions: Vec<&str> = cloudwatch["Action"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(actions.contains(&"kms:Decrypt") && actions.contains(&"kms:GenerateDataKey*"));
}

/// Only board's producer role may send to either board-events lane, not any
/// principal of board's account.
#[test]
fn only_the_producer_role_sends_to_the_board_events_queue() {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let statements: Vec<serde_yaml::Value> =
        ["BoardEventsQueuePolicy", "BoardBulkEventsQueuePolicy"]
            .iter()
            .flat_map(|policy| {
                template["Resources"][*policy]["Properties"]["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .unwrap_or_else(|| panic!("{policy}"))
                    .clone()
            })
            .collect();
    assert_eq!(statements.len(), 2);
    for statement in &statements {
        let condition = &statement["Condition"]["ArnLike"]["aws:PrincipalArn"];
        let serde_yaml::Value::Tagged(tagged) = condition else {
            panic!("each statement names the producer role: {statement:?}");
        };
        assert_eq!(tagged.value.as_str(), Some("BoardProducerRoleArn"));
    }
}

/// The webhook receiver's counts of events it did not take reach a metric and an alarm.
#[test]
fn events_not_taken_are_counted_and_alarmed() {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let resources = &template["Resources"];
    for (filter, field) in [
        ("UnknownWebhookEventsMetric", "unknown_events"),
        ("MalformedWebhookEventsMetric", "malformed_events"),
        ("StaleWebhookEventsMetric", "stale_events"),
    ] {
        let pattern = resources[filter]["Properties"]["FilterPattern"]
            .as_str()
            .unwrap();
        assert!(
            pattern.contains(&format!("$.{field}")),
            "{filter}: {pattern}"
        );
    }
    assert!(
        resources["WebhookEventsNotTakenAlarm"]["Properties"]["AlarmActions"]
            .as_sequence()
            .is_some_and(|a| !a.is_empty())
    );
}

/// A first deployment must not stumble on the account's concurrency quota, on
/// the public origin, or on Lambda's 4 KB environment.
#[test]
fn a_first_deployment_needs_no_quota_raise_and_can_have_its_own_domain() {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let parameters = &template["Parameters"];
    assert_eq!(
        parameters["WorkerReservedConcurrency"]["Default"].as_u64(),
        Some(0),
        "not reserved unless asked"
    );
    let reserved =
        &template["Resources"]["SyncWorkerFunction"]["Properties"]["ReservedConcurrentExecutions"];
    assert!(
        matches!(reserved, serde_yaml::Value::Tagged(t) if t.tag == "If"),
        "a condition decides: {reserved:?}"
    );
    for name in ["DomainName", "CertificateArn"] {
        assert_eq!(
            parameters[name]["Default"].as_str(),
            Some(""),
            "{name} optional"
        );
    }
    assert!(template["Resources"]["ApiDomain"]["Condition"].as_str() == Some("HasCustomDomain"));
    assert!(
        !TEMPLATE.contains("BOARD_JWKS:") && parameters.get("BoardJwks").is_none(),
        "board's JWKS lives in the secret, not the environment"
    );
}

/// The public webhook function reads its own secret (the HubSpot client
/// secret only) and may use no KMS key: it can reach neither board's
/// credentials nor the token key.
#[test]
fn the_webhook_function_holds_only_the_signing_secret() {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let resources = &template["Resources"];
    let variables = &resources["WebhookFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["SECRETS_SCOPE"].as_str(), Some("signing"));
    let serde_yaml::Value::Tagged(arn) = &variables["SECRETS_ARN"] else {
        panic!("SECRETS_ARN is a !Ref");
    };
    assert_eq!(arn.value.as_str(), Some("SigningSecret"));
    let policy = serde_yaml::to_string(&resources["WebhookFunctionRole"]).unwrap();
    assert!(
        !policy.contains("kms:"),
        "no KMS for the webhook function: {policy}"
    );
    assert!(!policy.contains("- Secrets\n") && !policy.contains("Ref Secrets\n"));
}

/// The worker puts a message back on the queue it came from (`WorkQueue::defer`:
/// a paused tenant, a spent budget), so it may send to both queues it consumes,
/// and to both dead-letter queues.
#[test]
fn the_worker_may_send_to_every_queue_it_defers_or_dead_letters_to() {
    let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let statements = template["Resources"]["SyncWorkerFunctionRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let mut sendable = Vec::new();
    for statement in statements {
        let action = &statement["Action"];
        let sends = action.as_str() == Some("sqs:SendMessage")
            || action
                .as_sequence()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("sqs:SendMessage")));
        if !sends {
            continue;
        }
        for resource in statement["Resource"].as_sequence().unwrap() {
            if let serde_yaml::Value::Tagged(tagged) = resource {
                sendable.push(tagged.value.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    for queue in [
        "WorkQueue.Arn",
        "BoardEventsQueue.Arn",
        "WorkDeadLetterQueue.Arn",
        "BoardEventsDeadLetterQueue.Arn",
    ] {
        assert!(sendable.iter().any(|r| r == queue), "{queue}: {sendable:?}");
    }
}
