//! Rate budgets (SPEC §11): HubSpot allows 110 requests per 10 s per app and
//! portal, board about 3 per second per account. Buckets live in the store so
//! every Lambda instance shares them. Background work uses 80 % of HubSpot's
//! limit, leaving the rest for people (settings, diagnosis, the card). A short
//! wait (≤ 1 s, pacing within a per-second limit) is slept; a longer one is
//! handed back so the queue delays the message instead.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tracing::warn;

use crate::domain::{AccountId, PortalId};
use crate::ports::{
    BoardApi, BoardError, BoardRecord, BoardResource, BoardUser, Clock, RateBudget,
};

/// The longest wait slept in place.
pub const MAX_PACE: Duration = Duration::from_secs(1);
/// HubSpot: 80 % of 110 per 10 s for background work.
pub const HUBSPOT_BACKGROUND: (u32, Duration) = (88, Duration::from_secs(10));
/// board: 2 per second for the worker (board allows about 3; people use the rest).
pub const BOARD_BACKGROUND: (u32, Duration) = (2, Duration::from_secs(1));

/// Waits for `cost` tokens; `Err(wait)` when the wait is too long to sleep.
pub async fn acquire(
    budget: &dyn RateBudget,
    clock: &dyn Clock,
    bucket: &str,
    (capacity, per): (u32, Duration),
    cost: u32,
) -> Result<(), Duration> {
    loop {
        match budget.take(bucket, capacity, per, cost, clock.now()).await {
            Ok(None) => return Ok(()),
            Ok(Some(wait)) if wait <= MAX_PACE => tokio::time::sleep(wait).await,
            Ok(Some(wait)) => return Err(wait),
            Err(error) => {
                // The budget is a courtesy to HubSpot and board, whose own 429s remain the backstop.
                warn!(%error, bucket, "rate budget unavailable; proceeding");
                return Ok(());
            }
        }
    }
}

pub async fn hubspot(
    services: &super::Services,
    portal: PortalId,
    cost: u32,
) -> Result<(), Duration> {
    acquire(
        services.budget.as_ref(),
        services.clock.as_ref(),
        &format!("hubspot#{portal}"),
        HUBSPOT_BACKGROUND,
        cost,
    )
    .await
}

/// board's API behind the account's shared budget.
pub struct BudgetedBoard {
    pub inner: Arc<dyn BoardApi>,
    pub budget: Arc<dyn RateBudget>,
    pub clock: Arc<dyn Clock>,
}

impl BudgetedBoard {
    async fn turn(&self, account: &AccountId) -> Result<(), BoardError> {
        acquire(
            self.budget.as_ref(),
            self.clock.as_ref(),
            &format!("board#{account}"),
            BOARD_BACKGROUND,
            1,
        )
        .await
        .map_err(|wait| BoardError::RateLimited {
            retry_after_ms: wait.as_millis() as u64,
        })
    }
}

#[async_trait]
impl BoardApi for BudgetedBoard {
    async fn users(&self, account: &AccountId) -> Result<Vec<BoardUser>, BoardError> {
        self.turn(account).await?;
        self.inner.users(account).await
    }

    async fn get(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        self.inner.get(account, resource, id).await
    }

    async fn find(
        &self,
        account: &AccountId,
        resource: BoardResource,
        filters: &[(&str, String)],
    ) -> Result<Vec<BoardRecord>, BoardError> {
        self.turn(account).await?;
        self.inner.find(account, resource, filters).await
    }

    async fn create(
        &self,
        account: &AccountId,
        resource: BoardResource,
        fields: Map<String, Value>,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        self.inner.create(account, resource, fields).await
    }

    async fn update(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
        fields: Map<String, Value>,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        self.inner.update(account, resource, id, fields).await
    }

    async fn set_order_status(
        &self,
        account: &AccountId,
        project: u64,
        status: u8,
        order_date: Option<String>,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        self.inner
            .set_order_status(account, project, status, order_date)
            .await
    }
}
