//! Uninstalls done inside HubSpot (SPEC §3.9), learnt from the app lifecycle
//! events of HubSpot's webhooks journal, polled on a schedule.

use secrecy::ExposeSecret;
use tracing::{info, instrument, warn};

use super::Services;
use super::tokens::notify;
use crate::domain::connection::ConnectionState;
use crate::ports::{HubSpotError, JournalStart, LifecycleEvent, StoreError};

const OFFSET: &str = "hubspot-journal-offset";
pub const UNINSTALLED_JA: &str = "HubSpot側でアンインストールされました";
pub const UNINSTALLED_EN: &str = "The app was uninstalled in HubSpot.";

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    HubSpot(#[from] HubSpotError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks that the app's lifecycle subscription exists (created once per app).
const SUBSCRIBED: &str = "hubspot-journal-lifecycle-subscription";
/// Entries read per poll at most; the next poll goes on from the stored offset.
const ENTRIES_PER_POLL: usize = 200;

/// Makes sure the app's `APP_LIFECYCLE_EVENT` subscription exists: lifecycle
/// entries appear in the journal only after it does. Once per app (a marker
/// in the store), idempotent on HubSpot's side too.
pub async fn ensure_subscription(services: &Services, app_token: &str) -> Result<(), PollError> {
    if services.watermarks.watermark(SUBSCRIBED).await?.is_some() {
        return Ok(());
    }
    services
        .hubspot
        .ensure_lifecycle_subscription(app_token)
        .await?;
    services
        .watermarks
        .set_watermark(SUBSCRIBED, "APP_LIFECYCLE_EVENT")
        .await?;
    info!("HubSpot app lifecycle subscription in place");
    Ok(())
}

/// Reads the journal from the stored offset (from the earliest entry when
/// there is none, or when HubSpot no longer keeps it) and marks the
/// connections of every uninstalled portal `uninstalled`. Applying an entry
/// twice changes nothing. Returns how many connections changed.
#[instrument(skip_all)]
pub async fn poll(services: &Services) -> Result<usize, PollError> {
    let token = services.hubspot.app_token().await?;
    let token = token.expose_secret();
    ensure_subscription(services, token).await?;
    let mut offset = services
        .watermarks
        .watermark(OFFSET)
        .await?
        .filter(|o| !o.is_empty());
    let mut changed = 0;
    for _ in 0..ENTRIES_PER_POLL {
        let start = match &offset {
            Some(o) => JournalStart::After(o),
            None => JournalStart::Earliest,
        };
        let entry = match services.hubspot.journal_entry(token, start).await {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(HubSpotError::NotFound(_)) if offset.is_some() => {
                // Kept about 3 days: replay what HubSpot still has.
                warn!(offset = ?offset, "journal offset expired; reading again from the earliest entry");
                offset = None;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for event in entry.events.iter().filter(|e| e.uninstalled) {
            changed += uninstalled(services, event).await?;
        }
        services
            .watermarks
            .set_watermark(OFFSET, &entry.offset)
            .await?;
        offset = Some(entry.offset);
    }
    Ok(changed)
}

/// Marks the portal's active or suspended connections uninstalled, unless
/// they were connected after the uninstall (a replayed entry).
async fn uninstalled(services: &Services, event: &LifecycleEvent) -> Result<usize, PollError> {
    let mut changed = 0;
    for mut connection in services
        .connections
        .connections_of_portal(event.portal_id)
        .await?
    {
        if !matches!(
            connection.state,
            ConnectionState::Active | ConnectionState::Suspended
        ) {
            continue;
        }
        let connected_ms = connection
            .connected_at
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
        if let (Some(connected), Some(occurred)) = (connected_ms, event.occurred_at_ms)
            && connected > occurred
        {
            continue;
        }
        let account = connection.account_id.clone();
        connection.state = ConnectionState::Uninstalled;
        connection.tokens = None;
        match services.connections.save_connection(&connection).await {
            Ok(_) => {
                changed += 1;
                info!(account = %account, portal = %event.portal_id, "uninstalled in HubSpot");
                notify(
                    services,
                    &account,
                    "uninstalled",
                    UNINSTALLED_JA,
                    UNINSTALLED_EN,
                )
                .await;
            }
            // Changed meanwhile: the offset is not stored, so the entry is read again.
            Err(StoreError::Conflict) => {
                warn!(account = %account, "connection changed meanwhile");
                return Err(StoreError::Conflict.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(changed)
}
