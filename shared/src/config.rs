//! Typed configuration from the environment. Secrets are `SecretString`s: they
//! cannot be printed by `{:?}` and are exposed only where they are used.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// How board's JWTs are signed: chosen per deployment, never by the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
}

/// Where state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In-process store and queue (the local stack's default).
    Memory,
    /// DynamoDB and SQS (`AWS_ENDPOINT_URL` points them at moto locally).
    Aws,
}

#[derive(Clone)]
pub struct Settings {
    pub store: StoreKind,
    /// The origin HubSpot calls; signatures are checked against it.
    pub public_base_url: String,
    pub hubspot_client_id: String,
    pub hubspot_client_secret: SecretString,
    /// The client secret before a rotation in HubSpot: signatures made with it
    /// are still accepted until it is removed (never used to call HubSpot).
    pub hubspot_client_secret_previous: Option<SecretString>,
    pub hubspot_app_id: u64,
    /// Base of HubSpot's API (`https://api.hubapi.com`, or the sandbox).
    pub hubspot_api_base: String,
    /// Where the admin's browser is sent to consent.
    pub hubspot_authorize_url: String,
    /// Base of board's API v1.
    pub board_api_base: String,
    /// Each account's board API key and token.
    pub board_credentials: crate::adapters::board::BoardCredentials,
    /// board's settings screen, where every OAuth flow ends.
    pub board_settings_url: String,
    /// Links to projects and drafts in board's web app.
    pub board_app_url: String,
    /// HS256 key for board's JWTs (local); production uses RS256 via JWKS.
    pub board_jwt_secret: SecretString,
    /// The one algorithm board's JWTs are verified with in this deployment.
    pub board_jwt_algorithm: JwtAlgorithm,
    /// board's public keys (a JWKS document) for RS256.
    pub board_jwks: Option<String>,
    /// AES-256-GCM key for tokens at rest, base64 (local); KMS in production.
    pub token_key: SecretString,
    /// The key before the last rotation: still opens what it sealed, never seals.
    pub token_key_previous: Option<SecretString>,
    pub table_name: String,
    pub work_queue_url: Option<String>,
    pub dead_letter_queue_url: Option<String>,
    /// The queue board's producer writes change events to, and its DLQ.
    pub board_events_queue_url: Option<String>,
    pub board_events_dlq_url: Option<String>,
    /// The bulk lane (SPEC §10): where board's producer sends imports and mass
    /// updates, read 100 at a time with a batching window; and its DLQ.
    pub board_bulk_events_queue_url: Option<String>,
    pub board_bulk_events_dlq_url: Option<String>,
    /// Webhook bodies above this are refused with 413.
    pub max_webhook_bytes: usize,
    /// Consecutive authentication failures (one per 10 minutes) that suspend a connection.
    pub suspend_after: u32,
    /// board's API limit per account (about 3 per second); the worker uses 80 %.
    pub board_rate_per_second: u32,
    /// Tenants (`account:<id>`, `portal:<id>`: the queues' `MessageGroupId`)
    /// whose background work is paused by on-call (`PAUSED_TENANTS`, comma
    /// separated): their messages wait in the queue, nothing of theirs runs.
    pub paused_tenants: std::collections::BTreeSet<String>,
    /// CloudWatch namespace of the worker's embedded metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// How long history entries and decisions are kept (TTL removes them later).
    pub history_retention: time::Duration,
    pub decision_retention: time::Duration,
}

/// The scopes the app asks for (SPEC §3.1).
pub const HUBSPOT_SCOPES: [&str; 11] = [
    "oauth",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.objects.owners.read",
    "settings.users.teams.read",
];

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("store", &self.store)
            .field("public_base_url", &self.public_base_url)
            .field("hubspot_client_id", &self.hubspot_client_id)
            .field("hubspot_client_secret", &"[redacted]")
            .field("hubspot_app_id", &self.hubspot_app_id)
            .field("hubspot_api_base", &self.hubspot_api_base)
            .field("board_api_base", &self.board_api_base)
            .field("board_settings_url", &self.board_settings_url)
            .field("board_jwt_secret", &"[redacted]")
            .field("token_key", &"[redacted]")
            .field("table_name", &self.table_name)
            .field("work_queue_url", &self.work_queue_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Development defaults (ARCHITECTURE.md's dev credentials); never used when
/// running in Lambda, where every secret must be configured.
pub mod dev {
    pub const HUBSPOT_CLIENT_ID: &str = "sandbox-client-id";
    pub const HUBSPOT_CLIENT_SECRET: &str = "sandbox-client-secret";
    pub const HUBSPOT_APP_ID: u64 = 777;
    pub const BOARD_JWT_SECRET: &str = "dev-only-secret";
    /// "dev-only-token-key-32-bytes-long", base64: obviously not a production key.
    pub const TOKEN_KEY: &str = "ZGV2LW9ubHktdG9rZW4ta2V5LTMyLWJ5dGVzLWxvbmc=";
}

impl Settings {
    /// Reads the environment through `get` (so tests need not touch process env).
    /// `local` allows the dev defaults for secrets; Lambda passes `false`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        local: bool,
    ) -> Result<Self, ConfigError> {
        let text = |name: &'static str, default: Option<&str>| -> Result<String, ConfigError> {
            get(name)
                .filter(|v| !v.is_empty())
                .or_else(|| default.map(str::to_owned))
                .ok_or(ConfigError::Missing(name))
        };
        let secret = |name: &'static str, default: &str| -> Result<SecretString, ConfigError> {
            let value = text(name, local.then_some(default))?;
            Ok(SecretString::from(value))
        };
        let store = match get("STORE").as_deref() {
            None | Some("") | Some("memory") => {
                if local {
                    StoreKind::Memory
                } else {
                    StoreKind::Aws
                }
            }
            Some("dynamodb") | Some("aws") => StoreKind::Aws,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "STORE",
                    reason: format!("{other:?}: use memory or dynamodb"),
                });
            }
        };
        let public_base_url = text("PUBLIC_BASE_URL", local.then_some("http://127.0.0.1:3000"))?
            .trim_end_matches('/')
            .to_owned();
        let sandbox = |path: &str| format!("{public_base_url}{path}");
        let hubspot_app_id = text("HUBSPOT_APP_ID", Some(&dev::HUBSPOT_APP_ID.to_string()))?
            .parse()
            .map_err(|_| ConfigError::Invalid {
                name: "HUBSPOT_APP_ID",
                reason: "not a number".into(),
            })?;
        let max_webhook_bytes = text("MAX_WEBHOOK_BYTES", Some("1048576"))?
            .parse()
            .map_err(|_| ConfigError::Invalid {
                name: "MAX_WEBHOOK_BYTES",
                reason: "not a number".into(),
            })?;
        let suspend_after = text("SUSPEND_AFTER", Some("5"))?
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(ConfigError::Invalid {
                name: "SUSPEND_AFTER",
                reason: "a positive integer".into(),
            })?;
        let board_rate_per_second = text("BOARD_RATE_PER_SECOND", Some("3"))?
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or(ConfigError::Invalid {
                name: "BOARD_RATE_PER_SECOND",
                reason: "requests per second, 1 to 1000".into(),
            })?;
        let board_jwt_algorithm = match get("BOARD_JWT_ALGORITHM").as_deref() {
            None | Some("") | Some("HS256") => JwtAlgorithm::Hs256,
            Some("RS256") => JwtAlgorithm::Rs256,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "BOARD_JWT_ALGORITHM",
                    reason: format!("{other:?}: use HS256 or RS256"),
                });
            }
        };
        let board_jwks = get("BOARD_JWKS").filter(|v| !v.is_empty());
        if board_jwt_algorithm == JwtAlgorithm::Rs256 && board_jwks.is_none() {
            return Err(ConfigError::Missing("BOARD_JWKS"));
        }
        let board_credentials =
            match get("BOARD_CREDENTIALS").filter(|v| !v.is_empty()) {
                Some(json) => crate::adapters::board::BoardCredentials::from_json(&json).map_err(
                    |reason| ConfigError::Invalid {
                        name: "BOARD_CREDENTIALS",
                        reason,
                    },
                )?,
                None if local => crate::adapters::board::BoardCredentials::SandboxPattern,
                None => return Err(ConfigError::Missing("BOARD_CREDENTIALS")),
            };
        let days = |name: &'static str, default: &str| -> Result<time::Duration, ConfigError> {
            text(name, Some(default))?
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .map(time::Duration::days)
                .ok_or(ConfigError::Invalid {
                    name,
                    reason: "days between 1 and 3650".into(),
                })
        };
        let history_retention = days("HISTORY_RETENTION_DAYS", "180")?;
        let decision_retention = days("DECISION_RETENTION_DAYS", "30")?;
        let paused_tenants = get("PAUSED_TENANTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let settings = Self {
            paused_tenants,
            metrics_namespace: text("METRICS_NAMESPACE", Some("board-hubspot-local"))?,
            history_retention,
            decision_retention,
            board_credentials,
            board_jwt_algorithm,
            board_jwks,
            suspend_after,
            board_rate_per_second,
            store,
            hubspot_client_id: text("HUBSPOT_CLIENT_ID", local.then_some(dev::HUBSPOT_CLIENT_ID))?,
            hubspot_client_secret: secret("HUBSPOT_CLIENT_SECRET", dev::HUBSPOT_CLIENT_SECRET)?,
            hubspot_client_secret_previous: get("HUBSPOT_CLIENT_SECRET_PREVIOUS")
                .filter(|v| !v.is_empty())
                .map(SecretString::from),
            hubspot_app_id,
            hubspot_api_base: text(
                "HUBSPOT_API_BASE",
                local.then(|| sandbox("/_sandbox/hubspot")).as_deref(),
            )?,
            hubspot_authorize_url: text(
                "HUBSPOT_AUTHORIZE_URL",
                Some(&if local {
                    sandbox("/_sandbox/hubspot/oauth/authorize")
                } else {
                    "https://app.hubspot.com/oauth/authorize".into()
                }),
            )?,
            board_api_base: text(
                "BOARD_API_BASE",
                local.then(|| sandbox("/_sandbox/board/v1")).as_deref(),
            )?,
            board_settings_url: text(
                "BOARD_SETTINGS_URL",
                local
                    .then(|| sandbox("/_sandbox/board/settings/integrations"))
                    .as_deref(),
            )?,
            board_app_url: text(
                "BOARD_APP_URL",
                local.then(|| sandbox("/_sandbox/board")).as_deref(),
            )?,
            board_jwt_secret: match board_jwt_algorithm {
                JwtAlgorithm::Hs256 => secret("BOARD_JWT_SECRET", dev::BOARD_JWT_SECRET)?,
                // Not used with RS256; an empty secret cannot verify anything.
                JwtAlgorithm::Rs256 => SecretString::from(String::new()),
            },
            token_key: secret("TOKEN_KEY", dev::TOKEN_KEY)?,
            token_key_previous: get("TOKEN_KEY_PREVIOUS")
                .filter(|v| !v.is_empty())
                .map(SecretString::from),
            table_name: text("TABLE_NAME", Some("board-hubspot"))?,
            work_queue_url: get("WORK_QUEUE_URL").filter(|v| !v.is_empty()),
            dead_letter_queue_url: get("DEAD_LETTER_QUEUE_URL").filter(|v| !v.is_empty()),
            board_events_queue_url: get("BOARD_EVENTS_QUEUE_URL").filter(|v| !v.is_empty()),
            board_events_dlq_url: get("BOARD_EVENTS_DLQ_URL").filter(|v| !v.is_empty()),
            board_bulk_events_queue_url: get("BOARD_BULK_EVENTS_QUEUE_URL")
                .filter(|v| !v.is_empty()),
            board_bulk_events_dlq_url: get("BOARD_BULK_EVENTS_DLQ_URL").filter(|v| !v.is_empty()),
            max_webhook_bytes,
            public_base_url,
        };
        crate::adapters::crypto::AesGcmCipher::from_base64(&settings.token_key).map_err(|e| {
            ConfigError::Invalid {
                name: "TOKEN_KEY",
                reason: e.to_string(),
            }
        })?;
        if let Some(previous) = &settings.token_key_previous {
            crate::adapters::crypto::AesGcmCipher::from_base64(previous).map_err(|e| {
                ConfigError::Invalid {
                    name: "TOKEN_KEY_PREVIOUS",
                    reason: e.to_string(),
                }
            })?;
        }
        if settings.store == StoreKind::Aws && !local && settings.work_queue_url.is_none() {
            return Err(ConfigError::Missing("WORK_QUEUE_URL"));
        }
        Ok(settings)
    }

    /// From the process environment; inside Lambda the dev defaults are off.
    pub fn from_env() -> Result<Self, ConfigError> {
        let local = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none();
        Self::from_lookup(|name| std::env::var(name).ok(), local)
    }

    /// Where HubSpot sends the admin's browser back (registered in the app).
    pub fn oauth_redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_base_url)
    }

    pub fn client_secret_bytes(&self) -> &[u8] {
        self.hubspot_client_secret.expose_secret().as_bytes()
    }

    /// The secrets HubSpot's signatures are checked with: the current one, then
    /// the previous one while a rotation is under way.
    pub fn signing_secrets(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.hubspot_client_secret)
            .chain(self.hubspot_client_secret_previous.as_ref())
            .map(|s| s.expose_secret().as_bytes())
    }

    /// Accepts what `check` accepts with any signing secret; otherwise the
    /// current secret's verdict.
    pub fn verify_signed<E>(&self, check: impl Fn(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let current = check(self.client_secret_bytes());
        if current.is_ok() {
            return current;
        }
        if self
            .signing_secrets()
            .skip(1)
            .any(|secret| check(secret).is_ok())
        {
            return Ok(());
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn local_runs_get_the_dev_defaults_and_lambda_does_not() {
        let empty: HashMap<&str, &str> = HashMap::new();
        let local = Settings::from_lookup(|n| empty.get(n).map(|v| v.to_string()), true).unwrap();
        assert_eq!(local.store, StoreKind::Memory);
        assert_eq!(local.hubspot_client_id, "sandbox-client-id");
        assert_eq!(
            local.hubspot_api_base,
            "http://127.0.0.1:3000/_sandbox/hubspot"
        );
        let lambda = Settings::from_lookup(|n| empty.get(n).map(|v| v.to_string()), false);
        assert!(matches!(lambda, Err(ConfigError::Missing(_))));
    }

    #[test]
    fn secrets_never_print() {
        let env = HashMap::from([
            ("HUBSPOT_CLIENT_SECRET", "s3cr3t-value"),
            ("BOARD_JWT_SECRET", "jwt-s3cr3t"),
        ]);
        let settings = Settings::from_lookup(|n| env.get(n).map(|v| v.to_string()), true).unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert_eq!(settings.client_secret_bytes(), b"s3cr3t-value");
    }

    #[test]
    fn during_a_client_secret_rotation_both_secrets_verify_and_only_the_current_signs() {
        let env = HashMap::from([
            ("HUBSPOT_CLIENT_SECRET", "new-secret"),
            ("HUBSPOT_CLIENT_SECRET_PREVIOUS", "old-secret"),
        ]);
        let settings = Settings::from_lookup(|n| env.get(n).map(|v| v.to_string()), true).unwrap();
        let made_with =
            |secret: &'static [u8]| move |s: &[u8]| (s == secret).then_some(()).ok_or(());
        assert_eq!(settings.verify_signed(made_with(b"new-secret")), Ok(()));
        assert_eq!(settings.verify_signed(made_with(b"old-secret")), Ok(()));
        assert_eq!(settings.verify_signed(made_with(b"other")), Err(()));
        assert_eq!(settings.client_secret_bytes(), b"new-secret");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("old-secret"), "{printed}");
    }

    #[test]
    fn an_unknown_store_is_refused() {
        let env = HashMap::from([("STORE", "postgres")]);
        assert!(matches!(
            Settings::from_lookup(|n| env.get(n).map(|v| v.to_string()), true),
            Err(ConfigError::Invalid { name: "STORE", .. })
        ));
    }
}
