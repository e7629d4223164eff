//! board API v1 emulator. It shares no code with the service.
//!
//! Serves board's paths (`/v1/clients`, `/v1/contacts`, `/v1/projects`,
//! `/v1/users`), its stand-in settings screen (`/settings/integrations`), the
//! send-document action, the uninstrumented inspect view and bulk controls.
//! Every change, by whoever, becomes a board change event handed to the sink.

mod api;
mod model;
mod pages;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, patch, post};

pub use model::ChangeEvent;

pub const ACCOUNTS: [&str; 2] = ["acct-a", "acct-b"];

/// Where change events go: the service's queue in the local stack.
pub type EventSink = Arc<dyn Fn(Vec<String>) + Send + Sync>;

#[derive(Clone)]
pub struct Config {
    /// Requests per second per account (board: about 3).
    pub per_second: usize,
    /// Requests per day per account.
    pub daily_quota: usize,
    /// The service's origin, for the settings screen's confirm button.
    pub service_url: Option<String>,
    /// HS256 key the settings screen signs its dev JWT with.
    pub jwt_secret: String,
    /// Share of admitted API requests answered 503 (load and fault tests).
    pub fault_rate: f64,
    /// Added to every API request before it is handled (races in tests).
    pub latency_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            per_second: 3,
            daily_quota: 10_000,
            service_url: None,
            jwt_secret: "dev-only-secret".into(),
            fault_rate: 0.0,
            latency_ms: 0,
        }
    }
}

#[derive(Clone)]
pub struct BoardSandbox {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: Mutex<Config>,
    pub accounts: Mutex<HashMap<String, model::Account>>,
    pub next_id: Mutex<u64>,
    pub windows: Mutex<HashMap<String, (VecDeque<tokio::time::Instant>, usize)>>,
    pub events: Mutex<Vec<ChangeEvent>>,
    pub sink: Mutex<Option<EventSink>>,
    /// Where imports and mass updates go (the bulk lane, SPEC §10); `sink` when unset.
    pub bulk_sink: Mutex<Option<EventSink>>,
    pub requests: Mutex<Vec<api::LoggedRequest>>,
}

impl BoardSandbox {
    pub fn new(config: Config) -> Self {
        let mut accounts = HashMap::new();
        for account in ACCOUNTS {
            accounts.insert(account.to_owned(), pages::seed_account(account));
        }
        Self {
            inner: Arc::new(Inner {
                config: Mutex::new(config),
                accounts: Mutex::new(accounts),
                next_id: Mutex::new(100),
                windows: Mutex::new(HashMap::new()),
                events: Mutex::new(Vec::new()),
                sink: Mutex::new(None),
                bulk_sink: Mutex::new(None),
                requests: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends every change event to `sink` (besides keeping them for `/_control/events`).
    pub fn set_event_sink(&self, sink: EventSink) {
        *self.inner.sink.lock().expect("sink") = Some(sink);
    }

    /// Sends the change events of imports and mass updates (`/_control/bulk`)
    /// to `sink`, board's bulk lane, instead of the ordinary one.
    pub fn set_bulk_event_sink(&self, sink: EventSink) {
        *self.inner.bulk_sink.lock().expect("sink") = Some(sink);
    }

    /// A field of a record as stored, read in process: what a load harness
    /// watches without going through HTTP (and board's limit).
    pub fn field(
        &self,
        account: &str,
        resource: &str,
        id: u64,
        name: &str,
    ) -> Option<serde_json::Value> {
        let resource = model::Resource::parse(resource)?;
        let accounts = self.inner.accounts.lock().expect("accounts");
        accounts
            .get(account)?
            .get(resource, id)?
            .fields
            .get(name)
            .cloned()
    }

    /// The accounts the emulator holds, sorted (the console's dev sign-in offers them).
    pub fn account_ids(&self) -> Vec<String> {
        let accounts = self.inner.accounts.lock().expect("accounts");
        let mut ids: Vec<String> = accounts.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn set_service_url(&self, url: Option<String>) {
        self.inner.config.lock().expect("config").service_url = url;
    }

    pub fn router(&self) -> Router {
        let v1 = Router::new()
            .route("/v1/{resource}", get(api::list).post(api::create))
            .route(
                "/v1/{resource}/{id}",
                get(api::read).patch(api::update).delete(api::remove),
            )
            .route("/v1/projects/order_status/{id}", patch(api::order_status))
            .route("/v1/projects/lock_flg/{id}", patch(api::lock_flag))
            .route("/v1/users", get(api::users))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                api::gate,
            ));
        Router::new()
            .merge(v1)
            .route("/settings/integrations", get(pages::settings_screen))
            .route("/settings/integrations/confirm", post(pages::confirm))
            .route("/settings/integrations/connect", post(pages::connect))
            .route("/_actions/send-document", post(pages::send_document))
            .route("/_inspect/v1/{resource}/{id}", get(pages::inspect))
            .route("/_control/bulk", post(pages::bulk))
            .route("/_control/edits", post(pages::edits))
            .route("/_control/accounts", post(pages::add_accounts))
            .route("/_control/events", get(pages::events))
            .route(
                "/_control/requests",
                get(pages::requests).delete(pages::clear_requests),
            )
            .route("/_control/settings", post(pages::settings))
            .with_state(self.clone())
    }
}

/// The emulator with default settings.
pub fn router() -> Router {
    BoardSandbox::new(Config::default()).router()
}

pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);
