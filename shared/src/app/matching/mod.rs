//! First-connection matching (issue 20): reads every board customer and
//! customer contact and every HubSpot company and contact, page by page inside
//! the rate budgets, and proposes links (`domain::matching`); an administrator
//! approves them. Matching writes nothing to board or HubSpot; approval only
//! creates links (baselines empty: differing fields sync on the next change,
//! later-wins, as after a registration).
//!
//! The job runs in the worker as `Job::Matching` slices of `SLICE`: each
//! page read is saved before the state moves on (`matching#<account>` and its
//! pages in the store), so a crash or a deploy resumes at the page it was
//! on, and the next slice is queued before a slice ends.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::Services;
use super::budgeted_hubspot::BudgetedHubSpot;
use super::failure::SyncFailure;
use super::jobs::{Job, QueueMessage};
use super::tokens::access_token;
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::matching::{Match, Party};
use crate::domain::{AccountId, BoardObjectKind, HubSpotObjectType};
use crate::ports::{BoardResource, StoreError};

mod approve;
mod propose;
pub use approve::{Approval, Approved, Undone, approve, proposals, undo};
use propose::{COMPANY_PROPERTIES, CONTACT_PROPERTIES, board_party, hubspot_party};

/// How long one worker invocation reads before handing on.
const SLICE: Duration = Duration::from_secs(10);
/// Proposals saved per stored chunk.
const CHUNK: usize = 400;
const PAGE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    BoardCustomers,
    BoardContacts,
    HubspotCompanies,
    HubspotContacts,
    Matching,
    Done,
}

impl Phase {
    fn source(self) -> &'static str {
        match self {
            Self::BoardCustomers => "board_customers",
            Self::BoardContacts => "board_contacts",
            Self::HubspotCompanies => "hubspot_companies",
            Self::HubspotContacts => "hubspot_contacts",
            Self::Matching | Self::Done => "proposals",
        }
    }
}

/// Records read per source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    pub board_customers: usize,
    pub board_contacts: usize,
    pub hubspot_companies: usize,
    pub hubspot_contacts: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCounts {
    pub sure: usize,
    pub ambiguous: usize,
    pub none: usize,
}

/// The job's state, as stored and as `GET /matching` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchingState {
    pub run: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub reason: Option<String>,
    pub phase: Phase,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Records read so far, per source.
    pub read: Counts,
    /// Pages saved per source (the next board page is this + 1).
    #[serde(default)]
    pub pages: BTreeMap<String, u32>,
    /// HubSpot's `after` for the next page of the current source.
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub proposal_chunks: u32,
    #[serde(default)]
    pub groups: GroupCounts,
    /// Seconds left, estimated from the pace so far (null while unknown).
    #[serde(default)]
    pub estimated_seconds_left: Option<u64>,
}

/// A proposal as stored and listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    pub id: String,
    /// `customer` or `customer_contact`.
    pub kind: BoardObjectKind,
    #[serde(flatten)]
    pub matched: Match,
    #[serde(default)]
    pub approved: Option<u64>,
}

fn state_key(account: &AccountId) -> String {
    format!("matching#{account}")
}

fn page_key(account: &AccountId, run: &str, source: &str, page: u32) -> String {
    format!("matching#{account}#{run}#{source}#{page}")
}

#[derive(Debug, thiserror::Error)]
pub enum MatchingError {
    #[error("not connected")]
    NotConnected,
    #[error("already running")]
    Running,
    #[error("no matching has run")]
    NotStarted,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn state(
    services: &Services,
    account: &AccountId,
) -> Result<Option<MatchingState>, StoreError> {
    let raw = services.watermarks.watermark(&state_key(account)).await?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

async fn save_state(
    services: &Services,
    account: &AccountId,
    state: &MatchingState,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(state).expect("state serializes");
    services
        .watermarks
        .set_watermark(&state_key(account), &text)
        .await
}

async fn active(services: &Services, account: &AccountId) -> Result<Connection, MatchingError> {
    match services.connections.get_connection(account).await? {
        Some(c) if c.state == ConnectionState::Active => Ok(c),
        _ => Err(MatchingError::NotConnected),
    }
}

/// `POST /matching`: starts a run (a running one is not started twice).
pub async fn start(
    services: &Services,
    account: &AccountId,
) -> Result<MatchingState, MatchingError> {
    active(services, account).await?;
    if let Some(current) = state(services, account).await?
        && current.state == "running"
    {
        return Err(MatchingError::Running);
    }
    let state = MatchingState {
        run: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        state: "running".into(),
        reason: None,
        phase: Phase::BoardCustomers,
        started_at: services.clock.now(),
        finished_at: None,
        read: Counts::default(),
        pages: BTreeMap::new(),
        after: None,
        proposal_chunks: 0,
        groups: GroupCounts::default(),
        estimated_seconds_left: None,
    };
    save_state(services, account, &state).await?;
    queue(services, account, &state.run).await?;
    info!(account = %account, run = %state.run, "matching started");
    Ok(state)
}

async fn queue(services: &Services, account: &AccountId, run: &str) -> Result<(), StoreError> {
    let body = QueueMessage::to_body(&Job::Matching {
        account_id: account.clone(),
        run: run.to_owned(),
    });
    services.queue.send_batch(&[body]).await
}

/// The worker's side: one slice of the run.
pub async fn run_slice(
    services: &Services,
    account: &AccountId,
    run: &str,
) -> Result<(), SyncFailure> {
    let Some(mut state) = state(services, account).await? else {
        return Ok(());
    };
    if state.run != run || state.state != "running" {
        return Ok(());
    }
    let connection = match active(services, account).await {
        Ok(c) => c,
        Err(_) => {
            return fail(
                services,
                account,
                state,
                "HubSpotとの連携が有効ではありません",
            )
            .await;
        }
    };
    let token = match access_token(services, account).await {
        Ok(t) => t,
        Err(e) => return fail(services, account, state, &e.to_string()).await,
    };
    let hubspot = BudgetedHubSpot::new(
        services,
        &connection,
        secrecy::ExposeSecret::expose_secret(&token),
    );
    let began = std::time::Instant::now();
    while began.elapsed() < SLICE && state.phase != Phase::Done {
        step(services, &hubspot, account, &mut state).await?;
        estimate(services, &mut state);
        save_state(services, account, &state).await?;
    }
    if state.phase != Phase::Done {
        queue(services, account, run).await?;
    }
    Ok(())
}

async fn fail(
    services: &Services,
    account: &AccountId,
    mut state: MatchingState,
    reason: &str,
) -> Result<(), SyncFailure> {
    warn!(account = %account, reason, "matching failed");
    state.state = "failed".into();
    state.reason = Some(reason.to_owned());
    state.finished_at = Some(services.clock.now());
    save_state(services, account, &state).await?;
    Ok(())
}

/// Seconds left from the pace so far: records per second over what is left
/// of the sources read, and the matching itself at a tenth of that.
fn estimate(services: &Services, state: &mut MatchingState) {
    let elapsed = (services.clock.now() - state.started_at).as_seconds_f64();
    let read = state.read.board_customers
        + state.read.board_contacts
        + state.read.hubspot_companies
        + state.read.hubspot_contacts;
    if state.phase == Phase::Done {
        state.estimated_seconds_left = Some(0);
    } else if read > 0 && elapsed > 0.0 {
        // Sources not yet begun are taken as large as the largest one read.
        let largest = [
            state.read.board_customers,
            state.read.board_contacts,
            state.read.hubspot_companies,
            state.read.hubspot_contacts,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let phases_left = match state.phase {
            Phase::BoardCustomers => 3,
            Phase::BoardContacts => 2,
            Phase::HubspotCompanies => 1,
            _ => 0,
        };
        let left = (largest * phases_left) as f64;
        state.estimated_seconds_left = Some((left / (read as f64 / elapsed)).ceil() as u64 + 1);
    }
}

async fn save_page(
    services: &Services,
    account: &AccountId,
    state: &mut MatchingState,
    parties: &[Party],
) -> Result<(), StoreError> {
    let source = state.phase.source();
    let n = state.pages.get(source).copied().unwrap_or(0) + 1;
    services
        .watermarks
        .set_watermark(
            &page_key(account, &state.run, source, n),
            &serde_json::to_string(parties).expect("parties serialize"),
        )
        .await?;
    state.pages.insert(source.to_owned(), n);
    Ok(())
}

async fn load(
    services: &Services,
    account: &AccountId,
    state: &MatchingState,
    source: &str,
) -> Result<Vec<Party>, StoreError> {
    let mut out = Vec::new();
    for n in 1..=state.pages.get(source).copied().unwrap_or(0) {
        if let Some(raw) = services
            .watermarks
            .watermark(&page_key(account, &state.run, source, n))
            .await?
        {
            out.extend(serde_json::from_str::<Vec<Party>>(&raw).unwrap_or_default());
        }
    }
    Ok(out)
}

async fn step(
    services: &Services,
    hubspot: &BudgetedHubSpot<'_>,
    account: &AccountId,
    state: &mut MatchingState,
) -> Result<(), SyncFailure> {
    match state.phase {
        Phase::BoardCustomers | Phase::BoardContacts => {
            let contact = state.phase == Phase::BoardContacts;
            let resource = if contact {
                BoardResource::Contacts
            } else {
                BoardResource::Clients
            };
            let page = state.pages.get(state.phase.source()).copied().unwrap_or(0) + 1;
            let records = services
                .board
                .find(account, resource, &[("page", page.to_string())])
                .await
                .map_err(SyncFailure::from)?;
            let parties: Vec<Party> = records.iter().map(|r| board_party(r, contact)).collect();
            save_page(services, account, state, &parties).await?;
            if contact {
                state.read.board_contacts += parties.len();
            } else {
                state.read.board_customers += parties.len();
            }
            if records.len() < PAGE {
                state.phase = if contact {
                    Phase::HubspotCompanies
                } else {
                    Phase::BoardContacts
                };
            }
        }
        Phase::HubspotCompanies | Phase::HubspotContacts => {
            let contact = state.phase == Phase::HubspotContacts;
            let (kind, properties): (_, &[&str]) = if contact {
                (HubSpotObjectType::Contact, &CONTACT_PROPERTIES)
            } else {
                (HubSpotObjectType::Company, &COMPANY_PROPERTIES)
            };
            let (objects, next) = hubspot
                .list_page(kind, properties, state.after.as_deref())
                .await
                .map_err(SyncFailure::from)?;
            let parties: Vec<Party> = objects.iter().map(|o| hubspot_party(o, contact)).collect();
            save_page(services, account, state, &parties).await?;
            if contact {
                state.read.hubspot_contacts += parties.len();
            } else {
                state.read.hubspot_companies += parties.len();
            }
            state.after = next;
            if state.after.is_none() {
                state.phase = if contact {
                    Phase::Matching
                } else {
                    Phase::HubspotContacts
                };
            }
        }
        Phase::Matching => {
            propose::propose(services, account, state).await?;
            state.phase = Phase::Done;
            state.state = "done".into();
            state.finished_at = Some(services.clock.now());
            info!(account = %account, run = %state.run, sure = state.groups.sure,
                  ambiguous = state.groups.ambiguous, none = state.groups.none, "matching done");
        }
        Phase::Done => {}
    }
    Ok(())
}
