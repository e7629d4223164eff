//! The account label, the owner ↔ person-in-charge table and the account's options.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::Services;
use crate::domain::config::AmountBasis;
use crate::domain::{AccountId, AccountLabel, BoardUserId};

use super::common::*;

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
