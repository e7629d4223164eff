//! The draft list and its actions (business API, SPEC §5, §8).

use serde::Serialize;

use super::Services;
use super::hubspot_to_board::{SyncFailure, sync_deals};
use super::settings::SettingsError;
use crate::domain::draft::{Draft, DraftState};
use crate::domain::{AccountId, BoardUserId, DealId, OrderStatus};
use crate::ports::{Cursor, Page, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("HubSpot is not connected")]
    NotConnected,
    #[error("no draft for deal {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("HubSpot unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SyncFailure> for DraftError {
    fn from(e: SyncFailure) -> Self {
        match e {
            SyncFailure::Store(s) => Self::Store(s),
            SyncFailure::Conflict => Self::Store(StoreError::Conflict),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftView {
    pub id: String,
    pub deal_id: DealId,
    pub name: String,
    pub order_status: OrderStatus,
    pub order_status_label: &'static str,
    pub state: DraftState,
    pub reason: Option<String>,
    pub pipeline_id: String,
    pub stage_id: String,
    pub amount: Option<String>,
    pub close_date: Option<String>,
    pub owner_id: Option<String>,
    pub companies: Vec<crate::domain::draft::DraftCompany>,
    pub contacts: Vec<crate::domain::draft::DraftContact>,
    pub project_id: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

pub fn view(draft: Draft) -> DraftView {
    DraftView {
        id: draft.deal_id.to_string(),
        deal_id: draft.deal_id,
        name: draft.content.name,
        order_status: draft.content.order_status,
        order_status_label: draft.content.order_status.label_ja(),
        state: draft.state,
        reason: draft.reason,
        pipeline_id: draft.content.pipeline_id.to_string(),
        stage_id: draft.content.stage_id.to_string(),
        amount: draft.content.amount,
        close_date: draft.content.close_date,
        owner_id: draft.content.owner_id,
        companies: draft.content.companies,
        contacts: draft.content.contacts,
        project_id: draft.project_id,
        created_at: draft.created_at,
        updated_at: draft.updated_at,
    }
}

async fn connection(
    services: &Services,
    account: &AccountId,
) -> Result<crate::domain::connection::Connection, DraftError> {
    services
        .connections
        .get_connection(account)
        .await?
        .filter(|c| c.tokens.is_some())
        .ok_or(DraftError::NotConnected)
}

pub async fn list(
    services: &Services,
    account: &AccountId,
    state: DraftState,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<Page<DraftView>, DraftError> {
    let connection = connection(services, account).await?;
    let page = services
        .drafts
        .drafts(account, state, limit, cursor)
        .await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .filter(|d| d.portal_id == connection.portal_id)
            .map(view)
            .collect(),
        next: page.next,
    })
}

fn parse_deal(id: &str) -> Result<u64, DraftError> {
    id.parse::<DealId>()
        .map(DealId::get)
        .map_err(|_| DraftError::NotFound(id.to_owned()))
}

async fn load(
    services: &Services,
    account: &AccountId,
    id: &str,
) -> Result<(crate::domain::connection::Connection, Draft), DraftError> {
    let connection = connection(services, account).await?;
    let deal = parse_deal(id)?;
    let draft = services
        .drafts
        .draft(account, connection.portal_id, deal)
        .await?
        .ok_or_else(|| DraftError::NotFound(id.to_owned()))?;
    Ok((connection, draft))
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftDetail {
    #[serde(flatten)]
    pub draft: DraftView,
    /// The board user the owner table maps the deal's owner to, if any.
    pub suggested_user_id: Option<BoardUserId>,
    /// Customers to register the draft with: linked, look-alike, or to create.
    pub customer_suggestions: Vec<CustomerSuggestion>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerSuggestion {
    /// The HubSpot company it is about.
    pub company_id: String,
    pub company_name: String,
    /// An existing board customer, or null for "create from the company".
    pub client_id: Option<u64>,
    pub client_name: Option<String>,
    /// `linked`, `same_name`, `same_phone` or `create_from_company`.
    pub reason: &'static str,
}

/// Linked customer first, then look-alikes (normalised name: 株式会社/(株)/㈱,
/// full/half width; phone), then "create from the company".
async fn customer_suggestions(
    services: &Services,
    account: &AccountId,
    draft: &Draft,
) -> Vec<CustomerSuggestion> {
    use crate::domain::normalize::{comparable_name, phone, without_legal_form};
    use crate::domain::{HubSpotObjectType, HubSpotRef};
    use crate::ports::BoardResource;
    let mut out = Vec::new();
    let companies: Vec<_> = match draft.content.companies.iter().find(|c| c.primary) {
        Some(primary) => vec![primary],
        None => draft.content.companies.iter().take(3).collect(),
    };
    for company in companies {
        let reference = HubSpotRef {
            object_type: HubSpotObjectType::Company,
            id: company.id,
        };
        let suggestion =
            |client_id: Option<u64>, client_name: Option<String>, reason| CustomerSuggestion {
                company_id: company.id.to_string(),
                company_name: company.name.clone(),
                client_id,
                client_name,
                reason,
            };
        if let Ok(Some(link)) = services
            .links
            .link_by_hubspot(account, draft.portal_id, reference)
            .await
        {
            out.push(suggestion(Some(link.board.id), None, "linked"));
            continue;
        }
        let wanted = comparable_name(&company.name);
        let mut seen = std::collections::BTreeSet::new();
        if !wanted.is_empty()
            && let Ok(found) = services
                .board
                .find(
                    account,
                    BoardResource::Clients,
                    &[("name_cont", without_legal_form(&company.name))],
                )
                .await
        {
            for client in found
                .iter()
                .filter(|c| c.text("name").is_some_and(|n| comparable_name(n) == wanted))
            {
                seen.insert(client.id);
                out.push(suggestion(
                    Some(client.id),
                    client.text("name").map(str::to_owned),
                    "same_name",
                ));
            }
        }
        if let Some(tel) = company_phone(services, account, company.id)
            .await
            .and_then(|p| phone(&p))
            && let Ok(found) = services
                .board
                .find(account, BoardResource::Clients, &[("tel_eq", tel)])
                .await
        {
            for client in found.iter().filter(|c| !seen.contains(&c.id)) {
                out.push(suggestion(
                    Some(client.id),
                    client.text("name").map(str::to_owned),
                    "same_phone",
                ));
            }
        }
        out.push(suggestion(None, None, "create_from_company"));
    }
    out
}

async fn company_phone(services: &Services, account: &AccountId, company: u64) -> Option<String> {
    use secrecy::ExposeSecret;
    let token = super::tokens::access_token(services, account).await.ok()?;
    let (found, _) = services
        .batch
        .batch_read(
            token.expose_secret(),
            crate::domain::HubSpotObjectType::Company,
            &[company],
            &["phone"],
        )
        .await
        .ok()?
        .value;
    found
        .first()
        .and_then(|c| c.get("phone").map(str::to_owned))
}

pub async fn show(
    services: &Services,
    account: &AccountId,
    id: &str,
) -> Result<DraftDetail, DraftError> {
    let (_, draft) = load(services, account, id).await?;
    let suggested_user_id = match &draft.content.owner_id {
        Some(owner) => suggested_user(services, account, owner).await,
        None => None,
    };
    let customer_suggestions = customer_suggestions(services, account, &draft).await;
    Ok(DraftDetail {
        draft: view(draft),
        suggested_user_id,
        customer_suggestions,
    })
}

/// Through the owner table; when HubSpot or board cannot be asked, no suggestion.
async fn suggested_user(
    services: &Services,
    account: &AccountId,
    owner: &str,
) -> Option<BoardUserId> {
    match super::settings::owner_mapping(services, account).await {
        Ok(table) => table
            .items
            .into_iter()
            .find(|r| r.owner_id == owner)
            .and_then(|r| r.board_user_id),
        Err(SettingsError::Store(e)) => {
            tracing::warn!(error = %e, "owner table unavailable");
            None
        }
        Err(_) => None,
    }
}

pub async fn discard(
    services: &Services,
    account: &AccountId,
    id: &str,
) -> Result<DraftView, DraftError> {
    let (_, mut draft) = load(services, account, id).await?;
    match draft.state {
        DraftState::Registered => {
            return Err(DraftError::Conflict(
                "登録済みの下書き案件は破棄できません".into(),
            ));
        }
        DraftState::Discarded => return Ok(view(draft)),
        DraftState::Open | DraftState::Withdrawn => {}
    }
    draft.state = DraftState::Discarded;
    draft.updated_at = services.clock.now();
    services
        .drafts
        .save_draft(&draft)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => DraftError::Conflict(
                "下書き案件が同時に更新されました。もう一度お試しください".into(),
            ),
            other => other.into(),
        })?;
    Ok(view(draft))
}

/// Restores a discarded or withdrawn draft: the deal is read again and the
/// draft reopens only if it qualifies; otherwise the reason is returned.
pub async fn restore(
    services: &Services,
    account: &AccountId,
    id: &str,
) -> Result<DraftView, DraftError> {
    let (connection, mut draft) = load(services, account, id).await?;
    match draft.state {
        DraftState::Registered => {
            return Err(DraftError::Conflict("登録済みの下書き案件です".into()));
        }
        DraftState::Open => return Ok(view(draft)),
        DraftState::Discarded => {
            draft.state = DraftState::Withdrawn;
            draft.updated_at = services.clock.now();
            services.drafts.save_draft(&draft).await?;
        }
        DraftState::Withdrawn => {}
    }
    let deals = std::collections::BTreeMap::from([(
        draft.deal_id.get(),
        std::collections::BTreeSet::from(["restore".to_owned()]),
    )]);
    sync_deals(services, &connection, &deals, false).await?;
    let (_, after) = load(services, account, id).await?;
    if after.state != DraftState::Open {
        return Err(DraftError::Conflict(
            after
                .reason
                .unwrap_or_else(|| "取引が連携条件を満たしていません".into()),
        ));
    }
    Ok(view(after))
}

/// `POST /v1/hubspot/deals/{deal_id}/redraft`: a deal whose project was deleted
/// in board never re-drafts by itself (its link ends with `project_not_found`);
/// a user brings it back. The link and the deal's claim end in one store
/// transaction, and the deal is read again through the entry gates: a draft
/// again when it qualifies, else withdrawn with the reason.
pub async fn redraft(
    services: &Services,
    account: &AccountId,
    id: &str,
) -> Result<DraftView, DraftError> {
    let connection = connection(services, account).await?;
    let portal = connection.portal_id;
    let deal = parse_deal(id)?;
    let reference = crate::domain::HubSpotRef {
        object_type: crate::domain::HubSpotObjectType::Deal,
        id: deal,
    };
    let link = services
        .links
        .link_by_hubspot(account, portal, reference)
        .await?
        .ok_or_else(|| DraftError::NotFound(id.to_owned()))?;
    if link.state != crate::domain::LinkState::Deleted {
        return Err(DraftError::Conflict(
            "boardで案件が削除された取引のみ下書き案件に戻せます".into(),
        ));
    }
    services
        .links
        .unlink_deal(&link)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                DraftError::Conflict("同時に更新されました。もう一度お試しください".into())
            }
            other => other.into(),
        })?;
    if let Some(mut draft) = services.drafts.draft(account, portal, deal).await? {
        draft.state = DraftState::Withdrawn;
        draft.project_id = None;
        draft.reason = Some("boardの案件が削除されました".into());
        draft.updated_at = services.clock.now();
        services.drafts.save_draft(&draft).await?;
    }
    let deals = std::collections::BTreeMap::from([(
        deal,
        std::collections::BTreeSet::from(["redraft".to_owned()]),
    )]);
    sync_deals(services, &connection, &deals, false).await?;
    services
        .drafts
        .draft(account, portal, deal)
        .await?
        .map(view)
        .ok_or_else(|| DraftError::Conflict("取引が連携条件を満たしていません".into()))
}
