//! Catch-up (SPEC §11): after an outage longer than HubSpot's webhook retries, a
//! suspension, a reconnect, or on an administrator's request, the deals,
//! companies and contacts modified since the portal's watermark are read with
//! the search API (5/s) and processed as if notified.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;
use tracing::{info, instrument};

use super::Services;
use super::hubspot_to_board::{SyncFailure, sync_deals, sync_others};
use super::jobs::{Job, QueueMessage};
use super::tokens::{TokenError, access_token};
use crate::domain::connection::ConnectionState;
use crate::domain::{AccountId, HubSpotObjectType, PortalId};
use crate::ports::StoreError;

/// HubSpot's search allows 5 requests per second.
const SEARCH_PACE: Duration = Duration::from_millis(210);
/// At most this many objects per type and sweep (HubSpot's search pages 10,000 deep).
const MAX_OBJECTS: usize = 10_000;
/// How far before its watermark a sweep looks: CRM search indexes changes
/// seconds late and out of order.
pub const SWEEP_OVERLAP_MS: i64 = 120_000;

/// Without a watermark, a sweep looks back as far as HubSpot retries webhooks.
const DEFAULT_LOOKBACK: time::Duration = time::Duration::hours(24);

pub fn watermark_name(account: &AccountId, portal: PortalId) -> String {
    format!("catchup#{account}#{portal}")
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Swept {
    pub deals: usize,
    pub companies: usize,
    pub contacts: usize,
}

/// Queues a sweep for the account (the worker runs it).
pub async fn request(services: &Services, account: &AccountId) -> Result<(), StoreError> {
    let body = QueueMessage::to_body(&Job::CatchUp {
        account_id: account.clone(),
    });
    services.queue.send_batch(&[body]).await
}

/// Queues a sweep for every active connection; returns how many.
pub async fn request_all(services: &Services) -> Result<usize, StoreError> {
    let mut cursor = None;
    let mut queued = 0;
    loop {
        let page = services
            .connections
            .all_connections(500, cursor.as_ref())
            .await?;
        for connection in &page.items {
            reseal(services, connection).await;
        }
        let bodies: Vec<String> = page
            .items
            .iter()
            .filter(|c| c.state == ConnectionState::Active)
            .map(|c| {
                QueueMessage::to_body(&Job::CatchUp {
                    account_id: c.account_id.clone(),
                })
            })
            .collect();
        if !bodies.is_empty() {
            services.queue.send_batch(&bodies).await?;
            queued += bodies.len();
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(queued),
        }
    }
}

/// Starts the watermark at `now` if the account has none (a first connection
/// has nothing to catch up).
pub async fn start_watermark(
    services: &Services,
    account: &AccountId,
    portal: PortalId,
) -> Result<bool, StoreError> {
    let name = watermark_name(account, portal);
    if services.watermarks.watermark(&name).await?.is_some() {
        return Ok(false);
    }
    let now = services.clock.now();
    let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    services
        .watermarks
        .set_watermark(&name, &ms.to_string())
        .await?;
    Ok(true)
}

#[instrument(skip_all, fields(account = %account))]
pub async fn sweep(services: &Services, account: &AccountId) -> Result<Swept, SyncFailure> {
    let Some(connection) = services
        .connections
        .get_connection(account)
        .await?
        .filter(|c| c.state == ConnectionState::Active)
    else {
        return Ok(Swept::default());
    };
    let token = match access_token(services, account).await {
        Ok(t) => t,
        Err(TokenError::Unavailable(e)) => {
            return Err(SyncFailure::retry(
                crate::domain::Code::HubspotUnavailable,
                e,
            ));
        }
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(_) => return Ok(Swept::default()),
    };
    let hubspot =
        super::budgeted_hubspot::BudgetedHubSpot::new(services, &connection, token.expose_secret());
    let name = watermark_name(account, connection.portal_id);
    let now_ms = (services.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
    let since = services
        .watermarks
        .watermark(&name)
        .await?
        .and_then(|w| w.parse::<i64>().ok())
        .unwrap_or(now_ms - DEFAULT_LOOKBACK.whole_milliseconds() as i64);
    let mut newest = since;
    // CRM search indexes changes some seconds late and not in order: an object
    // changed before the newest one seen may appear only later. Each sweep
    // looks back this much before its watermark; what it finds again is
    // re-read, and re-applying what the baselines already hold writes nothing.
    let overlap = SWEEP_OVERLAP_MS;
    let mut swept = Swept::default();
    for kind in [
        HubSpotObjectType::Deal,
        HubSpotObjectType::Company,
        HubSpotObjectType::Contact,
    ] {
        let mut ids = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let result = hubspot
                .modified_since(kind, since - overlap, page.as_deref())
                .await
                .map_err(SyncFailure::from)?;
            ids.extend(result.ids);
            newest = newest.max(result.newest_ms.unwrap_or(since));
            tokio::time::sleep(SEARCH_PACE).await;
            match result.next {
                Some(next) if ids.len() < MAX_OBJECTS => page = Some(next),
                _ => break,
            }
        }
        for chunk in ids.chunks(100) {
            match kind {
                HubSpotObjectType::Deal => {
                    let deals: BTreeMap<u64, BTreeSet<String>> = chunk
                        .iter()
                        .map(|id| (*id, BTreeSet::from(["catch_up".to_owned()])))
                        .collect();
                    sync_deals(services, &connection, &deals, false).await?;
                    swept.deals += chunk.len();
                }
                HubSpotObjectType::Company => {
                    sync_others(
                        services,
                        &connection,
                        &chunk.iter().copied().collect(),
                        &BTreeSet::new(),
                        false,
                    )
                    .await?;
                    swept.companies += chunk.len();
                }
                HubSpotObjectType::Contact => {
                    sync_others(
                        services,
                        &connection,
                        &BTreeSet::new(),
                        &chunk.iter().copied().collect(),
                        false,
                    )
                    .await?;
                    swept.contacts += chunk.len();
                }
            }
        }
    }
    services
        .watermarks
        .set_watermark(&name, &newest.to_string())
        .await?;
    info!(
        deals = swept.deals,
        companies = swept.companies,
        contacts = swept.contacts,
        "caught up"
    );
    Ok(swept)
}

/// Re-seals a connection's tokens still sealed with the previous token key
/// (suspended connections never refresh, so nothing else would), so the
/// previous key can be removed once a whole hourly pass finds none: the
/// worker logs `tokens re-sealed` per connection and the runbook waits for
/// an hour without it.
pub async fn reseal(services: &Services, connection: &crate::domain::connection::Connection) {
    use secrecy::ExposeSecret;
    let Some(tokens) = &connection.tokens else {
        return;
    };
    let context = connection.account_id.as_str();
    let cipher = services.cipher.as_ref();
    if cipher.sealed_with_current(&tokens.refresh_token, context)
        && cipher.sealed_with_current(&tokens.access_token, context)
    {
        return;
    }
    let (Ok(access), Ok(refresh)) = (
        cipher.open(&tokens.access_token, context),
        cipher.open(&tokens.refresh_token, context),
    ) else {
        tracing::warn!(account = %connection.account_id, "tokens sealed with a removed key: the connection needs reconnecting");
        return;
    };
    let mut updated = connection.clone();
    updated.tokens = Some(crate::domain::connection::SealedTokens {
        access_token: cipher.seal(access.expose_secret(), context),
        refresh_token: cipher.seal(refresh.expose_secret(), context),
        refresh_token_digest: cipher.digest(refresh.expose_secret()),
        access_expires_at: tokens.access_expires_at,
    });
    match services.connections.save_connection(&updated).await {
        Ok(_) => {
            tracing::info!(account = %connection.account_id, "tokens re-sealed with the current key")
        }
        // Changed meanwhile (a refresh re-seals anyway): the next pass looks again.
        Err(error) => tracing::debug!(%error, "tokens not re-sealed now"),
    }
}
