//! `cargo run -p sandbox-board`: the board emulator alone on `PORT` (default 3102).
//! Change events are printed as JSON lines; `SERVICE_URL` is where its settings
//! screen sends confirmations.

use std::sync::Arc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3102);
    let sandbox = sandbox_board::BoardSandbox::new(sandbox_board::Config {
        service_url: std::env::var("SERVICE_URL").ok(),
        ..sandbox_board::Config::default()
    });
    sandbox.set_event_sink(Arc::new(|bodies| {
        bodies.iter().for_each(|b| println!("{b}"))
    }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("board emulator on http://{}", listener.local_addr()?);
    axum::serve(listener, sandbox.router()).await
}
