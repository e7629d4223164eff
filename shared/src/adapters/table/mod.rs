//! A minimal single-table engine with DynamoDB's semantics: items keyed by
//! `pk`/`sk`, two global secondary indexes, conditional writes, transactions,
//! atomic counters and cursor pagination. The memory and DynamoDB engines both
//! implement it, and the record stores in `adapters::store` are written once
//! against it, so the embedded default cannot drift from DynamoDB.

pub mod dynamodb;
pub mod memory;

use std::collections::BTreeMap;

use async_trait::async_trait;

/// Attribute names with a fixed meaning in every item.
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    pub const GSI2_PK: &str = "gsi2pk";
    pub const GSI2_SK: &str = "gsi2sk";
    /// Epoch milliseconds after which the item no longer counts; checked by every
    /// read and condition that cares (TTL deletes late and is never relied on).
    pub const EXPIRES_AT: &str = "expires_at";
    /// Epoch seconds for DynamoDB's TTL housekeeping.
    pub const TTL: &str = "ttl";
    pub const REVISION: &str = "rev";
    pub const BODY: &str = "body";
}

/// DynamoDB's limit for BatchWriteItem; moto accepts 26, so we enforce it here.
pub const MAX_BATCH_WRITE: usize = 25;
/// DynamoDB's limit for TransactWriteItems.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(i64),
    Bool(bool),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::S(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::N(n) => Some(*n),
            _ => None,
        }
    }
}

/// An item: its key plus flat attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: Key,
    pub attrs: BTreeMap<String, Value>,
}

impl Item {
    pub fn new(key: Key) -> Self {
        Self {
            key,
            attrs: BTreeMap::new(),
        }
    }

    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.attrs.insert(name.to_owned(), value);
        self
    }

    pub fn with_s(self, name: &str, value: impl Into<String>) -> Self {
        self.with(name, Value::S(value.into()))
    }

    pub fn with_n(self, name: &str, value: i64) -> Self {
        self.with(name, Value::N(value))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        match name {
            attr::PK | attr::SK => None,
            _ => self.attrs.get(name),
        }
    }

    pub fn s(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    pub fn n(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
}

/// A condition on the item currently stored under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Always,
    /// No item under the key.
    NotExists,
    /// An item exists under the key.
    Exists,
    AttrNotExists(String),
    Eq(String, Value),
    /// Numeric attribute strictly less than.
    Lt(String, i64),
    /// Numeric attribute less than or equal.
    Le(String, i64),
    /// Numeric attribute strictly greater than.
    Gt(String, i64),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// One change of an update: set, atomically add, or remove an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String, Value),
    Add(String, i64),
    Remove(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
}

impl Index {
    pub fn key_attrs(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => (attr::PK, attr::SK),
            Index::Gsi1 => (attr::GSI1_PK, attr::GSI1_SK),
            Index::Gsi2 => (attr::GSI2_PK, attr::GSI2_SK),
        }
    }
}

/// A condition on the sort key of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkCond {
    Prefix(String),
    /// Strictly below (for "older than" with a descending query).
    Below(String),
}

#[derive(Debug, Clone)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk: Option<SkCond>,
    pub descending: bool,
    pub limit: usize,
    /// The opaque `next` of a previous page.
    pub cursor: Option<String>,
}

impl Query {
    pub fn new(index: Index, pk: impl Into<String>) -> Self {
        Self {
            index,
            pk: pk.into(),
            sk: None,
            descending: false,
            limit: 100,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryPage {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub enum TxOp {
    Put(Item, Cond),
    Delete(Key, Cond),
    Check(Key, Cond),
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("condition failed")]
    ConditionFailed,
    /// One reason per operation, `None` where that operation was fine.
    #[error("transaction cancelled: {0:?}")]
    TransactionCanceled(Vec<Option<String>>),
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("malformed cursor")]
    BadCursor,
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

#[async_trait]
pub trait Table: Send + Sync + 'static {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError>;
    async fn put(&self, item: Item, cond: Cond) -> Result<(), TableError>;
    /// Deletes under `cond`; returns the item that was deleted, if any.
    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>, TableError>;
    /// Applies `changes` under `cond`, creating the item if absent; returns it as now stored.
    async fn update(&self, key: &Key, changes: Vec<Change>, cond: Cond)
    -> Result<Item, TableError>;
    async fn query(&self, query: Query) -> Result<QueryPage, TableError>;
    /// All or nothing.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError>;
    /// Unconditional puts, at most `MAX_BATCH_WRITE` per call.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), TableError>;
}

pub(crate) fn check_batch_size(items: usize) -> Result<(), TableError> {
    if items > MAX_BATCH_WRITE {
        return Err(TableError::Limit(format!(
            "BatchWriteItem takes at most {MAX_BATCH_WRITE} items, got {items}"
        )));
    }
    Ok(())
}

pub(crate) fn check_transaction_size(ops: usize) -> Result<(), TableError> {
    if ops == 0 || ops > MAX_TRANSACTION_ITEMS {
        return Err(TableError::Limit(format!(
            "TransactWriteItems takes 1 to {MAX_TRANSACTION_ITEMS} operations, got {ops}"
        )));
    }
    Ok(())
}
