//! board → HubSpot for linked projects (SPEC §6, §11): the snapshot of a
//! change event is compared field by field with the baselines; only fields
//! that differ reach the deal, in one batch call. Our own echoes (values we
//! just wrote to board) and unchanged fields write and record nothing.

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::{info, warn};

use super::Services;
use super::history::{Attempt, record};
use super::linked_deals::{CLOSE_DATE, NAME, STAGE};
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::history::Direction;
use crate::domain::normalize::nfkc;
use crate::domain::status_mapping::stage_for_status;
use crate::domain::{
    AccountId, BoardObjectKind, BoardRef, Code, HubSpotObjectType, Link, LinkState, OrderStatus,
    PipelineId, StageId,
};
use crate::ports::{HubSpotError, StoreError};

/// Baseline keys only this direction uses (board's values).
pub const ORDER_STATUS: &str = "order_status";
pub const AMOUNT: &str = "amount";
pub const OWNER: &str = "owner";

#[derive(Debug, thiserror::Error)]
pub enum BoardSyncError {
    /// May succeed later (429, 5xx, timeouts, a concurrent link change).
    #[error("transient: {0}")]
    Transient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a project event did, for the logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Not linked, link not enabled, echo or unchanged: nothing written or recorded.
    Nothing,
    DealUpdated(Vec<&'static str>),
    NoteCreated(u64),
    Recorded(Code),
}

/// The project snapshot fields this direction reads (board API v1 names).
struct Project {
    id: u64,
    name: Option<String>,
    status: Option<OrderStatus>,
    order_date: Option<String>,
    total: Option<String>,
    tax: Option<String>,
    user_id: Option<u64>,
}

fn text(object: &Value, name: &str) -> Option<String> {
    match &object[name] {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Project {
    fn from_snapshot(object: &Value) -> Option<Self> {
        Some(Self {
            id: object["id"].as_u64()?,
            name: text(object, "name").map(|n| nfkc(&n)),
            status: object["order_status"]
                .as_i64()
                .and_then(|c| OrderStatus::from_code(c).ok()),
            order_date: text(object, "order_date"),
            total: text(object, "total"),
            tax: text(object, "tax"),
            user_id: object["user_id"].as_u64(),
        })
    }
}

/// A decimal amount as HubSpot stores it: no trailing zeros; `None` for 0 or empty.
fn amount(total: Option<&str>, tax: Option<&str>, including_tax: bool) -> Option<String> {
    let parse = |v: Option<&str>| v.and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let mut value = parse(total);
    if including_tax {
        value += parse(tax);
    }
    if value == 0.0 || !value.is_finite() {
        return None;
    }
    let formatted = format!("{value:.2}");
    Some(
        formatted
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned(),
    )
}

/// Midnight of a calendar date in the portal's time zone (Asia/Tokyo), as epoch ms.
fn midnight_jst_ms(date: &str) -> Option<String> {
    let date = time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let t = date
        .midnight()
        .assume_offset(time::macros::offset!(+9))
        .unix_timestamp();
    Some((t * 1000).to_string())
}

/// A history entry of this direction about `link`; callers set the outcome.
fn attempt(link: &Link, name: Option<String>, config_version: u64) -> Attempt<'_> {
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

async fn save(services: &Services, link: &Link) -> Result<(), BoardSyncError> {
    // A conflict (another worker saved the link first) passes through: the
    // worker redoes the event shortly.
    services.links.update_link(link).await?;
    Ok(())
}

/// The connection the event's account syncs through, if it syncs at all.
async fn live_connection(
    services: &Services,
    account: &AccountId,
) -> Result<Option<Connection>, BoardSyncError> {
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

/// A deal write a project event needs, to be sent with others in one batch call.
pub struct PendingDealWrite {
    connection: Connection,
    link: Link,
    properties: BTreeMap<String, String>,
    fields: Vec<&'static str>,
    warnings: Vec<String>,
    baselines: Vec<(&'static str, Option<String>, Option<String>)>,
    name: Option<String>,
    config_version: u64,
    /// When board's change happened; `None`: board's value wins any conflict.
    occurred_at: Option<time::OffsetDateTime>,
    /// Fields both sides changed since the baseline (recorded as `conflict_overwritten`).
    conflicts: Vec<String>,
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
const TWO_WAY: [(&str, &str); 3] = [
    ("dealname", NAME),
    ("dealstage", STAGE),
    ("closedate", CLOSE_DATE),
];

/// Where both sides changed a field since the baseline, the later change wins
/// (SPEC §11): HubSpot's later change drops the field from our write (the
/// HubSpot → board side applies it); board's later change overwrites HubSpot's.
fn resolve_conflicts(pending: &mut PendingDealWrite, deal: &crate::ports::CrmObject) {
    let current = super::linked_deals::deal_values(
        deal.get("dealname"),
        deal.get("pipeline"),
        deal.get("dealstage"),
        deal.get("closedate"),
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

/// What a project event comes to before anything is written to HubSpot.
pub enum Plan {
    Done(Applied),
    Write(Box<PendingDealWrite>),
}

/// Applies one project event. `last_attempt`: transient failures are recorded
/// as `hubspot_unavailable` instead of retried.
pub async fn project_event(
    services: &Services,
    account: &AccountId,
    deleted: bool,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, BoardSyncError> {
    match plan_project(services, account, deleted, object).await? {
        Plan::Done(applied) => Ok(applied),
        Plan::Write(pending) => {
            let mut results = write_deals(services, vec![(*pending, last_attempt)]).await;
            results.pop().expect("one result per write")
        }
    }
}

/// Everything of a project event up to the deal write.
pub async fn plan_project(
    services: &Services,
    account: &AccountId,
    deleted: bool,
    object: &Value,
) -> Result<Plan, BoardSyncError> {
    let Some(project) = Project::from_snapshot(object) else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    let board = BoardRef {
        kind: BoardObjectKind::Project,
        id: project.id,
    };
    let Some(mut link) = services
        .links
        .link_by_board(account, connection.portal_id, board)
        .await?
    else {
        return Ok(Plan::Done(Applied::Nothing));
    };
    if link.state != LinkState::Enabled {
        // Disabled links record nothing more (the first error was recorded).
        return Ok(Plan::Done(Applied::Nothing));
    }
    let config = services.configs.config(account).await?;
    if deleted {
        link.state = LinkState::Deleted;
        save(services, &link).await?;
        record(
            services,
            Attempt {
                code: Some(Code::ProjectNotFound),
                ..attempt(&link, project.name.clone(), config.version)
            },
        )
        .await;
        info!(
            project = project.id,
            "project deleted in board: link marked deleted"
        );
        return Ok(Plan::Done(Applied::Recorded(Code::ProjectNotFound)));
    }
    if matches!(connection.state, ConnectionState::Suspended) {
        record(
            services,
            Attempt {
                code: Some(Code::IntegrationSuspended),
                ..attempt(&link, project.name.clone(), config.version)
            },
        )
        .await;
        return Ok(Plan::Done(Applied::Recorded(Code::IntegrationSuspended)));
    }

    let mut properties: BTreeMap<String, String> = BTreeMap::new();
    let mut fields: Vec<&'static str> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    // (baseline key, board value, HubSpot value) to store once HubSpot accepted.
    let mut baselines: Vec<(&'static str, Option<String>, Option<String>)> = Vec::new();
    let board_base = |key: &str| link.baseline.get(key).and_then(|b| b.board.clone());

    if let Some(name) = &project.name
        && !link.is_board_echo(NAME, Some(name))
    {
        properties.insert("dealname".into(), name.clone());
        fields.push("dealname");
        baselines.push((NAME, Some(name.clone()), Some(name.clone())));
    }

    let status_code = project.status.map(|s| s.code().to_string());
    if status_code.is_some() && !link.is_board_echo(ORDER_STATUS, status_code.as_ref()) {
        let status = project.status.expect("checked");
        let current = link
            .baseline
            .get(STAGE)
            .and_then(|b| b.hubspot.clone())
            .and_then(|key| {
                let (p, s) = key.split_once(':')?;
                Some((PipelineId::new(p).ok()?, StageId::new(s).ok()?))
            });
        let mut new_stage = None;
        if let Some((pipeline, stage)) = &current
            && config.status_of(pipeline, stage) != Some(status)
        {
            let mapping = config
                .status_mapping
                .get(pipeline)
                .cloned()
                .unwrap_or_default();
            let candidates: Vec<StageId> = mapping
                .iter()
                .filter(|(_, s)| **s == status)
                .map(|(id, _)| id.clone())
                .collect();
            // The display order is read from HubSpot only when several stages map to the status.
            let order = if candidates.len() > 1 {
                stage_order(services, account, pipeline).await?
            } else {
                candidates
            };
            match stage_for_status(&order, &mapping, Some(stage), status) {
                Some(s) if s != stage => new_stage = Some((pipeline.clone(), s.clone())),
                Some(_) => {}
                None => warnings.push(format!(
                    "受注ステータス「{}」に対応するステージがないため、ステージは変更していません",
                    status.label_ja()
                )),
            }
        }
        if let Some((pipeline, stage)) = new_stage {
            properties.insert("dealstage".into(), stage.to_string());
            fields.push("dealstage");
            let key = format!("{pipeline}:{stage}");
            baselines.push((STAGE, Some(key.clone()), Some(key)));
        }
        baselines.push((ORDER_STATUS, status_code.clone(), None));
    }

    if project
        .status
        .is_some_and(OrderStatus::carries_ordered_date)
        && let Some(date) = &project.order_date
        && !link.is_board_echo(CLOSE_DATE, Some(date))
        && let Some(ms) = midnight_jst_ms(date)
    {
        properties.insert("closedate".into(), ms);
        fields.push("closedate");
        baselines.push((CLOSE_DATE, Some(date.clone()), Some(date.clone())));
    }

    let including = config.amount_basis == crate::domain::config::AmountBasis::IncludingTax;
    if let Some(value) = amount(project.total.as_deref(), project.tax.as_deref(), including)
        && link.baseline.get(AMOUNT).and_then(|b| b.hubspot.clone()) != Some(value.clone())
    {
        properties.insert("amount".into(), value.clone());
        fields.push("amount");
        baselines.push((AMOUNT, Some(value.clone()), Some(value)));
    }

    if let Some(user) = project.user_id.map(|u| u.to_string())
        && board_base(OWNER).as_ref() != Some(&user)
    {
        match owner_of(services, account, &config, project.user_id.expect("some")).await? {
            Some(owner) => {
                properties.insert("hubspot_owner_id".into(), owner.clone());
                fields.push("hubspot_owner_id");
                baselines.push((OWNER, Some(user), Some(owner)));
            }
            None => {
                warnings.push(
                    "担当者に対応するHubSpotの所有者がいないため、所有者は変更していません".into(),
                );
                baselines.push((OWNER, Some(user), None));
            }
        }
    }

    if properties.is_empty() {
        // Echo or nothing HubSpot needs: bookkeeping only, nothing recorded.
        if !baselines.is_empty() {
            apply_baselines(&mut link, baselines);
            save(services, &link).await?;
        }
        return Ok(Plan::Done(Applied::Nothing));
    }

    Ok(Plan::Write(Box::new(PendingDealWrite {
        connection,
        link,
        properties,
        fields,
        warnings,
        baselines,
        name: project.name,
        config_version: config.version,
        occurred_at: None,
        conflicts: Vec::new(),
    })))
}

/// Sends the deal writes of several project events: per account, in batch calls
/// of at most 100 within the portal's budget; a refused batch (HubSpot's batch
/// update is all-or-nothing) is bisected to the record at fault. One result per
/// write, in order.
pub async fn write_deals(
    services: &Services,
    writes: Vec<(PendingDealWrite, bool)>,
) -> Vec<Result<Applied, BoardSyncError>> {
    let mut writes = writes;
    let mut outcomes: Vec<Option<Result<(), WriteError>>> = writes.iter().map(|_| None).collect();
    let mut accounts: Vec<AccountId> = writes.iter().map(|(w, _)| w.account().clone()).collect();
    accounts.sort();
    accounts.dedup();
    for account in accounts {
        let indexes: Vec<usize> = (0..writes.len())
            .filter(|i| writes[*i].0.account() == &account)
            .collect();
        let token = match super::tokens::access_token(services, &account).await {
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
        for chunk in indexes.chunks(crate::adapters::hubspot::BATCH_LIMIT) {
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
                let read = match super::budget::hubspot(services, portal, 1).await {
                    Ok(()) => super::budget::metered(
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

type Bisected = Vec<(usize, Result<(), HubSpotError>)>;

fn bisect<'a>(
    services: &'a Services,
    token: &'a str,
    portal: crate::domain::PortalId,
    items: Vec<(usize, u64, BTreeMap<String, String>)>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Bisected> + Send + 'a>> {
    Box::pin(async move {
        if let Err(wait) = super::budget::hubspot(services, portal, 1).await {
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
        match super::budget::metered(
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

async fn finish(
    services: &Services,
    pending: PendingDealWrite,
    outcome: Result<(), WriteError>,
    last_attempt: bool,
) -> Result<Applied, BoardSyncError> {
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

fn apply_baselines(
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

/// The account's access token for a read; failures are retried through the queue.
async fn bearer(services: &Services, account: &AccountId) -> Result<String, BoardSyncError> {
    super::tokens::access_token(services, account)
        .await
        .map(|t| secrecy::ExposeSecret::expose_secret(&t).to_owned())
        .map_err(|e| BoardSyncError::Transient(e.to_string()))
}

/// The pipeline's stages in display order (one HubSpot read, only when a status changed).
async fn stage_order(
    services: &Services,
    account: &AccountId,
    pipeline: &PipelineId,
) -> Result<Vec<StageId>, BoardSyncError> {
    let token = bearer(services, account).await?;
    let pipelines = services
        .crm
        .pipelines(&token)
        .await
        .map_err(|e| BoardSyncError::Transient(e.to_string()))?;
    Ok(pipelines
        .into_iter()
        .find(|p| &p.id == pipeline)
        .map(|p| {
            let mut stages = p.stages;
            stages.sort_by_key(|s| s.display_order);
            stages.into_iter().map(|s| s.id).collect()
        })
        .unwrap_or_default())
}

/// The HubSpot owner of a board user: an administrator's override, else the same e-mail.
async fn owner_of(
    services: &Services,
    account: &AccountId,
    config: &crate::domain::config::AccountConfig,
    user: u64,
) -> Result<Option<String>, BoardSyncError> {
    for (owner, choice) in &config.owner_overrides {
        if choice.map(|c| c.get()) == Some(user) {
            return Ok(Some(owner.clone()));
        }
    }
    let users = services
        .directory
        .board_users
        .get_or_load(account.as_str(), || services.board.users(account))
        .await
        .map_err(|e| BoardSyncError::Transient(e.to_string()))?;
    let Some(email) = users
        .iter()
        .find(|u| u.id.get() == user)
        .map(|u| u.email.clone())
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let token = bearer(services, account).await?;
    let owners = services
        .directory
        .hubspot_owners
        .get_or_load(account.as_str(), || services.crm.owners(&token))
        .await
        .map_err(|e| BoardSyncError::Transient(e.to_string()))?;
    Ok(owners
        .iter()
        .find(|o| o.email.eq_ignore_ascii_case(&email))
        .map(|o| o.id.to_string())
        // An owner chosen for nobody by an override is not matched by e-mail either.
        .filter(|o| !matches!(config.owner_overrides.get(o), Some(None))))
}

enum WriteError {
    HubSpot(HubSpotError),
    Token(super::tokens::TokenError),
}

async fn write(
    services: &Services,
    connection: &Connection,
    link: &Link,
    properties: BTreeMap<String, String>,
) -> Result<(), WriteError> {
    let token = super::tokens::access_token(services, &connection.account_id)
        .await
        .map_err(WriteError::Token)?;
    if let Err(wait) = super::budget::hubspot(services, connection.portal_id, 1).await {
        return Err(WriteError::HubSpot(HubSpotError::RateLimited {
            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            daily: false,
        }));
    }
    let written = services
        .write
        .batch_update(
            secrecy::ExposeSecret::expose_secret(&token),
            link.hubspot.object_type,
            &[(link.hubspot.id, properties)],
        )
        .await;
    super::budget::metered(services, connection.portal_id, written)
        .await
        .map_err(WriteError::HubSpot)
        .and_then(|failed| match failed.into_iter().next() {
            Some((_, error)) => Err(WriteError::HubSpot(error)),
            None => Ok(()),
        })
}

/// A refused or failed write, as the error catalog says (SPEC §6, §9).
async fn failure(
    services: &Services,
    mut link: Link,
    name: Option<String>,
    error: WriteError,
    last_attempt: bool,
    config_version: u64,
) -> Result<Applied, BoardSyncError> {
    let (code, detail) = match error {
        WriteError::Token(e) => match e.code() {
            code @ (Code::HubspotAuthInvalid | Code::IntegrationSuspended) => (code, None),
            _ if !last_attempt => return Err(BoardSyncError::Transient(e.to_string())),
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
            (Code::HubspotApiError, Some(message))
        }
        WriteError::HubSpot(HubSpotError::Unauthorized(message)) => {
            if let Err(e) = super::tokens::record_auth_failure(services, &link.account_id).await {
                warn!(error = %e, "authentication failure not counted");
            }
            (Code::HubspotAuthInvalid, Some(message))
        }
        WriteError::HubSpot(HubSpotError::InvalidGrant(message)) => {
            (Code::HubspotAuthInvalid, Some(message))
        }
        WriteError::HubSpot(HubSpotError::Forbidden(message)) => {
            (Code::HubspotScopeInsufficient, Some(message))
        }
        WriteError::HubSpot(
            e @ (HubSpotError::RateLimited { .. } | HubSpotError::Unavailable(_)),
        ) => {
            if !last_attempt {
                return Err(BoardSyncError::Transient(e.to_string()));
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

/// (baseline key, board's value normalised, HubSpot properties it becomes).
type Wanted = (&'static str, Option<String>, Vec<(&'static str, String)>);

/// What a customer or contact snapshot asks of its linked company or contact
/// (SPEC §6), in the baseline keys HubSpot → board uses, so each side's echo
/// is recognised by the other.
fn wanted_in_hubspot(link: &Link, object: &Value) -> (Vec<Wanted>, Vec<String>) {
    use crate::domain::normalize;
    let get = |k: &str| text(object, k).map(|v| normalize::nfkc(&v));
    let mut warnings = Vec::new();
    let mut out: Vec<Wanted> = Vec::new();
    // An empty board field is wanted as `None` (its baseline) and never clears HubSpot's.
    let mut want =
        |key: &'static str, value: Option<String>, props: Vec<(&'static str, String)>| {
            let props = if value.is_some() { props } else { Vec::new() };
            out.push((key, value, props));
        };
    match (link.hubspot.object_type, link.board.kind) {
        (HubSpotObjectType::Company, _) => {
            let name = get("name");
            want(
                "name",
                name.clone(),
                vec![("name", name.unwrap_or_default())],
            );
            let phone = get("tel").map(|raw| normalize::phone(&raw).unwrap_or(raw));
            want(
                "phone",
                phone.clone(),
                vec![("phone", phone.unwrap_or_default())],
            );
            match get("zip") {
                Some(raw) => match normalize::zip(&raw) {
                    Some(zip) => want("zip", Some(zip.clone()), vec![("zip", zip)]),
                    None => warnings.push(format!(
                        "郵便番号「{raw}」は7桁の郵便番号ではないため連携しませんでした"
                    )),
                },
                None => want("zip", None, Vec::new()),
            }
            match get("pref") {
                Some(raw) => match normalize::prefecture(&raw) {
                    Some(pref) => want(
                        "state",
                        Some(pref.to_owned()),
                        vec![("state", pref.to_owned())],
                    ),
                    None => warnings.push(format!(
                        "都道府県「{raw}」は日本の都道府県ではないため連携しませんでした"
                    )),
                },
                None => want("state", None, Vec::new()),
            }
            let address1 = get("address1");
            let (city, rest) = normalize::split_city(address1.as_deref().unwrap_or_default());
            want(
                "address1",
                address1,
                vec![("address", rest), ("city", city.unwrap_or_default())],
            );
            let address2 = get("address2");
            want(
                "address2",
                address2.clone(),
                vec![("address2", address2.unwrap_or_default())],
            );
        }
        (HubSpotObjectType::Contact, BoardObjectKind::Customer) => {
            let name = get("name");
            let full = name.clone().unwrap_or_default();
            let (last, first) = full.split_once(' ').unwrap_or((full.as_str(), ""));
            want(
                "name",
                name.clone(),
                vec![
                    ("lastname", last.to_owned()),
                    ("firstname", first.trim().to_owned()),
                ],
            );
        }
        (HubSpotObjectType::Contact, _) => {
            for (key, field) in [
                ("lastname", "last_name"),
                ("firstname", "first_name"),
                ("email", "email"),
                ("jobtitle", "title"),
            ] {
                let v = get(field);
                want(key, v.clone(), vec![(key, v.unwrap_or_default())]);
            }
        }
        _ => {}
    }
    (out, warnings)
}

/// The linked company's or contact's current values, in baseline keys and form.
async fn hubspot_values(
    services: &Services,
    config: &crate::domain::config::AccountConfig,
    link: &Link,
) -> Result<BTreeMap<&'static str, Option<String>>, WriteError> {
    let token = super::tokens::access_token(services, &link.account_id)
        .await
        .map_err(WriteError::Token)?;
    let properties: &[&str] = match link.hubspot.object_type {
        HubSpotObjectType::Company => &super::linked_others::COMPANY_PROPERTIES,
        _ => &super::linked_others::CONTACT_PROPERTIES,
    };
    let (found, _) = services
        .batch
        .batch_read(
            secrecy::ExposeSecret::expose_secret(&token),
            link.hubspot.object_type,
            &[link.hubspot.id],
            properties,
        )
        .await
        .map(|m| m.value)
        .map_err(WriteError::HubSpot)?;
    let Some(object) = found.into_iter().next() else {
        return Err(WriteError::HubSpot(HubSpotError::NotFound(
            "the linked object is gone".into(),
        )));
    };
    let (values, _) = super::linked_others::wanted(link, &object, config);
    let mut out: BTreeMap<&'static str, Option<String>> = values
        .into_iter()
        .map(|(key, _, value)| (key, value))
        .collect();
    if link.hubspot.object_type == HubSpotObjectType::Company {
        out.entry("name").or_insert_with(|| {
            object
                .get("name")
                .map(crate::domain::normalize::nfkc)
                .filter(|n| !n.is_empty())
        });
    }
    Ok(out)
}

/// `customer.*` / `contact.*`: the linked company or contact follows, field by field.
pub async fn customer_or_contact_event(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    deleted: bool,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, BoardSyncError> {
    let Some(id) = object["id"].as_u64() else {
        return Ok(Applied::Nothing);
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Applied::Nothing);
    };
    let mut links = Vec::new();
    if let Some(link) = services
        .links
        .link_by_board(account, connection.portal_id, BoardRef { kind, id })
        .await?
    {
        links.push(link);
    }
    let mut last = Applied::Nothing;
    for mut link in links {
        if link.state != LinkState::Enabled {
            continue;
        }
        if deleted {
            // board has no catalog code for deleted customers: the link ends quietly.
            link.state = LinkState::Deleted;
            save(services, &link).await?;
            continue;
        }
        let config = services.configs.config(account).await?;
        let name = text(object, "name").or_else(|| {
            let full = format!(
                "{} {}",
                text(object, "last_name").unwrap_or_default(),
                text(object, "first_name").unwrap_or_default()
            );
            Some(full.trim().to_owned()).filter(|n| !n.is_empty())
        });
        if matches!(connection.state, ConnectionState::Suspended) {
            record(
                services,
                Attempt {
                    code: Some(Code::IntegrationSuspended),
                    ..attempt(&link, name, config.version)
                },
            )
            .await;
            last = Applied::Recorded(Code::IntegrationSuspended);
            continue;
        }
        let (wanted, warnings) = wanted_in_hubspot(&link, object);
        // Fields without a baseline yet (the link is new): compared with what
        // HubSpot holds now, so equal values are not written again.
        let current = if wanted
            .iter()
            .any(|(k, _, _)| !link.baseline.contains_key(*k))
        {
            match hubspot_values(services, &config, &link).await {
                Ok(values) => values,
                Err(error) => {
                    last =
                        failure(services, link, name, error, last_attempt, config.version).await?;
                    continue;
                }
            }
        } else {
            BTreeMap::new()
        };
        let mut first_seen = false;
        let mut changed: Vec<Wanted> = Vec::new();
        for (key, board, props) in wanted {
            if link.is_board_echo(key, board.as_ref()) {
                // Ours (possibly still being saved by the other direction).
                continue;
            }
            match link.baseline.get(key) {
                None if current.get(key).cloned().flatten() != board && !props.is_empty() => {
                    changed.push((key, board, props));
                }
                None => {
                    let entry = link.baseline.entry(key.to_owned()).or_default();
                    entry.hubspot = current.get(key).cloned().flatten();
                    entry.board = board;
                    first_seen = true;
                }
                Some(base) if base.board != board && !props.is_empty() => {
                    changed.push((key, board, props));
                }
                Some(base) if base.board != board => {
                    // Emptied in board: HubSpot keeps its value; the baseline follows board.
                    link.baseline.entry(key.to_owned()).or_default().board = board;
                    first_seen = true;
                }
                Some(_) => {}
            }
        }
        if changed.is_empty() {
            if first_seen {
                save(services, &link).await?;
            }
            continue;
        }
        let mut properties = BTreeMap::new();
        for (_, _, props) in &changed {
            for (k, v) in props {
                properties.insert((*k).to_owned(), v.clone());
            }
        }
        let fields: Vec<&'static str> = changed.iter().map(|(k, _, _)| *k).collect();
        match write(services, &connection, &link, properties).await {
            Ok(()) => {
                for (key, value, _) in changed {
                    let b = link.baseline.entry(key.to_owned()).or_default();
                    b.hubspot = value.clone();
                    b.board = value;
                }
                link.last_synced_at = Some(services.clock.now());
                save(services, &link).await?;
                let action = match link.hubspot.object_type {
                    HubSpotObjectType::Company => "company_updated",
                    _ => "contact_updated",
                };
                record(
                    services,
                    Attempt {
                        action: Some(action),
                        detail: Some(fields.join(", ")),
                        warnings,
                        ..attempt(&link, name, config.version)
                    },
                )
                .await;
                last = Applied::DealUpdated(fields);
            }
            Err(error) => {
                last = failure(services, link, name, error, last_attempt, config.version).await?;
            }
        }
    }
    Ok(last)
}

/// A note's intent while its create is under way (`pending:<ms since the epoch>`;
/// a bare `pending` was written before the time was kept).
const PENDING: &str = "pending";

/// A note's intent after HubSpot refused the create (nothing was created).
const NOT_CREATED: &str = "not_created";

/// How long CRM search may take to show a new note (HubSpot indexes
/// asynchronously, in seconds): an unfound note whose create may have
/// happened less than this ago is looked for again later.
const NOTE_INDEX_WAIT_MS: i64 = 30_000;

fn pending_since(intent: &str) -> Option<i64> {
    intent.strip_prefix("pending:")?.parse().ok()
}

/// The marker that makes a note findable after a crash between HubSpot's create and our write.
pub fn note_marker(event_id: &str) -> String {
    format!("[board-doc:{event_id}]")
}

fn yen(value: Option<&str>) -> Option<String> {
    let v = value?.parse::<f64>().ok()?;
    let whole = v.trunc() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    Some(format!("{}¥{grouped}", if whole < 0 { "-" } else { "" }))
}

/// The note's body, in Japanese (SPEC §6), ending with the marker.
pub fn note_body(object: &Value, event_id: &str) -> String {
    let kind = object["document_type"].as_str().unwrap_or_default();
    let kind = super::jobs::DOCUMENT_TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(kind, |(_, ja)| ja);
    let resend = if object["resend"].as_bool() == Some(true) {
        "(再送)"
    } else {
        ""
    };
    let method = match object["method"].as_str() {
        Some("post") => "郵送",
        _ => "メール",
    };
    let mut lines = vec![
        format!("boardから{kind}を送付しました{resend}"),
        format!(
            "書類番号: {}",
            object["document_number"].as_str().unwrap_or_default()
        ),
        format!(
            "発行日: {}",
            object["issue_date"].as_str().unwrap_or_default()
        ),
    ];
    if let Some(v) = yen(object["total"].as_str()) {
        lines.push(format!("金額(税抜): {v}"));
    }
    if let Some(v) = yen(object["total_with_tax"].as_str()) {
        lines.push(format!("金額(税込): {v}"));
    }
    lines.push(format!("送付方法: {method}"));
    lines.push(note_marker(event_id));
    lines
        .iter()
        .map(|l| format!("<p>{}</p>", html_escape(l)))
        .collect()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `document.sent`: one note on the deal, its primary company and the project's
/// contact, created once even across redeliveries and crashes (SPEC §11).
pub async fn document_sent(
    services: &Services,
    account: &AccountId,
    event_id: &str,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, BoardSyncError> {
    let Some(project_id) = object["project_id"].as_u64() else {
        return Ok(Applied::Nothing);
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Applied::Nothing);
    };
    let board = BoardRef {
        kind: BoardObjectKind::Project,
        id: project_id,
    };
    let Some(link) = services
        .links
        .link_by_board(account, connection.portal_id, board)
        .await?
    else {
        return Ok(Applied::Nothing);
    };
    // A document sent before its project was deleted still belongs on the deal
    // (the deletion may even be handled first: events arrive in any order).
    if !matches!(link.state, LinkState::Enabled | LinkState::Deleted) {
        return Ok(Applied::Nothing);
    }
    let config = services.configs.config(account).await?;
    let name = Some(format!(
        "{} {}",
        object["document_number"].as_str().unwrap_or_default(),
        object["document_type"].as_str().unwrap_or_default()
    ));
    if matches!(connection.state, ConnectionState::Suspended) {
        record(
            services,
            Attempt {
                code: Some(Code::IntegrationSuspended),
                ..attempt(&link, name, config.version)
            },
        )
        .await;
        return Ok(Applied::Recorded(Code::IntegrationSuspended));
    }
    let intent = format!("note#{event_id}");
    let keep_until = services.clock.now() + super::worker::EVENT_MEMORY;
    let marker = note_marker(event_id);
    let token = match super::tokens::access_token(services, account).await {
        Ok(t) => t,
        Err(e) => {
            return failure(
                services,
                link,
                name,
                WriteError::Token(e),
                last_attempt,
                config.version,
            )
            .await;
        }
    };
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let now_ms = services.now_ms();
    match services
        .board_events
        .intent(account, &intent, services.clock.now())
        .await?
        .as_deref()
    {
        Some(pending) if pending.starts_with(PENDING) => {
            // A previous attempt may have created it before failing: adopt it.
            match services.write.find_note(&token, &marker).await {
                Ok(Some(id)) => {
                    services
                        .board_events
                        .set_intent(account, &intent, &id.to_string(), keep_until)
                        .await?;
                    info!(note = id, "note adopted after an interrupted attempt");
                    return Ok(Applied::Nothing);
                }
                // CRM search sees a new note only once it is indexed: a note the
                // last attempt may have created moments ago cannot be ruled out
                // yet, so look again later rather than create a second one.
                Ok(None)
                    if !last_attempt
                        && pending_since(pending)
                            .is_some_and(|at| now_ms - at < NOTE_INDEX_WAIT_MS) =>
                {
                    return Err(BoardSyncError::Transient(
                        "an earlier attempt's note may not be searchable yet".into(),
                    ));
                }
                Ok(None) => {}
                Err(e) => {
                    return failure(
                        services,
                        link,
                        name,
                        WriteError::HubSpot(e),
                        last_attempt,
                        config.version,
                    )
                    .await;
                }
            }
        }
        Some(NOT_CREATED) | None => {}
        Some(_) => return Ok(Applied::Nothing),
    }
    // Associations: the deal, its primary company, the project's contact when linked.
    let mut associations = vec![link.hubspot];
    if let Some(company) = link
        .baseline
        .get(super::linked_deals::COMPANY)
        .and_then(|b| b.hubspot.as_deref())
        .and_then(|c| c.parse().ok())
    {
        associations.push(crate::domain::HubSpotRef {
            object_type: HubSpotObjectType::Company,
            id: company,
        });
    }
    let project = services
        .board
        .get(account, crate::ports::BoardResource::Projects, project_id)
        .await;
    match project {
        Ok(project) => {
            if let Some(contact) = project.fields.get("contact_id").and_then(Value::as_u64)
                && let Some(contact_link) = services
                    .links
                    .link_by_board(
                        account,
                        connection.portal_id,
                        BoardRef {
                            kind: BoardObjectKind::CustomerContact,
                            id: contact,
                        },
                    )
                    .await?
                && contact_link.state == LinkState::Enabled
            {
                associations.push(contact_link.hubspot);
            }
        }
        Err(crate::ports::BoardError::NotFound) => {}
        Err(e) if !last_attempt => return Err(BoardSyncError::Transient(e.to_string())),
        Err(e) => warn!(error = %e, "project not read; the note goes without its contact"),
    }
    if let Err(wait) = super::budget::hubspot(services, connection.portal_id, 1).await {
        let error = HubSpotError::RateLimited {
            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            daily: false,
        };
        return failure(
            services,
            link,
            name,
            WriteError::HubSpot(error),
            last_attempt,
            config.version,
        )
        .await;
    }
    services
        .board_events
        .set_intent(account, &intent, &format!("{PENDING}:{now_ms}"), keep_until)
        .await?;
    let timestamp = services.clock.now().unix_timestamp() * 1000;
    let body = note_body(object, event_id);
    match services
        .write
        .create_note(&token, &body, timestamp, &associations)
        .await
    {
        Ok(id) => {
            services
                .board_events
                .set_intent(account, &intent, &id.to_string(), keep_until)
                .await?;
            record(
                services,
                Attempt {
                    action: Some("note_created"),
                    detail: Some(format!("note {id}")),
                    ..attempt(&link, name, config.version)
                },
            )
            .await;
            Ok(Applied::NoteCreated(id))
        }
        // The deal is gone: the note cannot be attached; the link is disabled once.
        Err(e) => {
            if !matches!(e, HubSpotError::Unavailable(_)) {
                // HubSpot answered and refused: nothing was created, so the
                // next attempt need not wait for the search index.
                services
                    .board_events
                    .set_intent(account, &intent, NOT_CREATED, keep_until)
                    .await?;
            }
            failure(
                services,
                link,
                name,
                WriteError::HubSpot(e),
                last_attempt,
                config.version,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_never_zero_and_follow_the_basis() {
        assert_eq!(amount(Some("0"), Some("0"), false), None);
        assert_eq!(amount(None, None, true), None);
        assert_eq!(
            amount(Some("100000"), Some("10000"), false).as_deref(),
            Some("100000")
        );
        assert_eq!(
            amount(Some("100000"), Some("10000"), true).as_deref(),
            Some("110000")
        );
        assert_eq!(
            amount(Some("1234.50"), None, false).as_deref(),
            Some("1234.5")
        );
    }

    #[test]
    fn notes_say_what_was_sent_in_japanese_with_the_marker() {
        let object = serde_json::json!({"project_id": 1, "document_type": "invoice", "document_number": "INV-000001",
            "issue_date": "2026-11-30", "total": "100000", "tax": "10000", "total_with_tax": "110000",
            "method": "post", "resend": true});
        let body = note_body(&object, "ev-9");
        assert_eq!(
            body,
            "<p>boardから請求書を送付しました(再送)</p><p>書類番号: INV-000001</p><p>発行日: 2026-11-30</p>\
             <p>金額(税抜): ¥100,000</p><p>金額(税込): ¥110,000</p><p>送付方法: 郵送</p><p>[board-doc:ev-9]</p>"
        );
    }

    #[test]
    fn ordered_dates_are_midnight_in_tokyo() {
        // 2026-12-01T00:00:00+09:00 = 2026-11-30T15:00:00Z
        assert_eq!(
            midnight_jst_ms("2026-12-01").as_deref(),
            Some("1796050800000")
        );
        assert_eq!(midnight_jst_ms("12/01/2026"), None);
    }
}
