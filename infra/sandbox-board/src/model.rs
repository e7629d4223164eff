//! board's records as its API v1 shows them. Field names beyond SPEC §12 and
//! the seed (e.g. `project_no`, `order_date`, `honorific_title`, `lock_flg` as
//! 0/1, 400 for validation and lock refusals) are guessed from board's API style.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Clients,
    Contacts,
    Projects,
}

impl Resource {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "clients" => Some(Self::Clients),
            "contacts" => Some(Self::Contacts),
            "projects" => Some(Self::Projects),
            _ => None,
        }
    }

    /// The event type prefix (board's customers are `clients` in its API).
    pub fn event_prefix(self) -> &'static str {
        match self {
            Self::Clients => "customer",
            Self::Contacts => "contact",
            Self::Projects => "project",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
}

/// One stored record: its fields as JSON (board's names), and its version.
#[derive(Debug, Clone)]
pub struct Stored {
    pub fields: Map<String, Value>,
    pub version: u64,
}

#[derive(Debug, Default)]
pub struct Account {
    pub users: Vec<User>,
    pub records: BTreeMap<(Resource, u64), Stored>,
    pub documents_sent: BTreeMap<(u64, String), u32>,
}

impl Account {
    pub fn get(&self, resource: Resource, id: u64) -> Option<&Stored> {
        self.records.get(&(resource, id))
    }

    pub fn list(&self, resource: Resource) -> impl Iterator<Item = (&u64, &Stored)> {
        self.records
            .range((resource, 0)..=(resource, u64::MAX))
            .map(|((_, id), s)| (id, s))
    }

    /// A project as `GET /v1/projects/{id}` shows it: with nested client, contact, user.
    pub fn render(&self, resource: Resource, stored: &Stored) -> Value {
        let mut value = Value::Object(stored.fields.clone());
        if resource == Resource::Projects {
            let nested = |r: Resource, key: &str| {
                stored
                    .fields
                    .get(key)
                    .and_then(Value::as_u64)
                    .and_then(|id| self.get(r, id))
                    .map(|s| Value::Object(s.fields.clone()))
            };
            value["client"] = nested(Resource::Clients, "client_id").unwrap_or(Value::Null);
            value["contact"] = nested(Resource::Contacts, "contact_id").unwrap_or(Value::Null);
            value["user"] = stored
                .fields
                .get("user_id")
                .and_then(Value::as_u64)
                .and_then(|id| self.users.iter().find(|u| u.id == id))
                .map(|u| json!(u))
                .unwrap_or(Value::Null);
        }
        value
    }
}

/// A board change event as board's platform puts it on the queue (SPEC §10).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    pub event_id: String,
    pub account_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: String,
    pub version: u64,
    pub object: Value,
}

pub fn now_jst() -> String {
    let t = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9));
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

pub fn today_jst() -> String {
    now_jst()[..10].to_owned()
}
