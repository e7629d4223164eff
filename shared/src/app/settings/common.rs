//! What every settings endpoint shares: limits, errors, the access token, the versioned update.

use secrecy::ExposeSecret;

use crate::app::Services;
use crate::app::tokens::{TokenError, access_token};
use crate::domain::AccountId;
use crate::domain::config::AccountConfig;
use crate::ports::{BoardError, HubSpotError, StoreError};

pub const MAX_RULES: usize = 20;

pub const MAX_CONDITIONS: usize = 10;

pub const MAX_VALUES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("HubSpot is not connected")]
    NotConnected,
    #[error("the HubSpot integration is suspended")]
    Suspended,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("HubSpot: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error("board: {0}")]
    Board(#[from] BoardError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenError> for SettingsError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NotConnected => Self::NotConnected,
            TokenError::Suspended => Self::Suspended,
            TokenError::AuthInvalid => {
                Self::HubSpot(HubSpotError::Unauthorized("refresh token refused".into()))
            }
            TokenError::Unavailable(m) => Self::HubSpot(HubSpotError::Unavailable(m)),
            TokenError::Store(s) => Self::Store(s),
        }
    }
}

pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

pub(super) async fn token(
    services: &Services,
    account: &AccountId,
) -> Result<String, SettingsError> {
    Ok(access_token(services, account)
        .await?
        .expose_secret()
        .to_owned())
}

/// Saves a change made by `change`, retrying on a concurrent change; returns the new version.
pub(super) async fn update(
    services: &Services,
    account: &AccountId,
    change: impl Fn(&mut AccountConfig),
) -> Result<u64, SettingsError> {
    for _ in 0..5 {
        let mut config = services.configs.config(account).await?;
        change(&mut config);
        match services.configs.save_config(account, &config).await {
            Ok(version) => return Ok(version),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
