//! `GET /v1/hubspot/connection`: what board's settings screen shows (SPEC §3.10).

use serde::Serialize;
use serde_json::{Value, json};

use super::Services;
use super::connect::has_pending;
use super::lifecycle::{UNINSTALLED_EN, UNINSTALLED_JA};
use crate::domain::connection::{AuthorizedBy, ConnectionState, ExclusionProperty};
use crate::domain::{AccountId, Code, PortalId};
use crate::ports::StoreResult;

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastSync {
    #[serde(with = "time::serde::rfc3339::option")]
    pub hubspot_to_board: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub board_to_hubspot: Option<time::OffsetDateTime>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChecklistItem {
    pub item: &'static str,
    pub done: bool,
    pub required: bool,
    pub message: String,
    /// For `status_mapping`: the HubSpot pipeline the item is about (one item
    /// per pipeline; null when HubSpot's pipelines cannot be read now).
    pub pipeline_id: Option<String>,
    pub pipeline_label: Option<String>,
}

impl ChecklistItem {
    fn new(item: &'static str, done: bool, required: bool, message: &str) -> Self {
        Self {
            item,
            done,
            required,
            message: message.to_owned(),
            pipeline_id: None,
            pipeline_label: None,
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionStatus {
    /// `not_connected`, `pending`, or the connection's state.
    pub state: &'static str,
    pub portal_id: Option<PortalId>,
    pub hub_domain: Option<String>,
    pub authorized_by: Option<AuthorizedBy>,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub connected_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_webhook_at: Option<time::OffsetDateTime>,
    pub last_sync_at: LastSync,
    pub consecutive_auth_failures: u32,
    pub account_name: Option<String>,
    /// For a suspended or uninstalled connection: what board shows, ja and en.
    pub message: Option<String>,
    pub message_en: Option<String>,
    pub guidance: Option<String>,
    pub exclusion_property: Option<Value>,
    /// Board accounts sharing the portal.
    pub other_accounts_on_portal: Vec<AccountId>,
    pub checklist: Vec<ChecklistItem>,
    pub config_version: u64,
    /// Background HubSpot work of the portal held (HubSpot's daily limit hit,
    /// or its window nearly spent): until when and why.
    pub hubspot_paused: Option<Paused>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paused {
    #[serde(with = "time::serde::rfc3339")]
    pub until: time::OffsetDateTime,
    /// `daily_limit` or `rate_limit`.
    pub reason: String,
}

fn state_name(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Pending => "pending",
        ConnectionState::Active => "active",
        ConnectionState::Suspended => "suspended",
        ConnectionState::Disconnected => "disconnected",
        ConnectionState::Uninstalled => "uninstalled",
    }
}

pub async fn status(services: &Services, account: &AccountId) -> StoreResult<ConnectionStatus> {
    let connection = services.connections.get_connection(account).await?;
    let pending = has_pending(services, account).await;
    let Some(c) = connection else {
        return Ok(ConnectionStatus {
            state: if pending { "pending" } else { "not_connected" },
            portal_id: None,
            hub_domain: None,
            authorized_by: None,
            scopes: Vec::new(),
            connected_at: None,
            last_webhook_at: None,
            last_sync_at: LastSync {
                hubspot_to_board: None,
                board_to_hubspot: None,
            },
            consecutive_auth_failures: 0,
            account_name: None,
            message: None,
            message_en: None,
            guidance: None,
            exclusion_property: None,
            other_accounts_on_portal: Vec::new(),
            checklist: Vec::new(),
            config_version: services.configs.config(account).await?.version,
            hubspot_paused: None,
        });
    };
    let (message, message_en, guidance) = match c.state {
        ConnectionState::Suspended => {
            let entry = Code::IntegrationSuspended.entry();
            (
                Some(entry.message_ja.to_owned()),
                Some(entry.message_en.to_owned()),
                Some(entry.guidance_ja.to_owned()),
            )
        }
        ConnectionState::Uninstalled => (
            Some(UNINSTALLED_JA.to_owned()),
            Some(UNINSTALLED_EN.to_owned()),
            None,
        ),
        _ => (None, None, None),
    };
    let mut others: Vec<AccountId> = services
        .connections
        .connections_of_portal(c.portal_id)
        .await?
        .into_iter()
        .filter(|o| {
            o.account_id != *account
                && matches!(
                    o.state,
                    ConnectionState::Active | ConnectionState::Suspended
                )
        })
        .map(|o| o.account_id)
        .collect();
    others.sort();
    let exclusion_ready = matches!(c.exclusion_property, Some(ExclusionProperty::Ready));
    let config = services.configs.config(account).await?;
    let mut everyone_unfiltered = config.filter_rules.is_empty() && !others.is_empty();
    for other in &others {
        everyone_unfiltered &= services
            .configs
            .config(other)
            .await?
            .filter_rules
            .is_empty();
    }
    let mut checklist = vec![ChecklistItem::new(
        "exclusion_property",
        exclusion_ready,
        true,
        if exclusion_ready {
            "取引プロパティ「board連携から除外」があります。HubSpotの取引作成フォームにも追加してください。"
        } else {
            "取引プロパティ「board連携から除外」を確認できません。状態を確認し、必要なら再接続してください。"
        },
    )];
    // The mapping per pipeline HubSpot has (a deal of an unmapped pipeline never
    // enters); one item for all when HubSpot's pipelines cannot be read now.
    let pipelines = match c.state {
        ConnectionState::Active => {
            super::hubspot_to_board::decisions::pipelines_of(services, &c).await
        }
        _ => None,
    };
    match pipelines.filter(|p| !p.is_empty()) {
        Some(pipelines) => {
            for pipeline in pipelines.iter() {
                let done = config
                    .status_mapping
                    .get(&pipeline.id)
                    .is_some_and(|stages| !stages.is_empty());
                let message = if done {
                    format!(
                        "パイプライン「{}」の受注ステータスのマッピングは設定済みです。",
                        pipeline.label
                    )
                } else {
                    format!(
                        "パイプライン「{}」の受注ステータスのマッピングを設定してください。未設定のパイプラインの取引はboardに連携されません。",
                        pipeline.label
                    )
                };
                let mut item = ChecklistItem::new("status_mapping", done, true, &message);
                item.pipeline_id = Some(pipeline.id.to_string());
                item.pipeline_label = Some(pipeline.label.clone());
                checklist.push(item);
            }
        }
        None => checklist.push(ChecklistItem::new(
            "status_mapping",
            !config.status_mapping.is_empty(),
            true,
            "パイプラインごとに受注ステータスのマッピングを設定してください。未設定のパイプラインの取引はboardに連携されません。",
        )),
    }
    checklist.push(ChecklistItem::new(
        "filter_rules",
        !config.filter_rules.is_empty(),
        everyone_unfiltered,
        if !everyone_unfiltered {
            "必要に応じて取引フィルタールールを設定してください。"
        } else {
            "このHubSpotアカウントは他のboardアカウントとも連携しています。フィルタールールがないと、すべての取引が両方で下書き案件になります。"
        },
    ));
    checklist.push(ChecklistItem::new(
        "account_label",
        config.label.is_some(),
        false,
        "CRMカードで連携先を見分けるため、HubSpotアカウント識別ラベルを設定できます。",
    ));
    Ok(ConnectionStatus {
        state: state_name(c.state),
        portal_id: Some(c.portal_id),
        hub_domain: c.hub_domain,
        authorized_by: c.authorized_by,
        scopes: c.scopes,
        connected_at: c.connected_at,
        last_webhook_at: c.last_webhook_at,
        last_sync_at: LastSync {
            hubspot_to_board: c.last_sync_to_board_at,
            board_to_hubspot: c.last_sync_to_hubspot_at,
        },
        consecutive_auth_failures: c.consecutive_auth_failures,
        account_name: c.account_name,
        message,
        message_en,
        guidance,
        exclusion_property: c.exclusion_property.map(|e| json!(e)),
        other_accounts_on_portal: others,
        checklist,
        config_version: config.version,
        hubspot_paused: super::budget::held(services, c.portal_id).await.and_then(
            |(until, reason)| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(until) * 1_000_000)
                    .ok()
                    .map(|until| Paused { until, reason })
            },
        ),
    })
}
