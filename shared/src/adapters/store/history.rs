use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{TableStore, body_of, ttl_seconds, with_body};
use crate::adapters::table::{Cond, Index, Item, Key, Query, SkCond, Table, attr};
use crate::domain::history::HistoryEntry;
use crate::domain::{AccountId, HistoryId};
use crate::ports::{Cursor, HistoryStore, Page, StoreError, StoreResult};

/// History of one account is spread over this many partitions so a bulk sync
/// cannot make one hot partition; listings merge them (ids sort by time).
pub const HISTORY_SHARDS: u8 = 4;

fn shard_of(id: &HistoryId) -> u8 {
    Sha256::digest(id.as_str().as_bytes())[0] % HISTORY_SHARDS
}

fn pk(account: &AccountId, shard: u8) -> String {
    format!("ACCT#{account}#HIST#{shard}")
}

#[async_trait]
impl<T: Table> HistoryStore for TableStore<T> {
    async fn append(&self, entry: &HistoryEntry, expires_at: OffsetDateTime) -> StoreResult<()> {
        let key = Key::new(
            pk(&entry.account_id, shard_of(&entry.id)),
            entry.id.as_str(),
        );
        let item = with_body(
            Item::new(key).with_n(attr::TTL, ttl_seconds(expires_at)),
            entry,
        )?;
        Ok(self.table.put(item, Cond::NotExists).await?)
    }

    async fn entry(
        &self,
        account: &AccountId,
        id: &HistoryId,
    ) -> StoreResult<Option<HistoryEntry>> {
        let key = Key::new(pk(account, shard_of(id)), id.as_str());
        self.table
            .get(&key)
            .await?
            .as_ref()
            .map(body_of)
            .transpose()
    }

    async fn entries(
        &self,
        account: &AccountId,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<HistoryEntry>> {
        let limit = limit.clamp(1, 200);
        // The cursor is the id of the last entry returned: each shard resumes below it.
        let below = cursor
            .map(|c| {
                HistoryId::new(c.0.clone())
                    .map_err(|_| StoreError::Limit("malformed cursor".into()))
            })
            .transpose()?;
        let mut merged: Vec<HistoryEntry> = Vec::new();
        for shard in 0..HISTORY_SHARDS {
            let mut query = Query::new(Index::Primary, pk(account, shard));
            query.descending = true;
            query.limit = limit + 1;
            query.sk = below.as_ref().map(|b| SkCond::Below(b.as_str().to_owned()));
            let page = self.table.query(query).await?;
            for item in &page.items {
                merged.push(body_of(item)?);
            }
        }
        merged.sort_by(|a, b| b.id.cmp(&a.id));
        let more = merged.len() > limit;
        merged.truncate(limit);
        let next = if more {
            merged.last().map(|e| Cursor(e.id.as_str().to_owned()))
        } else {
            None
        };
        Ok(Page {
            items: merged,
            next,
        })
    }
}
