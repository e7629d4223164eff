//! A registration end to end, idempotent: the deal claimed under a lease (a second request waits
//! for the first), the project created in board, the links and baselines written, drafts elsewhere withdrawn.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use tracing::{info, instrument, warn};

use crate::app::Services;
use crate::app::history::{Attempt, record};
use crate::app::hubspot_to_board::sync_deals;
use crate::app::tokens::{TokenError, access_token};
use crate::domain::connection::Connection;
use crate::domain::dates::portal_date;
use crate::domain::draft::{Draft, DraftState};
use crate::domain::history::Direction;
use crate::domain::{AccountId, DealId, Link, OrderStatus, UserId};
use crate::ports::{BoardError, BoardResource, ClaimError, StoreError};

use super::customers::*;
use super::request::*;

pub(super) const LEASE: Duration = Duration::from_secs(60);

/// Registers; a second submit (or a concurrent one) returns the same project.
#[instrument(skip_all, fields(account = %account, deal = %deal_id))]
pub async fn register(
    services: &Services,
    account: &AccountId,
    user: &UserId,
    only_self_as_person_in_charge: bool,
    deal_id: &str,
    body: Registration,
) -> Result<u64, RegisterError> {
    let connection = services
        .connections
        .get_connection(account)
        .await?
        .filter(|c| c.tokens.is_some())
        .ok_or(RegisterError::NotConnected)?;
    let deal = deal_id
        .parse::<DealId>()
        .map_err(|_| RegisterError::NotFound(deal_id.to_owned()))?;
    let portal = connection.portal_id;
    let draft = services
        .drafts
        .draft(account, portal, deal.get())
        .await?
        .ok_or_else(|| RegisterError::NotFound(deal_id.to_owned()))?;
    if let (DraftState::Registered, Some(project)) = (draft.state, draft.project_id) {
        return Ok(project);
    }
    if only_self_as_person_in_charge && user.as_str() != body.user_id.to_string() {
        return Err(RegisterError::Forbidden(
            "担当者権限では自分を担当者とする場合のみ登録できます".into(),
        ));
    }
    let invoice_fields = invoicing(&body)?;
    let lease = format!("register#{account}#{portal}#{deal}");
    let holder = uuid::Uuid::new_v4().to_string();
    if !services
        .leases
        .try_acquire(&lease, &holder, services.clock.now(), LEASE)
        .await?
    {
        return wait_for_other(services, account, portal, deal.get()).await;
    }
    let result = register_held(services, &connection, &draft, body, invoice_fields).await;
    if let Err(e) = services.leases.release(&lease, &holder).await {
        warn!(error = %e, "registration lease not released; it expires");
    }
    result
}

/// A concurrent submit: wait for the first one's project.
pub(super) async fn wait_for_other(
    services: &Services,
    account: &AccountId,
    portal: crate::domain::PortalId,
    deal: u64,
) -> Result<u64, RegisterError> {
    // A pacing step at most (50 × 50 ms); then "in progress" (409), asked again later.
    for _ in 0..50 {
        if let Some(d) = services.drafts.draft(account, portal, deal).await?
            && let (DraftState::Registered, Some(project)) = (d.state, d.project_id)
        {
            return Ok(project);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(RegisterError::Conflict(
        "同じ下書き案件の登録が進行中です。しばらくしてから確認してください".into(),
    ))
}

pub(super) async fn register_held(
    services: &Services,
    connection: &Connection,
    draft: &Draft,
    body: Registration,
    invoice_fields: Map<String, Value>,
) -> Result<u64, RegisterError> {
    let account = &connection.account_id;
    let portal = connection.portal_id;
    let deal = draft.deal_id.get();
    // The deal must still qualify: read it again now.
    let deals = std::collections::BTreeMap::from([(
        deal,
        std::collections::BTreeSet::from(["register".to_owned()]),
    )]);
    sync_deals(services, connection, &deals, false).await?;
    let draft = services
        .drafts
        .draft(account, portal, deal)
        .await?
        .ok_or_else(|| RegisterError::NotFound(deal.to_string()))?;
    match draft.state {
        DraftState::Open => {}
        DraftState::Registered => {
            return draft
                .project_id
                .ok_or_else(|| RegisterError::Conflict("登録済みです".into()));
        }
        _ => {
            return Err(RegisterError::NotQualifying(
                draft
                    .reason
                    .clone()
                    .unwrap_or_else(|| "取引が連携条件を満たしていません".into()),
            ));
        }
    }
    // Claim before create: once the deal is ours, no other account can link it
    // while board's customer and project are created, so a lost race never
    // leaves an unlinked project behind.
    match services.links.reserve_deal(account, portal, deal).await {
        Ok(()) => {}
        Err(ClaimError::ClaimedBy(other)) => {
            return Err(RegisterError::Conflict(format!(
                "他のboardアカウント({other})と連携済み"
            )));
        }
        Err(ClaimError::AlreadyLinked) => {}
        Err(ClaimError::Store(e)) => return Err(e.into()),
    }
    match create_and_link(services, connection, &draft, body, invoice_fields).await {
        Ok(project_id) => Ok(project_id),
        Err(error) => {
            // Nothing linked: the claim goes back, so the deal can be registered
            // again (here or, if this account gives up, in another). A failure
            // after the link was written keeps it (the link is the claim's reason).
            let reference = crate::domain::HubSpotRef {
                object_type: crate::domain::HubSpotObjectType::Deal,
                id: deal,
            };
            let linked = services
                .links
                .link_by_hubspot(account, portal, reference)
                .await;
            if matches!(linked, Ok(None))
                && let Err(e) = services.links.release_deal(account, portal, deal).await
            {
                warn!(error = %e, deal, "claim of a failed registration not released");
            }
            Err(error)
        }
    }
}

/// The customer, contacts and project created in board and the deal linked to
/// the project, once the deal is claimed.
async fn create_and_link(
    services: &Services,
    connection: &Connection,
    draft: &Draft,
    body: Registration,
    invoice_fields: Map<String, Value>,
) -> Result<u64, RegisterError> {
    let account = &connection.account_id;
    let portal = connection.portal_id;
    let deal = draft.deal_id.get();
    let users = services.board.users(account).await?;
    if !users.iter().any(|u| u.id.get() == body.user_id) {
        return Err(invalid(
            "user_id",
            "このboardアカウントのユーザーではありません",
        ));
    }
    let token = access_token(services, account).await.map_err(|e| match e {
        TokenError::Store(s) => RegisterError::Store(s),
        TokenError::NotConnected => RegisterError::NotConnected,
        other => RegisterError::Unavailable(other.to_string()),
    })?;
    let token = token.expose_secret();
    let client_id = customer(services, connection, draft, &body, token).await?;
    let contact_ids = contacts(services, connection, draft, &body, client_id).await?;
    let project_contact = match body.contact_id {
        Some(id) => {
            let contact = services
                .board
                .get(account, BoardResource::Contacts, id)
                .await
                .map_err(|e| match e {
                    BoardError::NotFound => invalid("contact_id", "顧客担当者が見つかりません"),
                    other => other.into(),
                })?;
            if contact.fields.get("client_id").and_then(Value::as_u64) != Some(client_id) {
                return Err(invalid("contact_id", "選択した顧客の担当者ではありません"));
            }
            Some(id)
        }
        None => contact_ids.first().copied(),
    };
    let project_id = project(
        services,
        connection,
        draft,
        &body,
        client_id,
        project_contact,
        invoice_fields,
    )
    .await?;
    let link = Link {
        last_synced_at: Some(services.clock.now()),
        baseline: crate::domain::mapping::initial_baseline(
            crate::domain::mapping::deal_values(
                Some(&draft.content.name),
                Some(draft.content.pipeline_id.as_str()),
                Some(draft.content.stage_id.as_str()),
                draft.content.close_date.as_deref(),
                connection.zone(),
            ),
            draft
                .content
                .companies
                .iter()
                .find(|c| c.primary)
                .map(|c| c.id),
        ),
        ..Link::deal(account.clone(), portal, deal, project_id)
    };
    let mut link = link;
    // board's own fields as registration set them: its change events for them are echoes.
    link.baseline.insert(
        crate::domain::mapping::ORDER_STATUS.into(),
        crate::domain::link::Baseline {
            hubspot: None,
            board: Some(draft.content.order_status.code().to_string()),
            board_sent: None,
            hubspot_sent: None,
        },
    );
    link.baseline.insert(
        crate::domain::mapping::OWNER.into(),
        crate::domain::link::Baseline {
            hubspot: draft.content.owner_id.clone(),
            board: Some(body.user_id.to_string()),
            board_sent: None,
            hubspot_sent: None,
        },
    );
    match services.links.claim_deal(&link).await {
        Ok(()) | Err(ClaimError::AlreadyLinked) => {}
        Err(ClaimError::ClaimedBy(other)) => {
            warn!(project_id, %other, "the deal was claimed by another account meanwhile; the project stays unlinked");
            return Err(RegisterError::Conflict(format!(
                "他のboardアカウント({other})と連携済み"
            )));
        }
        Err(ClaimError::Store(e)) => return Err(e.into()),
    }
    let now = services.clock.now();
    let mut registered = draft.clone();
    registered.state = DraftState::Registered;
    registered.project_id = Some(project_id);
    registered.updated_at = now;
    services.drafts.save_draft(&registered).await?;
    withdraw_elsewhere(services, connection, deal).await?;
    let config_version = services.configs.config(account).await?.version;
    record(
        services,
        Attempt {
            account,
            direction: Direction::HubspotToBoard,
            hubspot: Some(link.hubspot),
            board: Some(link.board),
            name: Some(draft.content.name.clone()),
            code: None,
            action: Some("project_registered"),
            detail: None,
            warnings: Vec::new(),
            config_version,
        },
    )
    .await;
    info!(project_id, "draft registered");
    Ok(project_id)
}

/// The project, last: found by its marker (a retry after a crash) or created.
pub(super) async fn project(
    services: &Services,
    connection: &Connection,
    draft: &Draft,
    body: &Registration,
    client_id: u64,
    contact_id: Option<u64>,
    invoice_fields: Map<String, Value>,
) -> Result<u64, RegisterError> {
    let account = &connection.account_id;
    let zone = connection.zone();
    let marker = format!("hubspot:deal:{}", draft.deal_id);
    if let Some(existing) = services
        .board
        .find(
            account,
            BoardResource::Projects,
            &[("management_no_eq", marker.clone())],
        )
        .await?
        .first()
    {
        return Ok(existing.id);
    }
    let status = draft.content.order_status;
    let mut fields = invoice_fields;
    fields.insert("name".into(), json!(draft.content.name));
    fields.insert("client_id".into(), json!(client_id));
    fields.insert("user_id".into(), json!(body.user_id));
    fields.insert("order_status".into(), json!(status.code()));
    fields.insert("management_no".into(), json!(marker));
    if let Some(contact) = contact_id {
        fields.insert("contact_id".into(), json!(contact));
    }
    if matches!(status, OrderStatus::OrderConfirmed | OrderStatus::Ordered)
        && let Some(date) = draft
            .content
            .close_date
            .as_deref()
            .and_then(|d| portal_date(d, zone))
    {
        fields.insert("order_date".into(), json!(date));
    }
    Ok(services
        .board
        .create(account, BoardResource::Projects, fields)
        .await?
        .id)
}

/// The deal is this account's now: the other accounts' drafts of it are withdrawn.
pub(super) async fn withdraw_elsewhere(
    services: &Services,
    connection: &Connection,
    deal: u64,
) -> Result<(), StoreError> {
    let label = services
        .configs
        .config(&connection.account_id)
        .await?
        .label
        .map(|l| l.as_str().to_owned())
        .or(connection.account_name.clone())
        .unwrap_or_else(|| connection.account_id.to_string());
    for other in services
        .connections
        .connections_of_portal(connection.portal_id)
        .await?
    {
        if other.account_id == connection.account_id {
            continue;
        }
        if let Some(mut draft) = services
            .drafts
            .draft(&other.account_id, connection.portal_id, deal)
            .await?
            && matches!(draft.state, DraftState::Open | DraftState::Withdrawn)
        {
            draft.state = DraftState::Withdrawn;
            draft.reason = Some(format!("他のboardアカウント({label})と連携済み"));
            draft.updated_at = services.clock.now();
            match services.drafts.save_draft(&draft).await {
                Ok(_) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
