//! Planned deal writes sent as one HubSpot batch update: conflicts resolved against a batch
//! read first (later wins), a 207 or a failed batch bisected to the inputs at fault, baselines and
//! history settled per deal.

use std::collections::BTreeMap;

use crate::app::Services;
use crate::app::history::{Attempt, record};
use crate::domain::connection::Connection;
use crate::domain::mapping::{CLOSE_DATE, NAME, STAGE};
use crate::domain::{AccountId, Code, HubSpotObjectType, Link};
use crate::ports::HubSpotError;

use super::outcome::*;
use crate::app::failure::SyncFailure;

/// A deal write a project event needs, to be sent with others in one batch call.
pub struct PendingDealWrite {
    pub(super) connection: Connection,
    pub(super) link: Link,
    pub(super) properties: BTreeMap<String, String>,
    pub(super) fields: Vec<&'static str>,
    pub(super) warnings: Vec<String>,
    pub(super) baselines: Vec<(&'static str, Option<String>, Option<String>)>,
    pub(super) name: Option<String>,
    pub(super) config_version: u64,
    /// When board's change happened; `None`: board's value wins any conflict.
    pub(super) occurred_at: Option<time::OffsetDateTime>,
    /// Fields both sides changed since the baseline (recorded as `conflict_overwritten`).
    pub(super) conflicts: Vec<String>,
}

impl PendingDealWrite {
    pub fn account(&self) -> &AccountId {
        &self.link.account_id
    }

    pub fn with_occurred_at(mut self, at: Option<time::OffsetDateTime>) -> Self {
        self.occurred_at = at;
        self
    }
}

/// Deal properties both sides edit, with their baseline keys.
pub(super) const TWO_WAY: [(&str, &str); 3] = [
    ("dealname", NAME),
    ("dealstage", STAGE),
    ("closedate", CLOSE_DATE),
];

/// Where both sides changed a field since the baseline, the later change wins
/// (SPEC §11): HubSpot's later change drops the field from our write (the
/// HubSpot → board side applies it); board's later change overwrites HubSpot's.
pub(super) fn resolve_conflicts(pending: &mut PendingDealWrite, deal: &crate::ports::CrmObject) {
    let current = crate::domain::mapping::deal_values(
        deal.get("dealname"),
        deal.get("pipeline"),
        deal.get("dealstage"),
        deal.get("closedate"),
        pending.connection.zone(),
    );
    let modified = deal.get("hs_lastmodifieddate").and_then(|v| {
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()
    });
    for (property, key) in TWO_WAY {
        if !pending.properties.contains_key(property) {
            continue;
        }
        let now_in_hubspot = current
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.clone());
        let wanted = pending
            .baselines
            .iter()
            .find(|(k, _, _)| *k == key)
            .and_then(|(_, _, hubspot)| hubspot.clone());
        if wanted.is_some() && now_in_hubspot == wanted {
            // HubSpot already has board's value (typically board's echo of our
            // own HubSpot → board write, planned on a link read before that
            // write was saved): writing it again could overwrite a change made
            // since the read. The baseline still moves to the agreed value.
            pending.properties.remove(property);
            pending.fields.retain(|f| *f != property);
            continue;
        }
        let baseline = pending
            .link
            .baseline
            .get(key)
            .and_then(|b| b.hubspot.clone());
        if now_in_hubspot == baseline {
            continue;
        }
        let hubspot_later = matches!((modified, pending.occurred_at), (Some(m), Some(b)) if m > b);
        if hubspot_later {
            pending.properties.remove(property);
            pending.fields.retain(|f| *f != property);
            pending.baselines.retain(|(k, _, _)| *k != key);
            pending
                .conflicts
                .push(format!("{property}: HubSpotの後の変更を優先"));
        } else {
            pending
                .conflicts
                .push(format!("{property}: boardの後の変更を優先"));
        }
    }
}

/// Sends the deal writes of several project events: per account, in batch calls
/// of at most 100 within the portal's budget; a refused batch (HubSpot's batch
/// update is all-or-nothing) is bisected to the record at fault. One result per
/// write, in order.
pub async fn write_deals(
    services: &Services,
    writes: Vec<(PendingDealWrite, bool)>,
) -> Vec<Result<Applied, SyncFailure>> {
    let mut writes = writes;
    let mut outcomes: Vec<Option<Result<(), WriteError>>> = writes.iter().map(|_| None).collect();
    let mut accounts: Vec<AccountId> = writes.iter().map(|(w, _)| w.account().clone()).collect();
    accounts.sort();
    accounts.dedup();
    for account in accounts {
        let indexes: Vec<usize> = (0..writes.len())
            .filter(|i| writes[*i].0.account() == &account)
            .collect();
        let token = match crate::app::tokens::access_token(services, &account).await {
            Ok(t) => secrecy::ExposeSecret::expose_secret(&t).to_owned(),
            Err(_) => {
                // Each write asks again, so each failure is classified on its own.
                for i in indexes {
                    let (w, _) = &writes[i];
                    outcomes[i] =
                        Some(write(services, &w.connection, &w.link, w.properties.clone()).await);
                }
                continue;
            }
        };
        let portal = writes[indexes[0]].0.connection.portal_id;
        for chunk in indexes.chunks(crate::ports::HUBSPOT_BATCH_LIMIT) {
            // The deals as they are now, for fields both sides may have changed.
            let two_way: Vec<u64> = chunk
                .iter()
                .filter(|i| {
                    TWO_WAY
                        .iter()
                        .any(|(p, _)| writes[**i].0.properties.contains_key(*p))
                })
                .map(|i| writes[*i].0.link.hubspot.id)
                .collect();
            if !two_way.is_empty() {
                let read = match crate::app::budget::hubspot(services, portal, 1).await {
                    Ok(()) => crate::app::budget::metered(
                        services,
                        portal,
                        services
                            .batch
                            .batch_read(
                                &token,
                                HubSpotObjectType::Deal,
                                &two_way,
                                &[
                                    "dealname",
                                    "pipeline",
                                    "dealstage",
                                    "closedate",
                                    "hs_lastmodifieddate",
                                ],
                            )
                            .await,
                    )
                    .await
                    .map(|(found, _)| found),
                    Err(wait) => Err(HubSpotError::RateLimited {
                        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        daily: false,
                    }),
                };
                match read {
                    Ok(deals) => {
                        for i in chunk {
                            let id = writes[*i].0.link.hubspot.id;
                            if let Some(deal) = deals.iter().find(|d| d.id == id) {
                                resolve_conflicts(&mut writes[*i].0, deal);
                            }
                        }
                    }
                    Err(error) => {
                        for i in chunk {
                            outcomes[*i] = Some(Err(WriteError::HubSpot(error.clone())));
                        }
                        continue;
                    }
                }
            }
            let mut items: Vec<(usize, u64, BTreeMap<String, String>)> = Vec::new();
            for i in chunk {
                if writes[*i].0.properties.is_empty() {
                    // Every field lost to a later HubSpot change: nothing to send.
                    outcomes[*i] = Some(Ok(()));
                }
            }
            let chunk: Vec<usize> = chunk
                .iter()
                .copied()
                .filter(|i| !writes[*i].0.properties.is_empty())
                .collect();
            if chunk.is_empty() {
                continue;
            }
            items.extend(chunk.iter().map(|i| {
                (
                    *i,
                    writes[*i].0.link.hubspot.id,
                    writes[*i].0.properties.clone(),
                )
            }));
            for (i, result) in bisect(services, &token, portal, items).await {
                outcomes[i] = Some(result.map_err(WriteError::HubSpot));
            }
        }
    }
    let mut results = Vec::with_capacity(writes.len());
    for ((pending, last_attempt), outcome) in writes.into_iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| {
            Err(WriteError::HubSpot(HubSpotError::Unavailable(
                "not sent".into(),
            )))
        });
        results.push(finish(services, pending, outcome, last_attempt).await);
    }
    results
}

pub(super) type Bisected = Vec<(usize, Result<(), HubSpotError>)>;

pub(super) fn bisect<'a>(
    services: &'a Services,
    token: &'a str,
    portal: crate::domain::PortalId,
    items: Vec<(usize, u64, BTreeMap<String, String>)>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Bisected> + Send + 'a>> {
    Box::pin(async move {
        if let Err(wait) = crate::app::budget::hubspot(services, portal, 1).await {
            let error = HubSpotError::RateLimited {
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                daily: false,
            };
            return items
                .into_iter()
                .map(|(i, _, _)| (i, Err(error.clone())))
                .collect();
        }
        let updates: Vec<(u64, BTreeMap<String, String>)> =
            items.iter().map(|(_, id, p)| (*id, p.clone())).collect();
        match crate::app::budget::metered(
            services,
            portal,
            services
                .write
                .batch_update(token, HubSpotObjectType::Deal, &updates)
                .await,
        )
        .await
        {
            // Written, but for the inputs that failed alone (a 207).
            Ok(failed) => items
                .into_iter()
                .map(|(i, id, _)| match failed.iter().find(|(f, _)| *f == id) {
                    Some((_, error)) => (i, Err(error.clone())),
                    None => (i, Ok(())),
                })
                .collect(),
            Err(HubSpotError::Rejected { .. } | HubSpotError::NotFound(_)) if items.len() > 1 => {
                let mut items = items;
                let right = items.split_off(items.len() / 2);
                let mut out = bisect(services, token, portal, items).await;
                out.extend(bisect(services, token, portal, right).await);
                out
            }
            Err(error) => items
                .into_iter()
                .map(|(i, _, _)| (i, Err(error.clone())))
                .collect(),
        }
    })
}

pub(super) async fn finish(
    services: &Services,
    pending: PendingDealWrite,
    outcome: Result<(), WriteError>,
    last_attempt: bool,
) -> Result<Applied, SyncFailure> {
    if outcome.is_ok() {
        // The write authenticated: a count of refused tokens starts over.
        let written: Result<(), HubSpotError> = Ok(());
        crate::app::tokens::note_auth(services, &pending.connection, &written).await;
    }
    let PendingDealWrite {
        mut link,
        fields,
        warnings,
        baselines,
        name,
        config_version,
        conflicts,
        ..
    } = pending;
    match outcome {
        Ok(()) => {
            apply_baselines(&mut link, baselines);
            link.last_synced_at = Some(services.clock.now());
            save(services, &link).await?;
            if !conflicts.is_empty() {
                record(
                    services,
                    Attempt {
                        code: Some(Code::ConflictOverwritten),
                        detail: Some(conflicts.join("、")),
                        ..attempt(&link, name.clone(), config_version)
                    },
                )
                .await;
            }
            if fields.is_empty() {
                return Ok(Applied::Nothing);
            }
            record(
                services,
                Attempt {
                    action: Some("deal_updated"),
                    detail: Some(fields.join(", ")),
                    warnings,
                    ..attempt(&link, name, config_version)
                },
            )
            .await;
            Ok(Applied::DealUpdated(fields))
        }
        Err(error) => failure(services, link, name, error, last_attempt, config_version).await,
    }
}

pub(super) fn apply_baselines(
    link: &mut Link,
    baselines: Vec<(&'static str, Option<String>, Option<String>)>,
) {
    for (key, board, hubspot) in baselines {
        let entry = link.baseline.entry(key.to_owned()).or_default();
        entry.board = board;
        if hubspot.is_some() {
            entry.hubspot = hubspot;
        }
    }
}
