//! Webhook deliveries as HubSpot shapes them for our subscriptions (the generic
//! `object.*` format of `crmObjects`), signed and posted by hand to the local
//! stack: what acceptance drives, independently of the emulator's deliverer.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tests::stack::Run;

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Posts `events` to the receiver with a v3 signature, as HubSpot does.
async fn deliver(run: &Run, events: Value) -> (u16, Value) {
    let url = format!("{}/hubspot/webhooks", run.base);
    let body = events.to_string();
    let timestamp = now_ms().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"sandbox-client-secret").unwrap();
    mac.update(format!("POST{url}{body}{timestamp}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let response = run
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", signature)
        .header("X-HubSpot-Request-Timestamp", timestamp)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// From here on only this test delivers webhooks.
async fn stop_emulator_deliveries(run: &Run) {
    let status = run
        .http
        .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
        .json(&json!({"webhook_url": null}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
}

#[tokio::test]
async fn generic_events_make_drafts_and_one_bad_event_does_not_sink_the_delivery() {
    let run = Run::start().await;
    run.connect("acct-a", Some("8000001")).await;
    stop_emulator_deliveries(&run).await;
    // The catch-up a new connection asks for has run before the deal exists.
    run.settle().await;
    let a = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社エー"}})),
        )
        .await;
    let b = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社ビー"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({
                "properties": {"dealname": "汎用形式の取引", "pipeline": "default", "dealstage": "contractsent",
                               "hubspot_team_id": "8000001"},
                "associations": [{"to": {"id": a["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]
            })),
        )
        .await;
    let id: u64 = deal["id"].as_str().unwrap().parse().unwrap();
    run.settle().await;
    assert!(
        run.drafts("acct-a", "open").await.is_empty(),
        "nothing delivered yet"
    );

    // One unreadable event (no objectId), one of a type we do not sync, one valid.
    let (status, body) = deliver(
        &run,
        json!([
            {"eventId": 1, "portalId": 1000001, "subscriptionType": "object.creation", "objectTypeId": "0-3",
             "occurredAt": now_ms()},
            {"eventId": 2, "portalId": 1000001, "subscriptionType": "object.creation", "objectTypeId": "0-5",
             "objectId": 9, "occurredAt": now_ms()},
            {"eventId": 3, "portalId": 1000001, "subscriptionType": "object.creation", "objectTypeId": "0-3",
             "objectId": id, "occurredAt": now_ms(), "changeSource": "CRM_UI", "attemptNumber": 0}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 1, "unknown": 1, "malformed": 1, "stale": 0, "own_writes": 0}),
        "what became of each event"
    );
    let draft = run.wait_for_draft("acct-a", &id.to_string(), "open").await;
    assert_eq!(draft["name"], "汎用形式の取引");

    // Only unreadable events: nothing to keep, so the delivery is refused.
    let (status, body) = deliver(&run, json!([{"portalId": 1000001}])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "malformed_body");

    // The deal is registered; its primary company then changes in HubSpot, and
    // the association change names the deal only by `fromObjectId`.
    run.register_draft("acct-a", &id.to_string()).await;
    run.hubspot(
        reqwest::Method::POST,
        "/crm/associations/2026-03/deals/companies/batch/create",
        Some(
            json!({"inputs": [{"from": {"id": id.to_string()}, "to": {"id": b["id"]},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]}),
        ),
    )
    .await;
    let b_id: u64 = b["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = deliver(
        &run,
        json!([
            {"eventId": 4, "portalId": 1000001, "appId": 777, "subscriptionType": "object.associationChange",
             "occurredAt": now_ms(), "fromObjectTypeId": "0-3", "fromObjectId": id,
             "toObjectTypeId": "0-2", "toObjectId": b_id, "associationTypeId": 5,
             "associationCategory": "HUBSPOT_DEFINED", "associationType": "DEAL_TO_COMPANY",
             "associationRemoved": false, "isPrimaryAssociation": true, "changeSource": "CRM_UI"},
            {"eventId": 5, "portalId": 1000001, "appId": 777, "subscriptionType": "object.associationChange",
             "occurredAt": now_ms(), "fromObjectTypeId": "0-2", "fromObjectId": b_id,
             "toObjectTypeId": "0-3", "toObjectId": id, "associationTypeId": 6,
             "associationCategory": "HUBSPOT_DEFINED", "associationType": "COMPANY_TO_DEAL",
             "associationRemoved": false, "isPrimaryAssociation": true, "changeSource": "CRM_UI"}
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let changed = tests::eventually!(
        run.history("acct-a")
            .await
            .into_iter()
            .filter(|e| e["code"] == "association_changed")
            .collect::<Vec<_>>(),
        |found| !found.is_empty()
    );
    assert_eq!(
        changed.len(),
        1,
        "the deal's company change is recorded once: {changed:?}"
    );
}

/// v1 has no timestamp: a captured v1-only delivery could be replayed for
/// ever. Events of one older than 26 hours (HubSpot's last retry comes about
/// 24 hours after the event) are dropped and counted; v3 is judged whenever
/// present; a timestamp at i64's extreme is refused, not an overflow.
#[tokio::test]
async fn v1_only_deliveries_cannot_replay_old_events() {
    use sha2::Digest;
    let run = Run::start().await;
    let url = format!("{}/hubspot/webhooks", run.base);
    let day_ago = now_ms() - 27 * 3600 * 1000;
    let body = json!([
        {"eventId": 1, "portalId": 1000001, "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
         "objectId": 5, "propertyName": "amount", "propertyValue": "1", "occurredAt": now_ms()},
        {"eventId": 2, "portalId": 1000001, "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
         "objectId": 6, "propertyName": "amount", "propertyValue": "1", "occurredAt": day_ago}
    ])
    .to_string();
    let v1: String = sha2::Sha256::digest(format!("sandbox-client-secret{body}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = run
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature", &v1)
        .header("X-HubSpot-Signature-Version", "v1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "unknown": 0, "malformed": 0, "stale": 1, "own_writes": 0})
    );
    // With v3 beside it, v3 judges: its timestamp bounds the replay instead.
    let (status, received) = deliver(&run, serde_json::from_str(&body).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(received["accepted"], 2);
    let extreme = run
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", "AAAA")
        .header("X-HubSpot-Request-Timestamp", i64::MIN.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(extreme.status(), 401);
    run.stack.shutdown().await;
}

/// Our own deal writes come back as property changes stamped with our app
/// (`changeSource` `INTEGRATION`, `sourceId` our app id): acknowledged and not
/// queued, since the worker never applies them; a person's change of the same
/// delivery is queued, and so is our own write of a company (it tells each
/// instance to read the company's name again).
#[tokio::test]
async fn our_own_deal_writes_are_acknowledged_but_not_queued() {
    let run = Run::start().await;
    stop_emulator_deliveries(&run).await;
    let own = |event: u64, object_type: &str, object: u64| {
        json!({"eventId": event, "portalId": 1000001, "subscriptionType": "object.propertyChange",
               "objectTypeId": object_type, "objectId": object, "propertyName": "dealname",
               "propertyValue": "x", "occurredAt": now_ms(), "changeSource": "INTEGRATION", "sourceId": "777"})
    };
    let (status, received) = deliver(
        &run,
        json!([
            own(1, "0-3", 5),
            own(2, "0-3", 6),
            own(3, "0-2", 7),
            {"eventId": 4, "portalId": 1000001, "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
             "objectId": 8, "propertyName": "dealname", "propertyValue": "y", "occurredAt": now_ms(),
             "changeSource": "CRM_UI", "sourceId": "userId:5000001"}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(received["own_writes"], 2, "{received}");
    assert_eq!(
        received["accepted"], 2,
        "the company and the person's deal change"
    );
    run.stack.shutdown().await;
}
