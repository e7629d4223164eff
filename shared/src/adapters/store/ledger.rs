use async_trait::async_trait;
use time::OffsetDateTime;

use super::{TableStore, epoch_ms, ttl_seconds};
use crate::adapters::table::{Change, Cond, Item, Key, Table, TableError, TxOp, Value, attr};
use crate::domain::{AccountId, BoardRef};
use crate::ports::{Admission, BoardEventLedger, StoreResult};

const VERSION: &str = "version";
const INTENT: &str = "intent";

fn event_key(account: &AccountId, event_id: &str) -> Key {
    Key::new(format!("ACCT#{account}#EVT#{event_id}"), "EVT")
}

fn version_key(account: &AccountId, object: BoardRef) -> Key {
    Key::new(
        format!("ACCT#{account}#VER#{}#{}", object.kind.as_str(), object.id),
        "VER",
    )
}

fn stored_version(version: u64) -> Result<i64, crate::ports::StoreError> {
    i64::try_from(version)
        .map_err(|_| crate::ports::StoreError::Limit("version out of range".into()))
}

#[async_trait]
impl<T: Table> BoardEventLedger for TableStore<T> {
    async fn admit(
        &self,
        account: &AccountId,
        event_id: &str,
        versioned: Option<(BoardRef, u64)>,
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> StoreResult<Admission> {
        let Some((object, version)) = versioned else {
            return Ok(
                if self
                    .first_sighting(account, event_id, now, keep_until)
                    .await?
                {
                    Admission::Admitted
                } else {
                    Admission::Seen
                },
            );
        };
        let version = stored_version(version)?;
        let seen = Item::new(event_key(account, event_id))
            .with_n(attr::EXPIRES_AT, epoch_ms(keep_until))
            .with_n(attr::TTL, ttl_seconds(keep_until));
        let unseen = Cond::Or(vec![
            Cond::NotExists,
            Cond::Le(attr::EXPIRES_AT.into(), epoch_ms(now)),
        ]);
        let applied = Item::new(version_key(account, object)).with_n(VERSION, version);
        let older = Cond::Or(vec![
            Cond::AttrNotExists(VERSION.into()),
            Cond::Lt(VERSION.into(), version),
        ]);
        // One transaction: both written, or neither.
        match self
            .table
            .transact(vec![TxOp::Put(seen, unseen), TxOp::Put(applied, older)])
            .await
        {
            Ok(()) => Ok(Admission::Admitted),
            Err(TableError::TransactionCanceled(reasons))
                if reasons.first().is_some_and(Option::is_some) =>
            {
                Ok(Admission::Seen)
            }
            Err(TableError::TransactionCanceled(reasons))
                if reasons.get(1).is_some_and(Option::is_some) =>
            {
                // Stale: remember the id so a second copy is a plain duplicate.
                // Losing this write only means judging it stale again.
                self.first_sighting(account, event_id, now, keep_until)
                    .await?;
                Ok(Admission::Stale)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn first_sighting(
        &self,
        account: &AccountId,
        event_id: &str,
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let item = Item::new(Key::new(format!("ACCT#{account}#EVT#{event_id}"), "EVT"))
            .with_n(attr::EXPIRES_AT, epoch_ms(keep_until))
            .with_n(attr::TTL, ttl_seconds(keep_until));
        let unseen = Cond::Or(vec![
            Cond::NotExists,
            Cond::Le(attr::EXPIRES_AT.into(), epoch_ms(now)),
        ]);
        match self.table.put(item, unseen).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn advance_version(
        &self,
        account: &AccountId,
        object: BoardRef,
        version: u64,
    ) -> StoreResult<bool> {
        let version = i64::try_from(version)
            .map_err(|_| crate::ports::StoreError::Limit("version out of range".into()))?;
        let key = Key::new(
            format!("ACCT#{account}#VER#{}#{}", object.kind.as_str(), object.id),
            "VER",
        );
        let older = Cond::Or(vec![
            Cond::AttrNotExists(VERSION.into()),
            Cond::Lt(VERSION.into(), version),
        ]);
        match self
            .table
            .update(
                &key,
                vec![Change::Set(VERSION.into(), Value::N(version))],
                older,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn intent(
        &self,
        account: &AccountId,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>> {
        let key = Key::new(format!("ACCT#{account}#INTENT#{key}"), "INTENT");
        Ok(self
            .table
            .get(&key)
            .await?
            .filter(|item| item.n(attr::EXPIRES_AT).is_none_or(|e| e > epoch_ms(now)))
            .and_then(|item| item.s(INTENT).map(str::to_owned)))
    }

    async fn set_intent(
        &self,
        account: &AccountId,
        key: &str,
        value: &str,
        keep_until: OffsetDateTime,
    ) -> StoreResult<()> {
        let item = Item::new(Key::new(format!("ACCT#{account}#INTENT#{key}"), "INTENT"))
            .with_s(INTENT, value)
            .with_n(attr::EXPIRES_AT, epoch_ms(keep_until))
            .with_n(attr::TTL, ttl_seconds(keep_until));
        self.table.put(item, Cond::Always).await?;
        Ok(())
    }

    async fn applied_version(
        &self,
        account: &AccountId,
        object: BoardRef,
    ) -> StoreResult<Option<u64>> {
        let key = Key::new(
            format!("ACCT#{account}#VER#{}#{}", object.kind.as_str(), object.id),
            "VER",
        );
        Ok(self
            .table
            .get(&key)
            .await?
            .and_then(|item| item.n(VERSION))
            .and_then(|v| u64::try_from(v).ok()))
    }

    async fn release_event(
        &self,
        account: &AccountId,
        event_id: &str,
        object: BoardRef,
        version: u64,
    ) -> StoreResult<()> {
        let event = Key::new(format!("ACCT#{account}#EVT#{event_id}"), "EVT");
        self.table.delete(&event, Cond::Always).await?;
        let version = i64::try_from(version)
            .map_err(|_| crate::ports::StoreError::Limit("version out of range".into()))?;
        let key = Key::new(
            format!("ACCT#{account}#VER#{}#{}", object.kind.as_str(), object.id),
            "VER",
        );
        match self
            .table
            .update(
                &key,
                vec![Change::Set(VERSION.into(), Value::N(version - 1))],
                Cond::Eq(VERSION.into(), Value::N(version)),
            )
            .await
        {
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
