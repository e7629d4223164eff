//! A board account's connection to one HubSpot portal (SPEC §3).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, HubSpotUserId, PortalId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Pending,
    Active,
    Suspended,
    Disconnected,
    Uninstalled,
}

impl ConnectionState {
    /// Only an active connection syncs; every other state records or ignores.
    pub fn syncs(self) -> bool {
        self == Self::Active
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizedBy {
    pub user_id: HubSpotUserId,
    pub email: String,
}

/// Tokens as stored: ciphertexts produced by the token cipher, never plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Keyed digest of the refresh token, so two connections holding the same
    /// one can be found without decrypting (SPEC §3.9).
    pub refresh_token_digest: String,
    #[serde(with = "time::serde::rfc3339")]
    pub access_expires_at: OffsetDateTime,
}

impl std::fmt::Debug for SealedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTokens")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// The exclusion property as last checked (SPEC §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExclusionProperty {
    Ready,
    /// A property of that name exists with another type: the connection still works.
    WrongType {
        found: String,
    },
    /// HubSpot could not be asked; checked again at the next connect.
    Unknown {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub account_id: AccountId,
    pub portal_id: PortalId,
    pub state: ConnectionState,
    #[serde(default)]
    pub hub_domain: Option<String>,
    #[serde(default)]
    pub authorized_by: Option<AuthorizedBy>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub connected_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub tokens: Option<SealedTokens>,
    #[serde(default)]
    pub consecutive_auth_failures: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_webhook_at: Option<OffsetDateTime>,
    /// When the last counted authentication failure happened (one counts per 10 minutes).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_auth_failure_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_sync_to_board_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_sync_to_hubspot_at: Option<OffsetDateTime>,
    /// The board account's name from the confirming JWT (the card's fallback label).
    #[serde(default)]
    pub account_name: Option<String>,
    /// What we found when making sure of `exclude_from_board_integration`.
    #[serde(default)]
    pub exclusion_property: Option<ExclusionProperty>,
    /// Optimistic-concurrency revision, maintained by the store.
    /// The portal's offset from UTC (HubSpot's account details, read when the
    /// connection is made); dates follow the portal's day. `None`: Asia/Tokyo.
    #[serde(default)]
    pub utc_offset_seconds: Option<i32>,
    #[serde(default)]
    pub revision: u64,
}

impl Connection {
    /// The portal's time zone offset (Asia/Tokyo until HubSpot has told us).
    pub fn zone(&self) -> time::UtcOffset {
        self.utc_offset_seconds
            .and_then(|s| time::UtcOffset::from_whole_seconds(s).ok())
            .unwrap_or(crate::domain::dates::TOKYO)
    }

    pub fn pending(account_id: AccountId, portal_id: PortalId) -> Self {
        Self {
            account_id,
            portal_id,
            state: ConnectionState::Pending,
            hub_domain: None,
            authorized_by: None,
            scopes: Vec::new(),
            connected_at: None,
            tokens: None,
            consecutive_auth_failures: 0,
            last_webhook_at: None,
            last_auth_failure_at: None,
            last_sync_to_board_at: None,
            last_sync_to_hubspot_at: None,
            account_name: None,
            exclusion_property: None,
            utc_offset_seconds: None,
            revision: 0,
        }
    }
}
