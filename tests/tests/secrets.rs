//! Cold-start configuration inside Lambda, against Secrets Manager and KMS on
//! moto: secrets come from the one secret, the token key is a KMS data key
//! unwrapped under its encryption context, and nothing secret is taken from
//! the environment.

use std::collections::HashMap;

use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use board_hubspot::adapters::secrets::{KMS_CONTEXT, lambda_settings};
use board_hubspot::config::StoreKind;
use secrecy::ExposeSecret;
use serde_json::json;

struct Kms {
    key_id: String,
}

async fn kms_key() -> Kms {
    let sdk = tests::aws_config().await;
    let key = aws_sdk_kms::Client::new(&sdk)
        .create_key()
        .description("token key")
        .send()
        .await
        .unwrap();
    Kms {
        key_id: key.key_metadata().unwrap().arn().unwrap().to_owned(),
    }
}

/// A data key as the runbook makes one: (wrapped for the secret, plain key base64).
async fn data_key(kms: &Kms, context: (&str, &str)) -> (String, String) {
    let sdk = tests::aws_config().await;
    let out = aws_sdk_kms::Client::new(&sdk)
        .generate_data_key()
        .key_id(&kms.key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context(context.0, context.1)
        .send()
        .await
        .unwrap();
    (
        STANDARD.encode(out.ciphertext_blob().unwrap().as_ref()),
        STANDARD.encode(out.plaintext().unwrap().as_ref()),
    )
}

async fn secret(value: serde_json::Value) -> String {
    let sdk = tests::aws_config().await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(tests::unique("board-hubspot/secrets"))
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned()
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

const PUBLIC: [(&str, &str); 8] = [
    ("STORE", "dynamodb"),
    ("HUBSPOT_API_BASE", "https://api.hubapi.com"),
    ("BOARD_API_BASE", "https://api.board/v1"),
    ("PUBLIC_BASE_URL", "https://hooks.example.jp"),
    ("HUBSPOT_CLIENT_ID", "client-id"),
    ("WORK_QUEUE_URL", "https://sqs/work"),
    ("BOARD_SETTINGS_URL", "https://board/settings"),
    ("BOARD_APP_URL", "https://board"),
];

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    PUBLIC
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_secret_and_the_token_key_from_kms() {
    let sdk = tests::aws_config().await;
    let kms = kms_key().await;
    let (wrapped, plain) = data_key(&kms, KMS_CONTEXT).await;
    let (wrapped_previous, plain_previous) = data_key(&kms, KMS_CONTEXT).await;
    let arn = secret(json!({
        "HUBSPOT_CLIENT_SECRET": "from-the-secret",
        "BOARD_JWT_SECRET": "jwt-from-the-secret",
        "BOARD_CREDENTIALS": r#"{"acct-a": {"api_key": "k", "token": "t"}}"#,
        "TOKEN_DATA_KEY": wrapped,
        "TOKEN_DATA_KEY_PREVIOUS": wrapped_previous,
    }))
    .await;
    let vars = with(&[
        ("SECRETS_ARN", &arn),
        ("TOKEN_KMS_KEY_ID", &kms.key_id),
        // The environment cannot smuggle a secret in beside the secret.
        ("HUBSPOT_CLIENT_SECRET", "from-the-environment"),
    ]);
    let settings = lambda_settings(&sdk, env(&vars)).await.unwrap();
    assert_eq!(settings.store, StoreKind::Aws);
    assert_eq!(settings.client_secret_bytes(), b"from-the-secret");
    assert_eq!(
        settings.board_jwt_secret.expose_secret(),
        "jwt-from-the-secret"
    );
    assert_eq!(settings.token_key.expose_secret(), plain);
    assert_eq!(
        settings
            .token_key_previous
            .as_ref()
            .unwrap()
            .expose_secret(),
        plain_previous
    );
    assert_ne!(wrapped, plain, "the secret holds only the wrapped key");
}

/// The public webhook function reads its own secret, which holds only the
/// HubSpot client secret: no KMS key, no board credentials; anything more in
/// it is refused at cold start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_function_starts_on_the_signing_secret_alone() {
    let sdk = tests::aws_config().await;
    let arn = secret(json!({"HUBSPOT_CLIENT_SECRET": "signing-only"})).await;
    let vars = with(&[("SECRETS_ARN", &arn), ("SECRETS_SCOPE", "signing")]);
    let settings = lambda_settings(&sdk, env(&vars)).await.unwrap();
    assert_eq!(settings.client_secret_bytes(), b"signing-only");
    let leaky = secret(json!({"HUBSPOT_CLIENT_SECRET": "s", "BOARD_CREDENTIALS": "{}"})).await;
    let vars = with(&[("SECRETS_ARN", &leaky), ("SECRETS_SCOPE", "signing")]);
    let refused = lambda_settings(&sdk, env(&vars)).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("BOARD_CREDENTIALS"),
        "board's credentials do not belong in the signing secret: {refused:#}"
    );
}

/// board's JWKS can outgrow Lambda's 4 KB of environment (a few keys, `x5c`
/// chains): RS256 deployments keep it in the secret, never the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_jwks_comes_from_the_secret_whatever_its_size() {
    let sdk = tests::aws_config().await;
    let kms = kms_key().await;
    let (wrapped, _) = data_key(&kms, KMS_CONTEXT).await;
    let chain = "MIIC".to_owned() + &"A".repeat(3000);
    let keys: Vec<serde_json::Value> = (0..3)
        .map(|i| json!({"kty": "RSA", "kid": format!("k{i}"), "n": "AQAB", "e": "AQAB", "x5c": [chain]}))
        .collect();
    let jwks = json!({ "keys": keys }).to_string();
    assert!(jwks.len() > 4096, "larger than Lambda's whole environment");
    let arn = secret(json!({
        "HUBSPOT_CLIENT_SECRET": "s",
        "BOARD_CREDENTIALS": "{}",
        "BOARD_JWKS": jwks,
        "TOKEN_DATA_KEY": wrapped,
    }))
    .await;
    let vars = with(&[
        ("SECRETS_ARN", &arn),
        ("TOKEN_KMS_KEY_ID", &kms.key_id),
        ("BOARD_JWT_ALGORITHM", "RS256"),
        ("BOARD_JWKS", r#"{"keys": []}"#),
    ]);
    let settings = lambda_settings(&sdk, env(&vars)).await.unwrap();
    assert_eq!(
        settings.board_jwks.as_deref(),
        Some(jwks.as_str()),
        "the secret's, not the environment's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_field_a_foreign_data_key_or_no_kms_key_stop_the_cold_start() {
    let sdk = tests::aws_config().await;
    let kms = kms_key().await;
    let (wrapped, _) = data_key(&kms, KMS_CONTEXT).await;

    // No client secret in the secret: no dev default inside Lambda.
    let arn = secret(json!({"TOKEN_DATA_KEY": wrapped, "BOARD_CREDENTIALS": "{}"})).await;
    let error = lambda_settings(
        &sdk,
        env(&with(&[
            ("SECRETS_ARN", &arn),
            ("TOKEN_KMS_KEY_ID", &kms.key_id),
            ("HUBSPOT_CLIENT_SECRET", "from-the-environment"),
        ])),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{error:#}").contains("HUBSPOT_CLIENT_SECRET is required"),
        "{error:#}"
    );

    // A data key generated for another purpose does not unwrap here.
    let (foreign, _) = data_key(&kms, ("purpose", "something-else")).await;
    let arn = secret(
        json!({"HUBSPOT_CLIENT_SECRET": "s", "BOARD_CREDENTIALS": "{}", "TOKEN_DATA_KEY": foreign}),
    )
    .await;
    let error = lambda_settings(
        &sdk,
        env(&with(&[
            ("SECRETS_ARN", &arn),
            ("TOKEN_KMS_KEY_ID", &kms.key_id),
        ])),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{error:#}").contains("unwrap TOKEN_DATA_KEY"),
        "{error:#}"
    );

    // A typo in the secret is reported, not ignored.
    let arn = secret(json!({"HUBSPOT_CLIENT_SECRT": "s"})).await;
    let error = lambda_settings(
        &sdk,
        env(&with(&[
            ("SECRETS_ARN", &arn),
            ("TOKEN_KMS_KEY_ID", &kms.key_id),
        ])),
    )
    .await
    .unwrap_err();
    assert!(format!("{error:#}").contains("unknown field"), "{error:#}");

    // The secret without the KMS key to unwrap with.
    let error = lambda_settings(&sdk, env(&with(&[("SECRETS_ARN", &arn)])))
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("TOKEN_KMS_KEY_ID is required"),
        "{error:#}"
    );

    // An unknown secret.
    let error = lambda_settings(
        &sdk,
        env(&with(&[
            (
                "SECRETS_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
            ),
            ("TOKEN_KMS_KEY_ID", &kms.key_id),
        ])),
    )
    .await
    .unwrap_err();
    assert!(format!("{error:#}").contains("GetSecretValue"), "{error:#}");
}
