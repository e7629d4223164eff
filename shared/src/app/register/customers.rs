//! The registration's customer and customer contacts: an existing board customer, or one created
//! from the deal's company (or contact), its contacts from the deal's contacts, each linked.

use serde_json::{Map, json};

use crate::app::Services;
use crate::domain::connection::Connection;
use crate::domain::draft::{Draft, DraftContact};
use crate::domain::normalize;
use crate::domain::{BoardObjectKind, BoardRef, HubSpotObjectType, HubSpotRef, Link, LinkState};
use crate::ports::{BoardError, BoardResource, StoreError};

use super::request::*;

/// The customer: chosen, linked to the company already, found by its marker, or created.
pub(super) async fn customer(
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

pub(super) fn chosen_contacts<'a>(
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
pub(super) async fn contacts(
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

pub(super) async fn link_other(
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
