//! The small traits the use cases depend on, one per capability. Each has an
//! embedded (in-memory) adapter and an AWS adapter, held to one contract suite.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::connection::Connection;
use crate::domain::history::HistoryEntry;
use crate::domain::{AccountId, BoardRef, HistoryId, HubSpotRef, Link, PortalId};

/// Failures of a store or queue port that a use case can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: someone else wrote first, or the revision moved.
    #[error("conflict: the record changed or already exists")]
    Conflict,
    /// The caller broke a limit of the backing service (e.g. 25 items a batch).
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// Anything else: throttling after SDK retries, network, malformed item.
    #[error(transparent)]
    Unavailable(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Time, injectable so expiry can be tested without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// Connections by board account, and by portal for webhook routing.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn get_connection(&self, account: &AccountId) -> StoreResult<Option<Connection>>;
    /// Writes `connection` if the stored revision still equals `connection.revision`
    /// (0 = must not exist yet). Returns the new revision.
    async fn save_connection(&self, connection: &Connection) -> StoreResult<u64>;
    async fn connections_of_portal(&self, portal: PortalId) -> StoreResult<Vec<Connection>>;
    /// Every connection, a page at a time (scheduled sweeps; never on a hot path).
    async fn all_connections(
        &self,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<Connection>>;
}

/// What a one-time token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeKind {
    OAuthState,
    Confirmation,
}

/// Single-use, expiring tokens: OAuth `state` and connection confirmations.
#[async_trait]
pub trait OneTimeTokenStore: Send + Sync {
    /// Stores `payload` under `token`; fails with `Conflict` if the token exists.
    async fn put_token(
        &self,
        kind: OneTimeKind,
        token: &str,
        payload: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Removes the token and returns its payload if it existed and had not
    /// expired at `now`. Exactly one of several concurrent takers gets it.
    async fn take_token(
        &self,
        kind: OneTimeKind,
        token: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;
    /// Reads the payload of an unexpired token without taking it.
    async fn peek_token(
        &self,
        kind: OneTimeKind,
        token: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;
}

/// Short leases, e.g. "one token refresh at a time per connection".
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// True if `holder` now holds `name` until `now + ttl` (free, expired, or already its own).
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> StoreResult<bool>;
    /// Releases the lease if `holder` still holds it.
    async fn release(&self, name: &str, holder: &str) -> StoreResult<()>;
}

/// Why a deal could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("the deal is linked in board account {0}")]
    ClaimedBy(AccountId),
    #[error("this account already has a link for the object")]
    AlreadyLinked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Links within a connection, found from either side.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Creates a deal's link and claims the deal in its portal in one transaction:
    /// within a portal a deal is linked in at most one board account.
    async fn claim_deal(&self, link: &Link) -> Result<(), ClaimError>;
    /// Claims a deal for `account` before anything is created for it (a
    /// registration claims, then creates the project, then links): refused with
    /// `ClaimedBy` when another account holds it; the same account may claim again.
    async fn reserve_deal(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
    ) -> Result<(), ClaimError>;
    /// Gives back a claim `account` holds on a deal it has not linked (a
    /// registration that failed after claiming). Nothing if another holds it.
    async fn release_deal(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
    ) -> StoreResult<()>;
    /// Ends a deal's link for good (its project was deleted in board and a user
    /// re-drafts the deal): the link, its board pointer and the claim go in one
    /// transaction, if the link is still at its revision.
    async fn unlink_deal(&self, link: &Link) -> StoreResult<()>;
    /// Who holds the claim on a deal of a portal, if anyone.
    async fn deal_claimed_by(&self, portal: PortalId, deal: u64) -> StoreResult<Option<AccountId>>;
    /// Creates a company or contact link (several accounts may link one).
    async fn create_link(&self, link: &Link) -> StoreResult<()>;
    /// Removes a company or contact link (an approval undone), both of its
    /// items, only if unchanged since `link` was read: `Conflict` otherwise.
    async fn delete_link(&self, link: &Link) -> StoreResult<()>;
    /// Updates a link if its revision is unchanged; returns the new revision.
    async fn update_link(&self, link: &Link) -> StoreResult<u64>;
    /// HubSpot ids are unique within a portal only, so lookups name the portal.
    async fn link_by_hubspot(
        &self,
        account: &AccountId,
        portal: PortalId,
        object: HubSpotRef,
    ) -> StoreResult<Option<Link>>;
    async fn link_by_board(
        &self,
        account: &AccountId,
        portal: PortalId,
        object: BoardRef,
    ) -> StoreResult<Option<Link>>;
    /// Every account's link to one HubSpot object of a portal.
    async fn links_of_hubspot_object(
        &self,
        portal: PortalId,
        object: HubSpotRef,
    ) -> StoreResult<Vec<Link>>;
    /// A merge in HubSpot: the link moves from `link`'s object to `survivor` of
    /// the same type (link and board pointer together, and a deal's claim); the
    /// old link is archived.
    async fn move_link(&self, link: &Link, survivor: u64) -> Result<(), ClaimError>;
    /// One page of an account's links to objects of one portal.
    async fn links_of_account(
        &self,
        account: &AccountId,
        portal: PortalId,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<Link>>;
}

/// An opaque position in a paged listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Sync history, newest first.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Appends an entry that expires (TTL) at `expires_at`.
    async fn append(&self, entry: &HistoryEntry, expires_at: OffsetDateTime) -> StoreResult<()>;
    async fn entry(&self, account: &AccountId, id: &HistoryId)
    -> StoreResult<Option<HistoryEntry>>;
    async fn entries(
        &self,
        account: &AccountId,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<HistoryEntry>>;
}

/// What admission decided for a board change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First sighting, and its version (if it has one) moved forward: apply it.
    Admitted,
    /// The event id was taken before (a second copy, or this message again).
    Seen,
    /// First sighting, but a version at least as new was applied: skip it
    /// (the event is now marked seen).
    Stale,
}

/// board change events: one effect per event, versions only forward (SPEC §11).
#[async_trait]
pub trait BoardEventLedger: Send + Sync {
    /// Admits an event in one step: marks `event_id` seen and moves the
    /// object's version forward together (`versioned: None` for events that are
    /// not versions of an object, such as a sent document), or writes nothing
    /// (then it says why, or fails and a retry starts afresh). A failure can
    /// never leave the event seen with its version not applied.
    async fn admit(
        &self,
        account: &AccountId,
        event_id: &str,
        versioned: Option<(BoardRef, u64)>,
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> StoreResult<Admission>;
    /// True the first time an `event_id` is seen before it expires.
    async fn first_sighting(
        &self,
        account: &AccountId,
        event_id: &str,
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Moves the object's version forward; false if `version` is not newer.
    async fn advance_version(
        &self,
        account: &AccountId,
        object: BoardRef,
        version: u64,
    ) -> StoreResult<bool>;
    /// A remote create's intent (`pending`, or what was created), kept until `keep_until`.
    async fn intent(
        &self,
        account: &AccountId,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;
    async fn set_intent(
        &self,
        account: &AccountId,
        key: &str,
        value: &str,
        keep_until: OffsetDateTime,
    ) -> StoreResult<()>;
    /// The newest version applied for the object, if any.
    async fn applied_version(
        &self,
        account: &AccountId,
        object: BoardRef,
    ) -> StoreResult<Option<u64>>;
    /// Undoes `first_sighting` and `advance_version` for an event whose effect
    /// failed transiently, so its redelivery is applied. The version goes back
    /// only if no newer one was accepted meanwhile.
    async fn release_event(
        &self,
        account: &AccountId,
        event_id: &str,
        object: BoardRef,
        version: u64,
    ) -> StoreResult<()>;
}

/// A message as received from a work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// String message attributes (e.g. `reason` on a dead letter).
    pub attributes: Vec<(String, String)>,
}

/// A durable work queue with its dead-letter queue.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Sends every body; chunked to the queue's batch limit. All or an error.
    async fn send_batch(&self, bodies: &[String]) -> StoreResult<()>;
    /// Sends every body, each received no sooner than `delay` from now (whole
    /// seconds, as SQS's `DelaySeconds`; at most 15 minutes).
    async fn send_delayed(&self, bodies: &[String], delay: Duration) -> StoreResult<()>;
    /// Up to `max` (≤ 10) messages, waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> StoreResult<Vec<ReceivedMessage>>;
    async fn delete(&self, receipt: &str) -> StoreResult<()>;
    /// Deletes handled messages, as many per request as the queue takes (SQS:
    /// 10, as Lambda's event source deletes them).
    async fn delete_batch(&self, receipts: &[&str]) -> StoreResult<()> {
        for receipt in receipts {
            self.delete(receipt).await?;
        }
        Ok(())
    }
    /// Makes the message visible again after `delay` (retry later, without sleeping).
    async fn retry_after(&self, receipt: &str, delay: Duration) -> StoreResult<()>;
    /// Puts a message back to be received again after `delay` (at most 15
    /// minutes) as a fresh message: its receive count starts over, so waiting
    /// its turn never counts toward the dead-letter queue. A copy is sent, then
    /// the received one deleted.
    async fn defer(&self, message: &ReceivedMessage, delay: Duration) -> StoreResult<()>;
    /// Moves a message to the dead-letter queue with the reason attached.
    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> StoreResult<()>;
    /// Looks at up to `max` dead letters without taking them: they stay visible
    /// for a redrive or another look (inspection, runbook).
    async fn receive_dead_letters(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>>;
    /// Moves up to `max` dead letters back to the work queue; returns how many.
    async fn redrive(&self, max: usize) -> StoreResult<usize>;
}

/// The tenant a message belongs to, sent as its `MessageGroupId` so SQS fair
/// queues (and the embedded queue, which keeps the same rule) serve a quiet
/// tenant before a noisy one's backlog: board's account for its change events
/// and for catch-ups, the HubSpot portal for webhook jobs, `service` for the
/// scheduled jobs. A body that is not JSON is a tenant of its own (`unknown`).
pub fn tenant_of(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return "unknown".to_owned();
    };
    // Ids travel as strings (HubSpot's) or numbers (board's producer may send either).
    let id = |name: &str| match &value[name] {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(account) = id("account_id") {
        format!("account:{account}")
    } else if let Some(portal) = id("portal_id") {
        format!("portal:{portal}")
    } else if value.is_object() {
        "service".to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// Encrypts secrets at rest (AES-256-GCM) and fingerprints them for comparison.
pub trait TokenCipher: Send + Sync {
    /// Seals `plaintext`, bound to `context` (e.g. the account id) so a sealed
    /// value cannot be moved to another record.
    fn seal(&self, plaintext: &str, context: &str) -> String;
    fn open(&self, sealed: &str, context: &str) -> Result<secrecy::SecretString, CipherError>;
    /// Whether `sealed` opens with the current key (not only the previous one).
    fn sealed_with_current(&self, sealed: &str, context: &str) -> bool;
    /// A keyed digest: equal inputs give equal digests, nothing else can be learnt.
    fn digest(&self, plaintext: &str) -> String;
    /// Signs a short value (OAuth state) and checks such a signature.
    fn sign(&self, value: &str) -> String;
    fn verify(&self, value: &str, signature: &str) -> bool;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed value could not be opened")]
pub struct CipherError;

/// Named positions (e.g. the webhooks journal offset, a portal's catch-up watermark).
#[async_trait]
pub trait WatermarkStore: Send + Sync {
    async fn watermark(&self, name: &str) -> StoreResult<Option<String>>;
    async fn set_watermark(&self, name: &str, value: &str) -> StoreResult<()>;
}

/// A notice for a board account's administrators (SPEC §3.11): board turns
/// these into e-mail or in-app notices.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: String,
    pub account_id: AccountId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// `suspended`, `uninstalled`, `errors_piling_up`.
    pub kind: String,
    pub message: String,
    pub message_en: String,
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    async fn notify(&self, notification: &Notification) -> StoreResult<()>;
    /// Newest first.
    async fn notifications(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> StoreResult<Vec<Notification>>;
}

/// Tokens HubSpot issued.
pub struct TokenGrant {
    pub access_token: secrecy::SecretString,
    pub refresh_token: secrecy::SecretString,
    pub expires_in_seconds: i64,
}

/// What introspection tells about an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub portal_id: PortalId,
    pub hub_domain: Option<String>,
    pub user_id: Option<crate::domain::HubSpotUserId>,
    pub user_email: Option<String>,
    pub scopes: Vec<String>,
}

/// The state of the exclusion property after we made sure of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PropertyState {
    /// Present as a `bool` (created now or already there).
    Ready,
    /// A property of that name exists with another type.
    WrongType { found: String },
}

/// An app lifecycle event of HubSpot's webhooks journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    pub portal_id: PortalId,
    pub uninstalled: bool,
    /// When it happened (milliseconds since the epoch), when HubSpot says.
    pub occurred_at_ms: Option<i64>,
}

/// Where a journal read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalStart<'a> {
    /// The oldest entry HubSpot still keeps (about 3 days back).
    Earliest,
    /// The entry after this offset.
    After(&'a str),
}

/// One journal entry: its offset and the lifecycle events of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub offset: String,
    pub events: Vec<LifecycleEvent>,
}

/// A failed HubSpot call, classified by what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubSpotError {
    /// OAuth: the code or refresh token was refused (`invalid_grant`).
    #[error("grant refused: {0}")]
    InvalidGrant(String),
    /// 401 with a token we believed valid.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403, e.g. `MISSING_SCOPES`.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 400/409/422: HubSpot rejected the input; its message kept for the history.
    #[error("rejected ({status}): {message}")]
    Rejected {
        status: u16,
        category: String,
        message: String,
    },
    /// 429: retry after this many milliseconds; `daily` when HubSpot's daily
    /// limit was hit (`policyName: DAILY`), which lasts until the portal's midnight.
    #[error("rate limited, retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64, daily: bool },
    /// Not sent: the portal's background budget (ours, shared by every
    /// instance) has no room for this call within a pacing step.
    #[error("over the portal's budget for {retry_after_ms} ms")]
    OverBudget { retry_after_ms: u64 },
    /// 5xx, timeouts, connection failures.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// HubSpot's OAuth and app-level endpoints.
#[async_trait]
pub trait HubSpotAuth: Send + Sync {
    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, HubSpotError>;
    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant, HubSpotError>;
    async fn introspect(&self, access_token: &str) -> Result<TokenInfo, HubSpotError>;
    async fn revoke(&self, refresh_token: &str) -> Result<(), HubSpotError>;
    async fn uninstall(&self, access_token: &str) -> Result<(), HubSpotError>;
    /// Creates `exclude_from_board_integration` if absent (SPEC §3.5).
    async fn ensure_exclusion_property(
        &self,
        access_token: &str,
    ) -> Result<PropertyState, HubSpotError>;
    /// An app-level token (client credentials) for app-wide endpoints: the
    /// webhooks journal and its subscriptions.
    async fn app_token(&self) -> Result<secrecy::SecretString, HubSpotError>;
    /// Creates the app's `APP_LIFECYCLE_EVENT` journal subscription unless it
    /// exists (app-wide, not per connection).
    async fn ensure_lifecycle_subscription(&self, app_token: &str) -> Result<(), HubSpotError>;
    /// The journal entry at `start`, its file read (`None`: nothing there yet).
    /// An offset HubSpot no longer keeps is `NotFound`.
    async fn journal_entry(
        &self,
        app_token: &str,
        start: JournalStart<'_>,
    ) -> Result<Option<JournalEntry>, HubSpotError>;
}

/// A deal pipeline as HubSpot lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HsPipeline {
    pub id: crate::domain::PipelineId,
    pub label: String,
    pub display_order: i64,
    /// In display order.
    pub stages: Vec<HsStage>,
}

/// HubSpot's account details (`GET /account-info/2026-03/details`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsAccount {
    pub time_zone: String,
    pub utc_offset_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HsStage {
    pub id: crate::domain::StageId,
    pub label: String,
    pub display_order: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HsOwner {
    pub id: crate::domain::OwnerId,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HsTeam {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HsOption {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HsProperty {
    pub name: String,
    pub label: String,
    /// HubSpot's `type` (`enumeration`, `bool`, `string`, …).
    pub kind: String,
    pub options: Vec<HsOption>,
}

/// HubSpot's CRM reads the settings screens need.
#[async_trait]
pub trait HubSpotCrm: Send + Sync {
    async fn pipelines(&self, token: &str) -> Result<Vec<HsPipeline>, HubSpotError>;
    /// The portal's account details: its time zone and current UTC offset.
    async fn account_details(&self, token: &str) -> Result<HsAccount, HubSpotError>;
    async fn owners(&self, token: &str) -> Result<Vec<HsOwner>, HubSpotError>;
    async fn teams(&self, token: &str) -> Result<Vec<HsTeam>, HubSpotError>;
    async fn deal_property(
        &self,
        token: &str,
        name: &str,
    ) -> Result<Option<HsProperty>, HubSpotError>;
}

/// A board user (担当者 candidates).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BoardUser {
    pub id: crate::domain::BoardUserId,
    pub name: String,
    pub email: String,
}

/// A failed board call, classified like HubSpot's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("board refused our credentials: {0}")]
    Unauthorized(String),
    #[error("not found")]
    NotFound,
    /// 400/422: board rejected the input; its message and field errors kept.
    #[error("rejected: {message}")]
    Rejected {
        message: String,
        fields: Vec<(String, Vec<String>)>,
    },
    #[error("rate limited, retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// Not sent: the account's background budget (ours) has no room within a pacing step.
    #[error("over the account's budget for {retry_after_ms} ms")]
    OverBudget { retry_after_ms: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A board record as its API returns it: the id and board's field names.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardRecord {
    pub id: u64,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl BoardRecord {
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// board's resources we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardResource {
    Clients,
    Contacts,
    Projects,
}

impl BoardResource {
    pub fn path(self) -> &'static str {
        match self {
            Self::Clients => "clients",
            Self::Contacts => "contacts",
            Self::Projects => "projects",
        }
    }
}

/// board's API v1, per account. Field maps use board's own names; the use
/// cases build them from domain values.
#[async_trait]
pub trait BoardApi: Send + Sync {
    async fn users(&self, account: &AccountId) -> Result<Vec<BoardUser>, BoardError>;
    async fn get(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
    ) -> Result<BoardRecord, BoardError>;
    /// The first page of records matching `filters` (`name_eq`-style pairs).
    async fn find(
        &self,
        account: &AccountId,
        resource: BoardResource,
        filters: &[(&str, String)],
    ) -> Result<Vec<BoardRecord>, BoardError>;
    async fn create(
        &self,
        account: &AccountId,
        resource: BoardResource,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<BoardRecord, BoardError>;
    /// `PATCH /{resource}/{id}`.
    async fn update(
        &self,
        account: &AccountId,
        resource: BoardResource,
        id: u64,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<BoardRecord, BoardError>;
    /// `PATCH /projects/order_status/{id}` (with the ordered date when given).
    async fn set_order_status(
        &self,
        account: &AccountId,
        project: u64,
        status: u8,
        order_date: Option<String>,
    ) -> Result<BoardRecord, BoardError>;
}

/// Each account's configuration, versioned by the store.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// The configuration, or the defaults (version 0) when never changed.
    async fn config(
        &self,
        account: &AccountId,
    ) -> StoreResult<crate::domain::config::AccountConfig>;
    /// Saves if the stored version still equals `config.version`; returns the new version.
    async fn save_config(
        &self,
        account: &AccountId,
        config: &crate::domain::config::AccountConfig,
    ) -> StoreResult<u64>;
}

/// A CRM object as read: its id and the requested properties HubSpot has values for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmObject {
    pub id: u64,
    pub properties: std::collections::BTreeMap<String, String>,
}

impl CrmObject {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// An association as read: the other object and HubSpot's type ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Associated {
    pub id: u64,
    pub type_ids: Vec<u32>,
}

/// HubSpot's batch endpoints take at most 100 inputs (the adapter chunks
/// longer lists; use cases plan their batches with it).
pub const HUBSPOT_BATCH_LIMIT: usize = 100;

/// HubSpot's batch reads: at most 100 ids a call, chunked by the adapter.
#[async_trait]
pub trait HubSpotBatch: Send + Sync {
    /// Found objects, and the ids HubSpot does not have (deleted or never existed).
    async fn batch_read(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        ids: &[u64],
        properties: &[&str],
    ) -> Result<Metered<(Vec<CrmObject>, Vec<u64>)>, HubSpotError>;
    /// One page (100) of every object of a type, oldest id first, with the
    /// `after` of the next page (HubSpot's list endpoint, `paging.next.after`).
    async fn list_page(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        properties: &[&str],
        after: Option<&str>,
    ) -> Result<Metered<(Vec<CrmObject>, Option<String>)>, HubSpotError>;
    /// For each `from` id, its associated objects of `to` (ids without any are absent).
    async fn batch_associations(
        &self,
        token: &str,
        from: crate::domain::HubSpotObjectType,
        to: crate::domain::HubSpotObjectType,
        ids: &[u64],
    ) -> Result<Metered<std::collections::BTreeMap<u64, Vec<Associated>>>, HubSpotError>;
}

/// What HubSpot said of its rate limit on a response (`X-HubSpot-RateLimit-Max`,
/// `-Remaining`, `-Interval-Milliseconds`; each optional, so present only when
/// all three were sent): calls left in the app's window for the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub max: u32,
    pub remaining: u32,
    pub interval_ms: u64,
}

/// A HubSpot result with the rate-limit window its response reported (the
/// last one when a call took several requests): the budget consumes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metered<T> {
    pub value: T,
    pub rate: Option<RateWindow>,
}

/// HubSpot's batch writes, at most 100 inputs a call.
#[async_trait]
pub trait HubSpotWrite: Send + Sync {
    /// `Err` when the whole batch was refused (e.g. 400 for an invalid value);
    /// `Ok` with the inputs that failed alone and why (HubSpot's 207
    /// multi-status), the rest having been written.
    async fn batch_update(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        updates: &[(u64, std::collections::BTreeMap<String, String>)],
    ) -> Result<Metered<Vec<(u64, HubSpotError)>>, HubSpotError>;
    /// Creates a note associated with the given objects; its id.
    async fn create_note(
        &self,
        token: &str,
        body: &str,
        timestamp_ms: i64,
        associations: &[crate::domain::HubSpotRef],
    ) -> Result<u64, HubSpotError>;
    /// A note whose body contains `marker`, if one exists.
    async fn find_note(&self, token: &str, marker: &str) -> Result<Option<u64>, HubSpotError>;
}

/// Drafts, one per (account, portal, deal).
#[async_trait]
pub trait DraftStore: Send + Sync {
    async fn draft(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
    ) -> StoreResult<Option<crate::domain::draft::Draft>>;
    /// Writes if the revision is unchanged (0 = must not exist); returns the new revision.
    async fn save_draft(&self, draft: &crate::domain::draft::Draft) -> StoreResult<u64>;
    /// An account's drafts in one state, most recently changed first.
    async fn drafts(
        &self,
        account: &AccountId,
        state: crate::domain::draft::DraftState,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Page<crate::domain::draft::Draft>>;
}

/// One decision about a deal (the diagnosis's "why was my change ignored").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What triggered it (webhook subscription types, `catch_up`, `restore`, …).
    pub trigger: Vec<String>,
    /// `draft_created`, `draft_updated`, `unchanged`, `withdrawn`, `not_entered`, `kept_discarded`, …
    pub outcome: String,
    pub reason: String,
    pub config_version: u64,
}

#[async_trait]
pub trait DecisionLog: Send + Sync {
    /// Kept until `expires_at` (30 days by default).
    async fn record_decision(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
        decision: &Decision,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Newest first.
    async fn decisions(
        &self,
        account: &AccountId,
        portal: PortalId,
        deal: u64,
        limit: usize,
    ) -> StoreResult<Vec<Decision>>;
}

/// HubSpot's CRM search (5 requests/s): ids of objects modified after a time.
#[async_trait]
pub trait HubSpotSearch: Send + Sync {
    /// Ids with `hs_lastmodifieddate` > `after_ms`, oldest first, and the
    /// newest modification time seen; `after` pages through.
    async fn modified_since(
        &self,
        token: &str,
        object_type: crate::domain::HubSpotObjectType,
        after_ms: i64,
        page: Option<&str>,
    ) -> Result<Metered<ModifiedPage>, HubSpotError>;
}

#[derive(Debug, Clone, Default)]
pub struct ModifiedPage {
    pub ids: Vec<u64>,
    pub newest_ms: Option<i64>,
    pub next: Option<String>,
}

/// Shared rate budgets (sliding windows in the store), so concurrent Lambda
/// instances together stay under HubSpot's and board's limits (SPEC §11).
#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Grants `cost` calls from `bucket` if no more than `limit` were granted in
    /// the last `window`: `Ok(None)` when granted, `Ok(Some(wait))` when the
    /// caller must wait that long first.
    async fn take(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        cost: u32,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Duration>>;
    /// Counts `count` events of `kind` (`rate_limited`, …) against `bucket`'s
    /// current minute, without taking a turn (the budget view shows them).
    async fn note(
        &self,
        bucket: &str,
        kind: &str,
        count: u32,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// What `bucket` granted: calls in the last `window`, and per minute over
    /// the last `USAGE_MINUTES` minutes (with the events noted).
    async fn usage(
        &self,
        bucket: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<BudgetUsage>;
}

/// How many minutes of per-minute counts a budget keeps.
pub const USAGE_MINUTES: i64 = 15;

/// One budget's use, as the budget view shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetUsage {
    /// Calls granted in the window ending now.
    pub in_window: u32,
    /// Per minute (start, epoch ms), oldest first, only minutes with a count:
    /// calls granted and events noted, by kind.
    pub minutes: Vec<MinuteUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteUsage {
    pub minute_ms: i64,
    pub granted: u32,
    pub noted: std::collections::BTreeMap<String, u32>,
}
