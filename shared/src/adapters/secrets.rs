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

/// What the public webhook function's own secret may hold: the HubSpot
/// client secret it checks signatures with, and nothing else.
pub const SIGNING_NAMES: [&str; 2] = ["HUBSPOT_CLIENT_SECRET", "HUBSPOT_CLIENT_SECRET_PREVIOUS"];

pub struct SecretSource {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub kms: aws_sdk_kms::Client,
    /// The secret's ARN (`SECRETS_ARN`).
    pub secret_id: String,
    /// The token key's KMS key (`TOKEN_KMS_KEY_ID`): unwrapping is pinned to it.
    /// Empty for the signing secret, which holds no wrapped key.
    pub kms_key_id: String,
    /// The fields the secret may hold (`SECRET_NAMES`, or `SIGNING_NAMES`).
    pub names: &'static [&'static str],
}

impl SecretSource {
    pub fn new(sdk: &aws_config::SdkConfig, secret_id: String, kms_key_id: String) -> Self {
        Self {
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            secret_id,
            kms_key_id,
            names: &SECRET_NAMES,
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
            let wrapped = WRAPPED_KEYS.iter().find(|(w, _)| *w == name);
            if let Some((_, unwrapped)) = wrapped.filter(|_| self.names == SECRET_NAMES) {
                values.insert(
                    (*unwrapped).to_owned(),
                    self.unwrap_key(&name, &value).await?,
                );
            } else if self.names.contains(&name.as_str()) {
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
    if env("SECRETS_SCOPE").as_deref() == Some("signing") {
        return signing_settings(sdk, secret_id, env).await;
    }
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

/// Settings of the public webhook function (`SECRETS_SCOPE=signing`): its
/// secret holds only the HubSpot client secret; its role can read nothing
/// else and unwrap no key. What the shared settings require beyond that is
/// filled with values that open nothing: an ephemeral token key (it never
/// seals or opens tokens), no board credentials, a random JWT secret and an
/// empty JWKS (it never calls board nor verifies board's JWTs).
async fn signing_settings(
    sdk: &aws_config::SdkConfig,
    secret_id: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Settings> {
    let secret_id = secret_id.context("SECRETS_ARN is required with SECRETS_SCOPE=signing")?;
    let source = SecretSource {
        names: &SIGNING_NAMES,
        ..SecretSource::new(sdk, secret_id, String::new())
    };
    let secrets = source.fetch().await?;
    let random = || STANDARD.encode(rand::random::<[u8; 32]>());
    let (token_key, jwt_secret) = (random(), random());
    let lookup = |name: &str| match name {
        n if SIGNING_NAMES.contains(&n) => secrets.get(n).cloned(),
        "TOKEN_KEY" => Some(token_key.clone()),
        "BOARD_JWT_SECRET" => Some(jwt_secret.clone()),
        "BOARD_CREDENTIALS" => Some("{}".to_owned()),
        "BOARD_JWKS" => Some(r#"{"keys":[]}"#.to_owned()),
        n if SECRET_NAMES.contains(&n) => None,
        _ => env(name),
    };
    Settings::from_lookup(lookup, false).context("configuration")
}
