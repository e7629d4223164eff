//! One failure model for both sync directions and the worker: why a step did
//! not finish now, and what the history records when it is given up. HubSpot's,
//! board's, the token service's and the store's errors convert into it in one
//! place each, so a 429 is told as a rate limit (never as a store failure) and
//! every path maps an error to the same catalog code.

use std::time::Duration;

use crate::domain::Code;
use crate::ports::{BoardError, HubSpotError, StoreError};

use super::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// May succeed later (HubSpot or board unavailable or rate limited, a
    /// token refresh in progress). `code` is what the history records when the
    /// last attempt fails too; `after` is the wait the other side asked for.
    #[error("{code}: {detail}")]
    Retry {
        code: Code,
        detail: String,
        after: Option<Duration>,
    },
    /// Not a failure: the tenant's own rate budget is spent for now (our budget,
    /// not the other side's refusal). The message goes back as a fresh one
    /// after `after` (`WorkQueue::defer`), so waiting its turn never counts
    /// toward the dead-letter queue, and the invocation moves on.
    #[error("deferred: the tenant's budget is spent for {after:?}")]
    Deferred { after: Duration },
    /// A conditional write lost (the link, draft or ledger changed meanwhile):
    /// nothing was written; read again and redo soon.
    #[error("changed concurrently")]
    Conflict,
    /// The store failed: retried with the usual backoff.
    #[error(transparent)]
    Store(StoreError),
    /// Can never succeed (an unreadable message): dead-lettered with the reason.
    #[error("poison: {0}")]
    Poison(String),
}

impl SyncFailure {
    pub fn retry(code: Code, detail: impl Into<String>) -> Self {
        Self::Retry {
            code,
            detail: detail.into(),
            after: None,
        }
    }

    /// The same failure for another message of a batch that failed as one.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Retry {
                code,
                detail,
                after,
            } => Self::Retry {
                code: *code,
                detail: detail.clone(),
                after: *after,
            },
            Self::Deferred { after } => Self::Deferred { after: *after },
            Self::Conflict => Self::Conflict,
            Self::Store(e) => Self::Store(StoreError::Unavailable(anyhow::anyhow!(e.to_string()))),
            Self::Poison(reason) => Self::Poison(reason.clone()),
        }
    }

    /// The same wait, as a retry of this very message (its receive counted):
    /// for when a fresh copy would not be applied.
    pub fn without_deferral(self) -> Self {
        match self {
            Self::Deferred { after } => Self::Retry {
                code: Code::HubspotUnavailable,
                detail: "waiting for the tenant's budget".into(),
                after: Some(after),
            },
            other => other,
        }
    }

    /// The catalog code an attempt given up records.
    pub fn code(&self) -> Code {
        match self {
            Self::Retry { code, .. } => *code,
            Self::Deferred { .. } => Code::HubspotUnavailable,
            Self::Conflict | Self::Store(_) | Self::Poison(_) => Code::InternalError,
        }
    }
}

impl From<StoreError> for SyncFailure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

/// HubSpot's errors as the catalog says (SPEC §9).
impl From<HubSpotError> for SyncFailure {
    fn from(error: HubSpotError) -> Self {
        let detail = error.to_string();
        match error {
            HubSpotError::Unauthorized(_) | HubSpotError::InvalidGrant(_) => {
                Self::retry(Code::HubspotAuthInvalid, detail)
            }
            HubSpotError::Forbidden(_) => Self::retry(Code::HubspotScopeInsufficient, detail),
            HubSpotError::RateLimited { retry_after_ms, .. } => Self::Retry {
                code: Code::HubspotUnavailable,
                detail,
                after: Some(Duration::from_millis(retry_after_ms)),
            },
            HubSpotError::OverBudget { retry_after_ms } => Self::Deferred {
                after: Duration::from_millis(retry_after_ms),
            },
            HubSpotError::NotFound(_)
            | HubSpotError::Rejected { .. }
            | HubSpotError::Unavailable(_) => Self::retry(Code::HubspotUnavailable, detail),
        }
    }
}

/// board's errors as the catalog says (SPEC §9).
impl From<BoardError> for SyncFailure {
    fn from(error: BoardError) -> Self {
        let detail = error.to_string();
        match error {
            BoardError::Unauthorized(_) => Self::retry(Code::BoardAuthInvalid, detail),
            BoardError::RateLimited { retry_after_ms } => Self::Retry {
                code: Code::BoardUnavailable,
                detail,
                after: Some(Duration::from_millis(retry_after_ms)),
            },
            BoardError::OverBudget { retry_after_ms } => Self::Deferred {
                after: Duration::from_millis(retry_after_ms),
            },
            BoardError::Rejected { .. } => Self::retry(Code::BoardApiError, detail),
            BoardError::NotFound | BoardError::Unavailable(_) => {
                Self::retry(Code::BoardUnavailable, detail)
            }
        }
    }
}

impl From<TokenError> for SyncFailure {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Store(e) => e.into(),
            other => Self::retry(other.code(), other.to_string()),
        }
    }
}

/// The longest a message can be put back for (SQS's `DelaySeconds`).
pub const MAX_DEFER: std::time::Duration = std::time::Duration::from_secs(900);

#[cfg(test)]
mod tests {
    use super::*;

    // Given HubSpot's rate limit, when it becomes a failure, then it is a retry
    // after HubSpot's wait recorded as hubspot_unavailable, never a store failure.
    #[test]
    fn a_hubspot_429_is_a_timed_retry_as_hubspot_unavailable() {
        let failure = SyncFailure::from(HubSpotError::RateLimited {
            retry_after_ms: 2_000,
            daily: false,
        });
        assert!(matches!(
            failure,
            SyncFailure::Retry { code: Code::HubspotUnavailable, after: Some(d), .. } if d == Duration::from_secs(2)
        ));
    }

    // Given each side's refusals, when they become failures, then each carries
    // the catalog's code for it.
    #[test]
    fn each_error_maps_to_its_catalog_code() {
        let cases = [
            (
                SyncFailure::from(HubSpotError::Unauthorized("x".into())),
                Code::HubspotAuthInvalid,
            ),
            (
                SyncFailure::from(HubSpotError::Forbidden("x".into())),
                Code::HubspotScopeInsufficient,
            ),
            (
                SyncFailure::from(HubSpotError::Unavailable("x".into())),
                Code::HubspotUnavailable,
            ),
            (
                SyncFailure::from(BoardError::Unavailable("x".into())),
                Code::BoardUnavailable,
            ),
            (
                SyncFailure::from(BoardError::Unauthorized("x".into())),
                Code::BoardAuthInvalid,
            ),
            (
                SyncFailure::from(TokenError::AuthInvalid),
                Code::HubspotAuthInvalid,
            ),
            (
                SyncFailure::from(StoreError::Unavailable(anyhow::anyhow!("x"))),
                Code::InternalError,
            ),
        ];
        for (failure, code) in cases {
            assert_eq!(failure.code(), code, "{failure}");
        }
        assert!(matches!(
            SyncFailure::from(StoreError::Conflict),
            SyncFailure::Conflict
        ));
    }
}
