//! The API budget screen (issue 19): what the rate budgets the service
//! already keeps (SPEC §11, `budget`) say about an account and its portal —
//! each share's room now, the last minutes' calls and 429s, and whether
//! HubSpot's daily limit holds the portal's background work.

use serde::Serialize;
use time::OffsetDateTime;

use super::Services;
use super::budget::{
    self, HUBSPOT_BACKGROUND, HUBSPOT_PEOPLE, RATE_LIMITED, board_background, board_bucket,
    hubspot_account_bucket, hubspot_bucket, hubspot_people_bucket,
};
use super::connection_status::Paused;
use crate::domain::connection::ConnectionState;
use crate::domain::{AccountId, PortalId};
use crate::ports::{BudgetUsage, StoreError, USAGE_MINUTES};

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowView {
    /// Calls the share allows in any window of `window_ms`.
    pub limit: u32,
    pub window_ms: u64,
    /// Calls granted in the window ending now.
    pub in_window: u32,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HubSpotMinute {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// Background calls of the portal (every account's).
    pub background: u32,
    /// Of which this account's (when the portal is shared; else all of them).
    pub account: u32,
    /// People's calls (settings screens, diagnosis, registration, resyncs).
    pub interactive: u32,
    /// HubSpot's 429 answers.
    pub rate_limited: u32,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HubSpotBudget {
    pub portal_id: PortalId,
    /// The portal's background share (80 %).
    pub background: WindowView,
    /// This account's part of it (the whole when alone on the portal).
    pub account_share: WindowView,
    /// People's share (the other 20 %).
    pub interactive: WindowView,
    pub accounts_on_portal: usize,
    /// The last minutes, oldest first, every minute.
    pub minutes: Vec<HubSpotMinute>,
    /// Background work held: HubSpot's daily limit reached, or its window
    /// nearly spent.
    pub held: Option<Paused>,
    /// `ok`, or `limit_reached` while HubSpot's daily limit holds the portal.
    pub daily: &'static str,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardMinute {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    pub background: u32,
    pub rate_limited: u32,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardBudget {
    /// board's limit: about this many requests per second per account.
    pub per_second: u32,
    pub background: WindowView,
    pub minutes: Vec<BoardMinute>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetView {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Null when the account has no active or suspended connection.
    pub hubspot: Option<HubSpotBudget>,
    pub board: BoardBudget,
}

const JST: time::UtcOffset = time::macros::offset!(+9);
const MINUTE_MS: i64 = 60_000;

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The last `USAGE_MINUTES` minute starts (epoch ms), oldest first.
fn minute_starts(now: OffsetDateTime) -> Vec<i64> {
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    let current = now_ms - now_ms.rem_euclid(MINUTE_MS);
    (0..USAGE_MINUTES)
        .rev()
        .map(|i| current - i * MINUTE_MS)
        .collect()
}

fn at_minute(usage: &BudgetUsage, minute: i64) -> (u32, u32) {
    usage
        .minutes
        .iter()
        .find(|m| m.minute_ms == minute)
        .map(|m| (m.granted, m.noted.get(RATE_LIMITED).copied().unwrap_or(0)))
        .unwrap_or_default()
}

fn start_of(minute: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(minute) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(JST)
}

pub async fn view(services: &Services, account: &AccountId) -> Result<BudgetView, StoreError> {
    let now = services.clock.now();
    let budgets = services.budget.as_ref();
    let starts = minute_starts(now);

    let (board_limit, board_window) = board_background(services.settings.board_rate_per_second);
    let board_usage = budgets
        .usage(&board_bucket(account), board_window, now)
        .await?;
    let board = BoardBudget {
        per_second: services.settings.board_rate_per_second,
        background: WindowView {
            limit: board_limit,
            window_ms: ms(board_window),
            in_window: board_usage.in_window,
        },
        minutes: starts
            .iter()
            .map(|&m| {
                let (background, rate_limited) = at_minute(&board_usage, m);
                BoardMinute {
                    start: start_of(m),
                    background,
                    rate_limited,
                }
            })
            .collect(),
    };

    let connection = services.connections.get_connection(account).await?;
    let hubspot = match connection {
        Some(c)
            if matches!(
                c.state,
                ConnectionState::Active | ConnectionState::Suspended
            ) =>
        {
            let portal = c.portal_id;
            let accounts = budget::accounts_on(services, portal).await;
            let (limit, window) = HUBSPOT_BACKGROUND;
            let portal_usage = budgets.usage(&hubspot_bucket(portal), window, now).await?;
            let account_usage = if accounts > 1 {
                budgets
                    .usage(&hubspot_account_bucket(portal, account), window, now)
                    .await?
            } else {
                portal_usage.clone()
            };
            let (people_limit, people_window) = HUBSPOT_PEOPLE;
            let people_usage = budgets
                .usage(&hubspot_people_bucket(portal), people_window, now)
                .await?;
            let held = budget::held(services, portal).await;
            let daily = if held
                .as_ref()
                .is_some_and(|(_, reason)| reason == budget::HELD_DAILY_LIMIT)
            {
                "limit_reached"
            } else {
                "ok"
            };
            Some(HubSpotBudget {
                portal_id: portal,
                background: WindowView {
                    limit,
                    window_ms: ms(window),
                    in_window: portal_usage.in_window,
                },
                account_share: WindowView {
                    limit: budget::hubspot_account_share(accounts),
                    window_ms: ms(window),
                    in_window: account_usage.in_window,
                },
                interactive: WindowView {
                    limit: people_limit,
                    window_ms: ms(people_window),
                    in_window: people_usage.in_window,
                },
                accounts_on_portal: accounts,
                minutes: starts
                    .iter()
                    .map(|&m| {
                        let (background, rate_limited) = at_minute(&portal_usage, m);
                        HubSpotMinute {
                            start: start_of(m),
                            background,
                            account: at_minute(&account_usage, m).0,
                            interactive: at_minute(&people_usage, m).0,
                            rate_limited,
                        }
                    })
                    .collect(),
                held: held.map(|(until, reason)| Paused {
                    until: start_of(until),
                    reason,
                }),
                daily,
            })
        }
        _ => None,
    };
    Ok(BudgetView {
        at: now.to_offset(JST),
        hubspot,
        board,
    })
}
