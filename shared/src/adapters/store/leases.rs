use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{TableStore, epoch_ms, ttl_seconds};
use crate::adapters::table::{Cond, Item, Key, Table, TableError, Value, attr};
use crate::ports::{LeaseStore, StoreResult};

const HOLDER: &str = "holder";

fn key(name: &str) -> Key {
    Key::new(format!("LEASE#{name}"), "LEASE")
}

#[async_trait]
impl<T: Table> LeaseStore for TableStore<T> {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let until = now + ttl;
        let item = Item::new(key(name))
            .with_s(HOLDER, holder)
            .with_n(attr::EXPIRES_AT, epoch_ms(until))
            .with_n(attr::TTL, ttl_seconds(until));
        let free = Cond::Or(vec![
            Cond::NotExists,
            Cond::Le(attr::EXPIRES_AT.into(), epoch_ms(now)),
            Cond::Eq(HOLDER.into(), Value::S(holder.to_owned())),
        ]);
        match self.table.put(item, free).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> StoreResult<()> {
        match self
            .table
            .delete(
                &key(name),
                Cond::Eq(HOLDER.into(), Value::S(holder.to_owned())),
            )
            .await
        {
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
