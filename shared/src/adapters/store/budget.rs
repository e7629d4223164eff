//! Rate budgets as sliding windows: the item holds when each call of the last
//! window was granted, so "at most `limit` in any `window`" holds exactly,
//! across every instance (conditional writes on the item's revision). The
//! same item keeps per-minute counts of its grants over the last
//! `USAGE_MINUTES` minutes, written with the grant itself (no write of its
//! own); events callers note (429s) go to a sibling item, so a burst of them
//! never contends with the grants' conditional writes.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{TableStore, epoch_ms, revision_of, same_revision};
use crate::adapters::table::{Item, Key, Table, TableError, attr};
use crate::ports::{BudgetUsage, MinuteUsage, RateBudget, StoreError, StoreResult, USAGE_MINUTES};

/// The calls of the current window, epoch milliseconds, ascending, comma-separated.
const CALLS: &str = "calls_ms";
/// Per-minute counts: `<minute ms>:<kind>=<n>;<kind>=<n>,…` (kind `g` for grants).
const MINUTES: &str = "minutes";
const GRANTED: &str = "g";
const MINUTE_MS: i64 = 60_000;

type Minutes = std::collections::BTreeMap<i64, std::collections::BTreeMap<String, u32>>;

fn minutes_of(item: Option<&Item>, now_ms: i64) -> Minutes {
    let oldest = now_ms - now_ms.rem_euclid(MINUTE_MS) - (USAGE_MINUTES - 1) * MINUTE_MS;
    let mut out = Minutes::new();
    for entry in item
        .and_then(|i| i.s(MINUTES))
        .unwrap_or_default()
        .split(',')
    {
        let Some((minute, counts)) = entry.split_once(':') else {
            continue;
        };
        let Ok(minute) = minute.parse::<i64>() else {
            continue;
        };
        if minute < oldest {
            continue;
        }
        let slot = out.entry(minute).or_default();
        for pair in counts.split(';') {
            if let Some((kind, n)) = pair.split_once('=')
                && let Ok(n) = n.parse::<u32>()
            {
                *slot.entry(kind.to_owned()).or_default() += n;
            }
        }
    }
    out
}

fn add_minute(minutes: &mut Minutes, now_ms: i64, kind: &str, count: u32) {
    let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
    let slot = minutes
        .entry(minute)
        .or_default()
        .entry(kind.to_owned())
        .or_default();
    *slot = slot.saturating_add(count);
}

fn minutes_text(minutes: &Minutes) -> String {
    minutes
        .iter()
        .map(|(minute, counts)| {
            let counts = counts
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(";");
            format!("{minute}:{counts}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn calls_of(item: Option<&Item>, now_ms: i64, window_ms: i64) -> Vec<i64> {
    let mut calls: Vec<i64> = item
        .and_then(|i| i.s(CALLS))
        .unwrap_or_default()
        .split(',')
        .filter_map(|t| t.parse().ok())
        .filter(|t| *t > now_ms - window_ms)
        .collect();
    calls.sort_unstable();
    calls
}

fn window_ms(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1)
}

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
        let window_ms = window_ms(window);
        let limit = limit.max(1) as usize;
        // More than the window holds is taken as all of it.
        let cost = (cost as usize).min(limit);
        let now_ms = epoch_ms(now);
        for _ in 0..8 {
            let item = self.table.get(&key).await?;
            let revision = item.as_ref().map(revision_of).unwrap_or(0);
            let mut calls = calls_of(item.as_ref(), now_ms, window_ms);
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
            let mut minutes = minutes_of(item.as_ref(), now_ms);
            add_minute(&mut minutes, now_ms, GRANTED, cost as u32);
            let next = Item::new(key.clone())
                .with_s(CALLS, joined)
                .with_s(MINUTES, minutes_text(&minutes))
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

    async fn note(
        &self,
        bucket: &str,
        kind: &str,
        count: u32,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let key = Key::new(format!("BUDGET#{bucket}"), "NOTES");
        let now_ms = epoch_ms(now);
        for _ in 0..8 {
            let item = self.table.get(&key).await?;
            let revision = item.as_ref().map(revision_of).unwrap_or(0);
            let mut minutes = minutes_of(item.as_ref(), now_ms);
            add_minute(&mut minutes, now_ms, kind, count);
            let next = Item::new(key.clone())
                .with_s(MINUTES, minutes_text(&minutes))
                .with_n(attr::REVISION, revision as i64 + 1);
            match self.table.put(next, same_revision(revision)).await {
                Ok(()) => return Ok(()),
                Err(TableError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn usage(
        &self,
        bucket: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<BudgetUsage> {
        let key = Key::new(format!("BUDGET#{bucket}"), "BUDGET");
        let now_ms = epoch_ms(now);
        let item = self.table.get(&key).await?;
        let notes = self
            .table
            .get(&Key::new(format!("BUDGET#{bucket}"), "NOTES"))
            .await?;
        let in_window = calls_of(item.as_ref(), now_ms, window_ms(window)).len();
        let mut minutes = minutes_of(item.as_ref(), now_ms);
        for (minute, counts) in minutes_of(notes.as_ref(), now_ms) {
            minutes.entry(minute).or_default().extend(counts);
        }
        let minutes = minutes
            .into_iter()
            .map(|(minute_ms, mut counts)| MinuteUsage {
                minute_ms,
                granted: counts.remove(GRANTED).unwrap_or(0),
                noted: counts,
            })
            .collect();
        Ok(BudgetUsage {
            in_window: u32::try_from(in_window).unwrap_or(u32::MAX),
            minutes,
        })
    }
}
