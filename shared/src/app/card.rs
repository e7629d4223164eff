//! The CRM card's data (SPEC §7): one section per board account connected to
//! the portal — the project, the draft, "linked in another account", or "not in
//! board" with the failing gate (and then no amounts or names).

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;

use super::Services;
use super::hubspot_to_board::{DEAL_PROPERTIES, facts_of};
use super::tokens::access_token;
use crate::domain::config::{AccountConfig, AmountBasis};
use crate::domain::connection::{Connection, ConnectionState};
use crate::domain::draft::DraftState;
use crate::domain::gates::evaluate_gates;
use crate::domain::{
    AccountId, Code, DealId, HubSpotObjectType, HubSpotRef, Link, LinkState, OrderStatus, PortalId,
};
use crate::ports::{BoardResource, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Ja,
    En,
}

impl Locale {
    pub fn parse(raw: Option<&str>) -> Self {
        match raw.map(|l| l.to_ascii_lowercase()) {
            Some(l) if l.starts_with("en") => Self::En,
            _ => Self::Ja,
        }
    }

    fn t<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }
}

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
    pub account_id: AccountId,
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

fn yen(amount: f64) -> String {
    let whole = amount.round() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}¥{out}", if whole < 0 { "-" } else { "" })
}

fn jst(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::macros::offset!(+9));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

async fn label_of(
    services: &Services,
    connection: &Connection,
) -> StoreResult<(String, AccountConfig)> {
    let config = services.configs.config(&connection.account_id).await?;
    let label = config
        .label
        .as_ref()
        .map(|l| l.as_str().to_owned())
        .or(connection.account_name.clone())
        .unwrap_or_else(|| connection.account_id.to_string());
    Ok((label, config))
}

pub async fn card(
    services: &Services,
    portal: PortalId,
    deal: DealId,
    locale: Locale,
) -> StoreResult<Card> {
    let mut sections = Vec::new();
    let connections: Vec<Connection> = services
        .connections
        .connections_of_portal(portal)
        .await?
        .into_iter()
        .filter(|c| {
            matches!(
                c.state,
                ConnectionState::Active | ConnectionState::Suspended
            )
        })
        .collect();
    let claimed_by = services.links.deal_claimed_by(portal, deal.get()).await?;
    for connection in &connections {
        let (label, config) = label_of(services, connection).await?;
        let deal_ref = HubSpotRef {
            object_type: HubSpotObjectType::Deal,
            id: deal.get(),
        };
        let link = services
            .links
            .link_by_hubspot(&connection.account_id, portal, deal_ref)
            .await?
            .filter(|l| l.state != LinkState::Archived);
        let section = match (link, &claimed_by) {
            (Some(link), _) => {
                project_section(services, connection, &config, label, link, locale).await
            }
            (None, Some(other)) if *other != connection.account_id => {
                let other_label = match connections.iter().find(|c| c.account_id == *other) {
                    Some(c) => label_of(services, c).await?.0,
                    None => other.to_string(),
                };
                Section {
                    account_id: connection.account_id.clone(),
                    account_label: label,
                    state: SectionState::LinkedElsewhere,
                    title: None,
                    properties: Vec::new(),
                    board_url: None,
                    sync_enabled: false,
                    reason: Some(match locale {
                        Locale::Ja => format!("他のboardアカウント({other_label})と連携済み"),
                        Locale::En => format!("Linked in another board account ({other_label})"),
                    }),
                }
            }
            _ => draft_or_not(services, connection, &config, label, deal, locale).await?,
        };
        sections.push(section);
    }
    Ok(Card { sections })
}

async fn project_section(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    label: String,
    link: Link,
    locale: Locale,
) -> Section {
    let mut properties = Vec::new();
    let mut title = None;
    if let Ok(project) = services
        .board
        .get(
            &connection.account_id,
            BoardResource::Projects,
            link.board.id,
        )
        .await
    {
        let f = &project.fields;
        let no = f
            .get("project_no")
            .map(|v| v.to_string())
            .unwrap_or_default();
        title = Some(
            format!("{no} {}", project.text("name").unwrap_or_default())
                .trim()
                .to_owned(),
        );
        if let Some(status) = f
            .get("order_status")
            .and_then(Value::as_i64)
            .and_then(|c| OrderStatus::from_code(c).ok())
        {
            properties.push(Property {
                label: locale.t("受注ステータス", "Order status").into(),
                value: locale.t(status.label_ja(), status.label_en()).into(),
            });
        }
        let number = |k: &str| {
            f.get(k)
                .and_then(|v| {
                    v.as_str()
                        .and_then(|s| s.parse::<f64>().ok())
                        .or(v.as_f64())
                })
                .unwrap_or(0.0)
        };
        let total = match config.amount_basis {
            AmountBasis::ExcludingTax => number("total"),
            AmountBasis::IncludingTax => number("total") + number("tax"),
        };
        properties.push(Property {
            label: locale.t("金額", "Amount").into(),
            value: yen(total),
        });
        if let Some(user) = f
            .get("user")
            .and_then(|u| u.get("name"))
            .and_then(Value::as_str)
        {
            properties.push(Property {
                label: locale.t("担当者", "Person in charge").into(),
                value: user.to_owned(),
            });
        }
    }
    properties.push(Property {
        label: locale.t("最終同期", "Last sync").into(),
        value: link.last_synced_at.map(jst).unwrap_or_else(|| "—".into()),
    });
    let reason = match &link.state {
        LinkState::Disabled { reason } => Some(
            locale
                .t(reason.entry().message_ja, reason.entry().message_en)
                .to_owned(),
        ),
        LinkState::Deleted => Some(
            locale
                .t(
                    "boardの案件は削除されました",
                    "The project was deleted in board",
                )
                .to_owned(),
        ),
        LinkState::Off => Some(
            locale
                .t(
                    "この案件の同期は無効に設定されています",
                    "Sync is turned off for this project",
                )
                .to_owned(),
        ),
        _ if connection.state == ConnectionState::Suspended => Some(
            locale
                .t(
                    Code::IntegrationSuspended.entry().message_ja,
                    Code::IntegrationSuspended.entry().message_en,
                )
                .to_owned(),
        ),
        _ => None,
    };
    let sync_enabled =
        link.state == LinkState::Enabled && connection.state == ConnectionState::Active;
    properties.push(Property {
        label: locale.t("同期", "Sync").into(),
        value: match (&reason, sync_enabled) {
            (_, true) => locale.t("有効", "Enabled").into(),
            (Some(r), false) => format!("{}: {r}", locale.t("無効", "Disabled")),
            (None, false) => locale.t("無効", "Disabled").into(),
        },
    });
    Section {
        account_id: connection.account_id.clone(),
        account_label: label,
        state: SectionState::Project,
        title,
        properties,
        board_url: Some(format!(
            "{}/projects/{}",
            services.settings.board_app_url, link.board.id
        )),
        sync_enabled,
        reason,
    }
}

async fn draft_or_not(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    label: String,
    deal: DealId,
    locale: Locale,
) -> StoreResult<Section> {
    let draft = services
        .drafts
        .draft(&connection.account_id, connection.portal_id, deal.get())
        .await?;
    if let Some(d) = draft.as_ref().filter(|d| d.state == DraftState::Open) {
        let status = d.content.order_status;
        let mut properties = vec![Property {
            label: locale.t("受注ステータス", "Order status").into(),
            value: locale.t(status.label_ja(), status.label_en()).into(),
        }];
        if let Some(amount) = d
            .content
            .amount
            .as_deref()
            .and_then(|a| a.parse::<f64>().ok())
        {
            properties.push(Property {
                label: locale.t("金額", "Amount").into(),
                value: yen(amount),
            });
        }
        properties.push(Property {
            label: locale.t("最終同期", "Last sync").into(),
            value: jst(d.updated_at),
        });
        return Ok(Section {
            account_id: connection.account_id.clone(),
            account_label: label,
            state: SectionState::Draft,
            title: Some(d.content.name.clone()),
            properties,
            board_url: Some(format!(
                "{}/hubspot/drafts/{}",
                services.settings.board_app_url, deal
            )),
            sync_enabled: connection.state == ConnectionState::Active,
            reason: None,
        });
    }
    let reason = match draft.as_ref().map(|d| d.state) {
        Some(DraftState::Discarded) => Some(
            locale
                .t("下書き案件は破棄されました", "The draft was discarded")
                .to_owned(),
        ),
        _ => not_in_board_reason(services, connection, config, deal, locale).await,
    };
    Ok(Section {
        account_id: connection.account_id.clone(),
        account_label: label,
        state: SectionState::NotInBoard,
        title: None,
        properties: Vec::new(),
        board_url: None,
        sync_enabled: false,
        reason,
    })
}

/// The first failing gate, read live (labels from HubSpot's pipelines).
async fn not_in_board_reason(
    services: &Services,
    connection: &Connection,
    config: &AccountConfig,
    deal: DealId,
    locale: Locale,
) -> Option<String> {
    let token = access_token(services, &connection.account_id).await.ok()?;
    let token = token.expose_secret();
    let (found, _) = services
        .batch
        .batch_read(
            token,
            HubSpotObjectType::Deal,
            &[deal.get()],
            &DEAL_PROPERTIES,
        )
        .await
        .ok()?
        .value;
    let object = found.first()?;
    let pipelines = services.crm.pipelines(token).await.unwrap_or_default();
    let mut facts = facts_of(object);
    facts.claimed_by = None;
    let pipeline = facts
        .pipeline
        .as_ref()
        .and_then(|p| pipelines.iter().find(|x| x.id == *p));
    let report = evaluate_gates(config, &facts, |stage| {
        pipeline
            .and_then(|p| p.stages.iter().find(|s| s.id == *stage))
            .map(|s| s.label.clone())
            .unwrap_or_else(|| stage.to_string())
    });
    report
        .first_failure()
        .map(|g| locale.t(&g.detail, &g.detail_en).to_owned())
}
