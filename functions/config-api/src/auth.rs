//! board's JWTs: one algorithm per deployment (never the token header's), the
//! claims of SPEC §8, and the two kinds of access they grant.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer};

use board_hubspot::config::{JwtAlgorithm, Settings};
use board_hubspot::domain::{AccountId, UserId};

pub const ISSUER: &str = "board";
pub const AUDIENCE: &str = "board-hubspot";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Admin,
    Manager,
    Leader,
    Staff,
    Custom,
}

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// HubSpot連携(設定機能): master, admin, or custom with `hubspot_settings`.
    Settings,
    /// HubSpot連携(業務機能): every role but custom without `hubspot_business`.
    Business,
}

impl Access {
    pub fn permission(self) -> &'static str {
        match self {
            Access::Settings => "hubspot_settings",
            Access::Business => "hubspot_business",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: AccountId,
    pub user_id: UserId,
    pub role: Role,
    pub permissions: Vec<String>,
    pub account_name: Option<String>,
}

impl Caller {
    pub fn may(&self, access: Access) -> bool {
        match (self.role, access) {
            (Role::Master | Role::Admin, _) => true,
            (Role::Manager | Role::Leader | Role::Staff, Access::Business) => true,
            (Role::Manager | Role::Leader | Role::Staff, Access::Settings) => false,
            (Role::Custom, access) => self.permissions.iter().any(|p| p == access.permission()),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    account_id: AccountId,
    #[serde(deserialize_with = "user_id")]
    user_id: UserId,
    role: Role,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    account_name: Option<String>,
}

/// board issues user ids as numbers or strings; both are taken as issued.
fn user_id<'de, D: Deserializer<'de>>(d: D) -> Result<UserId, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(u64),
    }
    let raw = match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::N(n) => n.to_string(),
    };
    UserId::new(raw).map_err(serde::de::Error::custom)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("role custom requires the permissions claim")]
    MissingPermissions,
}

/// Verifies board's JWTs with the deployment's one algorithm: HS256 with
/// `BOARD_JWT_SECRET`, or RS256 with the keys of `BOARD_JWKS`. The token's
/// header never chooses: a token whose `alg` differs is refused.
pub struct Verifier {
    algorithm: Algorithm,
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

impl Verifier {
    pub fn from_settings(settings: &Settings) -> Result<Self, AuthError> {
        let (algorithm, keys) = match settings.board_jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = settings.board_jwt_secret.expose_secret();
                if secret.is_empty() {
                    return Err(AuthError::Invalid("no HS256 key configured".into()));
                }
                (
                    Algorithm::HS256,
                    vec![(None, DecodingKey::from_secret(secret.as_bytes()))],
                )
            }
            JwtAlgorithm::Rs256 => {
                let jwks: JwkSet =
                    serde_json::from_str(settings.board_jwks.as_deref().unwrap_or_default())
                        .map_err(|e| AuthError::Invalid(format!("BOARD_JWKS: {e}")))?;
                let keys = jwks
                    .keys
                    .iter()
                    .filter_map(|jwk| {
                        DecodingKey::from_jwk(jwk)
                            .ok()
                            .map(|k| (jwk.common.key_id.clone(), k))
                    })
                    .collect();
                (Algorithm::RS256, keys)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // A token not valid yet (`nbf` ahead of our clock, past the leeway) is refused too.
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self {
            algorithm,
            keys,
            validation,
        })
    }

    pub fn verify(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != self.algorithm {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        // `kid` may pick among the configured keys; it can never add one.
        let candidates = self
            .keys
            .iter()
            .filter(|(kid, _)| header.kid.is_none() || kid.is_none() || *kid == header.kid);
        let mut last = AuthError::Invalid("no key matches".into());
        for (_, key) in candidates {
            match decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return caller(data.claims),
                Err(e) => last = AuthError::Invalid(e.to_string()),
            }
        }
        Err(last)
    }
}

fn caller(claims: Claims) -> Result<Caller, AuthError> {
    if claims.role == Role::Custom && claims.permissions.is_none() {
        return Err(AuthError::MissingPermissions);
    }
    Ok(Caller {
        account_id: claims.account_id,
        user_id: claims.user_id,
        role: claims.role,
        permissions: claims.permissions.unwrap_or_default(),
        account_name: claims.account_name.filter(|n| !n.trim().is_empty()),
    })
}
