//! `cargo run -p local-stack`: the whole service on 127.0.0.1:3000 (PORT overrides).

use std::net::SocketAddr;

use board_hubspot::config::{Settings, StoreKind, dev};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    board_hubspot::telemetry::init();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let mut lookup: Vec<(String, String)> = std::env::vars().collect();
    if !lookup.iter().any(|(k, _)| k == "PUBLIC_BASE_URL") {
        lookup.push(("PUBLIC_BASE_URL".into(), format!("http://127.0.0.1:{port}")));
    }
    let settings = Settings::from_lookup(
        |name| {
            lookup
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        },
        true,
    )?;
    let store = match settings.store {
        StoreKind::Memory => "embedded (in memory)".to_owned(),
        StoreKind::Aws => format!("DynamoDB table {} + SQS", settings.table_name),
    };
    let base = settings.public_base_url.clone();
    let stack = local_stack::start(settings, SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!(
        "board ⇄ HubSpot local stack on http://{addr}  (store: {store})

routes
  GET  {base}/health
  GET  {base}/openapi.json
  GET  {base}/oauth/callback
  POST {base}/hubspot/webhooks
  GET  {base}/hubspot/card?portalId=…&objectId=…
  *    {base}/v1/...                      config and business API (board JWT)
  *    {base}/_sandbox/hubspot/...        HubSpot emulator (portal {portal})
  *    {base}/_sandbox/board/...          board emulator (accounts acct-a, acct-b)

dev credentials
  HubSpot app: client id {client_id}, client secret {client_secret}, app id {app_id}
  HubSpot user token (acting as a person): pat-sandbox-user
  board API for account X: key sandbox-key-X, token sandbox-token-X (person: sandbox-user-X)
  config API JWT: HS256 with BOARD_JWT_SECRET={jwt}, iss=board, aud=board-hubspot
",
        addr = stack.addr,
        portal = sandbox_hubspot::PORTAL_ID,
        client_id = dev::HUBSPOT_CLIENT_ID,
        client_secret = dev::HUBSPOT_CLIENT_SECRET,
        app_id = dev::HUBSPOT_APP_ID,
        jwt = dev::BOARD_JWT_SECRET,
    );
    shutdown_signal().await;
    println!("shutting down");
    stack.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
