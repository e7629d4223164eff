//! What the board → HubSpot paths share: their error, the history attempt of a link, saving
//! the link, the live connection and its bearer token, single writes and how a failure is recorded.

use std::collections::BTreeMap;

use tracing::warn;

use crate::app::Services;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::history::Direction;
use crate::domain::{AccountId, Code, HubSpotObjectType, Link, LinkState};
use crate::ports::HubSpotError;

/// What a project event did, for the logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Not linked, link not enabled, echo or unchanged: nothing written or recorded.
    Nothing,
    DealUpdated(Vec<&'static str>),
    NoteCreated(u64),
    Recorded(Code),
}

/// A history entry of this direction about `link`; callers set the outcome.
pub(super) fn attempt(link: &Link, name: Option<String>, config_version: u64) -> Attempt<'_> {
    Attempt {
        account: &link.account_id,
        direction: Direction::BoardToHubspot,
        hubspot: Some(link.hubspot),
        board: Some(link.board),
        name,
        code: None,
        action: None,
        detail: None,
        warnings: Vec::new(),
        config_version,
    }
}

pub(super) async fn save(services: &Services, link: &Link) -> Result<(), SyncFailure> {
    // A conflict (another worker saved the link first) passes through: the
    // worker redoes the event shortly.
    services.links.update_link(link).await?;
    Ok(())
}

/// The connection the event's account syncs through, if it syncs at all.
pub(super) async fn live_connection(
    services: &Services,
    account: &AccountId,
) -> Result<Option<Connection>, SyncFailure> {
    Ok(services
        .connections
        .get_connection(account)
        .await?
        .filter(|c| {
            matches!(
                c.state,
                ConnectionState::Active | ConnectionState::Suspended
            )
        }))
}

/// The account's access token for a read; failures are retried through the queue.
pub(super) async fn bearer(
    services: &Services,
    account: &AccountId,
) -> Result<String, SyncFailure> {
    crate::app::tokens::access_token(services, account)
        .await
        .map(|t| secrecy::ExposeSecret::expose_secret(&t).to_owned())
        .map_err(SyncFailure::from)
}

pub(super) enum WriteError {
    HubSpot(HubSpotError),
    Token(crate::app::tokens::TokenError),
    /// The link could not be saved before the write (another worker saved it
    /// first: the event is redone shortly).
    Store(crate::ports::StoreError),
}

pub(super) async fn write(
    services: &Services,
    connection: &Connection,
    link: &Link,
    properties: BTreeMap<String, String>,
) -> Result<(), WriteError> {
    let token = crate::app::tokens::access_token(services, &connection.account_id)
        .await
        .map_err(WriteError::Token)?;
    let token = secrecy::ExposeSecret::expose_secret(&token);
    crate::app::budgeted_hubspot::BudgetedHubSpot::new(services, connection, token)
        .batch_update(link.hubspot.object_type, &[(link.hubspot.id, properties)])
        .await
        .map_err(WriteError::HubSpot)
        .and_then(|failed| match failed.into_iter().next() {
            Some((_, error)) => Err(WriteError::HubSpot(error)),
            None => Ok(()),
        })
}

/// A refused or failed write, as the error catalog says (SPEC §6, §9).
pub(super) async fn failure(
    services: &Services,
    mut link: Link,
    name: Option<String>,
    error: WriteError,
    last_attempt: bool,
    config_version: u64,
) -> Result<Applied, SyncFailure> {
    let (code, detail) = match error {
        WriteError::Store(e) => return Err(SyncFailure::from(e)),
        WriteError::Token(e) => match e.code() {
            code @ (Code::HubspotAuthInvalid | Code::IntegrationSuspended) => (code, None),
            _ if !last_attempt => return Err(SyncFailure::from(e)),
            code => (code, None),
        },
        WriteError::HubSpot(HubSpotError::NotFound(_)) => {
            let code = match link.hubspot.object_type {
                HubSpotObjectType::Deal => Code::DealNotFound,
                HubSpotObjectType::Company => Code::CompanyNotFound,
                HubSpotObjectType::Contact => Code::ContactNotFound,
            };
            link.state = LinkState::Disabled { reason: code };
            save(services, &link).await?;
            (code, None)
        }
        WriteError::HubSpot(HubSpotError::Rejected { message, .. }) => {
            // HubSpot took none of it: nothing of ours is in flight there.
            link.sent_to_hubspot();
            save(services, &link).await?;
            (Code::HubspotApiError, Some(message))
        }
        // Counted toward suspension by the budgeted port that made the call.
        WriteError::HubSpot(HubSpotError::Unauthorized(message)) => {
            (Code::HubspotAuthInvalid, Some(message))
        }
        WriteError::HubSpot(HubSpotError::InvalidGrant(message)) => {
            (Code::HubspotAuthInvalid, Some(message))
        }
        WriteError::HubSpot(HubSpotError::Forbidden(message)) => {
            (Code::HubspotScopeInsufficient, Some(message))
        }
        // Our own budget: the change waits its turn, never recorded as a failure.
        WriteError::HubSpot(e @ HubSpotError::OverBudget { .. }) => {
            return Err(SyncFailure::from(e));
        }
        WriteError::HubSpot(
            e @ (HubSpotError::RateLimited { .. } | HubSpotError::Unavailable(_)),
        ) => {
            if !last_attempt {
                return Err(SyncFailure::from(e));
            }
            (Code::HubspotUnavailable, Some(e.to_string()))
        }
    };
    record(
        services,
        Attempt {
            code: Some(code),
            detail,
            ..attempt(&link, name, config_version)
        },
    )
    .await;
    warn!(deal = link.hubspot.id, code = %code, "board change not written to HubSpot");
    Ok(Applied::Recorded(code))
}
