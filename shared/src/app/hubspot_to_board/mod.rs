//! HubSpot → board (SPEC §5, §11): webhook events are notifications. The worker coalesces a
//! batch's events per deal (`events`), re-reads the deals and applies the entry gates (`deals`,
//! `decisions`): a qualifying unlinked deal gets (or updates) its draft, a linked one reaches its project;
//! companies and contacts reach their customers (`others`).

pub mod deals;
pub mod decisions;
pub mod events;
pub mod lease;
pub mod linked_deals;
pub mod linked_others;
pub mod others;

pub use crate::app::failure::SyncFailure;
pub use deals::sync_deals;
pub use decisions::{DEAL_PROPERTIES, facts_of, stage_label};
pub use events::{apply, carry_over, coalesce};
pub use lease::inheriting;
pub use others::sync_others;
