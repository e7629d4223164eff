//! board's API behind the account's shared budget (SPEC §11), as
//! `BudgetedHubSpot` is HubSpot's: every background call takes a turn first.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::budget::{acquire, board_background};
use crate::domain::AccountId;
use crate::ports::{
    BoardApi, BoardError, BoardRecord, BoardResource, BoardUser, Clock, RateBudget,
};

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
            &super::budget::board_bucket(account),
            board_background(self.per_second),
            1,
        )
        .await
        .map_err(|wait| BoardError::OverBudget {
            retry_after_ms: wait.as_millis() as u64,
        })
    }

    /// board's answer, its 429s counted for the budget view.
    async fn seen<T>(
        &self,
        account: &AccountId,
        result: Result<T, BoardError>,
    ) -> Result<T, BoardError> {
        if matches!(result, Err(BoardError::RateLimited { .. }))
            && let Err(error) = self
                .budget
                .note(
                    &super::budget::board_bucket(account),
                    super::budget::RATE_LIMITED,
                    1,
                    self.clock.now(),
                )
                .await
        {
            tracing::warn!(%error, "board 429 not counted");
        }
        result
    }
}

#[async_trait]
impl BoardApi for BudgetedBoard {
    async fn users(&self, account: &AccountId) -> Result<Vec<BoardUser>, BoardError> {
        self.turn(account).await?;
        let result = self.inner.users(account).await;
        self.seen(account, result).await
    }

    async fn get(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        let result = self.inner.get(account, resource, id).await;
        self.seen(account, result).await
    }

    async fn find(
        &self,
        account: &AccountId,
        resource: BoardResource,
        filters: &[(&str, String)],
    ) -> Result<Vec<BoardRecord>, BoardError> {
        self.turn(account).await?;
        let result = self.inner.find(account, resource, filters).await;
        self.seen(account, result).await
    }

    async fn create(
        &self,
        account: &AccountId,
        resource: BoardResource,
        fields: Map<String, Value>,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        let result = self.inner.create(account, resource, fields).await;
        self.seen(account, result).await
    }

    async fn update(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
        fields: Map<String, Value>,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        let result = self.inner.update(account, resource, id, fields).await;
        self.seen(account, result).await
    }

    async fn set_order_status(
        &self,
        account: &AccountId,
        project: u64,
        status: u8,
        order_date: Option<String>,
    ) -> Result<BoardRecord, BoardError> {
        self.turn(account).await?;
        let result = self
            .inner
            .set_order_status(account, project, status, order_date)
            .await;
        self.seen(account, result).await
    }
}
