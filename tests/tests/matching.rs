//! First-connection matching (issue 20) end to end: board customers and
//! contacts, HubSpot companies and contacts that already correspond (spelled
//! differently) and some that do not; the job runs in the worker, proposes,
//! and an approval links them without writing to either side.

use reqwest::Method;
use serde_json::{Value, json};
use tests::stack::{Run, jwt};

async fn customer(run: &Run, fields: Value) -> u64 {
    let (status, body) = run
        .board(Method::POST, "/clients", "acct-a", Some(fields))
        .await;
    assert!(status < 300, "{status} {body}");
    body["id"].as_u64().unwrap()
}

async fn contact(run: &Run, fields: Value) -> u64 {
    let (status, body) = run
        .board(Method::POST, "/contacts", "acct-a", Some(fields))
        .await;
    assert!(status < 300, "{status} {body}");
    body["id"].as_u64().unwrap()
}

async fn wait_done(run: &Run) -> Value {
    let mut state = Value::Null;
    for _ in 0..300 {
        state = run
            .api(Method::GET, "/v1/hubspot/matching", "acct-a", None)
            .await
            .1;
        if state["state"] != "running" {
            return state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("matching never finished: {state}");
}

#[tokio::test]
async fn matching_proposes_sure_ambiguous_and_unmatched_with_reasons_and_approval_links_them() {
    let run = Run::connected("acct-a").await;
    // Known pairs, spelled differently on each side.
    let test_shoji = run
        .create_company(json!({"name": "株式会社テスト商事"}))
        .await;
    let c_test = customer(
        &run,
        json!({"name": "(株)テスト商事", "name_disp": "テスト商事"}),
    )
    .await;
    let sample = run
        .create_company(json!({"name": "サンプル物産", "domain": "sample-bussan.co.jp"}))
        .await;
    let c_sample = customer(
        &run,
        json!({"name": "ｻﾝﾌﾟﾙ物産 株式会社", "name_disp": "サンプル物産", "url": "https://www.sample-bussan.co.jp/"}),
    )
    .await;
    // Two HubSpot companies of one name (branches): the phone decides.
    let _tokyo = run
        .create_company(json!({"name": "みなと工業", "phone": "03-1111-2222"}))
        .await;
    let osaka = run
        .create_company(json!({"name": "ミナト工業", "phone": "06-3333-4444"}))
        .await;
    let c_minato = customer(
        &run,
        json!({"name": "株式会社ミナト工業", "name_disp": "ミナト工業", "tel": "06-3333-4444"}),
    )
    .await;
    // Same name twice and nothing else: for a person.
    run.create_company(json!({"name": "北斗商会"})).await;
    run.create_company(json!({"name": "北斗商会 (株)"})).await;
    let c_hokuto = customer(&run, json!({"name": "北斗商会", "name_disp": "北斗商会"})).await;
    // No counterpart.
    let c_alone = customer(&run, json!({"name": "孤立株式会社", "name_disp": "孤立"})).await;
    // Contacts: by e-mail.
    let hs_contact = run
        .create_contact(json!({"lastname": "山田", "firstname": "太郎", "email": "Taro.Yamada@test-shoji.co.jp"}))
        .await;
    let p_yamada = contact(
        &run,
        json!({"client_id": c_test, "last_name": "山田", "first_name": "太郎", "email": "taro.yamada@test-shoji.co.jp"}),
    )
    .await;

    // board's and HubSpot's records before, to show nothing is written.
    let before_customer = run
        .board(Method::GET, &format!("/clients/{c_test}"), "acct-a", None)
        .await
        .1;

    let (status, started) = run
        .api(Method::POST, "/v1/hubspot/matching", "acct-a", None)
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["state"], "running");
    let state = wait_done(&run).await;
    assert_eq!(state["state"], "done", "{state}");
    assert!(
        state["read"]["board_customers"].as_u64().unwrap() >= 5,
        "{state}"
    );
    assert!(
        state["read"]["hubspot_companies"].as_u64().unwrap() >= 6,
        "{state}"
    );
    assert_eq!(state["estimated_seconds_left"], 0);

    let (status, page) = run
        .api(
            Method::GET,
            "/v1/hubspot/matching/proposals?limit=200",
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let of = |kind: &str, id: u64| {
        items
            .iter()
            .find(|p| p["board"]["kind"] == kind && p["board"]["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no proposal for {kind} {id}: {page}"))
    };
    let p = of("customer", c_test);
    assert_eq!(p["group"], "sure", "{p}");
    assert_eq!(p["candidates"][0]["hubspot_id"], test_shoji.as_str());
    assert_eq!(p["candidates"][0]["name"], "株式会社テスト商事");
    assert!(
        p["candidates"][0]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("名前が正規化後に一致")),
        "{p}"
    );
    assert_eq!(p["candidates"][0]["differs"], json!(["name"]), "{p}");
    let p = of("customer", c_sample);
    assert_eq!(p["group"], "sure", "{p}");
    assert_eq!(p["candidates"][0]["hubspot_id"], sample.as_str());
    assert!(
        p["candidates"][0]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("同じドメイン"))
    );
    let p = of("customer", c_minato);
    assert_eq!(p["group"], "sure", "{p}");
    assert_eq!(p["candidates"][0]["hubspot_id"], osaka.as_str());
    let p = of("customer", c_hokuto);
    assert_eq!(p["group"], "ambiguous", "{p}");
    assert_eq!(p["candidates"].as_array().unwrap().len(), 2);
    let p = of("customer", c_alone);
    assert_eq!(p["group"], "none", "{p}");
    let p = of("contact", p_yamada);
    assert_eq!(p["group"], "sure", "{p}");
    assert_eq!(p["candidates"][0]["hubspot_id"], hs_contact.as_str());
    // Filters.
    let (_, sure) = run
        .api(
            Method::GET,
            "/v1/hubspot/matching/proposals?group=sure&kind=customer",
            "acct-a",
            None,
        )
        .await;
    assert!(
        sure["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["group"] == "sure" && p["board"]["kind"] == "customer")
    );

    // Bad approvals are refused whole.
    for bad in [
        json!({}),
        json!({"group": "sure", "proposal_ids": ["c-1"]}),
        json!({"group": "maybe"}),
        json!({"choices": [{"proposal_id": "c-1", "hubspot_id": "x"}]}),
        json!({"proposal_ids": []}),
    ] {
        let (status, body) = run
            .api(
                Method::POST,
                "/v1/hubspot/matching/approve",
                "acct-a",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    // Staff may not.
    let (status, _) = run
        .api_as(
            Method::POST,
            "/v1/hubspot/matching/approve",
            &jwt("acct-a", "staff", 2),
            Some(json!({"group": "sure"})),
        )
        .await;
    assert_eq!(status, 403);

    // Approving every sure match links them; twice changes nothing more.
    let (status, approved) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/approve",
            "acct-a",
            Some(json!({"group": "sure"})),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["linked"], 4, "{approved}");
    let batch = approved["batch"].clone();
    assert!(batch.is_string(), "{approved}");
    let (_, again) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/approve",
            "acct-a",
            Some(json!({"group": "sure"})),
        )
        .await;
    assert_eq!(again["linked"], 0, "{again}");
    assert_eq!(again["already"], 4, "{again}");
    assert!(again["batch"].is_null(), "{again}");
    // The approval undone: its links are gone; approving again brings them back.
    let (status, undone) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/undo",
            "acct-a",
            Some(json!({"batch": batch})),
        )
        .await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["removed"], 4, "{undone}");
    let (status, _) = run
        .api(
            Method::GET,
            &format!("/v1/hubspot/links/customer/{c_test}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 404, "unlinked");
    let (status, _) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/undo",
            "acct-a",
            Some(json!({"batch": "nosuchbatch"})),
        )
        .await;
    assert_eq!(status, 409);
    let (_, relinked) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/approve",
            "acct-a",
            Some(json!({"group": "sure"})),
        )
        .await;
    assert_eq!(relinked["linked"], 4, "{relinked}");
    let (status, link) = run
        .api(
            Method::GET,
            &format!("/v1/hubspot/links/customer/{c_test}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["hubspot_id"], test_shoji.as_str());
    let (_, link) = run
        .api(
            Method::GET,
            &format!("/v1/hubspot/links/contact/{p_yamada}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(link["hubspot_id"], hs_contact.as_str());
    // A person picks among the ambiguous: a candidate of the proposal only.
    let hokuto = of("customer", c_hokuto);
    let pick = hokuto["candidates"][1]["hubspot_id"].clone();
    let (_, wrong) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/approve",
            "acct-a",
            Some(json!({"choices": [{"proposal_id": hokuto["id"], "hubspot_id": sample}]})),
        )
        .await;
    assert_eq!(wrong["refused"], 1, "{wrong}");
    let (_, chosen) = run
        .api(
            Method::POST,
            "/v1/hubspot/matching/approve",
            "acct-a",
            Some(json!({"choices": [{"proposal_id": hokuto["id"], "hubspot_id": pick}]})),
        )
        .await;
    assert_eq!(chosen["linked"], 1, "{chosen}");
    let (_, link) = run
        .api(
            Method::GET,
            &format!("/v1/hubspot/links/customer/{c_hokuto}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(link["hubspot_id"], pick);

    // Nothing was written to board.
    let after_customer = run
        .board(Method::GET, &format!("/clients/{c_test}"), "acct-a", None)
        .await
        .1;
    assert_eq!(after_customer, before_customer);

    // A second run leaves out what is linked now.
    run.api(Method::POST, "/v1/hubspot/matching", "acct-a", None)
        .await;
    wait_done(&run).await;
    let (_, page) = run
        .api(
            Method::GET,
            "/v1/hubspot/matching/proposals?kind=customer&limit=200",
            "acct-a",
            None,
        )
        .await;
    let ids: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["board"]["id"].as_u64().unwrap())
        .collect();
    assert!(!ids.contains(&c_test) && !ids.contains(&c_hokuto), "{page}");
    assert!(ids.contains(&c_alone));
    run.stack.shutdown().await;
}

#[tokio::test]
async fn existing_deals_are_counted_first_then_the_qualifying_ones_become_drafts() {
    let run = Run::start().await;
    // Deals made before the connection: no webhook reaches the service for them.
    let mut qualifying = Vec::new();
    for i in 0..3 {
        qualifying.push(
            run.create_deal(
                json!({"dealname": format!("既存の取引{i}"), "dealstage": "contractsent"}),
                &[],
                &[],
            )
            .await,
        );
    }
    let unmapped = run
        .create_deal(
            json!({"dealname": "未設定ステージの取引", "dealstage": "appointmentscheduled"}),
            &[],
            &[],
        )
        .await;
    run.connect("acct-a", None).await;
    run.settle().await;
    assert!(run.drafts("acct-a", "open").await.is_empty(), "nothing yet");

    let wait = |path: &'static str| {
        let run = &run;
        async move {
            for _ in 0..300 {
                let (_, state) = run.api(Method::GET, path, "acct-a", None).await;
                if state["state"] != "running" {
                    return state;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("{path} never finished");
        }
    };
    // The count preview writes nothing.
    let (status, started) = run
        .api(
            Method::POST,
            "/v1/hubspot/backfill",
            "acct-a",
            Some(json!({"mode": "preview"})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let preview = wait("/v1/hubspot/backfill").await;
    assert_eq!(preview["state"], "done", "{preview}");
    assert_eq!(preview["counts"]["qualifying"], 3, "{preview}");
    assert_eq!(preview["counts"]["not_qualifying"], 1, "{preview}");
    assert!(run.drafts("acct-a", "open").await.is_empty());
    // Only deals modified since a time to come: none.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    run.api(
        Method::POST,
        "/v1/hubspot/backfill",
        "acct-a",
        Some(json!({"mode": "preview", "modified_since": later})),
    )
    .await;
    let none = wait("/v1/hubspot/backfill").await;
    assert_eq!(none["counts"]["qualifying"], 0, "{none}");
    assert_eq!(none["counts"]["older"], 4, "{none}");
    for bad in [
        json!({"mode": "later"}),
        json!({"mode": "run", "modified_since": "yesterday"}),
        json!({}),
    ] {
        let (status, body) = run
            .api(
                Method::POST,
                "/v1/hubspot/backfill",
                "acct-a",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
    }

    // The run: the qualifying deals become drafts, the other does not.
    let (status, _) = run
        .api(
            Method::POST,
            "/v1/hubspot/backfill",
            "acct-a",
            Some(json!({"mode": "run"})),
        )
        .await;
    assert_eq!(status, 202);
    let done = wait("/v1/hubspot/backfill").await;
    assert_eq!(done["state"], "done", "{done}");
    for deal in &qualifying {
        run.wait_for_draft("acct-a", deal, "open").await;
    }
    let open = run.drafts("acct-a", "open").await;
    assert_eq!(open.len(), 3, "{open:?}");
    assert!(open.iter().all(|d| d["id"] != unmapped.as_str()));
    run.stack.shutdown().await;
}
