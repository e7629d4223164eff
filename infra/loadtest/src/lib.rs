//! Load and fault harness for the local stack (issue: figures we promise).
//! Every scenario starts the stack in-process on the embedded store and
//! queues, with the sandboxes' real limits, and returns its figures; the
//! binary prints a summary and the figures as one JSON line.

pub mod backfill;
pub mod cold_start;
pub mod cost;
pub mod counting;
pub mod harness;
pub mod scenarios;
pub mod soak;
pub mod tenants;
