use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{TableStore, epoch_ms, revision_of, same_revision};
use crate::adapters::table::{Item, Key, Table, TableError, attr};
use crate::ports::{RateBudget, StoreError, StoreResult};

const TOKENS: &str = "milli_tokens";
const AT: &str = "at_ms";

#[async_trait]
impl<T: Table> RateBudget for TableStore<T> {
    async fn take(
        &self,
        bucket: &str,
        capacity: u32,
        per: Duration,
        cost: u32,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Duration>> {
        let key = Key::new(format!("BUDGET#{bucket}"), "BUDGET");
        let full = i64::from(capacity) * 1000;
        let per_ms = per.as_millis().max(1) as i64;
        let need = i64::from(cost) * 1000;
        let now_ms = epoch_ms(now);
        for _ in 0..8 {
            let item = self.table.get(&key).await?;
            let revision = item.as_ref().map(revision_of).unwrap_or(0);
            let (tokens, at) = item
                .as_ref()
                .map(|i| (i.n(TOKENS).unwrap_or(full), i.n(AT).unwrap_or(now_ms)))
                .unwrap_or((full, now_ms));
            let refilled = (tokens + (now_ms - at).max(0) * full / per_ms).min(full);
            if refilled < need {
                let wait_ms = (need - refilled) * per_ms / full.max(1);
                return Ok(Some(Duration::from_millis(wait_ms.max(1) as u64)));
            }
            let next = Item::new(key.clone())
                .with_n(TOKENS, refilled - need)
                .with_n(AT, now_ms)
                .with_n(attr::REVISION, revision as i64 + 1);
            match self.table.put(next, same_revision(revision)).await {
                Ok(()) => return Ok(None),
                // Another instance took tokens meanwhile: read again.
                Err(TableError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict)
    }
}
