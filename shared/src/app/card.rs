//! The CRM card's data (SPEC §7): one section per board account connected to
//! the portal. This module knows what the store knows: links and claims.

use serde::Serialize;

use super::Services;
use crate::domain::{DealId, HubSpotObjectType, HubSpotRef, LinkState, PortalId};
use crate::ports::StoreResult;

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    Project,
    Draft,
    LinkedElsewhere,
    NotInBoard,
}

#[derive(Debug, Serialize)]
pub struct Property {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct Section {
    pub account_label: String,
    pub state: SectionState,
    pub title: Option<String>,
    pub properties: Vec<Property>,
    pub board_url: Option<String>,
    pub sync_enabled: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Card {
    pub sections: Vec<Section>,
}

pub async fn card(services: &Services, portal: PortalId, deal: DealId) -> StoreResult<Card> {
    let deal_ref = HubSpotRef {
        object_type: HubSpotObjectType::Deal,
        id: deal.get(),
    };
    let mut sections = Vec::new();
    let claimed_by = services.links.deal_claimed_by(portal, deal.get()).await?;
    for connection in services.connections.connections_of_portal(portal).await? {
        if !matches!(
            connection.state,
            crate::domain::connection::ConnectionState::Active
                | crate::domain::connection::ConnectionState::Suspended
        ) {
            continue;
        }
        let label = connection.account_id.to_string();
        let link = services
            .links
            .link_by_hubspot(&connection.account_id, connection.portal_id, deal_ref)
            .await?;
        let section = match (link, &claimed_by) {
            (Some(link), _) => Section {
                account_label: label,
                state: SectionState::Project,
                title: None,
                properties: Vec::new(),
                board_url: Some(format!(
                    "{}/projects/{}",
                    services.settings.board_app_url, link.board.id
                )),
                sync_enabled: link.state == LinkState::Enabled,
                reason: match link.state {
                    LinkState::Disabled { reason } => Some(reason.entry().message_ja.to_owned()),
                    LinkState::Deleted => Some("boardの案件は削除されました".to_owned()),
                    _ => None,
                },
            },
            (None, Some(other)) if *other != connection.account_id => Section {
                account_label: label,
                state: SectionState::LinkedElsewhere,
                title: None,
                properties: Vec::new(),
                board_url: None,
                sync_enabled: false,
                reason: Some(format!("他のboardアカウント({other})と連携済み")),
            },
            _ => Section {
                account_label: label,
                state: SectionState::NotInBoard,
                title: None,
                properties: Vec::new(),
                board_url: None,
                sync_enabled: false,
                reason: None,
            },
        };
        sections.push(section);
    }
    Ok(Card { sections })
}
