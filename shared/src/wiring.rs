//! The composition root: builds the adapters from settings and hands them to
//! the use cases as ports (`app::Services`). The only module that knows both;
//! `app` never imports `adapters`, and `adapters` never imports `app`.

use std::sync::Arc;

use anyhow::Context;

use crate::adapters::board::BoardClient;
use crate::adapters::clock::SystemClock;
use crate::adapters::crypto::AesGcmCipher;
use crate::adapters::hubspot::HubSpotClient;
use crate::adapters::queue::memory::MemoryQueue;
use crate::adapters::queue::sqs::SqsQueue;
use crate::adapters::store::TableStore;
use crate::adapters::table::Table;
use crate::adapters::table::dynamodb::DynamoTable;
use crate::adapters::table::memory::MemoryTable;
use crate::app::Services;
use crate::app::budgeted_board::BudgetedBoard;
use crate::app::services::{MAX_RECEIVES, WORK_VISIBILITY};
use crate::config::{Settings, StoreKind};
use crate::ports::{Clock, WorkQueue};

impl Services {
    /// Every store port from one table engine.
    pub fn with_store<T: Table>(
        settings: Settings,
        store: TableStore<T>,
        queue: Arc<dyn WorkQueue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let store = Arc::new(store);
        let hubspot = HubSpotClient::new(
            &settings.hubspot_api_base,
            &settings.hubspot_client_id,
            settings.hubspot_client_secret.clone(),
        );
        // Settings validated the key when they were read.
        let mut cipher = AesGcmCipher::from_base64(&settings.token_key)
            .expect("TOKEN_KEY validated by Settings");
        if let Some(previous) = &settings.token_key_previous {
            cipher = cipher
                .with_previous(previous)
                .expect("TOKEN_KEY_PREVIOUS validated by Settings");
        }
        let board = BoardClient::new(&settings.board_api_base, settings.board_credentials.clone());
        let hubspot = Arc::new(hubspot);
        Self {
            crm: hubspot.clone(),
            batch: hubspot.clone(),
            write: hubspot.clone(),
            search: hubspot.clone(),
            drafts: store.clone(),
            decisions: store.clone(),
            hubspot,
            board: Arc::new(BudgetedBoard {
                inner: Arc::new(board),
                budget: store.clone(),
                clock: clock.clone(),
                per_second: settings.board_rate_per_second,
            }),
            budget: store.clone(),
            configs: store.clone(),
            cipher: Arc::new(cipher),
            notifications: store.clone(),
            watermarks: store.clone(),
            settings: Arc::new(settings),
            connections: store.clone(),
            one_time_tokens: store.clone(),
            leases: store.clone(),
            links: store.clone(),
            history: store.clone(),
            board_events: store,
            board_queue: queue.clone(),
            board_bulk_queue: queue.clone(),
            queue,
            clock,
            directory: Arc::default(),
        }
    }

    /// The embedded store and queues (work, and board's events, each with its
    /// DLQ, as in AWS): no AWS, nothing outside the process. Returns the work queue.
    pub fn in_memory(settings: Settings) -> (Self, MemoryQueue) {
        let queue = MemoryQueue::new(WORK_VISIBILITY, MAX_RECEIVES);
        let mut services = Self::with_store(
            settings,
            TableStore::new(MemoryTable::new()),
            Arc::new(queue.clone()),
            Arc::new(SystemClock),
        );
        services.board_queue = Arc::new(MemoryQueue::new(WORK_VISIBILITY, MAX_RECEIVES));
        services.board_bulk_queue = Arc::new(MemoryQueue::new(WORK_VISIBILITY, MAX_RECEIVES));
        (services, queue)
    }

    /// DynamoDB and SQS. `provision` creates the table and queues when missing
    /// (local runs against moto or a dev account; production uses the template's).
    pub async fn aws(
        settings: Settings,
        config: &aws_config::SdkConfig,
        provision: bool,
    ) -> anyhow::Result<Self> {
        let table = DynamoTable::new(
            aws_sdk_dynamodb::Client::new(config),
            settings.table_name.clone(),
        );
        let sqs = aws_sdk_sqs::Client::new(config);
        let (queue, board_queue, board_bulk_queue) = if provision {
            table.create_if_missing().await.context("provision table")?;
            let name = &settings.table_name;
            let create = |suffix: &str| {
                let (sqs, queue) = (sqs.clone(), format!("{name}-{suffix}"));
                async move { SqsQueue::create(sqs, &queue, WORK_VISIBILITY, MAX_RECEIVES).await }
            };
            (
                create("work").await.context("provision work queue")?,
                create("board-events")
                    .await
                    .context("provision board queue")?,
                create("board-bulk-events")
                    .await
                    .context("provision board bulk queue")?,
            )
        } else {
            let required = |value: &Option<String>, name: &str| {
                value.clone().with_context(|| format!("{name} is required"))
            };
            (
                SqsQueue::new(
                    sqs.clone(),
                    required(&settings.work_queue_url, "WORK_QUEUE_URL")?,
                    required(&settings.dead_letter_queue_url, "DEAD_LETTER_QUEUE_URL")?,
                ),
                SqsQueue::new(
                    sqs.clone(),
                    required(&settings.board_events_queue_url, "BOARD_EVENTS_QUEUE_URL")?,
                    required(&settings.board_events_dlq_url, "BOARD_EVENTS_DLQ_URL")?,
                ),
                SqsQueue::new(
                    sqs,
                    required(
                        &settings.board_bulk_events_queue_url,
                        "BOARD_BULK_EVENTS_QUEUE_URL",
                    )?,
                    required(
                        &settings.board_bulk_events_dlq_url,
                        "BOARD_BULK_EVENTS_DLQ_URL",
                    )?,
                ),
            )
        };
        let mut services = Self::with_store(
            settings,
            TableStore::new(table),
            Arc::new(queue),
            Arc::new(SystemClock),
        );
        services.board_queue = Arc::new(board_queue);
        services.board_bulk_queue = Arc::new(board_bulk_queue);
        Ok(services)
    }

    /// What a Lambda function builds at cold start.
    pub async fn for_lambda() -> anyhow::Result<Self> {
        let sdk = aws_config::load_from_env().await;
        let settings =
            crate::adapters::secrets::lambda_settings(&sdk, |name| std::env::var(name).ok())
                .await?;
        match settings.store {
            StoreKind::Aws => Self::aws(settings, &sdk, false).await,
            StoreKind::Memory => anyhow::bail!("Lambda functions need STORE=dynamodb"),
        }
    }
}
