//! Reading records into parties and proposing links: what the job's last
//! phase does with the pages it saved.

use std::collections::HashSet;

use super::{CHUNK, GroupCounts, MatchingState, Proposal, active, load, page_key};
use crate::app::Services;
use crate::app::failure::SyncFailure;
use crate::domain::link::{Link, LinkState};
use crate::domain::matching::{self, Group, Party};
use crate::domain::{AccountId, BoardObjectKind};
use crate::ports::{Cursor, StoreError};

fn text(fields: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    match fields.get(name)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn board_party(record: &crate::ports::BoardRecord, contact: bool) -> Party {
    let f = &record.fields;
    let get = |n: &str| text(f, n);
    if contact {
        let name = format!(
            "{} {}",
            get("last_name").unwrap_or_default(),
            get("first_name").unwrap_or_default()
        );
        Party {
            id: record.id,
            name: name.trim().to_owned(),
            email: get("email").and_then(|e| matching::email(&e)),
            phone: get("tel").and_then(|p| crate::domain::normalize::phone(&p)),
            parent: get("client_id").and_then(|c| c.parse().ok()),
            ..Party::default()
        }
    } else {
        Party {
            id: record.id,
            name: get("name").unwrap_or_default(),
            domain: get("url").and_then(|u| matching::domain(&u)),
            email: get("email").and_then(|e| matching::email(&e)),
            phone: get("tel").and_then(|p| crate::domain::normalize::phone(&p)),
            address: matching::address(get("zip").as_deref(), get("address1").as_deref()),
            parent: None,
            org: None,
        }
    }
}

pub(super) fn hubspot_party(object: &crate::ports::CrmObject, contact: bool) -> Party {
    let get = |n: &str| {
        object
            .get(n)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned)
    };
    if contact {
        let name = format!(
            "{} {}",
            get("lastname").unwrap_or_default(),
            get("firstname").unwrap_or_default()
        );
        Party {
            id: object.id,
            name: name.trim().to_owned(),
            email: get("email").and_then(|e| matching::email(&e)),
            phone: get("phone").and_then(|p| crate::domain::normalize::phone(&p)),
            org: get("company").map(|c| matching::name_key(&c)),
            ..Party::default()
        }
    } else {
        Party {
            id: object.id,
            name: get("name").unwrap_or_default(),
            domain: get("domain").and_then(|d| matching::domain(&d)),
            email: None,
            phone: get("phone").and_then(|p| crate::domain::normalize::phone(&p)),
            address: matching::address(get("zip").as_deref(), get("address").as_deref()),
            parent: None,
            org: None,
        }
    }
}

pub(super) const COMPANY_PROPERTIES: [&str; 5] = ["name", "domain", "phone", "zip", "address"];
/// `company` is the contact's company name as people type it (a default
/// contact property); the association to a company record would cost a read
/// per 100 contacts more.
pub(super) const CONTACT_PROPERTIES: [&str; 5] =
    ["lastname", "firstname", "email", "phone", "company"];

/// The links the account has of one board kind: board id → HubSpot id.
async fn linked(
    services: &Services,
    account: &AccountId,
    portal: crate::domain::PortalId,
) -> Result<Vec<Link>, StoreError> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = services
            .links
            .links_of_account(account, portal, 500, cursor.as_ref())
            .await?;
        out.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

pub(super) async fn propose(
    services: &Services,
    account: &AccountId,
    state: &mut MatchingState,
) -> Result<(), SyncFailure> {
    let connection = active(services, account)
        .await
        .map_err(|e| SyncFailure::Poison(e.to_string()))?;
    let links = linked(services, account, connection.portal_id).await?;
    let taken = |kind: BoardObjectKind| -> (HashSet<u64>, HashSet<u64>) {
        links
            .iter()
            .filter(|l| l.board.kind == kind && l.state != LinkState::Archived)
            .map(|l| (l.board.id, l.hubspot.id))
            .unzip()
    };
    let (linked_customers, linked_companies) = taken(BoardObjectKind::Customer);
    let (linked_contacts, linked_hs_contacts) = taken(BoardObjectKind::CustomerContact);

    let customers: Vec<Party> = load(services, account, state, "board_customers")
        .await?
        .into_iter()
        .filter(|p| !linked_customers.contains(&p.id))
        .collect();
    let companies: Vec<Party> = load(services, account, state, "hubspot_companies")
        .await?
        .into_iter()
        .filter(|p| !linked_companies.contains(&p.id))
        .collect();
    let customer_matches = matching::propose(&customers, &companies, &HashSet::new());
    // Contacts of corresponding companies (linked, or proposed sure) find each other by name.
    let mut pairs: HashSet<(u64, u64)> = links
        .iter()
        .filter(|l| l.board.kind == BoardObjectKind::Customer)
        .map(|l| (l.board.id, l.hubspot.id))
        .collect();
    pairs.extend(
        customer_matches
            .iter()
            .filter(|m| m.group == Group::Sure)
            .map(|m| (m.board_id, m.candidates[0].hubspot_id)),
    );
    // A board contact's company name is its customer's.
    let customer_keys: std::collections::HashMap<u64, String> =
        load(services, account, state, "board_customers")
            .await?
            .iter()
            .map(|c| (c.id, matching::name_key(&c.name)))
            .collect();
    let contacts: Vec<Party> = load(services, account, state, "board_contacts")
        .await?
        .into_iter()
        .filter(|p| !linked_contacts.contains(&p.id))
        .map(|mut p| {
            p.org = p.parent.and_then(|c| customer_keys.get(&c).cloned());
            p
        })
        .collect();
    let hs_contacts: Vec<Party> = load(services, account, state, "hubspot_contacts")
        .await?
        .into_iter()
        .filter(|p| !linked_hs_contacts.contains(&p.id))
        .collect();
    let contact_matches = matching::propose(&contacts, &hs_contacts, &pairs);

    let proposals: Vec<Proposal> = customer_matches
        .into_iter()
        .map(|m| (BoardObjectKind::Customer, m))
        .chain(
            contact_matches
                .into_iter()
                .map(|m| (BoardObjectKind::CustomerContact, m)),
        )
        .map(|(kind, matched)| Proposal {
            id: format!(
                "{}-{}",
                if kind == BoardObjectKind::Customer {
                    "c"
                } else {
                    "p"
                },
                matched.board_id
            ),
            kind,
            matched,
            approved: None,
        })
        .collect();
    let mut groups = GroupCounts::default();
    for p in &proposals {
        match p.matched.group {
            Group::Sure => groups.sure += 1,
            Group::Ambiguous => groups.ambiguous += 1,
            Group::None => groups.none += 1,
        }
    }
    let mut chunks = 0;
    for chunk in proposals.chunks(CHUNK) {
        chunks += 1;
        services
            .watermarks
            .set_watermark(
                &page_key(account, &state.run, "proposals", chunks),
                &serde_json::to_string(chunk).expect("proposals serialize"),
            )
            .await?;
    }
    state.proposal_chunks = chunks;
    state.groups = groups;
    Ok(())
}
