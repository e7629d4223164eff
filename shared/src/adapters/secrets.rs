//! Production secrets, read once at cold start: one Secrets Manager secret (a
//! JSON object of strings) and the token key, a KMS data key stored wrapped in
//! that secret and unwrapped with `kms:Decrypt`. Nothing secret is ever read
//! from the environment inside Lambda.

use std::collections::HashMap;

use anyhow::{Context, bail};
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Settings;

/// The names a secret may carry; each is read only from the secret.
/// `BOARD_JWKS` is public, but a JWKS with a few keys or `x5c` chains outgrows
/// Lambda's 4 KB of environment: it lives in the secret too.
pub const SECRET_NAMES: [&str; 7] = [
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_CLIENT_SECRET_PREVIOUS",
    "BOARD_JWT_SECRET",
    "BOARD_JWKS",
    "BOARD_CREDENTIALS",
    "TOKEN_KEY",
    "TOKEN_KEY_PREVIOUS",
];

/// The secret's fields holding KMS-wrapped data keys, and what they unwrap to.
const WRAPPED_KEYS: [(&str, &str); 2] = [
    ("TOKEN_DATA_KEY", "TOKEN_KEY"),
    ("TOKEN_DATA_KEY_PREVIOUS", "TOKEN_KEY_PREVIOUS"),
];

/// Encryption context every token data key is generated and unwrapped with:
/// a data key made for something else does not unwrap here.
pub const KMS_CONTEXT: (&str, &str) = ("purpose", "board-hubspot/token-key");

pub struct SecretSource {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub kms: aws_sdk_kms::Client,
    /// The secret's ARN (`SECRETS_ARN`).
    pub secret_id: String,
    /// The token key's KMS key (`TOKEN_KMS_KEY_ID`): unwrapping is pinned to it.
    pub kms_key_id: String,
}

impl SecretSource {
    pub fn new(sdk: &aws_config::SdkConfig, secret_id: String, kms_key_id: String) -> Self {
        Self {
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            secret_id,
            kms_key_id,
        }
    }

    /// The secret's values by name, with the wrapped data keys unwrapped.
    pub async fn fetch(&self) -> anyhow::Result<HashMap<String, String>> {
        let output = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .context("read the secret (secretsmanager:GetSecretValue)")?;
        let text = output
            .secret_string()
            .context("the secret has no string value")?;
        let fields: HashMap<String, String> =
            serde_json::from_str(text).context("the secret is not a JSON object of strings")?;
        let mut values = HashMap::new();
        for (name, value) in fields {
            if let Some((_, unwrapped)) = WRAPPED_KEYS.iter().find(|(w, _)| *w == name) {
                values.insert(
                    (*unwrapped).to_owned(),
                    self.unwrap_key(&name, &value).await?,
                );
            } else if SECRET_NAMES.contains(&name.as_str()) {
                values.insert(name, value);
            } else {
                bail!("the secret has an unknown field {name:?}");
            }
        }
        Ok(values)
    }

    /// A base64 KMS ciphertext blob → the 32-byte key, base64.
    async fn unwrap_key(&self, field: &str, wrapped: &str) -> anyhow::Result<String> {
        let blob = STANDARD
            .decode(wrapped.trim())
            .with_context(|| format!("{field} is not base64"))?;
        let output = self
            .kms
            .decrypt()
            .key_id(&self.kms_key_id)
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
            .send()
            .await
            .with_context(|| format!("unwrap {field} (kms:Decrypt)"))?;
        let plain = output
            .plaintext()
            .with_context(|| format!("{field}: KMS returned no plaintext"))?;
        if plain.as_ref().len() != 32 {
            bail!("{field} must wrap a 256-bit key (generate it with --key-spec AES_256)");
        }
        Ok(STANDARD.encode(plain.as_ref()))
    }
}

/// Settings inside Lambda: the environment for everything public, the secret
/// (when `SECRETS_ARN` is set) for every secret; never dev defaults.
pub async fn lambda_settings(
    sdk: &aws_config::SdkConfig,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Settings> {
    let secret_id = env("SECRETS_ARN").filter(|v| !v.is_empty());
    let secrets = match secret_id {
        Some(secret_id) => {
            let kms_key_id = env("TOKEN_KMS_KEY_ID")
                .filter(|v| !v.is_empty())
                .context("TOKEN_KMS_KEY_ID is required with SECRETS_ARN")?;
            Some(
                SecretSource::new(sdk, secret_id, kms_key_id)
                    .fetch()
                    .await?,
            )
        }
        None => None,
    };
    let lookup = |name: &str| match &secrets {
        Some(secrets) if SECRET_NAMES.contains(&name) => secrets.get(name).cloned(),
        _ => env(name),
    };
    Settings::from_lookup(lookup, false).context("configuration")
}
