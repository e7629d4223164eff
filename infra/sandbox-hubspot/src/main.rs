//! `cargo run -p sandbox-hubspot`: the HubSpot emulator alone on `PORT` (default 3101).
//! `WEBHOOK_URL` sets the app's webhook target.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3101);
    let sandbox = sandbox_hubspot::HubSpotSandbox::new(sandbox_hubspot::Config {
        webhook_url: std::env::var("WEBHOOK_URL").ok(),
        ..sandbox_hubspot::Config::default()
    });
    let _deliveries = sandbox.spawn_webhook_delivery();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("HubSpot emulator on http://{}", listener.local_addr()?);
    axum::serve(listener, sandbox.router()).await
}
