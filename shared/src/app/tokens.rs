//! Access tokens (SPEC §3.7–3.8): refreshed ahead of expiry, never on a 401;
//! one refresh at a time per connection across every worker (a lease in the
//! store; the others re-read); authentication failures counted toward suspension.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tracing::{info, instrument, warn};

use super::Services;
use crate::domain::connection::{Connection, ConnectionState, SealedTokens};
use crate::domain::{AccountId, Code};
use crate::ports::{HubSpotError, Notification, StoreError, TokenGrant};

/// Refresh when less than this is left of the access token's 30 minutes.
pub const REFRESH_AHEAD: time::Duration = time::Duration::minutes(5);
/// At most one authentication failure counts per this window.
pub const FAILURE_WINDOW: time::Duration = time::Duration::minutes(10);
const LEASE: Duration = Duration::from_secs(30);
/// How long a worker that lost the refresh race waits for the winner's result.
/// How long a caller waits for another's refresh: a pacing step; then the
/// caller's message is retried by the queue (or its request answers 503).
const WAIT_FOR_REFRESH: Duration = super::budget::PACE_STEP;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no usable connection")]
    NotConnected,
    #[error("the connection is suspended")]
    Suspended,
    /// The refresh token was refused: counted toward suspension.
    #[error("HubSpot refused the refresh token")]
    AuthInvalid,
    #[error("HubSpot unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    /// The catalog code an attempt that needed a token records.
    pub fn code(&self) -> Code {
        match self {
            TokenError::Suspended => Code::IntegrationSuspended,
            TokenError::AuthInvalid => Code::HubspotAuthInvalid,
            TokenError::Unavailable(_) => Code::HubspotUnavailable,
            TokenError::NotConnected | TokenError::Store(_) => Code::InternalError,
        }
    }
}

/// Seals a grant for an account's record.
pub fn seal_grant(services: &Services, account: &AccountId, grant: &TokenGrant) -> SealedTokens {
    let context = account.as_str();
    SealedTokens {
        access_token: services
            .cipher
            .seal(grant.access_token.expose_secret(), context),
        refresh_token: services
            .cipher
            .seal(grant.refresh_token.expose_secret(), context),
        refresh_token_digest: services.cipher.digest(grant.refresh_token.expose_secret()),
        access_expires_at: services.clock.now() + time::Duration::seconds(grant.expires_in_seconds),
    }
}

fn usable(connection: &Connection) -> Result<&SealedTokens, TokenError> {
    match connection.state {
        ConnectionState::Active => connection.tokens.as_ref().ok_or(TokenError::NotConnected),
        ConnectionState::Suspended => Err(TokenError::Suspended),
        _ => Err(TokenError::NotConnected),
    }
}

fn open(
    services: &Services,
    connection: &Connection,
    sealed: &str,
) -> Result<SecretString, TokenError> {
    services
        .cipher
        .open(sealed, connection.account_id.as_str())
        .map_err(|_| {
            TokenError::Store(StoreError::Unavailable(anyhow::anyhow!(
                "sealed token unreadable"
            )))
        })
}

/// A valid access token for the account's connection, refreshed if it is near expiry.
#[instrument(skip_all, fields(account = %account))]
pub async fn access_token(
    services: &Services,
    account: &AccountId,
) -> Result<SecretString, TokenError> {
    let connection = services
        .connections
        .get_connection(account)
        .await?
        .ok_or(TokenError::NotConnected)?;
    let tokens = usable(&connection)?;
    let now = services.clock.now();
    if tokens.access_expires_at - now > REFRESH_AHEAD {
        return open(services, &connection, &tokens.access_token);
    }
    let lease = format!("refresh#{account}");
    let holder = uuid::Uuid::new_v4().to_string();
    if services
        .leases
        .try_acquire(&lease, &holder, now, LEASE)
        .await?
    {
        let result = refresh(services, account).await;
        if let Err(e) = services.leases.release(&lease, &holder).await {
            warn!(error = %e, "refresh lease not released; it expires by itself");
        }
        return result;
    }
    wait_for_refresh(services, account, tokens.access_expires_at).await
}

/// The lease holder: re-read (someone may just have refreshed), then refresh.
async fn refresh(services: &Services, account: &AccountId) -> Result<SecretString, TokenError> {
    let mut connection = services
        .connections
        .get_connection(account)
        .await?
        .ok_or(TokenError::NotConnected)?;
    let tokens = usable(&connection)?.clone();
    let now = services.clock.now();
    if tokens.access_expires_at - now > REFRESH_AHEAD {
        return open(services, &connection, &tokens.access_token);
    }
    let refresh_token = open(services, &connection, &tokens.refresh_token)?;
    match services
        .hubspot
        .refresh(refresh_token.expose_secret())
        .await
    {
        Ok(grant) => {
            let sealed = seal_grant(services, account, &grant);
            loop {
                connection.tokens = Some(sealed.clone());
                connection.consecutive_auth_failures = 0;
                match services.connections.save_connection(&connection).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict) => {
                        connection = services
                            .connections
                            .get_connection(account)
                            .await?
                            .ok_or(TokenError::NotConnected)?;
                        usable(&connection)?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            info!("access token refreshed");
            Ok(grant.access_token)
        }
        Err(HubSpotError::InvalidGrant(_) | HubSpotError::Unauthorized(_)) => {
            record_auth_failure(services, account).await?;
            Err(TokenError::AuthInvalid)
        }
        Err(other) => {
            warn!(error = %other, "refresh failed");
            // Refreshing ahead failed, but the current token may still work for a while.
            if tokens.access_expires_at > now {
                open(services, &connection, &tokens.access_token)
            } else {
                Err(TokenError::Unavailable(other.to_string()))
            }
        }
    }
}

/// A worker that lost the race re-reads until the winner's tokens appear.
async fn wait_for_refresh(
    services: &Services,
    account: &AccountId,
    old_expiry: OffsetDateTime,
) -> Result<SecretString, TokenError> {
    let started = std::time::Instant::now();
    loop {
        let connection = services
            .connections
            .get_connection(account)
            .await?
            .ok_or(TokenError::NotConnected)?;
        let tokens = usable(&connection)?;
        if tokens.access_expires_at != old_expiry {
            return open(services, &connection, &tokens.access_token);
        }
        if started.elapsed() > WAIT_FOR_REFRESH {
            return if tokens.access_expires_at > services.clock.now() {
                open(services, &connection, &tokens.access_token)
            } else {
                Err(TokenError::Unavailable(
                    "token refresh did not finish in time".into(),
                ))
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts an authentication failure (refresh refused, or a 401 with a fresh
/// token): at most one per 10 minutes, suspending at the configured threshold.
#[instrument(skip_all, fields(account = %account))]
pub async fn record_auth_failure(
    services: &Services,
    account: &AccountId,
) -> Result<(), StoreError> {
    for _ in 0..5 {
        let Some(mut connection) = services.connections.get_connection(account).await? else {
            return Ok(());
        };
        let now = services.clock.now();
        if connection
            .last_auth_failure_at
            .is_some_and(|at| now - at < FAILURE_WINDOW)
        {
            return Ok(());
        }
        connection.consecutive_auth_failures += 1;
        connection.last_auth_failure_at = Some(now);
        let suspend = connection.state == ConnectionState::Active
            && connection.consecutive_auth_failures >= services.settings.suspend_after;
        if suspend {
            connection.state = ConnectionState::Suspended;
        }
        match services.connections.save_connection(&connection).await {
            Ok(_) => {
                warn!(
                    failures = connection.consecutive_auth_failures,
                    suspend, "authentication failure counted"
                );
                if suspend {
                    notify(
                        services,
                        account,
                        "suspended",
                        Code::IntegrationSuspended.entry().message_ja,
                        Code::IntegrationSuspended.entry().message_en,
                    )
                    .await;
                }
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// What a HubSpot call with the account's token says about the token: a 401
/// counts toward suspension (at most once per 10 minutes), a call that
/// authenticated resets the count (read only when the connection has one).
/// Failures to record are logged: the call's own outcome stands.
pub async fn note_auth<T>(
    services: &Services,
    connection: &Connection,
    result: &Result<T, HubSpotError>,
) {
    let recorded = match result {
        Err(HubSpotError::Unauthorized(_)) => {
            record_auth_failure(services, &connection.account_id).await
        }
        Ok(_) if connection.consecutive_auth_failures > 0 => {
            record_auth_success(services, &connection.account_id).await
        }
        _ => Ok(()),
    };
    if let Err(error) = recorded {
        warn!(%error, account = %connection.account_id, "authentication outcome not recorded");
    }
}

/// A call that authenticated resets the count.
pub async fn record_auth_success(
    services: &Services,
    account: &AccountId,
) -> Result<(), StoreError> {
    for _ in 0..5 {
        let Some(mut connection) = services.connections.get_connection(account).await? else {
            return Ok(());
        };
        if connection.consecutive_auth_failures == 0 || connection.state != ConnectionState::Active
        {
            return Ok(());
        }
        connection.consecutive_auth_failures = 0;
        connection.last_auth_failure_at = None;
        match services.connections.save_connection(&connection).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict)
}

/// Records a notice for the account's administrators.
pub async fn notify(
    services: &Services,
    account: &AccountId,
    kind: &str,
    message: &str,
    message_en: &str,
) {
    let notification = Notification {
        id: uuid::Uuid::new_v4().simple().to_string(),
        account_id: account.clone(),
        occurred_at: services.clock.now(),
        kind: kind.to_owned(),
        message: message.to_owned(),
        message_en: message_en.to_owned(),
    };
    info!(kind, "administrators notified");
    if let Err(e) = services.notifications.notify(&notification).await {
        warn!(error = %e, kind, "notification not stored");
    }
}
