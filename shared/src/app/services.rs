//! The ports a host wires once at start (cold start) and hands to every
//! handler. Building them from settings is `crate::wiring`'s job: use cases
//! never name an adapter.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::ports::{
    BoardApi, BoardEventLedger, Clock, ConfigStore, ConnectionStore, DecisionLog, DraftStore,
    HistoryStore, HubSpotAuth, HubSpotBatch, HubSpotCrm, HubSpotSearch, HubSpotWrite, LeaseStore,
    LinkStore, NotificationStore, OneTimeTokenStore, RateBudget, TokenCipher, WatermarkStore,
    WorkQueue,
};

/// Visibility timeout of the work queue: ≥ 6 × the worker's function timeout (60 s).
pub const WORK_VISIBILITY: Duration = Duration::from_secs(360);
/// Receives before SQS moves a message to the dead-letter queue.
pub const MAX_RECEIVES: u32 = 5;

#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub connections: Arc<dyn ConnectionStore>,
    pub one_time_tokens: Arc<dyn OneTimeTokenStore>,
    pub leases: Arc<dyn LeaseStore>,
    pub links: Arc<dyn LinkStore>,
    pub history: Arc<dyn HistoryStore>,
    pub board_events: Arc<dyn BoardEventLedger>,
    pub notifications: Arc<dyn NotificationStore>,
    pub watermarks: Arc<dyn WatermarkStore>,
    pub hubspot: Arc<dyn HubSpotAuth>,
    pub crm: Arc<dyn HubSpotCrm>,
    pub batch: Arc<dyn HubSpotBatch>,
    pub write: Arc<dyn HubSpotWrite>,
    pub search: Arc<dyn HubSpotSearch>,
    pub budget: Arc<dyn RateBudget>,
    pub drafts: Arc<dyn DraftStore>,
    pub decisions: Arc<dyn DecisionLog>,
    pub board: Arc<dyn BoardApi>,
    pub configs: Arc<dyn ConfigStore>,
    pub cipher: Arc<dyn TokenCipher>,
    /// Our work queue: webhook events made durable, retries.
    pub queue: Arc<dyn WorkQueue>,
    /// The queue board's producer writes change events to. Locally the same
    /// embedded queue as `queue`; in AWS its own queue and DLQ.
    pub board_queue: Arc<dyn WorkQueue>,
    /// board's bulk lane (imports and mass updates, same event contract):
    /// read 100 at a time with a batching window, so a change made by a person
    /// never waits for a window or behind an import. Locally its own embedded
    /// queue; in AWS its own queue and DLQ.
    pub board_bulk_queue: Arc<dyn WorkQueue>,
    pub clock: Arc<dyn Clock>,
    /// Short-lived copies of board's users and HubSpot's owners.
    pub directory: Arc<super::directory::Directory>,
}

impl Services {
    pub fn now_ms(&self) -> i64 {
        let now = self.clock.now();
        i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}
