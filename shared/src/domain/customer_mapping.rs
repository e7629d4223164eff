//! Company ↔ customer and contact ↔ customer contact (or individual customer), both ways
//! (SPEC §6): the fields each side asks of the other, in the baseline keys both directions
//! compare against, so each side's echo is recognised by the other.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use super::normalize;
use super::{BoardObjectKind, HubSpotObjectType};

/// The HubSpot properties a linked company or contact is read with: the synced
/// ones and the one that says when it last changed.
pub fn read_properties(object_type: HubSpotObjectType) -> Vec<&'static str> {
    let mut properties: Vec<&'static str> = match object_type {
        HubSpotObjectType::Company => super::mapping::COMPANY_PROPERTIES.to_vec(),
        _ => super::mapping::CONTACT_PROPERTIES.to_vec(),
    };
    properties.push(modified_property(object_type));
    properties
}

/// The property HubSpot keeps an object's last change in: contacts have
/// `lastmodifieddate`, deals and companies `hs_lastmodifieddate`
/// (the default properties in HubSpot's CRM search reference,
/// https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm).
pub fn modified_property(object_type: HubSpotObjectType) -> &'static str {
    match object_type {
        HubSpotObjectType::Contact => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

/// When HubSpot last changed an object read with `read_properties`.
pub fn hubspot_modified_at(
    object_type: HubSpotObjectType,
    properties: &BTreeMap<String, String>,
) -> Option<OffsetDateTime> {
    properties
        .get(modified_property(object_type))
        .and_then(|v| super::dates::parse_instant(v))
}

/// When board last changed a record (its `updated_at`).
pub fn board_modified_at(object: &Value) -> Option<OffsetDateTime> {
    object["updated_at"]
        .as_str()
        .and_then(super::dates::parse_instant)
}

/// A field's name in history entries.
pub fn label_ja(key: &str) -> &'static str {
    match key {
        "name" => "名前",
        "phone" => "電話番号",
        "zip" => "郵便番号",
        "state" => "都道府県",
        "address1" => "住所1",
        "address2" => "住所2",
        "lastname" => "姓",
        "firstname" => "名",
        "email" => "メールアドレス",
        "jobtitle" => "役職",
        _ => "項目",
    }
}

fn text(object: &Value, name: &str) -> Option<String> {
    match &object[name] {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// (baseline key, board field, value).
pub type FromHubSpot = (&'static str, &'static str, Option<String>);

/// What a HubSpot company or contact asks of its linked board object, and warnings about what
/// it cannot carry. The legal name comes along only with `two_way_names` (SPEC §6).
pub fn from_hubspot(
    pair: (HubSpotObjectType, BoardObjectKind),
    object: &BTreeMap<String, String>,
    two_way_names: bool,
) -> (Vec<FromHubSpot>, Vec<String>) {
    let get = |k: &str| {
        object
            .get(k)
            .map(|v| normalize::nfkc(v))
            .filter(|v| !v.is_empty())
    };
    let mut warnings = Vec::new();
    let values = match pair {
        (HubSpotObjectType::Company, _) => {
            let mut v = Vec::new();
            if two_way_names {
                v.push(("name", "name", get("name")));
            }
            let phone = get("phone").map(|p| normalize::phone(&p).unwrap_or(p));
            v.push(("phone", "tel", phone));
            match get("zip") {
                Some(raw) => match normalize::zip(&raw) {
                    Some(zip) => v.push(("zip", "zip", Some(zip))),
                    None => warnings.push(format!(
                        "郵便番号「{raw}」は7桁の郵便番号ではないため連携しませんでした"
                    )),
                },
                None => v.push(("zip", "zip", None)),
            }
            if let Some(raw) = get("state") {
                match normalize::prefecture(&raw) {
                    Some(pref) => v.push(("state", "pref", Some(pref.to_owned()))),
                    None => warnings.push(format!(
                        "都道府県「{raw}」は日本の都道府県ではないため連携しませんでした"
                    )),
                }
            }
            let address1 = format!(
                "{}{}",
                get("city").unwrap_or_default(),
                get("address").unwrap_or_default()
            );
            v.push((
                "address1",
                "address1",
                Some(address1).filter(|a| !a.is_empty()),
            ));
            v.push(("address2", "address2", get("address2")));
            v
        }
        (HubSpotObjectType::Contact, BoardObjectKind::Customer) => {
            let name = format!(
                "{} {}",
                get("lastname").unwrap_or_default(),
                get("firstname").unwrap_or_default()
            )
            .trim()
            .to_owned();
            vec![("name", "name", Some(name).filter(|n| !n.is_empty()))]
        }
        (HubSpotObjectType::Contact, _) => {
            let (mut last, mut first) = (get("lastname"), get("firstname"));
            // A full name typed into one field: split at the space.
            if first.is_none()
                && let Some((l, f)) = last.clone().as_deref().and_then(|n| n.split_once(' '))
            {
                warnings.push(format!(
                    "氏名「{}」を姓と名に分割しました",
                    last.clone().unwrap_or_default()
                ));
                (last, first) = (Some(l.to_owned()), Some(f.trim().to_owned()));
            }
            vec![
                ("lastname", "last_name", last),
                ("firstname", "first_name", first),
                ("email", "email", get("email")),
                ("jobtitle", "title", get("jobtitle")),
            ]
        }
        _ => Vec::new(),
    };
    (values, warnings)
}

/// (baseline key, board's value normalised, HubSpot properties it becomes).
pub type FromBoard = (&'static str, Option<String>, Vec<(&'static str, String)>);

/// What a customer or contact snapshot asks of its linked company or contact
/// (SPEC §6), in the baseline keys HubSpot → board uses, so each side's echo
/// is recognised by the other.
pub fn from_board(
    pair: (HubSpotObjectType, BoardObjectKind),
    object: &Value,
) -> (Vec<FromBoard>, Vec<String>) {
    let get = |k: &str| text(object, k).map(|v| normalize::nfkc(&v));
    let mut warnings = Vec::new();
    let mut out: Vec<FromBoard> = Vec::new();
    // An empty board field is wanted as `None` (its baseline) and never clears HubSpot's.
    let mut want =
        |key: &'static str, value: Option<String>, props: Vec<(&'static str, String)>| {
            let props = if value.is_some() { props } else { Vec::new() };
            out.push((key, value, props));
        };
    match pair {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hubspot(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn keyed<T>(
        values: Vec<(&'static str, Option<String>, T)>,
    ) -> BTreeMap<&'static str, Option<String>> {
        values.into_iter().map(|(k, v, _)| (k, v)).collect()
    }

    const COMPANY: (HubSpotObjectType, BoardObjectKind) =
        (HubSpotObjectType::Company, BoardObjectKind::Customer);

    #[test]
    fn given_a_company_and_a_customer_holding_the_same_data_when_mapped_then_every_key_agrees() {
        let company = hubspot(&[
            ("name", "株式会社シー"),
            ("phone", "+81 3 1234 5678"),
            ("zip", "1000005"),
            ("state", "Tokyo"),
            ("city", "千代田区"),
            ("address", "丸の内1-1"),
            ("address2", "丸の内ビル3F"),
        ]);
        let customer = json!({"name": "株式会社シー", "tel": "03-1234-5678", "zip": "100-0005",
                              "pref": "東京都", "address1": "千代田区丸の内1-1", "address2": "丸の内ビル3F"});
        let (from_hubspot, warnings) = from_hubspot(COMPANY, &company, true);
        assert!(warnings.is_empty(), "{warnings:?}");
        let from_hubspot: BTreeMap<_, _> =
            from_hubspot.into_iter().map(|(k, _, v)| (k, v)).collect();
        let (from_board, warnings) = from_board(COMPANY, &customer);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(from_hubspot, keyed(from_board));
    }

    #[test]
    fn given_one_way_names_when_a_company_is_read_then_its_name_is_not_asked_of_board() {
        let company = hubspot(&[("name", "株式会社シー"), ("phone", "03-1234-5678")]);
        let (values, _) = from_hubspot(COMPANY, &company, false);
        assert!(values.iter().all(|(key, _, _)| *key != "name"));
    }

    #[test]
    fn given_a_customer_with_a_postal_code_board_cannot_mean_when_mapped_then_it_warns_and_skips() {
        let (values, warnings) = from_board(COMPANY, &json!({"zip": "12345", "tel": "0312345678"}));
        assert!(values.iter().all(|(key, _, _)| *key != "zip"));
        assert_eq!(warnings.len(), 1);
        let props: Vec<_> = values.iter().flat_map(|(_, _, p)| p.clone()).collect();
        assert!(
            props.contains(&("phone", "03-1234-5678".to_owned())),
            "{props:?}"
        );
    }

    #[test]
    fn given_an_individual_customer_when_mapped_then_its_name_splits_into_the_contacts_names() {
        let pair = (HubSpotObjectType::Contact, BoardObjectKind::Customer);
        let (values, _) = from_board(pair, &json!({"name": "高橋 一"}));
        assert_eq!(
            values,
            [(
                "name",
                Some("高橋 一".to_owned()),
                vec![
                    ("lastname", "高橋".to_owned()),
                    ("firstname", "一".to_owned())
                ]
            )]
        );
        let (back, _) = from_hubspot(
            pair,
            &hubspot(&[("lastname", "高橋"), ("firstname", "一")]),
            false,
        );
        assert_eq!(back, [("name", "name", Some("高橋 一".to_owned()))]);
    }

    #[test]
    fn given_a_contact_when_read_then_its_own_last_modified_property_dates_it() {
        assert_eq!(
            modified_property(HubSpotObjectType::Contact),
            "lastmodifieddate"
        );
        let at = hubspot_modified_at(
            HubSpotObjectType::Contact,
            &hubspot(&[("lastmodifieddate", "2026-12-01T00:00:00Z")]),
        );
        assert_eq!(at, Some(time::macros::datetime!(2026-12-01 00:00 UTC)));
        assert!(read_properties(HubSpotObjectType::Company).contains(&"hs_lastmodifieddate"));
    }
}
