//! How a HubSpot → board failure is told: transient (retried by the queue) or
//! a store failure, from HubSpot's errors and the linked-deal sync's.

use super::linked_deals::LinkedError;
use crate::ports::{HubSpotError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Worth retrying later (HubSpot or the store unavailable, rate limited).
    #[error("transient: {0}")]
    Transient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) fn transient(e: HubSpotError) -> SyncError {
    SyncError::Transient(e.to_string())
}

pub(super) fn linked_failure(error: LinkedError) -> SyncError {
    match error {
        LinkedError::Transient(m) => SyncError::Transient(m),
        LinkedError::Conflict => SyncError::Store(StoreError::Conflict),
        LinkedError::Store(s) => SyncError::Store(s),
    }
}
