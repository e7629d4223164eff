//! The emulator's state: portals, OAuth grants, CRM objects, schema, associations.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::errors::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Deals,
    Companies,
    Contacts,
    Notes,
}

impl ObjectType {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        // HubSpot accepts the plural, the singular and the object type id.
        Ok(match s {
            "deals" | "deal" | "0-3" => Self::Deals,
            "companies" | "company" | "0-2" => Self::Companies,
            "contacts" | "contact" | "0-1" => Self::Contacts,
            "notes" | "note" | "0-46" => Self::Notes,
            other => {
                return Err(ApiError::validation(format!(
                    "Unable to infer object type from: {other}"
                )));
            }
        })
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::Deals => "deals",
            Self::Companies => "companies",
            Self::Contacts => "contacts",
            Self::Notes => "notes",
        }
    }

    /// The prefix of webhook subscription types (`deal.creation`, …).
    pub fn singular(self) -> &'static str {
        match self {
            Self::Deals => "deal",
            Self::Companies => "company",
            Self::Contacts => "contact",
            Self::Notes => "note",
        }
    }

    pub fn upper(self) -> &'static str {
        match self {
            Self::Deals => "DEAL",
            Self::Companies => "COMPANY",
            Self::Contacts => "CONTACT",
            Self::Notes => "NOTE",
        }
    }

    pub fn read_scope(self) -> &'static str {
        match self {
            Self::Deals => "crm.objects.deals.read",
            Self::Companies => "crm.objects.companies.read",
            Self::Contacts | Self::Notes => "crm.objects.contacts.read",
        }
    }

    /// Notes need the contacts write scope (SPEC §12).
    pub fn write_scope(self) -> &'static str {
        match self {
            Self::Deals => "crm.objects.deals.write",
            Self::Companies => "crm.objects.companies.write",
            Self::Contacts | Self::Notes => "crm.objects.contacts.write",
        }
    }

    pub fn schema_read_scope(self) -> &'static str {
        match self {
            Self::Deals => "crm.schemas.deals.read",
            Self::Companies => "crm.schemas.companies.read",
            Self::Contacts | Self::Notes => "crm.schemas.contacts.read",
        }
    }

    pub fn schema_write_scope(self) -> &'static str {
        match self {
            Self::Deals => "crm.schemas.deals.write",
            Self::Companies => "crm.schemas.companies.write",
            Self::Contacts | Self::Notes => "crm.schemas.contacts.write",
        }
    }

    /// Properties returned when a read names none.
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            Self::Deals => &[
                "dealname",
                "amount",
                "closedate",
                "pipeline",
                "dealstage",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
            Self::Companies => &[
                "name",
                "domain",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
            Self::Contacts => &[
                "firstname",
                "lastname",
                "email",
                "createdate",
                "lastmodifieddate",
                "hs_object_id",
            ],
            Self::Notes => &[
                "hs_note_body",
                "hs_timestamp",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
        }
    }

    pub const ALL: [ObjectType; 4] = [Self::Deals, Self::Companies, Self::Contacts, Self::Notes];
}

#[derive(Debug, Clone, Serialize)]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    #[serde(rename = "displayOrder")]
    pub display_order: i64,
    pub hidden: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field_type: String,
    pub group_name: String,
    pub description: String,
    pub options: Vec<PropertyOption>,
    pub hubspot_defined: bool,
    #[serde(skip)]
    pub read_only: bool,
    /// A portal administrator's validation rule: at most this many characters.
    #[serde(skip)]
    pub max_characters: Option<usize>,
    pub created_at: String,
    pub updated_at: String,
    pub archived: bool,
}

impl PropertyDef {
    pub fn builtin(name: &str, label: &str, kind: &str, field_type: &str) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind: kind.into(),
            field_type: field_type.into(),
            group_name: "dealinformation".into(),
            description: String::new(),
            options: Vec::new(),
            hubspot_defined: true,
            read_only: false,
            max_characters: None,
            created_at: "2020-01-01T00:00:00Z".into(),
            updated_at: "2020-01-01T00:00:00Z".into(),
            archived: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub id: String,
    pub label: String,
    pub display_order: i64,
    pub metadata: BTreeMap<String, String>,
    pub archived: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub id: String,
    pub label: String,
    pub display_order: i64,
    pub stages: Vec<Stage>,
    pub archived: bool,
}

impl Pipeline {
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub user_id: u64,
    pub teams: Vec<Value>,
    pub archived: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub name: String,
    pub user_ids: Vec<String>,
    pub secondary_user_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub id: u64,
    pub properties: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub archived: bool,
    pub archived_ms: Option<i64>,
}

/// An association edge, stored once per direction as HubSpot reports both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    pub from_type: ObjectType,
    pub from_id: u64,
    pub to_type: ObjectType,
    pub to_id: u64,
    pub type_id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An app's OAuth access token.
    App,
    /// `pat-sandbox-user`: a person in HubSpot's UI.
    User,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub portal: u64,
    pub scopes: Vec<String>,
    pub user_id: u64,
    pub user_email: String,
    pub expires_ms: i64,
    pub refresh_token: String,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub portal: u64,
    pub scopes: Vec<String>,
    pub user_id: u64,
    pub user_email: String,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub portal: u64,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub used: bool,
    pub expires_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Portal {
    pub id: u64,
    pub domain: String,
    pub time_zone: String,
    /// The zone's current offset (what account details report beside it).
    pub utc_offset_ms: i64,
    pub installed: bool,
    /// The HubSpot user who consents (the sandbox's logged-in admin).
    pub admin_user_id: u64,
    pub admin_email: String,
}

/// One entry of the webhooks journal: its events are served as a file.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub offset: String,
    pub seq: u64,
    pub at_ms: i64,
    pub events: Vec<Value>,
}

/// One logged API request (the tests' window on how the service used HubSpot).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub at_ms: i64,
    pub token: &'static str,
    pub portal: Option<u64>,
    pub status: u16,
    pub inputs: usize,
}

#[derive(Default)]
pub struct State {
    pub portals: BTreeMap<u64, Portal>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub next_id: u64,
    pub objects: HashMap<(u64, ObjectType), BTreeMap<u64, Record>>,
    pub properties: HashMap<(u64, ObjectType), BTreeMap<String, PropertyDef>>,
    pub pipelines: HashMap<u64, Vec<Pipeline>>,
    pub owners: HashMap<u64, Vec<Owner>>,
    pub teams: HashMap<u64, Vec<Team>>,
    pub edges: HashMap<u64, HashSet<Edge>>,
    pub journal: Vec<JournalEntry>,
    pub journal_seq: u64,
    /// The app's webhooks-journal subscriptions (app-wide).
    pub journal_subscriptions: Vec<Value>,
    pub requests: Vec<LoggedRequest>,
}

impl State {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn objects_mut(&mut self, portal: u64, kind: ObjectType) -> &mut BTreeMap<u64, Record> {
        self.objects.entry((portal, kind)).or_default()
    }

    pub fn live(&self, portal: u64, kind: ObjectType, id: u64) -> Option<&Record> {
        self.objects
            .get(&(portal, kind))
            .and_then(|m| m.get(&id))
            .filter(|r| !r.archived)
    }

    pub fn property(&self, portal: u64, kind: ObjectType, name: &str) -> Option<&PropertyDef> {
        self.properties
            .get(&(portal, kind))
            .and_then(|m| m.get(name))
    }
}

pub fn iso_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Parses a HubSpot datetime value: epoch milliseconds or ISO 8601 (date or date-time).
pub fn parse_datetime_ms(value: &str) -> Option<i64> {
    if let Ok(ms) = value.trim().parse::<i64>() {
        return Some(ms);
    }
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(value.trim(), &rfc) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let date = time::Date::parse(
        value.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}
