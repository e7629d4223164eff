//! Pure rules: no I/O, no AWS or HTTP types.

pub mod account_label;
pub mod catalog;
pub mod config;
pub mod connection;
pub mod customer_mapping;
pub mod dates;
pub mod draft;
pub mod filter_rules;
pub mod gates;
pub mod history;
pub mod hubspot_event;
pub mod ids;
pub mod later_wins;
pub mod link;
pub mod mapping;
pub mod matching;
pub mod normalize;
pub mod order_status;
pub mod signature;
pub mod status_mapping;

pub use account_label::AccountLabel;
pub use catalog::{Catalog, CatalogEntry, Class, Code};
pub use ids::*;
pub use link::{BoardObjectKind, BoardRef, HubSpotObjectType, HubSpotRef, Link, LinkState};
pub use order_status::OrderStatus;
