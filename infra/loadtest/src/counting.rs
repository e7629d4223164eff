//! A work queue that counts the SQS calls its sends would make (SendMessageBatch
//! takes 10 messages), around the real one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use board_hubspot::ports::{ReceivedMessage, StoreResult, WorkQueue};

pub struct CountingQueue {
    pub inner: Arc<dyn WorkQueue>,
    pub send_calls: Arc<AtomicUsize>,
}

impl CountingQueue {
    pub fn sends(&self) -> usize {
        self.send_calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl WorkQueue for CountingQueue {
    async fn send_batch(&self, bodies: &[String]) -> StoreResult<()> {
        self.send_calls
            .fetch_add(bodies.len().div_ceil(10), Ordering::Relaxed);
        self.inner.send_batch(bodies).await
    }
    async fn send_delayed(&self, bodies: &[String], delay: Duration) -> StoreResult<()> {
        self.send_calls
            .fetch_add(bodies.len().div_ceil(10), Ordering::Relaxed);
        self.inner.send_delayed(bodies, delay).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> StoreResult<Vec<ReceivedMessage>> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        self.inner.delete(receipt).await
    }
    async fn retry_after(&self, receipt: &str, delay: Duration) -> StoreResult<()> {
        self.inner.retry_after(receipt, delay).await
    }
    async fn defer(&self, message: &ReceivedMessage, delay: Duration) -> StoreResult<()> {
        self.send_calls.fetch_add(1, Ordering::Relaxed);
        self.inner.defer(message, delay).await
    }
    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> StoreResult<()> {
        self.inner.dead_letter(message, reason).await
    }
    async fn receive_dead_letters(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        self.inner.receive_dead_letters(max).await
    }
    async fn redrive(&self, max: usize) -> StoreResult<usize> {
        self.inner.redrive(max).await
    }
}
