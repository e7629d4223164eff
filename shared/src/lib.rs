//! The board ⇄ HubSpot domain crate: pure rules (`domain`), the use cases that
//! drive them (`app`), the small traits those use cases need (`ports`) and the
//! adapters implementing them (`adapters`). Every Lambda function and the local
//! stack are thin hosts around this crate.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod edge;
pub mod ports;
pub mod telemetry;
