//! HubSpot's REST API over reqwest (date-versioned `2026-03` paths). HubSpot's
//! JSON stays here; callers get domain values and classified errors.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{HubSpotUserId, OwnerId, PipelineId, PortalId, StageId};
use crate::ports::{
    Associated, CrmObject, HsAccount, HsOption, HsOwner, HsPipeline, HsProperty, HsStage, HsTeam,
    HubSpotAuth, HubSpotBatch, HubSpotCrm, HubSpotError, HubSpotSearch, HubSpotWrite, JournalEntry,
    JournalStart, LifecycleEvent, Metered, ModifiedPage, PropertyState, RateWindow, TokenGrant,
    TokenInfo,
};

pub const EXCLUSION_PROPERTY: &str = "exclude_from_board_integration";

#[derive(Clone)]
pub struct HubSpotClient {
    http: Client,
    base: String,
    client_id: String,
    client_secret: SecretString,
}

impl HubSpotClient {
    pub fn new(base: &str, client_id: &str, client_secret: SecretString) -> Self {
        let http = Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .user_agent("board-hubspot/0.1")
            .build()
            .expect("HTTP client builds");
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Result<Value, HubSpotError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        form.extend_from_slice(fields);
        let response = self
            .http
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .map_err(transport)?;
        json_or_error(response).await
    }
}

fn transport(error: reqwest::Error) -> HubSpotError {
    // Never include the URL: it may carry a query with identifiers, and reqwest's
    // Display of the error would print it.
    HubSpotError::Unavailable(if error.is_timeout() {
        "timeout".into()
    } else {
        "connection failed".into()
    })
}

/// Maps HubSpot's error bodies (every field optional) to what to do next.
/// The inputs of a batch write that failed alone: a 207 answer lists the
/// written objects in `results` and the failures in `errors[]` (each naming
/// its inputs in `context.ids`, with a `category` and `message`). An input
/// neither written nor named by an error counts as failed too.
fn failed_inputs(ids: &[u64], answer: &Value) -> Vec<(u64, HubSpotError)> {
    let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) else {
        return Vec::new();
    };
    let written: std::collections::BTreeSet<u64> = answer["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().and_then(|id| id.parse().ok()))
        .collect();
    let error_of = |e: &Value| {
        let message = e["message"].as_str().unwrap_or_default().to_owned();
        let category = e["category"].as_str().unwrap_or_default();
        match category {
            "OBJECT_NOT_FOUND" => HubSpotError::NotFound(message),
            _ => HubSpotError::Rejected {
                status: e["status"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(400),
                category: category.to_owned(),
                message,
            },
        }
    };
    let mut out = Vec::new();
    for id in ids.iter().filter(|id| !written.contains(id)) {
        let named = errors.iter().find(|e| {
            e["context"]["ids"]
                .as_array()
                .is_some_and(|named| named.iter().any(|n| n.as_str() == Some(&id.to_string())))
                || e["id"].as_str() == Some(&id.to_string())
        });
        let error = named.or(errors.first()).map(error_of).unwrap_or_else(|| {
            HubSpotError::Unavailable("batch update left the input unwritten".into())
        });
        out.push((*id, error));
    }
    out
}

/// HubSpot's rate-limit headers, when all three came (none is promised).
fn rate_window(headers: &reqwest::header::HeaderMap) -> Option<RateWindow> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(RateWindow {
        max: u32::try_from(number("x-hubspot-ratelimit-max")?).ok()?,
        remaining: u32::try_from(number("x-hubspot-ratelimit-remaining")?).ok()?,
        interval_ms: number("x-hubspot-ratelimit-interval-milliseconds")?,
    })
}

/// Pages of associations read per object at most (a safety stop).
const MAX_ASSOCIATION_PAGES: usize = 50;

/// How long a 429 of HubSpot's daily limit holds a call back.
pub const DAILY_LIMIT_WAIT_MS: u64 = 3_600_000;

async fn classify(response: Response) -> HubSpotError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| s * 1000);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    classify_parts(status, retry_after, &body)
}

/// A refused code or refresh token. HubSpot's OAuth endpoints answer RFC 6749's
/// `error: invalid_grant` beside their own `status` (`BAD_REFRESH_TOKEN`) and
/// `message` (changelog "New OAuth v3 API endpoints and standardized error
/// responses"); the 2026-03 reference also declares the standard error body
/// (`category`, `message`, `correlationId`), recognised as a fallback.
fn refused_grant(body: &Value) -> bool {
    const REFUSED: [&str; 4] = [
        "BAD_REFRESH_TOKEN",
        "BAD_AUTH_CODE",
        "EXPIRED_AUTH_CODE",
        "INVALID_GRANT",
    ];
    body["error"] == "invalid_grant"
        || [&body["status"], &body["category"], &body["subCategory"]]
            .into_iter()
            .any(|v| v.as_str().is_some_and(|s| REFUSED.contains(&s)))
}

fn classify_parts(status: StatusCode, retry_after: Option<u64>, body: &Value) -> HubSpotError {
    let message = body["message"]
        .as_str()
        .or(body["error_description"].as_str())
        .unwrap_or_default()
        .to_owned();
    let category = body["category"].as_str().unwrap_or_default().to_owned();
    match status {
        StatusCode::BAD_REQUEST if refused_grant(body) => HubSpotError::InvalidGrant(message),
        StatusCode::UNAUTHORIZED => HubSpotError::Unauthorized(message),
        StatusCode::FORBIDDEN => HubSpotError::Forbidden(message),
        StatusCode::NOT_FOUND => HubSpotError::NotFound(message),
        StatusCode::TOO_MANY_REQUESTS => {
            // HubSpot does not promise a `Retry-After`; `policyName` says which
            // limit was hit (usage guidelines). The daily limit resets at the
            // portal's midnight: an hour's wait, not a retry every 10 s.
            let policy_ms = match body["policyName"].as_str() {
                Some("SECONDLY") => 1000,
                Some("DAILY") => DAILY_LIMIT_WAIT_MS,
                _ => 10_000,
            };
            HubSpotError::RateLimited {
                retry_after_ms: retry_after.unwrap_or(policy_ms),
                daily: body["policyName"] == "DAILY",
            }
        }
        s if s.is_server_error() => HubSpotError::Unavailable(format!("{} {message}", s.as_u16())),
        s => HubSpotError::Rejected {
            status: s.as_u16(),
            category,
            message,
        },
    }
}

async fn json_or_error(response: Response) -> Result<Value, HubSpotError> {
    if response.status().is_success() {
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        return response
            .json()
            .await
            .map_err(|_| HubSpotError::Unavailable("malformed response".into()));
    }
    Err(classify(response).await)
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

fn grant(body: Value) -> Result<TokenGrant, HubSpotError> {
    let body: TokenBody = serde_json::from_value(body)
        .map_err(|_| HubSpotError::Unavailable("malformed token response".into()))?;
    Ok(TokenGrant {
        access_token: SecretString::from(body.access_token),
        refresh_token: SecretString::from(body.refresh_token),
        expires_in_seconds: body.expires_in,
    })
}

#[async_trait]
impl HubSpotAuth for HubSpotClient {
    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, HubSpotError> {
        let body = self
            .form(
                "/oauth/2026-03/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                ],
            )
            .await?;
        grant(body)
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant, HubSpotError> {
        let body = self
            .form(
                "/oauth/2026-03/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        grant(body)
    }

    async fn introspect(&self, access_token: &str) -> Result<TokenInfo, HubSpotError> {
        let body = self
            .form(
                "/oauth/2026-03/token/introspect",
                &[("token", access_token), ("token_type_hint", "access_token")],
            )
            .await?;
        if body["active"] != true {
            return Err(HubSpotError::InvalidGrant("token is not active".into()));
        }
        let portal = body["hub_id"]
            .as_u64()
            .and_then(|id| PortalId::new(id).ok())
            .ok_or_else(|| HubSpotError::Unavailable("introspection without hub_id".into()))?;
        let scopes = match &body["scopes"] {
            Value::Array(list) => list
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => body["scope"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        };
        Ok(TokenInfo {
            portal_id: portal,
            hub_domain: body["hub_domain"].as_str().map(str::to_owned),
            user_id: body["user_id"]
                .as_u64()
                .and_then(|id| HubSpotUserId::new(id).ok()),
            user_email: body["user"].as_str().map(str::to_owned),
            scopes,
        })
    }

    async fn revoke(&self, refresh_token: &str) -> Result<(), HubSpotError> {
        // No body is documented for a revoke: any 2xx is success.
        let response = self
            .http
            .post(self.url("/oauth/2026-03/token/revoke"))
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose_secret()),
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await
            .map_err(transport)?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(classify(response).await)
    }

    async fn uninstall(&self, access_token: &str) -> Result<(), HubSpotError> {
        let response = self
            .http
            .delete(self.url("/appinstalls/2026-03/external-install"))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(transport)?;
        json_or_error(response).await.map(|_| ())
    }

    async fn ensure_exclusion_property(
        &self,
        access_token: &str,
    ) -> Result<PropertyState, HubSpotError> {
        let path = format!("/crm/properties/2026-03/deals/{EXCLUSION_PROPERTY}");
        let response = self
            .http
            .get(self.url(&path))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(transport)?;
        match json_or_error(response).await {
            Ok(existing) => return Ok(state_of(&existing)),
            Err(HubSpotError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let definition = json!({
            "name": EXCLUSION_PROPERTY,
            "label": "board連携から除外",
            "type": "bool",
            "fieldType": "booleancheckbox",
            "groupName": "dealinformation",
            "description": "「はい」にした取引はboardに連携されません。",
            "options": [
                {"label": "はい", "value": "true", "displayOrder": 0, "hidden": false},
                {"label": "いいえ", "value": "false", "displayOrder": 1, "hidden": false}
            ]
        });
        let response = self
            .http
            .post(self.url("/crm/properties/2026-03/deals"))
            .bearer_auth(access_token)
            .json(&definition)
            .send()
            .await
            .map_err(transport)?;
        match json_or_error(response).await {
            Ok(created) => Ok(state_of(&created)),
            // Created meanwhile (another board account of the portal): already there is fine.
            Err(HubSpotError::Rejected { status: 409, .. }) => Ok(PropertyState::Ready),
            Err(e) => Err(e),
        }
    }

    async fn app_token(&self) -> Result<SecretString, HubSpotError> {
        let body = self
            .form(
                "/oauth/2026-03/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", JOURNAL_SCOPES),
                ],
            )
            .await?;
        body["access_token"]
            .as_str()
            .map(|t| SecretString::from(t.to_owned()))
            .ok_or_else(|| HubSpotError::Unavailable("token response without access_token".into()))
    }

    async fn ensure_lifecycle_subscription(&self, app_token: &str) -> Result<(), HubSpotError> {
        let path = "/webhooks-journal/subscriptions/2026-03";
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(app_token)
            .send()
            .await
            .map_err(transport)?;
        let existing = json_or_error(response).await?;
        let subscribed = existing["results"].as_array().is_some_and(|all| {
            all.iter().any(|s| {
                s["subscriptionType"] == "APP_LIFECYCLE_EVENT"
                    && s["deletedAt"].is_null()
                    && s["actions"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "APP_UNINSTALL"))
            })
        });
        if subscribed {
            return Ok(());
        }
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(app_token)
            .json(&json!({"subscriptionType": "APP_LIFECYCLE_EVENT",
                          "actions": ["APP_INSTALL", "APP_UNINSTALL"]}))
            .send()
            .await
            .map_err(transport)?;
        json_or_error(response).await.map(|_| ())
    }

    async fn journal_entry(
        &self,
        app_token: &str,
        start: JournalStart<'_>,
    ) -> Result<Option<JournalEntry>, HubSpotError> {
        let path = match start {
            JournalStart::After(offset) => {
                format!("/webhooks-journal/journal/2026-03/offset/{offset}/next")
            }
            JournalStart::Earliest => "/webhooks-journal/journal/2026-03/earliest".to_owned(),
        };
        let response = self
            .http
            .get(self.url(&path))
            .bearer_auth(app_token)
            .send()
            .await
            .map_err(transport)?;
        let pointer = json_or_error(response).await?;
        let (Some(offset), Some(url)) =
            (pointer["currentOffset"].as_str(), pointer["url"].as_str())
        else {
            // 204 or an answer without an entry: nothing new yet.
            return Ok(None);
        };
        // The entry's file is behind a pre-signed URL: no Authorization header.
        let response = self.http.get(url).send().await.map_err(transport)?;
        if !response.status().is_success() {
            // Expired or refused: read the entry again on the next poll.
            return Err(HubSpotError::Unavailable(format!(
                "journal file answered {}",
                response.status().as_u16()
            )));
        }
        let file: Value = response
            .json()
            .await
            .map_err(|_| HubSpotError::Unavailable("journal file is not JSON".into()))?;
        Ok(Some(JournalEntry {
            offset: offset.to_owned(),
            events: lifecycle_events(&file),
        }))
    }
}

/// The client-credentials scopes the journal and its subscriptions take.
const JOURNAL_SCOPES: &str = "developer.webhooks_journal.read \
     developer.webhooks_journal.subscriptions.read \
     developer.webhooks_journal.subscriptions.write";

/// The app lifecycle events of a journal file. Its layout is not documented:
/// a list of events, an object holding one (`results`, `events`) or a single
/// event are all read; anything else in it is skipped.
fn lifecycle_events(file: &Value) -> Vec<LifecycleEvent> {
    let events: Vec<&Value> = match file {
        Value::Array(all) => all.iter().collect(),
        Value::Object(o) => match o.get("results").or_else(|| o.get("events")) {
            Some(Value::Array(all)) => all.iter().collect(),
            _ => vec![file],
        },
        _ => Vec::new(),
    };
    events
        .into_iter()
        .filter(|e| {
            e["subscriptionType"] == "APP_LIFECYCLE_EVENT"
                || e["eventType"] == "APP_LIFECYCLE_EVENT"
        })
        .filter_map(|e| {
            let portal = e["portalId"].as_u64().and_then(|p| PortalId::new(p).ok())?;
            let action = e["action"].as_str().unwrap_or_default();
            Some(LifecycleEvent {
                portal_id: portal,
                uninstalled: matches!(action, "APP_UNINSTALL" | "UNINSTALL"),
                occurred_at_ms: e["occurredAt"].as_i64(),
            })
        })
        .collect()
}

fn state_of(property: &Value) -> PropertyState {
    match property["type"].as_str() {
        Some("bool") => PropertyState::Ready,
        other => PropertyState::WrongType {
            found: other.unwrap_or("unknown").to_owned(),
        },
    }
}

/// In-place retries of an idempotent call: a 5xx or a refused connection is
/// tried again after 100–300 ms, a 429 asking for at most a second after that
/// wait; twice at most. A brief fault then costs one slower call instead of
/// the whole job's redelivery; anything longer goes back to the queue.
const IN_PLACE_RETRIES: u32 = 2;

fn in_place_delay(error: &HubSpotError) -> Option<Duration> {
    let jitter = Duration::from_millis(rand::random_range(0..200));
    match error {
        HubSpotError::Unavailable(reason) if reason != "timeout" => {
            Some(Duration::from_millis(100) + jitter)
        }
        HubSpotError::RateLimited { retry_after_ms, .. } if *retry_after_ms <= 1000 => {
            Some(Duration::from_millis(*retry_after_ms) + jitter)
        }
        _ => None,
    }
}

impl HubSpotClient {
    /// Sends what `request` builds (again for each attempt): see `IN_PLACE_RETRIES`.
    async fn idempotent(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, HubSpotError> {
        self.idempotent_metered(request)
            .await
            .map(|(value, _)| value)
    }

    /// `idempotent`, with the rate-limit window the answer reported.
    async fn idempotent_metered(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(Value, Option<RateWindow>), HubSpotError> {
        let mut attempt = 0;
        loop {
            let result = match request().send().await {
                Ok(response) => {
                    let rate = rate_window(response.headers());
                    json_or_error(response).await.map(|value| (value, rate))
                }
                Err(error) => Err(transport(error)),
            };
            match result {
                Err(error) if attempt < IN_PLACE_RETRIES => match in_place_delay(&error) {
                    Some(delay) => {
                        attempt += 1;
                        tracing::debug!(%error, attempt, "retrying an idempotent HubSpot call in place");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(error),
                },
                other => return other,
            }
        }
    }

    /// A POST that is safe to repeat (reads, searches, batch updates).
    async fn post_idempotent(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> Result<Value, HubSpotError> {
        self.idempotent(|| self.http.post(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    /// `post_idempotent`, with the rate-limit window the answer reported.
    async fn post_metered(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> Result<(Value, Option<RateWindow>), HubSpotError> {
        self.idempotent_metered(|| self.http.post(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    async fn get_json(&self, token: &str, path: &str) -> Result<Value, HubSpotError> {
        self.idempotent(|| self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// Follows `paging.next.after` to the end.
    async fn all_pages(&self, token: &str, path: &str) -> Result<Vec<Value>, HubSpotError> {
        let mut results = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let separator = if path.contains('?') { '&' } else { '?' };
            let page_path = match &after {
                Some(a) => format!("{path}{separator}after={a}"),
                None => path.to_owned(),
            };
            let body = self.get_json(token, &page_path).await?;
            results.extend(body["results"].as_array().cloned().unwrap_or_default());
            match body["paging"]["next"]["after"].as_str() {
                Some(next) if Some(next) != after.as_deref() => after = Some(next.to_owned()),
                _ => return Ok(results),
            }
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[async_trait]
impl HubSpotCrm for HubSpotClient {
    async fn account_details(&self, token: &str) -> Result<HsAccount, HubSpotError> {
        let body = self
            .get_json(token, "/account-info/2026-03/details")
            .await?;
        let utc_offset_ms = body["utcOffsetMilliseconds"].as_i64().ok_or_else(|| {
            HubSpotError::Unavailable("account details without utcOffsetMilliseconds".into())
        })?;
        Ok(HsAccount {
            time_zone: text(&body["timeZone"]),
            utc_offset_ms,
        })
    }

    async fn pipelines(&self, token: &str) -> Result<Vec<HsPipeline>, HubSpotError> {
        let body = self.get_json(token, "/crm/pipelines/2026-03/deals").await?;
        let mut pipelines: Vec<HsPipeline> = body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["archived"] != true)
            .filter_map(|p| {
                let mut stages: Vec<HsStage> = p["stages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["archived"] != true)
                    .filter_map(|s| {
                        Some(HsStage {
                            id: StageId::new(text(&s["id"])).ok()?,
                            label: text(&s["label"]),
                            display_order: s["displayOrder"].as_i64().unwrap_or(0),
                        })
                    })
                    .collect();
                stages.sort_by_key(|s| s.display_order);
                Some(HsPipeline {
                    id: PipelineId::new(text(&p["id"])).ok()?,
                    label: text(&p["label"]),
                    display_order: p["displayOrder"].as_i64().unwrap_or(0),
                    stages,
                })
            })
            .collect();
        pipelines.sort_by_key(|p| p.display_order);
        Ok(pipelines)
    }

    async fn owners(&self, token: &str) -> Result<Vec<HsOwner>, HubSpotError> {
        let results = self
            .all_pages(token, "/crm/owners/2026-03?limit=100")
            .await?;
        Ok(results
            .iter()
            .filter(|o| o["archived"] != true)
            .filter_map(|o| {
                let name = format!("{} {}", text(&o["lastName"]), text(&o["firstName"]))
                    .trim()
                    .to_owned();
                Some(HsOwner {
                    id: text(&o["id"]).parse::<OwnerId>().ok()?,
                    email: text(&o["email"]),
                    name,
                })
            })
            .collect())
    }

    async fn teams(&self, token: &str) -> Result<Vec<HsTeam>, HubSpotError> {
        let body = self
            .get_json(token, "/settings/users/2026-03/teams")
            .await?;
        Ok(body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| HsTeam {
                id: text(&t["id"]),
                name: text(&t["name"]),
            })
            .collect())
    }

    async fn deal_property(
        &self,
        token: &str,
        name: &str,
    ) -> Result<Option<HsProperty>, HubSpotError> {
        match self
            .get_json(token, &format!("/crm/properties/2026-03/deals/{name}"))
            .await
        {
            Ok(p) => Ok(Some(HsProperty {
                name: text(&p["name"]),
                label: text(&p["label"]),
                kind: text(&p["type"]),
                options: p["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|o| o["hidden"] != true)
                    .map(|o| HsOption {
                        label: text(&o["label"]),
                        value: text(&o["value"]),
                    })
                    .collect(),
            })),
            Err(HubSpotError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// HubSpot's object type names on its paths.
fn plural(object_type: crate::domain::HubSpotObjectType) -> &'static str {
    use crate::domain::HubSpotObjectType as T;
    match object_type {
        T::Deal => "deals",
        T::Company => "companies",
        T::Contact => "contacts",
    }
}

use crate::ports::HUBSPOT_BATCH_LIMIT as BATCH_LIMIT;

#[async_trait]
impl HubSpotWrite for HubSpotClient {
    async fn batch_update(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        updates: &[(u64, std::collections::BTreeMap<String, String>)],
    ) -> Result<Metered<Vec<(u64, HubSpotError)>>, HubSpotError> {
        let mut failed = Vec::new();
        let mut rate = None;
        for chunk in updates.chunks(BATCH_LIMIT) {
            let inputs: Vec<Value> = chunk
                .iter()
                .map(|(id, properties)| json!({"id": id.to_string(), "properties": properties}))
                .collect();
            let path = format!("/crm/objects/2026-03/{}/batch/update", plural(object_type));
            // Setting the same values again is harmless: idempotent.
            let body = json!({ "inputs": inputs });
            let (answer, window) = self.post_metered(token, &path, &body).await?;
            rate = window.or(rate);
            let ids: Vec<u64> = chunk.iter().map(|(id, _)| *id).collect();
            failed.extend(failed_inputs(&ids, &answer));
        }
        Ok(Metered {
            value: failed,
            rate,
        })
    }

    async fn create_note(
        &self,
        token: &str,
        body: &str,
        timestamp_ms: i64,
        associations: &[crate::domain::HubSpotRef],
    ) -> Result<u64, HubSpotError> {
        use crate::domain::HubSpotObjectType as T;
        let associations: Vec<Value> = associations
            .iter()
            .map(|to| {
                // HubSpot-defined note → deal / company / contact association types.
                let type_id = match to.object_type {
                    T::Deal => 214,
                    T::Company => 190,
                    T::Contact => 202,
                };
                json!({"to": {"id": to.id.to_string()},
                       "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]})
            })
            .collect();
        let response = self
            .http
            .post(self.url("/crm/objects/2026-03/notes"))
            .bearer_auth(token)
            .json(&json!({
                "properties": {"hs_note_body": body, "hs_timestamp": timestamp_ms.to_string()},
                "associations": associations,
            }))
            .send()
            .await
            .map_err(transport)?;
        let created = json_or_error(response).await?;
        text(&created["id"])
            .parse()
            .map_err(|_| HubSpotError::Unavailable("note created without an id".into()))
    }

    async fn find_note(&self, token: &str, marker: &str) -> Result<Option<u64>, HubSpotError> {
        let query = json!({
            "filterGroups": [{"filters": [{"propertyName": "hs_note_body", "operator": "CONTAINS_TOKEN", "value": marker}]}],
            "properties": ["hs_note_body"],
            "limit": 10,
        });
        let body = self
            .post_idempotent(token, "/crm/objects/2026-03/notes/search", &query)
            .await?;
        Ok(body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| {
                n["properties"]["hs_note_body"]
                    .as_str()
                    .is_some_and(|b| b.contains(marker))
            })
            .and_then(|n| text(&n["id"]).parse().ok()))
    }
}

/// An object of HubSpot's answers (`{"id", "properties"}`), null properties left out.
fn crm_object(object: &Value) -> Option<CrmObject> {
    let id = text(&object["id"]).parse::<u64>().ok()?;
    let properties = object["properties"]
        .as_object()
        .map(|p| {
            p.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), text(v)))
                .collect()
        })
        .unwrap_or_default();
    Some(CrmObject { id, properties })
}

#[async_trait]
impl HubSpotBatch for HubSpotClient {
    async fn batch_read(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        ids: &[u64],
        properties: &[&str],
    ) -> Result<Metered<(Vec<CrmObject>, Vec<u64>)>, HubSpotError> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let mut rate = None;
        for chunk in ids.chunks(BATCH_LIMIT) {
            let body = json!({
                "inputs": chunk.iter().map(|id| json!({"id": id.to_string()})).collect::<Vec<_>>(),
                "properties": properties,
            });
            let path = format!("/crm/objects/2026-03/{}/batch/read", plural(object_type));
            // 207: some ids were not found; the rest are in `results`.
            let (body, window) = self.post_metered(token, &path, &body).await?;
            rate = window.or(rate);
            found.extend(
                body["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(crm_object),
            );
            for error in body["errors"].as_array().into_iter().flatten() {
                for id in error["context"]["ids"].as_array().into_iter().flatten() {
                    if let Ok(id) = text(id).parse::<u64>() {
                        missing.push(id);
                    }
                }
            }
        }
        Ok(Metered {
            value: (found, missing),
            rate,
        })
    }

    async fn list_page(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        properties: &[&str],
        after: Option<&str>,
    ) -> Result<Metered<(Vec<CrmObject>, Option<String>)>, HubSpotError> {
        // GET /crm/objects/{version}/{objectType}?limit=100&after=&properties=
        // (https://developers.hubspot.com/docs/api-reference/2026-03/crm/objects/list).
        let query = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &BATCH_LIMIT.to_string());
            query.append_pair("properties", &properties.join(","));
            query.append_pair("archived", "false");
            if let Some(after) = after {
                query.append_pair("after", after);
            }
            query.finish()
        };
        let path = format!("/crm/objects/2026-03/{}?{query}", plural(object_type));
        let (body, rate) = self
            .idempotent_metered(|| self.http.get(self.url(&path)).bearer_auth(token))
            .await?;
        let objects = body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(crm_object)
            .collect();
        let next = body["paging"]["next"]["after"]
            .as_str()
            .filter(|next| Some(*next) != after)
            .map(str::to_owned);
        Ok(Metered {
            value: (objects, next),
            rate,
        })
    }

    async fn batch_associations(
        &self,
        token: &str,
        from: crate::domain::HubSpotObjectType,
        to: crate::domain::HubSpotObjectType,
        ids: &[u64],
    ) -> Result<Metered<std::collections::BTreeMap<u64, Vec<Associated>>>, HubSpotError> {
        let mut rate = None;
        let mut out: std::collections::BTreeMap<u64, Vec<Associated>> =
            std::collections::BTreeMap::new();
        let path = format!(
            "/crm/associations/2026-03/{}/{}/batch/read",
            plural(from),
            plural(to)
        );
        // Each result pages on its own (`results[].paging.next.after`): the
        // next request names those objects again with their `after`.
        let mut inputs: Vec<Value> = ids.iter().map(|id| json!({"id": id.to_string()})).collect();
        let mut rounds = 0;
        while !inputs.is_empty() {
            rounds += 1;
            if rounds > MAX_ASSOCIATION_PAGES {
                return Err(HubSpotError::Unavailable(
                    "association paging did not end".into(),
                ));
            }
            let mut next_inputs = Vec::new();
            for chunk in inputs.chunks(BATCH_LIMIT) {
                let body = json!({"inputs": chunk});
                let (body, window) = self.post_metered(token, &path, &body).await?;
                rate = window.or(rate);
                for result in body["results"].as_array().into_iter().flatten() {
                    let Ok(from_id) = text(&result["from"]["id"]).parse::<u64>() else {
                        continue;
                    };
                    if let Some(after) = result["paging"]["next"]["after"].as_str() {
                        next_inputs.push(json!({"id": from_id.to_string(), "after": after}));
                    }
                    let targets = result["to"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| {
                            Some(Associated {
                                id: text(&t["toObjectId"]).parse().ok()?,
                                type_ids: t["associationTypes"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(|a| a["typeId"].as_u64().map(|v| v as u32))
                                    .collect(),
                            })
                        })
                        .collect::<Vec<_>>();
                    out.entry(from_id).or_default().extend(targets);
                }
            }
            inputs = next_inputs;
        }
        Ok(Metered { value: out, rate })
    }
}

#[async_trait]
impl HubSpotSearch for HubSpotClient {
    async fn modified_since(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        after_ms: i64,
        page: Option<&str>,
    ) -> Result<Metered<ModifiedPage>, HubSpotError> {
        // Contacts keep their last change in `lastmodifieddate` (their default
        // properties in HubSpot's CRM search reference); deals and companies in
        // `hs_lastmodifieddate`.
        let modified_property = match object_type {
            crate::domain::HubSpotObjectType::Contact => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        };
        let mut body = json!({
            "filterGroups": [{"filters": [{"propertyName": modified_property, "operator": "GT", "value": after_ms.to_string()}]}],
            "sorts": [{"propertyName": modified_property, "direction": "ASCENDING"}],
            "properties": [modified_property],
            "limit": 100,
        });
        if let Some(after) = page {
            body["after"] = json!(after);
        }
        let path = format!("/crm/objects/2026-03/{}/search", plural(object_type));
        let (body, rate) = self.post_metered(token, &path, &body).await?;
        let mut out = ModifiedPage::default();
        for result in body["results"].as_array().into_iter().flatten() {
            if let Ok(id) = text(&result["id"]).parse::<u64>() {
                out.ids.push(id);
            }
            let modified = crate::domain::dates::parse_time_ms(&text(
                &result["properties"][modified_property],
            ));
            out.newest_ms = out.newest_ms.max(modified);
        }
        out.next = body["paging"]["next"]["after"].as_str().map(str::to_owned);
        Ok(Metered { value: out, rate })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::classify_parts;
    use crate::ports::HubSpotError;

    #[test]
    fn refused_grants_are_recognised_in_both_error_bodies() {
        let rfc = serde_json::json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token",
            "error": "invalid_grant", "error_description": "missing or invalid refresh token"});
        let standard = serde_json::json!({"status": "error", "message": "refresh token is invalid",
            "correlationId": "c-1", "category": "BAD_REFRESH_TOKEN"});
        for body in [rfc, standard] {
            assert!(
                matches!(
                    classify_parts(StatusCode::BAD_REQUEST, None, &body),
                    HubSpotError::InvalidGrant(m) if !m.is_empty()
                ),
                "{body}"
            );
        }
        let validation = serde_json::json!({"status": "error", "category": "VALIDATION_ERROR", "message": "bad"});
        assert!(matches!(
            classify_parts(StatusCode::BAD_REQUEST, None, &validation),
            HubSpotError::Rejected { status: 400, .. }
        ));
    }

    #[test]
    fn rate_limits_wait_by_policy_when_no_retry_after_comes() {
        let wait = |policy: &str, header: Option<u64>| match classify_parts(
            StatusCode::TOO_MANY_REQUESTS,
            header,
            &serde_json::json!({"status": "error", "errorType": "RATE_LIMIT", "policyName": policy}),
        ) {
            HubSpotError::RateLimited { retry_after_ms, .. } => retry_after_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait("SECONDLY", None), 1000);
        assert_eq!(wait("TEN_SECONDLY_ROLLING", None), 10_000);
        assert_eq!(wait("DAILY", None), super::DAILY_LIMIT_WAIT_MS);
        assert_eq!(
            wait("TEN_SECONDLY_ROLLING", Some(2000)),
            2000,
            "a Retry-After, when sent, wins"
        );
    }
}
