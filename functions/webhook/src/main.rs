//! Lambda entry point: set up logging and clients once, then serve requests.

use std::sync::Arc;

use board_hubspot::app::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    board_hubspot::telemetry::init();
    let services = Arc::new(Services::for_lambda().await?);
    lambda_http::run(lambda_http::service_fn(move |request| {
        let services = Arc::clone(&services);
        async move { webhook::handle(&services, request).await }
    }))
    .await
}
