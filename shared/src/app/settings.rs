//! The settings screens (SPEC §4): live pipelines with the mapping and its
//! problems, filter rules and their options, the account label, the owner ↔
//! person-in-charge table and the options. Every change is validated (a 400
//! naming the field) and bumps the configuration version.

use std::collections::{BTreeMap, HashSet};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Services;
use super::tokens::{TokenError, access_token};
use crate::domain::config::{AccountConfig, AmountBasis, Condition, FilterField, FilterRule};
use crate::domain::status_mapping::{Problem, suggested_default};
use crate::domain::{AccountId, AccountLabel, BoardUserId, OrderStatus, PipelineId, StageId};
use crate::ports::{BoardError, HsPipeline, HubSpotError, StoreError};

pub const MAX_RULES: usize = 20;
pub const MAX_CONDITIONS: usize = 10;
pub const MAX_VALUES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("HubSpot is not connected")]
    NotConnected,
    #[error("the HubSpot integration is suspended")]
    Suspended,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("HubSpot: {0}")]
    HubSpot(#[from] HubSpotError),
    #[error("board: {0}")]
    Board(#[from] BoardError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenError> for SettingsError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NotConnected => Self::NotConnected,
            TokenError::Suspended => Self::Suspended,
            TokenError::AuthInvalid => {
                Self::HubSpot(HubSpotError::Unauthorized("refresh token refused".into()))
            }
            TokenError::Unavailable(m) => Self::HubSpot(HubSpotError::Unavailable(m)),
            TokenError::Store(s) => Self::Store(s),
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

async fn token(services: &Services, account: &AccountId) -> Result<String, SettingsError> {
    Ok(access_token(services, account)
        .await?
        .expose_secret()
        .to_owned())
}

/// Saves a change made by `change`, retrying on a concurrent change; returns the new version.
async fn update(
    services: &Services,
    account: &AccountId,
    change: impl Fn(&mut AccountConfig),
) -> Result<u64, SettingsError> {
    for _ in 0..5 {
        let mut config = services.configs.config(account).await?;
        change(&mut config);
        match services.configs.save_config(account, &config).await {
            Ok(version) => return Ok(version),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageView {
    pub id: StageId,
    pub label: String,
    pub display_order: i64,
    pub order_status: Option<OrderStatus>,
    pub order_status_label: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineView {
    pub id: PipelineId,
    pub label: String,
    pub stages: Vec<StageView>,
    /// For each status, the stage board → HubSpot sync moves a deal to when it is
    /// not in a stage of that status already.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub stage_for_status: BTreeMap<u8, StageId>,
    /// Offered for HubSpot's default pipeline, never saved by itself.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, u8>>))]
    pub suggested_mapping: Option<BTreeMap<StageId, OrderStatus>>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelinesView {
    pub items: Vec<PipelineView>,
    /// Mappings of pipelines HubSpot no longer has.
    pub problems: Vec<Problem>,
    pub config_version: u64,
}

pub async fn pipelines(
    services: &Services,
    account: &AccountId,
) -> Result<PipelinesView, SettingsError> {
    let token = token(services, account).await?;
    let live = services.crm.pipelines(&token).await?;
    let config = services.configs.config(account).await?;
    Ok(pipelines_view(&live, &config))
}

fn pipelines_view(live: &[HsPipeline], config: &AccountConfig) -> PipelinesView {
    let empty = BTreeMap::new();
    let items = live
        .iter()
        .map(|p| {
            let mapping = config.status_mapping.get(&p.id).unwrap_or(&empty);
            let mut problems: Vec<Problem> = mapping
                .keys()
                .filter(|stage| !p.stages.iter().any(|s| s.id == **stage))
                .map(|stage| Problem::StageMissing {
                    pipeline_id: p.id.clone(),
                    stage_id: stage.clone(),
                })
                .collect();
            let mut stage_for_status = BTreeMap::new();
            let stages = p
                .stages
                .iter()
                .map(|s| {
                    let status = mapping.get(&s.id).copied();
                    match status {
                        Some(status) => {
                            stage_for_status
                                .entry(status.code())
                                .or_insert_with(|| s.id.clone());
                        }
                        None => problems.push(Problem::StageUnmapped {
                            pipeline_id: p.id.clone(),
                            stage_id: s.id.clone(),
                        }),
                    }
                    StageView {
                        id: s.id.clone(),
                        label: s.label.clone(),
                        display_order: s.display_order,
                        order_status: status,
                        order_status_label: status.map(OrderStatus::label_ja),
                    }
                })
                .collect();
            let suggested_mapping = (p.id.as_str() == "default").then(|| {
                suggested_default()
                    .into_iter()
                    .filter(|(stage, _)| p.stages.iter().any(|s| s.id.as_str() == *stage))
                    .map(|(stage, status)| (StageId::new(stage).expect("valid id"), status))
                    .collect()
            });
            PipelineView {
                id: p.id.clone(),
                label: p.label.clone(),
                stages,
                stage_for_status,
                suggested_mapping,
                problems,
            }
        })
        .collect();
    let problems = config
        .status_mapping
        .keys()
        .filter(|id| !live.iter().any(|p| p.id == **id))
        .map(|id| Problem::PipelineMissing {
            pipeline_id: id.clone(),
        })
        .collect();
    PipelinesView {
        items,
        problems,
        config_version: config.version,
    }
}

/// `PUT …/pipelines/{id}/status-mapping {"stages": {"<stage>": 4 | null}}`:
/// listed stages are set (a code) or cleared (null); others keep their mapping.
pub async fn set_status_mapping(
    services: &Services,
    account: &AccountId,
    pipeline: &str,
    body: &Value,
) -> Result<u64, SettingsError> {
    let stages = body
        .get("stages")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                "stages",
                "an object of stage id → status code or null is required",
            )
        })?;
    let token = token(services, account).await?;
    let live = services.crm.pipelines(&token).await?;
    let pipeline = live
        .iter()
        .find(|p| p.id.as_str() == pipeline)
        .ok_or_else(|| SettingsError::NotFound(format!("pipeline {pipeline}")))?;
    let mut changes: Vec<(StageId, Option<OrderStatus>)> = Vec::new();
    for (stage, code) in stages {
        if !pipeline.stages.iter().any(|s| s.id.as_str() == stage) {
            return Err(invalid(
                format!("stages.{stage}"),
                format!("no stage {stage} in pipeline {}", pipeline.id),
            ));
        }
        let status = match code {
            Value::Null => None,
            Value::Number(n) => Some(
                n.as_i64()
                    .and_then(|c| OrderStatus::from_code(c).ok())
                    .ok_or_else(|| {
                        invalid(
                            format!("stages.{stage}"),
                            format!("{n} is not one of board's codes 1, 2, 3, 8, 4, 5, 9"),
                        )
                    })?,
            ),
            other => {
                return Err(invalid(
                    format!("stages.{stage}"),
                    format!("{other} is not a status code or null"),
                ));
            }
        };
        changes.push((
            StageId::new(stage.as_str())
                .map_err(|e| invalid(format!("stages.{stage}"), e.to_string()))?,
            status,
        ));
    }
    let pipeline_id = pipeline.id.clone();
    update(services, account, |config| {
        let mapping = config
            .status_mapping
            .entry(pipeline_id.clone())
            .or_default();
        for (stage, status) in &changes {
            match status {
                Some(s) => mapping.insert(stage.clone(), *s),
                None => mapping.remove(stage),
            };
        }
        if mapping.is_empty() {
            config.status_mapping.remove(&pipeline_id);
        }
    })
    .await
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulesBody {
    pub rules: Vec<FilterRule>,
}

pub async fn filter_rules(
    services: &Services,
    account: &AccountId,
) -> Result<(Vec<FilterRule>, u64), SettingsError> {
    let config = services.configs.config(account).await?;
    Ok((config.filter_rules, config.version))
}

/// Validates field names and limits, and each value against HubSpot's teams,
/// owners and filter-key options (rules store option values).
pub async fn set_filter_rules(
    services: &Services,
    account: &AccountId,
    body: &Value,
) -> Result<u64, SettingsError> {
    let rules: RulesBody =
        serde_json::from_value(body.clone()).map_err(|e| invalid("rules", e.to_string()))?;
    if rules.rules.len() > MAX_RULES {
        return Err(invalid("rules", format!("at most {MAX_RULES} rules")));
    }
    let options = filter_options(services, account).await?;
    for (r, rule) in rules.rules.iter().enumerate() {
        if rule.conditions.is_empty() || rule.conditions.len() > MAX_CONDITIONS {
            return Err(invalid(
                format!("rules[{r}].conditions"),
                format!("1 to {MAX_CONDITIONS} conditions"),
            ));
        }
        let mut fields = HashSet::new();
        for (c, Condition { field, values }) in rule.conditions.iter().enumerate() {
            let at = format!("rules[{r}].conditions[{c}]");
            if !fields.insert(*field) {
                return Err(invalid(
                    format!("{at}.field"),
                    "a field appears once per rule",
                ));
            }
            if values.is_empty() || values.len() > MAX_VALUES {
                return Err(invalid(
                    format!("{at}.values"),
                    format!("1 to {MAX_VALUES} values"),
                ));
            }
            let known: Vec<&str> = match field {
                FilterField::Team => options.teams.iter().map(|t| t.id.as_str()).collect(),
                FilterField::Owner => options.owners.iter().map(|o| o.id.as_str()).collect(),
                FilterField::FilterKey => options
                    .filter_key
                    .options
                    .iter()
                    .map(|o| o.value.as_str())
                    .collect(),
            };
            if let Some(bad) = values.iter().find(|v| !known.contains(&v.as_str())) {
                return Err(invalid(
                    format!("{at}.values"),
                    format!("{bad} is not a known {} value", field.property()),
                ));
            }
        }
    }
    update(services, account, |config| {
        config.filter_rules = rules.rules.clone()
    })
    .await
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnerOption {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FilterKeyInfo {
    pub property: &'static str,
    pub present: bool,
    pub enumeration: bool,
    pub label: Option<String>,
    pub options: Vec<crate::ports::HsOption>,
    /// Why the filter key cannot be used, when it cannot.
    pub problem: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FilterOptions {
    pub teams: Vec<crate::ports::HsTeam>,
    pub owners: Vec<OwnerOption>,
    pub filter_key: FilterKeyInfo,
}

pub async fn filter_options(
    services: &Services,
    account: &AccountId,
) -> Result<FilterOptions, SettingsError> {
    let token = token(services, account).await?;
    let teams = services.crm.teams(&token).await?;
    let owners = services.crm.owners(&token).await?;
    let property = services
        .crm
        .deal_property(&token, FilterField::FilterKey.property())
        .await?;
    let filter_key = match property {
        None => FilterKeyInfo {
            property: FilterField::FilterKey.property(),
            present: false,
            enumeration: false,
            label: None,
            options: Vec::new(),
            problem: Some("HubSpotに取引プロパティ「board_custom_filter_key」がありません。"),
        },
        Some(p) => {
            let enumeration = p.kind == "enumeration";
            FilterKeyInfo {
                property: FilterField::FilterKey.property(),
                present: true,
                enumeration,
                label: Some(p.label),
                options: if enumeration { p.options } else { Vec::new() },
                problem: (!enumeration).then_some(
                    "「board_custom_filter_key」が選択肢(列挙型)のプロパティではありません。",
                ),
            }
        }
    };
    Ok(FilterOptions {
        teams,
        owners: owners
            .into_iter()
            .map(|o| OwnerOption {
                id: o.id.to_string(),
                name: o.name,
                email: o.email,
            })
            .collect(),
        filter_key,
    })
}

pub async fn account_label(
    services: &Services,
    account: &AccountId,
) -> Result<(Option<AccountLabel>, u64), SettingsError> {
    let config = services.configs.config(account).await?;
    Ok((config.label, config.version))
}

pub async fn set_account_label(
    services: &Services,
    account: &AccountId,
    body: &Value,
) -> Result<u64, SettingsError> {
    let raw = match body.get("label") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => String::new(),
        _ => return Err(invalid("label", "a string is required (empty clears)")),
    };
    let label = AccountLabel::parse(&raw).map_err(|e| invalid("label", e.to_string()))?;
    update(services, account, |config| config.label = label.clone()).await
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnerMappingRow {
    pub owner_id: String,
    pub owner_name: String,
    pub owner_email: String,
    pub board_user_id: Option<BoardUserId>,
    pub board_user_name: Option<String>,
    /// `email` (matched), `override` (set by an administrator) or `none`.
    pub source: &'static str,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnerMapping {
    pub items: Vec<OwnerMappingRow>,
    pub config_version: u64,
}

/// The owner ↔ person-in-charge table: matched by e-mail, overridden by administrators.
pub async fn owner_mapping(
    services: &Services,
    account: &AccountId,
) -> Result<OwnerMapping, SettingsError> {
    let token = token(services, account).await?;
    let owners = services.crm.owners(&token).await?;
    let users = services.board.users(account).await?;
    let config = services.configs.config(account).await?;
    let items = owners
        .into_iter()
        .map(|o| {
            let (user, source) = match config.owner_overrides.get(&o.id.to_string()) {
                Some(choice) => (
                    choice.and_then(|id| users.iter().find(|u| u.id == id)),
                    "override",
                ),
                None => {
                    let matched = users
                        .iter()
                        .find(|u| !u.email.is_empty() && u.email.eq_ignore_ascii_case(&o.email));
                    (matched, if matched.is_some() { "email" } else { "none" })
                }
            };
            OwnerMappingRow {
                owner_id: o.id.to_string(),
                owner_name: o.name,
                owner_email: o.email,
                board_user_id: user.map(|u| u.id),
                board_user_name: user.map(|u| u.name.clone()),
                source,
            }
        })
        .collect();
    Ok(OwnerMapping {
        items,
        config_version: config.version,
    })
}

/// `PUT /v1/hubspot/owner-mapping {"overrides": {"<owner id>": <board user id> | null}}`;
/// `{"reset": ["<owner id>"]}` returns owners to e-mail matching.
pub async fn set_owner_mapping(
    services: &Services,
    account: &AccountId,
    body: &Value,
) -> Result<u64, SettingsError> {
    let overrides = body
        .get("overrides")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let reset: Vec<String> = body
        .get("reset")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if overrides.is_empty() && reset.is_empty() {
        return Err(invalid("overrides", "give overrides and/or reset"));
    }
    let token = token(services, account).await?;
    let owners = services.crm.owners(&token).await?;
    let users = services.board.users(account).await?;
    let mut parsed: Vec<(String, Option<BoardUserId>)> = Vec::new();
    for (owner, user) in &overrides {
        if !owners.iter().any(|o| o.id.to_string() == *owner) {
            return Err(invalid(
                format!("overrides.{owner}"),
                "no such HubSpot owner",
            ));
        }
        let user = match user {
            Value::Null => None,
            v => {
                let id = v.as_u64().and_then(|id| BoardUserId::new(id).ok());
                match id.filter(|id| users.iter().any(|u| u.id == *id)) {
                    Some(id) => Some(id),
                    None => {
                        return Err(invalid(
                            format!("overrides.{owner}"),
                            format!("{v} is not a board user of this account"),
                        ));
                    }
                }
            }
        };
        parsed.push((owner.clone(), user));
    }
    for owner in &reset {
        if !owners.iter().any(|o| o.id.to_string() == *owner) {
            return Err(invalid(format!("reset.{owner}"), "no such HubSpot owner"));
        }
    }
    update(services, account, |config| {
        for (owner, user) in &parsed {
            config.owner_overrides.insert(owner.clone(), *user);
        }
        for owner in &reset {
            config.owner_overrides.remove(owner);
        }
    })
    .await
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub amount_basis: AmountBasis,
    pub two_way_customer_names: bool,
}

pub async fn options(
    services: &Services,
    account: &AccountId,
) -> Result<(Options, u64), SettingsError> {
    let config = services.configs.config(account).await?;
    Ok((
        Options {
            amount_basis: config.amount_basis,
            two_way_customer_names: config.two_way_customer_names,
        },
        config.version,
    ))
}

pub async fn set_options(
    services: &Services,
    account: &AccountId,
    body: &Value,
) -> Result<u64, SettingsError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("options", "an object is required"))?;
    if let Some(unknown) = object
        .keys()
        .find(|k| *k != "amount_basis" && *k != "two_way_customer_names")
    {
        return Err(invalid(unknown.clone(), "unknown option"));
    }
    let amount_basis = match object.get("amount_basis").and_then(Value::as_str) {
        Some("excluding_tax") => AmountBasis::ExcludingTax,
        Some("including_tax") => AmountBasis::IncludingTax,
        _ => return Err(invalid("amount_basis", "excluding_tax or including_tax")),
    };
    let two_way = object
        .get("two_way_customer_names")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid("two_way_customer_names", "true or false"))?;
    let options = Options {
        amount_basis,
        two_way_customer_names: two_way,
    };
    update(services, account, |config| {
        config.amount_basis = options.amount_basis;
        config.two_way_customer_names = options.two_way_customer_names;
    })
    .await
}
