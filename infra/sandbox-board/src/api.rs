//! board API v1: auth by `x-api-key` + Bearer, ≈3 requests/s per account (429
//! with `Retry-After`), a daily quota, paging with `page`/`per_page` ≤ 100 and
//! `X-Total-Count`, `_eq`/`_cont`/`_in[]` filters, errors as `message` +
//! `errors{field:[…]}`, locked projects refusing updates.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::BoardSandbox;
use crate::model::{Account, ChangeEvent, Resource, Stored, now_jst};

#[derive(Debug, Clone)]
pub struct AccountCtx(pub String);

#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub account: String,
    /// `service` (the integration's token) or `user` (a person's).
    pub caller: &'static str,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub at_ms: i64,
}

pub struct BoardError {
    status: StatusCode,
    body: Value,
}

impl BoardError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"message": message.into()}),
        }
    }

    pub fn fields(errors: Map<String, Value>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "入力内容に誤りがあります", "errors": errors}),
        }
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "指定されたデータが見つかりません")
    }
}

impl IntoResponse for BoardError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type BoardResult<T> = Result<T, BoardError>;

fn account_of_credential(sandbox: &BoardSandbox, value: &str, prefix: &str) -> Option<String> {
    value
        .strip_prefix(prefix)
        .filter(|a| {
            sandbox
                .inner
                .accounts
                .lock()
                .expect("accounts")
                .contains_key(*a)
        })
        .map(str::to_owned)
}

/// Authenticates (401 without valid credentials, 403 when key and token belong
/// to different accounts), applies the per-account limits and logs the request.
pub async fn gate(
    State(sandbox): State<BoardSandbox>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let key_account = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|k| account_of_credential(&sandbox, k.trim(), "sandbox-key-"));
    let token_account = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .and_then(|t| {
            account_of_credential(&sandbox, t, "sandbox-token-")
                .or_else(|| account_of_credential(&sandbox, t, "sandbox-user-"))
        });
    let (Some(key_account), Some(token_account)) = (key_account, token_account) else {
        return BoardError::new(
            StatusCode::UNAUTHORIZED,
            "認証に失敗しました。APIキーとアクセストークンを確認してください。",
        )
        .into_response();
    };
    if key_account != token_account {
        return BoardError::new(
            StatusCode::FORBIDDEN,
            "このアクセストークンではこのアカウントにアクセスできません。",
        )
        .into_response();
    }
    let account = key_account;
    let caller = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v.contains("sandbox-token-") => "service",
        _ => "user",
    };
    let (per_second, daily, fault_rate, latency_ms) = {
        let c = sandbox.inner.config.lock().expect("config");
        (c.per_second, c.daily_quota, c.fault_rate, c.latency_ms)
    };
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    let limited = {
        let mut windows = sandbox.inner.windows.lock().expect("windows");
        let (window, used_today) = windows.entry(account.clone()).or_default();
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(1))
        {
            window.pop_front();
        }
        if *used_today >= daily {
            Some("1日あたりのAPIリクエスト上限に達しました。")
        } else if window.len() >= per_second {
            Some("APIリクエストの上限に達しました。しばらくしてから再度お試しください。")
        } else {
            window.push_back(now);
            *used_today += 1;
            None
        }
    };
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = match limited {
        Some(message) => {
            let mut response =
                BoardError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
            response.headers_mut().insert(
                "Retry-After",
                HeaderValue::from(crate::RETRY_AFTER.as_secs()),
            );
            response
        }
        None if fault_rate > 0.0 && rand::random::<f64>() < fault_rate => BoardError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "只今メンテナンス中です。しばらくしてから再度お試しください。",
        )
        .into_response(),
        None => {
            request.extensions_mut().insert(AccountCtx(account.clone()));
            next.run(request).await
        }
    };
    sandbox
        .inner
        .requests
        .lock()
        .expect("requests")
        .push(LoggedRequest {
            account,
            caller,
            method,
            path,
            status: response.status().as_u16(),
            at_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        });
    response
}

pub(crate) fn resource(raw: &str) -> BoardResult<Resource> {
    Resource::parse(raw)
        .ok_or_else(|| BoardError::new(StatusCode::NOT_FOUND, format!("/v1/{raw} は存在しません")))
}

fn parse_id(raw: &str) -> BoardResult<u64> {
    raw.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(BoardError::not_found)
}

const ORDER_STATUSES: [u64; 7] = [1, 2, 3, 8, 4, 5, 9];

fn fields_of(resource: Resource) -> &'static [&'static str] {
    match resource {
        Resource::Clients => &[
            "name",
            "name_disp",
            "title",
            "tel",
            "fax",
            "zip",
            "pref",
            "address1",
            "address2",
            "custom_no",
            "email",
            "url",
        ],
        Resource::Contacts => &[
            "client_id",
            "last_name",
            "first_name",
            "email",
            "title",
            "honorific_title",
            "tel",
            "department",
        ],
        Resource::Projects => &[
            "name",
            "client_id",
            "contact_id",
            "user_id",
            "order_status",
            "order_date",
            "invoice_timing_kbn",
            "invoice_date",
            "contract_start_date",
            "contract_end_date",
            "invoice_dates",
            "management_no",
            "memo",
        ],
    }
}

fn is_date(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
    })
}

/// Validates a create (`current` None) or an update against board's rules.
pub(crate) fn validate(
    account: &Account,
    resource: Resource,
    input: &Map<String, Value>,
    current: Option<&Stored>,
) -> BoardResult<Map<String, Value>> {
    let allowed = fields_of(resource);
    let mut merged = current.map(|c| c.fields.clone()).unwrap_or_default();
    let mut changes = Map::new();
    for (k, v) in input {
        if allowed.contains(&k.as_str()) {
            changes.insert(k.clone(), v.clone());
            merged.insert(k.clone(), v.clone());
        }
    }
    let mut errors = Map::new();
    let mut fail = |field: &str, message: &str| {
        errors
            .entry(field.to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("array")
            .push(json!(message));
    };
    let present = |k: &str| {
        merged
            .get(k)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    };
    let required: &[&str] = match resource {
        Resource::Clients => &["name", "name_disp"],
        Resource::Contacts => &["client_id", "last_name"],
        Resource::Projects => &[
            "name",
            "client_id",
            "user_id",
            "order_status",
            "invoice_timing_kbn",
        ],
    };
    for field in required {
        if !present(field) {
            fail(field, "を入力してください");
        }
    }
    for (field, max) in [
        ("name", 255usize),
        ("name_disp", 255),
        ("last_name", 100),
        ("first_name", 100),
        ("email", 255),
        ("title", 100),
    ] {
        if let Some(s) = changes.get(field).and_then(Value::as_str)
            && s.chars().count() > max
        {
            fail(field, &format!("は{max}文字以内で入力してください"));
        }
    }
    let exists = |r: Resource, key: &str| {
        merged
            .get(key)
            .and_then(Value::as_u64)
            .is_some_and(|id| account.get(r, id).is_some())
    };
    match resource {
        Resource::Contacts => {
            if present("client_id") && !exists(Resource::Clients, "client_id") {
                fail("client_id", "が存在しません");
            }
        }
        Resource::Projects => {
            if present("client_id") && !exists(Resource::Clients, "client_id") {
                fail("client_id", "が存在しません");
            }
            if present("contact_id") && !exists(Resource::Contacts, "contact_id") {
                fail("contact_id", "が存在しません");
            }
            if present("user_id")
                && !merged
                    .get("user_id")
                    .and_then(Value::as_u64)
                    .is_some_and(|id| account.users.iter().any(|u| u.id == id))
            {
                fail("user_id", "が存在しません");
            }
            if present("order_status")
                && !merged
                    .get("order_status")
                    .and_then(Value::as_u64)
                    .is_some_and(|s| ORDER_STATUSES.contains(&s))
            {
                fail("order_status", "は一覧にありません");
            }
            if present("order_date") && !merged.get("order_date").is_some_and(is_date) {
                fail("order_date", "は日付で入力してください");
            }
            match merged.get("invoice_timing_kbn").and_then(Value::as_u64) {
                Some(1) => {
                    if !merged.get("invoice_date").is_some_and(is_date) {
                        fail("invoice_date", "を入力してください");
                    }
                }
                Some(2) => {
                    for f in ["contract_start_date", "contract_end_date"] {
                        if !merged.get(f).is_some_and(is_date) {
                            fail(f, "を入力してください");
                        }
                    }
                }
                Some(3) => {
                    let ok = merged
                        .get("invoice_dates")
                        .and_then(Value::as_array)
                        .is_some_and(|d| !d.is_empty() && d.iter().all(is_date));
                    if !ok {
                        fail("invoice_dates", "を入力してください");
                    }
                }
                None if !present("invoice_timing_kbn") => {}
                _ => fail("invoice_timing_kbn", "は一覧にありません"),
            }
        }
        Resource::Clients => {}
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(BoardError::fields(errors))
    }
}

/// Writes a record and emits its change event; returns its rendering.
pub(crate) fn write(
    sandbox: &BoardSandbox,
    account_id: &str,
    resource: Resource,
    id: Option<u64>,
    changes: Map<String, Value>,
) -> Value {
    let (rendered, event) = write_record(sandbox, account_id, resource, id, changes);
    publish(sandbox, vec![event]);
    rendered
}

/// Stores a create or an update; the change event is the caller's to publish.
pub(crate) fn write_record(
    sandbox: &BoardSandbox,
    account_id: &str,
    resource: Resource,
    id: Option<u64>,
    changes: Map<String, Value>,
) -> (Value, ChangeEvent) {
    let new_id = match id {
        Some(id) => id,
        None => {
            let mut next = sandbox.inner.next_id.lock().expect("ids");
            *next += 1;
            *next
        }
    };
    let (rendered, event) = {
        let mut accounts = sandbox.inner.accounts.lock().expect("accounts");
        let account = accounts.get_mut(account_id).expect("authenticated account");
        let now = now_jst();
        let created = id.is_none();
        let project_no = if created && resource == Resource::Projects {
            Some(account.list(Resource::Projects).count() as u64 + 1)
        } else {
            None
        };
        let stored = account
            .records
            .entry((resource, new_id))
            .or_insert_with(|| Stored {
                fields: Map::new(),
                version: 0,
            });
        if created {
            stored.fields.insert("id".into(), json!(new_id));
            stored.fields.insert("created_at".into(), json!(now));
            if let Some(no) = project_no {
                stored.fields.insert("project_no".into(), json!(no));
                stored.fields.insert("total".into(), json!("0"));
                stored.fields.insert("tax".into(), json!("0"));
                stored.fields.insert("lock_flg".into(), json!(0));
            }
        }
        for (k, v) in changes {
            stored.fields.insert(k, v);
        }
        stored.fields.insert("updated_at".into(), json!(now));
        stored.version += 1;
        let stored = stored.clone();
        let rendered = account.render(resource, &stored);
        let kind = if created { "created" } else { "updated" };
        (
            rendered.clone(),
            event(
                account_id,
                &format!("{}.{kind}", resource.event_prefix()),
                stored.version,
                rendered,
            ),
        )
    };
    (rendered, event)
}

pub(crate) fn event(
    account_id: &str,
    event_type: &str,
    version: u64,
    object: Value,
) -> ChangeEvent {
    ChangeEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_owned(),
        event_type: event_type.to_owned(),
        occurred_at: now_jst(),
        version,
        object,
    }
}

pub(crate) fn publish(sandbox: &BoardSandbox, events: Vec<ChangeEvent>) {
    publish_to(sandbox, events, false)
}

/// Keeps `events` and hands them to the sink of their lane: the bulk lane's
/// for an import or mass update (`bulk`), when one is set.
pub(crate) fn publish_to(sandbox: &BoardSandbox, events: Vec<ChangeEvent>, bulk: bool) {
    if events.is_empty() {
        return;
    }
    let bodies: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("serializes"))
        .collect();
    sandbox.inner.events.lock().expect("events").extend(events);
    let bulk_sink = if bulk {
        sandbox.inner.bulk_sink.lock().expect("sink").clone()
    } else {
        None
    };
    let sink = bulk_sink.or_else(|| sandbox.inner.sink.lock().expect("sink").clone());
    if let Some(sink) = sink {
        sink(bodies);
    }
}

fn body_object(body: &Value) -> BoardResult<Map<String, Value>> {
    body.as_object().cloned().ok_or_else(|| {
        BoardError::new(
            StatusCode::BAD_REQUEST,
            "リクエストの形式が正しくありません",
        )
    })
}

fn matches_filters(fields: &Map<String, Value>, filters: &[(String, String)]) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut in_filters: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in filters {
        if let Some(field) = k.strip_suffix("_in[]").or_else(|| k.strip_suffix("_in")) {
            in_filters.entry(field).or_default().push(v.as_str());
        } else if let Some(field) = k.strip_suffix("_eq") {
            if fields.get(field).map(text).as_deref() != Some(v.as_str()) {
                return false;
            }
        } else if let Some(field) = k.strip_suffix("_cont")
            && !fields
                .get(field)
                .map(text)
                .is_some_and(|f| f.contains(v.as_str()))
        {
            return false;
        }
    }
    in_filters.iter().all(|(field, values)| {
        fields
            .get(*field)
            .map(text)
            .is_some_and(|f| values.contains(&f.as_str()))
    })
}

pub async fn list(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path(raw): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> BoardResult<Response> {
    let resource = resource(&raw)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let page: usize = get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page: usize = match get("per_page") {
        None => 20,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(BoardError::fields(Map::from_iter([(
                    "per_page".to_owned(),
                    json!(["は1以上100以下で指定してください"]),
                )])));
            }
        },
    };
    let filters: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .collect();
    let accounts = sandbox.inner.accounts.lock().expect("accounts");
    let account = &accounts[&account];
    let matching: Vec<Value> = account
        .list(resource)
        .filter(|(_, s)| matches_filters(&s.fields, &filters))
        .map(|(_, s)| account.render(resource, s))
        .collect();
    let total = matching.len();
    let items: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = Json(Value::Array(items)).into_response();
    response
        .headers_mut()
        .insert("X-Total-Count", HeaderValue::from(total as u64));
    Ok(response)
}

pub async fn read(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path((raw, raw_id)): Path<(String, String)>,
) -> BoardResult<Json<Value>> {
    let resource = resource(&raw)?;
    let id = parse_id(&raw_id)?;
    let accounts = sandbox.inner.accounts.lock().expect("accounts");
    let account = &accounts[&account];
    let stored = account
        .get(resource, id)
        .ok_or_else(BoardError::not_found)?;
    Ok(Json(account.render(resource, stored)))
}

pub async fn create(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path(raw): Path<String>,
    Json(body): Json<Value>,
) -> BoardResult<(StatusCode, Json<Value>)> {
    let resource = resource(&raw)?;
    let input = body_object(&body)?;
    let changes = {
        let accounts = sandbox.inner.accounts.lock().expect("accounts");
        validate(&accounts[&account], resource, &input, None)?
    };
    Ok((
        StatusCode::CREATED,
        Json(write(&sandbox, &account, resource, None, changes)),
    ))
}

const LOCKED: &str = "案件がロックされているため更新できません";

pub(crate) fn locked(account: &Account, resource: Resource, id: u64) -> bool {
    resource == Resource::Projects
        && account
            .get(resource, id)
            .is_some_and(|s| s.fields.get("lock_flg").and_then(Value::as_u64) == Some(1))
}

pub async fn update(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path((raw, raw_id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> BoardResult<Json<Value>> {
    let resource = resource(&raw)?;
    let id = parse_id(&raw_id)?;
    let input = body_object(&body)?;
    let changes = {
        let accounts = sandbox.inner.accounts.lock().expect("accounts");
        let acct = &accounts[&account];
        let current = acct.get(resource, id).ok_or_else(BoardError::not_found)?;
        if locked(acct, resource, id) {
            return Err(BoardError::new(StatusCode::BAD_REQUEST, LOCKED));
        }
        validate(acct, resource, &input, Some(current))?
    };
    Ok(Json(write(&sandbox, &account, resource, Some(id), changes)))
}

pub async fn remove(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path((raw, raw_id)): Path<(String, String)>,
) -> BoardResult<StatusCode> {
    let resource = resource(&raw)?;
    let id = parse_id(&raw_id)?;
    let event = {
        let mut accounts = sandbox.inner.accounts.lock().expect("accounts");
        let acct = accounts.get_mut(&account).expect("authenticated");
        if locked(acct, resource, id) {
            return Err(BoardError::new(StatusCode::BAD_REQUEST, LOCKED));
        }
        let in_use = match resource {
            Resource::Clients => {
                acct.list(Resource::Projects)
                    .any(|(_, p)| p.fields.get("client_id").and_then(Value::as_u64) == Some(id))
                    || acct
                        .list(Resource::Contacts)
                        .any(|(_, c)| c.fields.get("client_id").and_then(Value::as_u64) == Some(id))
            }
            _ => false,
        };
        if in_use {
            return Err(BoardError::new(
                StatusCode::BAD_REQUEST,
                "関連するデータが存在するため削除できません",
            ));
        }
        let stored = acct
            .records
            .remove(&(resource, id))
            .ok_or_else(BoardError::not_found)?;
        let rendered = Value::Object(stored.fields.clone());
        event(
            &account,
            &format!("{}.deleted", resource.event_prefix()),
            stored.version + 1,
            rendered,
        )
    };
    publish(&sandbox, vec![event]);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn order_status(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path(raw_id): Path<String>,
    Json(body): Json<Value>,
) -> BoardResult<Json<Value>> {
    let id = parse_id(&raw_id)?;
    let status = body.get("order_status").cloned().unwrap_or(Value::Null);
    {
        let accounts = sandbox.inner.accounts.lock().expect("accounts");
        let acct = &accounts[&account];
        acct.get(Resource::Projects, id)
            .ok_or_else(BoardError::not_found)?;
        if locked(acct, Resource::Projects, id) {
            return Err(BoardError::new(StatusCode::BAD_REQUEST, LOCKED));
        }
        if !status.as_u64().is_some_and(|s| ORDER_STATUSES.contains(&s)) {
            return Err(BoardError::fields(Map::from_iter([(
                "order_status".to_owned(),
                json!(["は一覧にありません"]),
            )])));
        }
    }
    let mut changes = Map::new();
    changes.insert("order_status".into(), status);
    if let Some(date) = body.get("order_date").filter(|d| is_date(d)) {
        changes.insert("order_date".into(), date.clone());
    }
    Ok(Json(write(
        &sandbox,
        &account,
        Resource::Projects,
        Some(id),
        changes,
    )))
}

pub async fn lock_flag(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    Path(raw_id): Path<String>,
    Json(body): Json<Value>,
) -> BoardResult<Json<Value>> {
    let id = parse_id(&raw_id)?;
    let flag = match body.get("lock_flg") {
        Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
            n.as_u64().expect("checked")
        }
        Some(Value::Bool(b)) => u64::from(*b),
        _ => {
            return Err(BoardError::fields(Map::from_iter([(
                "lock_flg".to_owned(),
                json!(["は0または1で指定してください"]),
            )])));
        }
    };
    {
        let accounts = sandbox.inner.accounts.lock().expect("accounts");
        accounts[&account]
            .get(Resource::Projects, id)
            .ok_or_else(BoardError::not_found)?;
    }
    let changes = Map::from_iter([("lock_flg".to_owned(), json!(flag))]);
    Ok(Json(write(
        &sandbox,
        &account,
        Resource::Projects,
        Some(id),
        changes,
    )))
}

pub async fn users(
    State(sandbox): State<BoardSandbox>,
    Extension(AccountCtx(account)): Extension<AccountCtx>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let _ = headers;
    let accounts = sandbox.inner.accounts.lock().expect("accounts");
    let users: Vec<Value> = accounts[&account]
        .users
        .iter()
        .filter(|u| {
            query
                .get("email_eq")
                .is_none_or(|e| u.email.eq_ignore_ascii_case(e))
        })
        .map(|u| json!(u))
        .collect();
    let total = users.len();
    let mut response = Json(Value::Array(users)).into_response();
    response
        .headers_mut()
        .insert("X-Total-Count", HeaderValue::from(total as u64));
    response
}
