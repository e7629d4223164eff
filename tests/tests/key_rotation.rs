//! Token key rotation: connections sealed with the previous key are re-sealed
//! by the hourly pass, so the previous key can be removed, suspended
//! connections (which never refresh) included.

use std::sync::Arc;

use base64::Engine as _;
use board_hubspot::adapters::crypto::AesGcmCipher;
use board_hubspot::app::Services;
use board_hubspot::config::Settings;
use board_hubspot::domain::connection::{Connection, ConnectionState, SealedTokens};
use board_hubspot::domain::{AccountId, PortalId};
use board_hubspot::ports::TokenCipher;
use secrecy::{ExposeSecret, SecretString};

fn key(byte: u8) -> SecretString {
    SecretString::from(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
}

#[tokio::test]
async fn the_hourly_pass_reseals_what_the_previous_key_sealed() {
    let settings = Settings::from_lookup(|_| None, true).unwrap();
    let (mut services, _queue) = Services::in_memory(settings);
    let old = AesGcmCipher::from_base64(&key(1)).unwrap();
    let account: AccountId = "acct-a".parse().unwrap();
    let mut connection = Connection::pending(account.clone(), PortalId::new(1000001).unwrap());
    connection.state = ConnectionState::Suspended;
    connection.tokens = Some(SealedTokens {
        access_token: old.seal("at-1", account.as_str()),
        refresh_token: old.seal("rt-1", account.as_str()),
        refresh_token_digest: old.digest("rt-1"),
        access_expires_at: time::OffsetDateTime::now_utc(),
    });
    services
        .connections
        .save_connection(&connection)
        .await
        .unwrap();

    // Rotated: the new key seals, the previous one still opens.
    services.cipher = Arc::new(
        AesGcmCipher::from_base64(&key(2))
            .unwrap()
            .with_previous(&key(1))
            .unwrap(),
    );
    board_hubspot::app::catch_up::request_all(&services)
        .await
        .unwrap();

    let stored = services
        .connections
        .get_connection(&account)
        .await
        .unwrap()
        .unwrap();
    let tokens = stored.tokens.expect("kept");
    let new_only = AesGcmCipher::from_base64(&key(2)).unwrap();
    assert_eq!(
        new_only
            .open(&tokens.refresh_token, account.as_str())
            .unwrap()
            .expose_secret(),
        "rt-1",
        "opens without the previous key"
    );
    assert_eq!(
        new_only
            .open(&tokens.access_token, account.as_str())
            .unwrap()
            .expose_secret(),
        "at-1"
    );
    assert_eq!(tokens.refresh_token_digest, new_only.digest("rt-1"));
    assert_eq!(stored.state, ConnectionState::Suspended, "state untouched");
}
