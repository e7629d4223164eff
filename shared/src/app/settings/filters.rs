//! The deal filter rules, validated against HubSpot's teams, owners and filter-key options.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::Services;
use crate::domain::AccountId;
use crate::domain::config::{Condition, FilterField, FilterRule};

use super::common::*;

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
    let rules = checked_rules(services, account, body).await?;
    update(services, account, |config| {
        config.filter_rules = rules.clone()
    })
    .await
}

/// Rules checked against HubSpot's live options (teams, owners, the filter
/// key's values): saved by `set_filter_rules`, tried on a copy by the preview.
pub(super) async fn checked_rules(
    services: &Services,
    account: &AccountId,
    body: &Value,
) -> Result<Vec<crate::domain::config::FilterRule>, SettingsError> {
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
    Ok(rules.rules)
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
