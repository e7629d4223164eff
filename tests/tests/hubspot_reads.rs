//! The service's HubSpot client against the emulator, over HTTP: reads that
//! HubSpot pages or names differently from what one might guess.

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tests::stack::Run;

use board_hubspot::domain::{AccountId, HubSpotObjectType};

async fn token(run: &Run) -> String {
    let account: AccountId = "acct-a".parse().unwrap();
    board_hubspot::app::tokens::access_token(&run.stack.services, &account)
        .await
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// A deal with 25 contacts: HubSpot's association batch read pages each
/// result on its own (`results[].paging.next.after`); every page is read.
#[tokio::test]
async fn association_reads_follow_each_results_paging() {
    let run = Run::connected("acct-a").await;
    let inputs: Vec<Value> = (0..25)
        .map(|i| json!({"properties": {"lastname": format!("連絡先{i}"), "email": format!("c{i}@example.jp")}}))
        .collect();
    let contacts = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/contacts/batch/create",
            Some(json!({"inputs": inputs})),
        )
        .await;
    let associations: Vec<Value> = contacts["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"to": {"id": c["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}))
        .collect();
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "多数の連絡先"}, "associations": associations})),
        )
        .await;
    let deal: u64 = deal["id"].as_str().unwrap().parse().unwrap();
    let read = run
        .stack
        .services
        .batch
        .batch_associations(
            &token(&run).await,
            HubSpotObjectType::Deal,
            HubSpotObjectType::Contact,
            &[deal],
        )
        .await
        .unwrap();
    assert_eq!(read.value[&deal].len(), 25, "all three pages of ten");
    let rate = read
        .rate
        .expect("HubSpot's rate-limit headers, read beside the result");
    assert!(
        rate.max > 0 && rate.remaining < rate.max && rate.interval_ms == 10_000,
        "{rate:?}"
    );
}

/// Contacts keep their last change in `lastmodifieddate`; the catch-up's
/// search finds a contact changed after its watermark.
#[tokio::test]
async fn the_modified_since_search_uses_each_types_property() {
    let run = Run::connected("acct-a").await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let contact = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/contacts",
            Some(json!({"properties": {"lastname": "検索", "email": "kensaku@example.jp"}})),
        )
        .await;
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "検索株式会社"}})),
        )
        .await;
    let token = token(&run).await;
    for (kind, created) in [
        (HubSpotObjectType::Contact, contact),
        (HubSpotObjectType::Company, company),
    ] {
        let page = run
            .stack
            .services
            .search
            .modified_since(&token, kind, before, None)
            .await
            .unwrap()
            .value;
        let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
        assert!(page.ids.contains(&id), "{kind:?}: {page:?}");
        assert!(
            page.newest_ms.is_some_and(|t| t > before),
            "{kind:?}: {page:?}"
        );
    }
}

async fn batch_reads(run: &Run) -> usize {
    run.hubspot_requests()
        .await
        .iter()
        .filter(|r| r["token"] == "app" && r["path"] == "/crm/objects/2026-03/deals/batch/read")
        .count()
}

async fn paused(run: &Run) -> Value {
    let (_, status) = run
        .api(
            reqwest::Method::GET,
            "/v1/hubspot/connection",
            "acct-a",
            None,
        )
        .await;
    status["hubspot_paused"].clone()
}

/// HubSpot's daily limit: the 429 says `DAILY` and no `Retry-After`. The
/// portal's background work is held for an hour instead of retried every
/// 10 s, and the connection status says so.
#[tokio::test]
async fn a_daily_limit_holds_the_portals_background_work_and_shows_it() {
    let run = Run::start().await;
    run.connect("acct-a", Some("8000001")).await;
    run.settle().await;
    let faults = |body: Value| {
        run.http
            .post(format!("{}/_sandbox/hubspot/_control/faults", run.base))
            .json(&body)
            .send()
    };
    faults(
        json!({"error_rates": [[429, 1.0]], "path_prefix": "/crm/objects/2026-03/deals/batch/read",
                  "policy_name": "DAILY"}),
    )
    .await
    .unwrap();
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "日次上限", "dealstage": "contractsent", "hubspot_team_id": "8000001"}})),
        )
        .await;
    let held = tests::eventually!(paused(&run).await, |held| !held.is_null());
    assert_eq!(held["reason"], "daily_limit", "{held}");
    let until = time::OffsetDateTime::parse(
        held["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(until > time::OffsetDateTime::now_utc() + time::Duration::minutes(50));
    // HubSpot answers again, but the hold stands: no background read of deals.
    faults(json!({})).await.unwrap();
    let before = batch_reads(&run).await;
    run.update_deal(deal["id"].as_str().unwrap(), json!({"amount": "1"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(batch_reads(&run).await, before, "held, not retried");
    run.stack.shutdown().await;
}

/// HubSpot's rate-limit headers say the app's window for the portal is nearly
/// spent (by calls the budget did not count): background work waits for the
/// window to roll on, leaving HubSpot's last share to people.
#[tokio::test]
async fn hubspots_rate_headers_correct_the_budget() {
    let run = Run::start().await;
    run.connect("acct-a", Some("8000001")).await;
    run.settle().await;
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
        .json(&json!({"limit_per_ten_seconds": 20}))
        .send()
        .await
        .unwrap();
    // Calls the budget does not see, with the app's token, until 1 is left
    // (under 10 %: half of people's 20 % gone).
    let app = token(&run).await;
    for _ in 0..20 {
        let response = run
            .http
            .get(format!(
                "{}/_sandbox/hubspot/crm/objects/2026-03/deals?limit=1",
                run.base
            ))
            .bearer_auth(&app)
            .send()
            .await
            .unwrap();
        let left: u32 = response.headers()["x-hubspot-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if left <= 1 {
            break;
        }
    }
    run.hubspot(
        reqwest::Method::POST,
        "/crm/objects/2026-03/deals",
        Some(json!({"properties": {"dealname": "窓の残り", "dealstage": "contractsent", "hubspot_team_id": "8000001"}})),
    )
    .await;
    let held = tests::eventually!(paused(&run).await, |held| !held.is_null());
    assert_eq!(held["reason"], "rate_limit", "{held}");
    let until = time::OffsetDateTime::parse(
        held["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(until < time::OffsetDateTime::now_utc() + time::Duration::seconds(3));
    run.stack.shutdown().await;
}
