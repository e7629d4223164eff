//! HubSpot request signatures (SPEC §11, §12): v3 HMAC with a ±5-minute window,
//! v1/v2 SHA-256 digests, all compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far a v3 timestamp may be from our clock, either way.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    Missing,
    #[error("timestamp missing or not a number")]
    BadTimestamp,
    #[error("timestamp outside the 5-minute window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// The parts of a request a signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Scheme, host and path with the query, as HubSpot called it.
    pub uri: &'a str,
    pub body: &'a [u8],
}

/// HubSpot's documentation decodes these before hashing; its SDK helpers do not,
/// so both forms are accepted.
const DECODED: [(&str, &str); 12] = [
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
];

/// The URI with the documented escapes decoded (either case of hex digits).
pub fn decode_documented(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let candidate = rest.get(pos..pos + 3).map(str::to_ascii_uppercase);
        match candidate
            .as_deref()
            .and_then(|c| DECODED.iter().find(|(e, _)| *e == c))
        {
            Some((_, decoded)) => {
                out.push_str(decoded);
                rest = &rest[pos + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn v3_digest(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Signs as HubSpot does (for tests and the sandboxes' independent twin).
pub fn sign_v3(secret: &[u8], request: &SignedRequest<'_>, timestamp_ms: i64) -> String {
    STANDARD.encode(v3_digest(
        secret,
        request.method,
        request.uri,
        request.body,
        &timestamp_ms.to_string(),
    ))
}

/// Verifies `X-HubSpot-Signature-v3` with `X-HubSpot-Request-Timestamp` (ms).
pub fn verify_v3(
    secret: &[u8],
    request: &SignedRequest<'_>,
    signature: Option<&str>,
    timestamp: Option<&str>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let timestamp = timestamp.ok_or(SignatureError::BadTimestamp)?;
    let sent_ms: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now_ms.abs_diff(sent_ms) > MAX_SKEW_MS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let given = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Mismatch)?;
    let raw = request.uri;
    let decoded = decode_documented(raw);
    let candidates = if decoded == raw {
        vec![raw]
    } else {
        vec![raw, decoded.as_str()]
    };
    let mut matched = subtle::Choice::from(0);
    for uri in candidates {
        let expected = v3_digest(secret, request.method, uri, request.body, timestamp.trim());
        matched |= expected.as_slice().ct_eq(&given);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// v1: hex SHA-256(secret + body). No timestamp: harmless only because events
/// are notifications that we re-read (SPEC §11).
pub fn verify_v1(
    secret: &[u8],
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let mut hasher = Sha256::new();
    hasher.update(secret);
    hasher.update(body);
    let expected: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(signature.trim().to_ascii_lowercase().as_bytes()),
    ) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sandbox-client-secret";
    const NOW: i64 = 1_764_000_000_000;

    fn request<'a>(uri: &'a str, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            uri,
            body,
        }
    }

    #[test]
    fn a_v3_signature_verifies_within_the_window_only() {
        let req = request("https://example.test/hubspot/webhooks", b"[]");
        let sig = sign_v3(SECRET, &req, NOW);
        let ts = NOW.to_string();
        assert_eq!(
            verify_v3(SECRET, &req, Some(&sig), Some(&ts), NOW + 299_000),
            Ok(())
        );
        assert_eq!(
            verify_v3(SECRET, &req, Some(&sig), Some(&ts), NOW + 301_000),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_v3(SECRET, &req, Some(&sig), Some(&ts), NOW - 301_000),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_v3(b"other", &req, Some(&sig), Some(&ts), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_v3(SECRET, &req, None, Some(&ts), NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_v3(SECRET, &req, Some(&sig), Some("soon"), NOW),
            Err(SignatureError::BadTimestamp)
        );
        // The extremes of i64 are stale, not an overflow (a debug build panicked).
        for extreme in [i64::MIN, i64::MAX] {
            assert_eq!(
                verify_v3(SECRET, &req, Some(&sig), Some(&extreme.to_string()), NOW),
                Err(SignatureError::Stale)
            );
        }
    }

    #[test]
    fn the_uri_may_be_signed_raw_or_decoded_as_documented() {
        let raw = "https://example.test/hubspot/card?userEmail=a%40b.jp&x=%3A";
        let decoded = decode_documented(raw);
        assert_eq!(
            decoded,
            "https://example.test/hubspot/card?userEmail=a@b.jp&x=:"
        );
        let ts = NOW.to_string();
        for signed_over in [raw, decoded.as_str()] {
            let sig = sign_v3(SECRET, &request(signed_over, b""), NOW);
            assert_eq!(
                verify_v3(SECRET, &request(raw, b""), Some(&sig), Some(&ts), NOW),
                Ok(())
            );
        }
    }

    #[test]
    fn decoding_leaves_other_escapes_alone() {
        assert_eq!(decode_documented("a%20b%2fc%"), "a%20b/c%");
    }

    #[test]
    fn v1_is_sha256_of_secret_then_body() {
        let body = br#"[{"eventId":1}]"#;
        let mut hasher = Sha256::new();
        hasher.update(SECRET);
        hasher.update(body);
        let sig: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(verify_v1(SECRET, body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_v1(SECRET, b"[]", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
    }
}
