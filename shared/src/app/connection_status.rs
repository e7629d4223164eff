//! `GET /v1/hubspot/connection`: what board's settings screen shows (SPEC §3.10).

use serde::Serialize;

use super::Services;
use crate::domain::connection::{AuthorizedBy, Connection};
use crate::domain::{AccountId, PortalId};
use crate::ports::StoreResult;

#[derive(Debug, Serialize)]
pub struct ConnectionStatus {
    /// `not_connected`, or the connection's state.
    pub state: &'static str,
    pub portal_id: Option<PortalId>,
    pub hub_domain: Option<String>,
    pub authorized_by: Option<AuthorizedBy>,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub connected_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_webhook_at: Option<time::OffsetDateTime>,
    pub consecutive_auth_failures: u32,
}

fn state_name(connection: &Connection) -> &'static str {
    use crate::domain::connection::ConnectionState as S;
    match connection.state {
        S::Pending => "pending",
        S::Active => "active",
        S::Suspended => "suspended",
        S::Disconnected => "disconnected",
        S::Uninstalled => "uninstalled",
    }
}

pub async fn status(services: &Services, account: &AccountId) -> StoreResult<ConnectionStatus> {
    let connection = services.connections.get_connection(account).await?;
    Ok(match connection {
        None => ConnectionStatus {
            state: "not_connected",
            portal_id: None,
            hub_domain: None,
            authorized_by: None,
            scopes: Vec::new(),
            connected_at: None,
            last_webhook_at: None,
            consecutive_auth_failures: 0,
        },
        Some(c) => ConnectionStatus {
            state: state_name(&c),
            portal_id: Some(c.portal_id),
            hub_domain: c.hub_domain,
            authorized_by: c.authorized_by,
            scopes: c.scopes,
            connected_at: c.connected_at,
            last_webhook_at: c.last_webhook_at,
            consecutive_auth_failures: c.consecutive_auth_failures,
        },
    })
}
