//! Planned HubSpot writes (deals, companies, contacts) sent as batch updates: per account and
//! object type, the records read first in one batch call and conflicts resolved against them
//! (later wins), a 207 or a failed batch bisected to the inputs at fault, baselines and history
//! settled per record. The one batch writer of board → HubSpot.

use std::collections::BTreeMap;

use crate::app::Services;
use crate::app::budgeted_hubspot::BudgetedHubSpot;
use crate::app::history::{Attempt, record};
use crate::domain::connection::Connection;
use crate::domain::later_wins::{self, Change, Side, Verdict};
use crate::domain::mapping::{CLOSE_DATE, NAME, STAGE, deal_label_ja};
use crate::domain::{AccountId, Code, HubSpotObjectType, Link, customer_mapping};
use crate::ports::{CrmObject, HubSpotError};

use super::outcome::*;
use crate::app::failure::SyncFailure;

/// A field both sides edit: its baseline key, its name in history entries and
/// the HubSpot properties it is written as.
pub(super) type TwoWay = (&'static str, &'static str, Vec<&'static str>);

/// A HubSpot write a board event needs, to be sent with others in one batch call.
pub struct PendingWrite {
    pub(super) connection: Connection,
    pub(super) link: Link,
    pub(super) properties: BTreeMap<String, String>,
    /// What the history entry lists as written.
    pub(super) fields: Vec<&'static str>,
    pub(super) warnings: Vec<String>,
    pub(super) baselines: Vec<(&'static str, Option<String>, Option<String>)>,
    pub(super) name: Option<String>,
    pub(super) config_version: u64,
    /// The history action of a successful write.
    pub(super) action: &'static str,
    /// The written fields HubSpot users also edit: checked for conflicts first.
    pub(super) two_way: Vec<TwoWay>,
    /// When board's change happened; `None`: board's value wins any conflict.
    pub(super) occurred_at: Option<time::OffsetDateTime>,
    /// Fields both sides changed since the baseline (recorded as `conflict_overwritten`).
    pub(super) conflicts: Vec<String>,
}

impl PendingWrite {
    pub fn account(&self) -> &AccountId {
        &self.link.account_id
    }

    fn object_type(&self) -> HubSpotObjectType {
        self.link.hubspot.object_type
    }

    pub fn with_occurred_at(mut self, at: Option<time::OffsetDateTime>) -> Self {
        self.occurred_at = at;
        self
    }

    /// Leaves a field out of the write (HubSpot holds it already, or keeps its later change).
    fn drop_field(&mut self, key: &str, properties: &[&'static str]) {
        for property in properties {
            self.properties.remove(*property);
        }
        self.fields.retain(|f| *f != key && !properties.contains(f));
    }
}

/// A deal's fields both sides edit.
pub(super) fn deal_two_way() -> Vec<TwoWay> {
    vec![
        (NAME, deal_label_ja(NAME), vec!["dealname"]),
        (STAGE, deal_label_ja(STAGE), vec!["dealstage"]),
        (CLOSE_DATE, deal_label_ja(CLOSE_DATE), vec!["closedate"]),
    ]
}

/// The properties a record is read with before it is written, for conflicts.
fn read_properties(object_type: HubSpotObjectType) -> Vec<&'static str> {
    match object_type {
        HubSpotObjectType::Deal => vec![
            "dealname",
            "pipeline",
            "dealstage",
            "closedate",
            "hs_lastmodifieddate",
        ],
        other => customer_mapping::read_properties(other),
    }
}

/// A record's current values in baseline keys and form, and when HubSpot last changed it.
fn current_values(
    pending: &PendingWrite,
    object: &CrmObject,
) -> (
    BTreeMap<&'static str, Option<String>>,
    Option<time::OffsetDateTime>,
) {
    let object_type = pending.object_type();
    let values = match object_type {
        HubSpotObjectType::Deal => crate::domain::mapping::deal_values(
            object.get("dealname"),
            object.get("pipeline"),
            object.get("dealstage"),
            object.get("closedate"),
            pending.connection.zone(),
        ),
        _ => {
            let pair = (object_type, pending.link.board.kind);
            customer_mapping::from_hubspot(pair, &object.properties, true)
                .0
                .into_iter()
                .map(|(key, _, value)| (key, value))
                .collect()
        }
    };
    (
        values.into_iter().collect(),
        customer_mapping::hubspot_modified_at(object_type, &object.properties),
    )
}

/// Where both sides changed a field since the baseline, the later change wins
/// (SPEC §11): HubSpot's later change drops the field from our write (the
/// HubSpot → board side applies it); board's later change overwrites HubSpot's.
/// A value HubSpot already holds is not written again.
pub(super) fn resolve_conflicts(pending: &mut PendingWrite, object: &CrmObject) {
    let (current, modified) = current_values(pending, object);
    for (key, label, properties) in pending.two_way.clone() {
        if !properties
            .iter()
            .any(|p| pending.properties.contains_key(*p))
        {
            continue;
        }
        let now_in_hubspot = current.get(key).cloned().flatten();
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
            pending.drop_field(key, &properties);
            continue;
        }
        let incoming = Change {
            side: Side::Board,
            at: pending.occurred_at,
        };
        let hubspot = Change {
            side: Side::HubSpot,
            at: modified,
        };
        let moved = pending.link.hubspot_moved(key, now_in_hubspot.as_ref());
        match later_wins::decide(incoming, moved, hubspot) {
            Verdict::Apply => {}
            Verdict::Overwrite => pending.conflicts.push(later_wins::note(label, Side::Board)),
            Verdict::Keep => {
                pending.drop_field(key, &properties);
                pending.baselines.retain(|(k, _, _)| *k != key);
                pending
                    .conflicts
                    .push(later_wins::note(label, Side::HubSpot));
            }
        }
    }
}

/// Sends the writes of several board events: per account and object type, in
/// batch calls of at most 100 within the portal's budget, each batch read first
/// for conflicts; a refused batch (HubSpot's batch update is all-or-nothing) is
/// bisected to the record at fault. One result per write, in order.
pub async fn write_batch(
    services: &Services,
    writes: Vec<(PendingWrite, bool)>,
) -> Vec<Result<Applied, SyncFailure>> {
    let mut writes = writes;
    let mut outcomes: Vec<Option<Result<(), WriteError>>> = writes.iter().map(|_| None).collect();
    let mut groups: Vec<(AccountId, HubSpotObjectType)> = writes
        .iter()
        .map(|(w, _)| (w.account().clone(), w.object_type()))
        .collect();
    groups.sort();
    groups.dedup();
    for (account, object_type) in groups {
        let indexes: Vec<usize> = (0..writes.len())
            .filter(|i| {
                writes[*i].0.account() == &account && writes[*i].0.object_type() == object_type
            })
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
        let connection = writes[indexes[0]].0.connection.clone();
        let hubspot = BudgetedHubSpot::new(services, &connection, &token);
        for chunk in indexes.chunks(crate::ports::HUBSPOT_BATCH_LIMIT) {
            // The records as they are now, for fields both sides may have changed.
            let two_way: Vec<u64> = chunk
                .iter()
                .filter(|i| {
                    let w = &writes[**i].0;
                    w.two_way.iter().any(|(_, _, properties)| {
                        properties.iter().any(|p| w.properties.contains_key(*p))
                    })
                })
                .map(|i| writes[*i].0.link.hubspot.id)
                .collect();
            if !two_way.is_empty() {
                let read = hubspot
                    .batch_read(object_type, &two_way, &read_properties(object_type))
                    .await;
                match read {
                    Ok((found, missing)) => {
                        for i in chunk {
                            let id = writes[*i].0.link.hubspot.id;
                            if let Some(object) = found.iter().find(|o| o.id == id) {
                                resolve_conflicts(&mut writes[*i].0, object);
                            } else if missing.contains(&id) {
                                outcomes[*i] = Some(Err(WriteError::HubSpot(
                                    HubSpotError::NotFound(format!("{object_type:?} {id} is gone")),
                                )));
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
            for i in chunk {
                if outcomes[*i].is_none() && writes[*i].0.properties.is_empty() {
                    // Every field already there or lost to a later HubSpot change.
                    outcomes[*i] = Some(Ok(()));
                }
            }
            // What is about to be sent is saved on each link first: if HubSpot
            // takes the write and its answer or our baselines' save is lost, the
            // value HubSpot then holds is still known as ours, not as a HubSpot
            // change a later board change would lose to.
            let mut marked = Vec::new();
            for i in chunk {
                if outcomes[*i].is_some() {
                    continue;
                }
                let w = &mut writes[*i].0;
                let sending: Vec<(&'static str, String)> = w
                    .baselines
                    .iter()
                    .filter_map(|(key, _, hubspot)| hubspot.clone().map(|v| (*key, v)))
                    .filter(|(key, v)| {
                        w.link
                            .baseline
                            .get(*key)
                            .is_none_or(|b| b.hubspot.as_ref() != Some(v))
                    })
                    .collect();
                if sending.is_empty() {
                    continue;
                }
                for (key, value) in sending {
                    w.link.sending_to_hubspot(key, value);
                }
                marked.push(*i);
            }
            let saved = futures_util::future::join_all(
                marked
                    .iter()
                    .map(|i| services.links.update_link(&writes[*i].0.link)),
            )
            .await;
            for (i, saved) in marked.into_iter().zip(saved) {
                match saved {
                    Ok(revision) => writes[i].0.link.revision = revision,
                    Err(error) => outcomes[i] = Some(Err(WriteError::Store(error))),
                }
            }
            let items: Vec<(usize, u64, BTreeMap<String, String>)> = chunk
                .iter()
                .filter(|i| outcomes[**i].is_none())
                .map(|i| {
                    (
                        *i,
                        writes[*i].0.link.hubspot.id,
                        writes[*i].0.properties.clone(),
                    )
                })
                .collect();
            if items.is_empty() {
                continue;
            }
            for (i, result) in bisect(&hubspot, object_type, items).await {
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
    hubspot: &'a BudgetedHubSpot<'a>,
    object_type: HubSpotObjectType,
    items: Vec<(usize, u64, BTreeMap<String, String>)>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Bisected> + Send + 'a>> {
    Box::pin(async move {
        let updates: Vec<(u64, BTreeMap<String, String>)> =
            items.iter().map(|(_, id, p)| (*id, p.clone())).collect();
        match hubspot.batch_update(object_type, &updates).await {
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
                let mut out = bisect(hubspot, object_type, items).await;
                out.extend(bisect(hubspot, object_type, right).await);
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
    pending: PendingWrite,
    outcome: Result<(), WriteError>,
    last_attempt: bool,
) -> Result<Applied, SyncFailure> {
    let PendingWrite {
        mut link,
        fields,
        warnings,
        baselines,
        name,
        config_version,
        conflicts,
        action,
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
                    action: Some(action),
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
            entry.hubspot_sent = None;
        }
    }
}
