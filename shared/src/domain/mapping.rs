//! The synced fields: the baseline keys each direction compares against, the
//! HubSpot properties read for companies and contacts, and a deal's synced
//! values normalised as baselines are.

use std::collections::BTreeMap;

use crate::domain::dates::portal_date;
use crate::domain::link::Baseline;
use crate::domain::normalize::nfkc;

/// Baseline keys of a deal ↔ project link.
pub const NAME: &str = "name";
pub const STAGE: &str = "stage";
pub const CLOSE_DATE: &str = "close_date";
pub const COMPANY: &str = "company";
/// Baseline keys only board → HubSpot uses (board's values).
pub const ORDER_STATUS: &str = "order_status";
pub const AMOUNT: &str = "amount";
pub const OWNER: &str = "owner";

/// A deal field's name in history entries, whichever direction writes it.
pub fn deal_label_ja(key: &str) -> &'static str {
    match key {
        NAME => "案件名",
        STAGE | ORDER_STATUS => "受注ステータス",
        CLOSE_DATE => "受注日",
        AMOUNT => "金額",
        OWNER => "担当者",
        _ => "項目",
    }
}

/// The HubSpot properties a linked company or contact is read with.
pub const COMPANY_PROPERTIES: [&str; 7] = [
    "name", "phone", "zip", "state", "city", "address", "address2",
];
pub const CONTACT_PROPERTIES: [&str; 4] = ["lastname", "firstname", "email", "jobtitle"];

/// The deal's synced values, normalised as baselines are.
pub fn deal_values(
    deal_name: Option<&str>,
    pipeline: Option<&str>,
    stage: Option<&str>,
    close_date: Option<&str>,
    zone: time::UtcOffset,
) -> Vec<(&'static str, Option<String>)> {
    vec![
        (NAME, deal_name.map(nfkc).filter(|n| !n.is_empty())),
        (
            STAGE,
            match (pipeline, stage) {
                (Some(p), Some(s)) => Some(format!("{p}:{s}")),
                _ => None,
            },
        ),
        (CLOSE_DATE, close_date.and_then(|d| portal_date(d, zone))),
    ]
}

/// Baselines right after registration: both sides hold these values.
pub fn initial_baseline(
    values: Vec<(&'static str, Option<String>)>,
    primary_company: Option<u64>,
) -> BTreeMap<String, Baseline> {
    let mut baseline: BTreeMap<String, Baseline> = values
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Baseline::both(v)))
        .collect();
    if let Some(company) = primary_company {
        let v = Some(company.to_string());
        baseline.insert(COMPANY.into(), Baseline::both(v));
    }
    baseline
}
