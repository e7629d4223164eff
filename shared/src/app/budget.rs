//! Rate budgets (SPEC §11): HubSpot allows 110 requests per 10 s per app and
//! portal, board about 3 per second per account. Budgets live in the store so
//! every Lambda instance shares them. Background work uses 80 % of each limit,
//! leaving the rest for people (settings, diagnosis, the card).
//!
//! They are sliding windows, not token buckets: both APIs count a rolling
//! window, and a bucket lets its whole capacity through on top of what it
//! refills within one window. A wait shorter than the budget's window (pacing)
//! is slept; a longer one is handed back so the queue delays the message.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tracing::warn;

use crate::domain::{AccountId, PortalId};
use crate::ports::{
    BoardApi, BoardError, BoardRecord, BoardResource, BoardUser, Clock, RateBudget,
};

/// HubSpot: 80 % of 110 per 10 s for background work, as 22 calls in any
/// 2.5 s. Any 10 s is four such windows, so the background never takes more
/// than 88 of HubSpot's rolling 110 and 22 are always left for people, while
/// a burst still goes at once.
pub const HUBSPOT_BACKGROUND: (u32, Duration) = (22, Duration::from_millis(2500));

/// board: 80 % of the account's limit (about 3 per second: 2.4), as
/// `per_second` calls in any `1 / 0.8` s: never more than `per_second` in any
/// second, yet a read and its update go together instead of 417 ms apart.
pub fn board_background(per_second: u32) -> (u32, Duration) {
    (per_second.max(1), Duration::from_millis(1250))
}

/// Waits for `cost` calls (taken a quarter window at a time when more than
/// that); `Err(wait)` when a wait is longer than the budget's window.
pub async fn acquire(
    budget: &dyn RateBudget,
    clock: &dyn Clock,
    bucket: &str,
    (limit, window): (u32, Duration),
    cost: u32,
) -> Result<(), Duration> {
    // In steps of a quarter window: each wait stays short enough to sleep, so
    // a large cost is paced instead of refused and taken again later.
    let step = (limit / 4).max(1);
    let mut left = cost;
    while left > step {
        take(budget, clock, bucket, (limit, window), step).await?;
        left -= step;
    }
    take(budget, clock, bucket, (limit, window), left).await
}

async fn take(
    budget: &dyn RateBudget,
    clock: &dyn Clock,
    bucket: &str,
    (limit, window): (u32, Duration),
    cost: u32,
) -> Result<(), Duration> {
    loop {
        match budget.take(bucket, limit, window, cost, clock.now()).await {
            Ok(None) => return Ok(()),
            Ok(Some(wait)) if wait <= window => tokio::time::sleep(wait).await,
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
    /// board's requests per second per account (`BOARD_RATE_PER_SECOND`).
    pub per_second: u32,
}

impl BudgetedBoard {
    async fn turn(&self, account: &AccountId) -> Result<(), BoardError> {
        acquire(
            self.budget.as_ref(),
            self.clock.as_ref(),
            &format!("board#{account}"),
            board_background(self.per_second),
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
