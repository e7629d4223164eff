use async_trait::async_trait;

use super::{TableStore, body_of, ttl_seconds, with_body};
use crate::adapters::table::{Cond, Index, Item, Key, Query, Table, attr};
use crate::domain::AccountId;
use crate::ports::{Notification, NotificationStore, StoreResult, WatermarkStore};

/// Notices are kept 90 days.
const KEEP: time::Duration = time::Duration::days(90);

#[async_trait]
impl<T: Table> NotificationStore for TableStore<T> {
    async fn notify(&self, n: &Notification) -> StoreResult<()> {
        // The sort key starts with the time so listings come newest first.
        let sk = format!("{}#{}", n.occurred_at.unix_timestamp_nanos(), n.id);
        let item = Item::new(Key::new(format!("ACCT#{}#NOTICE", n.account_id), sk))
            .with_n(attr::TTL, ttl_seconds(n.occurred_at + KEEP));
        Ok(self.table.put(with_body(item, n)?, Cond::NotExists).await?)
    }

    async fn notifications(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        let mut query = Query::new(Index::Primary, format!("ACCT#{account}#NOTICE"));
        query.descending = true;
        query.limit = limit.clamp(1, 100);
        let page = self.table.query(query).await?;
        page.items.iter().map(body_of).collect()
    }
}

const VALUE: &str = "value";

#[async_trait]
impl<T: Table> WatermarkStore for TableStore<T> {
    async fn watermark(&self, name: &str) -> StoreResult<Option<String>> {
        let item = self
            .table
            .get(&Key::new(format!("MARK#{name}"), "MARK"))
            .await?;
        Ok(item.and_then(|i| i.s(VALUE).map(str::to_owned)))
    }

    async fn set_watermark(&self, name: &str, value: &str) -> StoreResult<()> {
        let item = Item::new(Key::new(format!("MARK#{name}"), "MARK")).with_s(VALUE, value);
        Ok(self.table.put(item, Cond::Always).await?)
    }
}
