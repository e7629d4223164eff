//! The sync worker: one SQS batch of internal jobs or board change events, settled per message
//! (`batch`); board's events admitted once and applied (`board_events`), HubSpot jobs run
//! (`hubspot_jobs`); `failure` is how a message ends when it cannot be applied now.

pub mod backlog;
pub mod batch;
pub mod board_events;
pub mod failure;
pub mod hubspot_jobs;

pub use batch::{BatchOutcome, process_batch};
pub use failure::{CONFLICT_RETRY, retry_delay};
