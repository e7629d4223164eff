//! Uninstalls done inside HubSpot (SPEC §3.9), learnt from the app lifecycle
//! events of HubSpot's webhooks journal, polled on a schedule.

use secrecy::ExposeSecret;
use tracing::{info, instrument, warn};

use super::Services;
use super::tokens::notify;
use crate::domain::connection::ConnectionState;
use crate::ports::{HubSpotError, StoreError};

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

/// Reads the journal from the stored offset and marks the connections of every
/// uninstalled portal `uninstalled`. Returns how many connections changed.
#[instrument(skip_all)]
pub async fn poll(services: &Services) -> Result<usize, PollError> {
    let token = services.hubspot.app_token().await?;
    let mut offset = services
        .watermarks
        .watermark(OFFSET)
        .await?
        .filter(|o| !o.is_empty());
    let mut changed = 0;
    loop {
        let page = services
            .hubspot
            .lifecycle_journal(token.expose_secret(), offset.as_deref())
            .await?;
        for event in page.events.iter().filter(|e| e.uninstalled) {
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
                    // Changed meanwhile: the next poll re-reads the same page.
                    Err(StoreError::Conflict) => {
                        warn!(account = %account, "connection changed meanwhile")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let advanced = page.offset.is_some() && page.offset != offset;
        if let Some(next) = &page.offset {
            services.watermarks.set_watermark(OFFSET, next).await?;
        }
        if !advanced || page.events.is_empty() {
            return Ok(changed);
        }
        offset = page.offset;
    }
}
