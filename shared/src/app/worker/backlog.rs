//! How late each tenant's changes are when the worker takes them: the age of the oldest change in a
//! tenant's share of a batch (board's `occurred_at`, HubSpot's `occurredAt`), as CloudWatch embedded
//! metrics — `BacklogAgeSeconds` per tenant (dimension `Tenant`) and `OldestBacklogAgeSeconds` over all
//! tenants, which the template's alarm watches
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
//! In Lambda the line goes to standard output, where CloudWatch Logs extracts the metrics; elsewhere
//! it is a debug log.

use std::time::Duration;

use serde_json::json;

use crate::app::jobs::{Job, QueueMessage};

/// When the oldest change a message carries happened, in epoch milliseconds.
pub fn oldest_change_ms(message: &QueueMessage) -> Option<i64> {
    match message {
        QueueMessage::BoardEvent(event) => {
            Some((event.occurred_at.unix_timestamp_nanos() / 1_000_000) as i64)
        }
        QueueMessage::Job(Job::HubspotEvents { events, .. }) => {
            events.iter().filter_map(|e| e.occurred_at).min()
        }
        QueueMessage::Job(_) => None,
    }
}

/// The EMF document for one tenant's backlog age.
pub fn document(namespace: &str, tenant: &str, age: Duration, now_ms: i64) -> serde_json::Value {
    let seconds = (age.as_millis() as f64 / 1000.0 * 10.0).round() / 10.0;
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Tenant"], []],
                "Metrics": [
                    {"Name": "BacklogAgeSeconds", "Unit": "Seconds"},
                    {"Name": "OldestBacklogAgeSeconds", "Unit": "Seconds"}
                ]
            }]
        },
        "Tenant": tenant,
        "BacklogAgeSeconds": seconds,
        "OldestBacklogAgeSeconds": seconds,
    })
}

/// Reports a tenant's backlog age.
pub fn report(namespace: &str, tenant: &str, age: Duration, now_ms: i64) {
    let line = document(namespace, tenant, age, now_ms);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{line}");
    } else {
        tracing::debug!(%tenant, age_s = %line["BacklogAgeSeconds"], "backlog age");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_tenants_oldest_change_when_reported_then_it_is_one_emf_document_with_both_metrics() {
        let doc = document(
            "board-hubspot-prod",
            "account:acct-a",
            Duration::from_secs(90),
            1_000,
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_000);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "board-hubspot-prod");
        assert_eq!(directive["Dimensions"], json!([["Tenant"], []]));
        assert_eq!(doc["Tenant"], "account:acct-a");
        assert_eq!(doc["BacklogAgeSeconds"], 90.0);
        assert_eq!(doc["OldestBacklogAgeSeconds"], 90.0);
    }

    #[test]
    fn given_board_and_hubspot_messages_when_dated_then_the_oldest_change_counts() {
        let event = QueueMessage::parse(
            r#"{"event_id":"e","account_id":"acct-a","type":"project.updated",
                "occurred_at":"1970-01-01T00:00:01Z","version":1,"object":{"id":1}}"#,
        )
        .unwrap();
        assert_eq!(oldest_change_ms(&event), Some(1_000));
        let job = QueueMessage::parse(
            r#"{"job":"hubspot_events","portal_id":1,"events":[
                {"portalId":1,"subscriptionType":"deal.creation","objectId":5,"occurredAt":2000},
                {"portalId":1,"subscriptionType":"deal.creation","objectId":6,"occurredAt":1500}]}"#,
        )
        .unwrap();
        assert_eq!(oldest_change_ms(&job), Some(1_500));
        assert_eq!(
            oldest_change_ms(&QueueMessage::parse(r#"{"job":"poll_lifecycle"}"#).unwrap()),
            None
        );
    }
}
