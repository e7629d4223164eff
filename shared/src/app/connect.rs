//! Connecting a board account to a portal (SPEC §3.1–3.5): the authorize URL
//! with a signed single-use state, the OAuth callback that stores a pending
//! result, and the confirmation that binds it to the board session.

use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};
use url::Url;

use super::Services;
use super::tokens::seal_grant;
use crate::config::HUBSPOT_SCOPES;
use crate::domain::connection::{
    AuthorizedBy, Connection, ConnectionState, ExclusionProperty, SealedTokens,
};
use crate::domain::{AccountId, Code, LinkState, PortalId, UserId};
use crate::ports::{Cursor, HubSpotError, OneTimeKind, PropertyState, StoreError};

/// How long a state or a confirmation lives.
pub const ONE_TIME_TTL: time::Duration = time::Duration::minutes(10);

/// Who started the flow: bound into the state, checked at confirmation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Starter {
    pub account_id: AccountId,
    pub user_id: UserId,
    #[serde(default)]
    pub account_name: Option<String>,
}

/// The OAuth result waiting for confirmation; its tokens are sealed.
#[derive(Clone, Serialize, Deserialize)]
struct Pending {
    starter: Starter,
    portal_id: PortalId,
    hub_domain: Option<String>,
    authorized_by: Option<AuthorizedBy>,
    scopes: Vec<String>,
    tokens: SealedTokens,
}

fn random_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

fn pending_marker(account: &AccountId) -> String {
    format!("pending#{account}")
}

/// `POST /v1/hubspot/connection/authorize`: where to send the admin.
#[instrument(skip_all, fields(account = %starter.account_id))]
pub async fn authorize_url(services: &Services, starter: &Starter) -> Result<String, StoreError> {
    let nonce = random_token();
    let state = format!("{nonce}.{}", services.cipher.sign(&nonce));
    let payload = serde_json::to_string(starter).expect("starter serializes");
    let expires = services.clock.now() + ONE_TIME_TTL;
    services
        .one_time_tokens
        .put_token(OneTimeKind::OAuthState, &state, &payload, expires)
        .await?;
    let mut url = Url::parse(&services.settings.hubspot_authorize_url)
        .map_err(|e| StoreError::Unavailable(anyhow::anyhow!("HUBSPOT_AUTHORIZE_URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("client_id", &services.settings.hubspot_client_id)
        .append_pair("redirect_uri", &services.settings.oauth_redirect_uri())
        .append_pair("scope", &HUBSPOT_SCOPES.join(" "))
        .append_pair("state", &state);
    Ok(url.into())
}

/// Where the callback sends the browser: board's settings screen, always.
pub enum CallbackOutcome {
    Confirm { confirmation: String },
    Failed(Code),
}

/// `GET /oauth/callback`.
#[instrument(skip_all)]
pub async fn callback(
    services: &Services,
    state: &str,
    code: Option<&str>,
    error: Option<&str>,
) -> CallbackOutcome {
    match complete(services, state, code, error).await {
        Ok(confirmation) => CallbackOutcome::Confirm { confirmation },
        Err(code) => {
            info!(code = %code, "OAuth flow failed");
            CallbackOutcome::Failed(code)
        }
    }
}

async fn complete(
    services: &Services,
    state: &str,
    code: Option<&str>,
    error: Option<&str>,
) -> Result<String, Code> {
    // A forged state is refused before any store access.
    let (nonce, signature) = state.split_once('.').ok_or(Code::OauthStateInvalid)?;
    if !services.cipher.verify(nonce, signature) {
        return Err(Code::OauthStateInvalid);
    }
    // Single use: taken whatever happens next.
    let payload = services
        .one_time_tokens
        .take_token(OneTimeKind::OAuthState, state, services.clock.now())
        .await
        .map_err(|e| {
            warn!(error = %e, "state store unavailable");
            Code::OauthExchangeFailed
        })?
        .ok_or(Code::OauthStateInvalid)?;
    let starter: Starter = serde_json::from_str(&payload).map_err(|_| Code::OauthStateInvalid)?;
    if error.is_some() {
        return Err(Code::OauthDenied);
    }
    let code = code
        .filter(|c| !c.is_empty())
        .ok_or(Code::OauthExchangeFailed)?;
    let grant = services
        .hubspot
        .exchange_code(code, &services.settings.oauth_redirect_uri())
        .await
        .map_err(|e| {
            warn!(error = %e, "code exchange failed");
            Code::OauthExchangeFailed
        })?;
    let info = {
        use secrecy::ExposeSecret;
        services
            .hubspot
            .introspect(grant.access_token.expose_secret())
            .await
            .map_err(|e| {
                warn!(error = %e, "introspection failed");
                Code::OauthExchangeFailed
            })?
    };
    let missing: Vec<&str> = HUBSPOT_SCOPES
        .iter()
        .copied()
        .filter(|s| !info.scopes.iter().any(|g| g == s))
        .collect();
    if !missing.is_empty() {
        warn!(?missing, "HubSpot granted fewer scopes than required");
        return Err(Code::OauthScopeMissing);
    }
    let pending = Pending {
        tokens: seal_grant(services, &starter.account_id, &grant),
        portal_id: info.portal_id,
        hub_domain: info.hub_domain,
        authorized_by: match (info.user_id, info.user_email) {
            (Some(user_id), Some(email)) => Some(AuthorizedBy { user_id, email }),
            _ => None,
        },
        scopes: info.scopes,
        starter,
    };
    let confirmation = random_token();
    let expires = services.clock.now() + ONE_TIME_TTL;
    let body = serde_json::to_string(&pending).map_err(|_| Code::InternalError)?;
    services
        .one_time_tokens
        .put_token(OneTimeKind::Confirmation, &confirmation, &body, expires)
        .await
        .map_err(|_| Code::OauthExchangeFailed)?;
    let _ = services
        .watermarks
        .set_watermark(
            &pending_marker(&pending.starter.account_id),
            &expires.unix_timestamp().to_string(),
        )
        .await;
    info!(account = %pending.starter.account_id, portal = %pending.portal_id, "OAuth completed; waiting for confirmation");
    Ok(confirmation)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// Unknown, expired, or for another account or user (then discarded).
    #[error("the confirmation is invalid or expired")]
    Invalid,
    /// Connected to another portal; confirm with `archive_previous_portal`.
    #[error("this board account is connected to portal {0}")]
    PortalConflict(PortalId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `POST /v1/hubspot/connection/confirm`, by the user who started, with the same account.
#[instrument(skip_all, fields(account = %caller.account_id))]
pub async fn confirm(
    services: &Services,
    caller: &Starter,
    confirmation: &str,
    archive_previous_portal: bool,
) -> Result<Connection, ConfirmError> {
    let now = services.clock.now();
    let payload = services
        .one_time_tokens
        .peek_token(OneTimeKind::Confirmation, confirmation, now)
        .await?
        .ok_or(ConfirmError::Invalid)?;
    let pending: Pending = serde_json::from_str(&payload).map_err(|_| ConfirmError::Invalid)?;
    if pending.starter.account_id != caller.account_id || pending.starter.user_id != caller.user_id
    {
        warn!(starter = %pending.starter.account_id, "confirmation presented by another account or user; discarded");
        services
            .one_time_tokens
            .take_token(OneTimeKind::Confirmation, confirmation, now)
            .await?;
        clear_pending(services, &pending.starter.account_id).await;
        return Err(ConfirmError::Invalid);
    }
    let existing = services
        .connections
        .get_connection(&caller.account_id)
        .await?;
    if let Some(previous) = existing
        .as_ref()
        .filter(|c| c.portal_id != pending.portal_id && c.state != ConnectionState::Pending)
        && !archive_previous_portal
    {
        return Err(ConfirmError::PortalConflict(previous.portal_id));
    }
    // From here the confirmation is spent: one of several concurrent confirms wins.
    if services
        .one_time_tokens
        .take_token(OneTimeKind::Confirmation, confirmation, now)
        .await?
        .is_none()
    {
        return Err(ConfirmError::Invalid);
    }
    clear_pending(services, &caller.account_id).await;
    if let Some(previous) = existing
        .as_ref()
        .filter(|c| c.portal_id != pending.portal_id)
    {
        archive_links(services, &caller.account_id, previous.portal_id).await?;
    }
    let exclusion = ensure_exclusion_property(services, &pending).await;
    let zone = portal_zone(services, &pending).await;
    let mut connection = existing
        .clone()
        .unwrap_or_else(|| Connection::pending(caller.account_id.clone(), pending.portal_id));
    loop {
        connection.portal_id = pending.portal_id;
        connection.state = ConnectionState::Active;
        connection.hub_domain = pending.hub_domain.clone();
        connection.authorized_by = pending.authorized_by.clone();
        connection.scopes = pending.scopes.clone();
        connection.connected_at = Some(now);
        connection.tokens = Some(pending.tokens.clone());
        connection.consecutive_auth_failures = 0;
        connection.last_auth_failure_at = None;
        connection.account_name = caller
            .account_name
            .clone()
            .or(connection.account_name.take());
        connection.exclusion_property = Some(exclusion.clone());
        connection.utc_offset_seconds = zone.or(connection.utc_offset_seconds);
        match services.connections.save_connection(&connection).await {
            Ok(revision) => {
                connection.revision = revision;
                break;
            }
            Err(StoreError::Conflict) => {
                connection = services
                    .connections
                    .get_connection(&caller.account_id)
                    .await?
                    .unwrap_or_else(|| {
                        Connection::pending(caller.account_id.clone(), pending.portal_id)
                    });
            }
            Err(e) => return Err(e.into()),
        }
    }
    // First connection: changes from now on. Reconnecting: catch up what happened meanwhile.
    if !super::catch_up::start_watermark(services, &caller.account_id, connection.portal_id).await?
    {
        super::catch_up::request(services, &caller.account_id).await?;
    }
    info!(portal = %connection.portal_id, "connection active");
    Ok(connection)
}

async fn clear_pending(services: &Services, account: &AccountId) {
    let _ = services
        .watermarks
        .set_watermark(&pending_marker(account), "")
        .await;
}

/// Whether a confirmation is waiting for this account (for the status).
pub async fn has_pending(services: &Services, account: &AccountId) -> bool {
    let Ok(Some(value)) = services
        .watermarks
        .watermark(&pending_marker(account))
        .await
    else {
        return false;
    };
    value
        .parse::<i64>()
        .is_ok_and(|until| until > services.clock.now().unix_timestamp())
}

/// The portal's UTC offset from its account details (dates follow the portal's
/// day); `None` when HubSpot cannot tell now (Asia/Tokyo is used meanwhile).
async fn portal_zone(services: &Services, pending: &Pending) -> Option<i32> {
    use secrecy::ExposeSecret;
    let access = services
        .cipher
        .open(
            &pending.tokens.access_token,
            pending.starter.account_id.as_str(),
        )
        .ok()?;
    match services.crm.account_details(access.expose_secret()).await {
        Ok(account) => {
            info!(time_zone = %account.time_zone, offset_ms = account.utc_offset_ms, "portal time zone");
            i32::try_from(account.utc_offset_ms / 1000).ok()
        }
        Err(error) => {
            warn!(%error, "portal time zone not read; Asia/Tokyo until the next connection");
            None
        }
    }
}

async fn ensure_exclusion_property(services: &Services, pending: &Pending) -> ExclusionProperty {
    let access = match services.cipher.open(
        &pending.tokens.access_token,
        pending.starter.account_id.as_str(),
    ) {
        Ok(token) => token,
        Err(_) => {
            return ExclusionProperty::Unknown {
                reason: "tokens could not be opened".into(),
            };
        }
    };
    use secrecy::ExposeSecret;
    match services
        .hubspot
        .ensure_exclusion_property(access.expose_secret())
        .await
    {
        Ok(PropertyState::Ready) => ExclusionProperty::Ready,
        Ok(PropertyState::WrongType { found }) => ExclusionProperty::WrongType { found },
        Err(
            error @ (HubSpotError::Forbidden(_)
            | HubSpotError::Unavailable(_)
            | HubSpotError::RateLimited { .. }),
        ) => {
            warn!(%error, "exclusion property not verified");
            ExclusionProperty::Unknown {
                reason: error.to_string(),
            }
        }
        Err(error) => ExclusionProperty::Unknown {
            reason: error.to_string(),
        },
    }
}

/// Connecting another portal archives the previous portal's links (and drafts,
/// once they exist) so nothing syncs against the old portal.
async fn archive_links(
    services: &Services,
    account: &AccountId,
    portal: PortalId,
) -> Result<(), StoreError> {
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = services
            .links
            .links_of_account(account, portal, 200, cursor.as_ref())
            .await?;
        for mut link in page.items {
            if link.state != LinkState::Archived {
                link.state = LinkState::Archived;
                match services.links.update_link(&link).await {
                    Ok(_) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}
