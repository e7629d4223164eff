//! The store ports, written once over any [`Table`] engine: `TableStore<MemoryTable>`
//! is the embedded adapter, `TableStore<DynamoTable>` the DynamoDB one.
//!
//! Key layout (single table; every partition key starts with the account or the
//! portal so one tenant's traffic never shares a hot partition with another's):
//!
//! | record | pk | sk | gsi1 |
//! |---|---|---|---|
//! | configuration | `ACCT#{account}` | `CONFIG` | |
//! | connection | `ACCT#{account}` | `CONNECTION` | `PORTAL#{portal}` / `CONN#{account}` |
//! | one-time token | `OTT#{kind}#{sha256(token)}` | `OTT` | |
//! | lease | `LEASE#{name}` | `LEASE` | |
//! | deal claim | `PORTAL#{portal}#DEAL#{deal}` | `CLAIM` | |
//! | link | `ACCT#{account}#LINK#{portal}#{type}#{hubspot id}` | `LINK` | `PORTAL#{portal}#{type}#{id}` / `ACCT#{account}`; gsi2 `ACCT#{account}#LINKS#{portal}` |
//! | board pointer | `ACCT#{account}#BOARD#{portal}#{kind}#{board id}` | `BOARD` | |
//! | draft | `ACCT#{account}#DRAFT#{portal}#{deal}` | `DRAFT` | gsi2 `ACCT#{account}#DRAFTS#{state}` / `{updated ms}#…` |
//! | decision | `ACCT#{account}#DEC#{portal}#{deal}` | `{ms}#{id}` | |
//! | history | `ACCT#{account}#HIST#{shard}` | `{history id}` | |
//! | notice | `ACCT#{account}#NOTICE` | `{time}#{id}` | |
//! | rate budget | `BUDGET#{bucket}` | `BUDGET` | |
//! | watermark | `MARK#{name}` | `MARK` | |
//! | board event seen | `ACCT#{account}#EVT#{event id}` | `EVT` | |
//! | object version | `ACCT#{account}#VER#{kind}#{board id}` | `VER` | |

mod budget;
mod config;
mod connections;
mod drafts;
mod history;
mod leases;
mod ledger;
mod links;
mod notifications;
mod tokens;

use std::sync::Arc;

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::table::memory::MemoryTable;
use super::table::{Item, Table, TableError, attr};
use crate::ports::StoreError;

pub use history::HISTORY_SHARDS;

/// Every store port over one table engine.
pub struct TableStore<T: Table> {
    table: Arc<T>,
}

impl<T: Table> Clone for TableStore<T> {
    fn clone(&self) -> Self {
        Self {
            table: Arc::clone(&self.table),
        }
    }
}

impl<T: Table> TableStore<T> {
    pub fn new(table: T) -> Self {
        Self {
            table: Arc::new(table),
        }
    }

    /// The engine underneath, for tests and operational tools that look at raw items.
    pub fn table(&self) -> &T {
        &self.table
    }
}

/// The embedded store: the local stack's default.
pub type MemoryStore = TableStore<MemoryTable>;

impl MemoryStore {
    pub fn in_memory() -> Self {
        Self::new(MemoryTable::new())
    }
}

impl From<TableError> for StoreError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::ConditionFailed | TableError::TransactionCanceled(_) => {
                StoreError::Conflict
            }
            TableError::Limit(m) => StoreError::Limit(m),
            TableError::BadCursor => StoreError::Limit("malformed cursor".into()),
            TableError::Backend(e) => StoreError::Unavailable(e),
        }
    }
}

pub(crate) fn epoch_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// DynamoDB's TTL attribute is in seconds; we add a day so TTL never races a read.
pub(crate) fn ttl_seconds(expires_at: OffsetDateTime) -> i64 {
    expires_at.unix_timestamp() + 86_400
}

pub(crate) fn with_body<B: Serialize>(item: Item, body: &B) -> Result<Item, StoreError> {
    let json = serde_json::to_string(body).context("serialize record")?;
    Ok(item.with_s(attr::BODY, json))
}

pub(crate) fn body_of<B: DeserializeOwned>(item: &Item) -> Result<B, StoreError> {
    let json = item
        .s(attr::BODY)
        .ok_or_else(|| anyhow!("item {}/{} has no body", item.key.pk, item.key.sk))?;
    Ok(serde_json::from_str(json)
        .with_context(|| format!("decode {}/{}", item.key.pk, item.key.sk))?)
}

pub(crate) fn revision_of(item: &Item) -> u64 {
    item.n(attr::REVISION)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0)
}

/// The condition that a revisioned record still has the revision the caller read.
pub(crate) fn same_revision(expected: u64) -> super::table::Cond {
    use super::table::Cond;
    if expected == 0 {
        Cond::NotExists
    } else {
        Cond::Eq(
            attr::REVISION.into(),
            super::table::Value::N(expected as i64),
        )
    }
}
