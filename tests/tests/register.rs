//! Registering drafts as board projects, end to end (SPEC §5, §11): board gets
//! the customer, its contacts and the project (with markers), the deal is
//! claimed for one account, double submits and crashed attempts make no
//! duplicates, and bad input creates nothing.

use serde_json::{Value, json};
use tests::stack::{Run, jwt};

async fn deal_with_company(
    run: &Run,
    name: &str,
    company: Option<&Value>,
    contacts: &[&Value],
) -> String {
    let mut associations: Vec<Value> = contacts
        .iter()
        .map(|c| json!({"to": {"id": c["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}))
        .collect();
    if let Some(company) = company {
        associations.push(json!({"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}));
    }
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": name, "pipeline": "default", "dealstage": "closedwon",
                                       "closedate": "2026-12-24T14:30:00Z", "hubspot_owner_id": "6000001"},
                        "associations": associations})),
        )
        .await;
    deal["id"].as_str().unwrap().to_owned()
}

async fn company(run: &Run) -> Value {
    run.hubspot(
        reqwest::Method::POST,
        "/crm/objects/2026-03/companies",
        Some(json!({"properties": {"name": "株式会社サンプル", "phone": "+81 3 1234 5678", "zip": "〒100-0001",
                                   "state": "東京", "city": "千代田区", "address": "千代田1-1"}})),
    )
    .await
}

async fn contact(run: &Run, last: &str, email: &str) -> Value {
    run.hubspot(
        reqwest::Method::POST,
        "/crm/objects/2026-03/contacts",
        Some(json!({"properties": {"lastname": last, "firstname": "花子", "email": email}})),
    )
    .await
}

fn registration() -> Value {
    json!({"client_id": null, "contact_id": null, "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})
}

async fn inspect(run: &Run, kind: &str, id: u64) -> Value {
    run.http
        .get(format!(
            "{}/_sandbox/board/_inspect/v1/{kind}/{id}",
            run.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_draft_becomes_one_project_with_its_customer_and_contact() {
    let run = Run::connected("acct-a").await;
    run.connect("acct-b", None).await;
    let company = company(&run).await;
    let yamada = contact(&run, "山田", "yamada@example.jp").await;
    let id = deal_with_company(&run, "基幹システム刷新", Some(&company), &[&yamada]).await;
    run.wait_for_draft("acct-a", &id, "open").await;
    run.wait_for_draft("acct-b", &id, "open").await;

    let path = format!("/v1/hubspot/drafts/{id}/register");
    // Bad input creates nothing.
    let (status, problem) = run
        .api(
            reqwest::Method::POST,
            &path,
            "acct-a",
            Some(json!({"client_id": null, "user_id": 1, "invoice_timing_kbn": 1})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("invoice_date"))
    );
    let (status, problem) = run
        .api(reqwest::Method::POST, &path, "acct-a", Some(json!({"client_id": null, "user_id": 77, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})))
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("user_id")));
    let (_, clients) = run
        .board(reqwest::Method::GET, "/clients", "acct-a", None)
        .await;
    assert!(
        clients.as_array().unwrap().is_empty(),
        "nothing created by refused registrations"
    );
    // Staff register only as their own person in charge.
    let (status, _) = run
        .api_as(
            reqwest::Method::POST,
            &path,
            &jwt("acct-a", "staff", 2),
            Some(registration()),
        )
        .await;
    assert_eq!(status, 403);

    // A double submit: both get the same project.
    let (first, second) = tokio::join!(
        run.api(reqwest::Method::POST, &path, "acct-a", Some(registration())),
        run.api(reqwest::Method::POST, &path, "acct-a", Some(registration())),
    );
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    let project_id = first.1["project_id"].as_u64().unwrap();
    assert_eq!(second.1["project_id"].as_u64(), Some(project_id));
    let (status, again) = run
        .api(reqwest::Method::POST, &path, "acct-a", Some(registration()))
        .await;
    assert_eq!(
        (status, again["project_id"].as_u64()),
        (200, Some(project_id)),
        "idempotent"
    );

    let project = inspect(&run, "projects", project_id).await;
    assert_eq!(project["name"], "基幹システム刷新");
    assert_eq!(project["order_status"], 4);
    assert_eq!(
        project["order_date"], "2026-12-24",
        "23:30 JST stays on the 24th"
    );
    assert_eq!(project["management_no"], format!("hubspot:deal:{id}"));
    assert_eq!(project["user_id"], 1);
    assert_eq!(project["client"]["name"], "株式会社サンプル");
    assert_eq!(project["client"]["name_disp"], "サンプル");
    assert_eq!(project["client"]["title"], "御中");
    assert_eq!(project["client"]["tel"], "03-1234-5678");
    assert_eq!(project["client"]["zip"], "100-0001");
    assert_eq!(project["client"]["pref"], "東京都");
    assert_eq!(project["client"]["address1"], "千代田区千代田1-1");
    assert_eq!(project["contact"]["last_name"], "山田");
    assert_eq!(project["contact"]["honorific_title"], "様");
    let (_, projects) = run
        .board(
            reqwest::Method::GET,
            &format!("/projects?management_no_eq=hubspot:deal:{id}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(
        projects.as_array().unwrap().len(),
        1,
        "one project for two submits"
    );

    let registered = run.drafts("acct-a", "registered").await;
    assert_eq!(registered[0]["project_id"], project_id);
    let withdrawn = run.wait_for_draft("acct-b", &id, "withdrawn").await;
    assert_eq!(withdrawn["reason"], "他のboardアカウント(acct-a)と連携済み");
    let (status, body) = run
        .api(reqwest::Method::POST, &path, "acct-b", Some(registration()))
        .await;
    assert_eq!(status, 409, "{body}");
    let entry = run
        .history("acct-a")
        .await
        .into_iter()
        .find(|e| e["action"] == "project_registered")
        .expect("recorded");
    assert_eq!(entry["board_id"], project_id);

    // A later deal of the same company reuses the linked customer.
    let second_deal = deal_with_company(&run, "追加開発", Some(&company), &[&yamada]).await;
    run.wait_for_draft("acct-a", &second_deal, "open").await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{second_deal}/register"),
            "acct-a",
            Some(registration()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let other = inspect(&run, "projects", body["project_id"].as_u64().unwrap()).await;
    assert_eq!(other["client_id"], project["client_id"]);
    assert_eq!(other["contact_id"], project["contact_id"]);
    let (_, clients) = run
        .board(reqwest::Method::GET, "/clients", "acct-a", None)
        .await;
    assert_eq!(clients.as_array().unwrap().len(), 1);
    run.stack.shutdown().await;
}

#[tokio::test]
async fn choices_markers_and_refusals() {
    let run = Run::connected("acct-a").await;

    // Two companies, none primary: the user must choose.
    let a = company(&run).await;
    let b = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "有限会社ビー"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "二社案件", "dealstage": "contractsent"},
                        "associations": [
                            {"to": {"id": a["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]},
                            {"to": {"id": b["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    // A look-alike customer already in board is suggested (株式会社 vs ㈱).
    let (_, lookalike) = run
        .board(
            reqwest::Method::POST,
            "/clients",
            "acct-a",
            Some(json!({"name": "サンプル㈱", "name_disp": "サンプル", "tel": "03-1234-5678"})),
        )
        .await;
    let (_, detail) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/drafts/{id}"),
            "acct-a",
            None,
        )
        .await;
    let suggestions = detail["customer_suggestions"].as_array().unwrap();
    assert!(
        suggestions
            .iter()
            .any(|s| s["client_id"] == lookalike["id"] && s["reason"] == "same_name"),
        "{suggestions:?}"
    );
    assert!(
        suggestions
            .iter()
            .any(|s| s["reason"] == "create_from_company" && s["company_id"] == b["id"])
    );
    let path = format!("/v1/hubspot/drafts/{id}/register");
    let (status, problem) = run
        .api(reqwest::Method::POST, &path, "acct-a", Some(registration()))
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("company_id")),
        "no silent pick"
    );
    let mut choose_b = registration();
    choose_b["company_id"] = b["id"].clone();
    let (status, body) = run
        .api(reqwest::Method::POST, &path, "acct-a", Some(choose_b))
        .await;
    assert_eq!(status, 200, "{body}");
    let project = inspect(&run, "projects", body["project_id"].as_u64().unwrap()).await;
    assert_eq!(project["client"]["name"], "有限会社ビー");
    assert_eq!(project["client"]["name_disp"], "ビー");

    // No company: an individual customer from the contact (様).
    let sato = contact(&run, "佐藤", "sato.k@example.jp").await;
    let solo = deal_with_company(&run, "個人案件", None, &[&sato]).await;
    run.wait_for_draft("acct-a", &solo, "open").await;
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{solo}/register"),
            "acct-a",
            Some(registration()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let project = inspect(&run, "projects", body["project_id"].as_u64().unwrap()).await;
    assert_eq!(project["client"]["name"], "佐藤 花子");
    assert_eq!(project["client"]["title"], "様");

    // A crash after board created the project but before we recorded it: the
    // retry finds the project by its marker and adopts it.
    let crashed = deal_with_company(&run, "再実行案件", Some(&a), &[]).await;
    run.wait_for_draft("acct-a", &crashed, "open").await;
    let (_, client) = run
        .board(
            reqwest::Method::POST,
            "/clients",
            "acct-a",
            Some(json!({"name": "既存顧客", "name_disp": "既存顧客"})),
        )
        .await;
    let (status, orphan) = run
        .board(
            reqwest::Method::POST,
            "/projects",
            "acct-a",
            Some(json!({"name": "再実行案件", "client_id": client["id"], "user_id": 1, "order_status": 4, "invoice_timing_kbn": 1,
                        "invoice_date": "2026-12-31", "management_no": format!("hubspot:deal:{crashed}")})),
        )
        .await;
    assert_eq!(status, 201, "{orphan}");
    let mut existing_client = registration();
    existing_client["client_id"] = client["id"].clone();
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{crashed}/register"),
            "acct-a",
            Some(existing_client),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["project_id"], orphan["id"], "adopted, not duplicated");

    // board's own validation errors come back as 400 with board's messages (a name board finds too long).
    let long = deal_with_company(&run, &"長".repeat(300), Some(&a), &[]).await;
    run.wait_for_draft("acct-a", &long, "open").await;
    let (status, problem) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{long}/register"),
            "acct-a",
            Some(registration()),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "board_api_error");
    assert!(
        problem["errors"]["name"].is_array(),
        "board's field errors: {problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("boardのAPIからエラーが返ってきました。")
    );

    // A deal that stopped qualifying is refused with the reason.
    let late = deal_with_company(&run, "遅い案件", Some(&a), &[]).await;
    run.wait_for_draft("acct-a", &late, "open").await;
    run.update_deal(&late, json!({"dealstage": "appointmentscheduled"}))
        .await;
    let (status, problem) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{late}/register"),
            "acct-a",
            Some(registration()),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "draft_not_qualifying");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Appointment Scheduled")
    );
    run.stack.shutdown().await;
}

/// Claim before create: a registration that fails in board gives its claim
/// back (no other account is kept from the deal), and one that succeeds holds it.
#[tokio::test]
async fn a_registration_claims_the_deal_before_creating_and_gives_the_claim_back_on_failure() {
    let run = Run::connected("acct-a").await;
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": "株式会社請求"}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({"properties": {"dealname": "先に確保", "pipeline": "default", "dealstage": "contractsent"},
                        "associations": [{"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]})),
        )
        .await;
    let id = deal["id"].as_str().unwrap().to_owned();
    run.wait_for_draft("acct-a", &id, "open").await;
    let board_faults = |rate: f64| {
        run.http
            .post(format!("{}/_sandbox/board/_control/settings", run.base))
            .json(&json!({"fault_rate": rate}))
            .send()
    };
    board_faults(1.0).await.unwrap();
    let (status, body) = run
        .api(
            reqwest::Method::POST,
            &format!("/v1/hubspot/drafts/{id}/register"),
            "acct-a",
            Some(json!({"client_id": null, "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"})),
        )
        .await;
    assert!(status >= 500, "{status} {body}");
    let portal = board_hubspot::domain::PortalId::new(1_000_001).unwrap();
    let deal_id: u64 = id.parse().unwrap();
    let links = &run.stack.services.links;
    assert_eq!(links.deal_claimed_by(portal, deal_id).await.unwrap(), None);

    board_faults(0.0).await.unwrap();

    // While board is slow creating the project, another account tries to link
    // the deal: refused, since the registration claimed it before creating.
    run.http
        .post(format!("{}/_sandbox/board/_control/settings", run.base))
        .json(&json!({"latency_ms": 300}))
        .send()
        .await
        .unwrap();
    let registering = {
        let http = run.http.clone();
        let url = format!("{}/v1/hubspot/drafts/{id}/register", run.base);
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(jwt("acct-a", "admin", 1))
                .json(&json!({"client_id": null, "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"}))
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let rival =
        board_hubspot::domain::Link::deal("acct-b".parse().unwrap(), portal, deal_id, 999_999);
    let raced = links.claim_deal(&rival).await;
    assert!(
        matches!(raced, Err(board_hubspot::ports::ClaimError::ClaimedBy(ref a)) if a.as_str() == "acct-a"),
        "{raced:?}"
    );
    let response = registering.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        links.deal_claimed_by(portal, deal_id).await.unwrap(),
        Some("acct-a".parse().unwrap())
    );
    run.stack.shutdown().await;
}
