//! board → HubSpot (SPEC §6, §10, §11): a board change event's snapshot is compared field by
//! field with the link's baselines; only fields that differ reach HubSpot. Projects become batched deal
//! updates (`projects`), customers and contacts company/contact updates (`companies_and_contacts`),
//! all sent through one batch writer (`batch_writer`), sent documents notes on the deal (`documents`); `outcome` is what they
//! share: the error type, history attempts, saving links.

pub mod batch_writer;
pub mod companies_and_contacts;
pub mod documents;
pub mod outcome;
pub mod projects;

pub use crate::app::failure::SyncFailure;
pub use batch_writer::{PendingWrite, write_batch};
pub use companies_and_contacts::{customer_or_contact_event, plan_customer_or_contact};
pub use documents::{document_sent, note_body, note_marker};
pub use outcome::Applied;
pub use projects::{Plan, plan_project, project_event};
