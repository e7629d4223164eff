//! The proposals of a finished run, and their approval: links created in one
//! step, idempotently, nothing written to board or HubSpot.

use std::collections::BTreeMap;

use serde::Serialize;
use tracing::info;

use super::{MatchingError, MatchingState, Proposal, active, page_key, state};
use crate::app::Services;
use crate::domain::link::{Link, LinkState};
use crate::domain::matching::Group;
use crate::domain::{AccountId, BoardObjectKind, BoardRef, HubSpotObjectType, HubSpotRef};
use crate::ports::StoreError;

/// Every proposal of the last finished run, with its chunk number.
pub async fn proposals(
    services: &Services,
    account: &AccountId,
) -> Result<(MatchingState, Vec<(u32, Proposal)>), MatchingError> {
    let state = state(services, account)
        .await?
        .ok_or(MatchingError::NotStarted)?;
    let mut out = Vec::new();
    for n in 1..=state.proposal_chunks {
        if let Some(raw) = services
            .watermarks
            .watermark(&page_key(account, &state.run, "proposals", n))
            .await?
        {
            out.extend(
                serde_json::from_str::<Vec<Proposal>>(&raw)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| (n, p)),
            );
        }
    }
    Ok((state, out))
}

/// What to approve.
pub enum Approval {
    /// Each proposal's best candidate.
    Ids(Vec<String>),
    /// Every proposal of a group, its best candidate.
    Group(Group),
    /// Chosen candidates: (proposal id, HubSpot id).
    Choices(Vec<(String, u64)>),
}

#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approved {
    /// Links created now.
    pub linked: usize,
    /// Already linked this way (approved before): nothing to do.
    pub already: usize,
    /// Not linked: the board record or the HubSpot object is linked to
    /// something else, or the proposal has no such candidate.
    pub refused: usize,
    /// The approval's id, to undo it (`POST /matching/undo`); null when it
    /// created no link.
    pub batch: Option<String>,
}

/// One link an approval created, as its batch records it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct Created {
    proposal: String,
    board: BoardRef,
    hubspot: HubSpotRef,
}

fn batch_key(account: &AccountId, run: &str, batch: &str) -> String {
    format!("matching#{account}#{run}#batch#{batch}")
}

#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Undone {
    /// Links removed.
    pub removed: usize,
    /// Links kept: synced since the approval (their values moved), or gone.
    pub kept: usize,
}

/// Undoes an approval: removes the links it created that nothing has synced
/// through since (a link that synced keeps its history and stays). Writes
/// nothing to board or HubSpot.
pub async fn undo(
    services: &Services,
    account: &AccountId,
    batch: &str,
) -> Result<Undone, MatchingError> {
    let connection = active(services, account).await?;
    let state = state(services, account)
        .await?
        .ok_or(MatchingError::NotStarted)?;
    let key = batch_key(account, &state.run, batch);
    let raw = services
        .watermarks
        .watermark(&key)
        .await?
        .ok_or_else(|| MatchingError::Invalid("no such approval in the last run".into()))?;
    let created: Vec<Created> = serde_json::from_str(&raw).unwrap_or_default();
    let mut result = Undone::default();
    let mut undone = Vec::new();
    for c in &created {
        let link = services
            .links
            .link_by_board(account, connection.portal_id, c.board)
            .await?;
        match link {
            Some(link)
                if link.hubspot == c.hubspot
                    && link.last_synced_at.is_none()
                    && link.baseline.is_empty() =>
            {
                match services.links.delete_link(&link).await {
                    Ok(()) => {
                        result.removed += 1;
                        undone.push(c.proposal.clone());
                    }
                    Err(StoreError::Conflict) => result.kept += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => result.kept += 1,
        }
    }
    // The batch is spent; its proposals show as not approved again.
    services.watermarks.set_watermark(&key, "[]").await?;
    for n in 1..=state.proposal_chunks {
        let chunk_key = page_key(account, &state.run, "proposals", n);
        if let Some(raw) = services.watermarks.watermark(&chunk_key).await? {
            let mut chunk: Vec<Proposal> = serde_json::from_str(&raw).unwrap_or_default();
            let mut changed = false;
            for p in &mut chunk {
                if undone.contains(&p.id) {
                    p.approved = None;
                    changed = true;
                }
            }
            if changed {
                services
                    .watermarks
                    .set_watermark(
                        &chunk_key,
                        &serde_json::to_string(&chunk).expect("serializes"),
                    )
                    .await?;
            }
        }
    }
    info!(account = %account, batch, removed = result.removed, kept = result.kept, "matching approval undone");
    Ok(result)
}

/// Creates the approved links, idempotently; writes nothing to board or HubSpot.
pub async fn approve(
    services: &Services,
    account: &AccountId,
    approval: Approval,
) -> Result<Approved, MatchingError> {
    let connection = active(services, account).await?;
    let (state, all) = proposals(services, account).await?;
    if state.state != "done" {
        return Err(MatchingError::Invalid(
            "the matching has not finished".into(),
        ));
    }
    let mut chosen: Vec<(u32, String, u64)> = Vec::new();
    let mut refused = 0;
    match approval {
        Approval::Ids(ids) => {
            for id in ids {
                match all.iter().find(|(_, p)| p.id == id) {
                    Some((n, p)) if !p.matched.candidates.is_empty() => {
                        chosen.push((*n, id, p.matched.candidates[0].hubspot_id))
                    }
                    _ => refused += 1,
                }
            }
        }
        Approval::Group(group) => {
            for (n, p) in &all {
                if p.matched.group == group && !p.matched.candidates.is_empty() {
                    chosen.push((*n, p.id.clone(), p.matched.candidates[0].hubspot_id));
                }
            }
        }
        Approval::Choices(choices) => {
            for (id, hubspot_id) in choices {
                match all.iter().find(|(_, p)| p.id == id) {
                    Some((n, p))
                        if p.matched
                            .candidates
                            .iter()
                            .any(|c| c.hubspot_id == hubspot_id) =>
                    {
                        chosen.push((*n, id, hubspot_id))
                    }
                    _ => refused += 1,
                }
            }
        }
    }
    let mut result = Approved {
        refused,
        ..Approved::default()
    };
    let mut approved: BTreeMap<u32, Vec<(String, u64)>> = BTreeMap::new();
    let mut created: Vec<Created> = Vec::new();
    for (n, id, hubspot_id) in chosen {
        let Some((_, proposal)) = all.iter().find(|(_, p)| p.id == id) else {
            continue;
        };
        let (kind, object_type) = match proposal.kind {
            BoardObjectKind::Customer => (BoardObjectKind::Customer, HubSpotObjectType::Company),
            _ => (BoardObjectKind::CustomerContact, HubSpotObjectType::Contact),
        };
        let board = BoardRef {
            kind,
            id: proposal.matched.board_id,
        };
        let hubspot = HubSpotRef {
            object_type,
            id: hubspot_id,
        };
        match services
            .links
            .link_by_board(account, connection.portal_id, board)
            .await?
        {
            Some(existing) if existing.hubspot == hubspot => {
                result.already += 1;
                continue;
            }
            Some(_) => {
                result.refused += 1;
                continue;
            }
            None => {}
        }
        let elsewhere = services
            .links
            .link_by_hubspot(account, connection.portal_id, hubspot)
            .await?;
        if elsewhere.is_some() {
            result.refused += 1;
            continue;
        }
        let link = Link {
            account_id: account.clone(),
            portal_id: connection.portal_id,
            hubspot,
            board,
            state: LinkState::Enabled,
            last_synced_at: None,
            baseline: Default::default(),
            revision: 0,
        };
        match services.links.create_link(&link).await {
            Ok(()) => {
                result.linked += 1;
                created.push(Created {
                    proposal: id.clone(),
                    board,
                    hubspot,
                });
            }
            Err(StoreError::Conflict) => result.already += 1,
            Err(e) => return Err(e.into()),
        }
        approved.entry(n).or_default().push((id, hubspot_id));
    }
    // Marks the approved proposals (the list shows them).
    for (n, marks) in approved {
        let key = page_key(account, &state.run, "proposals", n);
        if let Some(raw) = services.watermarks.watermark(&key).await? {
            let mut chunk: Vec<Proposal> = serde_json::from_str(&raw).unwrap_or_default();
            for p in &mut chunk {
                if let Some((_, h)) = marks.iter().find(|(id, _)| *id == p.id) {
                    p.approved = Some(*h);
                }
            }
            services
                .watermarks
                .set_watermark(&key, &serde_json::to_string(&chunk).expect("serializes"))
                .await?;
        }
    }
    if !created.is_empty() {
        let batch = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        services
            .watermarks
            .set_watermark(
                &batch_key(account, &state.run, &batch),
                &serde_json::to_string(&created).expect("serializes"),
            )
            .await?;
        result.batch = Some(batch);
    }
    info!(account = %account, linked = result.linked, already = result.already,
          refused = result.refused, batch = ?result.batch, "matching approved");
    Ok(result)
}
