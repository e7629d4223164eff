//! Work queues: the embedded queue (SQS semantics in memory) and SQS.

pub mod memory;
pub mod sqs;

/// The message attribute that carries why a message was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "reason";
/// SQS limits: 10 messages a batch, 256 KiB a request.
pub const MAX_BATCH: usize = 10;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// SQS's longest message delay (`DelaySeconds`).
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// Splits bodies into batches within SQS's count and size limits.
pub(crate) fn batches(bodies: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let full = i - start == MAX_BATCH || (i > start && bytes + body.len() > MAX_BATCH_BYTES);
        if full {
            out.push(&bodies[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ports::tenant_of;

    #[test]
    fn messages_are_grouped_by_their_tenant() {
        let event =
            r#"{"event_id":"e","account_id":"acct-a","type":"project.updated","object":{"id":1}}"#;
        assert_eq!(tenant_of(event), "account:acct-a");
        assert_eq!(
            tenant_of(r#"{"job":"catch_up","account_id":"acct-b"}"#),
            "account:acct-b"
        );
        assert_eq!(
            tenant_of(r#"{"job":"hubspot_events","portal_id":42,"events":[]}"#),
            "portal:42"
        );
        assert_eq!(
            tenant_of(r#"{"job":"hubspot_events","portal_id":"42","events":[]}"#),
            "portal:42",
            "portal ids travel as strings"
        );
        assert_eq!(tenant_of(r#"{"job":"poll_lifecycle"}"#), "service");
        assert_eq!(tenant_of("not json"), "unknown");
    }

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);

        let big: Vec<String> = (0..3).map(|_| "x".repeat(100 * 1024)).collect();
        let sizes: Vec<usize> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
