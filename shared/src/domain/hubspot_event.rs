//! HubSpot's webhook events, parsed once where they arrive (SPEC §5) into one
//! typed event whatever format HubSpot used.
//!
//! Subscriptions under `crmObjects` (ours) are delivered in the *generic*
//! format: `subscriptionType` is `object.<kind>` and the object's type is the
//! raw id in `objectTypeId` (`0-3` deal, `0-2` company, `0-1` contact);
//! association changes carry `fromObjectTypeId` / `toObjectTypeId` instead.
//! Only `legacyCrmObjects` subscriptions deliver `deal.propertyChange` and the
//! like, with the type in the prefix. Both are accepted.
//! <https://developers.hubspot.com/changelog/public-beta-generic-webhook-subscriptions>
//! <https://developers.hubspot.com/docs/apps/legacy-apps/public-apps/create-generic-webhook-subscriptions>
//!
//! Association changes name both ends (`fromObjectId`, `toObjectId`); HubSpot
//! does not list `objectId` for them, so it is never relied on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{HubSpotObjectType, PortalId};

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    Creation,
    Deletion,
    Merge,
    Restore,
    PropertyChange,
    AssociationChange,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        Self::Creation,
        Self::Deletion,
        Self::Merge,
        Self::Restore,
        Self::PropertyChange,
        Self::AssociationChange,
    ];

    /// The suffix of `subscriptionType` (`object.creation`, `deal.creation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creation => "creation",
            Self::Deletion => "deletion",
            Self::Merge => "merge",
            Self::Restore => "restore",
            Self::PropertyChange => "propertyChange",
            Self::AssociationChange => "associationChange",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// HubSpot's raw object type ids of the types we sync.
pub fn object_type_id(object_type: HubSpotObjectType) -> &'static str {
    match object_type {
        HubSpotObjectType::Contact => "0-1",
        HubSpotObjectType::Company => "0-2",
        HubSpotObjectType::Deal => "0-3",
    }
}

fn type_of_id(raw: &str) -> Option<HubSpotObjectType> {
    match raw {
        "0-1" => Some(HubSpotObjectType::Contact),
        "0-2" => Some(HubSpotObjectType::Company),
        "0-3" => Some(HubSpotObjectType::Deal),
        _ => None,
    }
}

fn type_of_name(raw: &str) -> Option<HubSpotObjectType> {
    match raw.to_ascii_lowercase().as_str() {
        "contact" | "contacts" => Some(HubSpotObjectType::Contact),
        "company" | "companies" => Some(HubSpotObjectType::Company),
        "deal" | "deals" => Some(HubSpotObjectType::Deal),
        _ => None,
    }
}

/// One end of an association, or the object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(rename = "type")]
    pub object_type: HubSpotObjectType,
    pub id: u64,
}

/// An association added or removed. An end whose type we do not sync (a
/// ticket, a line item) is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationChange {
    pub from: Option<ObjectRef>,
    pub to: Option<ObjectRef>,
    pub removed: bool,
    pub primary: bool,
    /// `associationType` (legacy, e.g. `DEAL_TO_COMPANY`) or the type id
    /// (generic), for the decision log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<String>,
}

/// Who made the change (`changeSource`, `sourceId`): our own writes come back
/// with `INTEGRATION` and our app id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOrigin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

/// One webhook event, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub portal_id: PortalId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<i64>,
    pub kind: EventKind,
    /// The object the event is about; for an association change, its `from`
    /// end when we sync that type, else its `to` end.
    pub object: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Merges: the ids merged into `object` (which is the surviving one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<u64>,
    /// Merges: the id of the object the merge created, when HubSpot made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<AssociationChange>,
    #[serde(default)]
    pub origin: ChangeOrigin,
}

/// Why an event of a delivery was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not an event at all (no portal, no kind, ids that are not ids).
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A well-formed event of a kind or object type we do not handle.
    #[error("unknown event: {subscription_type} on {object_type}")]
    Unknown {
        portal_id: Option<u64>,
        subscription_type: String,
        object_type: String,
    },
}

impl WebhookEvent {
    /// Parses one event of a delivery, in the generic or the legacy format.
    pub fn parse(raw: &Value) -> Result<Self, EventError> {
        let Value::Object(fields) = raw else {
            return Err(EventError::Malformed("not a JSON object".into()));
        };
        let text = |name: &str| fields.get(name).and_then(as_text);
        let id = |name: &str| -> Result<Option<u64>, EventError> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => as_id(v)
                    .map(Some)
                    .ok_or_else(|| EventError::Malformed(format!("{name} is not an id"))),
            }
        };
        let portal =
            id("portalId")?.ok_or_else(|| EventError::Malformed("portalId is missing".into()))?;
        let portal_id = PortalId::new(portal)
            .map_err(|_| EventError::Malformed("portalId is not a portal id".into()))?;
        // `eventType` in some of HubSpot's pages.
        let subscription_type = text("subscriptionType")
            .or_else(|| text("eventType"))
            .ok_or_else(|| EventError::Malformed("subscriptionType is missing".into()))?;
        let unknown = |object_type: &str| EventError::Unknown {
            portal_id: Some(portal),
            subscription_type: subscription_type.clone(),
            object_type: object_type.to_owned(),
        };
        let (prefix, suffix) = subscription_type
            .split_once('.')
            .ok_or_else(|| unknown("?"))?;
        let kind = EventKind::parse(suffix).ok_or_else(|| unknown(prefix))?;
        let generic = prefix == "object";
        // The object type: `objectTypeId` in the generic format, the prefix in
        // the legacy one.
        let declared = if generic {
            text("objectTypeId")
        } else {
            Some(prefix.to_owned())
        };
        let type_of = |raw: &str| type_of_id(raw).or_else(|| type_of_name(raw));
        let origin = ChangeOrigin {
            change_source: text("changeSource"),
            source_id: text("sourceId"),
        };
        let mut event = WebhookEvent {
            portal_id,
            event_id: id("eventId")?,
            occurred_at: fields.get("occurredAt").and_then(Value::as_i64),
            kind,
            object: ObjectRef {
                object_type: HubSpotObjectType::Deal,
                id: 0,
            },
            property: None,
            merged: Vec::new(),
            new_object_id: None,
            association: None,
            origin,
        };
        if kind == EventKind::AssociationChange {
            let from_id = id("fromObjectId")?;
            let to_id = id("toObjectId")?;
            let association_type = text("associationType");
            // Legacy: `DEAL_TO_COMPANY`; generic: the type ids of both ends.
            let (from_type, to_type) = if generic {
                (
                    text("fromObjectTypeId").and_then(|t| type_of(&t)),
                    text("toObjectTypeId").and_then(|t| type_of(&t)),
                )
            } else {
                let to = association_type
                    .as_deref()
                    .and_then(|t| t.split_once("_TO_"))
                    .and_then(|(_, to)| type_of_name(to));
                (declared.as_deref().and_then(type_of), to)
            };
            let end = |t: Option<HubSpotObjectType>, id: Option<u64>| match (t, id) {
                (Some(object_type), Some(id)) if id > 0 => Some(ObjectRef { object_type, id }),
                _ => None,
            };
            let from = end(from_type, from_id);
            let to = end(to_type, to_id);
            if from_id.is_none() && to_id.is_none() {
                return Err(EventError::Malformed(
                    "association change without fromObjectId or toObjectId".into(),
                ));
            }
            event.object = from.or(to).ok_or_else(|| {
                unknown(
                    &text("fromObjectTypeId")
                        .or(declared.clone())
                        .unwrap_or_default(),
                )
            })?;
            event.association = Some(AssociationChange {
                from,
                to,
                removed: fields
                    .get("associationRemoved")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                primary: fields
                    .get("isPrimaryAssociation")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                association: association_type.or_else(|| text("associationTypeId")),
            });
            return Ok(event);
        }
        let declared =
            declared.ok_or_else(|| EventError::Malformed("objectTypeId is missing".into()))?;
        let object_type = type_of(&declared).ok_or_else(|| unknown(&declared))?;
        let object_id = id("objectId")?;
        let primary = id("primaryObjectId")?;
        let new_object_id = id("newObjectId")?;
        let main = match kind {
            EventKind::Merge => primary.or(object_id),
            _ => object_id,
        }
        .filter(|id| *id > 0)
        .ok_or_else(|| EventError::Malformed("objectId is missing".into()))?;
        event.object = ObjectRef {
            object_type,
            id: main,
        };
        if kind == EventKind::PropertyChange {
            event.property = Some(
                text("propertyName")
                    .ok_or_else(|| EventError::Malformed("propertyName is missing".into()))?,
            );
        }
        if kind == EventKind::Merge {
            let merged = match fields.get("mergedObjectIds") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(ids)) => ids
                    .iter()
                    .map(|v| {
                        as_id(v).ok_or_else(|| {
                            EventError::Malformed("mergedObjectIds holds a non-id".into())
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(EventError::Malformed(
                        "mergedObjectIds is not a list".into(),
                    ));
                }
            };
            event.merged = merged
                .into_iter()
                .filter(|m| *m != main && *m > 0)
                .collect();
            event.new_object_id = new_object_id.filter(|n| *n > 0);
        }
        Ok(event)
    }

    /// The objects of our types the event names: the object, a merge's new
    /// object, and both ends of an association.
    pub fn objects(&self) -> Vec<ObjectRef> {
        let mut out = vec![self.object];
        if let Some(id) = self.new_object_id {
            out.push(ObjectRef {
                object_type: self.object.object_type,
                id,
            });
        }
        if let Some(a) = &self.association {
            out.extend(a.from);
            out.extend(a.to);
        }
        out.sort();
        out.dedup();
        out
    }

    /// `deal.propertyChange`, whatever the format it came in: for the decision log.
    pub fn label(&self) -> String {
        format!(
            "{}.{}",
            self.object.object_type.as_str(),
            self.kind.as_str()
        )
    }

    /// A property change our own app made (HubSpot stamps it with our app id
    /// as `sourceId`).
    pub fn is_own_write(&self, own_app: &str) -> bool {
        self.kind == EventKind::PropertyChange
            && self.origin.change_source.as_deref() == Some("INTEGRATION")
            && self.origin.source_id.as_deref() == Some(own_app)
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Ids come as numbers; strings of digits are accepted too.
fn as_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<WebhookEvent, EventError> {
        WebhookEvent::parse(&v)
    }

    #[test]
    fn given_a_generic_creation_when_parsed_then_the_type_comes_from_object_type_id() {
        let e = parse(
            json!({"eventId": 9, "portalId": 1000001, "subscriptionType": "object.creation",
            "objectTypeId": "0-3", "objectId": 42, "changeSource": "CRM_UI"}),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Creation);
        assert_eq!(
            e.object,
            ObjectRef {
                object_type: HubSpotObjectType::Deal,
                id: 42
            }
        );
        assert_eq!(e.label(), "deal.creation");
        assert_eq!(e.event_id, Some(9));
    }

    #[test]
    fn given_the_legacy_format_when_parsed_then_the_same_event_results() {
        let legacy = parse(
            json!({"portalId": 1000001, "subscriptionType": "company.propertyChange",
            "objectId": 7, "propertyName": "name", "propertyValue": "x"}),
        )
        .unwrap();
        let generic = parse(
            json!({"portalId": 1000001, "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-2", "objectId": 7, "propertyName": "name", "propertyValue": "x"}),
        )
        .unwrap();
        assert_eq!(legacy, generic);
        assert_eq!(legacy.property.as_deref(), Some("name"));
        let by_event_type = parse(
            json!({"portalId": 1000001, "eventType": "company.propertyChange",
            "objectId": 7, "propertyName": "name"}),
        )
        .unwrap();
        assert_eq!(by_event_type, legacy);
    }

    #[test]
    fn given_a_generic_association_change_without_object_id_then_both_ends_are_read() {
        let e = parse(
            json!({"portalId": 1000001, "subscriptionType": "object.associationChange",
            "fromObjectTypeId": "0-3", "fromObjectId": 5, "toObjectTypeId": "0-2", "toObjectId": 8,
            "associationTypeId": 5, "associationCategory": "HUBSPOT_DEFINED",
            "associationType": "DEAL_TO_COMPANY", "associationRemoved": false,
            "isPrimaryAssociation": true}),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::AssociationChange);
        assert_eq!(
            e.object,
            ObjectRef {
                object_type: HubSpotObjectType::Deal,
                id: 5
            }
        );
        assert_eq!(
            e.objects(),
            vec![
                ObjectRef {
                    object_type: HubSpotObjectType::Deal,
                    id: 5
                },
                ObjectRef {
                    object_type: HubSpotObjectType::Company,
                    id: 8
                },
            ]
        );
        assert!(e.association.as_ref().unwrap().primary);
    }

    #[test]
    fn given_an_association_from_a_type_we_do_not_sync_then_the_other_end_is_the_object() {
        let e = parse(
            json!({"portalId": 1, "subscriptionType": "object.associationChange",
            "fromObjectTypeId": "0-5", "fromObjectId": 3, "toObjectTypeId": "0-3", "toObjectId": 4,
            "objectId": 3}),
        )
        .unwrap();
        assert_eq!(
            e.object,
            ObjectRef {
                object_type: HubSpotObjectType::Deal,
                id: 4
            }
        );
        assert_eq!(e.objects().len(), 1);
        let legacy = parse(
            json!({"portalId": 1, "subscriptionType": "contact.associationChange",
            "fromObjectId": 3, "toObjectId": 4, "associationType": "CONTACT_TO_COMPANY"}),
        )
        .unwrap();
        assert_eq!(legacy.objects().len(), 2);
    }

    #[test]
    fn given_a_merge_then_the_survivor_is_the_object_and_the_rest_are_merged() {
        let e = parse(
            json!({"portalId": 1, "subscriptionType": "object.merge", "objectTypeId": "0-3",
            "objectId": 10, "primaryObjectId": 10, "mergedObjectIds": [10, 11], "newObjectId": 12}),
        )
        .unwrap();
        assert_eq!(e.object.id, 10);
        assert_eq!(e.merged, vec![11]);
        assert_eq!(e.objects().len(), 2, "the new object is named too");
    }

    #[test]
    fn given_unknown_kinds_or_types_then_they_are_unknown_not_malformed() {
        for raw in [
            json!({"portalId": 1, "subscriptionType": "object.creation", "objectTypeId": "0-5", "objectId": 1}),
            json!({"portalId": 1, "subscriptionType": "object.privacyDeletion", "objectTypeId": "0-1", "objectId": 1}),
            json!({"portalId": 1, "subscriptionType": "ticket.creation", "objectId": 1}),
            json!({"portalId": 1, "subscriptionType": "conversation.creation", "objectId": 1}),
        ] {
            assert!(
                matches!(parse(raw.clone()), Err(EventError::Unknown { .. })),
                "{raw}"
            );
        }
    }

    #[test]
    fn given_broken_events_then_they_are_malformed() {
        for raw in [
            json!("text"),
            json!({"subscriptionType": "object.creation", "objectTypeId": "0-3", "objectId": 1}),
            json!({"portalId": 1, "objectTypeId": "0-3", "objectId": 1}),
            json!({"portalId": 1, "subscriptionType": "object.creation", "objectTypeId": "0-3"}),
            json!({"portalId": 1, "subscriptionType": "object.creation", "objectTypeId": "0-3", "objectId": "x"}),
            json!({"portalId": 1, "subscriptionType": "object.creation", "objectId": 1}),
            json!({"portalId": 1, "subscriptionType": "object.associationChange"}),
        ] {
            assert!(
                matches!(parse(raw.clone()), Err(EventError::Malformed(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn given_our_own_property_write_then_it_is_recognised() {
        let e = parse(
            json!({"portalId": 1, "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-3", "objectId": 1, "propertyName": "amount",
            "changeSource": "INTEGRATION", "sourceId": "777"}),
        )
        .unwrap();
        assert!(e.is_own_write("777"));
        assert!(!e.is_own_write("888"));
    }

    #[test]
    fn typed_events_round_trip_through_the_queue() {
        let e = parse(
            json!({"portalId": 1, "subscriptionType": "object.merge", "objectTypeId": "0-2",
            "primaryObjectId": 10, "mergedObjectIds": [11]}),
        )
        .unwrap();
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<WebhookEvent>(&text).unwrap(), e);
    }
}
