//! An in-memory queue with SQS's semantics: invisible while being worked on,
//! visible again after the visibility timeout or an explicit delay, moved to the
//! dead-letter queue on the receive after `max_receives`; and SQS fair queues'
//! delivery rule (messages grouped by tenant, `MessageGroupId`): a tenant with more
//! than 10 % of the in-flight messages and at least 30 of its own is noisy, and
//! every other tenant's visible messages are delivered before its own; among noisy
//! tenants, the one with the fewest in flight first
//! (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues-detailed.html);
//! a tenant with more than 10 % of the recent processing time is noisy too (same
//! page; "recent" is not quantified there: a minute here, a guess listed in the
//! README). Delays and visibility changes count in whole seconds, as SQS's
//! `DelaySeconds` and `VisibilityTimeout` do.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::REASON_ATTRIBUTE;
use crate::ports::{ReceivedMessage, StoreError, StoreResult, WorkQueue};

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    /// The tenant (`MessageGroupId`).
    group: String,
    body: String,
    attributes: Vec<(String, String)>,
    visible_at: Instant,
    receive_count: u32,
    receipt: Option<String>,
    /// When the current receive took it (its processing time ends with a
    /// delete, a deferral or a new visibility).
    received_at: Option<Instant>,
}

#[derive(Debug)]
struct Lane {
    messages: Mutex<Vec<Stored>>,
    arrived: Notify,
    /// Recent processing: (ended at, tenant, how long), for the fair
    /// queues' processing-time share.
    processing: Mutex<std::collections::VecDeque<(Instant, String, Duration)>>,
}

impl Lane {
    fn new() -> Self {
        Self {
            messages: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            processing: Mutex::new(Default::default()),
        }
    }

    /// A receive's processing ended now (deleted, deferred, retried later).
    fn processed(&self, message: &Stored) {
        let Some(at) = message.received_at else {
            return;
        };
        let now = Instant::now();
        let mut recent = self.processing.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back((now, message.group.clone(), now.duration_since(at)));
        while recent
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) > RECENT_PROCESSING)
        {
            recent.pop_front();
        }
    }

    /// Each tenant's share of the recent processing time.
    fn processing_shares(&self, now: Instant) -> std::collections::HashMap<String, f64> {
        let recent = self.processing.lock().unwrap_or_else(|p| p.into_inner());
        let mut per: std::collections::HashMap<String, f64> = Default::default();
        let mut total = 0.0;
        for (at, group, took) in recent.iter() {
            if now.duration_since(*at) <= RECENT_PROCESSING {
                *per.entry(group.clone()).or_default() += took.as_secs_f64();
                total += took.as_secs_f64();
            }
        }
        if total > 0.0 {
            for share in per.values_mut() {
                *share /= total;
            }
        }
        per
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Stored>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, body: String, attributes: Vec<(String, String)>) {
        self.push_after(body, attributes, Duration::ZERO);
    }

    fn push_after(&self, body: String, attributes: Vec<(String, String)>, delay: Duration) {
        self.lock().push(Stored {
            id: uuid::Uuid::new_v4().to_string(),
            group: crate::ports::tenant_of(&body),
            body,
            attributes,
            visible_at: Instant::now() + delay,
            receive_count: 0,
            receipt: None,
            received_at: None,
        });
        self.arrived.notify_waiters();
    }
}

/// A work queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    work: Arc<Lane>,
    dead: Arc<Lane>,
    visibility: Duration,
    max_receives: u32,
}

impl MemoryQueue {
    /// `visibility`: how long a received message stays invisible;
    /// `max_receives`: receives before the message moves to the DLQ (SQS `maxReceiveCount`).
    pub fn new(visibility: Duration, max_receives: u32) -> Self {
        Self {
            work: Arc::new(Lane::new()),
            dead: Arc::new(Lane::new()),
            visibility,
            max_receives: max_receives.max(1),
        }
    }

    /// Messages in the work queue, visible or not (for tests and the local stack's status).
    pub fn depth(&self) -> usize {
        self.work.lock().len()
    }

    /// Messages in the dead-letter queue.
    pub fn dead_depth(&self) -> usize {
        self.dead.lock().len()
    }

    fn take_visible(
        &self,
        lane: &Lane,
        max: usize,
        dead_letter_over: Option<u32>,
        visibility: Duration,
    ) -> Vec<ReceivedMessage> {
        let now = Instant::now();
        let mut taken = Vec::new();
        let mut overdue = Vec::new();
        {
            let mut messages = lane.lock();
            // Received too often: to the dead-letter queue on this receive, as SQS's redrive does.
            if let Some(limit) = dead_letter_over {
                let mut i = 0;
                while i < messages.len() {
                    if messages[i].visible_at <= now && messages[i].receive_count >= limit {
                        overdue.push(messages.remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            let shares = lane.processing_shares(now);
            for i in fair_order(&messages, now, max, &shares) {
                let m = &mut messages[i];
                m.receive_count += 1;
                m.visible_at = now + visibility;
                let receipt = uuid::Uuid::new_v4().to_string();
                m.receipt = Some(receipt.clone());
                m.received_at = Some(now);
                taken.push(ReceivedMessage {
                    message_id: m.id.clone(),
                    receipt,
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                    attributes: m.attributes.clone(),
                });
            }
        }
        for mut m in overdue {
            // As SQS's redrive policy does: same body and attributes, counts restart.
            m.receive_count = 0;
            m.receipt = None;
            m.received_at = None;
            m.visible_at = now;
            self.dead.lock().push(m);
        }
        taken
    }

    fn remove(lane: &Lane, receipt: &str) -> Option<Stored> {
        let mut messages = lane.lock();
        let index = messages
            .iter()
            .position(|m| m.receipt.as_deref() == Some(receipt))?;
        let removed = messages.remove(index);
        drop(messages);
        lane.processed(&removed);
        Some(removed)
    }
}

/// Up to `max` visible messages' indexes in delivery order: quiet tenants'
/// first (in arrival order), then noisy tenants', the one with the fewest in
/// flight first. A tenant is noisy by its in-flight messages or by its share
/// of the recent processing time (`shares`). One pass to count, one to
/// choose: O(messages) per receive.
fn fair_order(
    messages: &[Stored],
    now: Instant,
    max: usize,
    shares: &std::collections::HashMap<String, f64>,
) -> Vec<usize> {
    let mut in_flight: std::collections::HashMap<&str, usize> = Default::default();
    for m in messages
        .iter()
        .filter(|m| m.receipt.is_some() && m.visible_at > now)
    {
        *in_flight.entry(m.group.as_str()).or_default() += 1;
    }
    let total: usize = in_flight.values().sum();
    let noisy = |group: &str| {
        let own = in_flight.get(group).copied().unwrap_or(0);
        (own >= NOISY_IN_FLIGHT && own * 10 > total)
            || shares
                .get(group)
                .is_some_and(|share| *share > NOISY_PROCESSING_SHARE)
    };
    let mut quiet = Vec::new();
    let mut held: std::collections::BTreeMap<(usize, &str), Vec<usize>> = Default::default();
    for (i, m) in messages.iter().enumerate() {
        if m.visible_at > now {
            continue;
        }
        let group = m.group.as_str();
        if noisy(group) {
            let key = (in_flight.get(group).copied().unwrap_or(0), group);
            let waiting = held.entry(key).or_default();
            if waiting.len() < max {
                waiting.push(i);
            }
        } else {
            quiet.push(i);
            if quiet.len() == max {
                break;
            }
        }
    }
    quiet.extend(held.into_values().flatten());
    quiet.truncate(max);
    quiet
}

/// In-flight messages a tenant needs (beside a 10 % share) to count as noisy.
const NOISY_IN_FLIGHT: usize = 30;

/// A tenant with more of the recent processing time than this is noisy too.
const NOISY_PROCESSING_SHARE: f64 = 0.10;

/// What "recent" processing time is: AWS does not say; a minute is a guess
/// (README, the emulators' guesses).
const RECENT_PROCESSING: Duration = Duration::from_secs(60);

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn send_batch(&self, bodies: &[String]) -> StoreResult<()> {
        for body in bodies {
            self.work.push(body.clone(), Vec::new());
        }
        Ok(())
    }

    async fn send_delayed(&self, bodies: &[String], delay: Duration) -> StoreResult<()> {
        if delay > super::MAX_DELAY {
            return Err(StoreError::Limit("message delay above 15 minutes".into()));
        }
        // Whole seconds, as SQS's `DelaySeconds` takes them.
        let delay = Duration::from_secs(delay.as_secs());
        for body in bodies {
            self.work.push_after(body.clone(), Vec::new(), delay);
        }
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> StoreResult<Vec<ReceivedMessage>> {
        if !(1..=super::MAX_BATCH).contains(&max) {
            return Err(StoreError::Limit(format!(
                "receive takes 1 to 10 messages, got {max}"
            )));
        }
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.work.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let taken =
                self.take_visible(&self.work, max, Some(self.max_receives), self.visibility);
            if !taken.is_empty() {
                return Ok(taken);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Wake on a new message, or poll for delayed ones becoming visible.
            let nap = (deadline - now).min(Duration::from_millis(20));
            let _ = tokio::time::timeout(nap, arrived).await;
        }
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        Self::remove(&self.work, receipt);
        Self::remove(&self.dead, receipt);
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> StoreResult<()> {
        if delay > Duration::from_secs(43_200) {
            return Err(StoreError::Limit("visibility delay above 12 hours".into()));
        }
        let mut messages = self.work.lock();
        let ended = messages
            .iter_mut()
            .find(|m| m.receipt.as_deref() == Some(receipt))
            .map(|m| {
                // Whole seconds, as SQS's `VisibilityTimeout` takes them.
                m.visible_at = Instant::now() + Duration::from_secs(delay.as_secs());
                let ended = m.clone();
                m.received_at = None;
                ended
            });
        drop(messages);
        if let Some(ended) = ended {
            self.work.processed(&ended);
        }
        Ok(())
    }

    async fn defer(&self, message: &ReceivedMessage, delay: Duration) -> StoreResult<()> {
        if delay > super::MAX_DELAY {
            return Err(StoreError::Limit("message delay above 15 minutes".into()));
        }
        // Whole seconds, as SQS's `DelaySeconds` takes them.
        self.work.push_after(
            message.body.clone(),
            message.attributes.clone(),
            Duration::from_secs(delay.as_secs()),
        );
        Self::remove(&self.work, &message.receipt);
        Ok(())
    }

    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> StoreResult<()> {
        let mut attributes = message.attributes.clone();
        attributes.retain(|(k, _)| k != REASON_ATTRIBUTE);
        attributes.push((REASON_ATTRIBUTE.to_owned(), reason.to_owned()));
        self.dead.push(message.body.clone(), attributes);
        Self::remove(&self.work, &message.receipt);
        Ok(())
    }

    async fn receive_dead_letters(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        Ok(self.take_visible(
            &self.dead,
            max.clamp(1, super::MAX_BATCH),
            None,
            Duration::ZERO,
        ))
    }

    async fn redrive(&self, max: usize) -> StoreResult<usize> {
        let mut moved = 0;
        while moved < max {
            let batch = self.take_visible(
                &self.dead,
                (max - moved).min(super::MAX_BATCH),
                None,
                self.visibility,
            );
            if batch.is_empty() {
                break;
            }
            for message in batch {
                self.work.push(message.body.clone(), Vec::new());
                Self::remove(&self.dead, &message.receipt);
                moved += 1;
            }
        }
        Ok(moved)
    }
}
