//! Typed ids. A deal id cannot be passed where a company id is expected, and a
//! stage label can never stand where a stage id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value could not become an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// HubSpot object ids are positive integers that HubSpot's JSON carries as
/// strings; we keep them as integers and write them back as strings.
macro_rules! hubspot_object_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            pub fn new(value: u64) -> Result<Self, InvalidId> {
                if value == 0 {
                    return Err(InvalidId { kind: $kind, reason: "must be positive" });
                }
                Ok(Self(value))
            }
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let value = s
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| InvalidId { kind: $kind, reason: "not a positive integer" })?;
                Self::new(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        openapi_schema!($name, utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[1-9][0-9]*$"))
            .description(Some(concat!("A HubSpot ", $kind, ", written as a string.")))
            .build()
            .into());

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                match StringOrNumber::deserialize(d)? {
                    StringOrNumber::String(s) => s.parse().map_err(serde::de::Error::custom),
                    StringOrNumber::Number(n) => Self::new(n).map_err(serde::de::Error::custom),
                }
            }
        }
    };
}

/// board's ids are integers in its JSON.
macro_rules! board_object_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        openapi_schema!($name, utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(1))
            .description(Some(concat!("A board ", $kind, ".")))
            .build()
            .into());

        impl $name {
            pub fn new(value: u64) -> Result<Self, InvalidId> {
                if value == 0 {
                    return Err(InvalidId { kind: $kind, reason: "must be positive" });
                }
                Ok(Self(value))
            }
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let value = s
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| InvalidId { kind: $kind, reason: "not a positive integer" })?;
                Self::new(value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                match StringOrNumber::deserialize(d)? {
                    StringOrNumber::String(s) => s.parse().map_err(serde::de::Error::custom),
                    StringOrNumber::Number(n) => Self::new(n).map_err(serde::de::Error::custom),
                }
            }
        }
    };
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(u64),
}

hubspot_object_id!(
    /// A HubSpot account (`portalId`, `hub_id`).
    PortalId,
    "portal id"
);
hubspot_object_id!(DealId, "deal id");
hubspot_object_id!(CompanyId, "company id");
hubspot_object_id!(ContactId, "contact id");
hubspot_object_id!(NoteId, "note id");
hubspot_object_id!(OwnerId, "owner id");
hubspot_object_id!(HubSpotUserId, "HubSpot user id");

board_object_id!(
    /// 案件
    ProjectId,
    "project id"
);
board_object_id!(
    /// 顧客 (board calls them clients in its API)
    CustomerId,
    "customer id"
);
board_object_id!(
    /// 顧客担当者 (board's `contacts`)
    CustomerContactId,
    "customer contact id"
);
board_object_id!(BoardUserId, "board user id");

/// Short textual ids: bounded, no control characters, no `#` (our key separator).
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        openapi_schema!($name, utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some($max))
            .description(Some(concat!("A ", $kind, ".")))
            .build()
            .into());

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                if value.is_empty() {
                    return Err(InvalidId { kind: $kind, reason: "must not be empty" });
                }
                if value.chars().count() > $max {
                    return Err(InvalidId { kind: $kind, reason: "too long" });
                }
                let allowed: fn(char) -> bool = $allowed;
                if !value.chars().all(allowed) {
                    return Err(InvalidId { kind: $kind, reason: "contains characters that are not allowed" });
                }
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(
    /// A board tenant (`account_id` in board's JWT and change events).
    AccountId,
    "account id",
    64,
    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
);
text_id!(
    /// A HubSpot deal pipeline id (`default` or a numeric string).
    PipelineId,
    "pipeline id",
    100,
    |c| !c.is_control() && c != '#'
);
text_id!(
    /// A HubSpot deal stage id, never its label.
    StageId,
    "stage id",
    100,
    |c| !c.is_control() && c != '#'
);
text_id!(
    /// board's user id as the JWT carries it (taken as issued).
    UserId,
    "user id",
    64,
    |c| !c.is_control() && c != '#'
);
text_id!(
    /// The short id of a history entry, the one support asks for.
    HistoryId,
    "history id",
    32,
    |c| c.is_ascii_alphanumeric()
);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl HistoryId {
    /// A 14-character id: 10 characters of milliseconds (sortable by time) and
    /// 4 random characters. Readable over the phone: Crockford base32, no I/L/O/U.
    pub fn generate(now_ms: u64) -> Self {
        let random: u32 = rand::random::<u32>() & 0xF_FFFF;
        let mut out = String::with_capacity(14);
        for shift in (0..10).rev() {
            out.push(CROCKFORD[((now_ms >> (shift * 5)) & 31) as usize] as char);
        }
        for shift in (0..4).rev() {
            out.push(CROCKFORD[((random >> (shift * 5)) & 31) as usize] as char);
        }
        Self(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubspot_ids_read_strings_and_numbers_and_write_strings() {
        let from_string: DealId = serde_json::from_str("\"12345\"").unwrap();
        let from_number: DealId = serde_json::from_str("12345").unwrap();
        assert_eq!(from_string, from_number);
        assert_eq!(serde_json::to_string(&from_string).unwrap(), "\"12345\"");
        assert!(serde_json::from_str::<DealId>("\"0\"").is_err());
        assert!(serde_json::from_str::<DealId>("\"abc\"").is_err());
    }

    #[test]
    fn board_ids_are_integers() {
        let id: ProjectId = serde_json::from_str("7").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "7");
    }

    #[test]
    fn account_ids_reject_key_separators_and_empty_values() {
        assert!(AccountId::new("acct-a").is_ok());
        assert!(AccountId::new("").is_err());
        assert!(AccountId::new("a#b").is_err());
        assert!(AccountId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn history_ids_sort_by_time_and_use_crockford_letters() {
        let earlier = HistoryId::generate(1_700_000_000_000);
        let later = HistoryId::generate(1_700_000_000_001);
        assert_eq!(earlier.as_str().len(), 14);
        assert!(earlier.as_str()[..10] < later.as_str()[..10]);
        assert!(earlier.as_str().chars().all(|c| !"ILOU".contains(c)));
    }
}
