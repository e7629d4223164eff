//! The embedded engine: a sorted map behind a mutex, evaluating conditions and
//! paging exactly as the DynamoDB engine does.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{
    Change, Cond, Index, Item, Key, Query, QueryPage, SkCond, Table, TableError, TxOp, Value,
    check_batch_size, check_transaction_size,
};

#[derive(Debug, Default)]
pub struct MemoryTable {
    items: Mutex<BTreeMap<Key, Item>>,
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Item>> {
        // A panic while holding the lock cannot leave a half-applied write:
        // every write is computed first and inserted in one step.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn holds(cond: &Cond, item: Option<&Item>) -> bool {
    match cond {
        Cond::Always => true,
        Cond::NotExists => item.is_none(),
        Cond::Exists => item.is_some(),
        Cond::AttrNotExists(name) => item.and_then(|i| i.get(name)).is_none(),
        Cond::Eq(name, value) => item.and_then(|i| i.get(name)) == Some(value),
        Cond::Lt(name, n) => number(item, name).is_some_and(|v| v < *n),
        Cond::Le(name, n) => number(item, name).is_some_and(|v| v <= *n),
        Cond::Gt(name, n) => number(item, name).is_some_and(|v| v > *n),
        Cond::And(all) => all.iter().all(|c| holds(c, item)),
        Cond::Or(any) => any.iter().any(|c| holds(c, item)),
    }
}

fn number(item: Option<&Item>, name: &str) -> Option<i64> {
    item.and_then(|i| i.n(name))
}

fn index_keys(item: &Item, index: Index) -> Option<(String, String)> {
    match index {
        Index::Primary => Some((item.key.pk.clone(), item.key.sk.clone())),
        _ => {
            let (pk, sk) = index.key_attrs();
            Some((item.s(pk)?.to_owned(), item.s(sk)?.to_owned()))
        }
    }
}

/// Position after an item: its index sort key, then its primary key (ties).
type Position = (String, String, String);

fn encode_cursor(pos: &Position) -> String {
    let json = serde_json::to_vec(&[&pos.0, &pos.1, &pos.2]).expect("strings serialize");
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(cursor: &str) -> Result<Position, TableError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| TableError::BadCursor)?;
    let [a, b, c]: [String; 3] =
        serde_json::from_slice(&bytes).map_err(|_| TableError::BadCursor)?;
    Ok((a, b, c))
}

fn apply(mut item: Item, changes: Vec<Change>) -> Item {
    for change in changes {
        match change {
            Change::Set(name, value) => {
                item.attrs.insert(name, value);
            }
            Change::Add(name, delta) => {
                let current = item.n(&name).unwrap_or(0);
                item.attrs.insert(name, Value::N(current + delta));
            }
            Change::Remove(name) => {
                item.attrs.remove(&name);
            }
        }
    }
    item
}

#[async_trait]
impl Table for MemoryTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), TableError> {
        let mut items = self.lock();
        if !holds(&cond, items.get(&item.key)) {
            return Err(TableError::ConditionFailed);
        }
        items.insert(item.key.clone(), item);
        Ok(())
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>, TableError> {
        let mut items = self.lock();
        if !holds(&cond, items.get(key)) {
            return Err(TableError::ConditionFailed);
        }
        Ok(items.remove(key))
    }

    async fn update(
        &self,
        key: &Key,
        changes: Vec<Change>,
        cond: Cond,
    ) -> Result<Item, TableError> {
        let mut items = self.lock();
        let current = items.get(key);
        if !holds(&cond, current) {
            return Err(TableError::ConditionFailed);
        }
        let base = current.cloned().unwrap_or_else(|| Item::new(key.clone()));
        let updated = apply(base, changes);
        items.insert(key.clone(), updated.clone());
        Ok(updated)
    }

    async fn query(&self, query: Query) -> Result<QueryPage, TableError> {
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let items = self.lock();
        let mut matching: Vec<(Position, &Item)> = items
            .values()
            .filter_map(|item| {
                let (pk, sk) = index_keys(item, query.index)?;
                let sk_ok = match &query.sk {
                    None => true,
                    Some(SkCond::Prefix(p)) => sk.starts_with(p.as_str()),
                    Some(SkCond::Below(b)) => sk < *b,
                };
                (pk == query.pk && sk_ok)
                    .then(|| ((sk, item.key.pk.clone(), item.key.sk.clone()), item))
            })
            .collect();
        matching.sort_by(|a, b| a.0.cmp(&b.0));
        if query.descending {
            matching.reverse();
        }
        let start = match &after {
            None => 0,
            Some(pos) => matching
                .iter()
                .position(|(p, _)| if query.descending { p < pos } else { p > pos })
                .unwrap_or(matching.len()),
        };
        let limit = query.limit.max(1);
        let page: Vec<&(Position, &Item)> = matching[start..].iter().take(limit).collect();
        let more = matching.len() > start + page.len();
        let next = if more {
            page.last().map(|(p, _)| encode_cursor(p))
        } else {
            None
        };
        Ok(QueryPage {
            items: page.into_iter().map(|(_, i)| (*i).clone()).collect(),
            next,
        })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        check_transaction_size(ops.len())?;
        let mut seen = HashSet::new();
        for op in &ops {
            let key = match op {
                TxOp::Put(item, _) => &item.key,
                TxOp::Delete(key, _) | TxOp::Check(key, _) => key,
            };
            if !seen.insert(key.clone()) {
                return Err(TableError::Limit(
                    "a transaction cannot include two operations on one item".into(),
                ));
            }
        }
        let mut items = self.lock();
        let reasons: Vec<Option<String>> = ops
            .iter()
            .map(|op| {
                let (key, cond) = match op {
                    TxOp::Put(item, cond) => (&item.key, cond),
                    TxOp::Delete(key, cond) | TxOp::Check(key, cond) => (key, cond),
                };
                (!holds(cond, items.get(key))).then(|| "ConditionalCheckFailed".to_owned())
            })
            .collect();
        if reasons.iter().any(Option::is_some) {
            return Err(TableError::TransactionCanceled(reasons));
        }
        for op in ops {
            match op {
                TxOp::Put(item, _) => {
                    items.insert(item.key.clone(), item);
                }
                TxOp::Delete(key, _) => {
                    items.remove(&key);
                }
                TxOp::Check(..) => {}
            }
        }
        Ok(())
    }

    async fn batch_put(&self, batch: Vec<Item>) -> Result<(), TableError> {
        check_batch_size(batch.len())?;
        let mut items = self.lock();
        for item in batch {
            items.insert(item.key.clone(), item);
        }
        Ok(())
    }
}
