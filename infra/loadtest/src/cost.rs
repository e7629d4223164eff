//! What a scenario's work would cost on AWS: DynamoDB request units counted by
//! a table wrapper (as DynamoDB meters them: reads per 4 KB, strongly
//! consistent on the table and eventually consistent on the GSIs, writes per
//! 1 KB plus one write per GSI the item is in, transactions twice), SQS requests
//! counted by the queue wrapper (`counting.rs`), and Lambda GB-seconds from the
//! worker's busy time at the template's memory size. Prices in `PRICES`.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use board_hubspot::adapters::table::{
    Change, Cond, Index, Item, Key, Query, QueryPage, Table, TableError, TxOp,
};
use serde_json::{Value, json};

/// Request units and requests, shared by every wrapper of the process.
pub static READ_UNITS_HALVES: AtomicU64 = AtomicU64::new(0);
pub static WRITE_UNITS: AtomicU64 = AtomicU64::new(0);
pub static SQS_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// List prices, US East (N. Virginia), as of 2026-12-07 (README, "Cost per
/// 1,000 records"): DynamoDB on-demand, SQS standard, Lambda arm64.
pub struct Prices {
    pub per_million_read_units: f64,
    pub per_million_write_units: f64,
    pub per_million_sqs_requests: f64,
    pub per_gb_second: f64,
    /// The worker's memory in the template (`MemorySize`, GB).
    pub worker_memory_gb: f64,
}

pub const PRICES: Prices = Prices {
    per_million_read_units: 0.125,
    per_million_write_units: 0.625,
    per_million_sqs_requests: 0.40,
    per_gb_second: 0.000_013_333_4,
    worker_memory_gb: 0.25,
};

/// DynamoDB's size of an item: attribute names and values.
fn size(item: &Item) -> u64 {
    let value = |v: &board_hubspot::adapters::table::Value| match v {
        board_hubspot::adapters::table::Value::S(s) => s.len() as u64,
        board_hubspot::adapters::table::Value::N(_) => 8,
        board_hubspot::adapters::table::Value::Bool(_) => 1,
    };
    let key = 2 + item.key.pk.len() as u64 + 2 + item.key.sk.len() as u64;
    key + item
        .attrs
        .iter()
        .map(|(k, v)| k.len() as u64 + value(v))
        .sum::<u64>()
}

/// Write units of writing `item` (its GSI copies included).
fn write_units(item: &Item) -> u64 {
    let own = size(item).div_ceil(1024).max(1);
    let indexes = ["gsi1pk", "gsi2pk"]
        .iter()
        .filter(|a| item.attrs.contains_key(**a))
        .count() as u64;
    own * (1 + indexes)
}

/// Half read units of reading `bytes` (a strongly consistent read is 2 halves per 4 KB).
fn read_halves(bytes: u64, consistent: bool) -> u64 {
    let units = bytes.div_ceil(4096).max(1);
    if consistent { units * 2 } else { units }
}

/// A table that meters what it is asked, around the real one.
pub struct CountingTable<T: Table> {
    pub inner: T,
}

#[async_trait]
impl<T: Table> Table for CountingTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let found = self.inner.get(key).await?;
        let bytes = found.as_ref().map(size).unwrap_or(0);
        READ_UNITS_HALVES.fetch_add(read_halves(bytes, true), Ordering::Relaxed);
        Ok(found)
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), TableError> {
        WRITE_UNITS.fetch_add(write_units(&item), Ordering::Relaxed);
        self.inner.put(item, cond).await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>, TableError> {
        let gone = self.inner.delete(key, cond).await?;
        WRITE_UNITS.fetch_add(
            gone.as_ref().map(write_units).unwrap_or(1),
            Ordering::Relaxed,
        );
        Ok(gone)
    }

    async fn update(
        &self,
        key: &Key,
        changes: Vec<Change>,
        cond: Cond,
    ) -> Result<Item, TableError> {
        let updated = self.inner.update(key, changes, cond).await?;
        WRITE_UNITS.fetch_add(write_units(&updated), Ordering::Relaxed);
        Ok(updated)
    }

    async fn query(&self, query: Query) -> Result<QueryPage, TableError> {
        let consistent = query.index == Index::Primary;
        let page = self.inner.query(query).await?;
        let bytes: u64 = page.items.iter().map(size).sum();
        READ_UNITS_HALVES.fetch_add(read_halves(bytes, consistent), Ordering::Relaxed);
        Ok(page)
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        let units: u64 = ops
            .iter()
            .map(|op| match op {
                TxOp::Put(item, _) => 2 * write_units(item),
                TxOp::Delete(_, _) | TxOp::Check(_, _) => 2,
            })
            .sum();
        WRITE_UNITS.fetch_add(units, Ordering::Relaxed);
        self.inner.transact(ops).await
    }

    async fn batch_put(&self, items: Vec<Item>) -> Result<(), TableError> {
        WRITE_UNITS.fetch_add(items.iter().map(write_units).sum(), Ordering::Relaxed);
        self.inner.batch_put(items).await
    }
}

/// Starts the count over: a scenario calls it where its measured work begins,
/// so the connection and the seeding are not counted.
pub fn reset() {
    READ_UNITS_HALVES.store(0, Ordering::Relaxed);
    WRITE_UNITS.store(0, Ordering::Relaxed);
    SQS_REQUESTS.store(0, Ordering::Relaxed);
    sync_worker::BUSY_NANOS.store(0, Ordering::Relaxed);
}

/// The records a scenario synced, from its figures.
pub fn records_of(figures: &serde_json::Map<String, Value>) -> u64 {
    let get = |k: &str| figures.get(k).and_then(Value::as_u64);
    get("records")
        .or_else(|| get("changed_objects"))
        .or_else(|| get("samples").map(|n| 2 * n))
        .or_else(|| get("events"))
        .unwrap_or(0)
}

/// The scenario's cost figures for `records` synced records.
pub fn figures(records: u64) -> Value {
    let reads = READ_UNITS_HALVES.load(Ordering::Relaxed) as f64 / 2.0;
    let writes = WRITE_UNITS.load(Ordering::Relaxed) as f64;
    let sqs = SQS_REQUESTS.load(Ordering::Relaxed) as f64;
    let busy_s = sync_worker::BUSY_NANOS.load(Ordering::Relaxed) as f64 / 1_000_000_000.0;
    let gb_s = busy_s * PRICES.worker_memory_gb;
    let per = |x: f64| x * 1000.0 / (records.max(1) as f64);
    let usd = reads * PRICES.per_million_read_units / 1e6
        + writes * PRICES.per_million_write_units / 1e6
        + sqs * PRICES.per_million_sqs_requests / 1e6
        + gb_s * PRICES.per_gb_second;
    json!({
        "cost_per_1000_records_usd": round(per(usd), 6),
        "cost_per_1000_records": {
            "dynamodb_read_units": round(per(reads), 1),
            "dynamodb_write_units": round(per(writes), 1),
            "sqs_requests": round(per(sqs), 1),
            "lambda_gb_seconds": round(per(gb_s), 3),
        },
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A queue that meters the SQS requests made on it (`SQS_REQUESTS`), around the real one.
pub struct MeteredQueue {
    pub inner: std::sync::Arc<dyn board_hubspot::ports::WorkQueue>,
}

fn meter(requests: u64) {
    SQS_REQUESTS.fetch_add(requests, Ordering::Relaxed);
}

#[async_trait]
impl board_hubspot::ports::WorkQueue for MeteredQueue {
    async fn send_batch(&self, bodies: &[String]) -> board_hubspot::ports::StoreResult<()> {
        meter(bodies.len().div_ceil(10) as u64);
        self.inner.send_batch(bodies).await
    }
    async fn send_delayed(
        &self,
        bodies: &[String],
        delay: std::time::Duration,
    ) -> board_hubspot::ports::StoreResult<()> {
        meter(bodies.len().div_ceil(10) as u64);
        self.inner.send_delayed(bodies, delay).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: std::time::Duration,
    ) -> board_hubspot::ports::StoreResult<Vec<board_hubspot::ports::ReceivedMessage>> {
        meter(1);
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> board_hubspot::ports::StoreResult<()> {
        meter(1);
        self.inner.delete(receipt).await
    }
    async fn delete_batch(&self, receipts: &[&str]) -> board_hubspot::ports::StoreResult<()> {
        meter(receipts.len().div_ceil(10) as u64);
        self.inner.delete_batch(receipts).await
    }
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> board_hubspot::ports::StoreResult<()> {
        meter(1);
        self.inner.retry_after(receipt, delay).await
    }
    async fn defer(
        &self,
        message: &board_hubspot::ports::ReceivedMessage,
        delay: std::time::Duration,
    ) -> board_hubspot::ports::StoreResult<()> {
        meter(2);
        self.inner.defer(message, delay).await
    }
    async fn dead_letter(
        &self,
        message: &board_hubspot::ports::ReceivedMessage,
        reason: &str,
    ) -> board_hubspot::ports::StoreResult<()> {
        meter(2);
        self.inner.dead_letter(message, reason).await
    }
    async fn receive_dead_letters(
        &self,
        max: usize,
    ) -> board_hubspot::ports::StoreResult<Vec<board_hubspot::ports::ReceivedMessage>> {
        meter(1);
        self.inner.receive_dead_letters(max).await
    }
    async fn redrive(&self, max: usize) -> board_hubspot::ports::StoreResult<usize> {
        self.inner.redrive(max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use board_hubspot::adapters::table::Value as V;

    #[test]
    fn items_are_metered_as_dynamodb_meters_them() {
        let small = Item::new(Key::new("ACCT#a", "LINK")).with("gsi1pk", V::S("x".into()));
        assert_eq!(write_units(&small), 2, "1 KB and one GSI copy");
        let big = Item::new(Key::new("p", "s")).with("body", V::S("x".repeat(3000)));
        assert_eq!(write_units(&big), 3);
        assert_eq!(read_halves(0, true), 2, "a miss still costs a read");
        assert_eq!(read_halves(5000, true), 4);
        assert_eq!(read_halves(5000, false), 2);
    }
}

#[cfg(test)]
mod figures_tests {
    #[test]
    fn every_scenario_reports_its_cost_per_1000_records() {
        let mut figures = serde_json::Map::new();
        figures.insert("records".into(), 10.into());
        let figures = crate::scenarios::finish(figures);
        assert!(
            figures["cost_per_1000_records_usd"].is_number(),
            "{figures:?}"
        );
        for key in [
            "dynamodb_read_units",
            "dynamodb_write_units",
            "sqs_requests",
            "lambda_gb_seconds",
        ] {
            assert!(figures["cost_per_1000_records"][key].is_number(), "{key}");
        }
    }
}
