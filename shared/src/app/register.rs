//! Registering a draft as a board project (SPEC §5, §11): the user's choices
//! fill what HubSpot cannot give; what is missing in board is created — the
//! customer, its contacts, the project last — each behind a marker we can
//! search for, so a retry after a crash adopts what exists instead of creating
//! twice. The deal is claimed for this account with a conditional write.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tracing::{info, instrument, warn};

use super::Services;
use super::history::{Attempt, record};
use super::hubspot_sync::{SyncError, sync_deals};
use super::tokens::{TokenError, access_token};
use crate::domain::connection::Connection;
use crate::domain::draft::{Draft, DraftContact, DraftState};
use crate::domain::history::Direction;
use crate::domain::normalize;
use crate::domain::{
    AccountId, BoardObjectKind, BoardRef, DealId, HubSpotObjectType, HubSpotRef, Link, LinkState,
    OrderStatus, UserId,
};
use crate::ports::{BoardError, BoardResource, ClaimError, HubSpotError, StoreError};

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// An existing board customer; null: create one from the deal's company (or contact).
    pub client_id: Option<u64>,
    /// The project's contact (a board customer contact); null: the first one linked.
    #[serde(default)]
    pub contact_id: Option<u64>,
    pub user_id: u64,
    pub invoice_timing_kbn: u8,
    #[serde(default)]
    pub invoice_date: Option<String>,
    #[serde(default)]
    pub contract_start_date: Option<String>,
    #[serde(default)]
    pub contract_end_date: Option<String>,
    #[serde(default)]
    pub invoice_dates: Option<Vec<String>>,
    /// Which of the deal's companies the customer is created from.
    #[serde(
        default,
        deserialize_with = "crate::domain::link::string_u64::optional"
    )]
    pub company_id: Option<u64>,
    /// Which of the deal's contacts become 顧客担当者 (default: all).
    #[serde(default)]
    pub contact_ids: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("HubSpot is not connected")]
    NotConnected,
    #[error("no open draft {0}")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("the deal does not qualify any more: {0}")]
    NotQualifying(String),
    #[error("{0}")]
    Conflict(String),
    /// board refused the input; its message and field errors.
    #[error("board: {message}")]
    Board {
        message: String,
        fields: Vec<(String, Vec<String>)>,
    },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> RegisterError {
    RegisterError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl From<BoardError> for RegisterError {
    fn from(e: BoardError) -> Self {
        match e {
            BoardError::Rejected { message, fields } => Self::Board { message, fields },
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<HubSpotError> for RegisterError {
    fn from(e: HubSpotError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<SyncError> for RegisterError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Transient(m) => Self::Unavailable(m),
            SyncError::Store(s) => Self::Store(s),
        }
    }
}

fn is_date(s: &str) -> bool {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// board's per-timing requirements, checked before anything is created.
fn invoicing(body: &Registration) -> Result<Map<String, Value>, RegisterError> {
    let mut fields = Map::new();
    fields.insert("invoice_timing_kbn".into(), json!(body.invoice_timing_kbn));
    let date = |name: &str, value: &Option<String>| -> Result<String, RegisterError> {
        value
            .clone()
            .filter(|d| is_date(d))
            .ok_or_else(|| invalid(name, "YYYY-MM-DD を指定してください"))
    };
    match body.invoice_timing_kbn {
        1 => {
            fields.insert(
                "invoice_date".into(),
                json!(date("invoice_date", &body.invoice_date)?),
            );
        }
        2 => {
            fields.insert(
                "contract_start_date".into(),
                json!(date("contract_start_date", &body.contract_start_date)?),
            );
            fields.insert(
                "contract_end_date".into(),
                json!(date("contract_end_date", &body.contract_end_date)?),
            );
        }
        3 => {
            let dates = body.invoice_dates.clone().unwrap_or_default();
            if dates.is_empty() || !dates.iter().all(|d| is_date(d)) {
                return Err(invalid(
                    "invoice_dates",
                    "1つ以上の日付(YYYY-MM-DD)を指定してください",
                ));
            }
            fields.insert("invoice_dates".into(), json!(dates));
        }
        _ => {
            return Err(invalid(
                "invoice_timing_kbn",
                "1(一括)・2(定期)・3(分割)のいずれかです",
            ));
        }
    }
    Ok(fields)
}

const LEASE: Duration = Duration::from_secs(60);

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
async fn wait_for_other(
    services: &Services,
    account: &AccountId,
    portal: crate::domain::PortalId,
    deal: u64,
) -> Result<u64, RegisterError> {
    for _ in 0..200 {
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

async fn register_held(
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
    sync_deals(services, connection, &deals).await?;
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
    if let Some(other) = services
        .links
        .deal_claimed_by(portal, deal)
        .await?
        .filter(|a| a != account)
    {
        return Err(RegisterError::Conflict(format!(
            "他のboardアカウント({other})と連携済み"
        )));
    }
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
    let client_id = customer(services, connection, &draft, &body, token).await?;
    let contact_ids = contacts(services, connection, &draft, &body, client_id).await?;
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
        account,
        &draft,
        &body,
        client_id,
        project_contact,
        invoice_fields,
    )
    .await?;
    let link = Link {
        last_synced_at: Some(services.clock.now()),
        baseline: super::linked_deals::initial_baseline(
            super::linked_deals::deal_values(
                Some(&draft.content.name),
                Some(draft.content.pipeline_id.as_str()),
                Some(draft.content.stage_id.as_str()),
                draft.content.close_date.as_deref(),
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
        super::board_sync::ORDER_STATUS.into(),
        crate::domain::link::Baseline {
            hubspot: None,
            board: Some(draft.content.order_status.code().to_string()),
            board_sent: None,
        },
    );
    link.baseline.insert(
        super::board_sync::OWNER.into(),
        crate::domain::link::Baseline {
            hubspot: draft.content.owner_id.clone(),
            board: Some(body.user_id.to_string()),
            board_sent: None,
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

/// The customer: chosen, linked to the company already, found by its marker, or created.
async fn customer(
    services: &Services,
    connection: &Connection,
    draft: &Draft,
    body: &Registration,
    token: &str,
) -> Result<u64, RegisterError> {
    let account = &connection.account_id;
    if let Some(id) = body.client_id {
        return match services
            .board
            .get(account, BoardResource::Clients, id)
            .await
        {
            Ok(_) => Ok(id),
            Err(BoardError::NotFound) => Err(invalid("client_id", "顧客が見つかりません")),
            Err(e) => Err(e.into()),
        };
    }
    let companies = &draft.content.companies;
    let company = match body.company_id {
        Some(id) => Some(
            companies
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(|| invalid("company_id", "取引に関連付けられた会社ではありません"))?,
        ),
        None => match (companies.iter().find(|c| c.primary), companies.len()) {
            (Some(primary), _) => Some(primary),
            (None, 1) => companies.first(),
            (None, 0) => None,
            (None, _) => {
                return Err(invalid(
                    "company_id",
                    "取引に複数の会社があります。顧客にする会社を選んでください",
                ));
            }
        },
    };
    match company {
        Some(company) => {
            let hubspot = HubSpotRef {
                object_type: HubSpotObjectType::Company,
                id: company.id,
            };
            if let Some(link) = services
                .links
                .link_by_hubspot(account, connection.portal_id, hubspot)
                .await?
            {
                return Ok(link.board.id);
            }
            let marker = format!("hubspot:company:{}", company.id);
            let id = match services
                .board
                .find(
                    account,
                    BoardResource::Clients,
                    &[("custom_no_eq", marker.clone())],
                )
                .await?
                .first()
            {
                Some(existing) => existing.id,
                None => {
                    let (found, _) = services
                        .batch
                        .batch_read(
                            token,
                            HubSpotObjectType::Company,
                            &[company.id],
                            &[
                                "name", "phone", "zip", "state", "city", "address", "address2",
                            ],
                        )
                        .await?
                        .value;
                    let props = found
                        .first()
                        .map(|c| c.properties.clone())
                        .unwrap_or_default();
                    let get = |k: &str| props.get(k).map(String::as_str).filter(|v| !v.is_empty());
                    let name = get("name").unwrap_or(company.name.as_str()).to_owned();
                    let mut fields = Map::new();
                    fields.insert(
                        "name_disp".into(),
                        json!(normalize::without_legal_form(&name)),
                    );
                    fields.insert("name".into(), json!(name));
                    fields.insert("title".into(), json!("御中"));
                    fields.insert("custom_no".into(), json!(marker));
                    if let Some(tel) = get("phone").and_then(normalize::phone) {
                        fields.insert("tel".into(), json!(tel));
                    }
                    if let Some(zip) = get("zip").and_then(normalize::zip) {
                        fields.insert("zip".into(), json!(zip));
                    }
                    if let Some(pref) = get("state").and_then(normalize::prefecture) {
                        fields.insert("pref".into(), json!(pref));
                    }
                    let address1 = format!(
                        "{}{}",
                        get("city").unwrap_or_default(),
                        get("address").unwrap_or_default()
                    );
                    if !address1.is_empty() {
                        fields.insert("address1".into(), json!(normalize::nfkc(&address1)));
                    }
                    if let Some(a2) = get("address2") {
                        fields.insert("address2".into(), json!(normalize::nfkc(a2)));
                    }
                    services
                        .board
                        .create(account, BoardResource::Clients, fields)
                        .await?
                        .id
                }
            };
            link_other(
                services,
                connection,
                hubspot,
                BoardRef {
                    kind: BoardObjectKind::Customer,
                    id,
                },
            )
            .await?;
            Ok(id)
        }
        None => {
            // No company: an individual customer from a contact (敬称 様).
            let contact = chosen_contacts(draft, body)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    invalid(
                        "client_id",
                        "取引に会社もコンタクトもありません。既存の顧客を選んでください",
                    )
                })?;
            let hubspot = HubSpotRef {
                object_type: HubSpotObjectType::Contact,
                id: contact.id,
            };
            let marker = format!("hubspot:contact:{}", contact.id);
            let id = match services
                .board
                .find(
                    account,
                    BoardResource::Clients,
                    &[("custom_no_eq", marker.clone())],
                )
                .await?
                .first()
            {
                Some(existing) => existing.id,
                None => {
                    let name = format!("{} {}", contact.last_name, contact.first_name)
                        .trim()
                        .to_owned();
                    let name = if name.is_empty() {
                        contact.email.clone()
                    } else {
                        name
                    };
                    let fields = Map::from_iter([
                        ("name".to_owned(), json!(name)),
                        ("name_disp".to_owned(), json!(name)),
                        ("title".to_owned(), json!("様")),
                        ("custom_no".to_owned(), json!(marker)),
                    ]);
                    services
                        .board
                        .create(account, BoardResource::Clients, fields)
                        .await?
                        .id
                }
            };
            link_other(
                services,
                connection,
                hubspot,
                BoardRef {
                    kind: BoardObjectKind::Customer,
                    id,
                },
            )
            .await?;
            Ok(id)
        }
    }
}

fn chosen_contacts<'a>(
    draft: &'a Draft,
    body: &Registration,
) -> Result<Vec<&'a DraftContact>, RegisterError> {
    match &body.contact_ids {
        None => Ok(draft.content.contacts.iter().collect()),
        Some(ids) => ids
            .iter()
            .map(|raw| {
                let id = raw
                    .as_u64()
                    .or_else(|| raw.as_str().and_then(|s| s.parse().ok()));
                id.and_then(|id| draft.content.contacts.iter().find(|c| c.id == id))
                    .ok_or_else(|| {
                        invalid(
                            "contact_ids",
                            format!("{raw} は取引に関連付けられたコンタクトではありません"),
                        )
                    })
            })
            .collect(),
    }
}

/// The 顧客担当者: linked already, found by client + e-mail (or last name), or created.
async fn contacts(
    services: &Services,
    connection: &Connection,
    draft: &Draft,
    body: &Registration,
    client_id: u64,
) -> Result<Vec<u64>, RegisterError> {
    let account = &connection.account_id;
    let mut ids = Vec::new();
    let individual = body.client_id.is_none() && draft.content.companies.is_empty();
    if individual {
        return Ok(ids);
    }
    for contact in chosen_contacts(draft, body)? {
        let hubspot = HubSpotRef {
            object_type: HubSpotObjectType::Contact,
            id: contact.id,
        };
        let existing_link = services
            .links
            .link_by_hubspot(account, connection.portal_id, hubspot)
            .await?
            .filter(|l| l.board.kind == BoardObjectKind::CustomerContact);
        if let Some(link) = existing_link {
            ids.push(link.board.id);
            continue;
        }
        let filter = if contact.email.is_empty() {
            ("last_name_eq", contact.last_name.clone())
        } else {
            ("email_eq", contact.email.clone())
        };
        let found = services
            .board
            .find(
                account,
                BoardResource::Contacts,
                &[("client_id_eq", client_id.to_string()), filter],
            )
            .await?;
        let id = match found.first() {
            Some(existing) => existing.id,
            None => {
                let last = if contact.last_name.is_empty() {
                    contact.email.clone()
                } else {
                    contact.last_name.clone()
                };
                let mut fields = Map::from_iter([
                    ("client_id".to_owned(), json!(client_id)),
                    ("last_name".to_owned(), json!(last)),
                    ("honorific_title".to_owned(), json!("様")),
                ]);
                if !contact.first_name.is_empty() {
                    fields.insert("first_name".into(), json!(contact.first_name));
                }
                if !contact.email.is_empty() {
                    fields.insert("email".into(), json!(contact.email));
                }
                services
                    .board
                    .create(account, BoardResource::Contacts, fields)
                    .await?
                    .id
            }
        };
        link_other(
            services,
            connection,
            hubspot,
            BoardRef {
                kind: BoardObjectKind::CustomerContact,
                id,
            },
        )
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// The project, last: found by its marker (a retry after a crash) or created.
async fn project(
    services: &Services,
    account: &AccountId,
    draft: &Draft,
    body: &Registration,
    client_id: u64,
    contact_id: Option<u64>,
    invoice_fields: Map<String, Value>,
) -> Result<u64, RegisterError> {
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
        && let Some(date) = draft.content.close_date.as_deref().and_then(jst_date)
    {
        fields.insert("order_date".into(), json!(date));
    }
    Ok(services
        .board
        .create(account, BoardResource::Projects, fields)
        .await?
        .id)
}

/// A HubSpot datetime (RFC 3339 or epoch milliseconds) in epoch milliseconds.
pub fn parse_time_ms(value: &str) -> Option<i64> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .or_else(|| value.parse::<i64>().ok())
}

/// A HubSpot datetime as a calendar date in the portal's time zone (Asia/Tokyo).
pub fn jst_date(value: &str) -> Option<String> {
    let t = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            value
                .parse::<i64>()
                .ok()
                .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
        })?;
    let d = t.to_offset(time::macros::offset!(+9)).date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

async fn link_other(
    services: &Services,
    connection: &Connection,
    hubspot: HubSpotRef,
    board: BoardRef,
) -> Result<(), RegisterError> {
    let link = Link {
        account_id: connection.account_id.clone(),
        portal_id: connection.portal_id,
        hubspot,
        board,
        state: LinkState::Enabled,
        last_synced_at: Some(services.clock.now()),
        baseline: Default::default(),
        revision: 0,
    };
    match services.links.create_link(&link).await {
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The deal is this account's now: the other accounts' drafts of it are withdrawn.
async fn withdraw_elsewhere(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_evening_in_tokyo_stays_on_its_day() {
        // 23:30 JST on 2026-12-24 is 14:30 UTC the same day; 00:30 JST is the previous day in UTC.
        assert_eq!(
            jst_date("2026-12-24T14:30:00Z").as_deref(),
            Some("2026-12-24")
        );
        assert_eq!(
            jst_date("2026-12-24T15:30:00Z").as_deref(),
            Some("2026-12-25")
        );
        assert_eq!(jst_date("not a date"), None);
    }
}
