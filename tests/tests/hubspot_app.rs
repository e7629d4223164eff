//! The HubSpot developer-platform project (infra/hubspot-app) against what the
//! service expects and what HubSpot's project structure requires.

use std::path::Path;

use serde_json::Value;

fn read(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/hubspot-app")
        .join(path);
    serde_json::from_str(
        &std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display())),
    )
    .unwrap()
}

fn origin(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.origin().ascii_serialization()
}

#[test]
fn the_project_is_on_platform_2026_03_with_its_app_under_src() {
    let project = read("hsproject.json");
    assert_eq!(project["platformVersion"], "2026.03");
    assert_eq!(project["srcDir"], "src");
    let app = read("src/app/app-hsmeta.json");
    assert_eq!(app["type"], "app");
    assert_eq!(app["config"]["auth"]["type"], "oauth");
}

#[test]
fn the_app_asks_for_exactly_the_scopes_the_service_requests() {
    let app = read("src/app/app-hsmeta.json");
    let mut declared: Vec<String> = app["config"]["auth"]["requiredScopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let mut requested: Vec<String> = board_hubspot::config::HUBSPOT_SCOPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    declared.sort();
    requested.sort();
    assert_eq!(
        declared, requested,
        "HubSpot fails the install when the authorize URL asks for an undeclared scope"
    );
}

#[test]
fn every_url_points_at_one_service_origin() {
    let app = read("src/app/app-hsmeta.json");
    let redirect = app["config"]["auth"]["redirectUrls"][0].as_str().unwrap();
    assert!(redirect.ends_with("/oauth/callback"));
    let service = origin(redirect);
    let fetch: Vec<&str> = app["config"]["permittedUrls"]["fetch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(fetch, [service.as_str()]);
    let webhooks = read("src/app/webhooks/webhooks-hsmeta.json");
    let target = webhooks["config"]["settings"]["targetUrl"]
        .as_str()
        .unwrap();
    assert_eq!(origin(target), service);
    assert!(target.ends_with("/hubspot/webhooks"));
    let config = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/hubspot-app/src/app/cards/config.ts"),
    )
    .unwrap();
    assert!(
        config.contains(&format!("\"{service}\"")),
        "the card fetches from the same origin"
    );
}

#[test]
fn webhooks_cover_every_object_event_and_every_property_the_sync_reads() {
    let webhooks = read("src/app/webhooks/webhooks-hsmeta.json");
    let subs = webhooks["config"]["subscriptions"]["crmObjects"]
        .as_array()
        .unwrap();
    let has = |kind: &str, object: &str, property: Option<&str>| {
        subs.iter().any(|s| {
            s["subscriptionType"] == kind
                && s["objectType"] == object
                && property.is_none_or(|p| s["propertyName"] == p)
                && s["active"] == true
        })
    };
    for object in ["deal", "company", "contact"] {
        for kind in [
            "object.creation",
            "object.deletion",
            "object.merge",
            "object.restore",
            "object.associationChange",
        ] {
            assert!(has(kind, object, None), "{object} {kind}");
        }
    }
    for property in board_hubspot::app::hubspot_to_board::DEAL_PROPERTIES
        .iter()
        .filter(|p| !p.starts_with("hs_") && **p != "deal_currency_code")
    {
        assert!(
            has("object.propertyChange", "deal", Some(property)),
            "deal.{property}"
        );
    }
    for property in board_hubspot::domain::mapping::COMPANY_PROPERTIES {
        assert!(
            has("object.propertyChange", "company", Some(property)),
            "company.{property}"
        );
    }
    for property in board_hubspot::domain::mapping::CONTACT_PROPERTIES {
        assert!(
            has("object.propertyChange", "contact", Some(property)),
            "contact.{property}"
        );
    }
}

#[test]
fn the_card_sits_on_deal_records_and_its_entrypoint_exists() {
    let card = read("src/app/cards/board-card-hsmeta.json");
    assert_eq!(card["type"], "card");
    assert_eq!(card["config"]["location"], "crm.record.sidebar");
    assert_eq!(card["config"]["objectTypes"], serde_json::json!(["deals"]));
    let entry = card["config"]["entrypoint"]
        .as_str()
        .unwrap()
        .trim_start_matches('/');
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../infra/hubspot-app/src")
            .join(entry)
            .exists(),
        "{entry}"
    );
}
