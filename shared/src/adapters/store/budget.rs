//! Rate budgets as sliding windows: the item holds when each call of the last
//! window was granted, so "at most `limit` in any `window`" holds exactly,
//! across every instance (conditional writes on the item's revision).

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{TableStore, epoch_ms, revision_of, same_revision};
use crate::adapters::table::{Item, Key, Table, TableError, attr};
use crate::ports::{RateBudget, StoreError, StoreResult};

/// The calls of the current window, epoch milliseconds, ascending, comma-separated.
const CALLS: &str = "calls_ms";

#[async_trait]
impl<T: Table> RateBudget for TableStore<T> {
    async fn take(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        cost: u32,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Duration>> {
        let key = Key::new(format!("BUDGET#{bucket}"), "BUDGET");
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        let limit = limit.max(1) as usize;
        // More than the window holds is taken as all of it.
        let cost = (cost as usize).min(limit);
        let now_ms = epoch_ms(now);
        for _ in 0..8 {
            let item = self.table.get(&key).await?;
            let revision = item.as_ref().map(revision_of).unwrap_or(0);
            let mut calls: Vec<i64> = item
                .as_ref()
                .and_then(|i| i.s(CALLS))
                .unwrap_or_default()
                .split(',')
                .filter_map(|t| t.parse().ok())
                .filter(|t| *t > now_ms - window_ms)
                .collect();
            calls.sort_unstable();
            if calls.len() + cost > limit {
                // The call that must leave the window before these fit.
                let leaving = calls[calls.len() + cost - limit - 1];
                let wait_ms = (leaving + window_ms - now_ms).max(1);
                return Ok(Some(Duration::from_millis(wait_ms as u64)));
            }
            calls.extend(std::iter::repeat_n(now_ms, cost));
            let joined = calls
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let next = Item::new(key.clone())
                .with_s(CALLS, joined)
                .with_n(attr::REVISION, revision as i64 + 1);
            match self.table.put(next, same_revision(revision)).await {
                Ok(()) => return Ok(None),
                // Another instance took calls meanwhile: read again.
                Err(TableError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict)
    }
}
