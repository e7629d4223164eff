//! What board's own screens and platform do, which no public API offers: the
//! 外部サービス連携 settings screen where the OAuth flow returns, sending a
//! document, an inspect view without auth or limits, and bulk/test controls.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::BoardSandbox;
use crate::api::{event, publish, publish_to, validate, write, write_record};
use crate::model::{Account, Resource, User, today_jst};

pub fn seed_account(account: &str) -> Account {
    let users = match account {
        "acct-a" => vec![
            User {
                id: 1,
                name: "佐藤 太郎".into(),
                email: "sato@sandbox.example.jp".into(),
            },
            User {
                id: 2,
                name: "鈴木 花子".into(),
                email: "suzuki@sandbox.example.jp".into(),
            },
            User {
                id: 3,
                name: "田中 一郎".into(),
                email: "tanaka@sandbox.example.jp".into(),
            },
        ],
        _ => vec![
            User {
                id: 11,
                name: "佐藤 太郎".into(),
                email: "sato@sandbox.example.jp".into(),
            },
            User {
                id: 12,
                name: "田中 一郎".into(),
                email: "tanaka@sandbox.example.jp".into(),
            },
        ],
    };
    Account {
        users,
        ..Account::default()
    }
}

/// board's own wording for the outcome codes its screen receives.
fn outcome_message(code: &str) -> &'static str {
    match code {
        "oauth_state_invalid" => {
            "連携リクエストが無効か、有効期限が切れています。もう一度「HubSpotと連携」からやり直してください。"
        }
        "oauth_denied" => "HubSpotでアプリの接続が許可されませんでした。",
        "oauth_exchange_failed" => {
            "HubSpotから認証情報を取得できませんでした。時間をおいて再度お試しください。"
        }
        "oauth_scope_missing" => {
            "HubSpotで必要な権限が許可されませんでした。HubSpotのスーパー管理者で再度接続してください。"
        }
        "portal_conflict" => {
            "このboardアカウントは別のHubSpotアカウントと連携済みです。連携を解除してから接続してください。"
        }
        "confirmation_invalid" => {
            "連携の確認が無効か、有効期限が切れています。もう一度「HubSpotと連携」からやり直してください。"
        }
        _ => "HubSpot連携でエラーが発生しました。",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>board — 外部サービス連携</title></head>
<body><h1>外部サービス連携</h1>{body}</body></html>"#
    ))
}

/// The admin console's address for the query `query` (already encoded), when
/// the emulator knows the service: board's settings screen hands the OAuth
/// flow's outcome on to it, as board's own page does in production.
fn console_link(sandbox: &BoardSandbox, query: &str, label: &str) -> String {
    let service = sandbox
        .inner
        .config
        .lock()
        .expect("config")
        .service_url
        .clone();
    match service {
        Some(service) => format!(
            r#"<p><a id="to-console" href="{}/console/index.html#/connection?{}">{label}</a></p>"#,
            escape(&service),
            escape(query)
        ),
        None => String::new(),
    }
}

pub async fn settings_screen(
    State(sandbox): State<BoardSandbox>,
    Query(params): Query<HashMap<String, String>>,
) -> Html<String> {
    let account = escape(
        params
            .get("account_id")
            .map(String::as_str)
            .unwrap_or("acct-a"),
    );
    let body = match params.get("hubspot").map(String::as_str) {
        Some("confirm") => {
            let confirmation = escape(params.get("confirmation").map(String::as_str).unwrap_or(""));
            format!(
                r#"<p id="outcome" data-outcome="confirm">HubSpotでの接続が完了しました。連携を有効にするには確定してください。</p>
<form method="post" action="integrations/confirm">
<input type="hidden" name="confirmation" value="{confirmation}">
<input type="hidden" name="account_id" value="{account}">
<button type="submit">連携を確定</button></form>{}"#,
                console_link(
                    &sandbox,
                    &format!(
                        "confirmation={}",
                        url::form_urlencoded::byte_serialize(
                            params
                                .get("confirmation")
                                .map(String::as_str)
                                .unwrap_or("")
                                .as_bytes()
                        )
                        .collect::<String>()
                    ),
                    "管理コンソールで確定する"
                )
            )
        }
        Some("error") => {
            let code = params.get("code").map(String::as_str).unwrap_or("");
            format!(
                r#"<p id="outcome" data-outcome="error" data-code="{}">{}</p>{}"#,
                escape(code),
                outcome_message(code),
                console_link(
                    &sandbox,
                    &format!(
                        "hubspot_error={}",
                        url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
                    ),
                    "管理コンソールに戻る"
                )
            )
        }
        _ => format!(
            r#"<p>HubSpot連携機能は、HubSpotのStarterプラン以上で利用可能です。接続はHubSpotのスーパー管理者が行うことを推奨します。</p>
<form method="post" action="integrations/connect"><input type="hidden" name="account_id" value="{account}">
<button type="submit">HubSpotと連携</button></form>"#
        ),
    };
    page(&body)
}

/// A dev JWT as board's web app would present it (HS256, user 1, admin).
fn dev_jwt(secret: &str, account: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let claims = json!({"iss": "board", "aud": "board-hubspot", "account_id": account, "user_id": 1,
                        "role": "admin", "account_name": format!("{account} (sandbox)"), "exp": exp});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

async fn call_service(
    sandbox: &BoardSandbox,
    account: &str,
    path: &str,
    body: Value,
) -> Result<(u16, Value), String> {
    let (service, secret) = {
        let c = sandbox.inner.config.lock().expect("config");
        (c.service_url.clone(), c.jwt_secret.clone())
    };
    let service = service.ok_or("the service URL is not configured")?;
    let response = reqwest::Client::new()
        .post(format!("{service}{path}"))
        .bearer_auth(dev_jwt(&secret, account))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

pub async fn connect(
    State(sandbox): State<BoardSandbox>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let account = form
        .get("account_id")
        .cloned()
        .unwrap_or_else(|| "acct-a".into());
    match call_service(
        &sandbox,
        &account,
        "/v1/hubspot/connection/authorize",
        json!({}),
    )
    .await
    {
        Ok((200, body)) if body["authorize_url"].is_string() => {
            Redirect::to(body["authorize_url"].as_str().expect("checked")).into_response()
        }
        Ok((status, body)) => page(&format!(
            "<p id=\"outcome\">接続を開始できませんでした ({status}): {}</p>",
            escape(&body.to_string())
        ))
        .into_response(),
        Err(e) => page(&format!(
            "<p id=\"outcome\">接続を開始できませんでした: {}</p>",
            escape(&e)
        ))
        .into_response(),
    }
}

pub async fn confirm(
    State(sandbox): State<BoardSandbox>,
    Form(form): Form<HashMap<String, String>>,
) -> Html<String> {
    let account = form
        .get("account_id")
        .cloned()
        .unwrap_or_else(|| "acct-a".into());
    let confirmation = form.get("confirmation").cloned().unwrap_or_default();
    match call_service(
        &sandbox,
        &account,
        "/v1/hubspot/connection/confirm",
        json!({"confirmation": confirmation}),
    )
    .await
    {
        Ok((200, _)) => {
            page(r#"<p id="outcome" data-outcome="connected">HubSpotと連携しました。</p>"#)
        }
        Ok((status, body)) => page(&format!(
            r#"<p id="outcome" data-outcome="error" data-status="{status}">{}</p>"#,
            escape(
                body["detail"]
                    .as_str()
                    .unwrap_or(outcome_message(body["code"].as_str().unwrap_or("")))
            )
        )),
        Err(e) => page(&format!(
            r#"<p id="outcome" data-outcome="error">{}</p>"#,
            escape(&e)
        )),
    }
}

#[derive(Deserialize)]
pub struct SendDocument {
    account_id: String,
    project_id: u64,
    document_type: String,
    method: String,
    #[serde(default)]
    total: Option<String>,
    #[serde(default)]
    tax: Option<String>,
}

const DOCUMENT_TYPES: [(&str, &str); 5] = [
    ("estimate", "EST"),
    ("invoice", "INV"),
    ("delivery_slip", "DLV"),
    ("order_confirmation", "ORD"),
    ("receipt", "RCP"),
];

pub async fn send_document(
    State(sandbox): State<BoardSandbox>,
    Json(body): Json<SendDocument>,
) -> Response {
    let Some((_, prefix)) = DOCUMENT_TYPES
        .iter()
        .find(|(t, _)| *t == body.document_type)
    else {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "document_type が不正です", "allowed": DOCUMENT_TYPES.map(|t| t.0)}))).into_response();
    };
    if body.method != "email" && body.method != "post" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "method は email または post です"})),
        )
            .into_response();
    }
    if let (Some(total), _) | (_, Some(total)) = (&body.total, &body.tax)
        && total.parse::<f64>().is_err()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "total と tax は数値の文字列です"})),
        )
            .into_response();
    }
    let known_account = sandbox
        .inner
        .accounts
        .lock()
        .expect("accounts")
        .contains_key(&body.account_id);
    if !known_account {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "アカウントが見つかりません"})),
        )
            .into_response();
    }
    if body.total.is_some() || body.tax.is_some() {
        let mut changes = Map::new();
        if let Some(t) = &body.total {
            changes.insert("total".into(), json!(t));
        }
        if let Some(t) = &body.tax {
            changes.insert("tax".into(), json!(t));
        }
        let exists = sandbox.inner.accounts.lock().expect("accounts")[&body.account_id]
            .get(Resource::Projects, body.project_id)
            .is_some();
        if exists {
            write(
                &sandbox,
                &body.account_id,
                Resource::Projects,
                Some(body.project_id),
                changes,
            );
        }
    }
    let event = {
        let mut accounts = sandbox.inner.accounts.lock().expect("accounts");
        let account = accounts.get_mut(&body.account_id).expect("checked");
        let Some(project) = account.get(Resource::Projects, body.project_id).cloned() else {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"message": "指定された案件が見つかりません"})),
            )
                .into_response();
        };
        let sent = account
            .documents_sent
            .entry((body.project_id, body.document_type.clone()))
            .or_insert(0);
        *sent += 1;
        let count = *sent;
        let total = project
            .fields
            .get("total")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_owned();
        let tax = project
            .fields
            .get("tax")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_owned();
        let with_tax = total.parse::<f64>().unwrap_or(0.0) + tax.parse::<f64>().unwrap_or(0.0);
        let object = json!({
            "project_id": body.project_id,
            "document_type": body.document_type,
            "document_number": format!("{prefix}-{:06}", body.project_id),
            "issue_date": today_jst(),
            "total": total,
            "tax": tax,
            "total_with_tax": format!("{with_tax}"),
            "method": body.method,
            "resend": count > 1,
        });
        event(&body.account_id, "document.sent", u64::from(count), object)
    };
    let response = json!({"event_id": event.event_id});
    publish(&sandbox, vec![event]);
    (StatusCode::ACCEPTED, Json(response)).into_response()
}

/// `GET /_inspect/v1/{projects|clients|contacts}/{id}`: what `GET /v1/...` returns,
/// without auth or rate limit. Ids are unique across accounts, so the account is
/// found from the id when not given.
pub async fn inspect(
    State(sandbox): State<BoardSandbox>,
    Path((raw, id)): Path<(String, u64)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(resource) = Resource::parse(&raw) else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "not found"}))).into_response();
    };
    let accounts = sandbox.inner.accounts.lock().expect("accounts");
    let wanted = query.get("account_id");
    for (name, account) in accounts.iter() {
        if wanted.is_some_and(|w| w != name) {
            continue;
        }
        if let Some(stored) = account.get(resource, id) {
            let mut value = account.render(resource, stored);
            value["_account_id"] = json!(name);
            value["_version"] = json!(stored.version);
            return Json(value).into_response();
        }
    }
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "指定されたデータが見つかりません"})),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Bulk {
    account_id: String,
    #[serde(default)]
    clients: Vec<Value>,
    #[serde(default)]
    contacts: Vec<Value>,
    #[serde(default)]
    projects: Vec<Value>,
    /// Changes to existing records, applied after the creates, in order.
    #[serde(default)]
    updates: Vec<BulkUpdate>,
    /// `false` seeds records as if they had always been there: no change events.
    #[serde(default = "emit_events")]
    events: bool,
}

fn emit_events() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct BulkUpdate {
    /// `clients`, `contacts` or `projects`.
    resource: String,
    id: u64,
    fields: Value,
}

/// Unthrottled bulk creation for load tests, as an import or a mass update
/// makes it: validated like the API, each record emitting its event to board's
/// bulk lane (SPEC §10). Contacts and projects may refer to a client of this
/// batch by `"client_ref": <index in clients>`.
pub async fn bulk(State(sandbox): State<BoardSandbox>, Json(body): Json<Bulk>) -> Response {
    changes(sandbox, body, true)
}

/// Changes people make in board's screens (same body as `bulk`): not through
/// board's API (so not on the account's API limit), each event on board's
/// ordinary lane.
pub async fn edits(State(sandbox): State<BoardSandbox>, Json(body): Json<Bulk>) -> Response {
    changes(sandbox, body, false)
}

fn changes(sandbox: BoardSandbox, body: Bulk, bulk: bool) -> Response {
    if !sandbox
        .inner
        .accounts
        .lock()
        .expect("accounts")
        .contains_key(&body.account_id)
    {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "アカウントが見つかりません"})),
        )
            .into_response();
    }
    let mut created: HashMap<&str, Vec<u64>> = HashMap::new();
    for (resource, inputs, key) in [
        (Resource::Clients, &body.clients, "clients"),
        (Resource::Contacts, &body.contacts, "contacts"),
        (Resource::Projects, &body.projects, "projects"),
    ] {
        for (i, input) in inputs.iter().enumerate() {
            let mut fields = input.as_object().cloned().unwrap_or_default();
            if let Some(index) = fields.remove("client_ref").and_then(|v| v.as_u64()) {
                let client = created
                    .get("clients")
                    .and_then(|ids| ids.get(index as usize))
                    .copied();
                fields.insert("client_id".into(), json!(client));
            }
            let extra_total = fields.remove("total");
            let extra_tax = fields.remove("tax");
            let changes = {
                let accounts = sandbox.inner.accounts.lock().expect("accounts");
                match validate(&accounts[&body.account_id], resource, &fields, None) {
                    Ok(mut c) => {
                        if let Some(t) = extra_total {
                            c.insert("total".into(), t);
                        }
                        if let Some(t) = extra_tax {
                            c.insert("tax".into(), t);
                        }
                        c
                    }
                    Err(e) => {
                        let mut response = e.into_response();
                        *response.status_mut() = StatusCode::BAD_REQUEST;
                        tracing::warn!(index = i, key, "bulk input refused");
                        return response;
                    }
                }
            };
            let (value, event) = write_record(&sandbox, &body.account_id, resource, None, changes);
            if body.events {
                publish_to(&sandbox, vec![event], bulk);
            }
            created
                .entry(key)
                .or_default()
                .push(value["id"].as_u64().unwrap_or_default());
        }
    }
    let mut updated = 0;
    for (i, update) in body.updates.iter().enumerate() {
        let refused = |message: String| {
            tracing::warn!(index = i, %message, "bulk update refused");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": message, "index": i})),
            )
                .into_response()
        };
        let Ok(resource) = crate::api::resource(&update.resource) else {
            return refused(format!("unknown resource {:?}", update.resource));
        };
        let fields = update.fields.as_object().cloned().unwrap_or_default();
        let changes = {
            let accounts = sandbox.inner.accounts.lock().expect("accounts");
            let account = &accounts[&body.account_id];
            let Some(current) = account.get(resource, update.id) else {
                return refused(format!("{} {} not found", update.resource, update.id));
            };
            if crate::api::locked(account, resource, update.id) {
                return refused(format!("{} {} is locked", update.resource, update.id));
            }
            match validate(account, resource, &fields, Some(current)) {
                Ok(changes) => changes,
                Err(e) => {
                    let mut response = e.into_response();
                    *response.status_mut() = StatusCode::BAD_REQUEST;
                    return response;
                }
            }
        };
        let (_, event) = write_record(
            &sandbox,
            &body.account_id,
            resource,
            Some(update.id),
            changes,
        );
        if body.events {
            publish_to(&sandbox, vec![event], bulk);
        }
        updated += 1;
    }
    let mut out = json!(created);
    out["updated"] = json!(updated);
    (StatusCode::CREATED, Json(out)).into_response()
}

#[derive(Deserialize)]
pub struct NewAccounts {
    ids: Vec<String>,
}

/// More board accounts (many tenants in one emulator), each with the users of
/// `acct-a`; an id already present is left as it is. Credentials follow the
/// fixed pattern (`sandbox-key-<id>`, `sandbox-token-<id>`).
pub async fn add_accounts(
    State(sandbox): State<BoardSandbox>,
    Json(body): Json<NewAccounts>,
) -> Response {
    let valid = |id: &String| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if body.ids.len() > 5_000 || !body.ids.iter().all(valid) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "ids: at most 5000 of [A-Za-z0-9_-]{1,64}"})),
        )
            .into_response();
    }
    let mut accounts = sandbox.inner.accounts.lock().expect("accounts");
    let mut added = 0;
    for id in &body.ids {
        if !accounts.contains_key(id) {
            accounts.insert(id.clone(), seed_account("acct-a"));
            added += 1;
        }
    }
    (StatusCode::CREATED, Json(json!({"added": added}))).into_response()
}

pub async fn events(State(sandbox): State<BoardSandbox>) -> Json<Value> {
    Json(json!({"events": *sandbox.inner.events.lock().expect("events")}))
}

pub async fn requests(State(sandbox): State<BoardSandbox>) -> Json<Value> {
    Json(json!({"requests": *sandbox.inner.requests.lock().expect("requests")}))
}

pub async fn clear_requests(State(sandbox): State<BoardSandbox>) -> StatusCode {
    sandbox.inner.requests.lock().expect("requests").clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct Settings {
    #[serde(default)]
    per_second: Option<usize>,
    #[serde(default)]
    fault_rate: Option<f64>,
    #[serde(default)]
    daily_quota: Option<usize>,
    #[serde(default)]
    latency_ms: Option<u64>,
}

pub async fn settings(
    State(sandbox): State<BoardSandbox>,
    Json(body): Json<Settings>,
) -> StatusCode {
    let mut config = sandbox.inner.config.lock().expect("config");
    if let Some(n) = body.per_second {
        config.per_second = n;
    }
    if let Some(ms) = body.latency_ms {
        config.latency_ms = ms;
    }
    if let Some(rate) = body.fault_rate {
        config.fault_rate = rate.clamp(0.0, 1.0);
    }
    if let Some(n) = body.daily_quota {
        config.daily_quota = n;
        sandbox.inner.windows.lock().expect("windows").clear();
    }
    StatusCode::NO_CONTENT
}
