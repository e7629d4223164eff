//! Companies and contacts: changes reach their linked board customers and contacts; merges move
//! links to the surviving record; a delivery notes the connection's last webhook.

use std::collections::BTreeSet;

use secrecy::ExposeSecret;
use tracing::{debug, info, warn};

use crate::app::Services;
use crate::app::budgeted_hubspot::BudgetedHubSpot;
use crate::app::failure::SyncFailure;
use crate::app::history::{Attempt, record};
use crate::app::tokens::{TokenError, access_token};
use crate::domain::connection::Connection;
use crate::domain::history::Direction;
use crate::domain::{HubSpotObjectType, HubSpotRef, customer_mapping};
use crate::ports::StoreError;

/// Linked companies and contacts of one account: read in batches, applied field by field.
pub async fn sync_others(
    services: &Services,
    connection: &Connection,
    companies: &BTreeSet<u64>,
    contacts: &BTreeSet<u64>,
    last_attempt: bool,
) -> Result<(), SyncFailure> {
    let token = match access_token(services, &connection.account_id).await {
        Ok(t) => t,
        Err(TokenError::Unavailable(e)) => {
            return Err(SyncFailure::retry(
                crate::domain::Code::HubspotUnavailable,
                e,
            ));
        }
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(_) => return Ok(()),
    };
    let token = token.expose_secret();
    // Only linked objects are synced: look the links up first (our store),
    // and spend HubSpot calls on those alone.
    let linked = |kind: HubSpotObjectType, ids: &BTreeSet<u64>| {
        let ids = ids.clone();
        async move {
            let mut out = BTreeSet::new();
            for id in ids {
                let reference = crate::domain::HubSpotRef {
                    object_type: kind,
                    id,
                };
                if services
                    .links
                    .link_by_hubspot(&connection.account_id, connection.portal_id, reference)
                    .await?
                    .is_some()
                {
                    out.insert(id);
                }
            }
            Ok::<_, StoreError>(out)
        }
    };
    let companies = &linked(HubSpotObjectType::Company, companies).await?;
    let contacts = &linked(HubSpotObjectType::Contact, contacts).await?;
    if companies.is_empty() && contacts.is_empty() {
        return Ok(());
    }
    let calls = (companies.len().div_ceil(100) + contacts.len().div_ceil(100)) as u32;
    let hubspot = BudgetedHubSpot::new(services, connection, token);
    hubspot
        .reserve(calls.max(1))
        .await
        .map_err(SyncFailure::from)?;
    let config = services.configs.config(&connection.account_id).await?;
    for (kind, ids) in [
        (HubSpotObjectType::Company, companies),
        (HubSpotObjectType::Contact, contacts),
    ] {
        if ids.is_empty() {
            continue;
        }
        let ids: Vec<u64> = ids.iter().copied().collect();
        let read_at = services.clock.now();
        let (found, missing) = hubspot
            .batch_read(kind, &ids, &customer_mapping::read_properties(kind))
            .await
            .map_err(SyncFailure::from)?;
        super::linked_others::sync(
            services,
            connection,
            &config,
            &hubspot,
            super::linked_others::Read {
                object_type: kind,
                found: &found,
                missing: &missing,
                read_at,
            },
            last_attempt,
        )
        .await?;
    }
    Ok(())
}

/// A merge moves the deal's link to the surviving deal (SPEC §5).
pub(super) async fn move_merged_links(
    services: &Services,
    connection: &Connection,
    kind: HubSpotObjectType,
    survivor: u64,
    merged: &[u64],
) -> Result<(), SyncFailure> {
    let account = &connection.account_id;
    let portal = connection.portal_id;
    let survivor_ref = HubSpotRef {
        object_type: kind,
        id: survivor,
    };
    for id in merged {
        let old = HubSpotRef {
            object_type: kind,
            id: *id,
        };
        let Some(link) = services.links.link_by_hubspot(account, portal, old).await? else {
            continue;
        };
        if link.state == crate::domain::LinkState::Archived
            || services
                .links
                .link_by_hubspot(account, portal, survivor_ref)
                .await?
                .is_some()
        {
            continue;
        }
        match services.links.move_link(&link, survivor).await {
            Ok(()) => {
                let config_version = services.configs.config(account).await?.version;
                record(
                    services,
                    Attempt {
                        account,
                        direction: Direction::HubspotToBoard,
                        hubspot: Some(survivor_ref),
                        board: Some(link.board),
                        name: None,
                        code: None,
                        action: Some("link_moved"),
                        detail: Some(format!(
                            "{} {id} は {survivor} に統合されました",
                            match kind {
                                HubSpotObjectType::Deal => "取引",
                                HubSpotObjectType::Company => "会社",
                                HubSpotObjectType::Contact => "コンタクト",
                            }
                        )),
                        warnings: Vec::new(),
                        config_version,
                    },
                )
                .await;
                info!(from = id, to = survivor, "link moved by a merge");
            }
            Err(crate::ports::ClaimError::Store(e)) => return Err(e.into()),
            Err(e) => warn!(error = %e, "merge: link not moved"),
        }
    }
    Ok(())
}

/// Records when the portal last sent webhooks (the status shows it); at most
/// once a minute per connection, so a burst of deliveries is not a burst of writes.
pub(super) async fn note_webhook(services: &Services, connection: &Connection) {
    let now = services.clock.now();
    if connection
        .last_webhook_at
        .is_some_and(|at| now - at < time::Duration::minutes(1))
    {
        return;
    }
    let mut updated = connection.clone();
    updated.last_webhook_at = Some(now);
    if let Err(e) = services.connections.save_connection(&updated).await {
        debug!(error = %e, "last webhook time not recorded (changed meanwhile)");
    }
}
