//! HubSpot emulator. It shares no code with the service: a misreading of
//! HubSpot's API must not hide by being on both sides of a test.
//!
//! Serves HubSpot's paths as they are (`/oauth/...`, `/crm/objects/2026-03/...`,
//! …) so the service's HubSpot client only changes its base URL. Mounted by the
//! local stack under `/_sandbox/hubspot`, or run standalone for tests.

// Error bodies carry HubSpot's optional fields inline; the emulator's error path is
// not hot, so boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod associations;
mod control;
mod crm;
mod errors;
mod gate;
mod journal;
mod model;
mod oauth;
mod schema;
mod seeds;
mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{delete, get, post};

pub use model::ObjectType;
pub use seeds::PORTAL_ID;
pub use webhooks::{Section, Subscription, Subscriptions};

/// The emulator's settings (ARCHITECTURE.md's dev credentials by default).
#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    pub app_id: u64,
    /// The token that acts as a person in HubSpot's UI, on the whole API.
    pub user_token: String,
    /// The app's webhook target URL; no deliveries while `None`.
    pub webhook_url: Option<String>,
    /// Requests per rolling 10 s, per app (or user token) per portal.
    pub limit_per_ten_seconds: usize,
    /// Search requests per second, per token kind per portal.
    pub search_per_second: usize,
    /// How often pending webhook events are delivered.
    pub webhook_flush: Duration,
    /// How long a webhook delivery may take before it counts as failed.
    pub webhook_timeout: Duration,
    /// Our HubSpot project's webhooks component: the emulator sends what it
    /// subscribes to, in the format of the section each subscription sits in.
    pub webhooks_hsmeta: std::path::PathBuf,
    /// How long journal entries are kept (about 3 days at HubSpot).
    pub journal_retention: Duration,
    /// How long a journal entry's pre-signed file URL stays valid.
    pub journal_url_ttl: Duration,
    /// Associations per result of a v4 batch read before it pages.
    pub association_page_size: usize,
    /// CRM search's indexing delay: each change shows in search results after
    /// its own delay of up to this (0: at once).
    pub search_lag: Duration,
}

/// `infra/hubspot-app/src/app/webhooks/webhooks-hsmeta.json` in this tree.
pub fn project_webhooks_hsmeta() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hubspot-app/src/app/webhooks/webhooks-hsmeta.json")
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            app_id: 777,
            user_token: "pat-sandbox-user".into(),
            webhook_url: None,
            limit_per_ten_seconds: 110,
            search_per_second: 5,
            webhook_flush: Duration::from_millis(100),
            webhook_timeout: Duration::from_secs(5),
            webhooks_hsmeta: project_webhooks_hsmeta(),
            journal_retention: Duration::from_secs(3 * 24 * 3600),
            journal_url_ttl: Duration::from_secs(60),
            association_page_size: 10,
            search_lag: Duration::ZERO,
        }
    }
}

/// A running emulator: its state behind one lock, shared by the router and the
/// webhook deliverer.
#[derive(Clone)]
pub struct HubSpotSandbox {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: Mutex<Config>,
    pub state: Mutex<model::State>,
    pub limits: Mutex<gate::Limiter>,
    pub faults: Mutex<control::Faults>,
    pub outbox: Mutex<webhooks::Outbox>,
    pub subscriptions: webhooks::Subscriptions,
}

impl HubSpotSandbox {
    /// Panics when the project's webhooks file cannot be read: without it the
    /// emulator would send nothing, or what it guesses.
    pub fn new(config: Config) -> Self {
        let subscriptions = webhooks::Subscriptions::load(&config.webhooks_hsmeta)
            .unwrap_or_else(|e| panic!("the HubSpot project's webhook subscriptions: {e}"));
        let mut state = model::State::default();
        seeds::seed(&mut state);
        Self {
            inner: Arc::new(Inner {
                config: Mutex::new(config),
                state: Mutex::new(state),
                limits: Mutex::new(gate::Limiter::default()),
                faults: Mutex::new(control::Faults::default()),
                outbox: Mutex::new(webhooks::Outbox::default()),
                subscriptions,
            }),
        }
    }

    /// Points webhook deliveries at the app's target URL.
    /// A property of an object as stored (archived ones too), read in
    /// process: what a load harness watches without going through HTTP.
    pub fn property(&self, portal: u64, object_type: &str, id: u64, name: &str) -> Option<String> {
        let kind = ObjectType::parse(object_type).ok()?;
        let state = self.inner.state.lock().expect("state");
        state
            .objects
            .get(&(portal, kind))?
            .get(&id)?
            .properties
            .get(name)
            .cloned()
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.config.lock().expect("config").webhook_url = url;
    }

    /// Starts delivering webhook events in the background (needs a Tokio runtime).
    pub fn spawn_webhook_delivery(&self) -> tokio::task::JoinHandle<()> {
        webhooks::spawn(self.clone())
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/oauth/2026-03/token", post(oauth::token))
            .route("/oauth/2026-03/token/introspect", post(oauth::introspect))
            .route("/oauth/2026-03/token/revoke", post(oauth::revoke))
            .route(
                "/crm/objects/2026-03/{object_type}",
                get(crm::list).post(crm::create),
            )
            .route(
                "/crm/objects/2026-03/{object_type}/search",
                post(crm::search),
            )
            .route("/crm/objects/2026-03/{object_type}/merge", post(crm::merge))
            .route(
                "/crm/objects/2026-03/{object_type}/batch/{action}",
                post(crm::batch),
            )
            .route(
                "/crm/objects/2026-03/{object_type}/{id}",
                get(crm::read).patch(crm::update).delete(crm::archive),
            )
            .route(
                "/crm/objects/2026-03/{object_type}/{id}/associations/{to_type}",
                get(associations::list_for_object),
            )
            .route(
                "/crm/objects/2026-03/{object_type}/{id}/associations/default/{to_type}/{to_id}",
                axum::routing::put(associations::put_default),
            )
            .route(
                "/crm/associations/2026-03/{from_type}/{to_type}/batch/{action}",
                post(associations::batch),
            )
            .route(
                "/crm/associations/2026-03/{from_type}/{to_type}/batch/associate/default",
                post(associations::batch_default),
            )
            .route(
                "/crm/properties/2026-03/{object_type}",
                get(schema::list_properties).post(schema::create_property),
            )
            .route(
                "/crm/properties/2026-03/{object_type}/{name}",
                get(schema::get_property),
            )
            .route(
                "/crm/pipelines/2026-03/{object_type}",
                get(schema::list_pipelines),
            )
            .route(
                "/crm/pipelines/2026-03/{object_type}/{pipeline_id}",
                get(schema::get_pipeline),
            )
            .route("/crm/owners/2026-03", get(schema::list_owners))
            .route("/settings/users/2026-03/teams", get(schema::list_teams))
            .route(
                "/account-info/2026-03/details",
                get(schema::account_details),
            )
            .route(
                "/appinstalls/2026-03/external-install",
                delete(oauth::uninstall),
            )
            .route(
                "/webhooks-journal/journal/2026-03/latest",
                get(journal::latest),
            )
            .route(
                "/webhooks-journal/journal/2026-03/earliest",
                get(journal::earliest),
            )
            .route(
                "/webhooks-journal/journal/2026-03/offset/{offset}/next",
                get(journal::next),
            )
            .route(
                "/webhooks-journal/subscriptions/2026-03",
                get(journal::list_subscriptions).post(journal::create_subscription),
            )
            .layer(middleware::from_fn_with_state(self.clone(), gate::gate));
        Router::new()
            .route(
                "/oauth/authorize",
                get(oauth::consent_page).post(oauth::consent_decision),
            )
            .route("/_files/webhooks-journal/{offset}", get(journal::file))
            .merge(api)
            .nest("/_control", control::router())
            .with_state(self.clone())
    }
}

/// The emulator with default settings: what the local stack mounts.
pub fn router() -> Router {
    HubSpotSandbox::new(Config::default()).router()
}
