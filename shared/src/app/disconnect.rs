//! Disconnecting (SPEC §3.9): tokens deleted; the refresh token revoked only
//! when no other connection holds it; configuration, links and the exclusion
//! property kept; optionally the app uninstalled, never while shared.

use secrecy::ExposeSecret;
use tracing::{info, instrument, warn};

use super::Services;
use super::tokens::{TokenError, access_token};
use crate::domain::AccountId;
use crate::domain::connection::{Connection, ConnectionState};
use crate::ports::{HubSpotError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    #[error("this board account is not connected")]
    NotConnected,
    /// Uninstall refused: other board accounts still use the portal.
    #[error("other board accounts still use this HubSpot portal: {0:?}")]
    PortalShared(Vec<AccountId>),
    #[error("HubSpot did not uninstall the app: {0}")]
    UninstallFailed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn in_use(c: &Connection) -> bool {
    matches!(
        c.state,
        ConnectionState::Active | ConnectionState::Suspended
    )
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Disconnected {
    pub revoked: bool,
    pub uninstalled: bool,
}

#[instrument(skip_all, fields(account = %account, uninstall))]
pub async fn disconnect(
    services: &Services,
    account: &AccountId,
    uninstall: bool,
) -> Result<Disconnected, DisconnectError> {
    let connection = services
        .connections
        .get_connection(account)
        .await?
        .ok_or(DisconnectError::NotConnected)?;
    if connection.tokens.is_none() || connection.state == ConnectionState::Pending {
        return Err(DisconnectError::NotConnected);
    }
    let others: Vec<Connection> = services
        .connections
        .connections_of_portal(connection.portal_id)
        .await?
        .into_iter()
        .filter(|c| c.account_id != *account)
        .collect();
    let mut outcome = Disconnected::default();
    if uninstall {
        let sharing: Vec<AccountId> = others
            .iter()
            .filter(|c| in_use(c))
            .map(|c| c.account_id.clone())
            .collect();
        if !sharing.is_empty() {
            return Err(DisconnectError::PortalShared(sharing));
        }
        let token = access_token(services, account).await.map_err(|e| match e {
            TokenError::Store(s) => DisconnectError::Store(s),
            other => DisconnectError::UninstallFailed(other.to_string()),
        })?;
        services
            .hubspot
            .uninstall(token.expose_secret())
            .await
            .map_err(|e| DisconnectError::UninstallFailed(e.to_string()))?;
        outcome.uninstalled = true;
    }
    let tokens = connection.tokens.clone().expect("checked above");
    let shared_token = others.iter().any(|c| {
        c.tokens.as_ref().is_some_and(|t| {
            holds_same_refresh_token(
                services.cipher.as_ref(),
                (account, &tokens),
                (&c.account_id, t),
            )
        })
    });
    if !shared_token && !outcome.uninstalled {
        match services
            .cipher
            .open(&tokens.refresh_token, account.as_str())
        {
            Ok(refresh) => match services.hubspot.revoke(refresh.expose_secret()).await {
                Ok(()) | Err(HubSpotError::InvalidGrant(_)) => outcome.revoked = true,
                Err(e) => warn!(error = %e, "refresh token not revoked; it is deleted here anyway"),
            },
            Err(_) => warn!("sealed refresh token unreadable; deleted without revoking"),
        }
    }
    let mut current = connection;
    loop {
        current.tokens = None;
        current.state = if outcome.uninstalled {
            ConnectionState::Uninstalled
        } else {
            ConnectionState::Disconnected
        };
        match services.connections.save_connection(&current).await {
            Ok(_) => break,
            Err(StoreError::Conflict) => {
                current = services
                    .connections
                    .get_connection(account)
                    .await?
                    .ok_or(DisconnectError::NotConnected)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    info!(
        revoked = outcome.revoked,
        uninstalled = outcome.uninstalled,
        "disconnected"
    );
    Ok(outcome)
}

/// Whether two connections hold the same refresh token, whichever key sealed
/// each: their digests are compared (equal only when made with the same key),
/// then the tokens themselves, opened with the current or the previous key.
/// After a key rotation one connection's digest may be the new key's and the
/// other's the old one's; a shared token must still be found, or disconnecting
/// one account would revoke the token the other still uses.
pub fn holds_same_refresh_token(
    cipher: &dyn crate::ports::TokenCipher,
    (account, mine): (&AccountId, &crate::domain::connection::SealedTokens),
    (other, theirs): (&AccountId, &crate::domain::connection::SealedTokens),
) -> bool {
    if mine.refresh_token_digest == theirs.refresh_token_digest {
        return true;
    }
    match (
        cipher.open(&mine.refresh_token, account.as_str()),
        cipher.open(&theirs.refresh_token, other.as_str()),
    ) {
        (Ok(a), Ok(b)) => {
            use subtle::ConstantTimeEq;
            bool::from(
                a.expose_secret()
                    .as_bytes()
                    .ct_eq(b.expose_secret().as_bytes()),
            )
        }
        _ => false,
    }
}
