//! SQS: a standard work queue whose RedrivePolicy names its dead-letter queue.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};

use super::{MAX_BATCH, REASON_ATTRIBUTE, batches};
use crate::ports::{ReceivedMessage, StoreError, StoreResult, WorkQueue};

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
}

fn unavailable<E>(what: &str, err: aws_sdk_sqs::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Unavailable(anyhow!("{what}: {}", DisplayErrorContext(err)))
}

/// SQS caps a message attribute's value with the message; keep reasons short.
fn short(reason: &str) -> String {
    reason.chars().take(1000).collect()
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>, dead_letter_url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dead_letter_url(&self) -> &str {
        &self.dead_letter_url
    }

    /// The queue's name: the last segment of its URL, as of its ARN.
    pub fn name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or_default()
    }

    /// Creates `name` and `name-dlq` with the redrive policy the template declares
    /// (local runs and tests; production queues come from the template).
    pub async fn create(
        client: Client,
        name: &str,
        visibility: Duration,
        max_receives: u32,
    ) -> anyhow::Result<Self> {
        let dlq = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .map_err(|e| anyhow!("create DLQ: {}", DisplayErrorContext(e)))?;
        let dlq_url = dlq
            .queue_url()
            .ok_or_else(|| anyhow!("DLQ without URL"))?
            .to_owned();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| anyhow!("DLQ ARN: {}", DisplayErrorContext(e)))?;
        let dlq_arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or_else(|| anyhow!("DLQ without ARN"))?
            .clone();
        let policy =
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
                .to_string();
        let work = client
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .send()
            .await
            .map_err(|e| anyhow!("create queue: {}", DisplayErrorContext(e)))?;
        let url = work
            .queue_url()
            .ok_or_else(|| anyhow!("queue without URL"))?
            .to_owned();
        Ok(Self::new(client, url, dlq_url))
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        wait: Duration,
    ) -> StoreResult<Vec<ReceivedMessage>> {
        let wait = i32::try_from(wait.as_secs().min(20)).expect("bounded");
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max).expect("bounded"))
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", e))?;
        out.messages()
            .iter()
            .map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                let mut attributes: Vec<(String, String)> = m
                    .message_attributes()
                    .map(|attrs| {
                        attrs
                            .iter()
                            .filter_map(|(k, v)| {
                                v.string_value().map(|s| (k.clone(), s.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                attributes.sort();
                Ok(ReceivedMessage {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    receipt: m
                        .receipt_handle()
                        .ok_or_else(|| {
                            StoreError::Unavailable(anyhow!("message without receipt handle"))
                        })?
                        .to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count,
                    attributes,
                })
            })
            .collect()
    }

    async fn send_to(&self, url: &str, bodies: &[String]) -> StoreResult<()> {
        self.send_to_after(url, bodies, Duration::ZERO).await
    }

    async fn send_to_after(
        &self,
        url: &str,
        bodies: &[String],
        delay: Duration,
    ) -> StoreResult<()> {
        if delay > super::MAX_DELAY {
            return Err(StoreError::Limit("message delay above 15 minutes".into()));
        }
        let delay_seconds = i32::try_from(delay.as_secs()).expect("bounded");
        for batch in batches(bodies) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(crate::ports::tenant_of(body))
                        .set_delay_seconds((delay_seconds > 0).then_some(delay_seconds))
                        .build()
                        .map_err(|e| StoreError::Unavailable(e.into()))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("SendMessageBatch", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(StoreError::Unavailable(anyhow!(
                    "SendMessageBatch: {} of {} failed, first: {} {}",
                    out.failed().len(),
                    batch.len(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    async fn delete_from(&self, url: &str, receipts: &[&str]) -> StoreResult<()> {
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*r)
                        .build()
                        .map_err(|e| StoreError::Unavailable(e.into()))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("DeleteMessageBatch", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(StoreError::Unavailable(anyhow!(
                    "DeleteMessageBatch: {}",
                    failed.code()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send_batch(&self, bodies: &[String]) -> StoreResult<()> {
        self.send_to(&self.url, bodies).await
    }

    async fn send_delayed(&self, bodies: &[String], delay: Duration) -> StoreResult<()> {
        self.send_to_after(&self.url, bodies, delay).await
    }

    async fn receive(&self, max: usize, wait: Duration) -> StoreResult<Vec<ReceivedMessage>> {
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(StoreError::Limit(format!(
                "receive takes 1 to 10 messages, got {max}"
            )));
        }
        self.receive_from(&self.url, max, wait).await
    }

    async fn delete_batch(&self, receipts: &[&str]) -> StoreResult<()> {
        self.delete_from(&self.url, receipts).await
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("DeleteMessage", e))
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> StoreResult<()> {
        if delay > Duration::from_secs(43_200) {
            return Err(StoreError::Limit("visibility delay above 12 hours".into()));
        }
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(delay.as_secs()).expect("bounded"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("ChangeMessageVisibility", e))
    }

    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> StoreResult<()> {
        let mut attributes: HashMap<String, MessageAttributeValue> = HashMap::new();
        for (k, v) in message
            .attributes
            .iter()
            .filter(|(k, _)| k != REASON_ATTRIBUTE)
        {
            attributes.insert(k.clone(), string_attribute(v)?);
        }
        attributes.insert(
            REASON_ATTRIBUTE.to_owned(),
            string_attribute(&short(reason))?,
        );
        // Send first, then delete: a crash in between leaves a copy in both queues,
        // which the worker's dedupe absorbs; the reverse order could lose it.
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(&message.body)
            .message_group_id(crate::ports::tenant_of(&message.body))
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| unavailable("SendMessage (DLQ)", e))?;
        self.delete(&message.receipt).await
    }

    async fn defer(&self, message: &ReceivedMessage, delay: Duration) -> StoreResult<()> {
        if delay > super::MAX_DELAY {
            return Err(StoreError::Limit("message delay above 15 minutes".into()));
        }
        let mut attributes: HashMap<String, MessageAttributeValue> = HashMap::new();
        for (k, v) in &message.attributes {
            attributes.insert(k.clone(), string_attribute(v)?);
        }
        // Send first, then delete, as for dead letters: a crash in between
        // leaves two copies, which the worker's dedupe absorbs.
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(&message.body)
            .message_group_id(crate::ports::tenant_of(&message.body))
            .delay_seconds(i32::try_from(delay.as_secs()).expect("bounded"))
            .set_message_attributes((!attributes.is_empty()).then_some(attributes))
            .send()
            .await
            .map_err(|e| unavailable("SendMessage (deferred)", e))?;
        self.delete(&message.receipt).await
    }

    async fn receive_dead_letters(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        let seen = self
            .receive_from(
                &self.dead_letter_url,
                max.clamp(1, MAX_BATCH),
                Duration::ZERO,
            )
            .await?;
        for message in &seen {
            self.client
                .change_message_visibility()
                .queue_url(&self.dead_letter_url)
                .receipt_handle(&message.receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| unavailable("ChangeMessageVisibility (DLQ)", e))?;
        }
        Ok(seen)
    }

    async fn redrive(&self, max: usize) -> StoreResult<usize> {
        let mut moved = 0;
        while moved < max {
            let batch = self
                .receive_from(
                    &self.dead_letter_url,
                    (max - moved).min(MAX_BATCH),
                    Duration::ZERO,
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            let bodies: Vec<String> = batch.iter().map(|m| m.body.clone()).collect();
            self.send_to(&self.url, &bodies).await?;
            let receipts: Vec<&str> = batch.iter().map(|m| m.receipt.as_str()).collect();
            self.delete_from(&self.dead_letter_url, &receipts).await?;
            moved += batch.len();
        }
        Ok(moved)
    }
}

fn string_attribute(value: &str) -> StoreResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Unavailable(e.into()))
}
