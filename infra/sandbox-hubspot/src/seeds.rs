//! The demo portal of ARCHITECTURE.md: portal 1000001, two pipelines, two teams,
//! three owners, the built-in properties and `board_custom_filter_key`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::model::{
    ObjectType, Owner, Pipeline, Portal, PropertyDef, PropertyOption, Stage, State, Team,
};

pub const PORTAL_ID: u64 = 1_000_001;
/// A second HubSpot account the same admin can pick on the consent page.
pub const SECOND_PORTAL_ID: u64 = 1_000_002;

fn stage(id: &str, label: &str, order: i64, probability: &str, closed: bool) -> Stage {
    Stage {
        id: id.into(),
        label: label.into(),
        display_order: order,
        metadata: BTreeMap::from([
            ("probability".to_owned(), probability.to_owned()),
            ("isClosed".to_owned(), closed.to_string()),
        ]),
        archived: false,
    }
}

fn options(pairs: &[(&str, &str)]) -> Vec<PropertyOption> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (label, value))| PropertyOption {
            label: (*label).into(),
            value: (*value).into(),
            display_order: i as i64,
            hidden: false,
        })
        .collect()
}

fn builtins(kind: ObjectType) -> Vec<PropertyDef> {
    let text = |n: &str, l: &str| PropertyDef::builtin(n, l, "string", "text");
    let mut defs = match kind {
        ObjectType::Deals => vec![
            text("dealname", "Deal Name"),
            PropertyDef::builtin("amount", "Amount", "number", "number"),
            PropertyDef::builtin("closedate", "Close Date", "datetime", "date"),
            PropertyDef::builtin("pipeline", "Pipeline", "enumeration", "select"),
            PropertyDef::builtin("dealstage", "Deal Stage", "enumeration", "radio"),
            PropertyDef::builtin("hubspot_owner_id", "Deal owner", "enumeration", "select"),
            PropertyDef::builtin("hubspot_team_id", "HubSpot Team", "enumeration", "select"),
            text("deal_currency_code", "Currency"),
            text("description", "Deal Description"),
        ],
        ObjectType::Companies => vec![
            text("name", "Company name"),
            text("domain", "Company Domain Name"),
            PropertyDef::builtin("phone", "Phone Number", "string", "phonenumber"),
            text("zip", "Postal Code"),
            text("state", "State/Region"),
            text("city", "City"),
            text("address", "Street Address"),
            text("address2", "Street Address 2"),
            text("country", "Country/Region"),
            PropertyDef::builtin("hubspot_owner_id", "Company owner", "enumeration", "select"),
        ],
        ObjectType::Contacts => vec![
            text("firstname", "First Name"),
            text("lastname", "Last Name"),
            text("email", "Email"),
            text("jobtitle", "Job Title"),
            PropertyDef::builtin("phone", "Phone Number", "string", "phonenumber"),
            text("company", "Company Name"),
            PropertyDef::builtin("hubspot_owner_id", "Contact owner", "enumeration", "select"),
        ],
        ObjectType::Notes => vec![
            PropertyDef::builtin("hs_note_body", "Note body", "string", "html"),
            PropertyDef::builtin("hs_timestamp", "Activity date", "datetime", "date"),
            PropertyDef::builtin(
                "hubspot_owner_id",
                "Activity assigned to",
                "enumeration",
                "select",
            ),
        ],
    };
    let modified = if kind == ObjectType::Contacts {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    };
    for (name, label, k) in [
        ("hs_object_id", "Record ID", "number"),
        ("createdate", "Create Date", "datetime"),
        (modified, "Last Modified Date", "datetime"),
    ] {
        let mut def = PropertyDef::builtin(
            name,
            label,
            k,
            if k == "number" { "number" } else { "date" },
        );
        def.read_only = true;
        defs.push(def);
    }
    defs
}

pub fn seed(state: &mut State) {
    state.next_id = 9_000_000;
    seed_portal(state, PORTAL_ID);
    seed_portal(state, SECOND_PORTAL_ID);
}

/// Another portal like the demo one (same pipelines, teams, owners and
/// properties), with the next free id: many tenants in one emulator.
pub fn add_portal(state: &mut State) -> u64 {
    let id = state
        .portals
        .keys()
        .next_back()
        .copied()
        .unwrap_or(PORTAL_ID)
        + 1;
    seed_portal(state, id);
    id
}

/// The person token of `portal`: `pat-sandbox-user` is the demo portal's,
/// `pat-sandbox-user-<portal id>` any portal's.
pub fn user_token_portal(configured: &str, token: &str) -> Option<u64> {
    if token == configured {
        return Some(PORTAL_ID);
    }
    token
        .strip_prefix(configured)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|id| id.parse().ok())
}

fn seed_portal(state: &mut State, portal_id: u64) {
    state.portals.insert(
        portal_id,
        Portal {
            id: portal_id,
            domain: format!("sandbox-{portal_id}.hubspot.test"),
            time_zone: "Asia/Tokyo".into(),
            utc_offset_ms: 32_400_000,
            installed: false,
            admin_user_id: 5_000_001,
            admin_email: "admin@sandbox.example.jp".into(),
        },
    );
    for kind in ObjectType::ALL {
        let defs = state.properties.entry((portal_id, kind)).or_default();
        for def in builtins(kind) {
            defs.insert(def.name.clone(), def);
        }
    }
    let mut filter_key = PropertyDef::builtin(
        "board_custom_filter_key",
        "フィルター用識別子",
        "enumeration",
        "select",
    );
    filter_key.hubspot_defined = false;
    filter_key.options = options(&[
        ("A事業部用boardアカウント", "A事業部用boardアカウント"),
        ("B事業部用boardアカウント", "B事業部用boardアカウント"),
    ]);
    state
        .properties
        .entry((portal_id, ObjectType::Deals))
        .or_default()
        .insert(filter_key.name.clone(), filter_key);

    state.pipelines.insert(
        portal_id,
        vec![
            Pipeline {
                id: "default".into(),
                label: "Sales Pipeline".into(),
                display_order: 0,
                archived: false,
                stages: vec![
                    stage(
                        "appointmentscheduled",
                        "Appointment Scheduled",
                        0,
                        "0.2",
                        false,
                    ),
                    stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4", false),
                    stage(
                        "presentationscheduled",
                        "Presentation Scheduled",
                        2,
                        "0.6",
                        false,
                    ),
                    stage(
                        "decisionmakerboughtin",
                        "Decision Maker Bought-In",
                        3,
                        "0.8",
                        false,
                    ),
                    stage("contractsent", "Contract Sent", 4, "0.9", false),
                    stage("closedwon", "Closed Won", 5, "1.0", true),
                    stage("closedlost", "Closed Lost", 6, "0.0", true),
                ],
            },
            Pipeline {
                id: "7000001".into(),
                label: "パートナー経由".into(),
                display_order: 1,
                archived: false,
                stages: vec![
                    stage("7000011", "初回商談", 0, "0.1", false),
                    stage("7000012", "見積提出", 1, "0.5", false),
                    stage("7000013", "受注", 2, "1.0", true),
                    stage("7000014", "失注", 3, "0.0", true),
                ],
            },
        ],
    );
    let owner = |id: &str, email: &str, first: &str, last: &str, user: u64, team: &str| Owner {
        id: id.into(),
        email: email.into(),
        first_name: first.into(),
        last_name: last.into(),
        user_id: user,
        teams: vec![
            json!({"id": team, "name": if team == "8000001" { "テストチーム1" } else { "テストチーム2" }, "primary": true}),
        ],
        archived: false,
    };
    state.owners.insert(
        portal_id,
        vec![
            owner(
                "6000001",
                "sato@sandbox.example.jp",
                "太郎",
                "佐藤",
                5_000_001,
                "8000001",
            ),
            owner(
                "6000002",
                "suzuki@sandbox.example.jp",
                "花子",
                "鈴木",
                5_000_002,
                "8000001",
            ),
            owner(
                "6000003",
                "tanaka@sandbox.example.jp",
                "一郎",
                "田中",
                5_000_003,
                "8000002",
            ),
        ],
    );
    state.teams.insert(
        portal_id,
        vec![
            Team {
                id: "8000001".into(),
                name: "テストチーム1".into(),
                user_ids: vec!["5000001".into(), "5000002".into()],
                secondary_user_ids: vec![],
            },
            Team {
                id: "8000002".into(),
                name: "テストチーム2".into(),
                user_ids: vec!["5000003".into()],
                secondary_user_ids: vec![],
            },
        ],
    );
    // Enumeration options of the owner and team properties follow the seeds.
    let owner_options: Vec<(String, String)> = state.owners[&portal_id]
        .iter()
        .map(|o| (format!("{} {}", o.last_name, o.first_name), o.id.clone()))
        .collect();
    let team_options: Vec<(String, String)> = state.teams[&portal_id]
        .iter()
        .map(|t| (t.name.clone(), t.id.clone()))
        .collect();
    for kind in ObjectType::ALL {
        if let Some(def) = state
            .properties
            .get_mut(&(portal_id, kind))
            .and_then(|d| d.get_mut("hubspot_owner_id"))
        {
            def.options = options(
                &owner_options
                    .iter()
                    .map(|(l, v)| (l.as_str(), v.as_str()))
                    .collect::<Vec<_>>(),
            );
        }
    }
    if let Some(def) = state
        .properties
        .get_mut(&(portal_id, ObjectType::Deals))
        .and_then(|d| d.get_mut("hubspot_team_id"))
    {
        def.options = options(
            &team_options
                .iter()
                .map(|(l, v)| (l.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
    }
}
