//! Lambda entry point: set up logging and clients once, then consume SQS batches.

use std::sync::Arc;

use board_hubspot::app::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    board_hubspot::telemetry::init();
    let services = Arc::new(Services::for_lambda().await?);
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let services = Arc::clone(&services);
        async move { sync_worker::handle(&services, event).await }
    }))
    .await
}
