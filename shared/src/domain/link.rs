//! A pair (HubSpot object, board object) inside one connection (SPEC §2).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, Code, PortalId};

/// HubSpot's object types that we link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubSpotObjectType {
    Deal,
    Company,
    Contact,
}

impl HubSpotObjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deal => "deal",
            Self::Company => "company",
            Self::Contact => "contact",
        }
    }
}

/// board's object kinds that we link (the API's `{project|customer|contact}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardObjectKind {
    Project,
    Customer,
    #[serde(rename = "contact")]
    CustomerContact,
}

impl BoardObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Customer => "customer",
            Self::CustomerContact => "contact",
        }
    }
}

/// A HubSpot object reference: type and numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HubSpotRef {
    pub object_type: HubSpotObjectType,
    #[serde(with = "string_u64")]
    pub id: u64,
}

/// A board object reference: kind and integer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoardRef {
    pub kind: BoardObjectKind,
    pub id: u64,
}

impl fmt::Display for HubSpotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type.as_str(), self.id)
    }
}

impl fmt::Display for BoardRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    Enabled,
    /// Disabled with the catalog code that disabled it (recorded once).
    Disabled {
        reason: Code,
    },
    /// The board object was deleted; the deal is not re-drafted silently.
    Deleted,
    /// The connection moved to another portal; kept for the record.
    Archived,
    /// A user turned sync off for this record.
    Off,
}

/// One field's baseline, normalised (dates as calendar dates, strings trimmed, NFKC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    #[serde(default)]
    pub hubspot: Option<String>,
    #[serde(default)]
    pub board: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub account_id: AccountId,
    pub portal_id: PortalId,
    pub hubspot: HubSpotRef,
    pub board: BoardRef,
    #[serde(flatten)]
    pub state: LinkState,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_synced_at: Option<OffsetDateTime>,
    /// Per synced field, the last value each side received from us (SPEC §11):
    /// a value equal to it is our own echo.
    #[serde(default)]
    pub baseline: std::collections::BTreeMap<String, Baseline>,
    /// Optimistic-concurrency revision, maintained by the store.
    #[serde(default)]
    pub revision: u64,
}

pub(crate) mod string_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }

    /// An optional id given as a string or a number.
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(u64),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::N(n)) => Ok(Some(n)),
            Some(Raw::S(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}
