//! Registering a draft as a board project (SPEC §5.4): the request checked (`request`), the deal
//! claimed under a lease and the project created (`flow`), its customer and contacts found, created
//! or linked (`customers`).

pub mod customers;
pub mod flow;
pub mod request;

pub use flow::register;
pub use request::{RegisterError, Registration};
