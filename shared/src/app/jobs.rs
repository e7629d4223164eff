//! What travels on the work queues: our own jobs (webhook events made durable)
//! and board's change events (SPEC §10), told apart by shape.

use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, BoardObjectKind, BoardRef, PortalId};

/// HubSpot's webhook events travel typed: the receiver parses them once.
pub use crate::domain::hubspot_event::WebhookEvent;

/// A board change event (SPEC §10), parsed once at the edge of the worker: its
/// snapshot (a JSON object, checked against the event schema's rules), when it
/// happened, and the board object it is about.
#[derive(Debug, Clone)]
pub struct BoardEvent {
    pub event_id: String,
    pub account_id: AccountId,
    pub event_type: BoardEventType,
    pub occurred_at: time::OffsetDateTime,
    pub version: u64,
    pub object: serde_json::Value,
    /// The project (`document.sent`: the project the document belongs to),
    /// customer or customer contact the event is about.
    pub target: BoardRef,
}

/// A board change event as board's producer sends it.
#[derive(Deserialize)]
struct WireBoardEvent {
    event_id: String,
    account_id: AccountId,
    #[serde(rename = "type")]
    event_type: BoardEventType,
    occurred_at: String,
    version: u64,
    object: serde_json::Value,
}

impl BoardEventType {
    /// The kind of board object events of this type are about.
    pub fn kind(self) -> BoardObjectKind {
        match self {
            Self::ProjectCreated
            | Self::ProjectUpdated
            | Self::ProjectDeleted
            | Self::DocumentSent => BoardObjectKind::Project,
            Self::CustomerCreated | Self::CustomerUpdated | Self::CustomerDeleted => {
                BoardObjectKind::Customer
            }
            Self::ContactCreated | Self::ContactUpdated | Self::ContactDeleted => {
                BoardObjectKind::CustomerContact
            }
        }
    }

    /// Whether the object was deleted.
    pub fn is_deletion(self) -> bool {
        matches!(
            self,
            Self::ProjectDeleted | Self::CustomerDeleted | Self::ContactDeleted
        )
    }
}

impl BoardEvent {
    fn from_wire(wire: WireBoardEvent) -> Result<Self, String> {
        check_board_event(&wire)?;
        let occurred_at = time::OffsetDateTime::parse(
            &wire.occurred_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| "occurred_at is not RFC 3339".to_owned())?;
        let id_field = if wire.event_type == BoardEventType::DocumentSent {
            "project_id"
        } else {
            "id"
        };
        let id = wire.object[id_field]
            .as_u64()
            .ok_or_else(|| format!("object.{id_field} must be a positive integer"))?;
        Ok(Self {
            target: BoardRef {
                kind: wire.event_type.kind(),
                id,
            },
            event_id: wire.event_id,
            account_id: wire.account_id,
            event_type: wire.event_type,
            occurred_at,
            version: wire.version,
            object: wire.object,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoardEventType {
    #[serde(rename = "project.created")]
    ProjectCreated,
    #[serde(rename = "project.updated")]
    ProjectUpdated,
    #[serde(rename = "project.deleted")]
    ProjectDeleted,
    #[serde(rename = "customer.created")]
    CustomerCreated,
    #[serde(rename = "customer.updated")]
    CustomerUpdated,
    #[serde(rename = "customer.deleted")]
    CustomerDeleted,
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
    #[serde(rename = "document.sent")]
    DocumentSent,
}

/// Our own jobs, tagged so they can never be mistaken for a board event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Webhook events of one portal, as received (already signature-checked).
    HubspotEvents {
        portal_id: PortalId,
        #[serde(deserialize_with = "typed_or_as_received")]
        events: Vec<WebhookEvent>,
        /// Carried over from a fuller batch (`hubspot_to_board::carry_over`): handled
        /// in the next batch, never carried again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        carried: bool,
        /// Only this account of the portal: the rest of one account's deals,
        /// handed on when its share of an invocation ran out
        /// (`hubspot_to_board::deals`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<AccountId>,
        /// The account's pacing lease, handed on with the rest of its deals by
        /// the invocation that held it: the job goes on pacing at once instead
        /// of waiting for the lease to lapse.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<String>,
    },
    /// Read HubSpot's webhooks journal for app uninstalls (sent on a schedule).
    PollLifecycle,
    /// Process what changed in HubSpot since the account's watermark.
    CatchUp { account_id: AccountId },
    /// Queue a catch-up for every active connection (sent on a schedule).
    CatchUpAll,
    /// Retry these history entries of the account (the errors dashboard's
    /// bulk retry, `history_tools::queue_retries`).
    Retry {
        account_id: AccountId,
        ids: Vec<String>,
    },
    /// The next slice of the account's first-connection matching run
    /// (`matching::run_slice`).
    Matching { account_id: AccountId, run: String },
    /// The next slice of the account's backfill of existing deals
    /// (`backfill::run_slice`).
    Backfill { account_id: AccountId, run: String },
}

/// Events of a job: typed, or as HubSpot sent them when a receiver deployed
/// before typed events queued the job (still in flight during a deploy).
/// Events of kinds we do not handle are left out, as the receiver does.
fn typed_or_as_received<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<WebhookEvent>, D::Error> {
    use crate::domain::hubspot_event::EventError;
    let raw: Vec<serde_json::Value> = Deserialize::deserialize(d)?;
    let mut out = Vec::with_capacity(raw.len());
    for value in raw {
        if value.get("kind").is_some() {
            out.push(serde_json::from_value(value).map_err(serde::de::Error::custom)?);
            continue;
        }
        match WebhookEvent::parse(&value) {
            Ok(event) => out.push(event),
            Err(EventError::Unknown { .. }) => {}
            Err(error) => return Err(serde::de::Error::custom(error)),
        }
    }
    Ok(out)
}

/// How long an event id is remembered: beyond SQS retention and a DLQ replay.
pub const EVENT_MEMORY: time::Duration = time::Duration::days(14);

/// Anything the worker can receive.
#[derive(Debug, Clone)]
pub enum QueueMessage {
    Job(Job),
    BoardEvent(BoardEvent),
}

impl QueueMessage {
    /// Parses a message body; the error says why, for the dead-letter reason.
    pub fn parse(body: &str) -> Result<Self, String> {
        let probe: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("malformed JSON: {e}"))?;
        if probe.get("job").is_some() {
            serde_json::from_value(probe)
                .map(Self::Job)
                .map_err(|e| format!("invalid job: {e}"))
        } else if probe.get("event_id").is_some() {
            serde_json::from_value::<WireBoardEvent>(probe)
                .map_err(|e| e.to_string())
                .and_then(BoardEvent::from_wire)
                .map(Self::BoardEvent)
                .map_err(|e| format!("invalid board event: {e}"))
        } else {
            Err("unknown message: neither a job nor a board event".into())
        }
    }

    pub fn to_body(job: &Job) -> String {
        serde_json::to_string(job).expect("jobs serialize")
    }
}

/// Document types board sends (`document.sent`), with their Japanese names.
pub const DOCUMENT_TYPES: [(&str, &str); 5] = [
    ("estimate", "見積書"),
    ("invoice", "請求書"),
    ("delivery_slip", "納品書"),
    ("order_confirmation", "発注請書"),
    ("receipt", "領収書"),
];

/// The rules of `schemas/board-change-event.schema.json` beyond the shape serde
/// checks (a test keeps the two in agreement).
fn check_board_event(event: &WireBoardEvent) -> Result<(), String> {
    if event.event_id.is_empty() || event.event_id.chars().count() > 128 {
        return Err("event_id must have 1 to 128 characters".into());
    }
    if event.version == 0 {
        return Err("version must be at least 1".into());
    }
    let object = event
        .object
        .as_object()
        .ok_or("object must be a JSON object")?;
    let positive = |name: &str| {
        object
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .filter(|id| *id > 0)
            .map(|_| ())
            .ok_or_else(|| format!("object.{name} must be a positive integer"))
    };
    if event.event_type != BoardEventType::DocumentSent {
        return positive("id");
    }
    positive("project_id")?;
    let text = |name: &str| object.get(name).and_then(serde_json::Value::as_str);
    if !text("document_type").is_some_and(|t| DOCUMENT_TYPES.iter().any(|(k, _)| *k == t)) {
        return Err("object.document_type is not one of board's document types".into());
    }
    if text("document_number").is_none_or(str::is_empty) {
        return Err("object.document_number must be a non-empty string".into());
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    if text("issue_date").is_none_or(|d| time::Date::parse(d, date).is_err()) {
        return Err("object.issue_date must be a date (YYYY-MM-DD)".into());
    }
    if !matches!(text("method"), Some("email" | "post")) {
        return Err("object.method must be email or post".into());
    }
    for name in ["total", "tax", "total_with_tax"] {
        if let Some(value) = object.get(name) {
            let ok = value.as_str().is_some_and(|s| {
                let digits = s.strip_prefix('-').unwrap_or(s);
                let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
                !whole.is_empty()
                    && !fraction.is_empty()
                    && whole.chars().all(|c| c.is_ascii_digit())
                    && fraction.chars().all(|c| c.is_ascii_digit())
            });
            if !ok {
                return Err(format!("object.{name} must be a decimal string"));
            }
        }
    }
    if object.get("resend").is_some_and(|r| !r.is_boolean()) {
        return Err("object.resend must be a boolean".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart_and_bad_ones_explained() {
        let job = Job::HubspotEvents {
            portal_id: PortalId::new(1).unwrap(),
            events: vec![],
            carried: true,
            account_id: None,
            lease: None,
        };
        assert!(
            matches!(QueueMessage::parse(&QueueMessage::to_body(&job)), Ok(QueueMessage::Job(j)) if j == job)
        );
        assert!(
            matches!(
                QueueMessage::parse(r#"{"job":"hubspot_events","portal_id":1,"events":[
                    {"portalId":1,"subscriptionType":"deal.creation","objectId":5},
                    {"portalId":1,"subscriptionType":"ticket.creation","objectId":6}]}"#),
                Ok(QueueMessage::Job(Job::HubspotEvents { ref events, .. }))
                    if events.len() == 1 && events[0].object.id == 5
            ),
            "jobs queued with events as HubSpot sent them"
        );
        assert!(
            matches!(
                QueueMessage::parse(r#"{"job":"hubspot_events","portal_id":1,"events":[]}"#),
                Ok(QueueMessage::Job(Job::HubspotEvents { carried: false, .. }))
            ),
            "jobs queued before carrying existed"
        );
        let event = r#"{"event_id":"e1","account_id":"acct-a","type":"project.updated",
            "occurred_at":"2026-11-30T10:00:00+09:00","version":3,"object":{"id":1}}"#;
        assert!(matches!(
            QueueMessage::parse(event),
            Ok(QueueMessage::BoardEvent(_))
        ));
        assert!(
            QueueMessage::parse("{")
                .unwrap_err()
                .starts_with("malformed JSON")
        );
        assert!(
            QueueMessage::parse(r#"{"hello":1}"#)
                .unwrap_err()
                .starts_with("unknown message")
        );
        let bad_type = event.replace("project.updated", "project.renamed");
        assert!(
            QueueMessage::parse(&bad_type)
                .unwrap_err()
                .starts_with("invalid board event")
        );
        let bad_time = event.replace("2026-11-30T10:00:00+09:00", "yesterday");
        assert!(
            QueueMessage::parse(&bad_time)
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
