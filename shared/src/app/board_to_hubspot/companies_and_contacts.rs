//! A board customer or customer contact's change event onto its HubSpot company or contact:
//! the fields that differ from the baselines, read against HubSpot's current values.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::app::Services;
use crate::app::history::{Attempt, record};
use crate::domain::connection::ConnectionState;
use crate::domain::{
    AccountId, BoardObjectKind, BoardRef, Code, HubSpotObjectType, Link, LinkState,
};
use crate::ports::HubSpotError;

use super::outcome::*;
use super::projects::*;
use crate::app::failure::SyncFailure;

/// (baseline key, board's value normalised, HubSpot properties it becomes).
pub(super) type Wanted = (&'static str, Option<String>, Vec<(&'static str, String)>);

/// What a customer or contact snapshot asks of its linked company or contact
/// (SPEC §6), in the baseline keys HubSpot → board uses, so each side's echo
/// is recognised by the other.
pub(super) fn wanted_in_hubspot(link: &Link, object: &Value) -> (Vec<Wanted>, Vec<String>) {
    use crate::domain::normalize;
    let get = |k: &str| text(object, k).map(|v| normalize::nfkc(&v));
    let mut warnings = Vec::new();
    let mut out: Vec<Wanted> = Vec::new();
    // An empty board field is wanted as `None` (its baseline) and never clears HubSpot's.
    let mut want =
        |key: &'static str, value: Option<String>, props: Vec<(&'static str, String)>| {
            let props = if value.is_some() { props } else { Vec::new() };
            out.push((key, value, props));
        };
    match (link.hubspot.object_type, link.board.kind) {
        (HubSpotObjectType::Company, _) => {
            let name = get("name");
            want(
                "name",
                name.clone(),
                vec![("name", name.unwrap_or_default())],
            );
            let phone = get("tel").map(|raw| normalize::phone(&raw).unwrap_or(raw));
            want(
                "phone",
                phone.clone(),
                vec![("phone", phone.unwrap_or_default())],
            );
            match get("zip") {
                Some(raw) => match normalize::zip(&raw) {
                    Some(zip) => want("zip", Some(zip.clone()), vec![("zip", zip)]),
                    None => warnings.push(format!(
                        "郵便番号「{raw}」は7桁の郵便番号ではないため連携しませんでした"
                    )),
                },
                None => want("zip", None, Vec::new()),
            }
            match get("pref") {
                Some(raw) => match normalize::prefecture(&raw) {
                    Some(pref) => want(
                        "state",
                        Some(pref.to_owned()),
                        vec![("state", pref.to_owned())],
                    ),
                    None => warnings.push(format!(
                        "都道府県「{raw}」は日本の都道府県ではないため連携しませんでした"
                    )),
                },
                None => want("state", None, Vec::new()),
            }
            let address1 = get("address1");
            let (city, rest) = normalize::split_city(address1.as_deref().unwrap_or_default());
            want(
                "address1",
                address1,
                vec![("address", rest), ("city", city.unwrap_or_default())],
            );
            let address2 = get("address2");
            want(
                "address2",
                address2.clone(),
                vec![("address2", address2.unwrap_or_default())],
            );
        }
        (HubSpotObjectType::Contact, BoardObjectKind::Customer) => {
            let name = get("name");
            let full = name.clone().unwrap_or_default();
            let (last, first) = full.split_once(' ').unwrap_or((full.as_str(), ""));
            want(
                "name",
                name.clone(),
                vec![
                    ("lastname", last.to_owned()),
                    ("firstname", first.trim().to_owned()),
                ],
            );
        }
        (HubSpotObjectType::Contact, _) => {
            for (key, field) in [
                ("lastname", "last_name"),
                ("firstname", "first_name"),
                ("email", "email"),
                ("jobtitle", "title"),
            ] {
                let v = get(field);
                want(key, v.clone(), vec![(key, v.unwrap_or_default())]);
            }
        }
        _ => {}
    }
    (out, warnings)
}

/// The linked company's or contact's current values, in baseline keys and form.
pub(super) async fn hubspot_values(
    services: &Services,
    config: &crate::domain::config::AccountConfig,
    link: &Link,
) -> Result<BTreeMap<&'static str, Option<String>>, WriteError> {
    let token = crate::app::tokens::access_token(services, &link.account_id)
        .await
        .map_err(WriteError::Token)?;
    let properties: &[&str] = match link.hubspot.object_type {
        HubSpotObjectType::Company => &crate::domain::mapping::COMPANY_PROPERTIES,
        _ => &crate::domain::mapping::CONTACT_PROPERTIES,
    };
    let (found, _) = services
        .batch
        .batch_read(
            secrecy::ExposeSecret::expose_secret(&token),
            link.hubspot.object_type,
            &[link.hubspot.id],
            properties,
        )
        .await
        .map(|m| m.value)
        .map_err(WriteError::HubSpot)?;
    let Some(object) = found.into_iter().next() else {
        return Err(WriteError::HubSpot(HubSpotError::NotFound(
            "the linked object is gone".into(),
        )));
    };
    let (values, _) = crate::app::hubspot_to_board::linked_others::wanted(link, &object, config);
    let mut out: BTreeMap<&'static str, Option<String>> = values
        .into_iter()
        .map(|(key, _, value)| (key, value))
        .collect();
    if link.hubspot.object_type == HubSpotObjectType::Company {
        out.entry("name").or_insert_with(|| {
            object
                .get("name")
                .map(crate::domain::normalize::nfkc)
                .filter(|n| !n.is_empty())
        });
    }
    Ok(out)
}

/// `customer.*` / `contact.*`: the linked company or contact follows, field by field.
pub async fn customer_or_contact_event(
    services: &Services,
    account: &AccountId,
    kind: BoardObjectKind,
    deleted: bool,
    object: &Value,
    last_attempt: bool,
) -> Result<Applied, SyncFailure> {
    let Some(id) = object["id"].as_u64() else {
        return Ok(Applied::Nothing);
    };
    let Some(connection) = live_connection(services, account).await? else {
        return Ok(Applied::Nothing);
    };
    let mut links = Vec::new();
    if let Some(link) = services
        .links
        .link_by_board(account, connection.portal_id, BoardRef { kind, id })
        .await?
    {
        links.push(link);
    }
    let mut last = Applied::Nothing;
    for mut link in links {
        if link.state != LinkState::Enabled {
            continue;
        }
        let config = services.configs.config(account).await?;
        if deleted {
            // SPEC §9: the link ends, recorded once (a disabled link records nothing more).
            let code = match kind {
                BoardObjectKind::CustomerContact => Code::CustomerContactNotFound,
                _ => Code::CustomerNotFound,
            };
            link.state = LinkState::Deleted;
            save(services, &link).await?;
            record(
                services,
                Attempt {
                    code: Some(code),
                    ..attempt(&link, text(object, "name"), config.version)
                },
            )
            .await;
            last = Applied::Recorded(code);
            continue;
        }
        let name = text(object, "name").or_else(|| {
            let full = format!(
                "{} {}",
                text(object, "last_name").unwrap_or_default(),
                text(object, "first_name").unwrap_or_default()
            );
            Some(full.trim().to_owned()).filter(|n| !n.is_empty())
        });
        if matches!(connection.state, ConnectionState::Suspended) {
            record(
                services,
                Attempt {
                    code: Some(Code::IntegrationSuspended),
                    ..attempt(&link, name, config.version)
                },
            )
            .await;
            last = Applied::Recorded(Code::IntegrationSuspended);
            continue;
        }
        let (wanted, warnings) = wanted_in_hubspot(&link, object);
        // Fields without a baseline yet (the link is new): compared with what
        // HubSpot holds now, so equal values are not written again.
        let current = if wanted
            .iter()
            .any(|(k, _, _)| !link.baseline.contains_key(*k))
        {
            match hubspot_values(services, &config, &link).await {
                Ok(values) => values,
                Err(error) => {
                    last =
                        failure(services, link, name, error, last_attempt, config.version).await?;
                    continue;
                }
            }
        } else {
            BTreeMap::new()
        };
        let mut first_seen = false;
        let mut changed: Vec<Wanted> = Vec::new();
        for (key, board, props) in wanted {
            if link.is_board_echo(key, board.as_ref()) {
                // Ours (possibly still being saved by the other direction).
                continue;
            }
            match link.baseline.get(key) {
                None if current.get(key).cloned().flatten() != board && !props.is_empty() => {
                    changed.push((key, board, props));
                }
                None => {
                    let entry = link.baseline.entry(key.to_owned()).or_default();
                    entry.hubspot = current.get(key).cloned().flatten();
                    entry.board = board;
                    first_seen = true;
                }
                Some(base) if base.board != board && !props.is_empty() => {
                    changed.push((key, board, props));
                }
                Some(base) if base.board != board => {
                    // Emptied in board: HubSpot keeps its value; the baseline follows board.
                    link.baseline.entry(key.to_owned()).or_default().board = board;
                    first_seen = true;
                }
                Some(_) => {}
            }
        }
        if changed.is_empty() {
            if first_seen {
                save(services, &link).await?;
            }
            continue;
        }
        let mut properties = BTreeMap::new();
        for (_, _, props) in &changed {
            for (k, v) in props {
                properties.insert((*k).to_owned(), v.clone());
            }
        }
        let fields: Vec<&'static str> = changed.iter().map(|(k, _, _)| *k).collect();
        match write(services, &connection, &link, properties).await {
            Ok(()) => {
                for (key, value, _) in changed {
                    let b = link.baseline.entry(key.to_owned()).or_default();
                    b.hubspot = value.clone();
                    b.board = value;
                }
                link.last_synced_at = Some(services.clock.now());
                save(services, &link).await?;
                let action = match link.hubspot.object_type {
                    HubSpotObjectType::Company => "company_updated",
                    _ => "contact_updated",
                };
                record(
                    services,
                    Attempt {
                        action: Some(action),
                        detail: Some(fields.join(", ")),
                        warnings,
                        ..attempt(&link, name, config.version)
                    },
                )
                .await;
                last = Applied::DealUpdated(fields);
            }
            Err(error) => {
                last = failure(services, link, name, error, last_attempt, config.version).await?;
            }
        }
    }
    Ok(last)
}
