//! Adapters: the only code that knows DynamoDB, SQS, HTTP and crypto details.

pub mod board;
pub mod clock;
pub mod crypto;
pub mod hubspot;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod table;
