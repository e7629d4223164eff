//! The endpoints the console's errors dashboard, API budget and preview
//! screens use (issue 19's checked contract), over HTTP against the local
//! stack and its emulators.

use reqwest::Method;
use serde_json::{Value, json};
use tests::stack::{Run, jwt};

async fn deal_name(run: &Run, id: &str) -> Value {
    run.hubspot(
        Method::GET,
        &format!("/crm/objects/2026-03/deals/{id}?properties=dealname"),
        None,
    )
    .await["properties"]["dealname"]
        .clone()
}

async fn max_deal_name(run: &Run, max: Option<usize>) {
    let rule = run
        .http
        .post(format!("{}/_sandbox/hubspot/_control/validation", run.base))
        .json(&json!({"objectType": "deals", "property": "dealname", "maxCharacters": max}))
        .send()
        .await
        .unwrap();
    assert_eq!(rule.status(), 204);
}

async fn get_text(run: &Run, path: &str, token: &str) -> reqwest::Response {
    run.http
        .get(format!("{}{path}", run.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A CSV line's cells (every cell quoted, quotes doubled).
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        assert_eq!(chars.next(), Some('"'), "every cell is quoted: {line}");
        let mut cell = String::new();
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                Some('"') => break,
                Some(c) => cell.push(c),
                None => panic!("unterminated cell: {line}"),
            }
        }
        out.push(cell);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

#[tokio::test]
async fn a_refused_board_change_is_counted_exported_and_brought_to_hubspot_by_a_bulk_retry() {
    let run = Run::connected("acct-a").await;
    let linked = run.linked_deal("acct-a", "短い名前").await;
    // The portal's administrator allows deal names of at most 20 characters;
    // board's user then gives the project a long name starting with "=".
    max_deal_name(&run, Some(20)).await;
    let long = format!("=HYPERLINK(\"http://x\") {}", "長".repeat(20));
    run.board(
        Method::PATCH,
        &format!("/projects/{}", linked.project),
        "acct-a",
        Some(json!({"name": long})),
    )
    .await;
    let refused = tests::eventually!(
        run.entries("acct-a", "code", "hubspot_api_error").await,
        |r| !r.is_empty()
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(deal_name(&run, &linked.deal).await, "短い名前");

    // The dashboard counts it by code and object type.
    let (status, summary) = run
        .api(Method::GET, "/v1/hubspot/history/summary", "acct-a", None)
        .await;
    assert_eq!(status, 200, "{summary}");
    let row = summary["by_code"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "hubspot_api_error")
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(row["count"], 1);
    assert_eq!(row["retryable"], 1);
    assert_eq!(row["object_type"], "deal");
    assert!(summary["error"].as_u64().unwrap() >= 1);
    assert!(
        summary["success"].as_u64().unwrap() >= 1,
        "the registration"
    );
    assert_eq!(summary["trend_unit"], "day", "the last 7 days by default");
    let day_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(24))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, hourly) = run
        .api(
            Method::GET,
            &format!(
                "/v1/hubspot/history/summary?from={}",
                day_ago.replace('+', "%2B")
            ),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(hourly["trend_unit"], "hour", "{hourly}");
    assert_eq!(hourly["by_code"], summary["by_code"]);
    let trend_errors: u64 = summary["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["error"].as_u64().unwrap())
        .sum();
    assert_eq!(trend_errors, summary["error"].as_u64().unwrap());
    assert_eq!(summary["complete"], true);
    // Filters apply: nothing of this code in the other direction.
    let (_, other) = run
        .api(
            Method::GET,
            "/v1/hubspot/history/summary?direction=hubspot_to_board&code=hubspot_api_error",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(other["by_code"], json!([]), "{other}");

    // The CSV export: UTF-8 with a BOM, Japanese headers, CRLF, no cell Excel would run.
    let token = jwt("acct-a", "admin", 1);
    let response = get_text(&run, "/v1/hubspot/history/export?format=csv", &token).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(response.headers()["x-export-complete"], "true");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a byte-order mark first");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(cells(lines[0])[0], "日時");
    assert!(cells(lines[0]).contains(&"案件名".to_owned()));
    let mut found = false;
    for line in &lines[1..] {
        for cell in cells(line) {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "a cell Excel would run: {cell}"
            );
            found |= cell == format!("'{long}");
        }
    }
    assert!(found, "the long name, neutralised: {text}");
    // Filters apply to the export too.
    let only_errors = get_text(
        &run,
        "/v1/hubspot/history/export?format=csv&status=error",
        &token,
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(
        only_errors.split("\r\n").filter(|l| !l.is_empty()).count(),
        2
    );
    let xlsx = get_text(&run, "/v1/hubspot/history/export?format=xlsx", &token).await;
    assert_eq!(xlsx.status(), 400);

    // Bad requests are refused before anything is queued.
    for bad in [
        json!({}),
        json!({"ids": [], "code": "hubspot_api_error"}),
        json!({"ids": []}),
        json!({"ids": ["not-an-id!"]}),
        json!({"ids": vec!["A"; 501]}),
        json!({"code": "no_such_code"}),
        json!({"code": "hubspot_api_error", "extra": 1}),
        json!({"ids": ["A"], "from": "2026-01-01T00:00:00Z"}),
        json!({"code": "hubspot_api_error", "from": "yesterday"}),
    ] {
        let (status, body) = run
            .api(
                Method::POST,
                "/v1/hubspot/history/retry",
                "acct-a",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    // Another account's entry is not retried through this one (acct-b
    // connected to a portal of its own: its lookup of acct-a's id finds nothing).
    let (status, body) = run
        .api(
            Method::POST,
            "/v1/hubspot/history/retry",
            "acct-b",
            Some(json!({"ids": [refused[0]["id"]]})),
        )
        .await;
    assert_eq!(status, 409, "acct-b is not connected: {body}");
    let portals: Value = run
        .http
        .post(format!("{}/_sandbox/hubspot/_control/portals", run.base))
        .json(&json!({"count": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    run.connect_to("acct-b", portals["portals"][0].as_u64().unwrap(), None)
        .await;
    let (status, body) = run
        .api(
            Method::POST,
            "/v1/hubspot/history/retry",
            "acct-b",
            Some(json!({"ids": [refused[0]["id"]]})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["queued"].as_u64(), body["skipped"].as_u64()),
        (Some(0), Some(1)),
        "{body}"
    );

    // A code's retry keeps to the period asked: none of its entries is in the next hour.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, none) = run
        .api(
            Method::POST,
            "/v1/hubspot/history/retry",
            "acct-a",
            Some(json!({"code": "hubspot_api_error", "from": later})),
        )
        .await;
    assert_eq!(status, 202, "{none}");
    assert_eq!(none["queued"], 0, "{none}");

    // The cause removed, a retry of the code brings board's value to HubSpot.
    max_deal_name(&run, None).await;
    let (status, queued) = run
        .api(
            Method::POST,
            "/v1/hubspot/history/retry",
            "acct-a",
            Some(json!({"code": "hubspot_api_error"})),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["queued"], 1);
    assert_eq!(queued["complete"], true);
    let name = tests::eventually!(deal_name(&run, &linked.deal).await, |n| n == long.as_str());
    assert_eq!(name, long.as_str());
    // Synced since: a second retry of the code has nothing to do.
    run.settle().await;
    let (_, again) = run
        .api(
            Method::POST,
            "/v1/hubspot/history/retry",
            "acct-a",
            Some(json!({"code": "hubspot_api_error"})),
        )
        .await;
    assert_eq!(again["queued"], 0, "{again}");
    // By id, a success entry is skipped.
    let successes = run.entries("acct-a", "status", "success").await;
    let (status, by_id) = run
        .api(
            Method::POST,
            "/v1/hubspot/history/retry",
            "acct-a",
            Some(json!({"ids": [successes[0]["id"], refused[0]["id"]]})),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(by_id["skipped"], 1, "{by_id}");
    assert_eq!(by_id["queued"], 1, "{by_id}");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn the_budget_view_shows_the_minutes_calls_and_429s_of_each_share() {
    let run = Run::connected("acct-a").await;
    let linked = run.linked_deal("acct-a", "予算").await;
    run.board(
        Method::PATCH,
        &format!("/projects/{}", linked.project),
        "acct-a",
        Some(json!({"name": "予算を見る"})),
    )
    .await;
    tests::eventually!(deal_name(&run, &linked.deal).await, |n| n == "予算を見る");
    // HubSpot answers 429 to the next background read.
    run.hubspot_faults(json!({"error_rates": [[429, 1.0]], "path_prefix": "/crm/objects/2026-03/deals/batch/read"}))
        .await;
    run.update_deal(&linked.deal, json!({"dealname": "HubSpotで変更"}))
        .await;
    let view = tests::eventually!(
        run.api(Method::GET, "/v1/hubspot/budget", "acct-a", None)
            .await
            .1,
        |v| v["hubspot"]["minutes"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x["rate_limited"].as_u64() > Some(0)))
    );
    run.hubspot_faults(json!({})).await;
    let hubspot = &view["hubspot"];
    assert_eq!(hubspot["portal_id"], "1000001", "{view}");
    assert_eq!(hubspot["background"]["limit"], 22);
    assert_eq!(hubspot["background"]["window_ms"], 2500);
    assert_eq!(hubspot["interactive"]["limit"], 22);
    assert_eq!(hubspot["accounts_on_portal"], 1);
    let minutes = hubspot["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 15);
    let background: u64 = minutes
        .iter()
        .map(|m| m["background"].as_u64().unwrap())
        .sum();
    assert!(background > 0, "{view}");
    let interactive: u64 = minutes
        .iter()
        .map(|m| m["interactive"].as_u64().unwrap())
        .sum();
    assert!(
        interactive > 0,
        "the settings and registration calls: {view}"
    );
    let board: u64 = view["board"]["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["background"].as_u64().unwrap())
        .sum();
    assert!(board > 0, "{view}");
    assert_eq!(view["board"]["per_second"], 3);
    assert!(hubspot["daily"] == "ok", "{view}");

    // Not connected: board's part only.
    let (status, other) = run
        .api(Method::GET, "/v1/hubspot/budget", "acct-b", None)
        .await;
    assert_eq!(status, 200);
    assert!(other["hubspot"].is_null(), "{other}");
    run.stack.shutdown().await;
}

#[tokio::test]
async fn a_preview_says_which_deals_a_change_would_treat_differently_and_writes_nothing() {
    let run = Run::connected("acct-a").await;
    // An open draft (contractsent → 1), a linked deal (contractsent), and a
    // draft withdrawn because its stage is not mapped.
    let open = run
        .create_deal(
            json!({"dealname": "下書きの取引", "dealstage": "contractsent", "hubspot_team_id": "8000001"}),
            &[],
            &[],
        )
        .await;
    run.wait_for_draft("acct-a", &open, "open").await;
    let linked = run.linked_deal("acct-a", "連携済みの取引").await;
    let withdrawn = run
        .create_deal(
            json!({"dealname": "取り下げの取引", "dealstage": "contractsent", "hubspot_team_id": "8000002"}),
            &[],
            &[],
        )
        .await;
    run.wait_for_draft("acct-a", &withdrawn, "open").await;
    run.update_deal(&withdrawn, json!({"dealstage": "appointmentscheduled"}))
        .await;
    run.wait_for_draft("acct-a", &withdrawn, "withdrawn").await;
    let (_, before) = run
        .api(Method::GET, "/v1/hubspot/filter-rules", "acct-a", None)
        .await;

    // contractsent → 2, appointmentscheduled → 3.
    let (status, preview) = run
        .api(
            Method::POST,
            "/v1/hubspot/preview",
            "acct-a",
            Some(json!({"status_mapping": {"pipeline_id": "default",
                        "stages": {"contractsent": 2, "appointmentscheduled": 3}}})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let effect = |deal: &str| {
        preview["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["deal_id"] == deal)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(effect(&open)["effect"], "status_changed", "{preview}");
    assert_eq!(effect(&open)["order_status_before"], 1);
    assert_eq!(effect(&open)["order_status_after"], 2);
    assert_eq!(effect(&linked.deal)["kind"], "linked");
    assert_eq!(effect(&linked.deal)["effect"], "status_changed");
    assert_eq!(effect(&linked.deal)["project_id"], linked.project);
    assert_eq!(effect(&withdrawn)["effect"], "newly_qualifying");
    assert_eq!(effect(&withdrawn)["order_status_after"], 3);
    assert_eq!(preview["counts"]["newly_qualifying"], 1);
    assert_eq!(preview["counts"]["status_changed"], 2);
    assert_eq!(preview["config_version"], before["config_version"]);

    // A rule keeping team 2 only: the open draft (team 1) would be withdrawn;
    // the linked deal is not gated by rules.
    let (status, preview) = run
        .api(
            Method::POST,
            "/v1/hubspot/preview",
            "acct-a",
            Some(
                json!({"filter_rules": {"rules": [{"conditions": [{"field": "team", "values": ["8000002"]}]}]}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let items = preview["items"].as_array().unwrap();
    let open_item = items
        .iter()
        .find(|i| i["deal_id"] == open.as_str())
        .unwrap();
    assert_eq!(open_item["effect"], "no_longer_qualifying");
    assert!(
        open_item["reason"]
            .as_str()
            .unwrap()
            .contains("フィルタールール"),
        "{open_item}"
    );
    assert!(items.iter().all(|i| i["deal_id"] != linked.deal.as_str()));

    // Nothing was written: the version, the rules, the mapping, the drafts.
    let (_, after) = run
        .api(Method::GET, "/v1/hubspot/filter-rules", "acct-a", None)
        .await;
    assert_eq!(after, before);
    let (_, pipelines) = run
        .api(Method::GET, "/v1/hubspot/pipelines", "acct-a", None)
        .await;
    assert_eq!(pipelines["items"][0]["stages"][4]["order_status"], 1);
    assert_eq!(run.drafts("acct-a", "open").await.len(), 1);

    // Bad input names the field; an unknown pipeline is 404.
    for (bad, field) in [
        (json!({}), "body"),
        (
            json!({"status_mapping": {"stages": {}}}),
            "status_mapping.pipeline_id",
        ),
        (
            json!({"status_mapping": {"pipeline_id": "default", "stages": {"nope": 1}}}),
            "status_mapping.stages.nope",
        ),
        (
            json!({"status_mapping": {"pipeline_id": "default", "stages": {"contractsent": 7}}}),
            "status_mapping.stages.contractsent",
        ),
        (
            json!({"filter_rules": {"rules": [{"conditions": [{"field": "team", "values": ["424242"]}]}]}}),
            "filter_rules.rules[0].conditions[0].values",
        ),
        (json!({"mapping": {}}), "body"),
    ] {
        let (status, body) = run
            .api(
                Method::POST,
                "/v1/hubspot/preview",
                "acct-a",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_eq!(body["field"], field, "{bad} → {body}");
    }
    let (status, _) = run
        .api(
            Method::POST,
            "/v1/hubspot/preview",
            "acct-a",
            Some(json!({"status_mapping": {"pipeline_id": "nope", "stages": {}}})),
        )
        .await;
    assert_eq!(status, 404);
    run.stack.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_budget_and_preview_are_for_settings_access_only() {
    let run = Run::connected("acct-a").await;
    let staff = jwt("acct-a", "staff", 2);
    for (method, path, body) in [
        (Method::GET, "/v1/hubspot/history/summary", None),
        (Method::GET, "/v1/hubspot/history/export?format=csv", None),
        (
            Method::POST,
            "/v1/hubspot/history/retry",
            Some(json!({"code": "hubspot_api_error"})),
        ),
        (Method::GET, "/v1/hubspot/budget", None),
        (
            Method::POST,
            "/v1/hubspot/preview",
            Some(json!({"filter_rules": {"rules": []}})),
        ),
    ] {
        let (status, answer) = run.api_as(method.clone(), path, &staff, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    run.stack.shutdown().await;
}
