//! AES-256-GCM for tokens at rest, HMAC-SHA256 for digests and signed states.
//! The key comes from configuration: an env key locally, a KMS-decrypted data
//! key in production (the same cipher either way).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ports::{CipherError, TokenCipher};

/// The sealed format's version prefix, so the key or scheme can rotate.
const VERSION: &str = "v1";

/// The current key seals; the previous one (after a rotation) only opens and
/// verifies what it sealed before, until every token has been re-sealed.
pub struct AesGcmCipher {
    current: Key,
    previous: Option<Key>,
}

struct Key {
    cipher: Aes256Gcm,
    mac_key: SecretSlice<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("TOKEN_KEY must be 32 bytes, base64-encoded")]
pub struct BadKey;

impl Key {
    fn from_base64(key: &SecretString) -> Result<Self, BadKey> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| BadKey)?;
        if bytes.len() != 32 {
            return Err(BadKey);
        }
        // A separate MAC key, derived so the encryption key is never used twice.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).expect("any key length");
        mac.update(b"board-hubspot/mac-key");
        let mac_key = mac.finalize().into_bytes().to_vec();
        let cipher = <Aes256Gcm as KeyInit>::new_from_slice(&bytes).map_err(|_| BadKey)?;
        Ok(Self {
            cipher,
            mac_key: SecretSlice::from(mac_key),
        })
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.mac_key.expose_secret())
            .expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn open(&self, nonce: [u8; 12], ciphertext: &[u8], context: &str) -> Option<Vec<u8>> {
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .ok()
    }

    fn verify(&self, value: &str, given: &[u8]) -> bool {
        bool::from(
            self.mac(format!("sign:{value}").as_bytes())
                .as_slice()
                .ct_eq(given),
        )
    }
}

impl AesGcmCipher {
    pub fn from_base64(key: &SecretString) -> Result<Self, BadKey> {
        Ok(Self {
            current: Key::from_base64(key)?,
            previous: None,
        })
    }

    /// Also opens what `previous` sealed (the key before a rotation).
    pub fn with_previous(self, previous: &SecretString) -> Result<Self, BadKey> {
        Ok(Self {
            previous: Some(Key::from_base64(previous)?),
            ..self
        })
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }
}

impl TokenCipher for AesGcmCipher {
    fn seal(&self, plaintext: &str, context: &str) -> String {
        let nonce_bytes: [u8; 12] = rand::random();
        let sealed = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        format!("{VERSION}:{}", STANDARD.encode(out))
    }

    fn open(&self, sealed: &str, context: &str) -> Result<SecretString, CipherError> {
        let body = sealed
            .strip_prefix(&format!("{VERSION}:"))
            .ok_or(CipherError)?;
        let bytes = STANDARD.decode(body).map_err(|_| CipherError)?;
        if bytes.len() < 12 + 16 {
            return Err(CipherError);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CipherError)?;
        let plain = self
            .keys()
            .find_map(|key| key.open(nonce, ciphertext, context))
            .ok_or(CipherError)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CipherError)
    }

    fn sealed_with_current(&self, sealed: &str, context: &str) -> bool {
        let Some(body) = sealed.strip_prefix(&format!("{VERSION}:")) else {
            return false;
        };
        let Ok(bytes) = STANDARD.decode(body) else {
            return false;
        };
        if bytes.len() < 12 + 16 {
            return false;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let Ok(nonce) = <[u8; 12]>::try_from(nonce) else {
            return false;
        };
        self.current.open(nonce, ciphertext, context).is_some()
    }

    fn digest(&self, plaintext: &str) -> String {
        self.current
            .mac(plaintext.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn sign(&self, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.current.mac(format!("sign:{value}").as_bytes()))
    }

    fn verify(&self, value: &str, signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.keys().any(|key| key.verify(value, &given))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(key: &[u8; 32]) -> AesGcmCipher {
        AesGcmCipher::from_base64(&SecretString::from(STANDARD.encode(key))).unwrap()
    }

    #[test]
    fn sealed_tokens_open_only_with_the_same_key_and_context() {
        let c = cipher(&[7; 32]);
        let sealed = c.seal("sbx-at-secret", "acct-a");
        assert!(!sealed.contains("sbx-at-secret"));
        assert_ne!(sealed, c.seal("sbx-at-secret", "acct-a"), "random nonces");
        assert_eq!(
            c.open(&sealed, "acct-a").unwrap().expose_secret(),
            "sbx-at-secret"
        );
        assert_eq!(
            c.open(&sealed, "acct-b").unwrap_err(),
            CipherError,
            "bound to its account"
        );
        assert_eq!(
            cipher(&[8; 32]).open(&sealed, "acct-a").unwrap_err(),
            CipherError
        );
        let mut tampered = sealed.clone();
        let at = sealed.len() - 3;
        let flipped = if &sealed[at..at + 1] == "A" { "B" } else { "A" };
        tampered.replace_range(at..at + 1, flipped);
        assert!(c.open(&tampered, "acct-a").is_err());
    }

    #[test]
    fn digests_and_signatures_are_keyed() {
        let (a, b) = (cipher(&[1; 32]), cipher(&[2; 32]));
        assert_eq!(a.digest("x"), a.digest("x"));
        assert_ne!(a.digest("x"), b.digest("x"));
        let sig = a.sign("state-nonce");
        assert!(a.verify("state-nonce", &sig));
        assert!(!a.verify("other", &sig));
        assert!(!b.verify("state-nonce", &sig));
        assert!(!a.verify("state-nonce", "not base64 !"));
    }

    #[test]
    fn after_a_rotation_the_previous_key_opens_but_never_seals() {
        let old = cipher(&[3; 32]);
        let sealed_before = old.seal("sbx-rt-old", "acct-a");
        let signed_before = old.sign("state");
        let rotated = cipher(&[4; 32])
            .with_previous(&SecretString::from(STANDARD.encode([3u8; 32])))
            .unwrap();
        assert_eq!(
            rotated
                .open(&sealed_before, "acct-a")
                .unwrap()
                .expose_secret(),
            "sbx-rt-old"
        );
        assert!(rotated.verify("state", &signed_before));
        let sealed_after = rotated.seal("sbx-rt-new", "acct-a");
        assert_eq!(
            old.open(&sealed_after, "acct-a").unwrap_err(),
            CipherError,
            "sealed with the new key only"
        );
        assert!(cipher(&[4; 32]).open(&sealed_after, "acct-a").is_ok());
        assert!(
            cipher(&[4; 32]).open(&sealed_before, "acct-a").is_err(),
            "without the previous key the old seal is lost"
        );
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(
            AesGcmCipher::from_base64(&SecretString::from(STANDARD.encode([0u8; 16]))).is_err()
        );
        assert!(AesGcmCipher::from_base64(&SecretString::from("not base64".to_owned())).is_err());
    }
}
