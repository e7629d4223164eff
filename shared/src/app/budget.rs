//! Rate budgets (SPEC §11): HubSpot allows 110 requests per 10 s per app and
//! portal, board about 3 per second per account. Budgets live in the store so
//! every Lambda instance shares them. Background work uses 80 % of each limit,
//! leaving the rest for people (settings, diagnosis, the card).
//!
//! They are sliding windows, not token buckets: both APIs count a rolling
//! window, and a bucket lets its whole capacity through on top of what it
//! refills within one window. A wait of at most a pacing step (`PACE_STEP`,
//! 2.5 s) is slept; a longer one is handed back so the queue delays the message.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::domain::{AccountId, PortalId};
use crate::ports::{Clock, RateBudget};

/// HubSpot: 80 % of 110 per 10 s for background work, as 22 calls in any
/// 2.5 s. Any 10 s is four such windows, so the background never takes more
/// than 88 of HubSpot's rolling 110 and 22 are always left for people, while
/// a burst still goes at once.
pub const HUBSPOT_BACKGROUND: (u32, Duration) = (22, Duration::from_millis(2500));

/// board: 80 % of the account's limit (about 3 per second: 2.4), as
/// `per_second` calls in any `1 / 0.8` s: never more than `per_second` in any
/// second, yet a read and its update go together instead of 417 ms apart.
pub fn board_background(per_second: u32) -> (u32, Duration) {
    (per_second.max(1), Duration::from_millis(1250))
}

/// The longest a use case waits inside one invocation (a pacing step: one
/// window of HubSpot's background budget, the longest wait that budget can
/// ask for): a longer wait is handed back as `Err(wait)` and becomes the
/// message's `Retry { after }`, settled by the queue, so no Lambda idles.
pub const PACE_STEP: Duration = HUBSPOT_BACKGROUND.1;

tokio::task_local! {
    /// Set while the worker runs a tenant's part of a batch: whether a budget
    /// wait is still handed back (until the part first spends a turn).
    static HAND_BACK: std::cell::Cell<bool>;
    /// Set while the worker writes a tenant's backlog of board changes to
    /// HubSpot (`bulk`): it leaves `BULK_MARGIN` of each HubSpot window to
    /// everything else.
    static BULK: ();
}

/// HubSpot turns a backlog of board changes leaves free in every window (of
/// its account's share and of the portal's): the reads that keep the
/// account's HubSpot → board work going and the other accounts' single
/// changes find a turn at once instead of waiting for the import's calls to
/// age out of the window.
pub const BULK_MARGIN: u32 = 3;

/// Runs `work` as a backlog of board changes written to HubSpot: paced (its
/// waits slept, a pacing step at most) and within the window less `BULK_MARGIN`.
pub async fn bulk<F: std::future::Future>(work: F) -> F::Output {
    BULK.scope((), pacing(work)).await
}

fn margin() -> u32 {
    if BULK.try_with(|_| ()).is_ok() {
        BULK_MARGIN
    } else {
        0
    }
}

/// The longest budget wait slept before a tenant's part of a worker batch has
/// spent anything (a nap, not a pacing step): anything longer is handed back
/// and the message deferred.
pub const NAP: Duration = Duration::from_millis(100);

/// Runs a tenant's part of a worker batch: a budget wait longer than a nap,
/// before the part has spent any turn, is handed back (the message is
/// deferred) instead of slept, so one tenant's spent budget never holds the
/// other tenants of the invocation. Once it has spent a turn it finishes
/// what it started, sleeping for its turns (a pacing step at most): handing
/// back then would waste what it read, and a unit of work needing more calls
/// than a window allows (a read and its update on a budget of one) would
/// start again and again without ever finishing.
pub async fn handing_back<F: std::future::Future>(work: F) -> F::Output {
    HAND_BACK.scope(std::cell::Cell::new(true), work).await
}

/// Runs `work` as the one invocation pacing an account through a backlog (it
/// holds the account's lease): its waits are slept, a pacing step at most.
pub async fn pacing<F: std::future::Future>(work: F) -> F::Output {
    HAND_BACK.scope(std::cell::Cell::new(false), work).await
}

fn longest_sleep(window: Duration) -> Duration {
    if HAND_BACK.try_with(std::cell::Cell::get).unwrap_or(false) {
        NAP
    } else {
        PACE_STEP.min(window)
    }
}

/// Runs one unit of work (a deal's read and update) inside a worker batch's
/// part: it hands a wait back until it has spent a turn, then finishes,
/// whatever the part around it did before. Outside a worker batch, as is.
pub async fn unit<F: std::future::Future>(work: F) -> F::Output {
    if HAND_BACK.try_with(|_| ()).is_ok() {
        HAND_BACK.scope(std::cell::Cell::new(true), work).await
    } else {
        work.await
    }
}

/// A turn was taken: the rest of this part of the batch paces.
fn spent() {
    let _ = HAND_BACK.try_with(|h| h.set(false));
}

/// Time this process's use cases slept waiting for a budget's turn (the
/// load harness reports it against the worker's busy time).
pub static BUDGET_WAIT_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Waits for `cost` calls (taken a quarter window at a time when more than
/// that); `Err(wait)` when a wait is longer than a pacing step.
pub async fn acquire(
    budget: &dyn RateBudget,
    clock: &dyn Clock,
    bucket: &str,
    (limit, window): (u32, Duration),
    cost: u32,
) -> Result<(), Duration> {
    // In steps of a quarter window: each wait stays short enough to sleep, so
    // a large cost is paced instead of refused and taken again later.
    let step = (limit / 4).max(1);
    let mut left = cost;
    while left > step {
        take(budget, clock, bucket, (limit, window), step).await?;
        left -= step;
    }
    take(budget, clock, bucket, (limit, window), left).await
}

async fn take(
    budget: &dyn RateBudget,
    clock: &dyn Clock,
    bucket: &str,
    (limit, window): (u32, Duration),
    cost: u32,
) -> Result<(), Duration> {
    loop {
        match budget.take(bucket, limit, window, cost, clock.now()).await {
            Ok(None) => {
                spent();
                return Ok(());
            }
            Ok(Some(wait)) if wait <= longest_sleep(window) => {
                tracing::debug!(
                    bucket,
                    wait_ms = wait.as_millis() as u64,
                    "waiting for a turn"
                );
                BUDGET_WAIT_NANOS.fetch_add(
                    u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tokio::time::sleep(wait).await
            }
            Ok(Some(wait)) => return Err(wait),
            Err(error) => {
                // The budget is a courtesy to HubSpot and board, whose own 429s remain the backstop.
                warn!(%error, bucket, "rate budget unavailable; proceeding");
                return Ok(());
            }
        }
    }
}

/// What the budget view counts besides grants: answers 429 from HubSpot or board.
pub const RATE_LIMITED: &str = "rate_limited";

/// People's share of HubSpot's rolling window (the 20 % the background
/// leaves: 22 of 110 per 10 s per portal): settings screens, diagnosis,
/// registration, a record's resync, the preview.
pub const HUBSPOT_PEOPLE: (u32, Duration) = (22, Duration::from_secs(10));

pub fn hubspot_bucket(portal: PortalId) -> String {
    format!("hubspot#{portal}")
}

pub fn hubspot_account_bucket(portal: PortalId, account: &AccountId) -> String {
    format!("hubspot#{portal}#{account}")
}

pub fn hubspot_people_bucket(portal: PortalId) -> String {
    format!("hubspot-people#{portal}")
}

pub fn board_bucket(account: &AccountId) -> String {
    format!("board#{account}")
}

/// Counts a 429 against `bucket`'s current minute (the budget view's "429s
/// seen"); a failure to count is only logged.
pub async fn note_rate_limited(services: &super::Services, bucket: &str) {
    if let Err(error) = services
        .budget
        .note(bucket, RATE_LIMITED, 1, services.clock.now())
        .await
    {
        warn!(%error, bucket, "429 not counted");
    }
}

/// Counts `cost` of people's HubSpot calls on the portal against their share
/// (the budget view shows its use). Counted, never refused or slowed: a
/// person waits for the answer, the background already leaves the share
/// free, and HubSpot's own 429 stays the backstop (shown as such).
pub async fn people(services: &super::Services, portal: PortalId, cost: u32) {
    // A window no count reaches: the take always grants and records.
    let unbounded = (u32::MAX / 2, HUBSPOT_PEOPLE.1);
    if let Err(error) = services
        .budget
        .take(
            &hubspot_people_bucket(portal),
            unbounded.0,
            unbounded.1,
            cost,
            services.clock.now(),
        )
        .await
    {
        warn!(%error, "people's HubSpot calls not counted");
    }
}

/// How long a 429 of HubSpot's rolling windows holds background work.
const SHORT_HOLD_MS: u64 = 2_000;

/// Why a portal's background HubSpot work is held.
pub const HELD_DAILY_LIMIT: &str = "daily_limit";
pub const HELD_RATE_LIMIT: &str = "rate_limit";

fn hold_key(portal: PortalId) -> String {
    format!("hubspot-hold#{portal}")
}

/// Holds the portal's background HubSpot work until `until_ms` (shared by
/// every instance through the store), for `reason`.
pub async fn hold(services: &super::Services, portal: PortalId, until_ms: i64, reason: &str) {
    if let Some((current, _)) = held(services, portal).await
        && current >= until_ms
    {
        return;
    }
    match services
        .watermarks
        .set_watermark(&hold_key(portal), &format!("{until_ms}:{reason}"))
        .await
    {
        Ok(()) => {
            warn!(portal = %portal, until_ms, reason, "background HubSpot work held");
            cache()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&cache_key(services, portal));
        }
        Err(error) => warn!(%error, "hold not stored; HubSpot's own 429s remain the backstop"),
    }
}

/// The hold on the portal's background work, if one is in force: until when
/// (ms since the epoch) and why.
pub async fn held(services: &super::Services, portal: PortalId) -> Option<(i64, String)> {
    let now = services.now_ms();
    let raw = services
        .watermarks
        .watermark(&hold_key(portal))
        .await
        .ok()
        .flatten()?;
    let (until, reason) = raw.split_once(':')?;
    let until: i64 = until.parse().ok()?;
    (until > now).then(|| (until, reason.to_owned()))
}

/// Holds read from the store, kept a second per instance: budget checks run
/// before every background batch and need not read the store each time.
/// Keyed by the store too (a process may hold several, as tests do).
type HoldCache = std::collections::HashMap<(usize, PortalId), (std::time::Instant, Option<i64>)>;

fn cache() -> &'static std::sync::Mutex<HoldCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HoldCache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn cache_key(services: &super::Services, portal: PortalId) -> (usize, PortalId) {
    (
        Arc::as_ptr(&services.watermarks) as *const () as usize,
        portal,
    )
}

/// How long the portal's background work is still held (HubSpot said its
/// window is nearly spent, or answered 429), if it is.
pub async fn held_for(services: &super::Services, portal: PortalId) -> Option<Duration> {
    hold_in_force(services, portal).await
}

async fn hold_in_force(services: &super::Services, portal: PortalId) -> Option<Duration> {
    let cached = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&cache_key(services, portal))
        .filter(|(at, _)| at.elapsed() < Duration::from_secs(1))
        .map(|(_, until)| *until);
    let until = match cached {
        Some(until) => until,
        None => {
            let until = held(services, portal).await.map(|(until, _)| until);
            cache().lock().unwrap_or_else(|p| p.into_inner()).insert(
                cache_key(services, portal),
                (std::time::Instant::now(), until),
            );
            until
        }
    };
    let left = until? - services.now_ms();
    (left > 0).then(|| Duration::from_millis(left as u64))
}

/// A background HubSpot answer, told to the budget before its value is used
/// (SPEC §11): when HubSpot's own headers say the app's window for the portal
/// has less than half of the 20 % people need left (other instances,
/// people's calls, a smaller limit than assumed), background work waits a
/// pacing step for the window to roll on; a 429 holds it for as long as HubSpot's policy says (the daily
/// limit for an hour: a retry every 10 s would only spend more), and the
/// connection status shows it.
pub async fn metered<T>(
    services: &super::Services,
    portal: PortalId,
    result: Result<crate::ports::Metered<T>, crate::ports::HubSpotError>,
) -> Result<T, crate::ports::HubSpotError> {
    match result {
        Ok(metered) => {
            // The budget leaves people 20 %; under 10 % left, calls it did not
            // count have taken half of that. (At exactly 20 % a call or two
            // taken at a window's edge but arriving after it would hold
            // every account of the portal for nothing.) A quarter of the
            // interval, a pacing step, lets the rolling window move on.
            if let Some(rate) = metered.rate
                && u64::from(rate.remaining) * 10 < u64::from(rate.max)
            {
                let until =
                    services.now_ms() + i64::try_from(rate.interval_ms / 4).unwrap_or(2_500);
                hold(services, portal, until, HELD_RATE_LIMIT).await;
            }
            Ok(metered.value)
        }
        Err(error) => {
            // HubSpot's own 429: every instance backs off — an hour for the
            // daily limit, a short pause for the rolling windows (the headers
            // of the next answers then say whether the window has room).
            if let crate::ports::HubSpotError::RateLimited {
                retry_after_ms,
                daily,
            } = &error
            {
                let wait = if *daily {
                    *retry_after_ms
                } else {
                    (*retry_after_ms).min(SHORT_HOLD_MS)
                };
                let until = services.now_ms() + i64::try_from(wait).unwrap_or(i64::MAX / 2);
                let reason = if *daily {
                    HELD_DAILY_LIMIT
                } else {
                    HELD_RATE_LIMIT
                };
                note_rate_limited(services, &hubspot_bucket(portal)).await;
                hold(services, portal, until, reason).await;
            }
            Err(error)
        }
    }
}

/// What each other account of a shared portal is always left of the
/// background window (2 of 22 per 2.5 s: 8 calls per 10 s), besides what a
/// backlog leaves (`BULK_MARGIN`).
pub const HUBSPOT_SHARE_RESERVE: u32 = 2;

/// One account's part of its portal's background window when `accounts`
/// share the portal: the window less a reserve for each other account,
/// never less than an equal share. One account alone has the whole window; a
/// noisy account beside quiet ones has most of it, and the quiet ones still
/// find a turn at once.
pub fn hubspot_account_share(accounts: usize) -> u32 {
    let (limit, _) = HUBSPOT_BACKGROUND;
    let others = u32::try_from(accounts.saturating_sub(1)).unwrap_or(u32::MAX);
    let equal = limit
        / u32::try_from(accounts.max(1))
            .unwrap_or(u32::MAX)
            .min(limit);
    limit
        .saturating_sub(others.saturating_mul(HUBSPOT_SHARE_RESERVE))
        .max(equal.max(1))
}

/// Connected accounts per portal, read from the store at most once a
/// minute per instance (connecting a second account to a portal is rare).
type SharingCache = std::collections::HashMap<(usize, PortalId), (std::time::Instant, usize)>;

fn sharing() -> &'static std::sync::Mutex<SharingCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<SharingCache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Active accounts connected to `portal` (at least one), as of the last minute.
pub async fn accounts_on(services: &super::Services, portal: PortalId) -> usize {
    let key = (
        Arc::as_ptr(&services.connections) as *const () as usize,
        portal,
    );
    if let Some((_, n)) = sharing()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .filter(|(at, _)| at.elapsed() < Duration::from_secs(60))
    {
        return *n;
    }
    let n = match services.connections.connections_of_portal(portal).await {
        Ok(connections) => connections
            .iter()
            .filter(|c| c.state == crate::domain::connection::ConnectionState::Active)
            .count()
            .max(1),
        // Unknown: as if alone (the portal's own window still bounds it).
        Err(_) => 1,
    };
    sharing()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (std::time::Instant::now(), n));
    n
}

/// A turn of `account`'s background work on its portal's HubSpot window:
/// first its own part (`hubspot_account_share`) when the portal is shared,
/// then the portal's window.
pub async fn hubspot(
    services: &super::Services,
    portal: PortalId,
    account: &AccountId,
    cost: u32,
) -> Result<(), Duration> {
    if let Some(wait) = hold_in_force(services, portal).await {
        return Err(wait);
    }
    let accounts = accounts_on(services, portal).await;
    let margin = margin();
    let (limit, window) = HUBSPOT_BACKGROUND;
    if accounts > 1 {
        acquire(
            services.budget.as_ref(),
            services.clock.as_ref(),
            &hubspot_account_bucket(portal, account),
            (
                hubspot_account_share(accounts)
                    .saturating_sub(margin)
                    .max(1),
                window,
            ),
            cost,
        )
        .await?;
    }
    acquire(
        services.budget.as_ref(),
        services.clock.as_ref(),
        &hubspot_bucket(portal),
        (limit - margin, window),
        cost,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_alone_has_the_whole_window_and_shares_leave_each_other_a_reserve() {
        assert_eq!(hubspot_account_share(1), 22);
        assert_eq!(hubspot_account_share(2), 20, "one other: 2 left to it");
        assert_eq!(hubspot_account_share(3), 18);
        assert_eq!(
            hubspot_account_share(12),
            1,
            "never less than an equal share"
        );
        assert_eq!(hubspot_account_share(500), 1, "always at least one call");
    }
}
