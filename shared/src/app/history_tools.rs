//! What the errors dashboard does with the history (issue 19): counts by code
//! and object over a period with a trend, the filtered history as CSV for
//! Excel, and retries of many entries at once, queued for the worker.
//!
//! All three read the account's history newest first and stop at the
//! period's start or after `SCAN_LIMIT` entries (the answer says whether it
//! saw everything).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::Services;
use super::failure::SyncFailure;
use super::history::{Filter, view};
use super::jobs::{Job, QueueMessage};
use super::links::LinkError;
use crate::domain::history::{Direction, HistoryEntry, Status};
use crate::domain::{AccountId, Code, HistoryId};
use crate::ports::{Cursor, StoreError};

/// Entries one request reads at most.
pub const SCAN_LIMIT: usize = 20_000;
/// Rows a CSV export holds at most.
pub const EXPORT_LIMIT: usize = 10_000;
/// Ids one retry request may name.
pub const MAX_RETRY_IDS: usize = 500;
/// Entries retried per queued job.
const RETRIES_PER_JOB: usize = 20;
/// The dashboard's default period.
pub const DEFAULT_PERIOD: time::Duration = time::Duration::days(7);
/// How long one request reads the history at most (an API Gateway request
/// has 29 s): past it, the answer says it saw only the newest part.
const SCAN_TIME: std::time::Duration = std::time::Duration::from_secs(15);

/// Reads the account's entries matching `filter`, newest first, until the
/// filter's `from`, `limit` matches or `SCAN_LIMIT` reads; `visit` sees each
/// match. Returns whether the whole period was read.
async fn scan(
    services: &Services,
    account: &AccountId,
    filter: &Filter,
    limit: usize,
    mut visit: impl FnMut(HistoryEntry),
) -> Result<bool, StoreError> {
    let mut cursor: Option<Cursor> = None;
    let mut read = 0;
    let mut matched = 0;
    let began = std::time::Instant::now();
    loop {
        let page = services
            .history
            .entries(account, 200, cursor.as_ref())
            .await?;
        let last = page.next.is_none();
        for entry in page.items {
            read += 1;
            if filter.from.is_some_and(|from| entry.occurred_at < from) {
                return Ok(true);
            }
            cursor = Some(Cursor(entry.id.as_str().to_owned()));
            if filter.matches(&entry) {
                matched += 1;
                visit(entry);
                if matched >= limit {
                    return Ok(false);
                }
            }
        }
        if last {
            return Ok(true);
        }
        if read >= SCAN_LIMIT || began.elapsed() > SCAN_TIME {
            return Ok(false);
        }
    }
}

/// Whether `retry` has something to retry in the entry.
pub fn retryable(entry: &HistoryEntry) -> bool {
    entry.status != Status::Success
        && match entry.direction {
            Direction::BoardToHubspot => entry.board.is_some() || entry.hubspot.is_some(),
            Direction::HubspotToBoard => entry.hubspot.is_some(),
        }
}

/// The object an entry is about (one retry per object is enough: a retry
/// re-reads the object's current state).
fn object_key(entry: &HistoryEntry) -> String {
    match (entry.direction, entry.board, entry.hubspot) {
        (Direction::BoardToHubspot, Some(b), _) => format!("b:{}:{}", b.kind.as_str(), b.id),
        (_, _, Some(h)) => format!("h:{}:{}", h.object_type.as_str(), h.id),
        _ => format!("e:{}", entry.id),
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeCount {
    pub code: Code,
    /// `deal`, `company`, `contact`, `project`, `customer`, `customer_contact`.
    pub object_type: Option<&'static str>,
    pub count: u32,
    /// Of which a retry would re-run (the object is known).
    pub retryable: u32,
    pub message: &'static str,
    pub message_en: &'static str,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrendPoint {
    /// The start of the hour or day (JST).
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    pub success: u32,
    pub skip: u32,
    pub error: u32,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub total: u32,
    pub success: u32,
    pub skip: u32,
    pub error: u32,
    /// Skips and errors by catalog code and object type, most first.
    pub by_code: Vec<CodeCount>,
    /// `hour` for a period of two days or less, else `day`.
    pub trend_unit: &'static str,
    pub trend: Vec<TrendPoint>,
    /// False when the period holds more than one request reads
    /// (`SCAN_LIMIT` entries): the counts are of the newest part.
    pub complete: bool,
}

/// The filter's period, defaulting to the last `DEFAULT_PERIOD`.
pub fn period(services: &Services, filter: &mut Filter) -> (OffsetDateTime, OffsetDateTime) {
    let to = filter.to.unwrap_or_else(|| services.clock.now());
    let from = filter.from.unwrap_or(to - DEFAULT_PERIOD);
    filter.from = Some(from);
    filter.to = Some(to);
    (from, to)
}

const JST: time::UtcOffset = time::macros::offset!(+9);

fn bucket_start(at: OffsetDateTime, hourly: bool) -> OffsetDateTime {
    let local = at.to_offset(JST);
    let hour = if hourly { local.hour() } else { 0 };
    local
        .replace_time(time::Time::from_hms(hour, 0, 0).expect("valid hour"))
        .to_offset(JST)
}

pub async fn summary(
    services: &Services,
    account: &AccountId,
    mut filter: Filter,
) -> Result<Summary, StoreError> {
    let (from, to) = period(services, &mut filter);
    let hourly = to - from <= time::Duration::hours(48);
    let mut counts: BTreeMap<(&'static str, Option<&'static str>), (Code, u32, u32)> =
        BTreeMap::new();
    let mut trend: BTreeMap<OffsetDateTime, (u32, u32, u32)> = BTreeMap::new();
    let (mut success, mut skip, mut error) = (0, 0, 0);
    let complete = scan(services, account, &filter, usize::MAX, |entry| {
        let point = trend
            .entry(bucket_start(entry.occurred_at, hourly))
            .or_default();
        match entry.status {
            Status::Success => {
                success += 1;
                point.0 += 1;
            }
            Status::Skip => {
                skip += 1;
                point.1 += 1;
            }
            Status::Error => {
                error += 1;
                point.2 += 1;
            }
        }
        if let Some(code) = entry.code {
            let slot = counts
                .entry((code.as_str(), entry.object_type()))
                .or_insert((code, 0, 0));
            slot.1 += 1;
            if retryable(&entry) {
                slot.2 += 1;
            }
        }
    })
    .await?;
    // Every bucket of the period, empty ones too: a trend has no gaps.
    let step = if hourly {
        time::Duration::hours(1)
    } else {
        time::Duration::days(1)
    };
    let mut at = bucket_start(from, hourly);
    let mut points = Vec::new();
    while at <= to && points.len() < 24 * 92 {
        let (s, k, e) = trend.get(&at).copied().unwrap_or_default();
        points.push(TrendPoint {
            start: at,
            success: s,
            skip: k,
            error: e,
        });
        at += step;
    }
    let mut by_code: Vec<CodeCount> = counts
        .into_iter()
        .map(|((_, object_type), (code, count, retryable))| {
            let entry = code.entry();
            CodeCount {
                code,
                object_type,
                count,
                retryable,
                message: entry.message_ja,
                message_en: entry.message_en,
            }
        })
        .collect();
    by_code.sort_by_key(|row| std::cmp::Reverse(row.count));
    Ok(Summary {
        from: from.to_offset(JST),
        to: to.to_offset(JST),
        total: success + skip + error,
        success,
        skip,
        error,
        by_code,
        trend_unit: if hourly { "hour" } else { "day" },
        trend: points,
        complete,
    })
}

/// The CSV's columns, in Japanese (what board's admins open in Excel).
const HEADERS: [&str; 13] = [
    "日時",
    "方向",
    "結果",
    "コード",
    "対象",
    "案件名",
    "HubSpot ID",
    "board ID",
    "内容",
    "対処",
    "詳細",
    "設定の版",
    "履歴ID",
];

/// A cell as Excel must not run it: text starting with `=`, `+`, `-`, `@`
/// (or a tab or carriage return, which Excel also reads as a formula's start,
/// or their full-width forms, which Japanese input produces and Japanese
/// Excel may read alike) gets a leading apostrophe; every cell is quoted,
/// quotes doubled.
pub fn csv_cell(value: &str) -> String {
    let neutral = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '＝' | '＋' | '－' | '＠') => {
            format!("'{value}")
        }
        _ => value.to_owned(),
    };
    format!("\"{}\"", neutral.replace('"', "\"\""))
}

/// The filtered history as CSV: UTF-8 with a byte-order mark (Excel then reads
/// the Japanese), CRLF lines, newest first. The flag says whether every
/// matching entry is in it (`EXPORT_LIMIT` rows at most).
pub async fn csv(
    services: &Services,
    account: &AccountId,
    filter: &Filter,
) -> Result<(String, bool), StoreError> {
    let mut out = String::from("\u{feff}");
    out.push_str(
        &HEADERS
            .iter()
            .map(|h| csv_cell(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    let mut rows = Vec::new();
    let complete = scan(services, account, filter, EXPORT_LIMIT, |entry| {
        rows.push(view(entry))
    })
    .await?;
    for e in rows {
        let cells = [
            e.occurred_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            match e.direction {
                Direction::HubspotToBoard => "HubSpot → board".into(),
                Direction::BoardToHubspot => "board → HubSpot".into(),
            },
            match e.status {
                Status::Success => "成功".into(),
                Status::Skip => "スキップ".into(),
                Status::Error => "エラー".into(),
            },
            e.code.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            e.object_type.unwrap_or_default().to_owned(),
            e.name.unwrap_or_default(),
            e.hubspot_id.unwrap_or_default(),
            e.board_id.map(|b| b.to_string()).unwrap_or_default(),
            e.message.unwrap_or_default().to_owned(),
            e.guidance.unwrap_or_default().to_owned(),
            e.detail.unwrap_or_default(),
            e.config_version.to_string(),
            e.id.as_str().to_owned(),
        ];
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    Ok((out, complete))
}

/// Which entries to retry.
pub enum Selection {
    Ids(Vec<HistoryId>),
    /// Every retryable entry of the code matching the filter (its period and
    /// object type: what the dashboard's row counted).
    Code(Code, Filter),
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetriesQueued {
    /// Entries queued for a retry (one per object: a retry re-reads it).
    pub queued: usize,
    /// Named or matching entries not queued: successes, unknown ids, another
    /// entry of the same object, or an object that synced since.
    pub skipped: usize,
    /// False when a code's entries were more than one request reads: the
    /// newest part was queued; ask again for the rest.
    pub complete: bool,
}

/// Queues retries of the selected entries (jobs of `RETRIES_PER_JOB`); the
/// worker runs each as `POST /history/{id}/retry` would.
pub async fn queue_retries(
    services: &Services,
    account: &AccountId,
    selection: Selection,
) -> Result<RetriesQueued, StoreError> {
    let mut chosen: Vec<HistoryId> = Vec::new();
    let mut skipped = 0;
    let mut objects = HashSet::new();
    let mut complete = true;
    match selection {
        Selection::Ids(ids) => {
            for id in ids {
                match services.history.entry(account, &id).await? {
                    Some(entry) if retryable(&entry) && objects.insert(object_key(&entry)) => {
                        chosen.push(entry.id)
                    }
                    _ => skipped += 1,
                }
            }
        }
        Selection::Code(code, filter) => {
            // Newest first: an object's newest entry decides; one that synced
            // since its failure needs no retry.
            let mut settled = HashSet::new();
            let filter = Filter {
                code: None,
                status: None,
                ..filter
            };
            complete = scan(services, account, &filter, usize::MAX, |entry| {
                let key = object_key(&entry);
                if entry.status == Status::Success {
                    settled.insert(key);
                    return;
                }
                if entry.code != Some(code) {
                    return;
                }
                if retryable(&entry) && !settled.contains(&key) && objects.insert(key) {
                    chosen.push(entry.id);
                } else {
                    skipped += 1;
                }
            })
            .await?;
        }
    }
    let bodies: Vec<String> = chosen
        .chunks(RETRIES_PER_JOB)
        .map(|ids| {
            QueueMessage::to_body(&Job::Retry {
                account_id: account.clone(),
                ids: ids.iter().map(|i| i.as_str().to_owned()).collect(),
            })
        })
        .collect();
    for batch in bodies.chunks(10) {
        services.queue.send_batch(batch).await?;
    }
    info!(account = %account, queued = chosen.len(), skipped, "history retries queued");
    Ok(RetriesQueued {
        queued: chosen.len(),
        skipped,
        complete,
    })
}

/// The worker's side: retries each entry in turn. When HubSpot or board is
/// unavailable (or the budget spent), the entries not yet retried go back
/// on the queue as a job of their own if some were done, else the job is
/// retried with the queue's backoff; anything else is the entry's own answer
/// and is recorded by the retry itself.
pub async fn run_retries(
    services: &Services,
    account: &AccountId,
    ids: &[String],
) -> Result<(), SyncFailure> {
    for (done, raw) in ids.iter().enumerate() {
        let Ok(id) = HistoryId::new(raw.as_str()) else {
            warn!(id = %raw, "retry of an unreadable history id dropped");
            continue;
        };
        match super::links::retry(services, account, &id).await {
            Ok(()) => {}
            Err(LinkError::Unavailable(m)) if done == 0 => {
                return Err(SyncFailure::retry(Code::HubspotUnavailable, m));
            }
            Err(LinkError::Unavailable(m)) => {
                info!(history_id = %id, reason = %m, left = ids.len() - done, "retries handed on");
                let rest = QueueMessage::to_body(&Job::Retry {
                    account_id: account.clone(),
                    ids: ids[done..].to_vec(),
                });
                services.queue.send_batch(&[rest]).await?;
                return Ok(());
            }
            Err(LinkError::Store(e)) => return Err(SyncFailure::Store(e)),
            Err(other) => info!(history_id = %id, outcome = %other, "history entry not retried"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_excel_would_run_are_neutralised_and_quotes_doubled() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+81"), "\"'+81\"");
        assert_eq!(csv_cell("-1"), "\"'-1\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("\tx"), "\"'\tx\"");
        assert_eq!(csv_cell("＝SUM(A1)"), "\"'＝SUM(A1)\"");
        assert_eq!(csv_cell("株式会社テスト"), "\"株式会社テスト\"");
        assert_eq!(csv_cell(""), "\"\"");
    }
}
