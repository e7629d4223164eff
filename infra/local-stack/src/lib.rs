//! The local stack: the five Lambda handlers mounted on one HTTP router, the
//! sync worker draining the queue, and both sandboxes, in one process.

pub mod dev_sign_in;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use board_hubspot::adapters::queue::memory::MemoryQueue;
use board_hubspot::app::Services;
use board_hubspot::config::{Settings, StoreKind};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// API Gateway's payload limit; handlers apply their own, smaller ones.
const MAX_BODY: usize = 10 * 1024 * 1024;

async fn to_lambda(request: Request) -> Result<lambda_http::Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response())?;
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    Ok(lambda_http::http::Request::from_parts(parts, body))
}

fn from_lambda(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, AxumBody::from(body.to_vec()))
}

/// Mounts a `lambda_http` handler as an axum handler.
macro_rules! lambda_route {
    ($services:expr, $handler:path) => {{
        let services = $services.clone();
        any(move |request: Request| {
            let services = services.clone();
            async move {
                match to_lambda(request).await {
                    Ok(request) => match $handler(&services, request).await {
                        Ok(response) => from_lambda(response),
                        Err(error) => {
                            tracing::error!(%error, "handler failed");
                            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
                        }
                    },
                    Err(response) => response,
                }
            }
        })
    }};
}

/// Both emulators, wired to the service: HubSpot delivers webhooks to our
/// receiver, board's change events land on our board-events queue, and board's
/// settings screen calls our config API.
#[derive(Clone)]
pub struct Sandboxes {
    pub hubspot: sandbox_hubspot::HubSpotSandbox,
    pub board: sandbox_board::BoardSandbox,
}

impl Sandboxes {
    pub fn new(services: &Services) -> Self {
        let base = services.settings.public_base_url.clone();
        let hubspot = sandbox_hubspot::HubSpotSandbox::new(sandbox_hubspot::Config {
            client_id: services.settings.hubspot_client_id.clone(),
            client_secret: String::from_utf8_lossy(services.settings.client_secret_bytes())
                .into_owned(),
            app_id: services.settings.hubspot_app_id,
            webhook_url: Some(format!("{base}/hubspot/webhooks")),
            ..sandbox_hubspot::Config::default()
        });
        let board = sandbox_board::BoardSandbox::new(sandbox_board::Config {
            service_url: Some(base),
            ..sandbox_board::Config::default()
        });
        // board's producer (SPEC §10): a person's changes to the ordinary
        // lane, imports and mass updates (the emulator's bulk endpoint) to the
        // bulk lane.
        let sink = |queue: std::sync::Arc<dyn board_hubspot::ports::WorkQueue>| {
            std::sync::Arc::new(move |bodies: Vec<String>| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    if let Err(error) = queue.send_batch(&bodies).await {
                        tracing::error!(%error, "board sandbox could not queue change events");
                    }
                });
            }) as sandbox_board::EventSink
        };
        board.set_event_sink(sink(services.board_queue.clone()));
        board.set_bulk_event_sink(sink(services.board_bulk_queue.clone()));
        Self { hubspot, board }
    }
}

/// What each of the five functions was built with at its cold start. In AWS
/// every function builds its own; locally they usually share one, but a host
/// may give each its own clients (the IAM audit records each one's AWS calls).
#[derive(Clone)]
pub struct Functions {
    pub config_api: Services,
    pub oauth_callback: Services,
    pub webhook: Services,
    pub crm_card: Services,
    pub sync_worker: Services,
}

impl Functions {
    /// All five on the same services.
    pub fn shared(services: &Services) -> Self {
        Self {
            config_api: services.clone(),
            oauth_callback: services.clone(),
            webhook: services.clone(),
            crm_card: services.clone(),
            sync_worker: services.clone(),
        }
    }
}

pub fn router(functions: &Functions, sandboxes: &Sandboxes) -> Router {
    let Functions {
        config_api,
        oauth_callback,
        webhook,
        crm_card,
        ..
    } = functions;
    let mut router = Router::new();
    // The admin console (served by the config API function, as in AWS), and
    // locally its dev sign-in while the dev JWT secret is in use.
    if dev_sign_in::enabled(&config_api.settings) {
        router = router.route(
            "/console/dev/sign-in",
            get(dev_sign_in::offer)
                .post(dev_sign_in::mint)
                .with_state(dev_sign_in::DevSignIn {
                    board: sandboxes.board.clone(),
                }),
        );
    }
    router
        .route("/console", lambda_route!(config_api, config_api::handle))
        .route("/console/", lambda_route!(config_api, config_api::handle))
        .route(
            "/console/{*rest}",
            lambda_route!(config_api, config_api::handle),
        )
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/openapi.json",
            lambda_route!(config_api, config_api::handle),
        )
        .route("/v1/{*rest}", lambda_route!(config_api, config_api::handle))
        .route(
            "/oauth/callback",
            lambda_route!(oauth_callback, oauth_callback::handle),
        )
        .route("/hubspot/webhooks", lambda_route!(webhook, webhook::handle))
        .route("/hubspot/card", lambda_route!(crm_card, crm_card::handle))
        .route(
            "/hubspot/card/resync",
            lambda_route!(crm_card, crm_card::handle),
        )
        .nest("/_sandbox/hubspot", sandboxes.hubspot.router())
        .nest("/_sandbox/board", sandboxes.board.router())
}

/// A running stack: its address, and how to stop it.
pub struct Stack {
    pub addr: SocketAddr,
    pub services: Services,
    pub sandboxes: Sandboxes,
    /// The embedded queue, when the stack runs on it (for status and tests).
    pub memory_queue: Option<MemoryQueue>,
    /// Messages the worker has processed successfully (dead letters not counted).
    pub handled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// One poller per queue, as Lambda's event sources.
    workers: Vec<JoinHandle<()>>,
    deliverer: JoinHandle<()>,
    scheduler: JoinHandle<()>,
}

impl Stack {
    /// Stops accepting, lets the worker finish its batch, and waits for both.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.deliverer.abort();
        let _ = self.server.await;
        for worker in self.workers {
            let _ = worker.await;
        }
        let _ = self.scheduler.await;
    }
}

/// Builds the services the configuration asks for.
pub async fn services(settings: Settings) -> anyhow::Result<(Services, Option<MemoryQueue>)> {
    Ok(match settings.store {
        StoreKind::Memory => {
            let (services, queue) = Services::in_memory(settings);
            (services, Some(queue))
        }
        StoreKind::Aws => (
            Services::aws(settings, &aws_config::load_from_env().await, true)
                .await
                .context("DynamoDB/SQS")?,
            None,
        ),
    })
}

async fn stopped_signal(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here.
    let _ = stop.wait_for(|s| *s).await;
}

/// The batching window of board's events queue locally (`BOARD_EVENTS_WINDOW_MS`,
/// default 0; the template's is 1 s, AWS's minimum for batches over 10).
pub fn board_events_window() -> Duration {
    Duration::from_millis(
        std::env::var("BOARD_EVENTS_WINDOW_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    )
}

/// One event source: polls `queue` with `batching` until stopped, as Lambda
/// does with one poller per queue; adds what it handled to `handled`.
fn spawn_poller(
    services: Services,
    queue: std::sync::Arc<dyn board_hubspot::ports::WorkQueue>,
    batching: sync_worker::Batching,
    wait: Duration,
    handled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped_signal(&mut stop) => break,
                polled = sync_worker::poll_batch(&services, queue.as_ref(), batching, wait) => {
                    match polled {
                        Ok(outcome) => {
                            handled.fetch_add(outcome.done.len(), std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "worker poll failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }
        }
    })
}

/// Binds `addr` (port 0 for any) and starts serving and draining the queue.
pub async fn start(settings: Settings, addr: SocketAddr) -> anyhow::Result<Stack> {
    let (services, memory_queue) = services(settings).await?;
    start_with(services, memory_queue, addr).await
}

/// Starts with services built by the caller (tests point them at moto).
pub async fn start_with(
    services: Services,
    memory_queue: Option<MemoryQueue>,
    addr: SocketAddr,
) -> anyhow::Result<Stack> {
    let functions = Functions::shared(&services);
    start_functions(services, functions, memory_queue, addr, Options::from_env()).await
}

/// How the stack runs its worker.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Drain the queues in the background (off: the caller drives the worker).
    pub run_worker: bool,
    /// The batching window of board's events queue (see `board_events_window`).
    pub board_events_window: Duration,
    /// Pollers per queue: Lambda runs up to the event source's
    /// `MaximumConcurrency` (5 in the template) at once; locally one does.
    pub pollers: usize,
    /// How long a poller's receive waits for a first message (Lambda's event
    /// source long-polls 20 s; locally 500 ms, so a stop is noticed at once
    /// against any queue).
    pub poll_wait: Duration,
}

impl Options {
    pub fn from_env() -> Self {
        Self {
            run_worker: true,
            board_events_window: board_events_window(),
            pollers: 1,
            poll_wait: Duration::from_millis(500),
        }
    }
}

/// Starts with each function on its own services; `services` are what the
/// outside parts use (board's event producer, the schedules, the sandboxes).
pub async fn start_functions(
    services: Services,
    functions: Functions,
    memory_queue: Option<MemoryQueue>,
    addr: SocketAddr,
    options: Options,
) -> anyhow::Result<Stack> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);

    let sandboxes = Sandboxes::new(&services);
    let app = router(&functions, &sandboxes);
    let deliverer = sandboxes.hubspot.spawn_webhook_delivery();
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            stopped_signal(&mut server_stop).await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "server stopped");
        }
    });

    let schedule_services = services.clone();
    let mut schedule_stop = stopped.clone();
    let poll_every = Duration::from_secs(
        std::env::var("LIFECYCLE_POLL_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60)
            .max(1),
    );
    // What EventBridge does in AWS: a lifecycle poll on the work queue on a
    // schedule, and a catch-up of every connection less often.
    let scheduler = tokio::spawn(async move {
        use board_hubspot::app::jobs::{Job, QueueMessage};
        let poll = QueueMessage::to_body(&Job::PollLifecycle);
        let catch_up = QueueMessage::to_body(&Job::CatchUpAll);
        let catch_up_every = std::env::var("CATCH_UP_SECONDS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(3600)
            .max(1);
        let mut last_catch_up = tokio::time::Instant::now();
        // A poll at start-up puts the app's lifecycle subscription in place
        // before anyone connects (in AWS the first scheduled poll does).
        if let Err(error) = schedule_services
            .queue
            .send_batch(std::slice::from_ref(&poll))
            .await
        {
            tracing::warn!(%error, "could not schedule the first lifecycle poll");
        }
        loop {
            tokio::select! {
                _ = stopped_signal(&mut schedule_stop) => break,
                _ = tokio::time::sleep(poll_every) => {
                    if let Err(error) = schedule_services.queue.send_batch(std::slice::from_ref(&poll)).await {
                        tracing::warn!(%error, "could not schedule the lifecycle poll");
                    }
                    if last_catch_up.elapsed().as_secs() >= catch_up_every {
                        last_catch_up = tokio::time::Instant::now();
                        if let Err(error) = schedule_services.queue.send_batch(std::slice::from_ref(&catch_up)).await {
                            tracing::warn!(%error, "could not schedule the catch-up");
                        }
                    }
                }
            }
        }
    });
    let handled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let worker_services = functions.sync_worker.clone();
    let mut workers = Vec::new();
    let pollers = if options.run_worker {
        options.pollers.max(1)
    } else {
        0
    };
    // The work queue, board's ordinary lane and its bulk lane, each as its
    // event source batches. board's lanes have their own queues in AWS (and
    // embedded); on a single shared queue the work queue's poller sees them.
    let lanes = [
        (worker_services.queue.clone(), sync_worker::Batching::WORK),
        (
            worker_services.board_queue.clone(),
            sync_worker::Batching::BOARD,
        ),
        (
            worker_services.board_bulk_queue.clone(),
            sync_worker::Batching::board_bulk(options.board_events_window),
        ),
    ];
    for _ in 0..pollers {
        for (i, (queue, batching)) in lanes.iter().enumerate() {
            if i > 0 && std::sync::Arc::ptr_eq(queue, &worker_services.queue) {
                continue;
            }
            workers.push(spawn_poller(
                worker_services.clone(),
                queue.clone(),
                *batching,
                options.poll_wait,
                handled.clone(),
                stopped.clone(),
            ));
        }
    }

    Ok(Stack {
        addr,
        services,
        sandboxes,
        memory_queue,
        handled,
        stop,
        server,
        workers,
        deliverer,
        scheduler,
    })
}
