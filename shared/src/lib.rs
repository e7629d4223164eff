//! The board ⇄ HubSpot domain crate: pure rules (`domain`), the use cases that
//! drive them (`app`), the small traits those use cases need (`ports`) and the
//! adapters implementing them (`adapters`). Every Lambda function and the local
//! stack are thin hosts around this crate.

/// The OpenAPI schema of a type whose JSON form is written by hand (ids written
/// as strings, catalog codes, 受注ステータス codes), stated beside its `Serialize`.
/// Only with the `openapi` feature (the config API's document); otherwise nothing.
macro_rules! openapi_schema {
    ($ty:ty, $schema:expr) => {
        // `ComposeSchema` is what utoipa's derive implements; implementing it (not
        // `PartialSchema`) lets the type sit in maps and generic wrappers too.
        #[cfg(feature = "openapi")]
        impl utoipa::__dev::ComposeSchema for $ty {
            fn compose(
                _: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
            ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let schema: utoipa::openapi::schema::Schema = $schema;
                schema.into()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $ty {}
    };
}

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod edge;
pub mod ports;
pub mod telemetry;
pub mod wiring;
