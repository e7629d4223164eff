//! board's API v1 over reqwest, with per-account credentials. board's JSON stays
//! here; callers get domain values and classified errors.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::domain::{AccountId, BoardUserId};
use crate::ports::{BoardApi, BoardError, BoardRecord, BoardResource, BoardUser};

/// Where an account's board API key and token come from.
#[derive(Clone)]
pub enum BoardCredentials {
    /// The sandbox's fixed pattern: key `sandbox-key-X`, token `sandbox-token-X`.
    SandboxPattern,
    /// From the credentials store (Secrets Manager in production): account → (key, token).
    Map(HashMap<String, (SecretString, SecretString)>),
}

impl BoardCredentials {
    /// Parses `{"acct": {"api_key": "…", "token": "…"}}`.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("BOARD_CREDENTIALS: {e}"))?;
        let map = value
            .as_object()
            .ok_or("BOARD_CREDENTIALS must be an object")?;
        let mut out = HashMap::new();
        for (account, entry) in map {
            let key = entry["api_key"]
                .as_str()
                .ok_or(format!("BOARD_CREDENTIALS.{account}.api_key missing"))?;
            let token = entry["token"]
                .as_str()
                .ok_or(format!("BOARD_CREDENTIALS.{account}.token missing"))?;
            out.insert(
                account.clone(),
                (
                    SecretString::from(key.to_owned()),
                    SecretString::from(token.to_owned()),
                ),
            );
        }
        Ok(Self::Map(out))
    }

    fn for_account(&self, account: &AccountId) -> Result<(String, String), BoardError> {
        match self {
            Self::SandboxPattern => Ok((
                format!("sandbox-key-{account}"),
                format!("sandbox-token-{account}"),
            )),
            Self::Map(map) => map
                .get(account.as_str())
                .map(|(k, t)| (k.expose_secret().to_owned(), t.expose_secret().to_owned()))
                .ok_or_else(|| {
                    BoardError::Unauthorized(format!("no board credentials for account {account}"))
                }),
        }
    }
}

#[derive(Clone)]
pub struct BoardClient {
    http: Client,
    base: String,
    credentials: BoardCredentials,
}

impl BoardClient {
    pub fn new(base: &str, credentials: BoardCredentials) -> Self {
        let http = Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .user_agent("board-hubspot/0.1")
            .build()
            .expect("HTTP client builds");
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
        }
    }

    async fn get_path(&self, account: &AccountId, path: &str) -> Result<Value, BoardError> {
        self.send(account, reqwest::Method::GET, path, None).await
    }

    /// One call; a 429 (not processed by board) is retried after board's
    /// `Retry-After`, at most twice and up to 2 s each, so an interactive screen
    /// does not fail on a short burst.
    async fn send(
        &self,
        account: &AccountId,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, BoardError> {
        let (key, token) = self.credentials.for_account(account)?;
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .header("x-api-key", &key)
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| {
                BoardError::Unavailable(if e.is_timeout() {
                    "timeout".into()
                } else {
                    "connection failed".into()
                })
            })?;
            match json_or_error(response).await {
                Err(BoardError::RateLimited { retry_after_ms })
                    if attempt < 2 && retry_after_ms <= 2000 =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
                }
                other => return other,
            }
        }
    }
}

async fn json_or_error(response: Response) -> Result<Value, BoardError> {
    let status = response.status();
    if status.is_success() {
        return if status == StatusCode::NO_CONTENT {
            Ok(Value::Null)
        } else {
            response
                .json()
                .await
                .map_err(|_| BoardError::Unavailable("malformed response".into()))
        };
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
        * 1000;
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => BoardError::Unauthorized(message),
        StatusCode::NOT_FOUND => BoardError::NotFound,
        StatusCode::TOO_MANY_REQUESTS => BoardError::RateLimited {
            retry_after_ms: retry_after,
        },
        s if s.is_server_error() => BoardError::Unavailable(format!("{} {message}", s.as_u16())),
        _ => BoardError::Rejected {
            message,
            fields: body["errors"]
                .as_object()
                .map(|errors| {
                    errors
                        .iter()
                        .map(|(field, list)| {
                            let texts = list
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|m| m.as_str().map(str::to_owned))
                                .collect();
                            (field.clone(), texts)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
    })
}

#[async_trait]
impl BoardApi for BoardClient {
    async fn users(&self, account: &AccountId) -> Result<Vec<BoardUser>, BoardError> {
        let mut users = Vec::new();
        for page in 1..=50 {
            let body = self
                .get_path(account, &format!("/users?page={page}&per_page=100"))
                .await?;
            let items = body.as_array().cloned().unwrap_or_default();
            let count = items.len();
            users.extend(items.iter().filter_map(|u| {
                Some(BoardUser {
                    id: BoardUserId::new(u["id"].as_u64()?).ok()?,
                    name: u["name"].as_str().unwrap_or_default().to_owned(),
                    email: u["email"].as_str().unwrap_or_default().to_owned(),
                })
            }));
            if count < 100 {
                break;
            }
        }
        Ok(users)
    }

    async fn get(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
    ) -> Result<BoardRecord, BoardError> {
        record(
            self.get_path(account, &format!("/{}/{id}", resource.path()))
                .await?,
        )
    }

    async fn find(
        &self,
        account: &AccountId,
        resource: BoardResource,
        filters: &[(&str, String)],
    ) -> Result<Vec<BoardRecord>, BoardError> {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(filters.iter().map(|(k, v)| (*k, v.as_str())))
            .append_pair("per_page", "100")
            .finish();
        let body = self
            .get_path(account, &format!("/{}?{query}", resource.path()))
            .await?;
        body.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(record)
            .collect()
    }

    async fn create(
        &self,
        account: &AccountId,
        resource: BoardResource,
        fields: serde_json::Map<String, Value>,
    ) -> Result<BoardRecord, BoardError> {
        let body = Value::Object(fields);
        record(
            self.send(
                account,
                reqwest::Method::POST,
                &format!("/{}", resource.path()),
                Some(&body),
            )
            .await?,
        )
    }

    async fn update(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
        fields: serde_json::Map<String, Value>,
    ) -> Result<BoardRecord, BoardError> {
        let body = Value::Object(fields);
        record(
            self.send(
                account,
                reqwest::Method::PATCH,
                &format!("/{}/{id}", resource.path()),
                Some(&body),
            )
            .await?,
        )
    }

    async fn set_order_status(
        &self,
        account: &AccountId,
        project: u64,
        status: u8,
        order_date: Option<String>,
    ) -> Result<BoardRecord, BoardError> {
        let mut body = serde_json::json!({"order_status": status});
        if let Some(date) = order_date {
            body["order_date"] = Value::String(date);
        }
        record(
            self.send(
                account,
                reqwest::Method::PATCH,
                &format!("/projects/order_status/{project}"),
                Some(&body),
            )
            .await?,
        )
    }
}

fn record(value: Value) -> Result<BoardRecord, BoardError> {
    let Value::Object(fields) = value else {
        return Err(BoardError::Unavailable(
            "board returned something that is not a record".into(),
        ));
    };
    let id = fields
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| BoardError::Unavailable("record without id".into()))?;
    Ok(BoardRecord { id, fields })
}
