//! A pair (HubSpot object, board object) inside one connection (SPEC §2).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, Code, PortalId};

/// HubSpot's object types that we link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A value being written to board and not yet in `board`: saved before the
    /// write, so board's change event for it, which may be handled before the
    /// write's baseline is saved, is still known as our echo (SPEC §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_sent: Option<String>,
    /// A value being written to HubSpot and not yet in `hubspot`: saved
    /// before the write, so HubSpot holding it after a write whose answer (or
    /// whose baseline's save) was lost is still known as ours, not as a change
    /// made in HubSpot that a later board change would lose to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot_sent: Option<String>,
}

impl Baseline {
    /// Both sides hold `value`.
    pub fn both(value: Option<String>) -> Self {
        Self {
            hubspot: value.clone(),
            board: value,
            board_sent: None,
            hubspot_sent: None,
        }
    }
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

impl Link {
    /// A new, enabled deal ↔ project link with no baselines yet.
    pub fn deal(account: AccountId, portal: PortalId, deal: u64, project: u64) -> Self {
        Self {
            account_id: account,
            portal_id: portal,
            hubspot: HubSpotRef {
                object_type: HubSpotObjectType::Deal,
                id: deal,
            },
            board: BoardRef {
                kind: BoardObjectKind::Project,
                id: project,
            },
            state: LinkState::Enabled,
            last_synced_at: None,
            baseline: Default::default(),
            revision: 0,
        }
    }

    /// Whether board's `value` for `key` is what we last wrote there, or are
    /// writing there now: our echo, not a change.
    pub fn is_board_echo(&self, key: &str, value: Option<&String>) -> bool {
        self.baseline.get(key).is_some_and(|b| {
            b.board.as_ref() == value || (value.is_some() && b.board_sent.as_ref() == value)
        })
    }

    /// Whether board's value for `key` moved away from the one it last had
    /// from us (SPEC §11), our own write in flight aside. A field without a
    /// baseline board value counts as moved when board holds one: the two
    /// sides were never compared, so neither may silently overwrite the other.
    pub fn board_moved(&self, key: &str, now: Option<&String>) -> bool {
        now.is_some()
            && !self.is_board_echo(key, now)
            && self.baseline.get(key).and_then(|b| b.board.as_ref()) != now
    }

    /// Whether HubSpot's value for `key` moved away from the one it last had
    /// from us; like `board_moved`, a field without a baseline counts as moved
    /// when HubSpot holds a value.
    pub fn hubspot_moved(&self, key: &str, now: Option<&String>) -> bool {
        now.is_some() && !self.is_hubspot_echo(key, now)
    }

    /// Whether HubSpot's `value` for `key` is what it last had from us, or
    /// what we were writing there when the answer (or our record of it) was
    /// lost: our echo, not a change made in HubSpot.
    pub fn is_hubspot_echo(&self, key: &str, value: Option<&String>) -> bool {
        self.baseline.get(key).is_some_and(|b| {
            b.hubspot.as_ref() == value || (value.is_some() && b.hubspot_sent.as_ref() == value)
        })
    }

    /// HubSpot refused the write (it holds none of it): nothing is in flight.
    pub fn sent_to_hubspot(&mut self) {
        for baseline in self.baseline.values_mut() {
            baseline.hubspot_sent = None;
        }
    }

    /// Notes that `value` is about to be written to HubSpot for `key` (saved
    /// before the write; see `Baseline::hubspot_sent`).
    pub fn sending_to_hubspot(&mut self, key: &str, value: String) {
        self.baseline
            .entry(key.to_owned())
            .or_default()
            .hubspot_sent = Some(value);
    }

    /// Notes that `value` is about to be written to board for `key` (saved
    /// before the write; see `Baseline::board_sent`).
    pub fn sending_to_board(&mut self, key: &str, value: String) {
        self.baseline.entry(key.to_owned()).or_default().board_sent = Some(value);
    }

    /// The writes to board are done (or given up): no value is in flight.
    pub fn sent_to_board(&mut self) {
        for baseline in self.baseline.values_mut() {
            baseline.board_sent = None;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        serde_json::from_value(serde_json::json!({
            "account_id": "acct-a",
            "portal_id": 1,
            "hubspot": {"object_type": "deal", "id": "9"},
            "board": {"kind": "project", "id": 7},
            "state": "enabled",
            "baseline": {"name": {"hubspot": "旧", "board": "旧"}},
        }))
        .expect("a link stored before board_sent existed")
    }

    #[test]
    fn given_baselines_when_a_side_holds_another_value_then_it_moved() {
        let mut link = link();
        let (old, new) = (Some("旧".to_owned()), Some("新".to_owned()));
        assert!(!link.board_moved("name", old.as_ref()));
        assert!(link.board_moved("name", new.as_ref()));
        assert!(
            !link.board_moved("name", None),
            "an emptied field is no change to weigh"
        );
        assert!(!link.hubspot_moved("name", old.as_ref()));
        assert!(link.hubspot_moved("name", new.as_ref()));
        assert!(link.board_moved("phone", new.as_ref()), "never compared");
        assert!(link.hubspot_moved("phone", new.as_ref()), "never compared");
        link.sending_to_board("name", "新".into());
        assert!(
            !link.board_moved("name", new.as_ref()),
            "our write in flight"
        );
    }

    #[test]
    fn a_value_in_flight_to_board_is_an_echo_until_the_writes_are_done() {
        let mut link = link();
        let new = Some("新".to_owned());
        assert!(link.is_board_echo("name", Some(&"旧".to_owned())));
        assert!(!link.is_board_echo("name", new.as_ref()));
        link.sending_to_board("name", "新".into());
        assert!(link.is_board_echo("name", new.as_ref()), "in flight");
        assert!(
            link.is_board_echo("name", Some(&"旧".to_owned())),
            "the last written value stays ours"
        );
        assert!(!link.is_board_echo("name", None), "never an empty value");
        assert!(!link.is_board_echo("order_status", Some(&"1".to_owned())));
        link.sent_to_board();
        assert!(!link.is_board_echo("name", new.as_ref()));
        let stored = serde_json::to_value(&link).unwrap();
        assert!(
            stored["baseline"]["name"].get("board_sent").is_none(),
            "nothing in flight, nothing stored: {stored}"
        );
    }
}
