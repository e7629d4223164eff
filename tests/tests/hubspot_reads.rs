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
    let run = Run::start().await;
    run.connect("acct-a", None).await;
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
    assert_eq!(read[&deal].len(), 25, "all three pages of ten");
}

/// Contacts keep their last change in `lastmodifieddate`; the catch-up's
/// search finds a contact changed after its watermark.
#[tokio::test]
async fn the_modified_since_search_uses_each_types_property() {
    let run = Run::start().await;
    run.connect("acct-a", None).await;
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
            .unwrap();
        let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
        assert!(page.ids.contains(&id), "{kind:?}: {page:?}");
        assert!(
            page.newest_ms.is_some_and(|t| t > before),
            "{kind:?}: {page:?}"
        );
    }
}
