//! Token key rotation: connections sealed with the previous key are re-sealed
//! by the hourly pass, so the previous key can be removed, suspended
//! connections (which never refresh) included.

use std::sync::Arc;

use base64::Engine as _;
use board_hubspot::adapters::crypto::AesGcmCipher;
use board_hubspot::app::{Services, disconnect};
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

fn sealed(cipher: &AesGcmCipher, account: &AccountId, refresh: &str) -> SealedTokens {
    SealedTokens {
        access_token: cipher.seal("at", account.as_str()),
        refresh_token: cipher.seal(refresh, account.as_str()),
        refresh_token_digest: cipher.digest(refresh),
        access_expires_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

/// Disconnect finds other accounts holding the same refresh token by its
/// digest, whichever key sealed each.
#[test]
fn a_shared_refresh_token_is_found_across_a_key_rotation() {
    let (a, b): (AccountId, AccountId) = ("acct-a".parse().unwrap(), "acct-b".parse().unwrap());
    let old = AesGcmCipher::from_base64(&key(1)).unwrap();
    let b_before = sealed(&old, &b, "rt-shared");
    // Rotated: acct-a refreshed since, so its seal and digest are the new key's.
    let new = AesGcmCipher::from_base64(&key(2))
        .unwrap()
        .with_previous(&key(1))
        .unwrap();
    let a_after = sealed(&new, &a, "rt-shared");
    assert_ne!(a_after.refresh_token_digest, b_before.refresh_token_digest);
    assert!(disconnect::holds_same_refresh_token(
        &new,
        (&a, &a_after),
        (&b, &b_before)
    ));
    let c_other = sealed(&new, &b, "rt-other");
    assert!(!disconnect::holds_same_refresh_token(
        &new,
        (&a, &a_after),
        (&b, &c_other)
    ));
}
