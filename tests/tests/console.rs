//! The admin console in a real browser (headless Chromium through
//! chromedriver) against the local stack: every step is what an administrator
//! or a sales user does on the screens, checked on the screens and, where it
//! writes, through the API or the emulators. Screenshots of each screen go to
//! `target/console-screenshots/` (the README shows them).

use reqwest::Method;
use serde_json::json;
use tests::browser::Browser;
use tests::stack::Run;

/// Signs in with the stack's dev sign-in as `role` of `account`.
async fn sign_in(browser: &Browser, run: &Run, account: &str, role: &str, user: u64) {
    browser.goto(&format!("{}/console", run.base)).await;
    browser.wait_for_text_in("h1", "ログイン").await;
    browser
        .fill("#dev-sign-in input[name=account_id]", account)
        .await;
    browser.choose("#dev-sign-in select[name=role]", role).await;
    browser
        .fill("#dev-sign-in input[name=user_id]", &user.to_string())
        .await;
    browser.click("#sign-in").await;
    browser.find("nav a").await;
}

#[tokio::test]
async fn an_administrator_connects_maps_filters_registers_and_diagnoses_on_the_screens() {
    let run = Run::start().await;
    let browser = Browser::start().await;

    // The console's address redirects to the page, which offers the dev sign-in.
    browser.goto(&format!("{}/console", run.base)).await;
    browser.wait_for_text_in("h1", "ログイン").await;
    assert_eq!(browser.url().await.path(), "/console/index.html");
    browser.screenshot("00-sign-in").await;
    sign_in(&browser, &run, "acct-a", "admin", 1).await;

    // 1. Connection: the whole OAuth flow, ending in the confirmation step.
    browser
        .wait_for_text_in("#connection-status", "未連携")
        .await;
    browser.click("#connect").await;
    browser.wait_for_text("アプリを接続").await;
    browser.click("button[name=decision][value=approve]").await;
    // board's settings screen hands the confirmation on to the console.
    browser.click("#to-console").await;
    browser.click("#confirm").await;
    browser
        .wait_for_text_in("#connection-status", "連携中")
        .await;
    assert_eq!(
        browser
            .find("#connection-status")
            .await
            .attr("data-state")
            .await
            .unwrap()
            .as_deref(),
        Some("active")
    );
    browser
        .wait_for_text_in("#connection-status", "admin@sandbox.example.jp")
        .await;
    browser
        .wait_for_text_in("#checklist", "受注ステータスのマッピング")
        .await;
    browser.screenshot("01-connection").await;

    // 2. Stage mapping: unmapped stages are flagged; fill in the suggestion for
    // the default pipeline, change one, save.
    browser.screen("#/mapping").await;
    let pipeline = "section[data-pipeline=default]";
    browser
        .wait_for_text_in(pipeline, "受注ステータスが設定されていません")
        .await;
    browser.click(&format!("{pipeline} button.secondary")).await;
    browser
        .choose(&format!("{pipeline} select[data-stage=closedwon]"), "5")
        .await;
    browser
        .click(&format!("{pipeline} button.save-mapping"))
        .await;
    let mapped = tests::eventually!(
        run.api(Method::GET, "/v1/hubspot/pipelines", "acct-a", None)
            .await
            .1,
        |p| p["items"][0]["stages"][5]["order_status"] == 5
    );
    let stages = &mapped["items"][0]["stages"];
    assert_eq!(stages[4]["id"], "contractsent");
    assert_eq!(stages[4]["order_status"], 1, "the suggestion was saved");
    assert_eq!(stages[6]["order_status"], 9);
    assert!(stages[0]["order_status"].is_null());
    browser.wait_for_text_in(pipeline, "5 受注済").await;
    browser.screenshot("02-mapping").await;

    // Filter rules: one rule, team テストチーム1; and the account label.
    browser.screen("#/rules").await;
    browser.wait_for_text("ルールはありません").await;
    browser.click("#add-rule").await;
    browser.choose(".rule select.condition-field", "team").await;
    browser
        .click(".rule input[type=checkbox][value='8000001']")
        .await;
    browser.click("#save-rules").await;
    browser.wait_for_text("保存しました").await;
    let (_, rules) = run
        .api(Method::GET, "/v1/hubspot/filter-rules", "acct-a", None)
        .await;
    assert_eq!(
        rules["rules"],
        json!([{"conditions": [{"field": "team", "values": ["8000001"]}]}])
    );
    browser.fill("#account-label", "本社営業部").await;
    browser.click("#save-label").await;
    let label = tests::eventually!(
        run.api(Method::GET, "/v1/hubspot/account-label", "acct-a", None)
            .await
            .1,
        |l| l["label"] == "本社営業部"
    );
    assert_eq!(label["label"], "本社営業部");
    browser.screenshot("03-rules").await;

    // 3. Drafts: a HubSpot deal of team 1 in a mapped stage becomes a draft;
    // one of team 2 does not.
    let company = run
        .create_company(json!({"name": "株式会社コンソール商事", "phone": "03-1111-2222"}))
        .await;
    let deal = run
        .create_deal(
            json!({"dealname": "コンソール案件", "dealstage": "contractsent", "amount": "480000",
                   "hubspot_team_id": "8000001", "hubspot_owner_id": "6000002"}),
            &[&company],
            &[],
        )
        .await;
    let other = run
        .create_deal(
            json!({"dealname": "他チーム案件", "dealstage": "contractsent", "hubspot_team_id": "8000002"}),
            &[],
            &[],
        )
        .await;
    run.wait_for_draft("acct-a", &deal, "open").await;
    browser.screen("#/drafts").await;
    browser.wait_for_text_in("#drafts", "コンソール案件").await;
    browser.fill("#draft-search", "存在しない").await;
    browser.wait_for_text_in("#drafts", "なし").await;
    browser.fill("#draft-search", "コンソール").await;
    browser.wait_for_text_in("#drafts", "コンソール案件").await;
    assert!(!browser.text("#drafts").await.contains("他チーム案件"));
    browser.screenshot("04-drafts").await;
    browser
        .click(&format!("#drafts tr[data-deal='{deal}'] a"))
        .await;
    browser
        .wait_for_text_in("#draft-name", "コンソール案件")
        .await;
    // The owner table suggests board user 2 (鈴木 花子's email); the customer
    // is created from the deal's company.
    assert_eq!(
        browser
            .find("#register-user")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("2")
    );
    browser
        .wait_for_text_in("#register-customer", "株式会社コンソール商事")
        .await;
    browser
        .set_date("#register-invoice-date", "2026-12-31")
        .await;
    browser.screenshot("04-draft-register").await;
    browser.click("#register").await;
    browser
        .wait_for_text_in("#draft-result", "boardに登録しました")
        .await;
    let registered = run.drafts("acct-a", "registered").await;
    let project = registered
        .iter()
        .find(|d| d["id"] == deal.as_str())
        .and_then(|d| d["project_id"].as_u64())
        .expect("the draft is registered with its project");
    // The state tabs: the registered draft is under 登録済み.
    browser.screen("#/drafts").await;
    browser.click("a[data-state=registered]").await;
    browser
        .wait_for_text_in("a[aria-current=page][data-state=registered]", "登録済み")
        .await;
    browser.wait_for_text_in("#drafts", "コンソール案件").await;
    let board_project = run.inspect_project(project).await;
    assert_eq!(board_project["name"], "コンソール案件");
    assert_eq!(board_project["user_id"], 2);

    // 4. History: the registration's entry, found by 案件名, with its detail.
    browser.screen("#/history").await;
    browser
        .fill("#history-filters input[name=q]", "コンソール案件")
        .await;
    browser.click("#history-search").await;
    browser.wait_for_text_in("#history", "コンソール案件").await;
    browser.wait_for_text_in("#history", "成功").await;
    browser.screenshot("05-history").await;
    browser.click("#history tbody tr a").await;
    browser.wait_for_text_in("#entry", "コンソール案件").await;
    browser.wait_for_text_in("#entry", "HubSpot → board").await;

    // 8. Diagnosis from the deal's HubSpot URL: every gate in words.
    browser.screen("#/diagnosis").await;
    browser
        .fill(
            "#diagnosis-deal",
            &format!("https://app.hubspot.com/contacts/1000001/record/0-3/{other}"),
        )
        .await;
    browser.click("#diagnose").await;
    browser.wait_for_text_in("#gates", "連携条件").await;
    let filter = browser
        .find("#gates tr[data-gate=filter_rules]")
        .await
        .attr("data-passed")
        .await
        .unwrap();
    assert_eq!(filter.as_deref(), Some("false"), "team 2 fails the rule");
    let mapping = browser
        .find("#gates tr[data-gate=status_mapping]")
        .await
        .attr("data-passed")
        .await
        .unwrap();
    assert_eq!(mapping.as_deref(), Some("true"));
    browser
        .wait_for_text_in("#diagnosis-result", "いいえ")
        .await;
    browser.screenshot("08-diagnosis").await;

    // English is one click away; the catalog's words follow.
    browser.click("#lang").await;
    browser.wait_for_text_in("nav", "Sync history").await;
    browser.click("#lang").await;
    browser.wait_for_text_in("nav", "連携履歴").await;

    browser.close().await;
}

#[tokio::test]
async fn a_sales_user_sees_drafts_and_no_settings_screens() {
    let run = Run::start().await;
    run.connect("acct-a", None).await;
    let browser = Browser::start().await;
    sign_in(&browser, &run, "acct-a", "staff", 2).await;

    let nav = browser.text("nav ul").await;
    assert!(nav.contains("下書き案件"), "{nav}");
    for absent in [
        "連携設定",
        "ステージ対応",
        "連携条件",
        "連携履歴",
        "取引の診断",
    ] {
        assert!(!nav.contains(absent), "{absent} offered to staff: {nav}");
    }
    browser
        .wait_for_text_in("#settings-absent", "設定権限を持つ利用者")
        .await;
    browser.wait_for_text_in("h1", "下書き案件").await;
    browser.screenshot("09-staff").await;

    // A settings screen typed by hand says why it is not there; the API
    // keeps refusing.
    browser.screen("#/connection").await;
    browser
        .wait_for_text_in("main", "設定権限を持つ利用者")
        .await;
    let (status, _) = run
        .api_as(
            Method::GET,
            "/v1/hubspot/connection",
            &tests::stack::jwt("acct-a", "staff", 2),
            None,
        )
        .await;
    assert_eq!(status, 403);
    browser.close().await;
}

#[tokio::test]
async fn the_console_is_static_same_origin_and_its_dev_sign_in_refuses_what_board_would_not_issue()
{
    let run = Run::start().await;
    let http = &run.http;
    let page = http
        .get(format!("{}/console/", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(page.text().await.unwrap().contains("<html lang=\"ja\">"));
    for (path, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = http
            .get(format!("{}{path}", run.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
    }
    let unknown = http
        .get(format!("{}/console/secret.txt", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let sign_in = format!("{}/console/dev/sign-in", run.base);
    for bad in [
        json!({"account_id": "acct-zzz", "role": "admin", "user_id": 1}),
        json!({"account_id": "acct-a", "role": "owner", "user_id": 1}),
        json!({"account_id": "acct-a", "role": "custom", "user_id": 1}),
        json!({"account_id": "acct-a", "role": "admin", "user_id": 0}),
        json!({"account_id": "acct-a", "role": "admin"}),
    ] {
        let r = http.post(&sign_in).json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let minted: serde_json::Value = http
        .post(&sign_in)
        .json(&json!({"account_id": "acct-b", "role": "staff", "user_id": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap();
    // Accepted for business access (acct-b is not connected: 409, not 401/403).
    let (status, body) = run
        .api_as(Method::GET, "/v1/hubspot/drafts", token, None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "not_connected");
    let (status, _) = run
        .api_as(Method::GET, "/v1/hubspot/connection", token, None)
        .await;
    assert_eq!(status, 403, "and refused settings");

    // With another JWT secret (any real deployment), no dev sign-in.
    let other = Run::start_with(&[("BOARD_JWT_SECRET", "not-the-dev-secret")]).await;
    let r = http
        .get(format!("{}/console/dev/sign-in", other.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{}/console/dev/sign-in", other.base))
        .json(&json!({"account_id": "acct-a", "role": "admin", "user_id": 1}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test]
async fn an_administrator_retries_errors_exports_csv_previews_a_mapping_and_reads_the_budget() {
    let run = Run::connected("acct-a").await;
    let linked = run.linked_deal("acct-a", "ダッシュボード").await;
    // HubSpot refuses board's long name (a portal rule): hubspot_api_error.
    let rule = |max: Option<usize>| {
        let run = &run;
        async move {
            let r = run
                .http
                .post(format!("{}/_sandbox/hubspot/_control/validation", run.base))
                .json(&json!({"objectType": "deals", "property": "dealname", "maxCharacters": max}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    rule(Some(20)).await;
    let long = format!("ダッシュボードの長い案件名{}", "あ".repeat(20));
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
    assert_eq!(refused.len(), 1);

    let browser = Browser::start().await;
    sign_in(&browser, &run, "acct-a", "admin", 1).await;

    // 5. The errors dashboard counts it by code and object.
    browser.screen("#/errors").await;
    let count = browser
        .find("#by-code tr[data-code=hubspot_api_error] td.count")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(count.trim(), "1", "the row counts the one refusal");
    browser
        .wait_for_text_in("#recent-errors", "ダッシュボード")
        .await;
    browser.screenshot("06-errors").await;
    // The period tabs are links of the route: 24 hours still holds it.
    browser.click("a[data-days='1']").await;
    browser
        .wait_for_text_in("a[aria-current=page][data-days='1']", "24時間")
        .await;
    browser
        .wait_for_text_in(
            "#by-code tr[data-code=hubspot_api_error]",
            "hubspot_api_error",
        )
        .await;
    assert!(
        browser
            .url()
            .await
            .fragment()
            .unwrap_or_default()
            .contains("days=1")
    );
    // Its CSV: the bytes the API gives for the same rows.
    let csv = run
        .http
        .get(format!("{}/v1/hubspot/history/export?format=csv", run.base))
        .bearer_auth(tests::stack::jwt("acct-a", "admin", 1))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&csv[..3], b"\xEF\xBB\xBF");
    browser.click("#errors-export").await;
    browser
        .wait_for_text_in("#errors-result", &format!("({}バイト)", csv.len()))
        .await;
    // The cause removed, one click retries every entry of the code.
    rule(None).await;
    browser
        .click("#by-code tr[data-code=hubspot_api_error] button.retry-code")
        .await;
    browser
        .wait_for_text_in("#errors-result", "1件の再実行を受け付けました")
        .await;
    let name = tests::eventually!(
        run.hubspot(
            Method::GET,
            &format!(
                "/crm/objects/2026-03/deals/{}?properties=dealname",
                linked.deal
            ),
            None
        )
        .await["properties"]["dealname"]
            .clone(),
        |n| n == long.as_str()
    );
    assert_eq!(name, long.as_str());

    // 7. Preview before saving: contract sent → 見積中(中) would change the
    // linked deal's status; nothing is saved.
    let (_, before) = run
        .api(Method::GET, "/v1/hubspot/filter-rules", "acct-a", None)
        .await;
    browser.screen("#/mapping").await;
    let pipeline = "section[data-pipeline=default]";
    browser
        .choose(&format!("{pipeline} select[data-stage=contractsent]"), "2")
        .await;
    browser
        .click(&format!("{pipeline} button.preview-mapping"))
        .await;
    browser
        .wait_for_text_in(
            &format!("{pipeline} .preview-items tr[data-deal='{}']", linked.deal),
            "受注ステータスが変わる",
        )
        .await;
    browser
        .wait_for_text_in(&format!("{pipeline} .preview-items"), "見積中(中)")
        .await;
    browser.screenshot("07-preview").await;
    let (_, after) = run
        .api(Method::GET, "/v1/hubspot/filter-rules", "acct-a", None)
        .await;
    assert_eq!(after["config_version"], before["config_version"]);

    // The rules' preview: keeping team 2 only leaves the linked deal alone.
    browser.screen("#/rules").await;
    browser.click("#add-rule").await;
    browser.choose(".rule select.condition-field", "team").await;
    browser
        .click(".rule input[type=checkbox][value='8000002']")
        .await;
    browser.click("#preview-rules").await;
    browser.wait_for_text("影響を受ける取引はありません").await;

    // 6. The API budget: the last minutes' calls of each share.
    browser.screen("#/budget").await;
    browser
        .wait_for_text_in("#budget-hubspot", "問題なし")
        .await;
    browser
        .wait_for_text_in("tr[data-share=background]", "/ 22")
        .await;
    browser.find("#budget-minutes tbody tr").await;
    browser.screenshot("07-budget").await;
    browser.close().await;
}

#[tokio::test]
async fn an_administrator_matches_existing_customers_and_approves_the_sure_ones() {
    let run = Run::connected("acct-a").await;
    let company = run
        .create_company(json!({"name": "株式会社テスト商事"}))
        .await;
    let (status, customer) = run
        .board(
            Method::POST,
            "/clients",
            "acct-a",
            Some(json!({"name": "(株)テスト商事", "name_disp": "テスト商事"})),
        )
        .await;
    assert!(status < 300, "{customer}");
    let customer = customer["id"].as_u64().unwrap();
    let browser = Browser::start().await;
    sign_in(&browser, &run, "acct-a", "admin", 1).await;
    browser.screen("#/matching").await;
    browser.wait_for_text("まだ照合していません").await;
    browser.click("#start-matching").await;
    // The screen reloads itself while the job runs.
    browser.wait_for_text_in("#matching-state", "完了").await;
    browser
        .wait_for_text_in(
            &format!("#proposals tr[data-proposal='c-{customer}']"),
            "株式会社テスト商事",
        )
        .await;
    browser
        .wait_for_text_in("#proposals", "名前が正規化後に一致")
        .await;
    browser
        .client
        .execute(
            "document.getElementById('matching-state').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("10-matching").await;
    // Existing deals: the count first (nothing written).
    browser.click("#backfill-preview").await;
    browser
        .wait_for_text_in("#backfill-state", "件数の確認: 完了")
        .await;
    browser.find("#backfill-state dd[data-count=read]").await;
    browser.click("#approve-sure").await;
    browser
        .wait_for_text_in("#matching-result", "1件を連携しました")
        .await;
    // Undone, then approved again.
    browser.click("#undo-approval").await;
    browser
        .wait_for_text_in("#matching-result", "1件の連携を取り消しました")
        .await;
    browser.click("#approve-sure").await;
    browser
        .wait_for_text_in("#matching-result", "1件を連携しました")
        .await;
    let (_, link) = run
        .api(
            Method::GET,
            &format!("/v1/hubspot/links/customer/{customer}"),
            "acct-a",
            None,
        )
        .await;
    assert_eq!(link["hubspot_id"], company.as_str());
    browser.close().await;
}
