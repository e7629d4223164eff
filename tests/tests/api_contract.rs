//! The config and business API against its own OpenAPI document: schemathesis
//! drives every operation (a schema-driven run by an outside tool), and the
//! tenant matrix calls every route of the document with one account's token
//! against another account's ids. Both read the route list from
//! `GET /openapi.json`, so a new route is covered the day it is added.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use tests::stack::{Run, jwt};

/// Two accounts on one HubSpot portal (the harder case: HubSpot's data is
/// shared, board's is not), each with a draft, a registered project (links
/// for the project, its customer and contact) and history.
struct Tenant {
    account: &'static str,
    open_draft: String,
    project: u64,
    customer: u64,
    contact: u64,
    history_id: String,
    label: &'static str,
}

async fn deal(run: &Run, name: &str, team: &str) -> String {
    let company = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/companies",
            Some(json!({"properties": {"name": format!("{name}株式会社")}})),
        )
        .await;
    let contact = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/contacts",
            Some(json!({"properties": {"lastname": name, "firstname": "太郎",
                                       "email": format!("{}@example.jp", name.to_lowercase())}})),
        )
        .await;
    let deal = run
        .hubspot(
            reqwest::Method::POST,
            "/crm/objects/2026-03/deals",
            Some(json!({
                "properties": {"dealname": name, "pipeline": "default", "dealstage": "contractsent",
                               "amount": "100000", "hubspot_team_id": team},
                "associations": [
                    {"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]},
                    {"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]
            })),
        )
        .await;
    deal["id"].as_str().unwrap().to_owned()
}

async fn seed(
    run: &Run,
    account: &'static str,
    user: u64,
    team: &str,
    label: &'static str,
) -> Tenant {
    run.connect(account, Some(team)).await;
    let (status, _) = run
        .api(
            reqwest::Method::PUT,
            "/v1/hubspot/account-label",
            account,
            Some(json!({"label": label})),
        )
        .await;
    assert_eq!(status, 200);
    let registered = deal(run, &format!("Registered{account}"), team).await;
    run.wait_for_draft(account, &registered, "open").await;
    let project = run.register_draft_as(account, user, &registered).await;
    let open_draft = deal(run, &format!("Open{account}"), team).await;
    run.wait_for_draft(account, &open_draft, "open").await;
    let (_, project_link) = run
        .api(
            reqwest::Method::GET,
            &format!("/v1/hubspot/links/project/{project}"),
            account,
            None,
        )
        .await;
    assert_eq!(project_link["state"], "enabled", "{project_link}");
    let (_, board_project) = run
        .board(
            reqwest::Method::GET,
            &format!("/projects/{project}"),
            account,
            None,
        )
        .await;
    let customer = board_project["client_id"]
        .as_u64()
        .or_else(|| board_project["client"]["id"].as_u64())
        .unwrap_or_else(|| panic!("the project's customer: {board_project}"));
    let contact = board_project["contact_id"]
        .as_u64()
        .or_else(|| board_project["contact"]["id"].as_u64())
        .unwrap_or_else(|| panic!("the project's contact: {board_project}"));
    let history = run.history(account).await;
    let history_id = history
        .first()
        .and_then(|e| e["id"].as_str())
        .unwrap_or_else(|| panic!("{account} has history"))
        .to_owned();
    Tenant {
        account,
        open_draft,
        project,
        customer,
        contact,
        history_id,
        label,
    }
}

/// What `GET /openapi.json` lists: (method, path template, operation id).
async fn operations(run: &Run) -> Vec<(String, String, String)> {
    let document: Value = run
        .http
        .get(format!("{}/openapi.json", run.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((
                method.to_uppercase(),
                path.clone(),
                operation["operationId"].as_str().unwrap().to_owned(),
            ));
        }
    }
    // Disconnecting ends the caller's own connection: last.
    operations.sort_by_key(|(method, _, _)| method == "DELETE");
    operations
}

/// A well-formed body for each operation that reads one, so a refusal is about
/// the account, not the body. A new operation with a body must be added here
/// (the test fails until it is).
fn sample_body(operation: &str) -> Option<Value> {
    match operation {
        "Confirm" => Some(json!({"confirmation": "x"})),
        "SetStatusMapping" => Some(json!({"stages": {"contractsent": 1}})),
        "SetFilterRules" => Some(json!({"rules": []})),
        "SetAccountLabel" => Some(json!({"label": "攻撃者"})),
        "SetOwnerMapping" => Some(json!({"reset": ["6000002"]})),
        "SetOptions" => Some(json!({"two_way_customer_names": true})),
        "RegisterDraft" => Some(
            json!({"client_id": null, "user_id": 1, "invoice_timing_kbn": 1, "invoice_date": "2026-12-31"}),
        ),
        "SetLink" => Some(json!({"sync_enabled": false})),
        "BulkRetry" => Some(json!({"code": "hubspot_api_error"})),
        "MatchingApprove" => Some(json!({"group": "sure"})),
        "BackfillStart" => Some(json!({"mode": "preview"})),
        "MatchingUndo" => Some(json!({"batch": "0123456789ab"})),
        "Preview" => Some(
            json!({"status_mapping": {"pipeline_id": "default", "stages": {"closedwon": 5}},
                   "filter_rules": {"rules": []}}),
        ),
        _ => None,
    }
}

fn reads_body(method: &str) -> bool {
    method == "PUT" || method == "POST"
}

/// The path with `victim`'s ids, once per kind of record it can name.
fn victim_paths(template: &str, victim: &Tenant) -> Vec<String> {
    let id = if template.starts_with("/v1/hubspot/history/") {
        victim.history_id.clone()
    } else {
        victim.open_draft.clone()
    };
    let base = template
        .replace("{id}", &id)
        .replace("{deal_id}", &victim.open_draft)
        .replace("{pipeline_id}", "default");
    if base.contains("{kind}") {
        [
            ("project", victim.project),
            ("customer", victim.customer),
            ("contact", victim.contact),
        ]
        .iter()
        .map(|(kind, id)| {
            base.replace("{kind}", kind)
                .replace("{board_id}", &id.to_string())
        })
        .collect()
    } else {
        vec![base]
    }
}

/// The same path naming records nobody has (what a stranger's id must look like).
fn unknown_path(template: &str) -> String {
    template
        .replace("{id}", "9999999901")
        .replace("{deal_id}", "9999999901")
        .replace("{pipeline_id}", "default")
        .replace("{kind}", "project")
        .replace("{board_id}", "99999901")
}

/// Everything of `tenant`'s that its own admin sees: compared before and after
/// the other account's calls.
async fn snapshot(run: &Run, tenant: &Tenant) -> BTreeMap<String, Value> {
    let mut paths = vec![
        "/v1/hubspot/account-label".to_owned(),
        "/v1/hubspot/filter-rules".to_owned(),
        "/v1/hubspot/options".to_owned(),
        "/v1/hubspot/owner-mapping".to_owned(),
        "/v1/hubspot/drafts?state=open".to_owned(),
        "/v1/hubspot/drafts?state=registered".to_owned(),
        "/v1/hubspot/drafts?state=discarded".to_owned(),
        format!("/v1/hubspot/drafts/{}", tenant.open_draft),
        format!("/v1/hubspot/links/project/{}", tenant.project),
        format!("/v1/hubspot/links/customer/{}", tenant.customer),
        format!("/v1/hubspot/links/contact/{}", tenant.contact),
        format!("/v1/hubspot/history/{}", tenant.history_id),
    ];
    paths.push("/v1/hubspot/history?limit=200".to_owned());
    let mut state = BTreeMap::new();
    for path in paths {
        let (status, mut body) = run
            .api(reqwest::Method::GET, &path, tenant.account, None)
            .await;
        assert_eq!(status, 200, "{} {path}: {body}", tenant.account);
        // Times a read refreshes are not the tenant's data.
        if let Some(items) = body["items"].as_array_mut() {
            for item in items {
                item.as_object_mut().unwrap().remove("suggested_user_id");
            }
        }
        state.insert(path, body);
    }
    state
}

#[tokio::test]
async fn no_route_reads_writes_or_reveals_another_accounts_records() {
    let run = Run::start().await;
    // Isolation, not HubSpot's rate limit, is under test here: the matrix
    // makes a few hundred calls on one portal within seconds, and both
    // accounts' interactive reads would otherwise answer 503 part-way.
    run.http
        .post(format!("{}/_sandbox/hubspot/_control/settings", run.base))
        .json(&json!({"limit_per_ten_seconds": 100_000}))
        .send()
        .await
        .unwrap();
    let a = seed(&run, "acct-a", 1, "8000001", "エー社ラベル").await;
    let b = seed(&run, "acct-b", 11, "8000002", "ビー社ラベル").await;
    run.settle().await;
    let operations = operations(&run).await;
    assert!(operations.len() >= 29, "{operations:?}");

    for (attacker, victim) in [(&b, &a), (&a, &b)] {
        // Let each account's own background work (a reconnect's catch-up) end.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let before = snapshot(&run, victim).await;
        let token = jwt(attacker.account, "admin", 1);
        // board-side facts of the victim no answer to the attacker may carry.
        let secrets = [
            victim.label.to_owned(),
            victim.history_id.clone(),
            format!("\"project_id\":{}", victim.project),
            format!("\"board_id\":{}", victim.project),
            format!("\"board_id\":{}", victim.customer),
        ];
        for (method, template, operation) in &operations {
            let body = if reads_body(method) {
                match sample_body(operation) {
                    Some(body) => Some(body),
                    None if template.ends_with("/discard")
                        || template.ends_with("/restore")
                        || template.ends_with("/resync")
                        || template.ends_with("/retry")
                        || template.ends_with("/redraft")
                        || template.ends_with("/authorize")
                        || template.ends_with("/resync-all")
                        || template.ends_with("/matching") =>
                    {
                        None
                    }
                    None => panic!("{operation} ({method} {template}) needs a sample body here"),
                }
            } else {
                None
            };
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let (unknown_status, _) = run
                .api_as(
                    method.clone(),
                    &unknown_path(template),
                    &token,
                    body.clone(),
                )
                .await;
            for path in victim_paths(template, victim) {
                let (status, answer) = run
                    .api_as(method.clone(), &path, &token, body.clone())
                    .await;
                let text = answer.to_string();
                for secret in &secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "{} read {} data through {method} {path}: {text}",
                        attacker.account,
                        victim.account
                    );
                }
                // Pipelines and deals are the shared portal's (HubSpot's data,
                // which both accounts read); every other id is the victim's own.
                let portal_record = template.contains("{pipeline_id}")
                    || template.starts_with("/v1/hubspot/diagnosis/");
                if template.contains('{') && !portal_record {
                    // The victim's id answers exactly as an id nobody has.
                    assert_eq!(
                        status, unknown_status,
                        "{method} {path} tells {}'s ids from unknown ones: {text}",
                        victim.account
                    );
                    assert!(
                        (400..500).contains(&status),
                        "{method} {path} as {}: {status} {text}",
                        attacker.account
                    );
                }
            }
        }
        let after = snapshot(&run, victim).await;
        for (path, value) in &before {
            assert_eq!(
                value, &after[path],
                "{}'s {path} changed by {}'s calls",
                victim.account, attacker.account
            );
        }
        // The attacker's disconnect ran last; reconnect for the other direction.
        run.connect(
            attacker.account,
            Some(if attacker.account == "acct-a" {
                "8000001"
            } else {
                "8000002"
            }),
        )
        .await;
    }
    run.stack.shutdown().await;
}

fn venv_tool(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv/bin")
        .join(name)
}

/// schemathesis (pinned in requirements-dev.txt; the test command installs it)
/// against the local stack, as an administrator of a connected account with a
/// draft, a registered project and history: no 5xx, only documented statuses
/// and content types, every body as its schema says.
#[tokio::test]
async fn schemathesis_finds_nothing_against_the_local_stack() {
    let schemathesis = venv_tool("schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run scripts/dev-tools.sh (the test command does)",
        schemathesis.display()
    );
    let run = Run::start().await;
    let tenant = seed(&run, "acct-a", 1, "8000001", "エー社").await;
    run.settle().await;
    let token = jwt(tenant.account, "admin", 1);
    let output = tokio::process::Command::new(&schemathesis)
        .args([
            "run",
            &format!("{}/openapi.json", run.base),
            "--url",
            &run.base,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    run.stack.shutdown().await;
}
