//! Use cases: what each function does, written against the ports.

pub mod card;
pub mod connection_status;
pub mod jobs;
pub mod services;
pub mod webhook;
pub mod worker;

pub use services::Services;
