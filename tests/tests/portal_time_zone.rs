//! Dates follow the HubSpot portal's time zone (read from HubSpot's account
//! details when the connection is made), not a fixed Asia/Tokyo: a close date
//! late in the evening in New York is that day's 受注日 in board, and board's
//! 受注日 is midnight of that day in New York on the deal.

use serde_json::json;
use tests::stack::Run;

#[tokio::test]
async fn dates_follow_the_portals_time_zone_both_ways() {
    let run = Run::start().await;
    // The portal's account settings say New York (UTC-5 in December).
    let status = run
        .http
        .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
        .json(&json!({"portal_time_zone": {"time_zone": "America/New_York", "utc_offset_ms": -18_000_000}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    run.connect("acct-a", None).await;

    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社ニューヨーク"}})),
        )
        .await;
    // 2026-12-24 23:30 in New York; already the 25th in Tokyo.
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "時差のある受注", "pipeline": "default", "dealstage": "closedwon",
                                       "closedate": "2026-12-25T04:30:00Z"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let deal = deal["id"].as_str().unwrap().to_owned();
    let draft = run.wait_for_draft("acct-a", &deal, "open").await;
    assert_eq!(draft["order_status"], 4, "{draft}");
    let project = run.register_draft("acct-a", &deal).await;
    assert_eq!(
        run.inspect_project(project).await["order_date"],
        "2026-12-24",
        "the portal's day, not Tokyo's"
    );

    // board's user moves the 受注日: the deal's close date is midnight of that day in New York.
    let (status, body) = run
        .board(
            reqwest::Method::PATCH,
            &format!("/projects/{project}"),
            "acct-a",
            Some(json!({"order_date": "2026-12-01"})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let expected = time::macros::datetime!(2026-12-01 05:00 UTC);
    let close = tests::eventually!(
        run.hubspot(
            reqwest::Method::GET,
            &format!("/crm/objects/2026-03/deals/{deal}?properties=closedate"),
            None
        )
        .await["properties"]["closedate"]
            .as_str()
            .map(str::to_owned),
        |close| close
            .as_deref()
            .and_then(parse)
            .is_some_and(|t| t == expected)
    );
    assert_eq!(
        close.as_deref().and_then(parse),
        Some(expected),
        "{close:?}"
    );
    run.stack.shutdown().await;
}

/// HubSpot's datetime: RFC 3339 or epoch milliseconds.
fn parse(value: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            value
                .parse::<i128>()
                .ok()
                .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok())
        })
}
